import Foundation
import StratumDefinitions
import StratumStore

/// Computes traits, then RFM models, then segments (in reference order),
/// each set-at-a-time, records every run, and reports what each did.
public struct DefinitionEvaluator: Sendable {
    public let definitions: DefinitionSet
    public let store: SQLiteStore
    public let runtime: Runtime
    let newID: @Sendable () -> String
    let clock: @Sendable () -> Milliseconds

    public init(definitions: DefinitionSet, store: SQLiteStore, runtime: Runtime? = nil, clock: @escaping @Sendable () -> Milliseconds = IngestionPipeline.systemClock) {
        self.definitions = definitions
        self.store = store
        self.runtime = runtime ?? Runtime(definitions: definitions, environment: [:])
        let ids = IDGenerator(clock: clock)
        self.newID = { ids.next() }
        self.clock = clock
    }

    /// What one definition's run did.
    public struct Run: Sendable {
        public var kind: DefinitionKind
        public var name: String
        public var tenant: String
        public var profiles: Int
        public var duration: Swift.Duration
        /// Segment runs: profiles that entered and exited.
        public var entered: Int = 0
        public var exited: Int = 0
    }

    /// Runs every trait, then every RFM model, then every evaluated segment
    /// (dynamic or computed, not draft) in reference order, as of `asOf`.
    public func refresh(asOf: Milliseconds, only: Set<DefinitionKind> = [.trait, .rfm, .segment]) async throws -> [Run] {
        var runs: [Run] = []
        let outcomes = await refreshValues(traits: only.contains(.trait) ? definitions.traits.map(\.definition) : [],
                                           rfmModels: only.contains(.rfm) ? definitions.rfmModels.map(\.definition) : [], asOf: asOf)
        for outcome in outcomes { runs.append(try outcome.result.get()) }
        if only.contains(.segment) {
            // Segments that do not refer to one another are evaluated together.
            for batch in Self.batches(definitions.segments.map(\.definition).filter(Self.isEvaluated)) {
                runs += try await refresh(segments: batch, asOf: asOf)
            }
        }
        return runs
    }

    /// Full runs of segments of one tenant that do not refer to one another;
    /// throws the first failure after every run is recorded.
    public func refresh(segments: [SegmentDefinition], asOf: Milliseconds) async throws -> [Run] {
        try await refresh(segments: segments.map { SegmentRun(segment: $0) }, asOf: asOf).map { try $0.result.get() }
    }

    /// A full segment run's options (see `refresh(segment:asOf:nextRefreshAt:yieldingToIncremental:)`).
    public struct SegmentRun: Sendable {
        public var segment: SegmentDefinition
        public var nextRefreshAt: Milliseconds?
        public var yieldingToIncremental: Bool

        public init(segment: SegmentDefinition, nextRefreshAt: Milliseconds? = nil, yieldingToIncremental: Bool = false) {
            self.segment = segment
            self.nextRefreshAt = nextRefreshAt
            self.yieldingToIncremental = yieldingToIncremental
        }
    }

