import Foundation
import GRDB
import StratumCrypto
import StratumDefinitions
import StratumEngine
import StratumJSON
import StratumStore
import Testing

struct SegmentRefreshTests {
    static let definitions = [
        "buyers.yaml": "kind: Segment\nname: buyers\nrules:\n  conditions:\n    - {field: event, event_name: Purchase, operator: within_last, value: 7, unit: days}\n",
        "not-buyers.yaml": "kind: Segment\nname: not-buyers\nsegment_type: computed\nrules:\n  conditions:\n    - {field: segment, operator: not_equals, value: buyers}\n",
        "a-draft.yaml": "kind: Segment\nname: a-draft\nstatus: draft\nrules:\n  conditions:\n    - {field: total_events, operator: greater_than, value: 0}\n",
        "hand-picked.yaml": "kind: Segment\nname: hand-picked\nsegment_type: static\n",
    ]

    @Test func membershipChangesAreRecordedAsProfilesEnterAndLeave() async throws {
        let harness = try EngineHarness(definitions: Self.definitions)
        try await harness.ingest([
            ["type": "track", "userId": "early", "event": "Purchase", "timestamp": "2026-01-01T00:00:00Z", "messageId": "1"],
            ["type": "track", "userId": "late", "event": "Purchase", "timestamp": "2026-01-06T00:00:00Z", "messageId": "2"],
            ["type": "track", "userId": "never", "event": "Viewed", "timestamp": "2026-01-01T00:00:00Z", "messageId": "3"],
        ])
        let loaded = EngineHarness.load(Self.definitions)
        let evaluator = DefinitionEvaluator(definitions: loaded.definitions, store: harness.store, runtime: harness.runtime)

        let first = try await evaluator.refresh(asOf: EngineHarness.instant("2026-01-07T00:00:00Z"), only: [.segment])
        // Referenced segments run first; drafts and static segments are not evaluated.
        #expect(first.map(\.name) == ["buyers", "not-buyers"])
        #expect(first.map(\.entered) == [2, 1])
        let second = try await evaluator.refresh(asOf: EngineHarness.instant("2026-01-10T00:00:00Z"), only: [.segment])
        // early's purchase left the 7-day window: early exits buyers and enters not-buyers.
        #expect(second.map(\.profiles) == [1, 2])
        #expect(second.map(\.entered) == [0, 1])
        #expect(second.map(\.exited) == [1, 0])

        let early = try #require(try await harness.profileID(type: "external_id", value: "early"))
        let changes = try await harness.store.segmentChanges(tenant: "default").filter { $0.profileID == early }
        #expect(changes.map { "\($0.segment) \($0.change)" } == ["buyers entered", "buyers exited", "not-buyers entered"])
        #expect(changes[1].changedAt == EngineHarness.instant("2026-01-10T00:00:00Z"))
        #expect(try await harness.store.segments(tenant: "default", profileID: early) == ["not-buyers"])

        let states = try await harness.store.segmentStates(tenant: "default")
        #expect(states.map(\.segment) == ["buyers", "not-buyers"])
        #expect(states.map(\.profileCount) == [1, 2])
        #expect(states.allSatisfy { $0.status == "active" && $0.lastComputedAt == EngineHarness.instant("2026-01-10T00:00:00Z") })

        let members = try await harness.store.segmentMembers(tenant: "default", segment: "not-buyers", after: nil, limit: 1)
        let rest = try await harness.store.segmentMembers(tenant: "default", segment: "not-buyers", after: members.last, limit: 10)
        #expect(members.count == 1 && rest.count == 1 && members[0] < rest[0])

        // Re-running at the same instant changes nothing.
        let again = try await evaluator.refresh(asOf: EngineHarness.instant("2026-01-10T00:00:00Z"), only: [.segment])
        #expect(again.map(\.entered) == [0, 0])
        #expect(again.map(\.exited) == [0, 0])
    }

    @Test func referenceOrderPutsEverySegmentAfterThoseItUses() throws {
        let segments = DefinitionLoader.load(files: [
            ("a.yaml", Array("kind: Segment\nname: a\nrules:\n  conditions:\n    - {field: segment, operator: equals, value: c}\n".utf8)),
            ("b.yaml", Array("kind: Segment\nname: b\nrules:\n  groups:\n    - conditions:\n        - {field: segment, operator: in, value: [a, c]}\n".utf8)),
            ("c.yaml", Array("kind: Segment\nname: c\nrules:\n  conditions:\n    - {field: total_events, operator: exists}\n".utf8)),
        ]).definitions.segments.map(\.definition)
        #expect(DefinitionEvaluator.referenceOrder(segments).map(\.name) == ["c", "a", "b"])
        #expect(DefinitionEvaluator.referenceLevels(segments).map { $0.map(\.name) } == [["c"], ["a"], ["b"]])
    }

