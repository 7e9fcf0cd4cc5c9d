import Foundation
import HummingbirdTesting
import NIOCore
import StratumStore
import StratumTestSupport
import Testing

/// SIGKILL the daemon with deliveries in flight: after a restart every
/// delivery arrives at least once, always with its own webhook-id.
struct DeliveryCrashTests {
    @Test(.timeLimit(.minutes(3)))
    func everyDeliveryArrivesAtLeastOnceAcrossACrash() async throws {
        let receiver = Receiver(delay: .milliseconds(20))
        try await receiver.serve { url in
            let directory = FileManager.default.temporaryDirectory.appending(path: "stratum-delivery-crash-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory.appending(path: "definitions"), withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let files = [
                "source.yaml": "kind: Source\nname: app\ntype: server_api\nwrite_key: ${env:APP_KEY}\nrate_limit: {requests_per_minute: 100000}\n",
                "everyone.yaml": "kind: Segment\nname: everyone\nschedule: {every: 1d}\nrules:\n  conditions:\n    - {field: total_events, operator: greater_than, value: 0}\n",
                "hook.yaml": "kind: Webhook\nname: hook\nurl: \(url)\nsecret: ${env:HOOK_SECRET}\nevents: [segment.entered]\nbatch_size: 1\n",
            ]
            for (name, text) in files { try Data(text.utf8).write(to: directory.appending(path: "definitions/\(name)")) }
            let storePath = directory.appending(path: "s.sqlite").path
            let arguments = ["--definitions", directory.appending(path: "definitions").path, "--store", storePath]
            let environment = ["APP_KEY": "app-key", "HOOK_SECRET": WebhookDeliveryTests.secret, "LOG_LEVEL": "error"]

            let daemon = try DaemonProcess(arguments: arguments, environment: environment)
            try await TestClient.withClient(host: "127.0.0.1", port: daemon.port) { http in
                let items = (0..<150).map { #"{"type":"track","userId":"user-\#($0)","event":"Joined"}"# }
                let response = try await http.execute(TestClient.Request(
                    "/v1/batch", method: .post,
                    headers: [.authorization: "Basic " + Data("app-key:".utf8).base64EncodedString(), .contentType: "application/json"],
                    body: ByteBuffer(string: #"{"batch":[\#(items.joined(separator: ","))]}"#)))
                #expect(response.status == .ok)
            }
            // Kill once some deliveries arrived and others are still to go.
            var waited = 0
            while receiver.received.withLock({ $0.count }) < 10 && waited < 3_000 {
                try await Task.sleep(for: .milliseconds(10))
                waited += 1
            }
            daemon.stop(signal: SIGKILL)
            let beforeRestart = receiver.received.withLock { $0.count }
            #expect(beforeRestart >= 10)

            let restarted = try DaemonProcess(arguments: arguments, environment: environment)
            let store = try SQLiteStore(path: storePath)
            var deliveries = try await store.deliveries(tenant: "default")
            var polls = 0
            while deliveries.contains(where: { $0.status != "delivered" }) && polls < 600 {
                try await Task.sleep(for: .milliseconds(50))
                deliveries = try await store.deliveries(tenant: "default")
                polls += 1
            }
            #expect(restarted.stop() == 0)
            #expect(deliveries.count == 150)
            #expect(deliveries.allSatisfy { $0.status == "delivered" })
            let arrived = Set(receiver.received.withLock { $0 }.compactMap { $0.headers["webhook-id"] })
            #expect(Set(deliveries.map(\.id)).isSubset(of: arrived), "every delivery arrived at least once")
            #expect(beforeRestart < 150, "the crash happened with deliveries still to send")
        }
    }
}
