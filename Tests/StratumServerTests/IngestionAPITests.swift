import CompressNIO
import Foundation
import GRDB
import HTTPTypes
import NIOCore
import StratumJSON
import StratumTestSupport
import Testing

struct IngestionAPITests {
    @Test func everyEndpointAcceptsItsMessageType() async throws {
        try await ServerHarness.run { server async throws in
            let calls = [
                ("/v1/identify", #"{"userId":"u1","traits":{"email":"u1@example.com"},"messageId":"identify-1"}"#),
                ("/v1/track", #"{"userId":"u1","event":"Purchase","properties":{"total":10},"messageId":"track-1"}"#),
                ("/v1/page", #"{"anonymousId":"a1","name":"Home","messageId":"page-1"}"#),
                ("/v1/screen", #"{"anonymousId":"a1","name":"Settings","messageId":"screen-1"}"#),
                ("/v1/group", #"{"userId":"u1","groupId":"acme-inc","traits":{"plan":"pro"},"messageId":"group-1"}"#),
                ("/v1/alias", #"{"userId":"u1","previousId":"a1","messageId":"alias-1"}"#),
                ("/v1/batch", #"{"batch":[{"type":"track","userId":"u1","event":"A","messageId":"batch-1"},{"type":"page","userId":"u1","messageId":"batch-2"}]}"#),
            ]
            for (path, body) in calls {
                let response = try await server.send(path, body)
                #expect(response.status == .ok, "\(path): \(response.text)")
                #expect(response.json == ["success": true])
            }
            let keys = ["identify-1", "track-1", "page-1", "screen-1", "group-1", "alias-1", "batch-1", "batch-2"]
            #expect(try await server.countEvents(keys) == Dictionary(uniqueKeysWithValues: keys.map { ($0, 1) }))
            // alias joined the anonymous visitor and the user: one profile holds everything.
            let profile = try await server.get("/v1/profiles/lookup?identifier=anonymous_id:a1").json
            #expect(profile?["total_events"] == 8)
            #expect(profile?["external_id"] == "u1")
        }
    }

    @Test func theWriteKeyWorksAsBasicUserBearerTokenOrBodyField() async throws {
        try await ServerHarness.run { server async throws in
            let basic = try await server.send("/v1/track", #"{"userId":"u","event":"E","messageId":"basic"}"#)
            let bearer = try await server.send("/v1/track", #"{"userId":"u","event":"E","messageId":"bearer"}"#, key: nil, headers: [.authorization: "Bearer web-key"])
            let body = try await server.send("/v1/track", #"{"writeKey":"web-key","userId":"u","event":"E","messageId":"body"}"#, key: nil)
            let basicWithPassword = try await server.send("/v1/track", #"{"userId":"u","event":"E","messageId":"password"}"#, key: nil, headers: [.authorization: "Basic " + Data("web-key:ignored".utf8).base64EncodedString()])
            #expect([basic, bearer, body, basicWithPassword].map(\.status) == [.ok, .ok, .ok, .ok])
            #expect(try await server.countEvents(["basic", "bearer", "body", "password"]).values.allSatisfy { $0 == 1 })
        }
    }

    @Test func aRepeatedMessageIDIsStoredOnce() async throws {
        try await ServerHarness.run { server async throws in
            let body = #"{"userId":"u","event":"Purchase","properties":{"total":5},"messageId":"once"}"#
            for _ in 0..<3 { #expect(try await server.send("/v1/track", body).status == .ok) }
            let batch = #"{"batch":[{"type":"track","userId":"u","event":"Purchase","properties":{"total":5},"messageId":"once"}]}"#
            #expect(try await server.send("/v1/batch", batch).status == .ok)
            #expect(try await server.countEvents(["once"]) == ["once": 1])
            let profile = try await server.get("/v1/profiles/lookup?identifier=external_id:u").json
            #expect(profile?["total_revenue"] == "5")
            #expect(profile?["total_purchases"] == 1)
        }
    }

    @Test func aMissingMessageIDIsAssignedSoEveryCallIsStored() async throws {
        try await ServerHarness.run { server async throws in
            let body = #"{"userId":"u","event":"E"}"#
            for _ in 0..<2 { #expect(try await server.send("/v1/track", body).status == .ok) }
            #expect(try await server.get("/v1/profiles/lookup?identifier=external_id:u").json?["total_events"] == 2)
        }
    }

    @Test func clientClockSkewIsCorrected() async throws {
        try await ServerHarness.run { server async throws in
            // The client's clock is ten days fast; the event happened a minute before it was sent.
            let skewed = Date().addingTimeInterval(10 * 86_400)
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            let body = #"{"batch":[{"type":"track","userId":"skew","event":"E","timestamp":"\#(formatter.string(from: skewed.addingTimeInterval(-60)))"}],"sentAt":"\#(formatter.string(from: skewed))"}"#
            #expect(try await server.send("/v1/batch", body).status == .ok)
            let profile = try #require(try await server.get("/v1/profiles/lookup?identifier=external_id:skew").json)
            let id = try #require(profile["id"]?.stringValue)
            let event = try #require(try await server.get("/v1/profiles/\(id)/events").json?["events"]?.arrayValue?.first)
            let eventTime = try #require(formatter.date(from: event["event_time"]?.stringValue ?? ""))
            let receivedAt = try #require(formatter.date(from: event["received_at"]?.stringValue ?? ""))
            #expect(abs(receivedAt.timeIntervalSince(eventTime) - 60) < 0.01)
        }
    }

    @Test func aSourceOverItsRateLimitGets429WithRetryAfter() async throws {
        try await ServerHarness.run { server async throws in
            let batch = #"{"batch":[{"type":"track","anonymousId":"a","event":"E"},{"type":"track","anonymousId":"a","event":"E"},{"type":"track","anonymousId":"a","event":"E"}]}"#
            // A batch counts once, however many messages it holds.
            #expect(try await server.send("/v1/batch", batch, key: "limited-key").status == .ok)
            #expect(try await server.send("/v1/track", #"{"anonymousId":"a","event":"E"}"#, key: "limited-key").status == .ok)
            let limited = try await server.send("/v1/track", #"{"anonymousId":"a","event":"E","messageId":"limited"}"#, key: "limited-key")
            #expect(limited.status == .tooManyRequests)
            #expect(limited.headers[.retryAfter].flatMap(Int.init).map { (1...30).contains($0) } == true)
            #expect(limited.json?["error"]?["code"] == "rate_limited")
            #expect(try await server.countEvents(["limited"]) == ["limited": 0])
            // Other sources are not affected.
            #expect(try await server.send("/v1/track", #"{"anonymousId":"a","event":"E"}"#).status == .ok)
        }
    }

    @Test func writeKeysWriteOnlyTheirTenantAndTokensReadOnlyTheirs() async throws {
        try await ServerHarness.run { server async throws in
            #expect(try await server.send("/v1/track", #"{"userId":"shared-id","event":"E","messageId":"acme-1"}"#, key: "acme-key").status == .ok)
            #expect(try await server.countEvents(["acme-1"], tenant: "acme") == ["acme-1": 1])
            #expect(try await server.countEvents(["acme-1"], tenant: "default") == ["acme-1": 0])
            // The default tenant's token cannot see acme's profile, by identifier or by id.
            #expect(try await server.get("/v1/profiles/lookup?identifier=external_id:shared-id").status == .notFound)
            let acmeProfile = try #require(try await server.get("/v1/profiles/lookup?identifier=external_id:shared-id", token: "acme-admin").json)
            let id = try #require(acmeProfile["id"]?.stringValue)
            #expect(acmeProfile["tenant"] == "acme")
            #expect(try await server.get("/v1/profiles/\(id)").status == .notFound)
            #expect(try await server.get("/v1/profiles/\(id)/events").status == .notFound)
            // The same messageId in another tenant is a different event.
            #expect(try await server.send("/v1/track", #"{"userId":"shared-id","event":"E","messageId":"acme-1"}"#).status == .ok)
            #expect(try await server.countEvents(["acme-1"], tenant: "default") == ["acme-1": 1])
        }
    }
}

struct ProfileAPITests {
    /// Keys and tokens are compared once resolved: two tenants' references that
    /// hold the same value would route or authorise at random, so the server
    /// refuses to start and says which ones collide.
    @Test(arguments: [
        (["ACME_KEY": "web-key"], "have the same write key"),
        (["ACME_ADMIN": "admin-token"], "are the same token"),
    ])
    func aKeyOrTokenOfTwoTenantsIsRefusedAtStart(_ environment: [String: String], _ message: String) async throws {
        do {
            try await ServerHarness.run(environment: environment) { _ in Issue.record("the server started") }
        } catch {
            #expect("\(error)".contains(message), "\(error)")
        }
    }

    @Test func aConsentStampedInTheFutureIsNotInForceNow() async throws {
        try await ServerHarness.run { server async throws in
            // A device clock in 2099 grants ads; a later message, stamped now, revokes it.
            _ = try await server.send("/v1/identify", #"{"userId":"early","timestamp":"2099-01-01T00:00:00Z","context":{"consent":{"ads":true}}}"#)
            _ = try await server.send("/v1/identify", #"{"userId":"early","context":{"consent":{"ads":false}}}"#)
            let profile = try #require(try await server.get("/v1/profiles/lookup?identifier=external_id:early").json)
            #expect(profile["consent"] == ["ads": false])
        }
    }

    /// Another process holding the store (an import, a backup) is a 503 the
    /// SDK retries after `Retry-After`, not a 500; nothing is stored.
    @Test func aStoreHeldByAnotherProcessIsA503() async throws {
        try await ServerHarness.run { server async throws in
            let other = try DatabaseQueue(path: server.store.path)
            let (holding, release) = (Locked(false), Locked(false))
            let holder = Task.detached {
                try await other.writeWithoutTransaction { db in
                    try db.execute(sql: "BEGIN IMMEDIATE")
                    holding.withLock { $0 = true }
                    while !release.withLock({ $0 }) { Thread.sleep(forTimeInterval: 0.05) }
                    try db.execute(sql: "ROLLBACK")
                }
            }
            while !holding.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(20)) }
            // The writer waits out SQLite's busy timeout (10 s), then gives up.
            let response = try await server.send("/v1/track", #"{"userId":"u","event":"E","messageId":"while-locked"}"#)
            release.withLock { $0 = true }
            try await holder.value
            #expect(response.status == .serviceUnavailable, "\(response.text)")
            #expect(response.json?["error"]?["code"] == "store_busy")
            #expect(response.headers[.retryAfter] == "1")
            #expect(try await server.countEvents(["while-locked"]) == ["while-locked": 0])
            #expect(try await server.send("/v1/track", #"{"userId":"u","event":"E","messageId":"after"}"#).status == .ok)
        }
    }

    /// A later `all` revocation is every type's state, as the webhook gate reads it.
    @Test func theGlobalToggleOverridesEarlierRecordsInTheConsentView() async throws {
        try await ServerHarness.run { server async throws in
            _ = try await server.send("/v1/identify", #"{"userId":"toggler","timestamp":"2026-01-01T10:00:00Z","context":{"consent":{"ads":true,"email":true}}}"#)
            _ = try await server.send("/v1/identify", #"{"userId":"toggler","timestamp":"2026-01-01T11:00:00Z","context":{"consent":{"all":false}}}"#)
            _ = try await server.send("/v1/identify", #"{"userId":"toggler","timestamp":"2026-01-01T12:00:00Z","context":{"consent":{"email":true}}}"#)
            let profile = try #require(try await server.get("/v1/profiles/lookup?identifier=external_id:toggler").json)
            #expect(profile["consent"] == ["ads": false, "all": false, "email": true], "\(profile["consent"] ?? .null)")
        }
    }

    @Test func lookupHashesTheIdentifierAndReturnsTheProfile() async throws {
        try await ServerHarness.run { server async throws in
            _ = try await server.send("/v1/identify", #"{"userId":"jane","traits":{"email":"Jane.Doe@Example.com"},"context":{"consent":{"email":true,"ads":false}}}"#)
            let profile = try #require(try await server.get("/v1/profiles/lookup?identifier=email:%20jane.doe@EXAMPLE.com").json)
            #expect(profile["external_id"] == "jane")
            #expect(profile["lifecycle_stage"] == "known")
            #expect(profile["consent"] == ["ads": false, "email": true])
            let identifiers = profile["identifiers"]?.arrayValue ?? []
            #expect(identifiers.contains { $0["type"] == "email" && $0["value"] == nil })
            let hash = try #require(identifiers.first { $0["type"] == "email" }?["hash"]?.stringValue)
            #expect(try await server.get("/v1/profiles/lookup?identifier=email:sha256:\(hash)").json?["id"] == profile["id"])
            #expect(try await server.get("/v1/profiles/lookup?identifier=email:sha256:zz").status == .badRequest)
            #expect(try await server.get("/v1/profiles/lookup?identifier=email:nobody@example.com").status == .notFound)
            #expect(try await server.get("/v1/profiles/lookup?identifier=email").status == .badRequest)
            #expect(try await server.get("/v1/profiles/lookup?identifier=email:not-an-email").json?["error"]?["code"] == "invalid_identifier")
        }
    }

    @Test func anAbsorbedProfileIDRedirectsToItsSurvivor() async throws {
        try await ServerHarness.run { server async throws in
            _ = try await server.send("/v1/track", #"{"anonymousId":"first","event":"E"}"#)
            try await Task.sleep(for: .milliseconds(5))
            _ = try await server.send("/v1/track", #"{"anonymousId":"second","event":"E"}"#)
            let first = try #require(try await server.get("/v1/profiles/lookup?identifier=anonymous_id:first").json?["id"]?.stringValue)
            let second = try #require(try await server.get("/v1/profiles/lookup?identifier=anonymous_id:second").json?["id"]?.stringValue)
            _ = try await server.send("/v1/identify", #"{"anonymousId":"second","traits":{"email":"both@example.com"}}"#)
            _ = try await server.send("/v1/identify", #"{"anonymousId":"first","traits":{"email":"both@example.com"}}"#)
            let redirect = try await server.get("/v1/profiles/\(second)")
            #expect(redirect.status == .permanentRedirect)
            #expect(redirect.headers[.location] == "/v1/profiles/\(first)")
            #expect(try await server.get("/v1/profiles/\(first)").json?["total_events"] == 4)
            let segments = try await server.get("/v1/profiles/\(second)/segments")
            #expect(segments.status == .permanentRedirect)
            #expect(segments.headers[.location] == "/v1/profiles/\(first)/segments")
            // A client paging through the events keeps its place.
            let cursor = try #require(try await server.get("/v1/profiles/\(first)/events?limit=2").json?["next_cursor"]?.stringValue)
            let events = try await server.get("/v1/profiles/\(second)/events?limit=2&cursor=\(cursor)")
            #expect(events.status == .permanentRedirect)
            #expect(events.headers[.location] == "/v1/profiles/\(first)/events?limit=2&cursor=\(cursor)")
        }
    }

    /// Batch-level context merges into each item recursively: an item's
    /// context.device.type does not erase the batch's context.device.id.
    @Test func batchContextMergesIntoEachItemRecursively() async throws {
        try await ServerHarness.run { server async throws in
            let answer = try await server.send("/v1/batch", #"{"context":{"device":{"id":"dev-1"},"library":{"name":"lib"}},"batch":[{"type":"track","anonymousId":"a","event":"E","context":{"device":{"type":"ios"},"library":"own"}}]}"#)
            #expect(answer.status == .ok)
            let id = try #require(try await server.get("/v1/profiles/lookup?identifier=device_id:dev-1").json?["id"]?.stringValue)
            let events = try await server.get("/v1/profiles/\(id)/events").json?["events"]?.arrayValue ?? []
            #expect(events.first?["context"] == ["device": ["id": "dev-1", "type": "ios"], "library": "own"])
        }
    }

    @Test func eventsArePagedWithACursor() async throws {
        try await ServerHarness.run { server async throws in
            var batch: [String] = []
            for index in 0..<5 {
                batch.append(#"{"type":"track","userId":"pager","event":"E\#(index)","timestamp":"2026-01-0\#(index + 1)T00:00:00Z","messageId":"p\#(index)"}"#)
            }
            #expect(try await server.send("/v1/batch", #"{"batch":[\#(batch.joined(separator: ","))]}"#).status == .ok)
            let id = try #require(try await server.get("/v1/profiles/lookup?identifier=external_id:pager").json?["id"]?.stringValue)
            var names: [String] = []
            var cursor: String?
            var pages = 0
            repeat {
                let page = try #require(try await server.get("/v1/profiles/\(id)/events?limit=2" + (cursor.map { "&cursor=\($0)" } ?? "")).json)
                names += (page["events"]?.arrayValue ?? []).compactMap { $0["event_name"]?.stringValue }
                cursor = page["next_cursor"]?.stringValue
                pages += 1
            } while cursor != nil && pages < 10
            #expect(names == ["E4", "E3", "E2", "E1", "E0"])
            #expect(pages == 3)
            #expect(try await server.get("/v1/profiles/\(id)/events?limit=0").status == .badRequest)
            #expect(try await server.get("/v1/profiles/\(id)/events?cursor=garbage!").status == .badRequest)
        }
    }

    @Test func theReadAPINeedsAReadScopedAdminToken() async throws {
        try await ServerHarness.run { server async throws in
            #expect(try await server.get("/v1/profiles/lookup?identifier=external_id:u", token: nil).status == .unauthorized)
            #expect(try await server.get("/v1/profiles/lookup?identifier=external_id:u", token: "web-key").status == .unauthorized)
            #expect(try await server.get("/v1/profiles/lookup?identifier=external_id:u", token: "writer-token").status == .forbidden)
        }
    }

    @Test func lookupsAreLimitedTo300PerMinutePerTenant() async throws {
        try await ServerHarness.run { server async throws in
            var statuses: [HTTPResponse.Status] = []
            let started = Date()
            for _ in 0..<320 { statuses.append(try await server.get("/v1/profiles/lookup?identifier=external_id:nobody").status) }
            // The bucket refills continuously (5 per second), so a slow run earns a few more.
            let refill = Int(Date().timeIntervalSince(started) * 5) + 1
            #expect(statuses.prefix(300).allSatisfy { $0 == .notFound })
            #expect((300...300 + refill).contains(statuses.count { $0 == .notFound }))
            // The first refusal comes once the 300 are spent (the last request may find a
            // token refilled if the machine paused before it).
            #expect(statuses.firstIndex(of: .tooManyRequests).map { (300...300 + refill).contains($0) } == true)
            // Another tenant has its own budget.
            #expect(try await server.get("/v1/profiles/lookup?identifier=external_id:nobody", token: "acme-admin").status == .notFound)
        }
    }

    @Test func healthReadinessAndMetricsAnswer() async throws {
        try await ServerHarness.run { server async throws in
            #expect(try await server.get("/healthz", token: nil).json == ["status": "ok"])
            #expect(try await server.get("/readyz", token: nil).json == ["status": "ready"])
            _ = try await server.send("/v1/batch", #"{"batch":[{"type":"track","userId":"m","event":"E"},{"type":"page","userId":"m"}]}"#)
            _ = try await server.send("/v1/track", #"{"event":"E"}"#)
            let metrics = try await server.get("/metrics", token: nil).text
            #expect(metrics.contains("stratum_ingested_messages_total 2"))
            #expect(metrics.contains("stratum_rejected_requests_total 1"))
        }
    }
}

struct TrackingPlanAndPixelTests {
    @Test func aTrackingPlanRejectsBadPropertiesAndUnplannedEvents() async throws {
        try await ServerHarness.run(extra: [
            "planned.yaml": """
                kind: Source
                name: planned
                type: server_api
                write_key: ${env:PLANNED_KEY}
                tracking_plan:
                  unplanned_events: reject
                  events:
                    Purchase:
                      type: object
                      required: [total]
                      properties:
                        total: {type: number, minimum: 0}
                """,
        ], environment: ["PLANNED_KEY": "planned-key"]) { server async throws in
            let good = try await server.send("/v1/track", #"{"userId":"u","event":"Purchase","properties":{"total":5}}"#, key: "planned-key")
            #expect(good.status == .ok)
            // In a batch the violating message alone is refused; the others are stored.
            let negative = try await server.send("/v1/batch", #"{"batch":[{"type":"track","userId":"u","event":"Purchase","properties":{"total":5},"messageId":"planned-ok"},{"type":"track","userId":"u","event":"Purchase","properties":{"total":-1},"messageId":"planned-bad"}]}"#, key: "planned-key")
            #expect(negative.status == .ok)
            let rejected = negative.json?["rejected"]?.arrayValue ?? []
            #expect(rejected.count == 1)
            #expect(rejected.first?["index"] == 1)
            #expect(rejected.first?["code"] == "tracking_plan_violation")
            #expect(rejected.first?["path"] == "batch[1].properties.total")
            #expect(rejected.first?["message"]?.stringValue?.contains("less than the minimum 0") == true)
            #expect(try await server.countEvents(["planned-ok", "planned-bad"]) == ["planned-ok": 1, "planned-bad": 0])
            let allBad = try await server.send("/v1/batch", #"{"batch":[{"type":"track","userId":"u","event":"Purchase","properties":{"total":-1}}]}"#, key: "planned-key")
            #expect(allBad.status == .badRequest)
            #expect(allBad.json?["error"]?["code"] == "tracking_plan_violation")
            #expect(allBad.json?["error"]?["path"] == "batch[0].properties.total")
            let missing = try await server.send("/v1/track", #"{"userId":"u","event":"Purchase"}"#, key: "planned-key")
            #expect(missing.json?["error"]?["message"] == "missing required key \"total\"")
            let unplanned = try await server.send("/v1/track", #"{"userId":"u","event":"Purchace"}"#, key: "planned-key")
            #expect(unplanned.status == .badRequest)
            #expect(unplanned.json?["error"]?["message"]?.stringValue?.hasSuffix("(did you mean \"Purchase\"?)") == true)
            // Sources without a plan accept anything.
            #expect(try await server.send("/v1/track", #"{"userId":"u","event":"Purchace"}"#).status == .ok)
        }
    }

    @Test func thePixelEndpointAcceptsBase64MessagesFromPixelSourcesOnly() async throws {
        try await ServerHarness.run { server async throws in
            let message = Data(#"{"writeKey":"limited-key","anonymousId":"px-1","event":"Viewed","messageId":"pixel-1"}"#.utf8).base64EncodedString()
            let urlSafe = message.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
            let response = try await server.get("/v1/pixel/track?data=\(urlSafe)", token: nil)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "image/gif")
            #expect(Array(response.body.readableBytesView.prefix(6)) == Array("GIF89a".utf8))
            #expect(try await server.countEvents(["pixel-1"]) == ["pixel-1": 1])
            // A server-side key must not travel in URLs.
            let serverKey = Data(#"{"writeKey":"web-key","anonymousId":"px-1","event":"Viewed"}"#.utf8).base64EncodedString()
            #expect(try await server.get("/v1/pixel/track?data=\(serverKey)", token: nil).status == .forbidden)
            #expect(try await server.get("/v1/pixel/track?data=!!!", token: nil).status == .badRequest)
            #expect(try await server.get("/v1/pixel/alias?data=\(urlSafe)", token: nil).status == .notFound)
        }
    }
}

/// What Segment's own client SDKs send, unchanged: analytics.js posts
/// text/plain to `/v1/t` (and friends) from another origin, the mobile SDKs
/// post gzipped batches to `/v1/b`.
struct SegmentClientSDKTests {
    @Test func theOneLetterPathsTakeTheirMessageTypes() async throws {
        try await ServerHarness.run { server async throws in
            let calls = [
                ("/v1/t", #"{"userId":"s1","event":"Viewed","messageId":"short-t"}"#),
                ("/v1/p", #"{"anonymousId":"s-a","name":"Home","messageId":"short-p"}"#),
                ("/v1/s", #"{"anonymousId":"s-a","name":"Cart","messageId":"short-s"}"#),
                ("/v1/i", #"{"userId":"s1","traits":{"plan":"pro"},"messageId":"short-i"}"#),
                ("/v1/g", #"{"userId":"s1","groupId":"g1","messageId":"short-g"}"#),
                ("/v1/a", #"{"userId":"s1","previousId":"s-a","messageId":"short-a"}"#),
                ("/v1/b", #"{"batch":[{"type":"track","userId":"s1","event":"Bought","messageId":"short-b"}]}"#),
            ]
            for (path, body) in calls {
                let response = try await server.send(path, body)
                #expect(response.status == .ok, "\(path): \(response.text)")
            }
            let keys = ["short-t", "short-p", "short-s", "short-i", "short-g", "short-a", "short-b"]
            #expect(try await server.countEvents(keys) == Dictionary(uniqueKeysWithValues: keys.map { ($0, 1) }))
            // Each letter is its type's endpoint, with that type's rules.
            let alias = try await server.send("/v1/a", #"{"userId":"s1"}"#)
            #expect(alias.json?["error"]?["path"] == "previousId")
            let group = try await server.send("/v1/g", #"{"userId":"s1"}"#)
            #expect(group.json?["error"]?["path"] == "groupId")
        }
    }

    @Test func browsersGetCORSOnIngestionAndNotOnTheAdminAPI() async throws {
        try await ServerHarness.run { server async throws in
            let preflight = try await server.send("/v1/t", "", key: nil, method: .options, headers: [
                .origin: "https://shop.example", .accessControlRequestMethod: "POST", .accessControlRequestHeaders: "content-type",
            ])
            #expect(preflight.status == .noContent)
            #expect(preflight.headers[.accessControlAllowOrigin] == "*")
            #expect(preflight.headers[.accessControlAllowMethods]?.contains("POST") == true)
            #expect(preflight.headers[.accessControlAllowHeaders] == "content-type")
            // analytics.js: text/plain, the write key in the body, no Authorization header.
            let post = try await server.send("/v1/t", #"{"writeKey":"web-key","anonymousId":"b1","event":"Clicked","messageId":"cors-1"}"#, key: nil, headers: [
                .contentType: "text/plain", .origin: "https://shop.example",
            ])
            #expect(post.status == .ok)
            #expect(post.headers[.accessControlAllowOrigin] == "*")
            let refused = try await server.send("/v1/t", #"{"writeKey":"web-key","event":"Clicked"}"#, key: nil, headers: [.origin: "https://shop.example"])
            #expect(refused.status == .badRequest)
            #expect(refused.headers[.accessControlAllowOrigin] == "*")
            // A trailing slash is the same route; an unknown pixel type is a 404 browsers can read.
            let slashed = try await server.send("/v1/t/", "", key: nil, method: .options, headers: [.origin: "https://shop.example", .accessControlRequestMethod: "POST"])
            #expect(slashed.status == .noContent)
            let missing = try await server.send("/v1/pixel/nope?data=e30", "", key: nil, method: .get, headers: [.origin: "https://shop.example"])
            #expect(missing.status == .notFound)
            #expect(missing.headers[.accessControlAllowOrigin] == "*")
            #expect(missing.headers[.accessControlExposeHeaders] == "Retry-After")
            let missingHead = try await server.send("/v1/pixel/nope?data=e30", "", key: nil, method: .head)
            #expect(missingHead.status == .notFound)
            let admin = try await server.send("/v1/profiles/x", "", key: nil, method: .options, headers: [.origin: "https://shop.example", .accessControlRequestMethod: "GET"])
            #expect(admin.status == .notFound)
            #expect(admin.headers[.accessControlAllowOrigin] == nil)
            #expect(try await server.countEvents(["cors-1"]) == ["cors-1": 1])
        }
    }

    @Test func gzipAndDeflateBodiesAreInflatedWithinTheLimit() async throws {
        try await ServerHarness.run { server async throws in
            for (encoding, algorithm, key) in [("gzip", CompressionAlgorithm.gzip(), "zipped-gzip"), ("deflate", .zlib(), "zipped-deflate")] {
                var plain = ByteBuffer(string: #"{"batch":[{"type":"track","userId":"z1","event":"Zipped","messageId":"\#(key)"}]}"#)
                let compressed = try plain.compress(with: algorithm)
                let response = try await server.send("/v1/b", bytes: compressed, headers: [.contentEncoding: encoding])
                #expect(response.status == .ok, "\(encoding): \(response.text)")
            }
            #expect(try await server.countEvents(["zipped-gzip", "zipped-deflate"]) == ["zipped-gzip": 1, "zipped-deflate": 1])
            // A small body inflating past 500 KB (a zip bomb) is refused as too large.
            var padding = ByteBuffer(string: #"{"batch":[{"type":"track","userId":"z1","event":"E","properties":{"x":""# + String(repeating: "0", count: 600 * 1024) + #""}}]}"#)
            let bomb = try padding.compress(with: .gzip())
            #expect(bomb.readableBytes < 10 * 1024)
            let response = try await server.send("/v1/batch", bytes: bomb, headers: [.contentEncoding: "gzip"])
            #expect(response.status == .contentTooLarge, "\(response.text)")
        }
    }
}

struct BatchPartialAcceptanceTests {
    /// SDKs drop a batch answered 4xx and never retry it, so one bad event
    /// must not cost the others.
    @Test func aBatchStoresItsValidMessagesAndListsTheOthers() async throws {
        try await ServerHarness.run { server async throws in
            let body = #"{"batch":[{"type":"track","userId":"u","event":"E","messageId":"kept-1"},{"type":"track","event":"E","messageId":"lost-1"},{"type":"track","userId":"u","event":"\#(String(repeating: "n", count: 201))","messageId":"lost-2"},{"type":"identify","userId":"u","messageId":"kept-2"}]}"#
            let response = try await server.send("/v1/batch", body)
            #expect(response.status == .ok, "\(response.text)")
            #expect(response.json?["success"] == true)
            let rejected = response.json?["rejected"]?.arrayValue ?? []
            #expect(rejected.map { $0["index"] } == [1, 2])
            #expect(rejected.map { $0["path"] } == ["batch[1].userId", "batch[2].event"])
            #expect(rejected.map { $0["code"] } == ["invalid_message", "invalid_message"])
            #expect(try await server.countEvents(["kept-1", "kept-2", "lost-1", "lost-2"]) == ["kept-1": 1, "kept-2": 1, "lost-1": 0, "lost-2": 0])
            // A batch refused whole is a rejected request, not rejected messages.
            #expect(try await server.send("/v1/batch", #"{"batch":[{"type":"track","event":"E"}]}"#).status == .badRequest)
            let metrics = try await server.get("/metrics", token: nil).text
            #expect(metrics.contains("stratum_rejected_messages_total 2"))
            #expect(metrics.contains("stratum_rejected_requests_total 1"))
            // A batch with nothing wrong says nothing more.
            let clean = try await server.send("/v1/batch", #"{"batch":[{"type":"track","userId":"u","event":"E"}]}"#)
            #expect(clean.json == ["success": true])
        }
    }

    @Test func leniencesRealClientsNeed() async throws {
        try await ServerHarness.run { server async throws in
            // HTTP allows several spaces after the scheme.
            let spaced = try await server.send("/v1/track", #"{"userId":"u","event":"E","messageId":"spaced"}"#, key: nil, headers: [
                .authorization: "Basic  " + Data("web-key:".utf8).base64EncodedString(),
            ])
            #expect(spaced.status == .ok, "\(spaced.text)")
            // A byte order mark before the JSON.
            let bom = try await server.send("/v1/track", "\u{FEFF}" + #"{"userId":"u","event":"E","messageId":"bom"}"#)
            #expect(bom.status == .ok, "\(bom.text)")
            #expect(try await server.countEvents(["spaced", "bom"]) == ["spaced": 1, "bom": 1])
        }
    }

    /// A HEAD (link checkers, prefetching) answers like the GET and records nothing.
    @Test func aHeadOnThePixelStoresNothing() async throws {
        try await ServerHarness.run { server async throws in
            let message = Data(#"{"writeKey":"limited-key","anonymousId":"px-h","event":"Viewed","messageId":"pixel-head"}"#.utf8).base64EncodedString()
            let head = try await server.send("/v1/pixel/track?data=\(message)", "", key: nil, method: .head)
            #expect(head.status == .ok)
            #expect(head.headers[.contentType] == "image/gif")
            #expect(try await server.countEvents(["pixel-head"]) == ["pixel-head": 0])
        }
    }
}
