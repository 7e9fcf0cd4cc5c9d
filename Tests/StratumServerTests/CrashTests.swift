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

/// A client that stops mid-upload neither holds its connection forever nor
/// keeps SIGTERM from finishing: the idle timeout closes it.
struct StalledClientTests {
    @Test(.timeLimit(.minutes(2)))
    func aStalledUploadDoesNotStopAGracefulShutdown() throws {
        let directory = FileManager.default.temporaryDirectory.appending(path: "stratum-stalled-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory.appending(path: "definitions"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try Data(CrashTests.definitions.utf8).write(to: directory.appending(path: "definitions/source.yaml"))
        let daemon = try DaemonProcess(
            arguments: ["--definitions", directory.appending(path: "definitions").path, "--store", directory.appending(path: "s.sqlite").path, "--idle-timeout", "1"],
            environment: ["LOAD_KEY": "load-key", "LOG_LEVEL": "error"])

        // Headers announcing 100 bytes, then 10 of them, then nothing.
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(daemon.port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(connected == 0)
        let partial = "POST /v1/track HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"userId\":"
        let sent = Array(partial.utf8).withUnsafeBytes { Glibc.send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        try #require(sent == partial.utf8.count)
        Thread.sleep(forTimeInterval: 0.2)

        kill(daemon.process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(20)
        while daemon.process.isRunning, Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        #expect(!daemon.process.isRunning, "the daemon was still running 20 s after SIGTERM")
        #expect(daemon.stop(signal: SIGKILL) == 0)
    }
}
