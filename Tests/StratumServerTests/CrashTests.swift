import Foundation
import HummingbirdTesting
import NIOCore
import StratumStore
import StratumTestSupport
import Testing

/// A 2xx means committed: SIGKILL the daemon under a stream of batches, and
/// every acknowledged messageId is in the store exactly once.
struct CrashTests {
    static let definitions = "kind: Source\nname: load\ntype: server_api\nwrite_key: ${env:LOAD_KEY}\nrate_limit: {requests_per_minute: 1000000}\n"

    @Test(.timeLimit(.minutes(5)))
    func everyAcknowledgedMessageSurvivesSIGKILL() async throws {
        let directory = FileManager.default.temporaryDirectory.appending(path: "stratum-crash-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory.appending(path: "definitions"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try Data(Self.definitions.utf8).write(to: directory.appending(path: "definitions/source.yaml"))
        let storePath = directory.appending(path: "store.sqlite").path
        let arguments = ["--definitions", directory.appending(path: "definitions").path, "--store", storePath]
        let environment = ["LOAD_KEY": "load-key", "LOG_LEVEL": "error"]

        let daemon = try DaemonProcess(arguments: arguments, environment: environment)
        let acknowledged = Locked<[String]>([])
        let batchesAcknowledged = Locked(0)
        let authorization = "Basic " + Data("load-key:".utf8).base64EncodedString()

        // Four clients stream batches until the daemon dies (bounded: 400 batches each).
        try await withThrowingTaskGroup(of: Void.self) { group in
            for client in 0..<4 {
                group.addTask {
                    try? await TestClient.withClient(host: "127.0.0.1", port: daemon.port) { http in
                        for batch in 0..<400 {
                            let ids = (0..<50).map { "c\(client)-b\(batch)-m\($0)" }
                            let items = ids.map { #"{"type":"track","anonymousId":"visitor-\#(client)-\#(batch % 7)","event":"Load","messageId":"\#($0)"}"# }
                            let response = try await http.execute(TestClient.Request(
                                "/v1/batch", method: .post, headers: [.authorization: authorization, .contentType: "application/json"],
                                body: ByteBuffer(string: #"{"batch":[\#(items.joined(separator: ","))]}"#)))
                            guard response.status == .ok else { return }
                            acknowledged.withLock { $0 += ids }
                            batchesAcknowledged.withLock { $0 += 1 }
                        }
                    }
                }
            }
            group.addTask {
                // Kill mid-stream, with requests in flight.
                let deadline = Date().addingTimeInterval(60)
                while batchesAcknowledged.withLock({ $0 }) < 40 && Date() < deadline {
                    try await Task.sleep(for: .milliseconds(5))
                }
                daemon.stop(signal: SIGKILL)
            }
            try await group.waitForAll()
        }
        #expect(daemon.process.terminationReason == .uncaughtSignal)
        let ids = acknowledged.withLock { $0 }
        #expect(ids.count >= 40 * 50)

        // After a restart every acknowledged message is there exactly once,
        // and resending them (as a client retrying would) stores nothing new.
        let restarted = try DaemonProcess(arguments: arguments, environment: environment)
        try await TestClient.withClient(host: "127.0.0.1", port: restarted.port) { http in
            let health = try await http.execute(TestClient.Request("/healthz", method: .get))
            #expect(health.status == .ok)
            let resend = ids.prefix(100).map { #"{"type":"track","anonymousId":"retry","event":"Load","messageId":"\#($0)"}"# }
            let response = try await http.execute(TestClient.Request(
                "/v1/batch", method: .post, headers: [.authorization: authorization, .contentType: "application/json"],
                body: ByteBuffer(string: #"{"batch":[\#(resend.joined(separator: ","))]}"#)))
            #expect(response.status == .ok)
        }
        #expect(restarted.stop(signal: SIGTERM) == 0)
        let store = try SQLiteStore(path: storePath)
        let counts = try await store.read { try $0.countEvents(tenant: "default", idempotencyKeys: ids) }
        let missing = counts.filter { $0.value == 0 }.map(\.key)
        let doubled = counts.filter { $0.value > 1 }.map(\.key)
        #expect(missing.isEmpty, "\(missing.count) acknowledged messages were lost, e.g. \(missing.prefix(3))")
        #expect(doubled.isEmpty)
    }
}
