import Foundation
import HummingbirdTesting
import NIOCore
import StratumJSON
import StratumTestSupport
import Testing

/// A dynamic segment in a running daemon follows ingestion without waiting
/// for its schedule: touched profiles are re-evaluated continuously.
struct DynamicSegmentDaemonTests {
    @Test(.timeLimit(.minutes(2)))
    func aPurchaseMakesTheBuyerAMemberBeforeTheNextScheduledRun() async throws {
        let directory = FileManager.default.temporaryDirectory.appending(path: "stratum-dynamic-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory.appending(path: "definitions"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let files = [
            "source.yaml": "kind: Source\nname: app\ntype: server_api\nwrite_key: ${env:APP_KEY}\n",
            "stratum.yaml": "kind: Settings\nname: stratum\nadmin_tokens: [{name: t, token: \"${env:ADMIN}\", scopes: [read]}]\n",
            "buyers.yaml": "kind: Segment\nname: buyers\nschedule: {every: 1d}\nrules:\n  conditions:\n    - {field: total_purchases, operator: greater_than, value: 0}\n",
        ]
        for (name, text) in files { try Data(text.utf8).write(to: directory.appending(path: "definitions/\(name)")) }
        let daemon = try DaemonProcess(
            arguments: ["--definitions", directory.appending(path: "definitions").path, "--store", directory.appending(path: "s.sqlite").path],
            environment: ["APP_KEY": "app-key", "ADMIN": "admin", "LOG_LEVEL": "error"])
        try await TestClient.withClient(host: "127.0.0.1", port: daemon.port) { http in
            let basic = "Basic " + Data("app-key:".utf8).base64EncodedString()
            let response = try await http.execute(TestClient.Request(
                "/v1/track", method: .post, headers: [.authorization: basic, .contentType: "application/json"],
                body: ByteBuffer(string: #"{"userId":"fresh","event":"Purchase","properties":{"total":3}}"#)))
            #expect(response.status == .ok)
            let lookup = try await http.execute(TestClient.Request("/v1/profiles/lookup?identifier=external_id:fresh", method: .get, headers: [.authorization: "Bearer admin"]))
            let lookupBody = try #require(lookup.body)
            let id = try #require(try JSONParser.parse(Array(lookupBody.readableBytesView))["id"]?.stringValue)
            var segments: JSONValue = []
            for _ in 0..<100 where segments != ["buyers"] {
                try await Task.sleep(for: .milliseconds(100))
                let answer = try await http.execute(TestClient.Request("/v1/profiles/\(id)/segments", method: .get, headers: [.authorization: "Bearer admin"]))
                let body = try #require(answer.body)
                segments = try JSONParser.parse(Array(body.readableBytesView))["segments"] ?? []
            }
            #expect(segments == ["buyers"])
        }
        #expect(daemon.stop() == 0)
    }

    @Test(.timeLimit(.minutes(2)))
    func addingToAStaticSegmentReachesTheDynamicSegmentsThatReferToIt() async throws {
        let directory = FileManager.default.temporaryDirectory.appending(path: "stratum-dynamic-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory.appending(path: "definitions"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let files = [
            "source.yaml": "kind: Source\nname: app\ntype: server_api\nwrite_key: ${env:APP_KEY}\n",
            "stratum.yaml": "kind: Settings\nname: stratum\nadmin_tokens: [{name: t, token: \"${env:ADMIN}\", scopes: [read, write]}]\n",
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
        for (name, text) in files { try Data(text.utf8).write(to: directory.appending(path: "definitions/\(name)")) }
        let daemon = try DaemonProcess(
            arguments: ["--definitions", directory.appending(path: "definitions").path, "--store", directory.appending(path: "s.sqlite").path],
            environment: ["APP_KEY": "app-key", "ADMIN": "admin", "LOG_LEVEL": "error"])
        try await TestClient.withClient(host: "127.0.0.1", port: daemon.port) { http in
            let basic = "Basic " + Data("app-key:".utf8).base64EncodedString()
            let tracked = try await http.execute(TestClient.Request(
                "/v1/track", method: .post, headers: [.authorization: basic, .contentType: "application/json"],
                body: ByteBuffer(string: #"{"userId":"fresh","event":"Purchase","properties":{"total":3}}"#)))
            #expect(tracked.status == .ok)
            let lookup = try await http.execute(TestClient.Request("/v1/profiles/lookup?identifier=external_id:fresh", method: .get, headers: [.authorization: "Bearer admin"]))
            let lookupBody = try #require(lookup.body)
            let id = try #require(try JSONParser.parse(Array(lookupBody.readableBytesView))["id"]?.stringValue)
            // Let the purchase's own incremental run pass (every 250 ms): it finds the profile outside "picked".
            try await Task.sleep(for: .seconds(1))
            let added = try await http.execute(TestClient.Request(
                "/v1/segments/picked/members", method: .post, headers: [.authorization: "Bearer admin", .contentType: "application/json"],
                body: ByteBuffer(string: #"{"add":["\#(id)"]}"#)))
            #expect(added.status == .ok)
            var segments: JSONValue = []
            for _ in 0..<100 where segments != ["picked", "picked-buyers"] {
                try await Task.sleep(for: .milliseconds(100))
                let answer = try await http.execute(TestClient.Request("/v1/profiles/\(id)/segments", method: .get, headers: [.authorization: "Bearer admin"]))
                let body = try #require(answer.body)
                segments = try JSONParser.parse(Array(body.readableBytesView))["segments"] ?? []
            }
            #expect(segments == ["picked", "picked-buyers"])
        }
        #expect(daemon.stop() == 0)
    }
}