    /// Full runs of segments of one tenant that do not refer to one another,
    /// evaluated together (`SQLiteStore.refreshSegments`); each is
    /// recorded and its status kept as `refresh(segment:)` does. A segment
    /// without rules is left out.
    public func refresh(segments: [SegmentRun], asOf: Milliseconds) async -> [(segment: SegmentDefinition, result: Result<Run, any Error>)] {
        guard let tenant = segments.first?.segment.tenantID else { return [] }
        // One run at a time per segment (the scheduler's and the API's refresh).
        let keys = Set(segments.map { "segment/\($0.segment.tenantID)/\($0.segment.name)" })
        do {
            try await store.runLocks.acquire(keys)
        } catch {
            return segments.map { ($0.segment, .failure(error)) }
        }
        defer { store.runLocks.release(keys) }
        let context = SegmentEvaluator(definitions: definitions, runtime: runtime).context(tenant: tenant, asOf: asOf)
        let evaluated = segments.compactMap { run in run.segment.rules.map { (run, $0, newID()) } }
        let started = ContinuousClock.now
        var running: [String] = []
        do {
            for (run, _, runID) in evaluated {
                // The run first: a recovery between the two sees a computing segment
                // with a live run, not one to mark stale.
                try await store.startRun(id: runID, tenant: tenant, kind: .segment, name: run.segment.name, asOf: asOf, at: clock())
                running.append(runID)
                try await store.setSegmentStatus(tenant: tenant, segment: run.segment.name, status: "computing")
            }
        } catch {
            // None of them runs: each is left stale, with its run (if started) failed.
            for (run, _, runID) in evaluated {
                try? await store.setSegmentStatus(tenant: tenant, segment: run.segment.name, status: "stale", nextRefreshAt: run.nextRefreshAt)
                if running.contains(runID) { try? await store.finishRun(id: runID, at: clock(), profiles: nil, entered: nil, exited: nil, error: "\(error)") }
            }
            return evaluated.map { ($0.0.segment, .failure(error)) }
        }
        let results: [Result<(members: Int, entered: Int, exited: Int), StoreError>]
        do {
            results = try await store.refreshSegments(
                evaluated.map { run, rules, runID in
                    SQLiteStore.SegmentRefresh(name: run.segment.name, rules: rules, runID: runID, nextRefreshAt: run.nextRefreshAt, yieldingToIncremental: run.yieldingToIncremental)
                },
                context: context, subscriptions: subscriptions(tenant: tenant))
        } catch {
            results = evaluated.map { _ in .failure(StoreError.from(error)) }
        }
        let duration = ContinuousClock.now - started
        var outcomes: [(segment: SegmentDefinition, result: Result<Run, any Error>)] = []
        // Every run is finished, even if recording another fails.
        for ((run, _, runID), result) in zip(evaluated, results) {
            let segment = run.segment
            do {
                switch result {
                case .success(let counts):
                    try await store.finishRun(id: runID, at: clock(), profiles: counts.members, entered: counts.entered, exited: counts.exited, error: nil)
                    outcomes.append((segment, .success(Run(
                        kind: .segment, name: segment.name, tenant: tenant, profiles: counts.members, duration: duration / evaluated.count,
                        entered: counts.entered, exited: counts.exited))))
                case .failure(let error):
                    try? await store.setSegmentStatus(tenant: tenant, segment: segment.name, status: "stale", nextRefreshAt: run.nextRefreshAt)
                    outcomes.append((segment, .failure(error)))
                    try await store.finishRun(id: runID, at: clock(), profiles: nil, entered: nil, exited: nil, error: "\(error)")
                }
            } catch {
                if case .success = outcomes.last?.result { outcomes[outcomes.count - 1].result = .failure(error) }
            }
        }
        return outcomes
    }

    /// At most this many segments are refreshed in one transaction, which
    /// holds the writer (and so ingestion's commits) while their queries run
    /// and their results are applied: at 1M profiles about 2 s for 4 on a
    /// fresh store, 4 s for 8. Measured, 8 saved only 0.3–0.5 s of a 7 s
    /// segment refresh over 4.
    public static let segmentsPerBatch = 4

    /// Segments that may be refreshed together: by reference level, then by
    /// tenant, `segmentsPerBatch` at a time, in reference order.
    public static func batches(_ segments: [SegmentDefinition]) -> [[SegmentDefinition]] {
        referenceLevels(segments).flatMap { level in
            Set(level.map(\.tenantID)).sorted().flatMap { tenant in
                let ofTenant = level.filter { $0.tenantID == tenant }
                return stride(from: 0, to: ofTenant.count, by: segmentsPerBatch).map { Array(ofTenant[$0..<min($0 + segmentsPerBatch, ofTenant.count)]) }
            }
        }
    }

    /// The enabled webhooks of `tenant` subscribed to segment.entered or segment.exited.
    public func subscriptions(tenant: String) -> [SegmentSubscription] {
        runtime.tenants[tenant]?.segmentSubscriptions ?? []
    }

    /// Static segments are managed by API and import; drafts are never evaluated.
    public static func isEvaluated(_ segment: SegmentDefinition) -> Bool {
        segment.effectiveType != .static && segment.status != .draft && segment.rules != nil
    }

    /// One trait's or RFM model's run in `refreshValues`.
    public struct ValueOutcome: Sendable {
        public var kind: DefinitionKind
        public var name: String
        public var tenant: String
        public var result: Result<Run, any Error>
    }