    /// Segments run together (their queries on readers while one write
    /// transaction holds the writer, each applied as it arrives) end as each
    /// run alone does; one that fails leaves its partner's result and is
    /// recorded as failed.
    @Test func segmentsRunSideBySideEqualEachRunAlone() async throws {
        let definitions = [
            "busy.yaml": "kind: Segment\nname: busy\nrules:\n  conditions:\n    - {field: total_events, operator: greater_than, value: 1}\n",
            "buyers.yaml": "kind: Segment\nname: buyers\nrules:\n  conditions:\n    - {field: event, event_name: Purchase, operator: within_last, value: 7, unit: days}\n",
        ]
        let messages: [JSONValue] = [
            ["type": "track", "userId": "a", "event": "Purchase", "timestamp": "2026-01-05T00:00:00Z", "messageId": "1"],
            ["type": "track", "userId": "a", "event": "Viewed", "timestamp": "2026-01-05T00:00:00Z", "messageId": "2"],
            ["type": "track", "userId": "b", "event": "Viewed", "timestamp": "2026-01-05T00:00:00Z", "messageId": "3"],
            ["type": "track", "userId": "b", "event": "Viewed", "timestamp": "2026-01-06T00:00:00Z", "messageId": "4"],
            ["type": "track", "userId": "c", "event": "Purchase", "timestamp": "2025-12-01T00:00:00Z", "messageId": "5"],
        ]
        let asOf = EngineHarness.instant("2026-01-07T00:00:00Z")
        let (alone, together) = (try EngineHarness(definitions: definitions), try EngineHarness(definitions: definitions))
        var members: [[String]] = []
        for harness in [alone, together] {
            try await harness.ingest(messages)
            let loaded = EngineHarness.load(definitions)
            let evaluator = DefinitionEvaluator(definitions: loaded.definitions, store: harness.store, runtime: harness.runtime)
            let segments = loaded.definitions.segments.map(\.definition).sorted { $0.name < $1.name }
            if harness === alone {
                for segment in segments { _ = try await evaluator.refresh(segment: segment, asOf: asOf, nextRefreshAt: nil) }
            } else {
                let runs = try await evaluator.refresh(segments: segments, asOf: asOf)
                #expect(runs.map(\.entered) == [2, 1])
            }
            for name in ["busy", "buyers"] {
                let ids = try await harness.store.segmentMembers(tenant: "default", segment: name, after: nil, limit: 10)
                members.append(ids)
            }
            #expect(try await harness.store.segmentStates(tenant: "default").map(\.status) == ["active", "active"])
        }
        #expect(members[0].count == 2 && members[1].count == 1)
        #expect(Array(members[0...1]) == Array(members[2...3]))

        // A partner that cannot run (a reference to no segment) fails alone.
        let loaded = EngineHarness.load(definitions)
        let evaluator = DefinitionEvaluator(definitions: loaded.definitions, store: together.store, runtime: together.runtime)
        var segments = loaded.definitions.segments.map(\.definition).sorted { $0.name < $1.name }
        segments[0].rules = RuleGroup(conditions: [.field(FieldCondition(field: "segment", operator: .equals, value: "missing"))])
        segments[1].rules = RuleGroup(conditions: [.field(FieldCondition(field: "total_events", operator: .greaterThan, value: 0))])
        await #expect(throws: (any Error).self) { try await evaluator.refresh(segments: segments, asOf: asOf + 1) }
        let states = try await together.store.segmentStates(tenant: "default")
        #expect(states.map(\.status) == ["stale", "active"])
        #expect(states.map(\.profileCount) == [2, 3])
        let runs = try await together.store.evaluationRuns(tenant: "default").suffix(2)
        #expect(runs.map(\.status).sorted() == ["failed", "succeeded"])
    }
}

