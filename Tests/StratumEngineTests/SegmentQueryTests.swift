import Foundation
import StratumDefinitions
import StratumEngine
import StratumJSON
import StratumStore
import Testing

/// The rule language's exact semantics, evaluated by the SQL the store runs,
/// on hand-built profiles with known answers.
struct SegmentQueryTests {
    static let definitions = [
        "identity.yaml": "kind: Identity\nname: identity\n",
        "vip.yaml": "kind: Segment\nname: vip\nrules:\n  conditions:\n    - {field: total_revenue, operator: greater_or_equal, value: 100}\n",
    ]

    /// Four people, ingested with known facts at known times.
    static func harness() async throws -> EngineHarness {
        let harness = try EngineHarness(definitions: definitions)
        harness.setNow("2026-03-01T00:00:00Z")
        try await harness.ingest([
            // ann: customer, US, big spender, recent, email + ads consent.
            ["type": "identify", "userId": "ann", "traits": ["email": "ann@example.com", "country": "US", "age": 34, "code": "5"],
             "timestamp": "2026-01-01T00:00:00Z", "messageId": "a1", "context": ["consent": ["ads": true, "email": true]]],
            ["type": "track", "userId": "ann", "event": "Purchase", "properties": ["total": 80], "timestamp": "2026-02-20T00:00:00Z", "messageId": "a2"],
            ["type": "track", "userId": "ann", "event": "Purchase", "properties": ["total": 40.5], "timestamp": "2026-02-25T00:00:00Z", "messageId": "a3"],
            ["type": "track", "userId": "ann", "event": "Purchase", "properties": ["total": 9], "timestamp": "2026-02-26T00:00:00Z", "messageId": "a4"],
            // bob: known, CA, one small purchase long ago, ads consent later revoked through "all".
            ["type": "identify", "userId": "bob", "traits": ["email": "bob@example.com", "country": "CA", "age": "forty"],
             "timestamp": "2025-06-01T00:00:00Z", "messageId": "b1", "context": ["consent": ["ads": true]]],
            ["type": "track", "userId": "bob", "event": "Purchase", "properties": ["total": 20], "timestamp": "2025-06-02T00:00:00Z", "messageId": "b2"],
            ["type": "track", "userId": "bob", "event": "Opened", "timestamp": "2025-06-03T00:00:00Z", "messageId": "b3", "context": ["consent": ["all": false]]],
            // cat: anonymous, no traits at all, recent page view.
            ["type": "page", "anonymousId": "cat", "timestamp": "2026-02-28T00:00:00Z", "messageId": "c1"],
            // dan: known, UK, two purchases in the window but small ones.
            ["type": "identify", "userId": "dan", "traits": ["email": "dan@gmail.com", "country": "UK"], "timestamp": "2026-02-01T00:00:00Z", "messageId": "d1"],
            ["type": "track", "userId": "dan", "event": "Purchase", "properties": ["total": 10], "timestamp": "2026-02-10T00:00:00Z", "messageId": "d2"],
            ["type": "track", "userId": "dan", "event": "Purchase", "properties": ["total": 15], "timestamp": "2026-02-11T00:00:00Z", "messageId": "d3"],
        ])
        return harness
    }

    static let asOf = EngineHarness.instant("2026-03-01T00:00:00Z")

    /// The members (by userId, or "cat") of a rule group written in YAML.
    static func members(_ harness: EngineHarness, _ rules: String, asOf: Milliseconds = asOf, extra: [String: String] = [:]) async throws -> Set<String> {
        let file = "kind: Segment\nname: probe\nrules:\n" + rules.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n") + "\n"
        let loaded = DefinitionLoader.load(files: (definitions.merging(extra) { $1 }.merging(["probe.yaml": file]) { $1 }).sorted { $0.key < $1.key }.map { ($0.key, Array($0.value.utf8)) })
        #expect(loaded.diagnostics.filter { $0.severity == .error }.map(\.formatted) == [])
        let segment = try #require(loaded.definitions.segments.first { $0.definition.name == "probe" }?.definition)
        let evaluator = SegmentEvaluator(definitions: loaded.definitions, runtime: harness.runtime)
        let result = try await evaluator.preview(segment, store: harness.store, asOf: asOf, sample: 100)
        #expect(result.count == result.sample.count)
        var names: Set<String> = []
        for id in result.sample {
            let profile = try #require(try await harness.profile(id))
            names.insert(profile.externalID ?? "cat")
        }
        return names
    }

