import Foundation
import GRDB
import StratumCrypto
import StratumDefinitions
import StratumEngine
import StratumJSON
import StratumStore
import Testing

/// Every trait type and the RFM model on the known people of SegmentQueryTests
/// (ann: 3 purchases 80 + 40.5 + 9 in late February; bob: one 20 purchase in
/// June 2025; dan: 10 + 15 in mid-February; cat: a page view only).
struct TraitAndRFMTests {
    static let traits: [String: String] = [
        "t-count.yaml": "kind: Trait\nname: purchases\ntype: count\nevent: Purchase\n",
        "t-recent.yaml": "kind: Trait\nname: purchases_30d\ntype: count\nevent: Purchase\nwindow: {last: 30, unit: days}\n",
        "t-sum.yaml": "kind: Trait\nname: revenue\ntype: sum\nevent: Purchase\nproperty: total\n",
        "t-average.yaml": "kind: Trait\nname: aov\ntype: average\nevent: Purchase\nproperty: total\n",
        "t-min.yaml": "kind: Trait\nname: smallest\ntype: min\nevent: Purchase\nproperty: total\n",
        "t-max.yaml": "kind: Trait\nname: largest\ntype: max\nevent: Purchase\nproperty: total\n",
        "t-first.yaml": "kind: Trait\nname: first_purchase_at\ntype: first\nevent: Purchase\n",
        "t-last.yaml": "kind: Trait\nname: last_total\ntype: last\nevent: Purchase\nproperty: total\n",
        "t-first-total.yaml": "kind: Trait\nname: first_total\ntype: first\nevent: Purchase\nproperty: total\n",
        "t-unique.yaml": "kind: Trait\nname: distinct_totals\ntype: unique_count\nevent: Purchase\nproperty: total\n",
        "t-exists.yaml": "kind: Trait\nname: bought\ntype: exists\nevent: Purchase\n",
        "t-where.yaml": "kind: Trait\nname: big_orders\ntype: count\nevent: Purchase\nwhere: [{property: total, operator: greater_than, value: 30}]\n",
        // Narrower windows over the same events: computed inside the all-time traits' query.
        "t-recent-sum.yaml": "kind: Trait\nname: revenue_7d\ntype: sum\nevent: Purchase\nproperty: total\nwindow: {last: 7, unit: days}\n",
        "t-recent-aov.yaml": "kind: Trait\nname: aov_7d\ntype: average\nevent: Purchase\nproperty: total\nwindow: {last: 7, unit: days}\n",
        "t-recent-exists.yaml": "kind: Trait\nname: bought_7d\ntype: exists\nevent: Purchase\nwindow: {last: 7, unit: days}\n",
        "t-recent-first.yaml": "kind: Trait\nname: first_purchase_7d\ntype: first\nevent: Purchase\nwindow: {last: 7, unit: days}\n",
        "t-recent-unique.yaml": "kind: Trait\nname: distinct_totals_7d\ntype: unique_count\nevent: Purchase\nproperty: total\nwindow: {last: 7, unit: days}\n",
        "rfm.yaml": "kind: RFM\nname: value\n",
        "rfm-fixed.yaml": "kind: RFM\nname: fixed\nquintile_scoring: false\nthresholds: {recency_days: [7, 30, 90, 180], frequency: [1, 2, 3, 5], monetary: [10, 50, 100, 500]}\n",
    ]

    static func refreshed() async throws -> (EngineHarness, [String: JSONObject]) {
        let harness = try await SegmentQueryTests.harness()
        let files = SegmentQueryTests.definitions.merging(traits) { $1 }.sorted { $0.key < $1.key }.map { ($0.key, Array($0.value.utf8)) }
        let loaded = DefinitionLoader.load(files: files)
        #expect(loaded.diagnostics.filter { $0.severity == .error }.map(\.formatted) == [])
        let runs = try await DefinitionEvaluator(definitions: loaded.definitions, store: harness.store).refresh(asOf: SegmentQueryTests.asOf)
        #expect(runs.map(\.name).sorted() == (traits.keys.compactMap { file in loaded.definitions.traits.first { $0.file == file }?.definition.name } + ["fixed", "value", "vip"]).sorted())
        var byPerson: [String: JSONObject] = [:]
        for person in ["ann", "bob", "dan"] {
            let id = try #require(try await harness.profileID(type: "external_id", value: person))
            byPerson[person] = try #require(try await harness.profile(id)).computedTraits
        }
        let cat = try #require(try await harness.profileID(type: "anonymous_id", value: "cat"))
        byPerson["cat"] = try #require(try await harness.profile(cat)).computedTraits
        return (harness, byPerson)
    }

