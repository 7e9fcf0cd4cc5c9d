import Foundation
import StratumCrypto
import StratumDefinitions
import StratumEngine
import StratumJSON
import StratumStore
import Testing

struct ProfileCounterTests {
    @Test func revenueIsSummedExactly() async throws {
        let harness = try EngineHarness()
        var messages: [JSONValue] = []
        for index in 0..<10 {
            messages.append(["type": "track", "userId": "buyer", "event": "Purchase", "properties": ["total": 0.1], "messageId": .string("p\(index)")])
        }
        messages.append(["type": "track", "userId": "buyer", "event": "Purchase", "properties": ["total": "19.99"], "messageId": "p10"])
        messages.append(["type": "track", "userId": "buyer", "event": "ProductView", "properties": ["total": 1000], "messageId": "v1"])
        // A string counts only if it is exactly one number: Decimal(string:) would read "150abc" as 150.
        for (index, text) in ["150abc", "1,5", "0x10", "12 apples"].enumerated() {
            messages.append(["type": "track", "userId": "buyer", "event": "Purchase", "properties": ["total": .string(text)], "messageId": .string("bad\(index)")])
        }
        let outcomes = try await harness.ingest(messages)
        let id = try #require(profileID(of: outcomes[0]))
        let profile = try #require(try await harness.profile(id))
        #expect(profile.totalPurchases == 15)
        #expect(profile.totalRevenue == Decimal(string: "20.99"))
        #expect(profile.storedStage == .customer)
    }

    @Test func sessionsFollowSessionIDsOrThirtyMinutesOfInactivity() async throws {
        let harness = try EngineHarness()
        func track(_ time: String, _ id: String, session: String? = nil) -> JSONValue {
            var message: JSONObject = ["type": "track", "userId": "u", "event": "A", "timestamp": .string(time), "messageId": .string(id)]
            if let session { message["context"] = ["sessionId": .string(session)] }
            return .object(message)
        }
        let outcomes = try await harness.ingest([
            track("2025-12-31T10:00:00Z", "1"),
            track("2025-12-31T10:29:00Z", "2"),
            track("2025-12-31T11:00:00Z", "3"),
            track("2025-12-31T11:01:00Z", "4", session: "s-1"),
            track("2025-12-31T11:02:00Z", "5", session: "s-1"),
            track("2025-12-31T11:03:00Z", "6", session: "s-2"),
        ])
        let id = try #require(profileID(of: outcomes[0]))
        let profile = try #require(try await harness.profile(id))
        #expect(profile.totalSessions == 4)
        #expect(profile.firstSeenAt == EngineHarness.instant("2025-12-31T10:00:00Z"))
    }

    /// Sessions do not depend on arrival order: a late event is placed among
    /// the stored ones; a session id seen before is no new session.
    @Test func sessionsDoNotDependOnArrivalOrder() async throws {
        let harness = try EngineHarness()
        func track(_ user: String, _ time: String, _ id: String, session: String? = nil) -> JSONValue {
            var message: JSONObject = ["type": "track", "userId": .string(user), "event": "A", "timestamp": .string(time), "messageId": .string(id)]
            if let session { message["context"] = ["sessionId": .string(session)] }
            return .object(message)
        }
        func sessions(_ user: String) async throws -> Int64? {
            let id = try #require(try await harness.profileID(type: "external_id", value: user))
            return try await harness.profile(id)?.totalSessions
        }
        // Two hours apart, sent in order and in reverse: two sessions either way.
        try await harness.ingest([track("ordered", "2026-01-01T10:00:00Z", "o1"), track("ordered", "2026-01-01T12:00:00Z", "o2")])
        try await harness.ingest([track("reversed", "2026-01-01T12:00:00Z", "r1"), track("reversed", "2026-01-01T10:00:00Z", "r2")])
        #expect(try await sessions("ordered") == 2)
        #expect(try await sessions("reversed") == 2)
        // A late event joining nothing starts a session; one within 30 minutes of an earlier one joins it;
        // one bridging two sessions makes them one: 10:00 | 10:50, then 10:25 arrives.
        try await harness.ingest([track("late", "2026-01-01T10:00:00Z", "l1"), track("late", "2026-01-01T10:50:00Z", "l2")])
        #expect(try await sessions("late") == 2)
        try await harness.ingest([track("late", "2026-01-01T10:25:00Z", "l3")])
        #expect(try await sessions("late") == 1)
        try await harness.ingest([track("late", "2026-01-01T08:00:00Z", "l4"), track("late", "2026-01-01T08:10:00Z", "l5")])
        #expect(try await sessions("late") == 2)
        // Session ids: A, B, A, B is two sessions.
        try await harness.ingest(["A", "B", "A", "B"].enumerated().map { index, session in
            track("tabs", "2026-01-01T10:0\(index):00Z", "t\(index)", session: session)
        })
        #expect(try await sessions("tabs") == 2)
    }