    @Test func profileFieldOperatorsFollowTheMissingValueRule() async throws {
        let h = try await Self.harness()
        func check(_ rule: String, _ expected: Set<String>, sourceLocation: Testing.SourceLocation = #_sourceLocation) async throws {
            let got = try await Self.members(h, "conditions:\n  - " + rule)
            #expect(got == expected, "\(rule)", sourceLocation: sourceLocation)
        }
        try await check("{field: profile_data.country, operator: equals, value: US}", ["ann"])
        // Missing values match only not_equals, not_in and not_exists.
        try await check("{field: profile_data.country, operator: not_equals, value: US}", ["bob", "cat", "dan"])
        try await check("{field: profile_data.country, operator: in, value: [US, CA]}", ["ann", "bob"])
        try await check("{field: profile_data.country, operator: not_in, value: [US, CA]}", ["cat", "dan"])
        try await check("{field: profile_data.country, operator: exists}", ["ann", "bob", "dan"])
        try await check("{field: profile_data.country, operator: not_exists}", ["cat"])
        try await check("{field: profile_data.email, operator: contains, value: \"@gmail\"}", ["dan"])
        try await check("{field: profile_data.email, operator: contains, value: \"@GMAIL\"}", [])
        // Numbers compare numerically; a string never matches a number (type mismatch).
        try await check("{field: profile_data.age, operator: greater_than, value: 30}", ["ann"])
        try await check("{field: profile_data.age, operator: less_than, value: 30}", [])
        try await check("{field: profile_data.code, operator: equals, value: 5}", [])
        try await check("{field: profile_data.code, operator: equals, value: \"5\"}", ["ann"])
        try await check("{field: total_purchases, operator: greater_or_equal, value: 2}", ["ann", "dan"])
        try await check("{field: total_purchases, operator: less_or_equal, value: 1}", ["bob", "cat"])
        try await check("{field: total_revenue, operator: between, value: [20, 25]}", ["bob", "dan"])
        try await check("{field: total_revenue, operator: equals, value: 129.5}", ["ann"])
        try await check("{field: external_id, operator: not_equals, value: ann}", ["bob", "cat", "dan"])
    }

    @Test func datesAndWindowsAreRelativeToTheEvaluationInstant() async throws {
        let h = try await Self.harness()
        func check(_ rule: String, _ expected: Set<String>, asOf: Milliseconds = SegmentQueryTests.asOf, sourceLocation: Testing.SourceLocation = #_sourceLocation) async throws {
            let got = try await Self.members(h, "conditions:\n  - " + rule, asOf: asOf)
            #expect(got == expected, "\(rule)", sourceLocation: sourceLocation)
        }
        try await check("{field: last_seen_at, operator: within_last, value: 7, unit: days}", ["ann", "cat"])
        try await check("{field: last_seen_at, operator: not_within_last, value: 30, unit: days}", ["bob"])
        try await check("{field: first_seen_at, operator: before, value: \"2026-01-01\"}", ["bob"])
        try await check("{field: first_seen_at, operator: after, value: \"2026-01-31T23:59:59Z\"}", ["cat", "dan"])
        try await check("{field: first_seen_at, operator: between, value: [\"2025-12-31\", \"2026-02-01T00:00:00Z\"]}", ["ann", "dan"])
        // bob has been inactive for longer than the 90-day churn period.
        try await check("{field: lifecycle_stage, operator: equals, value: churned}", ["bob"])
        try await check("{field: lifecycle_stage, operator: equals, value: customer}", ["ann", "dan"])
        try await check("{field: lifecycle_stage, operator: equals, value: anonymous}", ["cat"])
        // The same rule as of last summer: only bob existed, and he was a recent customer.
        try await check("{field: lifecycle_stage, operator: equals, value: customer}", ["bob"], asOf: EngineHarness.instant("2025-07-01T00:00:00Z"))
    }

