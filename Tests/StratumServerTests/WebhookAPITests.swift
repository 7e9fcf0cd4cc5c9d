import Foundation
import HTTPTypes
import StratumJSON
import Testing

struct WebhookAPITests {
    @Test func listDeliveriesReplayTestAndTheOperationsLimit() async throws {
        try await ServerHarness.run { server async throws in
            let list = try await server.get("/v1/webhooks").json
            #expect(list?["webhooks"]?.arrayValue?.map { $0["name"] } == ["hook"])
            #expect(list?["webhooks"]?.arrayValue?.first?["deliveries"]?["pending"] == 0)
            #expect(OpenAPITests.violations(list, "WebhookList") == [])
            #expect(try await server.get("/v1/webhooks/hook/deliveries?status=dead").json == ["deliveries": []])
            #expect(try await server.get("/v1/webhooks/hook/deliveries?status=lost").status == .badRequest)
            #expect(try await server.get("/v1/webhooks/nope/deliveries").status == .notFound)
            #expect(try await server.post("/v1/webhooks/hook/replay", body: "{}", token: "admin-token").status == .forbidden)
            #expect(try await server.post("/v1/webhooks/hook/replay", body: "{}", token: "operator-token").json == ["webhook": "hook", "replayed": 0])
            // A wrong member is refused, never read as "every dead letter".
            for (body, path) in [(#"{"id": 5}"#, "id"), (#"{"all": "yes"}"#, "all"), (#"{"ad": true}"#, "ad")] {
                let refused = try await server.post("/v1/webhooks/hook/replay", body: body, token: "operator-token")
                #expect(refused.status == .badRequest, "\(body)")
                #expect(refused.json?["error"]?["path"] == .string(path), "\(body)")
            }
            let huge = try await server.post("/v1/webhooks/hook/replay", body: "{\"id\": \"" + String(repeating: "x", count: 5_000) + "\"}", token: "operator-token")
            #expect(huge.status == .contentTooLarge)
            #expect(huge.json?["error"]?["code"] != nil)
            // Nothing listens on port 9: the test send reports the connection error.
            let test = try await server.post("/v1/webhooks/hook/test", token: "operator-token").json
            #expect(test?["status"] == .null)
            #expect(test?["error"]?.stringValue?.isEmpty == false)
            #expect(test?["delivery_id"]?.stringValue?.hasPrefix("msg_test_") == true)
            // Other tenants see none of it.
            #expect(try await server.get("/v1/webhooks", token: "acme-admin").json == ["webhooks": []])
            // 30 webhook operations per minute per tenant; this test has used 11 for the default tenant.
            var statuses: [HTTPResponse.Status] = []
            for _ in 0..<30 { statuses.append(try await server.get("/v1/webhooks").status) }
            #expect(statuses.contains(.tooManyRequests))
        }
    }
}
