import ArgumentParser
import Foundation
import StratumCrypto
import StratumDefinitions
import StratumEngine
import StratumStore
import Synchronization

extension Stratum {
    struct BenchIngest: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ingest",
            abstract: "Ingest deterministic synthetic shop traffic through the HTTP batch API on loopback.",
            discussion: """
                Starts the daemon in-process on a fresh store, streams batches from several client threads
                (page views, product views, carts, purchases, anonymous visitors identifying themselves),
                then prints events/s end to end, batch latency p50/p99, peak RSS, and the raw SQLite insert
                rate of the same number of rows on this machine as the ceiling.
                """
        )

        @Option(help: "Events to send.")
        var events = 1_000_000

        @Option(help: "Events per batch request.")
        var batch = 500

        @Option(help: "Concurrent client connections.")
        var clients = 4

        @Option(help: "Keep the store file here instead of a temporary directory.")
        var store: String?

        func validate() throws {
            guard events >= batch, batch >= 1, batch <= 2_500 else { throw ValidationError("need events >= batch and 1 <= batch <= 2500") }
            guard (1...64).contains(clients) else { throw ValidationError("--clients must be 1...64") }
        }

        func run() async throws {
            let directory = FileManager.default.temporaryDirectory.appending(path: "stratum-bench-ingest-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let storePath = store ?? directory.appending(path: "bench.sqlite").path
            let sqlite = try SQLiteStore(path: storePath)
            let daemon = try await BenchDaemon.start(store: sqlite)
            let port = daemon.port
            print("bench ingest: \(events) events in batches of \(batch) from \(clients) clients to 127.0.0.1:\(port)")

            let (elapsed, latencies, failures) = try await drive(port: port)
            await daemon.stop()

            let sent = events / batch * batch
            let stored = try await sqlite.read { try $0.countProfiles(tenant: Tenant.defaultID) }
            let rate = Double(sent) / elapsed
            print(String(format: "  end to end: %.0f events/s (%.1f s for %d events, %d failed requests)", rate, elapsed, sent, failures))
            print(String(format: "  batch latency: p50 %.1f ms, p99 %.1f ms", latencies.percentile(0.50) * 1000, latencies.percentile(0.99) * 1000))
            print(String(format: "  profiles: %d; peak RSS: %.0f MiB", stored, peakResidentMiB()))
            let ceilingStore = try SQLiteStore(path: directory.appending(path: "ceiling.sqlite").path)
            let ceiling = try ceilingStore.measureRawEventInsertRate(rows: sent)
            print(String(format: "  raw SQLite insert ceiling (same rows, one transaction): %.0f rows/s; end to end is %.0f%% of it", ceiling, rate / ceiling * 100))
            if failures > 0 { throw ExitCode(1) }
        }

        /// Runs the client threads; returns wall time, per-batch latencies and failed requests.
        func drive(port: Int) async throws -> (Double, LatencyList, Int) {
            let perClient = events / batch / clients
            let remainder = events / batch % clients
            let authorization = BenchDaemon.authorization
            let results = ResultsBox()
            let started = Date()
            await withTaskGroup(of: Void.self) { group in
                for client in 0..<clients {
                    let batches = perClient + (client < remainder ? 1 : 0)
                    group.addTask {
                        await withCheckedContinuation { continuation in
                            Thread.detachNewThread {
                                var generator = ShopTraffic(client: client, clients: clients)
                                var latencies: [Double] = []
                                var failures = 0
                                do {
                                    let connection = try LoopbackClient(port: port)
                                    for _ in 0..<batches {
                                        let body = generator.batch(size: batch)
                                        let start = Date()
                                        let (status, _) = try connection.post("/v1/batch", body: body, authorization: authorization)
                                        latencies.append(Date().timeIntervalSince(start))
                                        if status != 200 { failures += 1 }
                                    }
                                } catch {
                                    failures += 1
                                }
                                results.add(latencies, failures)
                                continuation.resume()
                            }
                        }
                    }
                }
            }
            let (latencies, failures) = results.value
            return (Date().timeIntervalSince(started), LatencyList(values: latencies), failures)
        }
    }
}

/// Deterministic synthetic shop traffic for one client: visitors browse,
/// some identify (anonymous → known), some buy. SplitMix64 makes runs repeatable.
struct ShopTraffic {
    var random: SplitMix64
    let client: Int
    let clients: Int
    var sequence = 0
    var known: Set<Int> = []
    static let visitorsPerClient = 12_500

    init(client: Int, clients: Int) {
        self.client = client
        self.clients = clients
        random = SplitMix64(seed: 0x9E37_79B9_7F4A_7C15 &* UInt64(client + 1))
    }

    mutating func next() -> UInt64 { random.next() }

    mutating func batch(size: Int) -> [UInt8] {
        var body = #"{"context":{"library":{"name":"stratum-bench","version":"1"}},"batch":["#
        for index in 0..<size {
            if index > 0 { body += "," }
            body += message()
        }
        body += "]}"
        return Array(body.utf8)
    }

    mutating func message() -> String {
        sequence += 1
        let visitor = Int(next() % UInt64(Self.visitorsPerClient)) * clients + client
        let roll = next() % 100
        let product = next() % 500
        let id = "c\(client)-\(sequence)"
        let user = known.contains(visitor) ? #","userId":"user-\#(visitor)""# : ""
        let common = #""anonymousId":"anon-\#(visitor)"\#(user),"messageId":"\#(id)","context":{"ip":"203.0.113.\#(visitor % 250)","userAgent":"Mozilla/5.0 (bench)","page":{"url":"https://shop.example/p/\#(product)"}}"#
        switch roll {
        case 0..<5 where !known.contains(visitor):
            known.insert(visitor)
            return #"{"type":"identify",\#(common),"userId":"user-\#(visitor)","traits":{"email":"user-\#(visitor)@example.com","plan":"free"}}"#
        case 0..<25:
            return #"{"type":"page",\#(common),"name":"Category"}"#
        case 25..<75:
            return #"{"type":"track",\#(common),"event":"ProductView","properties":{"product_id":"p-\#(product)","price":\#(product % 90 + 9).99}}"#
        case 75..<88:
            return #"{"type":"track",\#(common),"event":"AddToCart","properties":{"product_id":"p-\#(product)","quantity":1}}"#
        case 88..<95:
            return #"{"type":"track",\#(common),"event":"BeginCheckout","properties":{"cart_size":\#(product % 5 + 1)}}"#
        default:
            return #"{"type":"track",\#(common),"event":"Purchase","properties":{"order_id":"o-\#(id)","total":\#(product % 200 + 10).5,"currency":"USD"}}"#
        }
    }
}

/// Latencies and failures from every client thread.
final class ResultsBox: Sendable {
    private let state = Mutex<([Double], Int)>(([], 0))

    func add(_ values: [Double], _ failed: Int) {
        state.withLock { $0.0 += values; $0.1 += failed }
    }

    var value: ([Double], Int) { state.withLock { $0 } }
}

/// Latencies in seconds, sorted.
struct LatencyList {
    let values: [Double]

    init(values: [Double]) { self.values = values.sorted() }

    /// Nearest-rank percentile.
    func percentile(_ fraction: Double) -> Double {
        guard !values.isEmpty else { return 0 }
        let rank = Int((fraction * Double(values.count)).rounded(.up))
        return values[min(max(rank, 1), values.count) - 1]
    }
}
