import Foundation
import GRDB
import HTTPTypes
import HummingbirdTesting
import NIOCore
import StratumJSON
import Testing

struct SegmentAPITests {
    @Test func listRefreshMembersAndAProfilesSegments() async throws {
        try await ServerHarness.run { server async throws in
            for user in ["u1", "u2", "u3"] {
                _ = try await server.send("/v1/track", #"{"userId":"\#(user)","event":"Purchase","properties":{"total":5}}"#)
            }
            _ = try await server.send("/v1/track", #"{"userId":"browser","event":"Viewed"}"#)
            let before = try await server.get("/v1/segments").json?["segments"]?.arrayValue ?? []
            #expect(before.map { $0["name"] } == ["buyers", "draft-one", "hand-picked"])
            // Before its first run an evaluated segment is stale; a static one has nothing to run.
            #expect(before.map { $0["status"] } == ["stale", "draft", "active"])
            #expect(before.map { $0["next_refresh_at"] } == [.null, .null, .null])

            #expect(try await server.post("/v1/segments/buyers/refresh", token: "admin-token").status == .forbidden)
            let refreshed = try await server.post("/v1/segments/buyers/refresh", token: "operator-token")
            #expect(refreshed.json == ["segment": "buyers", "profile_count": 3, "entered": 3, "exited": 0])
            #expect(try await server.post("/v1/segments/draft-one/refresh", token: "operator-token").status == .conflict)
            #expect(try await server.post("/v1/segments/buyer/refresh", token: "operator-token").json?["error"]?["message"] == "no segment buyer; did you mean buyers?")

            let listed = try await server.get("/v1/segments").json?["segments"]?.arrayValue?.first
            #expect(listed?["status"] == "active")
            #expect(listed?["profile_count"] == 3)
            #expect(listed?["last_computed_at"]?.stringValue != nil)

            let first = try #require(try await server.get("/v1/segments/buyers/members?limit=2").json)
            let cursor = try #require(first["next_cursor"]?.stringValue)
            let second = try #require(try await server.get("/v1/segments/buyers/members?limit=2&cursor=\(cursor)").json)
            let ids = (first["members"]?.arrayValue ?? []) + (second["members"]?.arrayValue ?? [])
            #expect(ids.count == 3)
            #expect(second["next_cursor"] == .null)
            // A cursor this API did not return is refused, not read as the end or the start.
            for made_up in ["garbage", "%00", "u1"] {
                let refused = try await server.get("/v1/segments/buyers/members?cursor=\(made_up)")
                #expect(refused.status == .badRequest, "\(made_up)")
                #expect(refused.json?["error"]?["code"] == "invalid_query")
            }
            #expect(ids.allSatisfy { $0["canonical_identity"]?["type"] == "external_id" })

            let u1 = try #require(try await server.get("/v1/profiles/lookup?identifier=external_id:u1").json?["id"]?.stringValue)
            let memberships = try await server.get("/v1/profiles/\(u1)/segments").json
            #expect(memberships?["segments"] == ["buyers"])
            // The responses are the documented ones.
            #expect(OpenAPITests.violations(memberships, "ProfileSegments") == [])
            #expect(OpenAPITests.violations(refreshed.json, "SegmentChangeSummary") == [])
            #expect(OpenAPITests.violations(first, "MemberPage") == [])
            #expect(OpenAPITests.violations(try await server.get("/v1/segments").json, "SegmentList") == [])
            // Other tenants see none of it.
            #expect(try await server.get("/v1/segments/buyers/members", token: "acme-admin").status == .notFound)

            // Memberships of a segment no longer defined are not the profile's segments.
            let database = try DatabaseQueue(path: server.store.path)
            try await database.write { try $0.execute(sql: "INSERT INTO segment_memberships (tenant_id, segment, profile_id, entered_at) VALUES ('default', 'retired', ?, 0)", arguments: [u1]) }
            #expect(try await server.get("/v1/profiles/\(u1)/segments").json?["segments"] == ["buyers"])

            // A run the store refuses is a JSON error too, not an empty 500.
            try await database.write { try $0.execute(sql: "CREATE TRIGGER refuse BEFORE DELETE ON segment_memberships BEGIN SELECT RAISE(ABORT, 'the disk is on fire'); END") }
            // u1 leaves buyers, so the run must delete a membership.
            try await database.write { try $0.execute(sql: "UPDATE profiles SET total_purchases = 0 WHERE external_id = 'u1'") }
            let failed = try await server.post("/v1/segments/buyers/refresh", token: "operator-token")
            #expect(failed.status == .internalServerError)
            #expect(failed.json?["error"]?["code"] == "internal_error")
            #expect(failed.json?["error"]?["message"]?.stringValue?.contains("the disk is on fire") == true)
            // SQLite's message, not the statement it came from.
            #expect(failed.json?["error"]?["message"]?.stringValue?.contains("DELETE") == false, "\(failed.text)")
        }
    }

    @Test func staticSegmentsTakeMembersByAPI() async throws {
        try await ServerHarness.run { server async throws in
            _ = try await server.send("/v1/identify", #"{"userId":"picked"}"#)
            let id = try #require(try await server.get("/v1/profiles/lookup?identifier=external_id:picked").json?["id"]?.stringValue)
            let added = try await server.post("/v1/segments/hand-picked/members", body: #"{"add":["\#(id)"]}"#, token: "operator-token")
            #expect(added.json == ["segment": "hand-picked", "profile_count": 1, "entered": 1, "exited": 0])
            let again = try await server.post("/v1/segments/hand-picked/members", body: #"{"add":["\#(id)"]}"#, token: "operator-token")
            #expect(again.json?["entered"] == 0)
            #expect(try await server.post("/v1/segments/hand-picked/members", body: #"{"add":["nobody"]}"#, token: "operator-token").status == .badRequest)
            #expect(try await server.post("/v1/segments/hand-picked/members", body: #"{"add":"x"}"#, token: "operator-token").json?["error"]?["path"] == "add")
            #expect(try await server.post("/v1/segments/buyers/members", body: #"{"add":[]}"#, token: "operator-token").status == .conflict)
            let both = try await server.post("/v1/segments/hand-picked/members", body: #"{"add":["\#(id)"],"remove":["\#(id)"]}"#, token: "operator-token")
            #expect(both.status == .badRequest)
            #expect(both.json?["error"]?["message"]?.stringValue?.contains("is both in add and in remove") == true, "\(both.text)")
            let removed = try await server.post("/v1/segments/hand-picked/members", body: #"{"remove":["\#(id)"]}"#, token: "operator-token")
            #expect(removed.json == ["segment": "hand-picked", "profile_count": 0, "entered": 0, "exited": 1])
            // What is not a profile of this tenant, or not the documented shape, is refused.
            for (body, path) in [(#"{"remove":["nobody"]}"#, "remove"), (#"{"ad":["\#(id)"]}"#, "ad"), ("[]", nil)] as [(String, String?)] {
                let refused = try await server.post("/v1/segments/hand-picked/members", body: body, token: "operator-token")
                #expect(refused.status == .badRequest, "\(body)")
                #expect(refused.json?["error"]?["path"]?.stringValue == path, "\(body)")
            }
            // Another tenant's profile is no profile here.
            #expect(try await server.post("/v1/segments/hand-picked/members", body: #"{"remove":["\#(id)"]}"#, token: "acme-admin").status != .ok)
            // An id merged into another stands for its survivor.
            _ = try await server.send("/v1/track", #"{"anonymousId":"later","event":"E"}"#)
            let absorbed = try #require(try await server.get("/v1/profiles/lookup?identifier=anonymous_id:later").json?["id"]?.stringValue)
            _ = try await server.send("/v1/identify", #"{"anonymousId":"later","userId":"picked"}"#)
            let viaAbsorbed = try await server.post("/v1/segments/hand-picked/members", body: #"{"add":["\#(absorbed)"]}"#, token: "operator-token")
            #expect(viaAbsorbed.json?["entered"] == 1)
            #expect(try await server.get("/v1/segments/hand-picked/members").json?["members"]?.arrayValue?.first?["profile_id"] == .string(id))
        }
    }
}

extension ServerHarness.Context {
    func post(_ path: String, body: String = "", token: String) async throws -> TestResponse {
        try await client.execute(uri: path, method: .post, headers: [.authorization: "Bearer \(token)", .contentType: "application/json"], body: ByteBuffer(string: body))
    }
}
