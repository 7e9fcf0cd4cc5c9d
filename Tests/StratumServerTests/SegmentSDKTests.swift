import Foundation
import HummingbirdTesting
import StratumJSON
import StratumTestSupport
import Testing

/// Segment's own Python SDK (PyPI segment-analytics-python, pinned in
/// scripts/install-dependencies), pointed at the daemon with its host option.
struct SegmentSDKTests {
    static let sdkAvailable: Bool = {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", "import segment.analytics"]
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }()

    @Test func theSDKIsPresentWhereRequired() {
        if ProcessInfo.processInfo.environment["STRATUM_REQUIRE_PYTHON_SDK"] == "1" {
            #expect(Self.sdkAvailable, "segment-analytics-python is required but cannot be imported")
        }
    }

    @Test(.enabled(if: sdkAvailable, "segment-analytics-python is not installed"), .timeLimit(.minutes(2)))
    func eventsFromTheUnchangedSDKBecomeProfiles() async throws {
        let directory = FileManager.default.temporaryDirectory.appending(path: "stratum-sdk-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory.appending(path: "definitions"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try Data("kind: Source\nname: app\ntype: server_api\nwrite_key: ${env:APP_KEY}\n".utf8).write(to: directory.appending(path: "definitions/source.yaml"))
        try Data("kind: Settings\nname: stratum\nadmin_tokens: [{name: t, token: \"${env:ADMIN}\", scopes: [read]}]\n".utf8).write(to: directory.appending(path: "definitions/stratum.yaml"))
        let daemon = try DaemonProcess(
            arguments: ["--definitions", directory.appending(path: "definitions").path, "--store", directory.appending(path: "s.sqlite").path],
            environment: ["APP_KEY": "app-key", "ADMIN": "admin", "LOG_LEVEL": "error"])

        let script = Process()
        script.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        script.arguments = ["python3", repositoryRoot.appending(path: "examples/sdk/send_events.py").path,
                            "--host", "http://127.0.0.1:\(daemon.port)", "--write-key", "app-key", "--users", "3"]
        let output = Pipe()
        script.standardOutput = output
        try script.run()
        let printed = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        script.waitUntilExit()
        #expect(script.terminationStatus == 0)
        #expect(printed.split(separator: "\n") == ["sdk-user-0", "sdk-user-1", "sdk-user-2"])

        try await TestClient.withClient(host: "127.0.0.1", port: daemon.port) { http in
            for index in 0..<3 {
                let response = try await http.execute(TestClient.Request(
                    "/v1/profiles/lookup?identifier=email:sdk-user-\(index)@example.com", method: .get, headers: [.authorization: "Bearer admin"]))
                let profile = try JSONParser.parse(Array(try #require(response.body).readableBytesView))
                #expect(profile["external_id"] == .string("sdk-user-\(index)"))
                #expect(profile["total_events"] == 3, "page (anonymous), identify and track merge into one profile")
                #expect(profile["total_revenue"] == "19.99")
                #expect(profile["lifecycle_stage"] == "customer")
                #expect(profile["consent"]?["ads"] == true)
            }
        }
        #expect(daemon.stop() == 0)
    }
}