    /// Computes `traits` and `rfmModels` as of `asOf`. Each one's query runs
    /// on a reader, two at a time; then, per tenant, all their values are
    /// written in one pass over the profiles (`SQLiteStore.write(columns:)`),
    /// so a profile row is rewritten once for all of them, not once each.
    ///
    /// Each definition is recorded as its own run. One whose query fails is
    /// recorded as failed and the others are still written; if the write pass
    /// fails, every run it carried fails. A run's duration is its query's time
    /// plus an even share of the write pass.
    public func refreshValues(traits: [TraitDefinition], rfmModels: [RFMDefinition], asOf: Milliseconds) async -> [ValueOutcome] {
        enum Job: Sendable {
            case trait(TraitDefinition)
            case rfm(RFMDefinition)
            var kind: DefinitionKind { if case .trait = self { .trait } else { .rfm } }
            var name: String { switch self { case .trait(let trait): trait.name; case .rfm(let model): model.name } }
            var tenant: String { switch self { case .trait(let trait): trait.tenantID; case .rfm(let model): model.tenantID } }
        }
        let jobs = traits.map(Job.trait) + rfmModels.map(Job.rfm)
        var outcomes: [ValueOutcome] = []
        for tenant in Set(jobs.map(\.tenant)).sorted() {
            let tenantJobs = jobs.filter { $0.tenant == tenant }
            for start in stride(from: 0, to: tenantJobs.count, by: SQLiteStore.columnsPerWrite) {
                var batch: [(job: Job, runID: String)] = []
                for job in tenantJobs[start..<min(start + SQLiteStore.columnsPerWrite, tenantJobs.count)] {
                    let runID = newID()
                    do {
                        try await store.startRun(id: runID, tenant: tenant, kind: job.kind, name: job.name, asOf: asOf, at: clock())
                        batch.append((job, runID))
                    } catch {
                        outcomes.append(ValueOutcome(kind: job.kind, name: job.name, tenant: tenant, result: .failure(error)))
                    }
                }
                // Traits that read the same events share one pass, and so do an RFM
                // model's inputs (three traits of its own) with the traits reading its
                // events. The tenant's profile ids are read once for all of them.
                let profiles = Task { try await store.profileSlots(tenant: tenant) }
                var scans: [(scan: TraitScan, outputs: [Output], traits: [TraitDefinition])] = []
                func add(_ trait: TraitDefinition, as output: Output) {
                    if let shared = scans.firstIndex(where: { $0.scan == TraitScan(trait) }) {
                        scans[shared].outputs.append(output)
                        scans[shared].traits.append(trait)
                    } else {
                        scans.append((TraitScan(trait), [output], [trait]))
                    }
                }
                for (index, entry) in batch.enumerated() {
                    switch entry.job {
                    case .trait(let trait): add(trait, as: .trait(index))
                    case .rfm(let model):
                        for (part, input) in SQLiteStore.rfmInputTraits(model).enumerated() { add(input, as: .rfmInput(index, part)) }
                    }
                }
                // Each definition's result, its pass's time split evenly among those that shared it.
                var results = Array<Result<(TraitColumn, Swift.Duration), any Error>>(repeating: .failure(CancellationError()), count: batch.count)
                var rfmInputs: [Int: (columns: [Int: TraitColumn], duration: Swift.Duration)] = [:]
                var failedRFM: Set<Int> = []
                // Two lanes (the machine's cores, each pass on its own reader). An RFM model is
                // scored as soon as its three inputs are in, beside the passes still running.
                await withTaskGroup(of: LaneResult.self) { group in
                    var waiting: [@Sendable () async -> LaneResult] = scans.indices.map { index in
                        let traits = scans[index].traits
                        return {
                            let started = ContinuousClock.now
                            do {
                                let columns = try await store.traitColumns(traits, asOf: asOf, profiles: profiles.value)
                                return .pass(index, .success((columns, ContinuousClock.now - started)))
                            } catch {
                                return .pass(index, .failure(error))
                            }
                        }
                    }
                    var running = 0
                    func fill() {
                        while running < 2, !waiting.isEmpty {
                            group.addTask(operation: waiting.removeFirst())
                            running += 1
                        }
                    }
                    fill()
                    while let finished = await group.next() {
                        running -= 1
                        switch finished {
                        case .pass(let scanIndex, let result):
                            let scan = scans[scanIndex]
                            for (position, output) in scan.outputs.enumerated() {
                                let share = result.map { columns, duration in (columns[position], duration / scan.outputs.count) }
                                switch (output, share) {
                                case (.trait(let index), _): results[index] = share
                                case (.rfmInput(let index, let part), .success(let (column, duration))):
                                    rfmInputs[index, default: ([:], .zero)].columns[part] = column
                                    rfmInputs[index, default: ([:], .zero)].duration += duration
                                    guard case .rfm(let model) = batch[index].job, !failedRFM.contains(index),
                                          let inputs = rfmInputs[index], inputs.columns.count == 3 else { continue }
                                    waiting.insert({
                                        let started = ContinuousClock.now
                                        let column = rfmColumn(model, asOf: asOf, inputs: [0, 1, 2].map { inputs.columns[$0]! })
                                        return .scored(index, column, inputs.duration + (ContinuousClock.now - started))
                                    }, at: 0)
                                case (.rfmInput(let index, _), .failure(let error)):
                                    results[index] = .failure(error)
                                    failedRFM.insert(index)
                                }
                            }
                        case .scored(let index, let column, let duration):
                            results[index] = .success((column, duration))
                        }
                        fill()
                    }
                }
                let computed = results.compactMap { try? $0.get().0 }
                let writeStarted = ContinuousClock.now
                do {
                    try await store.write(columns: computed, tenant: tenant)
                    let share = (ContinuousClock.now - writeStarted) / max(computed.count, 1)
                    results = results.map { $0.map { ($0.0, $0.1 + share) } }
                } catch {
                    results = results.map { $0.flatMap { _ in .failure(error) } }
                }
                for ((job, runID), result) in zip(batch, results) {
                    let run: Result<Run, any Error>
                    do {
                        let (column, duration) = try result.get()
                        try await store.finishRun(id: runID, at: clock(), profiles: column.count, entered: 0, exited: 0, error: nil)
                        run = .success(Run(kind: job.kind, name: job.name, tenant: tenant, profiles: column.count, duration: duration))
                    } catch {
                        try? await store.finishRun(id: runID, at: clock(), profiles: nil, entered: nil, exited: nil, error: "\(error)")
                        run = .failure(error)
                    }
                    outcomes.append(ValueOutcome(kind: job.kind, name: job.name, tenant: tenant, result: run))
                }
            }
        }
        return outcomes
    }