    @Test func everyTraitTypeHasItsKnownValue() async throws {
        let (_, traits) = try await Self.refreshed()
        let ann = try #require(traits["ann"])
        let cat = try #require(traits["cat"])
        #expect(ann["purchases"] == 3)
        #expect(traits["bob"]?["purchases"] == 1)
        #expect(cat["purchases"] == 0)
        #expect(ann["purchases_30d"] == 3)
        #expect(traits["bob"]?["purchases_30d"] == 0)
        #expect(ann["revenue"] == 129.5)
        #expect(traits["dan"]?["revenue"] == 25)
        #expect(cat["revenue"] == 0)
        #expect(ann["aov"]?.numberValue.map { abs($0 - 43.1666666) < 0.0001 } == true)
        #expect(cat["aov"] == nil)
        #expect(ann["smallest"] == 9)
        #expect(ann["largest"] == 80)
        #expect(ann["first_purchase_at"] == "2026-02-20T00:00:00.000Z")
        #expect(ann["first_total"] == 80)
        #expect(ann["last_total"] == 9)
        #expect(ann["distinct_totals"] == 3)
        #expect(ann["bought"] == true)
        #expect(cat["bought"] == false)
        #expect(ann["big_orders"] == 2)
        #expect(traits["dan"]?["big_orders"] == 0)
        // ann bought 40.5 and 9 in the last 7 days (25 and 26 February), dan nothing since the 15th.
        #expect(ann["revenue_7d"] == 49.5)
        #expect(ann["aov_7d"] == 24.75)
        #expect(ann["bought_7d"] == true)
        #expect(ann["first_purchase_7d"] == "2026-02-25T00:00:00.000Z")
        #expect(ann["distinct_totals_7d"] == 2)
        for person in ["dan", "bob", "cat"] {
            #expect(traits[person]?["revenue_7d"] == 0, "\(person)")
            #expect(traits[person]?["aov_7d"] == nil, "\(person)")
            #expect(traits[person]?["bought_7d"] == false, "\(person)")
            #expect(traits[person]?["first_purchase_7d"] == nil, "\(person)")
            #expect(traits[person]?["distinct_totals_7d"] == 0, "\(person)")
        }
    }

    @Test func sumsAreExactDecimals() async throws {
        let harness = try EngineHarness(definitions: ["t.yaml": "kind: Trait\nname: spend\ntype: sum\nevent: Purchase\nproperty: total\n"])
        var messages: [JSONValue] = []
        for index in 0..<10 { messages.append(["type": "track", "userId": "u", "event": "Purchase", "properties": ["total": 0.1], "messageId": .string("m\(index)")]) }
        messages.append(["type": "track", "userId": "u", "event": "Purchase", "properties": ["total": "0.01"], "messageId": "m10"])
        try await harness.ingest(messages)
        let loaded = DefinitionLoader.load(files: [("t.yaml", Array("kind: Trait\nname: spend\ntype: sum\nevent: Purchase\nproperty: total\n".utf8))])
        _ = try await DefinitionEvaluator(definitions: loaded.definitions, store: harness.store).refresh(asOf: EngineHarness.instant("2027-01-01T00:00:00Z"))
        let id = try #require(try await harness.profileID(type: "external_id", value: "u"))
        let traits = try #require(try await harness.profile(id)).computedTraits
        // Numeric strings are not numbers: only the ten 0.1s count, summed exactly.
        #expect(traits["spend"]?.jsonText() == "1")
    }

    @Test func largeSumsStayExact() async throws {
        let trait = "kind: Trait\nname: spend\ntype: sum\nevent: Purchase\nproperty: total\n"
        let harness = try EngineHarness(definitions: ["t.yaml": trait])
        try await harness.ingest([
            ["type": "track", "userId": "u", "event": "Purchase", "properties": ["total": 12_345_678_901_234.56], "messageId": "m1"],
            ["type": "track", "userId": "u", "event": "Purchase", "properties": ["total": 0.01], "messageId": "m2"],
        ])
        let loaded = DefinitionLoader.load(files: [("t.yaml", Array(trait.utf8))])
        _ = try await DefinitionEvaluator(definitions: loaded.definitions, store: harness.store).refresh(asOf: EngineHarness.instant("2027-01-01T00:00:00Z"))
        let id = try #require(try await harness.profileID(type: "external_id", value: "u"))
        #expect(try #require(try await harness.profile(id)).computedTraits["spend"]?.jsonText() == "12345678901234.57")
    }