    @Test func sessionsOfMixedSessionIDsAndTimeoutsDoNotDependOnArrivalOrder() async throws {
        // (minute, session id): ids count once each; an event without one starts a
        // session when the event before it (of any kind) is over 30 minutes earlier.
        let events: [(minute: Int, session: String?)] = [
            (0, "S1"), (25, nil), (50, "S2"), (70, nil), (130, nil), (140, "S1"), (150, nil), (220, "S3"), (230, nil), (300, nil),
        ]
        var expected = Set(events.compactMap(\.session)).count
        for (index, event) in events.enumerated() where event.session == nil {
            if index == 0 || event.minute - events[index - 1].minute > 30 { expected += 1 }
        }
        #expect(expected == 5)
        var random = SplitMix64(seed: 7)
        let orders = [Array(events.indices), Array(events.indices.reversed())] + (0..<6).map { _ in
            var order = Array(events.indices)
            for index in order.indices.reversed() where index > 0 { order.swapAt(index, Int(random.next() % UInt64(index + 1))) }
            return order
        }
        let harness = try EngineHarness()
        for (run, order) in orders.enumerated() {
            let user = "visitor-\(run)"
            for index in order {
                var message: JSONObject = [
                    "type": "track", "userId": .string(user), "event": "A", "messageId": .string("\(user)-\(index)"),
                    "timestamp": .string(Instant.format(milliseconds: EngineHarness.instant("2026-01-01T10:00:00Z") + Int64(events[index].minute) * 60_000)),
                ]
                if let session = events[index].session { message["context"] = ["sessionId": .string(session)] }
                try await harness.ingest([.object(message)])
            }
            let id = try #require(try await harness.profileID(type: "external_id", value: user))
            #expect(try await harness.profile(id)?.totalSessions == Int64(expected), "arrival order \(order)")
        }
    }