struct SchedulerTests {
    @Test func definitionsRunWhenDueInDependencyOrder() async throws {
        let definitions = [
            "settings.yaml": "kind: Settings\nname: stratum\ndefault_schedule: {every: 1h}\n",
            "spend.yaml": "kind: Trait\nname: spend\ntype: sum\nevent: Purchase\nproperty: total\nschedule: {every: 15m}\n",
            "spenders.yaml": "kind: Segment\nname: spenders\nschedule: {cron: \"0 */2 * * *\"}\nrules:\n  conditions:\n    - {field: computed_traits.spend, operator: greater_than, value: 0}\n",
            "manual.yaml": "kind: Segment\nname: manual\nauto_refresh: false\nrules:\n  conditions:\n    - {field: total_events, operator: exists}\n",
            "rfm.yaml": "kind: RFM\nname: value\n",
        ]
        let harness = try EngineHarness(definitions: definitions)
        try await harness.ingest([["type": "track", "userId": "u", "event": "Purchase", "properties": ["total": 5], "timestamp": "2025-12-31T00:00:00Z", "messageId": "1"]])
        let loaded = EngineHarness.load(definitions)
        let start = EngineHarness.instant("2026-01-01T00:00:00Z")
        let scheduler = Scheduler(
            evaluator: DefinitionEvaluator(definitions: loaded.definitions, store: harness.store, runtime: harness.runtime),
            logger: .init(label: "test"), clock: { start })
        func runs() async throws -> [String] {
            try await harness.store.evaluationRuns(tenant: "default").map { "\($0.kind) \($0.name)" }
        }
        // Everything scheduled is due at start, traits before RFM before segments.
        let next = await scheduler.tick(now: start)
        #expect(try await runs() == ["Trait spend", "RFM value", "Segment spenders"])
        #expect(next == start + 15 * 60_000)
        // The segment saw the trait computed in the same tick.
        #expect(try await harness.store.segmentStates(tenant: "default").first?.profileCount == 1)
        #expect(try await harness.store.segmentStates(tenant: "default").first?.nextRefreshAt == EngineHarness.instant("2026-01-01T02:00:00Z"))
        // 15 minutes later only the trait; at 02:00 the trait and the cron segment; the RFM model hourly.
        await scheduler.tick(now: start + 15 * 60_000)
        #expect(try await runs().count == 4)
        await scheduler.tick(now: EngineHarness.instant("2026-01-01T02:00:00Z"))
        #expect(try await runs().suffix(3) == ["Trait spend", "RFM value", "Segment spenders"])
        #expect(try await runs().contains("Segment manual") == false)
    }

    /// Segments due in the same tick run together when they do not refer to
    /// one another, each with its own next refresh; one that refers to
    /// another runs after it.
    @Test func segmentsDueTogetherRunTogetherAfterThoseTheyUse() async throws {
        let definitions = [
            "settings.yaml": "kind: Settings\nname: stratum\ndefault_schedule: {every: 1h}\n",
            "spend.yaml": "kind: Trait\nname: spend\ntype: sum\nevent: Purchase\nproperty: total\n",
            "spenders.yaml": "kind: Segment\nname: spenders\nschedule: {cron: \"0 */2 * * *\"}\nrules:\n  conditions:\n    - {field: computed_traits.spend, operator: greater_than, value: 0}\n",
            "active.yaml": "kind: Segment\nname: active\nsegment_type: computed\nrules:\n  conditions:\n    - {field: total_events, operator: greater_than, value: 0}\n",
            "loyal.yaml": "kind: Segment\nname: loyal\nsegment_type: computed\nrules:\n  conditions:\n    - {field: segment, operator: equals, value: spenders}\n",
        ]
        let harness = try EngineHarness(definitions: definitions)
        try await harness.ingest([
            ["type": "track", "userId": "u", "event": "Purchase", "properties": ["total": 5], "timestamp": "2025-12-31T00:00:00Z", "messageId": "1"],
            ["type": "track", "userId": "v", "event": "Viewed", "timestamp": "2025-12-31T00:00:00Z", "messageId": "2"],
        ])
        let loaded = EngineHarness.load(definitions)
        #expect(DefinitionEvaluator.batches(loaded.definitions.segments.map(\.definition)).map { $0.map(\.name) } == [["active", "spenders"], ["loyal"]])
        let start = EngineHarness.instant("2026-01-01T00:00:00Z")
        let scheduler = Scheduler(
            evaluator: DefinitionEvaluator(definitions: loaded.definitions, store: harness.store, runtime: harness.runtime),
            logger: .init(label: "test"), clock: { start })
        await scheduler.tick(now: start)
        let runs = try await harness.store.evaluationRuns(tenant: "default").filter { $0.kind == "Segment" }
        #expect(runs.map(\.name) == ["active", "spenders", "loyal"])
        #expect(runs.allSatisfy { $0.status == "succeeded" })
        let states = Dictionary(uniqueKeysWithValues: try await harness.store.segmentStates(tenant: "default").map { ($0.segment, $0) })
        #expect(states["active"]?.profileCount == 2)
        #expect(states["spenders"]?.profileCount == 1)
        // loyal read spenders as just applied.
        #expect(states["loyal"]?.profileCount == 1)
        #expect(states["active"]?.nextRefreshAt == EngineHarness.instant("2026-01-01T01:00:00Z"))
        #expect(states["spenders"]?.nextRefreshAt == EngineHarness.instant("2026-01-01T02:00:00Z"))
    }
}