    /// Computed traits are evaluation's: ingestion never rewrites them (its
    /// records hold numbers as Doubles), and a merge only adds the absorbed
    /// profile's values the survivor lacks, as they were written.
    @Test func ingestionKeepsComputedTraitsAsWrittenAndMergesCarryMissingOnes() async throws {
        let traits = [
            "s.yaml": "kind: Trait\nname: spend\ntype: sum\nevent: Purchase\nproperty: total\n",
            "v.yaml": "kind: Trait\nname: viewed_price\ntype: average\nevent: Viewed\nproperty: price\n",
        ]
        let harness = try EngineHarness(definitions: traits)
        try await harness.ingest([
            ["type": "track", "userId": "u", "event": "Purchase", "properties": ["total": 1_234_567_890_123_456.8], "messageId": "m1"],
            ["type": "track", "userId": "u", "event": "Purchase", "properties": ["total": 0.01], "messageId": "m2"],
            ["type": "track", "anonymousId": "a", "event": "Viewed", "properties": ["price": 5], "messageId": "m3"],
        ])
        let loaded = DefinitionLoader.load(files: traits.sorted { $0.key < $1.key }.map { ($0.key, Array($0.value.utf8)) })
        _ = try await DefinitionEvaluator(definitions: loaded.definitions, store: harness.store).refresh(asOf: EngineHarness.instant("2027-01-01T00:00:00Z"))
        let id = try #require(try await harness.profileID(type: "external_id", value: "u"))
        let file = try DatabaseQueue(path: harness.store.path)
        func stored() throws -> String? {
            try file.read { try String.fetchOne($0, sql: "SELECT computed_traits FROM profiles WHERE id = ?", arguments: [id]) }
        }
        // 18 significant digits: more than a Double holds.
        let exact = try #require(try stored())
        #expect(exact == #"{"spend":1234567890123456.81}"#)
        try await harness.ingest([["type": "identify", "userId": "u", "traits": ["name": "U"], "messageId": "m4"]])
        #expect(try stored() == exact)
        try await harness.ingest([["type": "identify", "userId": "u", "anonymousId": "a", "messageId": "m5"]])
        #expect(try stored() == #"{"spend":1234567890123456.81,"viewed_price":5}"#)
    }

    /// Sums against Foundation's Decimal over the same values' shortest text:
    /// amounts with 0-4 decimals of both signs, a few past 18 digits or written
    /// with an exponent (the slower exact path), per profile.
    @Test(arguments: [1, 2, 3])
    func sumsEqualFoundationDecimalSums(seed: UInt64) async throws {
        let trait = "kind: Trait\nname: spend\ntype: sum\nevent: Purchase\nproperty: total\n"
        let harness = try EngineHarness(definitions: ["t.yaml": trait])
        var random = SplitMix64(seed: seed)
        var expected: [String: Decimal] = [:]
        var messages: [JSONValue] = []
        for index in 0..<600 {
            // u4 and u5 get plain amounts only: their sums never leave the scaled integers.
            let user = "u\(index % 6)"
            let total: Double = switch user >= "u4" ? 2 : random.next() % 20 {
            case 0: Double(random.next() % 1_000_000_000) * 1e12 + 0.5
            case 1: Double(random.next() % 1000) * 1e-7
            default: (Double(random.next() % 2_000_000) - 1_000_000) / [1, 10, 100, 1000, 10000][Int(random.next() % 5)]
            }
            expected[user, default: 0] += Decimal(string: "\(total)", locale: Locale(identifier: "en_US_POSIX"))!
            messages.append(["type": "track", "userId": .string(user), "event": "Purchase", "properties": ["total": .number(total)], "messageId": .string("m\(index)")])
        }
        try await harness.ingest(messages)
        let loaded = DefinitionLoader.load(files: [("t.yaml", Array(trait.utf8))])
        _ = try await DefinitionEvaluator(definitions: loaded.definitions, store: harness.store).refresh(asOf: EngineHarness.instant("2027-01-01T00:00:00Z"))
        let file = try DatabaseQueue(path: harness.store.path)
        for (user, sum) in expected {
            let id = try #require(try await harness.profileID(type: "external_id", value: user))
            let stored = try #require(try await file.read { try String.fetchOne($0, sql: "SELECT computed_traits FROM profiles WHERE id = ?", arguments: [id]) })
            let value = try #require(RawJSONObject(stored)?["spend"])
            #expect(String(decoding: value, as: UTF8.self) == "\(sum)", "\(user)")
        }
    }