    /// What finished on a lane of `refreshValues`: a pass (by scan), or an RFM model's scoring.
    private enum LaneResult: Sendable {
        case pass(Int, Result<([TraitColumn], Swift.Duration), any Error>)
        case scored(Int, TraitColumn, Swift.Duration)
    }

    /// What a trait pass computes a column for: a trait of the batch, or one
    /// of an RFM model's three inputs.
    enum Output {
        case trait(Int)
        case rfmInput(Int, Int)
    }

    /// An RFM model's scores as a column, from its input traits' columns.
    private func rfmColumn(_ model: RFMDefinition, asOf: Milliseconds, inputs columns: [TraitColumn]) -> TraitColumn {
        let inputs = SQLiteStore.rfmInputs(model, asOf: asOf, columns: columns).map {
            RFMScoring.Input(profileID: $0.profileID, days: $0.days, frequency: $0.frequency, monetary: $0.monetary, monetaryText: $0.monetaryText)
        }
        let scores = RFMScoring.score(inputs, model: model)
        return SQLiteStore.rfmColumn(model: model.name, scores: scores.map { ($0.profileID, $0.r, $0.f, $0.m, $0.segment) })
    }

    /// Evaluates a segment for all its tenant's profiles (incremental runs for
    /// touched profiles go through `refreshIncrementally`).
    ///
    /// A full run shows the segment as `computing` while it runs and leaves it
    /// `stale` (members as they were) if it fails; a successful run makes it
    /// `active`. The run is recorded in `evaluation_runs`.
    ///
    /// `yieldingToIncremental` (the daemon's full runs of dynamic segments):
    /// profiles updated after `asOf` keep their membership, which the
    /// incremental runs decide.
    public func refresh(segment: SegmentDefinition, asOf: Milliseconds, nextRefreshAt: Milliseconds?, yieldingToIncremental: Bool = false) async throws -> Run {
        guard segment.rules != nil else { throw StoreError("segment \(segment.name) has no rules: it is not evaluated") }
        let outcomes = await refresh(segments: [SegmentRun(segment: segment, nextRefreshAt: nextRefreshAt, yieldingToIncremental: yieldingToIncremental)], asOf: asOf)
        return try outcomes[0].result.get()
    }