    @Test func eventConditionsCountMatchingEventsInTheWindow() async throws {
        let h = try await Self.harness()
        func check(_ rule: String, _ expected: Set<String>, sourceLocation: Testing.SourceLocation = #_sourceLocation) async throws {
            let got = try await Self.members(h, "conditions:\n  - " + rule)
            #expect(got == expected, "\(rule)", sourceLocation: sourceLocation)
        }
        try await check("{field: event, event_name: Purchase, operator: within_last, value: 30, unit: days}", ["ann", "dan"])
        try await check("{field: event, event_name: Purchase, operator: not_within_last, value: 30, unit: days}", ["bob", "cat"])
        try await check("{field: event, event_name: Purchase, operator: within_last, value: 30, unit: days, count: {operator: greater_or_equal, value: 3}}", ["ann"])
        try await check("{field: event, event_name: Purchase, operator: within_last, value: 30, unit: days, count: {operator: equals, value: 2}}", ["dan"])
        // "Fewer than 2" includes those with none.
        try await check("{field: event, event_name: Purchase, operator: within_last, value: 30, unit: days, count: {operator: less_than, value: 2}}", ["bob", "cat"])
        // "At least 0" is everyone; "between 0 and 2" includes those with none.
        try await check("{field: event, event_name: Purchase, operator: within_last, value: 30, unit: days, count: {operator: greater_or_equal, value: 0}}", ["ann", "bob", "cat", "dan"])
        try await check("{field: event, event_name: Purchase, operator: within_last, value: 30, unit: days, count: {operator: between, value: [0, 2]}}", ["bob", "cat", "dan"])
        try await check("{field: event, event_name: Purchase, operator: within_last, value: 30, unit: days, count: {operator: greater_than, value: 0}}", ["ann", "dan"])
        try await check("{field: event, event_name: Purchase, operator: within_last, value: 30, unit: days, where: [{property: total, operator: greater_than, value: 30}]}", ["ann"])
        try await check("{field: event, event_name: Purchase, operator: within_last, value: 30, unit: days, where: [{property: total, operator: less_than, value: 50}], count: {operator: between, value: [2, 2]}}", ["ann", "dan"])
    }

    @Test func identifiersConsentSegmentsAndNestedGroups() async throws {
        let h = try await Self.harness()
        func check(_ rules: String, _ expected: Set<String>, sourceLocation: Testing.SourceLocation = #_sourceLocation) async throws {
            let got = try await Self.members(h, rules)
            #expect(got == expected, "\(rules)", sourceLocation: sourceLocation)
        }
        // Identifier values are normalised and hashed like ingestion.
        try await check("conditions:\n  - {field: identifiers.email, operator: equals, value: \" ANN@example.com\"}", ["ann"])
        try await check("conditions:\n  - {field: identifiers.email, operator: not_exists}", ["cat"])
        // bob granted ads, then revoked everything with "all".
        try await check("conditions:\n  - {field: consent.ads, operator: equals, value: true}", ["ann"])
        try await check("conditions:\n  - {field: consent.email, operator: not_equals, value: true}", ["bob", "cat", "dan"])
        try await check("conditions:\n  - {field: segment, operator: equals, value: vip}", ["ann"])
        try await check("conditions:\n  - {field: segment, operator: not_equals, value: vip}", ["bob", "cat", "dan"])
        try await check("""
            logic: or
            conditions:
              - {field: profile_data.country, operator: equals, value: UK}
            groups:
              - logic: and
                conditions:
                  - {field: lifecycle_stage, operator: equals, value: customer}
                  - {field: total_revenue, operator: greater_than, value: 100}
            """, ["ann", "dan"])
    }

    @Test func consentIsTheRecordInForceAtTheEvaluationInstant() async throws {
        let h = try await Self.harness()
        // After the evaluation instant ann withdraws email consent and dan gives it.
        h.setNow("2026-04-02T00:00:00Z")
        try await h.ingest([
            ["type": "track", "userId": "ann", "event": "Unsubscribed", "timestamp": "2026-04-01T00:00:00Z", "messageId": "a9", "context": ["consent": ["email": false]]],
            ["type": "track", "userId": "dan", "event": "Subscribed", "timestamp": "2026-04-01T00:00:00Z", "messageId": "d9", "context": ["consent": ["email": true]]],
        ])
        let rule = "conditions:\n  - {field: consent.email, operator: equals, value: true}"
        #expect(try await Self.members(h, rule) == ["ann"])
        #expect(try await Self.members(h, rule, asOf: EngineHarness.instant("2026-04-02T00:00:00Z")) == ["dan"])
    }