    @Test func firstAndLastFollowStorageOrderAtTheSameInstantAndSkipEventsWithoutTheProperty() async throws {
        let trait = "kind: Trait\nname: last_category\ntype: last\nevent: Viewed\nproperty: category\n"
        let first = "kind: Trait\nname: first_category\ntype: first\nevent: Viewed\nproperty: category\n"
        let harness = try EngineHarness(definitions: ["t.yaml": trait, "f.yaml": first])
        harness.setNow("2026-03-01T00:00:00Z")
        // One batch without client timestamps: all three share the receiving instant.
        try await harness.ingest([
            ["type": "track", "userId": "u", "event": "Viewed", "properties": ["category": .null], "messageId": "m0"],
            ["type": "track", "userId": "u", "event": "Viewed", "properties": ["category": "shoes"], "messageId": "m1"],
            ["type": "track", "userId": "u", "event": "Viewed", "properties": ["category": "hats"], "messageId": "m2"],
            ["type": "track", "userId": "u", "event": "Viewed", "properties": [:], "messageId": "m3"],
            // v: the first and the last instants have no category at all; the ones between do.
            ["type": "track", "userId": "v", "event": "Viewed", "properties": [:], "timestamp": "2026-02-01T00:00:00Z", "messageId": "v0"],
            ["type": "track", "userId": "v", "event": "Viewed", "properties": ["category": "bags"], "timestamp": "2026-02-02T00:00:00Z", "messageId": "v1"],
            ["type": "track", "userId": "v", "event": "Viewed", "properties": ["category": "belts"], "timestamp": "2026-02-03T00:00:00Z", "messageId": "v2"],
            ["type": "track", "userId": "v", "event": "Viewed", "properties": ["category": .null], "timestamp": "2026-02-04T00:00:00Z", "messageId": "v3"],
            // w: never a category.
            ["type": "track", "userId": "w", "event": "Viewed", "properties": ["color": "red"], "messageId": "w0"],
        ])
        let loaded = DefinitionLoader.load(files: [("t.yaml", Array(trait.utf8)), ("f.yaml", Array(first.utf8))])
        _ = try await DefinitionEvaluator(definitions: loaded.definitions, store: harness.store).refresh(asOf: EngineHarness.instant("2026-03-02T00:00:00Z"))
        let id = try #require(try await harness.profileID(type: "external_id", value: "u"))
        let traits = try #require(try await harness.profile(id)).computedTraits
        #expect(traits["last_category"] == "hats")
        #expect(traits["first_category"] == "shoes")
        let v = try #require(try await harness.profileID(type: "external_id", value: "v"))
        let vTraits = try #require(try await harness.profile(v)).computedTraits
        #expect(vTraits["last_category"] == "belts")
        #expect(vTraits["first_category"] == "bags")
        let w = try #require(try await harness.profileID(type: "external_id", value: "w"))
        let wTraits = try #require(try await harness.profile(w)).computedTraits
        #expect(wTraits["last_category"] == nil)
        #expect(wTraits["first_category"] == nil)
    }