    /// Re-evaluates dynamic `segments` of `tenant` (in the order given:
    /// reference order) for the touched profiles `only`, all in one
    /// transaction; a segment that fails leaves the others' results.
    /// These runs, several a second under traffic, are not recorded in
    /// `evaluation_runs`; their changes are, in `segment_changes`.
    public func refreshIncrementally(_ segments: [SegmentDefinition], tenant: String, asOf: Milliseconds, only: [String]) async throws -> [(segment: String, result: Result<Run, StoreError>)] {
        let context = SegmentEvaluator(definitions: definitions, runtime: runtime).context(tenant: tenant, asOf: asOf)
        let evaluated = segments.compactMap { segment in segment.rules.map { (segment, $0) } }
        let started = ContinuousClock.now
        let results = try await store.refreshIncrementally(
            evaluated.map { SQLiteStore.IncrementalRefresh(name: $0.0.name, rules: $0.1, runID: newID()) },
            context: context, only: only, subscriptions: subscriptions(tenant: tenant))
        let duration = ContinuousClock.now - started
        return zip(evaluated.map(\.0), results).map { segment, result in
            (segment.name, result.map { Run(kind: .segment, name: segment.name, tenant: tenant, profiles: $0.members, duration: duration, entered: $0.entered, exited: $0.exited) })
        }
    }

    /// Adds and removes a static segment's members (with `replace`, the
    /// members become exactly `add`), as one recorded run whose entries and
    /// exits reach the subscribed webhooks like any segment change.
    public func changeMembers(of segment: SegmentDefinition, add: [String], remove: [String], replace: Bool = false) async throws -> Run {
        let runID = newID()
        let now = clock()
        return try await recorded(.segment, segment.name, segment.tenantID, now, id: runID) {
            let result = try await store.changeStaticMembers(
                tenant: segment.tenantID, segment: segment.name, add: add, remove: remove, replace: replace, at: now, runID: runID,
                subscriptions: subscriptions(tenant: segment.tenantID))
            return (result.members, result.entered, result.exited)
        }
    }

    /// Runs `work`, recording its start, end, status, counts or error.
    private func recorded(_ kind: DefinitionKind, _ name: String, _ tenant: String, _ asOf: Milliseconds, id: String? = nil, _ work: () async throws -> (Int, Int, Int)) async throws -> Run {
        let runID = id ?? newID()
        let started = ContinuousClock.now
        try await store.startRun(id: runID, tenant: tenant, kind: kind, name: name, asOf: asOf, at: clock())
        do {
            let (profiles, entered, exited) = try await work()
            try await store.finishRun(id: runID, at: clock(), profiles: profiles, entered: entered, exited: exited, error: nil)
            return Run(kind: kind, name: name, tenant: tenant, profiles: profiles, duration: ContinuousClock.now - started, entered: entered, exited: exited)
        } catch {
            try await store.finishRun(id: runID, at: clock(), profiles: nil, entered: nil, exited: nil, error: "\(error)")
            throw error
        }
    }

    /// Segments ordered so that every segment comes after those it refers to
    /// (the validator guarantees no cycles); ties by tenant and name.
    public static func referenceOrder(_ segments: [SegmentDefinition]) -> [SegmentDefinition] {
        referenceLevels(segments).flatMap { $0 }
    }

    /// Segments in levels: each refers only to segments of earlier levels
    /// (none refers to another of its own level).
    public static func referenceLevels(_ segments: [SegmentDefinition]) -> [[SegmentDefinition]] {
        func references(_ group: RuleGroup?) -> [String] {
            guard let group else { return [] }
            var names: [String] = []
            for condition in group.conditions ?? [] {
                if case .field(let field) = condition, field.field == "segment" {
                    names += field.value?.arrayValue?.compactMap(\.stringValue) ?? [field.value?.stringValue].compactMap { $0 }
                }
            }
            return names + (group.groups ?? []).flatMap(references)
        }
        let sorted = segments.sorted { ($0.tenantID, $0.name) < ($1.tenantID, $1.name) }
        var placed: Set<String> = []
        var levels: [[SegmentDefinition]] = []
        var remaining = sorted
        while !remaining.isEmpty {
            let ready = remaining.filter { segment in
                references(segment.rules).allSatisfy { name in
                    placed.contains(segment.tenantID + "/" + name) || !sorted.contains { $0.tenantID == segment.tenantID && $0.name == name }
                }
            }
            // A cycle the validator would have refused: evaluate the rest in name order.
            let next = ready.isEmpty ? remaining : ready
            for segment in next { placed.insert(segment.tenantID + "/" + segment.name) }
            levels.append(next)
            remaining.removeAll { segment in next.contains { $0.tenantID == segment.tenantID && $0.name == segment.name } }
        }
        return levels
    }
}