    @Test func aLongChainOfSegmentReferencesEvaluates() async throws {
        let h = try await Self.harness()
        // big-0 holds ann; each big-N is big-(N-1) and a customer, twelve levels deep;
        // both-ends references the chain's two ends, sharing their compiled queries.
        var extra = ["big-0.yaml": "kind: Segment\nname: big-0\nrules:\n  conditions:\n    - {field: total_revenue, operator: greater_than, value: 100}\n"]
        for level in 1...12 {
            extra["big-\(level).yaml"] = """
                kind: Segment
                name: big-\(level)
                rules:
                  conditions:
                    - {field: segment, operator: equals, value: big-\(level - 1)}
                    - {field: lifecycle_stage, operator: equals, value: customer}
                    - {field: total_events, operator: greater_than, value: 0}

                """
        }
        #expect(try await Self.members(h, "conditions:\n  - {field: segment, operator: equals, value: big-12}", extra: extra) == ["ann"])
        #expect(try await Self.members(h, "logic: or\nconditions:\n  - {field: segment, operator: in, value: [big-12, big-3]}\n  - {field: segment, operator: equals, value: big-0}", extra: extra) == ["ann"])
        #expect(try await Self.members(h, "conditions:\n  - {field: segment, operator: not_equals, value: big-12}", extra: extra) == ["bob", "cat", "dan"])
    }

    /// SQLite refuses an expression deeper than 1,000: long `in` lists and
    /// long condition lists compile to balanced trees, not chains.
    @Test func thousandsOfValuesAndConditionsEvaluate() async throws {
        let h = try await Self.harness()
        let countries = (0..<3_000).map { "\"X\($0)\"" }.joined(separator: ", ")
        #expect(try await Self.members(h, "conditions:\n  - {field: profile_data.country, operator: in, value: [\(countries), \"UK\"]}") == ["dan"])
        #expect(try await Self.members(h, "conditions:\n  - {field: profile_data.country, operator: not_in, value: [\(countries), \"UK\"]}") == ["ann", "bob", "cat"])
        let conditions = (0..<1_500).map { "  - {field: total_events, operator: greater_than, value: \($0 % 3 - 2)}" }.joined(separator: "\n")
        #expect(try await Self.members(h, "conditions:\n" + conditions + "\n  - {field: profile_data.country, operator: equals, value: US}") == ["ann"])
        #expect(try await Self.members(h, "logic: or\nconditions:\n" + conditions.replacingOccurrences(of: "greater_than", with: "less_than") + "\n  - {field: profile_data.country, operator: equals, value: CA}") == ["bob"])
    }

