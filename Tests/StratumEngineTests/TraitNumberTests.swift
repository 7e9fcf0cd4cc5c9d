import Foundation
import GRDB
import StratumCrypto
import StratumDefinitions
import StratumEngine
import StratumJSON
import StratumStore
import Testing

/// Traits aggregate stored JSON numbers as SQLite reads them: SQLite itself
/// is the reference (its AVG, MIN, MAX and COUNT DISTINCT over
/// `json_extract`), for numbers ingestion never writes (exponents, past 64
/// bits, -2^63) as well as plain ones.
struct TraitNumberTests {
    static let texts = [
        "7", "-0", "1.0", "1e3", "1E-7", "-12.50", "0.1", "9223372036854775807", "9223372036854775808",
        "-9223372036854775808", "123456789012345678901234", "2.5e-3", "7.0", "\"7\"", "true", "null", "[1]", "{\"a\":1}",
    ]

    /// A store with one profile whose "Raw" events carry these JSON texts as
    /// property `v` (written as is, past ingestion), refreshed with `traits`.
    /// The harness is returned with it: its store is removed when it goes.
    static func refresh(_ traits: [String: String], overStoredValues texts: [String]) async throws -> (EngineHarness, DatabaseQueue, String) {
        let harness = try EngineHarness(definitions: traits)
        let outcome = try await harness.ingest([["type": "track", "userId": "u", "event": "Seen", "messageId": "m0"]])
        let profile = try #require(profileID(of: outcome[0]))
        let file = try DatabaseQueue(path: harness.store.path)
        try await file.write { db in
            for (index, text) in texts.enumerated() {
                try db.execute(sql: """
                    INSERT INTO events (tenant_id, id, profile_id, source_id, type, event_name, event_time, received_at, idempotency_key,
                      properties, context, identifiers, processed, emq_score)
                    VALUES ('default', ?, ?, 'web', 'track', 'Raw', ?, ?, ?, ?, '{}', '[]', 1, 0.5)
                    """, arguments: ["raw\(index)", profile, 1_767_225_600_000 + index, 1_767_225_600_000 + index, "raw\(index)", #"{"v":\#(text)}"#])
            }
        }
        let loaded = DefinitionLoader.load(files: traits.sorted { $0.key < $1.key }.map { ($0.key, Array($0.value.utf8)) })
        _ = try await DefinitionEvaluator(definitions: loaded.definitions, store: harness.store).refresh(asOf: EngineHarness.instant("2027-01-01T00:00:00Z"))
        return (harness, file, profile)
    }

    @Test func numbersAsStoredAggregateAsSQLiteReadsThem() async throws {
        let traits = [
            "sum.yaml": "kind: Trait\nname: total\ntype: sum\nevent: Raw\nproperty: v\n",
            "avg.yaml": "kind: Trait\nname: mean\ntype: average\nevent: Raw\nproperty: v\n",
            "min.yaml": "kind: Trait\nname: least\ntype: min\nevent: Raw\nproperty: v\n",
            "max.yaml": "kind: Trait\nname: most\ntype: max\nevent: Raw\nproperty: v\n",
            "distinct.yaml": "kind: Trait\nname: kinds\ntype: unique_count\nevent: Raw\nproperty: v\n",
        ]
        let (harness, file, profile) = try await Self.refresh(traits, overStoredValues: Self.texts)
        let stored = try #require(try await file.read { try String.fetchOne($0, sql: "SELECT computed_traits FROM profiles WHERE id = ?", arguments: [profile]) })
        guard case .object(let computed) = try JSONParser.parse(stored) else { Issue.record("computed_traits is not an object"); return }

        let numeric = "CASE WHEN json_type(properties, '$.v') IN ('integer', 'real') THEN json_extract(properties, '$.v') END"
        let reference = try await file.read { db in
            try Row.fetchOne(db, sql: """
                SELECT AVG(\(numeric)), MIN(\(numeric)), MAX(\(numeric)),
                  COUNT(DISTINCT CASE WHEN json_type(properties, '$.v') IN ('integer', 'real') THEN json_extract(properties, '$.v')
                                      WHEN json_type(properties, '$.v') <> 'null' THEN properties -> '$.v' END)
                FROM events WHERE event_name = 'Raw'
                """)
        }
        let row = try #require(reference)
        let mean: Double = row[0]
        #expect(abs((computed["mean"]?.numberValue ?? .nan) - mean) <= abs(mean) * 1e-12)
        #expect(computed["least"]?.numberValue == (row[1] as Double))
        #expect(computed["most"]?.numberValue == (row[2] as Double))
        #expect(computed["kinds"]?.numberValue == Double(row[3] as Int))

        // The exact sum of every number, as Foundation's Decimal adds them written out.
        let numbers = Self.texts.filter { $0.first == "-" || $0.first!.isNumber }
        let expected = numbers.reduce(Decimal(0)) { $0 + Decimal(string: $1, locale: Locale(identifier: "en_US_POSIX"))! }
        let total = try #require(try await file.read { try String.fetchOne($0, sql: "SELECT computed_traits -> '$.total' FROM profiles WHERE id = ?", arguments: [profile]) })
        #expect(total == "\(expected)")
        withExtendedLifetime(harness) {}
    }

    /// Above 2^53 a double and an integer differ by less than a double's
    /// step: they are compared exactly, as SQLite compares them.
    @Test func integersAndDoublesCompareExactlyPastTwoToThe53() async throws {
        let traits = [
            "max.yaml": "kind: Trait\nname: most\ntype: max\nevent: Raw\nproperty: v\n",
            "min.yaml": "kind: Trait\nname: least\ntype: min\nevent: Raw\nproperty: v\n",
        ]
        let (harness, file, profile) = try await Self.refresh(traits, overStoredValues: ["9007199254740992.0", "9007199254740993"])
        let stored = try #require(try await file.read { try String.fetchOne($0, sql: "SELECT computed_traits FROM profiles WHERE id = ?", arguments: [profile]) })
        let object = try #require(RawJSONObject(stored))
        let reference = try #require(try await file.read { db in
            try Row.fetchOne(db, sql: "SELECT MIN(json_extract(properties, '$.v')), CAST(MAX(json_extract(properties, '$.v')) AS TEXT) FROM events WHERE event_name = 'Raw'")
        })
        // The double 2^53 comes first; the integer 2^53 + 1 after it is larger (as Doubles they are equal).
        #expect(object["most"].map { String(decoding: $0, as: UTF8.self) } == "9007199254740993")
        #expect((reference[1] as String) == "9007199254740993")
        #expect(object["least"].map { String(decoding: $0, as: UTF8.self) } == "9007199254740992")
        #expect((reference[0] as Double) == 9_007_199_254_740_992)
        withExtendedLifetime(harness) {}
    }

