import Foundation
import Logging
import ServiceLifecycle
import StratumDefinitions
import StratumStore
import Synchronization

/// When a definition runs: at a fixed interval, on a cron expression, or only on request.
public enum Cadence: Sendable, Equatable {
    case every(milliseconds: Int64)
    case cron(CronExpression)
    case onRequest

    /// The default when neither the definition nor Settings give a schedule.
    public static let fallback = Cadence.every(milliseconds: 3_600_000)

    /// A definition's cadence: its own schedule, else Settings' default, else hourly.
    /// Segments: `auto_refresh: false` means on request only; static and draft never run.
    public init(schedule: Schedule?, settings: SettingsDefinition?, refreshIntervalHours: Int? = nil) {
        if let hours = refreshIntervalHours {
            self = .every(milliseconds: Int64(hours) * 3_600_000)
        } else if let schedule = schedule ?? settings?.defaultSchedule {
            if let every = schedule.every.flatMap(TimeSpan.init(parsing:)) {
                self = .every(milliseconds: Int64(every.milliseconds))
            } else if let cron = schedule.cron.flatMap({ try? CronExpression(parsing: $0) }) {
                self = .cron(cron)
            } else {
                self = Self.fallback
            }
        } else {
            self = Self.fallback
        }
    }

    /// The next instant after `instant` this cadence fires, if any.
    public func next(after instant: Int64) -> Int64? {
        switch self {
        case .every(let interval): instant.addingReportingOverflow(interval).overflow ? .max : instant + interval
        case .cron(let expression): expression.next(after: instant)
        case .onRequest: nil
        }
    }
}

/// Runs traits → RFM → segments on their schedules, one run at a time, in
/// dependency order, recording every run. Everything is due at start.
public final class Scheduler: Service, Sendable {
    struct Entry: Sendable {
        var kind: DefinitionKind
        var tenant: String
        var name: String
        var cadence: Cadence
    }

    let evaluator: DefinitionEvaluator
    let logger: Logger
    let clock: @Sendable () -> Milliseconds
    let entries: [Entry]
    let touched: TouchedProfiles?
    private let due: Mutex<[String: Milliseconds]>

    /// How often dynamic segments re-evaluate the profiles ingestion touched.
    public static let incrementalInterval: Int64 = 250

    public init(evaluator: DefinitionEvaluator, logger: Logger, touched: TouchedProfiles? = nil, clock: @escaping @Sendable () -> Milliseconds = IngestionPipeline.systemClock) {
        self.evaluator = evaluator
        self.touched = touched
        self.logger = logger
        self.clock = clock
        let definitions = evaluator.definitions
        var entries: [Entry] = []
        for loaded in definitions.traits {
            let trait = loaded.definition
            entries.append(Entry(kind: .trait, tenant: trait.tenantID, name: trait.name, cadence: Cadence(schedule: trait.schedule, settings: definitions.settings(for: trait.tenantID))))
        }
        for loaded in definitions.rfmModels {
            let model = loaded.definition
            entries.append(Entry(kind: .rfm, tenant: model.tenantID, name: model.name, cadence: Cadence(schedule: model.schedule, settings: definitions.settings(for: model.tenantID))))
        }
        for segment in DefinitionEvaluator.referenceOrder(definitions.segments.map(\.definition)) where DefinitionEvaluator.isEvaluated(segment) {
            let cadence = segment.autoRefresh == false ? Cadence.onRequest
                : Cadence(schedule: segment.schedule, settings: definitions.settings(for: segment.tenantID), refreshIntervalHours: segment.refreshIntervalHours)
            entries.append(Entry(kind: .segment, tenant: segment.tenantID, name: segment.name, cadence: cadence))
        }
        self.entries = entries
        let start = clock()
        due = Mutex(Dictionary(entries.compactMap { $0.cadence == .onRequest ? nil : (Self.key($0), start) }) { first, _ in first })
    }

    static func key(_ entry: Entry) -> String { "\(entry.kind.rawValue)/\(entry.tenant)/\(entry.name)" }