    @Test func conditionsThatCanNeverMatchStillCompile() async throws {
        let h = try await Self.harness()
        let loaded = EngineHarness.load(Self.definitions)
        let evaluator = SegmentEvaluator(definitions: loaded.definitions, runtime: h.runtime)
        // A null matches nothing (a missing value matches only not_equals, not_in and
        // not_exists); the field's JSON path is bound before the comparison folds to false.
        // Validation refuses contains on identifiers (below); the builder copes anyway.
        for rule in [
            #"{"field": "profile_data.coupon", "operator": "in", "value": [null]}"#,
            #"{"field": "profile_data.coupon", "operator": "equals", "value": null}"#,
            #"{"field": "identifiers.email", "operator": "contains", "value": "example"}"#,
        ] {
            let segment = try JSONValueDecoder().decode(SegmentDefinition.self, from: try JSONParser.parse(#"{"name": "never", "rules": {"conditions": ["# + rule + "]}}"))
            let result = try await evaluator.preview(segment, store: h.store, asOf: Self.asOf, sample: 10)
            #expect(result.count == 0, "\(rule)")
        }
        let file = "kind: Segment\nname: probe\nrules:\n  conditions:\n    - {field: identifiers.email, operator: contains, value: example.com}\n"
        let diagnostics = EngineHarness.load(Self.definitions.merging(["probe.yaml": file]) { $1 }).diagnostics.map(\.formatted)
        #expect(diagnostics.contains { $0.contains("\"contains\" does not apply to identifiers.email, which holds identifier values, stored as SHA-256 hashes") }, "\(diagnostics)")
    }

    @Test func booleansNumbersStringsAndDatesNeverMix() async throws {
        let h = try await Self.harness()
        try await h.ingest([
            ["type": "identify", "userId": "ann", "traits": ["flag": true, "joined": "2026-01-05T10:00:00.700Z", "since": "2026-01-05T11:00:00+0100"], "timestamp": "2026-01-02T00:00:00Z", "messageId": "a5"],
            ["type": "identify", "userId": "bob", "traits": ["flag": 1, "joined": 20_260_105, "since": "1990"], "timestamp": "2025-06-02T00:00:00Z", "messageId": "b5"],
            ["type": "identify", "userId": "dan", "traits": ["flag": "true", "joined": ["2026-01-05"], "since": "2026-01-05"], "timestamp": "2026-02-02T00:00:00Z", "messageId": "d5"],
        ])
        func check(_ rule: String, _ expected: Set<String>, sourceLocation: Testing.SourceLocation = #_sourceLocation) async throws {
            let got = try await Self.members(h, "conditions:\n  - " + rule)
            #expect(got == expected, "\(rule)", sourceLocation: sourceLocation)
        }
        try await check("{field: profile_data.flag, operator: equals, value: true}", ["ann"])
        try await check("{field: profile_data.flag, operator: equals, value: 1}", ["bob"])
        try await check("{field: profile_data.flag, operator: equals, value: \"true\"}", ["dan"])
        try await check("{field: profile_data.flag, operator: greater_than, value: 0}", ["bob"])
        try await check("{field: profile_data.flag, operator: in, value: [true, 1]}", ["ann", "bob"])
        try await check("{field: profile_data.flag, operator: not_in, value: [1, \"true\"]}", ["ann", "cat"])
        try await check("{field: profile_data.flag, operator: not_equals, value: true}", ["bob", "cat", "dan"])
        try await check("{field: profile_data.flag, operator: contains, value: tru}", ["dan"])
        // Dates compare to the millisecond; a number or a list is never a date.
        try await check("{field: profile_data.joined, operator: after, value: \"2026-01-05T10:00:00.500Z\"}", ["ann"])
        try await check("{field: profile_data.joined, operator: before, value: \"2026-01-05T10:00:00.800Z\"}", ["ann"])
        try await check("{field: profile_data.joined, operator: before, value: \"2026-01-05T10:00:00.700Z\"}", [])
        try await check("{field: profile_data.joined, operator: within_last, value: 3650, unit: days}", ["ann"])
        try await check("{field: profile_data.joined, operator: exists}", ["ann", "bob", "dan"])
        // Stored dates are read by the rule parser: an offset without a colon is a date, "1990" is not.
        try await check("{field: profile_data.since, operator: equals, value: \"2026-01-05T10:00:00Z\"}", ["ann"])
        try await check("{field: profile_data.since, operator: equals, value: \"2026-01-05T00:00:00.000Z\"}", ["dan"])
        try await check("{field: profile_data.since, operator: before, value: \"2000-01-01\"}", [])
        try await check("{field: profile_data.since, operator: equals, value: \"1990\"}", ["bob"])
        // A value that is no date is simply not equal to one: not_equals and not_in keep it.
        try await check("{field: profile_data.since, operator: not_equals, value: \"2026-01-05T00:00:00Z\"}", ["ann", "bob", "cat"])
        try await check("{field: profile_data.joined, operator: not_in, value: [\"2026-01-05T10:00:00.700Z\", \"1990-01-01\"]}", ["bob", "cat", "dan"])
        // A null in a list matches nothing and hides nothing.
        try await check("{field: profile_data.flag, operator: not_in, value: [1, null]}", ["ann", "cat", "dan"])
        try await check("{field: profile_data.flag, operator: in, value: [1, null]}", ["bob"])
    }

    @Test func aStaticSegmentIsReferencedByItsStoredMembers() async throws {
        let h = try await Self.harness()
        let extra = ["picked.yaml": "kind: Segment\nname: picked\nsegment_type: static\n"]
        try await #expect(Self.members(h, "conditions:\n  - {field: segment, operator: equals, value: picked}", extra: extra) == [])
        let dan = try #require(try await h.profileID(type: "external_id", value: "dan"))
        let bob = try #require(try await h.profileID(type: "external_id", value: "bob"))
        _ = try await h.store.changeStaticMembers(tenant: "default", segment: "picked", add: [dan, bob], remove: [], at: Self.asOf, runID: "r1")
        try await #expect(Self.members(h, "conditions:\n  - {field: segment, operator: equals, value: picked}", extra: extra) == ["bob", "dan"])
        try await #expect(Self.members(h, "conditions:\n  - {field: segment, operator: in, value: [picked, vip]}", extra: extra) == ["ann", "bob", "dan"])
        try await #expect(Self.members(h, "conditions:\n  - {field: segment, operator: not_equals, value: picked}\n  - {field: segment, operator: not_equals, value: vip}", extra: extra) == ["cat"])
    }

    @Test func theSeedsExampleSegmentSelectsRecentRepeatCustomersInNorthAmericaAndTheUK() async throws {
        let h = try await Self.harness()
        let got = try await Self.members(h, """
            logic: and
            conditions:
              - {field: lifecycle_stage, operator: equals, value: customer}
              - {field: event, event_name: Purchase, operator: within_last, value: 30, unit: days}
            groups:
              - logic: or
                conditions:
                  - {field: profile_data.country, operator: in, value: [US, CA, UK]}
            """)
        #expect(got == ["ann", "dan"])
    }
}