    @Test func sessionsOfEventsInTheSameMillisecondDoNotDependOnArrivalOrder() async throws {
        // A with a session id and B without, at the same instant; C without one, a minute before.
        let events: [(id: String, time: String, session: String?)] = [
            ("a", "2026-01-01T10:00:00.000Z", "S"), ("b", "2026-01-01T10:00:00.000Z", nil), ("c", "2026-01-01T09:59:00.000Z", nil),
        ]
        let orders = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]]
        let harness = try EngineHarness()
        for (run, order) in orders.enumerated() {
            for index in order {
                let event = events[index]
                var message: JSONObject = ["type": "track", "userId": .string("same-\(run)"), "event": "A", "timestamp": .string(event.time), "messageId": .string("\(run)-\(event.id)")]
                if let session = event.session { message["context"] = ["sessionId": .string(session)] }
                try await harness.ingest([.object(message)])
            }
            let id = try #require(try await harness.profileID(type: "external_id", value: "same-\(run)"))
            // One session id, and C starts the timeout session B joins.
            #expect(try await harness.profile(id)?.totalSessions == 2, "arrival order \(order)")
        }
    }

    @Test func aSessionIDIsAStringOrANumberNeverABoolean() async throws {
        let harness = try EngineHarness()
        // true is no session id (the timeout rule applies); 1 then is a new one, not "true" again.
        try await harness.ingest([
            ["type": "track", "userId": "b", "event": "A", "timestamp": "2026-01-01T10:00:00Z", "messageId": "b1", "context": ["sessionId": true]],
            ["type": "track", "userId": "b", "event": "A", "timestamp": "2026-01-01T10:05:00Z", "messageId": "b2", "context": ["sessionId": 1]],
        ])
        let id = try #require(try await harness.profileID(type: "external_id", value: "b"))
        #expect(try await harness.profile(id)?.totalSessions == 2)
    }

    @Test func aMergeRecountsSessionsRatherThanAddingThem() async throws {
        let harness = try EngineHarness()
        func track(_ identity: JSONObject, _ time: String, _ id: String, session: String?) -> JSONValue {
            var message: JSONObject = ["type": "track", "event": "A", "timestamp": .string(time), "messageId": .string(id)]
            for (key, value) in identity { message[key] = value }
            if let session { message["context"] = ["sessionId": .string(session)] }
            return .object(message)
        }
        // Browsing anonymously in session S1, signing in during it (a userId-only
        // event of the known profile), then the identify that joins the two.
        try await harness.ingest([
            track(["anonymousId": "visitor"], "2026-01-01T10:00:00Z", "m1", session: "S1"),
            track(["anonymousId": "visitor"], "2026-01-01T10:05:00Z", "m2", session: "S1"),
            track(["userId": "ann"], "2026-01-01T10:06:00Z", "m3", session: "S1"),
            // Without session ids: 11:00 anonymous and 11:10 known are one session once joined.
            track(["anonymousId": "visitor"], "2026-01-01T11:00:00Z", "m4", session: nil),
            track(["userId": "ann"], "2026-01-01T11:10:00Z", "m5", session: nil),
        ])
        let before = try #require(try await harness.profileID(type: "anonymous_id", value: "visitor"))
        #expect(try await harness.profile(before)?.totalSessions == 2)
        try await harness.ingest([["type": "identify", "userId": "ann", "anonymousId": "visitor", "timestamp": "2026-01-01T11:11:00Z", "messageId": "m6"]])
        let merged = try #require(try await harness.profileID(type: "anonymous_id", value: "visitor"))
        #expect(try await harness.profileID(type: "external_id", value: "ann") == merged)
        #expect(try await harness.profile(merged)?.totalSessions == 2)
        #expect(try await harness.profile(merged)?.totalEvents == 6)
    }

    @Test func emqCompletenessUsesTheTrackingPlanOfTheMessagesSource() async throws {
        let plan = """
            kind: Source
            name: backend
            type: server_api
            write_key_sha256: fa9804312737d4ac71cd15e1b0230ca67535d2d317e84e169a81707b7d6a7066
            tracking_plan:
              events:
                A: {type: object, required: [total, currency, order_id]}

            """
        let harness = try EngineHarness(definitions: ["backend.yaml": plan])
        harness.setNow("2026-01-01T12:00:00Z")
        // From "web", which has no plan: a third each for timestamp, properties and context.
        let outcomes = try await harness.ingest([
            ["type": "track", "userId": "u", "event": "A", "messageId": "m1", "timestamp": "2026-01-01T12:00:00Z", "properties": ["total": 5], "context": ["ip": "1.1.1.1"]],
        ])
        let events = try await harness.read { try $0.events(tenant: "default", profileID: profileID(of: outcomes[0])!, after: nil, limit: 1) }
        // identifiers 1 × 0.35, completeness 3/3 × 0.25, timeliness 1 × 0.2, context 1/8 × 0.2.
        #expect(events.first?.emqScore == 0.825)
    }

    @Test func lifecycleStagesFollowTheSeedsTable() async throws {
        let harness = try EngineHarness(definitions: ["identity.yaml": "kind: Identity\nname: identity\nphone_default_country_code: \"+1\"\n"])
        let anonymous = try await harness.ingest([["type": "page", "anonymousId": "a", "messageId": "1", "timestamp": "2025-12-01T00:00:00Z"]])
        let id = try #require(profileID(of: anonymous[0]))
        #expect(try await harness.profile(id)?.storedStage == .anonymous)
        try await harness.ingest([["type": "identify", "anonymousId": "a", "traits": ["phone": "(415) 555-0123"], "messageId": "2", "timestamp": "2025-12-01T00:01:00Z"]])
        #expect(try await harness.profile(id)?.storedStage == .known)
        #expect(try await harness.profileID(type: "phone", value: "+1 415 555 0123") == id)
        try await harness.ingest([["type": "track", "anonymousId": "a", "event": "Purchase", "properties": ["total": 5], "messageId": "3", "timestamp": "2025-12-01T00:02:00Z"]])
        let profile = try #require(try await harness.profile(id))
        #expect(profile.storedStage == .customer)
        #expect(profile.lifecycleStage(at: EngineHarness.instant("2026-02-01T00:00:00Z"), churnPeriodDays: 90) == .customer)
        #expect(profile.lifecycleStage(at: EngineHarness.instant("2026-03-02T00:03:00Z"), churnPeriodDays: 90) == .churned)
    }

    @Test func phoneNumbersNormaliseWithTheDefaultCountryCode() async throws {
        let harness = try EngineHarness(definitions: ["identity.yaml": "kind: Identity\nname: identity\nphone_default_country_code: \"+1\"\n"])
        let rules = harness.runtime.tenants["default"]!.identity
        #expect(rules.normalize("(415) 555-0123", type: "phone") == "+14155550123")
        #expect(rules.normalize("+44 20 7946 0958", type: "phone") == "+442079460958")
        #expect(rules.normalize("0044 20 7946 0958", type: "phone") == "+442079460958")
        #expect(rules.normalize("12345", type: "phone") == nil)
        #expect(rules.identifier(type: "phone", raw: "415.555.0123")?.hash == "36a2cef4ff9bf7a1abd2a93359136b870393be4106e6c5d19b72ff564f9deca4")
    }

    @Test func consentIsRecordedAsHistoryOnlyWhenItChanges() async throws {
        let harness = try EngineHarness(definitions: ["settings.yaml": "kind: Settings\nname: stratum\nconsent_types: [push]\n"])
        func message(_ id: String, _ consent: JSONValue, at time: String) -> JSONValue {
            ["type": "track", "userId": "u", "event": "A", "messageId": .string(id), "timestamp": .string(time),
             "context": ["consent": consent, "ip": "203.0.113.9"]]
        }
        let outcomes = try await harness.ingest([
            message("1", ["ads": true, "email": false, "push": true, "made_up": true], at: "2025-12-01T00:00:00Z"),
            message("2", ["ads": true], at: "2025-12-02T00:00:00Z"),
            message("3", ["categoryPreferences": ["ads": false]], at: "2025-12-03T00:00:00Z"),
        ])
        let id = try #require(profileID(of: outcomes[0]))
        let history = try await harness.read { try $0.consents(tenant: "default", profileID: id) }
        #expect(history.map { "\($0.consentType)=\($0.granted)" } == ["ads=true", "email=false", "push=true", "ads=false"])
        #expect(history.allSatisfy { $0.source == "web" && $0.ipAddress == "203.0.113.9" })
        #expect(history.last?.revokedAt == EngineHarness.instant("2025-12-03T00:00:00Z"))
        #expect(history.first?.grantedAt == EngineHarness.instant("2025-12-01T00:00:00Z"))
    }

    /// A record is new when it changes the consent in force at its time, which
    /// the latest record of the type or of `all` decides, as every reader does.
    @Test func consentRecordsFollowTheAllToggleAndLateArrivals() async throws {
        let harness = try EngineHarness(definitions: [
            "hooks.yaml": "kind: Webhook\nname: hooks\nurl: http://127.0.0.1:9/\nsecret: ${env:WEB_KEY}\nevents: [consent.updated]\n",
        ])
        // Received after every event time below (a consent is never recorded later than it arrived).
        harness.setNow("2026-01-02T00:00:00Z")
        func identify(_ id: String, _ consent: JSONValue, at time: String) -> JSONValue {
            ["type": "identify", "userId": "c1", "messageId": .string(id), "timestamp": .string(time), "context": ["consent": consent]]
        }
        // all=false, then email=true, then all=false again: the last one revokes email again.
        let outcomes = try await harness.ingest([
            identify("1", ["all": false], at: "2026-01-01T10:00:00Z"),
            identify("2", ["email": true], at: "2026-01-01T10:10:00Z"),
            identify("3", ["all": false], at: "2026-01-01T10:20:00Z"),
        ])
        let id = try #require(profileID(of: outcomes[0]))
        #expect(try await harness.read { try $0.consents(tenant: "default", profileID: id) }.map { "\($0.consentType)=\($0.granted)" } == ["all=false", "email=true", "all=false"])
        // A record arriving late is placed at its own time: an earlier revocation does
        // not override a later grant.
        let late = try await harness.ingest([
            ["type": "identify", "userId": "c2", "messageId": "4", "timestamp": "2026-01-01T11:00:00Z", "context": ["consent": ["email": true]]],
            ["type": "identify", "userId": "c2", "messageId": "5", "timestamp": "2026-01-01T10:00:00Z", "context": ["consent": ["email": false]]],
        ])
        let other = try #require(profileID(of: late[0]))
        // Oldest first: the 11:00 grant is the latest.
        #expect(try await harness.read { try $0.consents(tenant: "default", profileID: other) }.map { "\($0.granted)" } == ["false", "true"])
        // Repeats add no record.
        try await harness.ingest([identify("7", ["all": false], at: "2026-01-01T10:30:00Z"), identify("8", ["email": false], at: "2026-01-01T10:40:00Z")])
        #expect(try await harness.read { try $0.consents(tenant: "default", profileID: id) }.count == 3)
        // A record sent before a repeat but arriving after it does not outlast the repeat, either way:
        // revoked at 09:00 and again at 11:00, a grant from 10:00 arriving last leaves it revoked.
        for (user, first, late) in [("c3", false, true), ("c4", true, false)] {
            let outcomes = try await harness.ingest([
                ["type": "identify", "userId": .string(user), "messageId": .string(user + "a"), "timestamp": "2026-01-01T09:00:00Z", "context": ["consent": ["ads": .bool(first)]]],
                ["type": "identify", "userId": .string(user), "messageId": .string(user + "b"), "timestamp": "2026-01-01T11:00:00Z", "context": ["consent": ["ads": .bool(first)]]],
                ["type": "identify", "userId": .string(user), "messageId": .string(user + "c"), "timestamp": "2026-01-01T10:00:00Z", "context": ["consent": ["ads": .bool(late)]]],
            ])
            let profile = try #require(profileID(of: outcomes[0]))
            let records = try await harness.read { try $0.consents(tenant: "default", profileID: profile) }
            #expect(records.map { "\($0.granted)" } == ["\(first)", "\(late)", "\(first)"], "\(user): 09:00, 10:00, then 11:00 again")
            #expect(records.last?.recordedAt == EngineHarness.instant("2026-01-01T11:00:00Z"))
            // The consent in force never changed after the first message: one consent.updated.
            let notices = try await harness.store.deliveries(tenant: "default", webhook: "hooks").filter { $0.payload.contains(profile) }
            #expect(notices.count == 1, "\(user)")
        }
    }

    @Test func clockSkewIsCorrectedWithSentAt() async throws {
        let harness = try EngineHarness()
        harness.setNow("2026-01-01T12:00:00Z")
        // The device clock runs one hour fast: it says sentAt 13:00 when it is 12:00.
        let outcomes = try await harness.ingest([["type": "track", "userId": "u", "event": "A", "messageId": "1",
                                                   "originalTimestamp": "2026-01-01T12:59:00Z", "sentAt": "2026-01-01T13:00:00Z"]])
        let id = try #require(profileID(of: outcomes[0]))
        let events = try await harness.read { try $0.events(tenant: "default", profileID: id, after: nil, limit: 1) }
        #expect(events.first?.eventTime == EngineHarness.instant("2026-01-01T11:59:00Z"))
        #expect(events.first?.receivedAt == EngineHarness.instant("2026-01-01T12:00:00Z"))
    }

    @Test func emqScoresFollowTheDocumentedFormula() async throws {
        let harness = try EngineHarness()
        harness.setNow("2026-01-01T12:00:00Z")
        let outcomes = try await harness.ingest([
            ["type": "track", "userId": "u", "anonymousId": "a", "event": "A", "messageId": "rich", "timestamp": "2026-01-01T12:00:00Z",
             "properties": ["x": 1], "context": ["ip": "1.2.3.4", "userAgent": "ua", "locale": "en", "page": ["url": "https://x"]]],
            ["type": "track", "anonymousId": "b", "event": "A", "messageId": "poor"],
        ])
        let rich = try await harness.read { try $0.events(tenant: "default", profileID: profileID(of: outcomes[0])!, after: nil, limit: 1) }
        let poor = try await harness.read { try $0.events(tenant: "default", profileID: profileID(of: outcomes[1])!, after: nil, limit: 1) }
        // identifiers 1.0 (external_id + a second type, capped), completeness 1, timeliness 1, context 4/8.
        #expect(rich.first?.emqScore == 0.9)
        // anonymous_id only 0.1, completeness 0/3, timeliness 1 (no timestamp: received now), context 0.
        #expect(poor.first?.emqScore == 0.235)
    }
}