    @Test func onlyNumbersAreNumbersInAggregates() async throws {
        let files = ["t.yaml": "kind: Trait\nname: x\ntype: count\nevent: Purchase\n"].merging(Self.traits) { $1 }
        let harness = try EngineHarness(definitions: files)
        var messages: [JSONValue] = []
        // true is not 1 and "12.5" is a string: neither is summed, averaged, or a minimum or maximum.
        for (index, total) in ([true, "12.5", 7, 7.0, .null, 3] as [JSONValue]).enumerated() {
            messages.append(["type": "track", "userId": "eve", "event": "Purchase", "properties": ["total": total],
                             "timestamp": .string("2026-02-0\(index + 1)T00:00:00Z"), "messageId": .string("e\(index)")])
        }
        // fay's only total is a string: no average, minimum or maximum at all, and a sum of 0.
        messages.append(["type": "track", "userId": "fay", "event": "Purchase", "properties": ["total": "9.99"], "timestamp": "2026-02-01T00:00:00Z", "messageId": "f0"])
        try await harness.ingest(messages)
        let loaded = DefinitionLoader.load(files: files.sorted { $0.key < $1.key }.map { ($0.key, Array($0.value.utf8)) })
        let evaluator = DefinitionEvaluator(definitions: loaded.definitions, store: harness.store)
        _ = try await evaluator.refresh(asOf: SegmentQueryTests.asOf)
        let id = try #require(try await harness.profileID(type: "external_id", value: "eve"))
        let traits = try #require(try await harness.profile(id)).computedTraits
        #expect(traits["revenue"] == 17)
        #expect(traits["aov"]?.numberValue.map { abs($0 - 17.0 / 3) < 0.0001 } == true)
        #expect(traits["smallest"] == 3)
        #expect(traits["largest"] == 7)
        // Distinct values: true, "12.5", 7 (= 7.0) and 3; null is no value.
        #expect(traits["distinct_totals"] == 4)
        // first/last keep the property's JSON value as sent.
        #expect(traits["first_total"] == true)
        #expect(traits["last_total"] == 3)
        let fayID = try #require(try await harness.profileID(type: "external_id", value: "fay"))
        let fay = try #require(try await harness.profile(fayID)).computedTraits
        #expect(fay["aov"] == nil)
        #expect(fay["smallest"] == nil)
        #expect(fay["largest"] == nil)
        #expect(fay["revenue"] == 0)
        #expect(fay["first_total"] == "9.99")
        // RFM's monetary input follows the same rule as the sum trait.
        let model = try #require(loaded.definitions.rfmModels.first { $0.definition.name == "value" }?.definition)
        let inputColumns = try await harness.store.traitColumns(SQLiteStore.rfmInputTraits(model), asOf: SegmentQueryTests.asOf, profiles: harness.store.profileSlots(tenant: "default"))
        let inputs = SQLiteStore.rfmInputs(model, asOf: SegmentQueryTests.asOf, columns: inputColumns)
        #expect(inputs.first { $0.profileID == id }?.monetary == 17)
        #expect(inputs.first { $0.profileID == id }?.frequency == 6)
    }

