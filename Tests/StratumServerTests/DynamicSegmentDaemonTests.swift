import Foundation
import HummingbirdTesting
import NIOCore
import StratumJSON
import StratumTestSupport
import Testing

/// A dynamic segment in a running daemon follows ingestion without waiting
/// for its schedule: touched profiles are re-evaluated continuously.
struct DynamicSegmentDaemonTests {
    static let basic = "Basic " + Data("app-key:".utf8).base64EncodedString()

    /// Runs a daemon over `files` (plus a source with write key app-key and an
    /// admin token "admin" with read and write scopes) and calls `body` with a client.
    static func withDaemon(_ files: [String: String], _ body: @escaping @Sendable (TestClient) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appending(path: "stratum-dynamic-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory.appending(path: "definitions"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let base = [
            "source.yaml": "kind: Source\nname: app\ntype: server_api\nwrite_key: ${env:APP_KEY}\n",
            "stratum.yaml": "kind: Settings\nname: stratum\nadmin_tokens: [{name: t, token: \"${env:ADMIN}\", scopes: [read, write]}]\n",
        ]
        for (name, text) in base.merging(files, uniquingKeysWith: { $1 }) {
            try Data(text.utf8).write(to: directory.appending(path: "definitions/\(name)"))
        }
        let daemon = try DaemonProcess(
            arguments: ["--definitions", directory.appending(path: "definitions").path, "--store", directory.appending(path: "s.sqlite").path],
            environment: ["APP_KEY": "app-key", "ADMIN": "admin", "LOG_LEVEL": "error"])
        try await TestClient.withClient(host: "127.0.0.1", port: daemon.port, operation: body)
        #expect(daemon.stop() == 0)
    }

    /// Tracks a purchase by `user` and returns the profile's id.
    static func purchase(_ http: TestClient, user: String) async throws -> String {
        let response = try await http.execute(TestClient.Request(
            "/v1/track", method: .post, headers: [.authorization: basic, .contentType: "application/json"],
            body: ByteBuffer(string: #"{"userId":"\#(user)","event":"Purchase","properties":{"total":3}}"#)))
        #expect(response.status == .ok)
        let lookup = try await http.execute(TestClient.Request("/v1/profiles/lookup?identifier=external_id:\(user)", method: .get, headers: [.authorization: "Bearer admin"]))
        let body = try #require(lookup.body)
        return try #require(try JSONParser.parse(Array(body.readableBytesView))["id"]?.stringValue)
    }

    /// Polls the profile's segments for up to ten seconds until they are `expected`; returns the last answer.
    static func segments(_ http: TestClient, of id: String, awaiting expected: JSONValue) async throws -> JSONValue {
        var segments: JSONValue = []
        for _ in 0..<100 where segments != expected {
            try await Task.sleep(for: .milliseconds(100))
            let answer = try await http.execute(TestClient.Request("/v1/profiles/\(id)/segments", method: .get, headers: [.authorization: "Bearer admin"]))
            let body = try #require(answer.body)
            segments = try JSONParser.parse(Array(body.readableBytesView))["segments"] ?? []
        }
        return segments
    }

    @Test(.timeLimit(.minutes(2)))
    func aPurchaseMakesTheBuyerAMemberBeforeTheNextScheduledRun() async throws {
        let buyers = "kind: Segment\nname: buyers\nschedule: {every: 1d}\nrules:\n  conditions:\n    - {field: total_purchases, operator: greater_than, value: 0}\n"
        try await Self.withDaemon(["buyers.yaml": buyers]) { http in
            let id = try await Self.purchase(http, user: "fresh")
            #expect(try await Self.segments(http, of: id, awaiting: ["buyers"]) == ["buyers"])
        }
    }

    @Test(.timeLimit(.minutes(2)))
    func addingToAStaticSegmentReachesTheDynamicSegmentsThatReferToIt() async throws {
        let files = [
            "picked.yaml": "kind: Segment\nname: picked\nsegment_type: static\n",
            "picked-buyers.yaml": """
                kind: Segment
                name: picked-buyers
                schedule: {every: 1d}
                rules:
                  conditions:
                    - {field: segment, operator: equals, value: picked}
                    - {field: total_purchases, operator: greater_than, value: 0}

                """,
        ]
        try await Self.withDaemon(files) { http in
            let id = try await Self.purchase(http, user: "fresh")
            // Let the purchase's own incremental run pass (every 250 ms): it finds the profile outside "picked".
            try await Task.sleep(for: .seconds(1))
            let added = try await http.execute(TestClient.Request(
                "/v1/segments/picked/members", method: .post, headers: [.authorization: "Bearer admin", .contentType: "application/json"],
                body: ByteBuffer(string: #"{"add":["\#(id)"]}"#)))
            #expect(added.status == .ok)
            #expect(try await Self.segments(http, of: id, awaiting: ["picked", "picked-buyers"]) == ["picked", "picked-buyers"])
        }
    }
}