    @Test func instantsAreFormattedAsSQLiteFormatsThem() throws {
        var random = SplitMix64(seed: 7)
        // Year 1000 to 9999, and the instants either side of the epoch and of a day.
        var instants: [Int64] = [0, -1, 1, 86_399_999, 86_400_000, -86_400_000, 951_782_400_000, 1_767_225_600_123]
        for _ in 0..<2_000 {
            instants.append(-30_610_224_000_000 + Int64(random.next() % 283_996_800_000_000))
        }
        let db = try DatabaseQueue()
        try db.read { db in
            for instant in instants {
                let sqlite = try String.fetchOne(db, sql: "SELECT strftime('%Y-%m-%dT%H:%M:%fZ', ? / 1000.0, 'unixepoch')", arguments: [instant])
                #expect(Instant.format(milliseconds: instant) == sqlite, "\(instant)")
            }
        }
    }
}

/// Profiles created after a refresh read the tenant's profile ids still get
/// their values, wherever their ids fall in the order the write pass walks.
struct LateProfileTests {
    @Test func profilesCreatedAfterTheIdsWereReadGetTheirValues() async throws {
        let trait = "kind: Trait\nname: views\ntype: count\nevent: Viewed\n"
        let harness = try EngineHarness(definitions: ["t.yaml": trait])
        try await harness.ingest([
            ["type": "track", "userId": "u1", "event": "Viewed", "messageId": "m1"],
            ["type": "track", "userId": "u2", "event": "Viewed", "messageId": "m2"],
            ["type": "track", "userId": "u2", "event": "Viewed", "messageId": "m3"],
        ])
        let store = harness.store
        let slots = try await store.profileSlots(tenant: "default")
        // Before, between and after the ids read ("id-000001"...), with 1, 2 and 3 events.
        let late = ["a-late": 1, "id-000001-late": 2, "z-late": 3]
        try await store.write { transaction in
            for (id, count) in late {
                try transaction.insertProfile(ProfileRecord(tenantID: "default", id: id, now: 1, seenAt: 1))
                for index in 0..<count {
                    _ = try transaction.insertEvent(NewEvent(
                        tenantID: "default", id: "\(id)-\(index)", profileID: id, sourceID: "web", type: .track, eventName: "Viewed",
                        eventTime: EngineHarness.instant("2026-01-01T00:00:00Z"), receivedAt: 1, idempotencyKey: "\(id)-\(index)",
                        propertiesJSON: "{}", contextJSON: "{}", identifiersJSON: "[]", emqScore: nil))
                }
            }
        }
        let definition = try #require(DefinitionLoader.load(files: [("t.yaml", Array(trait.utf8))]).definitions.traits.first?.definition)
        let columns = try await store.traitColumns([definition], asOf: EngineHarness.instant("2026-06-01T00:00:00Z"), profiles: slots)
        try await store.write(columns: columns, tenant: "default")
        for (id, count) in late {
            #expect(try await harness.profile(id)?.computedTraits["views"] == .number(Double(count)), "\(id)")
        }
        let u2 = try #require(try await harness.profileID(type: "external_id", value: "u2"))
        #expect(try await harness.profile(u2)?.computedTraits["views"] == 2)
    }
}