/// After any sequence of ingested events, a dynamic segment kept up to date
/// incrementally (touched profiles only) equals a full recomputation.
struct IncrementalSegmentTests {
    static let segment = """
        kind: Segment
        name: engaged
        rules:
          logic: or
          conditions:
            - {field: event, event_name: Purchase, operator: within_last, value: 3, unit: days, count: {operator: greater_or_equal, value: 2}}
          groups:
            - logic: and
              conditions:
                - {field: profile_data.country, operator: in, value: [US, CA]}
                - {field: total_revenue, operator: greater_than, value: 50}
            - logic: and
              conditions:
                - {field: event, event_name: Viewed, operator: not_within_last, value: 3, unit: days}
                - {field: event, event_name: Purchase, operator: within_last, value: 30, unit: days, count: {operator: less_than, value: 2}}
                - {field: profile_data.country, operator: equals, value: DE}
            - logic: and
              conditions:
                - {field: segment, operator: equals, value: viewers}
                - {field: profile_data.country, operator: equals, value: CA}
        """
    static let viewers = "kind: Segment\nname: viewers\nrules:\n  conditions:\n    - {field: event, event_name: Viewed, operator: within_last, value: 5, unit: days}\n"

    @Test(arguments: [1, 2, 3, 4])
    func incrementalMembershipEqualsFullRecomputation(seed: UInt64) async throws {
        let harness = try EngineHarness(definitions: ["engaged.yaml": Self.segment, "viewers.yaml": Self.viewers])
        harness.setNow("2026-01-10T00:00:00Z")
        let asOf = EngineHarness.instant("2026-01-10T00:00:00Z")
        let loaded = EngineHarness.load(["engaged.yaml": Self.segment, "viewers.yaml": Self.viewers])
        let segment = try #require(loaded.definitions.segments.first { $0.definition.name == "engaged" }?.definition)
        let viewers = try #require(loaded.definitions.segments.first { $0.definition.name == "viewers" }?.definition)
        let evaluator = DefinitionEvaluator(definitions: loaded.definitions, store: harness.store, runtime: harness.runtime)
        let context = SegmentEvaluator(definitions: loaded.definitions, runtime: harness.runtime).context(tenant: "default", asOf: asOf)
        let touched = TouchedProfiles()
        var random = SplitMix64(seed: seed)
        var sequence = 0
        for _ in 0..<15 {
            var batch: [JSONValue] = []
            for _ in 0..<Int(random.next() % 12 + 1) {
                sequence += 1
                let visitor = random.next() % 12
                let day = 1 + random.next() % 9
                let timestamp = JSONValue.string("2026-01-0\(day)T12:00:00Z")
                switch random.next() % 4 {
                case 0:
                    batch.append(["type": "identify", "anonymousId": .string("anon-\(visitor)"), "traits": ["country": .string(["US", "CA", "DE"][Int(random.next() % 3)]), "email": .string("p\(random.next() % 8)@example.com")], "timestamp": timestamp, "messageId": .string("m\(sequence)")])
                case 1:
                    batch.append(["type": "track", "anonymousId": .string("anon-\(visitor)"), "event": "Purchase", "properties": ["total": .number(Double(random.next() % 60))], "timestamp": timestamp, "messageId": .string("m\(sequence)")])
                case 2:
                    batch.append(["type": "track", "anonymousId": .string("anon-\(visitor)"), "event": "Viewed", "timestamp": timestamp, "messageId": .string("m\(sequence)")])
                default:
                    batch.append(["type": "alias", "userId": .string("user-\(random.next() % 6)"), "previousId": .string("anon-\(visitor)"), "timestamp": timestamp, "messageId": .string("m\(sequence)")])
                }
            }
            touched.add(tenant: "default", outcomes: try await harness.ingest(batch))
            let ids = Array(touched.drain()["default"] ?? [])
            // Both dynamic segments in one transaction, referenced one first, as the scheduler runs them.
            let results = try await evaluator.refreshIncrementally([viewers, segment], tenant: "default", asOf: asOf, only: ids)
            #expect(results.map(\.segment) == ["viewers", "engaged"])
            for (_, result) in results { _ = try result.get() }

            var stored: Set<String> = []
            var cursor: String?
            repeat {
                let page = try await harness.store.segmentMembers(tenant: "default", segment: "engaged", after: cursor, limit: 50)
                stored.formUnion(page)
                cursor = page.count == 50 ? page.last : nil
            } while cursor != nil
            let full = try await harness.store.evaluate(try #require(segment.rules), context: context, limit: 10_000)
            #expect(stored == Set(full.sample), "seed \(seed), after message \(sequence)")
            let storedViewers = try await harness.store.segmentMembers(tenant: "default", segment: "viewers", after: nil, limit: 10_000)
            let fullViewers = try await harness.store.evaluate(try #require(viewers.rules), context: context, limit: 10_000)
            #expect(Set(storedViewers) == Set(fullViewers.sample), "viewers, seed \(seed), after message \(sequence)")
        }
        // Incremental runs (several a second in a daemon) are not evaluation runs on record; their changes are.
        #expect(try await harness.store.evaluationRuns(tenant: "default").isEmpty)
        #expect(try await harness.store.segmentChanges(tenant: "default").isEmpty == false)
    }
}

/// The seed's segment statuses: computing during a full run, active after
/// one, stale after a failed run or when a scheduled refresh is overdue.
struct SegmentStatusTests {
    @Test func aFailedRunLeavesTheSegmentStaleWithItsMembers() async throws {
        let good = "kind: Segment\nname: buyers\nrules:\n  conditions:\n    - {field: total_purchases, operator: greater_than, value: 0}\n"
        let harness = try EngineHarness(definitions: ["buyers.yaml": good])
        try await harness.ingest([["type": "track", "userId": "u1", "event": "Purchase", "properties": ["total": 5], "messageId": "m1"]])
        let asOf = EngineHarness.instant("2027-01-01T00:00:00Z")
        let loaded = EngineHarness.load(["buyers.yaml": good])
        let segment = try #require(loaded.definitions.segments.first?.definition)
        let evaluator = DefinitionEvaluator(definitions: loaded.definitions, store: harness.store, runtime: harness.runtime)
        _ = try await evaluator.refresh(segment: segment, asOf: asOf, nextRefreshAt: asOf + 3_600_000)
        var state = try #require(try await harness.store.segmentStates(tenant: "default").first)
        #expect(state.status == "active")
        #expect(state.profileCount == 1)

        // The same name with rules that cannot run (a reference to no segment): the run fails.
        var broken = segment
        broken.rules = RuleGroup(conditions: [.field(FieldCondition(field: "segment", operator: .equals, value: "missing"))])
        await #expect(throws: (any Error).self) { try await evaluator.refresh(segment: broken, asOf: asOf, nextRefreshAt: asOf + 60_000) }
        state = try #require(try await harness.store.segmentStates(tenant: "default").first)
        #expect(state.status == "stale")
        // Its next scheduled time moves on all the same: it is tried again then.
        #expect(state.nextRefreshAt == asOf + 60_000)
        #expect(state.profileCount == 1)
        #expect(try await harness.store.segmentMembers(tenant: "default", segment: "buyers", after: nil, limit: 10).count == 1)
        #expect(try await harness.store.evaluationRuns(tenant: "default").last?.status == "failed")

        // An incremental run for touched profiles leaves the failed full run's status alone.
        _ = try await evaluator.refreshIncrementally([segment], tenant: "default", asOf: asOf, only: [])
        #expect(try await harness.store.segmentStates(tenant: "default").first?.status == "stale")
        // So does a run interrupted by a crash of the process doing it (here another
        // process, `stratum refresh` beside the daemon): left alone while that process
        // runs, marked once it is gone.
        let other = Process()
        other.executableURL = URL(filePath: "/bin/sleep")
        other.arguments = ["60"]
        try other.run()
        try await harness.store.setSegmentStatus(tenant: "default", segment: "buyers", status: "computing")
        try await harness.store.startRun(id: "crashed", tenant: "default", kind: .segment, name: "buyers", asOf: asOf, at: asOf)
        let database = try DatabaseQueue(path: harness.store.path)
        try await database.write { try $0.execute(sql: "UPDATE evaluation_runs SET owner = ? WHERE id = 'crashed'", arguments: [RunOwner.of(process: other.processIdentifier)]) }
        #expect(try await harness.store.recoverInterruptedRuns(at: asOf + 1) == 0)
        #expect(try await harness.store.segmentStates(tenant: "default").first?.status == "computing")
        // SIGKILL, as a crash would: SIGTERM may be ignored by a child of this process.
        kill(other.processIdentifier, SIGKILL)
        other.waitUntilExit()
        #expect(try await harness.store.recoverInterruptedRuns(at: asOf + 1) == 1)
        #expect(try await harness.store.segmentStates(tenant: "default").first?.status == "stale")
        #expect(try await harness.store.evaluationRuns(tenant: "default").first { $0.id == "crashed" }?.status == "failed")
        // A run of this process, still going, is never taken for an interrupted one.
        try await harness.store.startRun(id: "ours", tenant: "default", kind: .segment, name: "buyers", asOf: asOf, at: asOf)
        #expect(try await harness.store.recoverInterruptedRuns(at: asOf + 1) == 0)
        try await harness.store.finishRun(id: "ours", at: asOf + 2, profiles: 1, entered: 0, exited: 0, error: nil)
        // The next full run makes it active again.
        _ = try await evaluator.refresh(segment: segment, asOf: asOf, nextRefreshAt: nil)
        #expect(try await harness.store.segmentStates(tenant: "default").first?.status == "active")
    }

    @Test func runsOfOneSegmentTakeTurns() async throws {
        let buyers = "kind: Segment\nname: buyers\nrules:\n  conditions:\n    - {field: total_purchases, operator: greater_than, value: 0}\n"
        let harness = try EngineHarness(definitions: ["buyers.yaml": buyers])
        try await harness.ingest((0..<50).map { ["type": "track", "userId": .string("u\($0)"), "event": "Purchase", "properties": ["total": 5], "messageId": .string("m\($0)")] })
        let loaded = EngineHarness.load(["buyers.yaml": buyers])
        let evaluator = DefinitionEvaluator(definitions: loaded.definitions, store: harness.store, runtime: harness.runtime)
        let segment = try #require(loaded.definitions.segments.first?.definition)
        // The scheduler's run and one asked for over the API, at once.
        async let first = evaluator.refresh(segment: segment, asOf: EngineHarness.instant("2026-03-01T00:00:00Z"), nextRefreshAt: nil)
        async let second = evaluator.refresh(segment: segment, asOf: EngineHarness.instant("2026-03-01T00:00:00Z"), nextRefreshAt: nil)
        let counts = try await [first.profiles, second.profiles]
        #expect(counts == [50, 50])
        let runs = try await harness.store.evaluationRuns(tenant: "default").sorted { $0.startedAt < $1.startedAt }
        #expect(runs.count == 2)
        let earlierEnd = try #require(runs.first?.finishedAt)
        #expect(earlierEnd <= runs[1].startedAt)
    }

    @Test func oneFailingIncrementalSegmentLeavesTheOthers() async throws {
        let good = "kind: Segment\nname: buyers\nrules:\n  conditions:\n    - {field: total_purchases, operator: greater_than, value: 0}\n"
        let harness = try EngineHarness(definitions: ["buyers.yaml": good])
        let outcomes = try await harness.ingest([["type": "track", "userId": "u1", "event": "Purchase", "properties": ["total": 5], "messageId": "m1"]])
        let loaded = EngineHarness.load(["buyers.yaml": good])
        let buyers = try #require(loaded.definitions.segments.first?.definition)
        var broken = buyers
        broken.name = "broken"
        broken.rules = RuleGroup(conditions: [.field(FieldCondition(field: "segment", operator: .equals, value: "missing"))])
        let evaluator = DefinitionEvaluator(definitions: loaded.definitions, store: harness.store, runtime: harness.runtime)
        let results = try await evaluator.refreshIncrementally([broken, buyers], tenant: "default", asOf: EngineHarness.instant("2027-01-01T00:00:00Z"), only: outcomes.compactMap(profileID(of:)))
        #expect(results.map(\.segment) == ["broken", "buyers"])
        #expect((try? results[0].result.get()) == nil)
        #expect(try results[1].result.get().entered == 1)
        #expect(try await harness.store.segmentMembers(tenant: "default", segment: "buyers", after: nil, limit: 10).count == 1)
    }

    @Test func aFullRunLeavesProfilesUpdatedAfterItsInstantToIncrementalRuns() async throws {
        let good = "kind: Segment\nname: buyers\nrules:\n  conditions:\n    - {field: total_purchases, operator: greater_than, value: 0}\n"
        let harness = try EngineHarness(definitions: ["buyers.yaml": good])
        let loaded = EngineHarness.load(["buyers.yaml": good])
        let buyers = try #require(loaded.definitions.segments.first?.definition)
        let evaluator = DefinitionEvaluator(definitions: loaded.definitions, store: harness.store, runtime: harness.runtime)
        harness.setNow("2026-03-01T00:00:00Z")
        try await harness.ingest([["type": "track", "userId": "early", "event": "Purchase", "properties": ["total": 5], "messageId": "m0"]])
        harness.setNow("2026-03-01T12:00:00Z")
        let late = try await harness.ingest([["type": "track", "userId": "late", "event": "Purchase", "properties": ["total": 5], "messageId": "m1"]])
        // The buyer entered through an incremental run at 12:00 ...
        _ = try await evaluator.refreshIncrementally([buyers], tenant: "default", asOf: EngineHarness.instant("2026-03-01T12:00:00Z"), only: late.compactMap(profileID(of:)))
        // ... and a full run that started at 11:00 (a long tick) leaves them in; the earlier buyer is evaluated as usual.
        let run = try await evaluator.refresh(segment: buyers, asOf: EngineHarness.instant("2026-03-01T11:00:00Z"), nextRefreshAt: nil, yieldingToIncremental: true)
        #expect(run.exited == 0)
        #expect(run.profiles == 2)
        // Without yielding, the same full run would exit the late buyer, who did not exist at 11:00.
        let strict = try await evaluator.refresh(segment: buyers, asOf: EngineHarness.instant("2026-03-01T11:00:00Z"), nextRefreshAt: nil)
        #expect(strict.exited == 1)
    }

    @Test func anOverdueScheduledRefreshShowsAsStale() {
        let state = SegmentState(tenant: "default", segment: "s", status: "active", profileCount: 1, lastComputedAt: 0, computationDurationMilliseconds: 1, nextRefreshAt: 1_000_000)
        #expect(state.status(at: 1_000_000) == "active")
        #expect(state.status(at: 1_000_000 + SegmentState.overdueGrace) == "active")
        #expect(state.status(at: 1_000_001 + SegmentState.overdueGrace) == "stale")
        var computing = state
        computing.status = "computing"
        #expect(computing.status(at: 9_999_999_999) == "computing")
        var manual = state
        manual.nextRefreshAt = nil
        #expect(manual.status(at: 9_999_999_999) == "active")
        // A segment refreshed on request only is never overdue, whatever an earlier schedule left.
        #expect(state.status(at: 9_999_999_999, scheduled: false) == "active")
    }
}

/// One run at a time per definition, and a waiting run that is cancelled
/// (a scheduler shutting down) gives up its turn at once.
struct RunLocksTests {
    @Test func aWaiterRunsAfterTheHolderAndACancelledOneNever() async throws {
        let locks = RunLocks()
        try await locks.acquire(["segment/default/a"])
        let order = Locked<[String]>([])
        let waiter = Task {
            try await locks.acquire(["segment/default/a", "segment/default/b"])
            order.withLock { $0.append("waiter") }
            locks.release(["segment/default/a", "segment/default/b"])
        }
        let cancelled = Task { try await locks.acquire(["segment/default/a"]) }
        // Other keys are free meanwhile.
        try await locks.acquire(["segment/default/c"])
        locks.release(["segment/default/c"])
        try await Task.sleep(for: .milliseconds(100))
        cancelled.cancel()
        await #expect(throws: CancellationError.self) { try await cancelled.value }
        order.withLock { $0.append("holder") }
        locks.release(["segment/default/a"])
        try await waiter.value
        #expect(order.withLock { $0 } == ["holder", "waiter"])
        // Nothing is left held: not by the cancelled waiter either.
        try await locks.acquire(["segment/default/a", "segment/default/b"])
    }
}
