import ArgumentParser
import Foundation
import StratumDefinitions
import StratumEngine
import StratumStore
import Synchronization

extension Stratum {
    struct BenchFreshness: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "freshness",
            abstract: "Measure how soon a dynamic segment records a profile after its event is accepted, under steady ingestion.",
            discussion: """
                Starts the daemon in-process (HTTP ingestion, group commit, the scheduler's incremental
                segment runs) on a fresh store with one dynamic segment, "bought in the last day". Paced
                clients send page views at the given rate; every so often a visitor who never bought
                before sends a Purchase. Freshness is the time from the 200 answer for that event to
                the moment a reader sees the profile's "entered" change in the store (polled every
                10 ms, so figures are at most 10 ms pessimistic). Prints p50/p95/p99/max freshness and
                the rate achieved. The run lasts --seconds and stops by itself.
                """
        )

        @Option(help: "Events per second to send, all clients together.")
        var rate = 5_000

        @Option(help: "How long to send, in seconds.")
        var seconds = 30

        @Option(help: "One event in this many is a first purchase (a profile that must enter the segment).")
        var purchaseEvery = 100

        @Option(help: "Concurrent client connections.")
        var clients = 4

        @Option(help: "Events per batch request.")
        var batch = 25

        @Option(help: "The segment's window: bought in the last N days.")
        var windowDays = 1

        @Option(help: "How many such dynamic segments (each re-evaluated for touched profiles); a purchase counts as recorded once it entered all of them.")
        var segments = 1

        @Option(help: "How often the segment also runs in full (an every: duration); shorter than --seconds to measure freshness across full runs.")
        var fullRefreshEvery = "1h"

        @Option(help: "Also compute a trait (lifetime Purchase.total) in full at this interval (an every: duration), as a daemon with traits does.")
        var traitEvery: String?

        @Option(help: "Run on this existing store (kept; it receives the bench's events) instead of a fresh one.")
        var store: String?

        @Option(help: "Shop history written into the store before the run (profiles), as bench segments generates it.")
        var historyProfiles = 0

        @Option(help: "Shop history written into the store before the run (events over 2026).")
        var historyEvents = 0

        func validate() throws {
            guard (1...100_000).contains(rate) else { throw ValidationError("--rate must be 1...100000") }
            guard (1...600).contains(seconds) else { throw ValidationError("--seconds must be 1...600") }
            guard (1...64).contains(clients), (1...500).contains(batch) else { throw ValidationError("--clients must be 1...64 and --batch 1...500") }
            guard windowDays >= 1, historyEvents >= 0, historyProfiles >= 0 else { throw ValidationError("--window-days must be at least 1 and the history sizes not negative") }
            guard (1...100).contains(segments) else { throw ValidationError("--segments must be 1...100") }
            guard (historyEvents == 0) == (historyProfiles == 0) else { throw ValidationError("--history-profiles and --history-events go together") }
            guard TimeSpan(parsing: fullRefreshEvery) != nil, traitEvery.map({ TimeSpan(parsing: $0) != nil }) ?? true else {
                throw ValidationError("--full-refresh-every and --trait-every must be durations such as 30s, 15m or 1h")
            }
            guard purchaseEvery >= 2 else { throw ValidationError("--purchase-every must be at least 2") }
        }

        /// The measured segments: recent-buyers, or recent-buyers-1 ... recent-buyers-N.
        var segmentNames: [String] { segments == 1 ? ["recent-buyers"] : (1...segments).map { "recent-buyers-\($0)" } }

        func run() async throws {
            let directory = FileManager.default.temporaryDirectory.appending(path: "stratum-bench-freshness-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let store = try SQLiteStore(path: self.store ?? directory.appending(path: "bench.sqlite").path)
            if historyEvents > 0 {
                try await store.generateShopData(profiles: max(historyProfiles, 1), events: historyEvents)
                print("wrote a history of \(historyProfiles) profiles and \(historyEvents) events")
            }
            var definitions = segmentNames.map { name in
                ("\(name).yaml", """
                    kind: Segment
                    name: \(name)
                    segment_type: dynamic
                    schedule: {every: \(fullRefreshEvery)}
                    rules:
                      conditions:
                        - {field: event, event_name: Purchase, operator: within_last, value: \(windowDays), unit: days}

                    """)
            }
            if let traitEvery {
                definitions.append(("trait.yaml", "kind: Trait\nname: bench_spend\ntype: sum\nevent: Purchase\nproperty: total\nschedule: {every: \(traitEvery)}\n"))
            }
            let daemon = try await BenchDaemon.start(store: store, extraDefinitions: definitions, scheduled: true)
            let port = daemon.port
            // The scheduler evaluates the segments in full at start; measure after that.
            let waitStarted = ContinuousClock.now
            let names = Set(segmentNames)
            while try await store.segmentStates(tenant: Tenant.defaultID).filter({ names.contains($0.segment) && $0.lastComputedAt != nil }).count < names.count {
                try await Task.sleep(for: .milliseconds(20))
                guard ContinuousClock.now - waitStarted < .seconds(600) else { throw ValidationError("the first full evaluation took over 10 minutes") }
            }
            print("bench freshness: \(rate) events/s for \(seconds) s from \(clients) clients (batches of \(batch)), one first purchase in \(purchaseEvery), \(segments) dynamic segment\(segments == 1 ? "" : "s"), to 127.0.0.1:\(port)")

            // Entries of the history (the first full evaluation) are not measured.
            var recorded: Int64 = 0
            while let last = try await store.segmentChanges(tenant: Tenant.defaultID, after: recorded, limit: 10_000).last {
                recorded = last.sequence
            }
            let observed = ObservedEntries(segments: names)
            let watching = Task { [recorded] in try await watch(store: store, after: recorded, into: observed) }
            let started = ContinuousClock.now
            let (acknowledged, sent, failures) = await drive(port: port)
            let sending = ContinuousClock.now - started
            // Give the last purchases time to land (bounded).
            let deadline = ContinuousClock.now + .seconds(5)
            while observed.count < acknowledged.count && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            watching.cancel()
            _ = await watching.result
            await daemon.stop()

            guard let identity = daemon.runtime.tenants[Tenant.defaultID]?.identity else { throw ValidationError("no default tenant") }
            let entries = observed.value
            let pairs = acknowledged.map { user, at in (identity.identifier(type: "external_id", raw: user)?.hash ?? "", at) }
            let profiles = try await store.read { reader in
                try pairs.map { hash, _ in try reader.matches(tenant: Tenant.defaultID, identifiers: [("external_id", hash)]).first?.profileID }
            }
            var delays: [Double] = []
            var missing = 0
            for ((_, at), profile) in zip(pairs, profiles) {
                guard let profile, let seen = entries[profile] else { missing += 1; continue }
                // Recorded before the client read its 200 (the incremental run beat the answer): no delay.
                delays.append(max(0, Self.seconds(seen - at)))
            }
            let latencies = LatencyList(values: delays)
            let achieved = Double(sent) / Self.seconds(sending)
            print(String(format: "  sent %d events in %.1f s: %.0f events/s (%d failed requests)", sent, Self.seconds(sending), achieved, failures))
            print(String(format: "  freshness of %d first purchases (accepted → membership recorded): p50 %.0f ms, p95 %.0f ms, p99 %.0f ms, max %.0f ms; %d not recorded within 5 s of the end",
                         delays.count, latencies.percentile(0.50) * 1000, latencies.percentile(0.95) * 1000, latencies.percentile(0.99) * 1000,
                         (latencies.values.last ?? 0) * 1000, missing))
            print(String(format: "  peak RSS %.0f MiB", peakResidentMiB()))
            if achieved < 0.95 * Double(rate) {
                print(String(format: "  warning: the clients reached only %.0f%% of --rate: the figures describe a lighter load", achieved / Double(rate) * 100))
            }
            if failures > 0 || missing > 0 { throw ExitCode(1) }
        }

        /// Polls the recorded membership changes, noting when each entry is first seen.
        func watch(store: SQLiteStore, after start: Int64, into observed: ObservedEntries) async throws {
            var after = start
            while !Task.isCancelled {
                let changes = try await store.segmentChanges(tenant: Tenant.defaultID, after: after, limit: 10_000)
                let now = ContinuousClock.now
                for change in changes where change.change == "entered" {
                    observed.record(change.profileID, segment: change.segment, at: now)
                }
                after = changes.last?.sequence ?? after
                try await Task.sleep(for: .milliseconds(10))
            }
        }

        /// Paced clients: batch i of a client is due at start + i × interval.
        /// Returns when each first purchase was acknowledged, events sent, failed requests.
        func drive(port: Int) async -> ([(String, ContinuousClock.Instant)], Int, Int) {
            let authorization = BenchDaemon.authorization
            let interval = Double(batch * clients) / Double(rate)
            let batches = max(1, rate * seconds / (batch * clients))
            let results = FreshnessResults()
            let (batch, clients, purchaseEvery) = (batch, clients, purchaseEvery)
            // Message and user ids of this run only: on a store an earlier run used (--store),
            // they would be duplicates and existing buyers, and nothing would enter.
            let run = UUID().uuidString.prefix(8)
            await withTaskGroup(of: Void.self) { group in
                for client in 0..<clients {
                    group.addTask {
                        await withCheckedContinuation { continuation in
                            Thread.detachNewThread {
                                var acknowledged: [(String, ContinuousClock.Instant)] = []
                                var sent = 0
                                var failures = 0
                                var sequence = 0
                                do {
                                    let connection = try LoopbackClient(port: port)
                                    let start = ContinuousClock.now
                                    for index in 0..<batches {
                                        let due = start + .seconds(Double(index) * interval)
                                        let wait = due - ContinuousClock.now
                                        if wait > .zero { Thread.sleep(forTimeInterval: Self.seconds(wait)) }
                                        var items: [String] = []
                                        var buyers: [String] = []
                                        for _ in 0..<batch {
                                            sequence += 1
                                            let id = "\(run)-c\(client)-\(sequence)"
                                            if sequence % purchaseEvery == 0 {
                                                let user = "buyer-\(id)"
                                                buyers.append(user)
                                                items.append(#"{"type":"track","userId":"\#(user)","event":"Purchase","messageId":"\#(id)","properties":{"total":42.5}}"#)
                                            } else {
                                                items.append(#"{"type":"page","anonymousId":"visitor-\#(client)-\#(sequence % 5_000)","messageId":"\#(id)","name":"Home"}"#)
                                            }
                                        }
                                        let body = Array(#"{"batch":["#.utf8) + Array(items.joined(separator: ",").utf8) + Array("]}".utf8)
                                        let (status, _) = try connection.post("/v1/batch", body: body, authorization: authorization)
                                        let answered = ContinuousClock.now
                                        if status == 200 {
                                            sent += batch
                                            acknowledged += buyers.map { ($0, answered) }
                                        } else {
                                            failures += 1
                                        }
                                    }
                                } catch {
                                    failures += 1
                                }
                                results.add(acknowledged, sent, failures)
                                continuation.resume()
                            }
                        }
                    }
                }
            }
            return results.value
        }

        static func seconds(_ duration: Swift.Duration) -> Double {
            Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        }
    }
}

/// When each profile was first seen to have entered every measured segment.
final class ObservedEntries: Sendable {
    let segments: Set<String>
    private let state = Mutex<(entered: [String: Set<String>], complete: [String: ContinuousClock.Instant])>(([:], [:]))

    init(segments: Set<String>) { self.segments = segments }

    func record(_ profile: String, segment: String, at instant: ContinuousClock.Instant) {
        guard segments.contains(segment) else { return }
        state.withLock { state in
            state.entered[profile, default: []].insert(segment)
            if state.entered[profile]?.count == segments.count, state.complete[profile] == nil { state.complete[profile] = instant }
        }
    }

    var count: Int { state.withLock { $0.complete.count } }
    var value: [String: ContinuousClock.Instant] { state.withLock { $0.complete } }
}

/// What the paced client threads report.
final class FreshnessResults: Sendable {
    private let state = Mutex<([(String, ContinuousClock.Instant)], Int, Int)>(([], 0, 0))

    func add(_ acknowledged: [(String, ContinuousClock.Instant)], _ sent: Int, _ failed: Int) {
        state.withLock { $0.0 += acknowledged; $0.1 += sent; $0.2 += failed }
    }

    var value: ([(String, ContinuousClock.Instant)], Int, Int) { state.withLock { $0 } }
}