/// RFM inputs when the recency and frequency events differ: recency from the
/// latest recency event, frequency and monetary from frequency events, each
/// in the lookback window; profiles with neither in the window are not scored.
struct RFMInputTests {
    @Test func recencyAndFrequencyEventsMayDiffer() async throws {
        let model = """
            kind: RFM
            name: visits
            recency_event: Visit
            frequency_event: Purchase
            monetary_property: total
            lookback_days: 30
            quintile_scoring: true
            """
        let harness = try EngineHarness(definitions: ["rfm.yaml": model])
        func event(_ user: String, _ name: String, _ time: String, _ total: Double? = nil, _ id: String) -> JSONValue {
            ["type": "track", "userId": .string(user), "event": .string(name), "timestamp": .string(time), "messageId": .string(id),
             "properties": total.map { ["total": .number($0)] } ?? [:]]
        }
        try await harness.ingest([
            event("a", "Visit", "2026-02-27T00:00:00Z", nil, "a1"),
            event("b", "Purchase", "2026-02-19T00:00:00Z", 5, "b1"),
            event("b", "Purchase", "2026-01-20T00:00:00Z", 7, "b2"),
            event("c", "Visit", "2026-02-24T00:00:00Z", nil, "c1"),
            event("c", "Visit", "2026-02-20T00:00:00Z", nil, "c2"),
            event("c", "Purchase", "2026-02-25T00:00:00Z", 10.5, "c3"),
            event("c", "Purchase", "2026-02-26T00:00:00Z", 2.25, "c4"),
            event("d", "Visit", "2026-01-01T00:00:00Z", nil, "d1"),
            event("d", "Purchase", "2026-01-02T00:00:00Z", 3, "d2"),
        ])
        let definition = try #require(DefinitionLoader.load(files: [("rfm.yaml", Array(model.utf8))]).definitions.rfmModels.first?.definition)
        let asOf = EngineHarness.instant("2026-03-01T00:00:00Z")
        let store = harness.store
        // The recency and frequency inputs read different events: passes of their own.
        let slots = try await store.profileSlots(tenant: "default")
        var columns: [TraitColumn] = []
        for input in SQLiteStore.rfmInputTraits(definition) {
            columns += try await store.traitColumns([input], asOf: asOf, profiles: slots)
        }
        let inputs = SQLiteStore.rfmInputs(definition, asOf: asOf, columns: columns)
        var byUser: [String: (days: Int, frequency: Int, monetary: String)] = [:]
        for user in ["a", "b", "c", "d"] {
            let id = try #require(try await harness.profileID(type: "external_id", value: user))
            if let input = inputs.first(where: { $0.profileID == id }) { byUser[user] = (input.days, input.frequency, input.monetaryText) }
        }
        #expect(byUser["a"].map { [$0.days, $0.frequency] } == [2, 0])
        #expect(byUser["a"]?.monetary == "0")
        // No recency event in the window: one day past it.
        #expect(byUser["b"].map { [$0.days, $0.frequency] } == [31, 1])
        #expect(byUser["b"]?.monetary == "5")
        #expect(byUser["c"].map { [$0.days, $0.frequency] } == [5, 2])
        #expect(byUser["c"]?.monetary == "12.75")
        #expect(inputs.map(\.monetary).sorted() == [0, 5, Decimal(string: "12.75")!])
        #expect(byUser["d"] == nil)
        #expect(inputs.count == 3)
        // Through a refresh (the inputs grouped with whatever reads their events): the same profiles are scored.
        let loaded = DefinitionLoader.load(files: [("rfm.yaml", Array(model.utf8))])
        _ = try await DefinitionEvaluator(definitions: loaded.definitions, store: store).refresh(asOf: asOf)
        for (user, scored) in ["a": true, "b": true, "c": true, "d": false] {
            let id = try #require(try await harness.profileID(type: "external_id", value: user))
            #expect((try await harness.profile(id)?.computedTraits["rfm.visits"] != nil) == scored, "\(user)")
        }
    }
}