    /// Runs whatever is due at `now` (in dependency order) and returns the
    /// next instant anything is due, if ever.
    @discardableResult
    public func tick(now: Milliseconds) async -> Milliseconds? {
        let dueNow = due.withLock { due in entries.filter { entry in (due[Self.key(entry)] ?? .max) <= now } }
        // Traits and RFM models due together are computed together and written in one pass.
        let dueValues = dueNow.filter { $0.kind != .segment }
        let traits = dueValues.compactMap { entry in
            evaluator.definitions.traits.first { entry.kind == .trait && $0.definition.tenantID == entry.tenant && $0.definition.name == entry.name }?.definition
        }
        let models = dueValues.compactMap { entry in
            evaluator.definitions.rfmModels.first { entry.kind == .rfm && $0.definition.tenantID == entry.tenant && $0.definition.name == entry.name }?.definition
        }
        for outcome in await evaluator.refreshValues(traits: traits, rfmModels: models, asOf: now) {
            // A run cut short by a shutdown is no failure to report.
            if case .failure(let error) = outcome.result, !Task.isCancelled {
                logger.error("A scheduled run failed; it runs again at its next time.", metadata: ["definition": "\(outcome.kind.rawValue)/\(outcome.tenant)/\(outcome.name)", "error": "\(error)"])
            }
        }
        for entry in dueValues {
            due.withLock { $0[Self.key(entry)] = entry.cadence.next(after: now) ?? .max }
        }
        // Due segments that do not refer to one another run together.
        let dueSegments = dueNow.filter { $0.kind == .segment }
        let segments = dueSegments.compactMap { entry in
            evaluator.definitions.segments.first { $0.definition.tenantID == entry.tenant && $0.definition.name == entry.name }?.definition
        }
        for batch in DefinitionEvaluator.batches(segments) {
            // Their own instant (earlier runs of this tick may have taken a while), and the
            // profiles touched since are left to the incremental runs.
            let asOf = max(now, clock())
            let runs = batch.map { segment in
                DefinitionEvaluator.SegmentRun(
                    segment: segment, nextRefreshAt: dueSegments.first { $0.tenant == segment.tenantID && $0.name == segment.name }?.cadence.next(after: now),
                    yieldingToIncremental: touched != nil && segment.effectiveType == .dynamic)
            }
            for (segment, result) in await evaluator.refresh(segments: runs, asOf: asOf) {
                switch result {
                case .success(let run):
                    logger.debug("Refreshed a segment.", metadata: ["segment": "\(segment.name)", "members": "\(run.profiles)", "entered": "\(run.entered)", "exited": "\(run.exited)"])
                case .failure where Task.isCancelled:
                    logger.info("A scheduled run was cut short by the shutdown.", metadata: ["definition": "\(DefinitionKind.segment.rawValue)/\(segment.tenantID)/\(segment.name)"])
                case .failure(let error):
                    logger.error("A scheduled run failed; it runs again at its next time.", metadata: ["definition": "\(DefinitionKind.segment.rawValue)/\(segment.tenantID)/\(segment.name)", "error": "\(error)"])
                }
            }
        }
        for entry in dueSegments {
            due.withLock { $0[Self.key(entry)] = entry.cadence.next(after: now) ?? .max }
        }
        return due.withLock { $0.values.min() }.flatMap { $0 == .max ? nil : $0 }
    }

    /// Re-evaluates dynamic segments for the profiles touched since the last
    /// call, in reference order; returns how many profiles were looked at.
    @discardableResult
    public func refreshTouched(now: Milliseconds) async -> Int {
        guard let touched else { return 0 }
        let drained = touched.drain()
        var looked = 0
        for (tenant, ids) in drained.sorted(by: { $0.key < $1.key }) {
            let only = ids.sorted()
            looked += only.count
            let dynamic = entries.filter { $0.kind == .segment && $0.tenant == tenant }.compactMap { entry in
                evaluator.definitions.segments.first { $0.definition.tenantID == tenant && $0.definition.name == entry.name }?.definition
            }.filter { $0.effectiveType == .dynamic }
            guard !dynamic.isEmpty else { continue }
            do {
                for (segment, result) in try await evaluator.refreshIncrementally(dynamic, tenant: tenant, asOf: now, only: only) {
                    if case .failure(let error) = result {
                        logger.error("An incremental segment run failed; the next full run corrects it.", metadata: ["segment": "\(segment)", "error": "\(error)"])
                    }
                }
            } catch {
                logger.error("Incremental segment runs failed; the next full runs correct them.", metadata: ["tenant": "\(tenant)", "error": "\(error)"])
            }
        }
        return looked
    }

    func recoverInterruptedRuns() async {
        do {
            let marked = try await evaluator.store.recoverInterruptedRuns(at: clock())
            if marked > 0 { logger.warning("Runs of a process that stopped mid-run are marked failed (interrupted).", metadata: ["runs": "\(marked)"]) }
        } catch {
            logger.error("Runs interrupted by a stopped process could not be marked; their segments may show as computing.", metadata: ["error": "\(error)"])
        }
    }

    public func run() async throws {
        logger.info("Scheduler started.", metadata: ["definitions": "\(entries.count)"])
        await recoverInterruptedRuns()
        do {
            try await cancelWhenGracefulShutdown {
                // Two loops: full runs on their schedules, and incremental runs for
                // touched profiles every 250 ms, which must not wait for a full run
                // over millions of events to finish.
                try await withThrowingDiscardingTaskGroup { group in
                    group.addTask {
                        var next: Milliseconds? = self.clock()
                        var recovered = self.clock()
                        while !Task.isCancelled {
                            // A `stratum refresh` killed beside the daemon leaves runs behind too.
                            if self.clock() - recovered >= 60_000 {
                                await self.recoverInterruptedRuns()
                                recovered = self.clock()
                            }
                            if let due = next, due <= self.clock() { next = await self.tick(now: self.clock()) }
                            // Wake at the next due time, and at least once a minute.
                            let wait = max(0, min((next ?? .max) - self.clock(), 60_000))
                            try await Task.sleep(for: .milliseconds(max(wait, 50)))
                        }
                    }
                    if self.touched != nil {
                        group.addTask {
                            while !Task.isCancelled {
                                await self.refreshTouched(now: self.clock())
                                try await Task.sleep(for: .milliseconds(Self.incrementalInterval))
                            }
                        }
                    }
                }
            }
        } catch is CancellationError {
            logger.info("Scheduler stopped.")
        }
    }
}