    /// Traits over the same events share one query and every value is written
    /// in one pass; the results must be those of each definition on its own.
    @Test func definitionsComputedTogetherEqualEachComputedAlone() async throws {
        let files = SegmentQueryTests.definitions.merging(Self.traits) { $1 }.sorted { $0.key < $1.key }.map { ($0.key, Array($0.value.utf8)) }
        let definitions = DefinitionLoader.load(files: files).definitions
        let traits = definitions.traits.map(\.definition)
        let models = definitions.rfmModels.map(\.definition)
        let (alone, together) = (try await SegmentQueryTests.harness(), try await SegmentQueryTests.harness())
        let one = DefinitionEvaluator(definitions: definitions, store: alone.store)
        var outcomes: [DefinitionEvaluator.ValueOutcome] = []
        for trait in traits { outcomes += await one.refreshValues(traits: [trait], rfmModels: [], asOf: SegmentQueryTests.asOf) }
        for model in models { outcomes += await one.refreshValues(traits: [], rfmModels: [model], asOf: SegmentQueryTests.asOf) }
        let all = await DefinitionEvaluator(definitions: definitions, store: together.store).refreshValues(traits: traits, rfmModels: models, asOf: SegmentQueryTests.asOf)
        #expect(all.count == traits.count + models.count)
        for outcome in outcomes + all {
            if case .failure(let error) = outcome.result { Issue.record("\(outcome.name): \(error)") }
        }
        // Member by member, as the bytes stored (member order follows the order written).
        func stored(_ harness: EngineHarness, _ id: String) async throws -> [String: String] {
            let text = try await DatabaseQueue(path: harness.store.path).read {
                try String.fetchOne($0, sql: "SELECT computed_traits FROM profiles WHERE id = ?", arguments: [id])
            }
            let object = try #require(text.flatMap(RawJSONObject.init))
            return Dictionary(uniqueKeysWithValues: object.members.map { ($0.key, String(decoding: $0.value, as: UTF8.self)) })
        }
        for (type, value) in [("external_id", "ann"), ("external_id", "bob"), ("external_id", "dan"), ("anonymous_id", "cat")] {
            let aloneID = try #require(try await alone.profileID(type: type, value: value))
            let togetherID = try #require(try await together.profileID(type: type, value: value))
            let separately = try await stored(alone, aloneID)
            let jointly = try await stored(together, togetherID)
            #expect(separately == jointly, "\(value)")
            if value == "ann" { #expect(separately.count == traits.count + models.count, "ann has a value of every trait and model") }
        }
    }

    @Test func aLaterRefreshRewritesOnlyWhatChanged() async throws {
        let (harness, before) = try await Self.refreshed()
        #expect(before["ann"]?["purchases_30d"] == 3)
        let files = SegmentQueryTests.definitions.merging(Self.traits) { $1 }.sorted { $0.key < $1.key }.map { ($0.key, Array($0.value.utf8)) }
        let evaluator = DefinitionEvaluator(definitions: DefinitionLoader.load(files: files).definitions, store: harness.store)
        // Sixty days on, ann's purchases left the 30-day window and bob's left the RFM year.
        _ = try await evaluator.refresh(asOf: EngineHarness.instant("2026-06-10T00:00:00Z"))
        let annID = try #require(try await harness.profileID(type: "external_id", value: "ann"))
        let bobID = try #require(try await harness.profileID(type: "external_id", value: "bob"))
        let ann = try #require(try await harness.profile(annID)).computedTraits
        let bob = try #require(try await harness.profile(bobID)).computedTraits
        #expect(ann["purchases_30d"] == 0)
        #expect(ann["purchases"] == 3)
        #expect(ann["revenue"] == before["ann"]?["revenue"])
        #expect(ann["bought"] == true)
        #expect(bob["rfm.value"] == nil)
        #expect(ann["rfm.value"] != nil)
    }

    @Test func rfmQuintilesAndNamedSegments() async throws {
        let (harness, traits) = try await Self.refreshed()
        // days since purchase 3 / 18 / 272, frequency 3 / 2 / 1, spend 129.5 / 25 / 20.
        #expect(traits["ann"]?["rfm.value"] == ["r": 5, "f": 4, "m": 4, "segment": "Loyal"])
        #expect(traits["dan"]?["rfm.value"] == ["r": 4, "f": 2, "m": 2, "segment": "Potential Loyal"])
        #expect(traits["bob"]?["rfm.value"] == ["r": 2, "f": 1, "m": 1, "segment": "Hibernating"])
        // Only profiles with a purchase in the lookback window are scored.
        #expect(traits["cat"]?["rfm.value"] == nil)
        // Fixed thresholds.
        #expect(traits["ann"]?["rfm.fixed"] == ["r": 5, "f": 4, "m": 4, "segment": "Loyal"])
        #expect(traits["bob"]?["rfm.fixed"] == ["r": 1, "f": 2, "m": 2, "segment": "Hibernating"])
        // Segments read the stored values.
        let members = try await SegmentQueryTests.members(harness, "conditions:\n  - {field: computed_traits.purchases, operator: greater_than, value: 1}", extra: Self.traits)
        #expect(members == ["ann", "dan"])
        let loyal = try await SegmentQueryTests.members(harness, "conditions:\n  - {field: rfm.value.segment, operator: in, value: [Loyal, Champions]}", extra: Self.traits)
        #expect(loyal == ["ann"])
        let recent = try await SegmentQueryTests.members(harness, "conditions:\n  - {field: rfm.value.r, operator: greater_or_equal, value: 4}", extra: Self.traits)
        #expect(recent == ["ann", "dan"])
    }

    @Test func quintileCutPointsUseNearestRankAndTiesScoreAlike() {
        #expect(RFMScoring.cutPoints(Array(1...10)) == [2, 4, 6, 8])
        #expect(Array(1...10).map { RFMScoring.rank($0, cuts: [2, 4, 6, 8]) } == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5])
        #expect(RFMScoring.cutPoints([7, 7, 7, 7, 7]) == [7, 7, 7, 7])
        #expect(Set([7, 7, 7].map { RFMScoring.rank($0, cuts: [7, 7, 7, 7]) }) == [1])
        #expect(RFMScoring.cutPoints([5]) == [5, 5, 5, 5])
        #expect(RFMScoring.cutPoints([Int]()) == [])
    }
}
