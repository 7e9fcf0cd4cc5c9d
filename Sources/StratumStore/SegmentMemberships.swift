import Foundation
import GRDB
import StratumDefinitions
import Synchronization

/// A segment's recorded state: the seed's CDPSegment metrics.
public struct SegmentState: Sendable, Hashable {
    public var tenant: String
    public var segment: String
    public var status: String
    public var profileCount: Int
    public var lastComputedAt: Milliseconds?
    public var computationDurationMilliseconds: Int?
    public var nextRefreshAt: Milliseconds?

    public init(tenant: String, segment: String, status: String, profileCount: Int, lastComputedAt: Milliseconds?, computationDurationMilliseconds: Int?, nextRefreshAt: Milliseconds?) {
        self.tenant = tenant
        self.segment = segment
        self.status = status
        self.profileCount = profileCount
        self.lastComputedAt = lastComputedAt
        self.computationDurationMilliseconds = computationDurationMilliseconds
        self.nextRefreshAt = nextRefreshAt
    }

    /// How late a scheduled full refresh may be before the segment shows as stale.
    public static let overdueGrace: Milliseconds = 5 * 60_000

    /// The status to show at `now`: the recorded one, except that an active
    /// segment refreshed on a schedule whose next full refresh is overdue by
    /// more than the grace period is stale (its time windows have moved on
    /// without it).
    public func status(at now: Milliseconds, scheduled: Bool = true) -> String {
        if scheduled, status == "active", let next = nextRefreshAt, now > next + Self.overdueGrace { return "stale" }
        return status
    }
}

/// One recorded membership change.
public struct SegmentChange: Sendable, Hashable {
    public var sequence: Int64
    public var segment: String
    public var profileID: String
    public var change: String
    public var changedAt: Milliseconds
    public var runID: String
}

extension SQLiteStore {
    /// One segment of a `refreshSegments` batch.
    public struct SegmentRefresh: Sendable {
        public var name: String
        public var rules: RuleGroup
        public var runID: String
        public var nextRefreshAt: Milliseconds?
        /// The run leaves alone the profiles ingestion updated after `asOf`:
        /// incremental runs, evaluating them at a later instant, own their
        /// membership (a full run started before their event must not exit them).
        public var yieldingToIncremental: Bool

        public init(name: String, rules: RuleGroup, runID: String, nextRefreshAt: Milliseconds?, yieldingToIncremental: Bool = false) {
            self.name = name
            self.rules = rules
            self.runID = runID
            self.nextRefreshAt = nextRefreshAt
            self.yieldingToIncremental = yieldingToIncremental
        }
    }

    /// Full runs of segments that do not refer to one another, in one write
    /// transaction. Each evaluates its rules for every profile of the tenant
    /// and makes the stored membership equal the result, recording each entry
    /// and exit with `asOf` and its run id, its metrics, and deliveries for
    /// `subscriptions` (a transactional outbox: nothing is sent for a run that
    /// rolled back).
    ///
    /// Two or more: their queries run on two readers, each taking the next
    /// segment as it finishes one, while the transaction holds the writer — so
    /// no commit comes between, and the readers see exactly what it sees — and
    /// the writer applies each result as it arrives, in its own savepoint (a
    /// segment that fails leaves the others' results), while the readers go on
    /// with the rest. One alone is evaluated in the transaction itself.
    public func refreshSegments(_ segments: [SegmentRefresh], context: RuleContext, subscriptions: [SegmentSubscription] = []) async throws -> [Result<(members: Int, entered: Int, exited: Int), StoreError>] {
        let compiled = segments.map { segment -> Result<(CompiledSegment, SegmentRefresh), StoreError> in
            var query = SegmentQuery(context: context)
            do {
                return .success((CompiledSegment(name: segment.name, runID: segment.runID, select: try query.select(segment.rules), arguments: query.arguments), segment))
            } catch {
                return .failure(StoreError.from(error))
            }
        }
        let ready = compiled.compactMap { try? $0.get() }
        let pool = self.pool
        return try await pool.writeWithoutTransaction { db in
            var applied: [Result<(members: Int, entered: Int, exited: Int), StoreError>?] = Array(repeating: nil, count: ready.count)
            try db.inTransaction(.immediate) {
                func apply(_ index: Int, _ found: Result<([String], Duration), StoreError>) {
                    let (segment, options) = ready[index]
                    applied[index] = found.flatMap { ids, queried in
                        var result: (members: Int, entered: Int, exited: Int) = (0, 0, 0)
                        do {
                            try db.inSavepoint {
                                result = try Self.apply(
                                    segment, members: ids, queried: queried, context: context, nextRefreshAt: options.nextRefreshAt,
                                    yieldingToIncremental: options.yieldingToIncremental, subscriptions: subscriptions, in: db)
                                return .commit
                            }
                            return .success(result)
                        } catch {
                            return .failure(StoreError.from(error))
                        }
                    }
                }
                if ready.count == 1 {
                    apply(0, Self.evaluateAlone(ready[0].0, in: db))
                } else {
                    let lanes = QueryLanes(ready.map(\.0), on: pool)
                    for _ in ready.indices {
                        let (index, found) = lanes.next()
                        apply(index, found)
                    }
                }
                return .commit
            }
            var next = applied.makeIterator()
            return compiled.map { segment in
                segment.flatMap { segment, _ in next.next().flatMap { $0 } ?? .failure(StoreError("segment \(segment.name) was not evaluated")) }
            }
        }
    }

    /// Segment queries run on two readers, each taking the next query as it
    /// finishes one; `next()` waits for the next result to come in.
    final class QueryLanes: Sendable {
        private let finished = Mutex<[(Int, Result<([String], Duration), StoreError>)]>([])
        private let arrived = DispatchSemaphore(value: 0)
        /// How many queries a lane has taken.
        private let taken = Mutex(0)

        init(_ segments: [CompiledSegment], on pool: DatabasePool) {
            for _ in 0..<2 {
                DispatchQueue.global().async { [self] in
                    while let index = taken.withLock({ next -> Int? in
                        guard next < segments.count else { return nil }
                        next += 1
                        return next - 1
                    }) {
                        let started = ContinuousClock.now
                        let result = Result {
                            try pool.read { db in try segments[index].members(in: db) }
                        }
                        finished.withLock { $0.append((index, result.map { ($0, ContinuousClock.now - started) }.mapError { StoreError.from($0) })) }
                        arrived.signal()
                    }
                }
            }
        }

        /// The next query to finish: its segment's index and members (or error), and how long it took.
        func next() -> (Int, Result<([String], Duration), StoreError>) {
            arrived.wait()
            return finished.withLock { $0.removeFirst() }
        }
    }

    /// The members a lone segment's query selects, run in the write transaction itself.
    static func evaluateAlone(_ segment: CompiledSegment, in db: Database) -> Result<([String], Duration), StoreError> {
        let started = ContinuousClock.now
        return Result { try segment.members(in: db) }
            .map { ($0, ContinuousClock.now - started) }
            .mapError { StoreError.from($0) }
    }

    /// One segment of an incremental refresh: its name, rules and run id.
    public struct IncrementalRefresh: Sendable {
        public var name: String
        public var rules: RuleGroup
        public var runID: String

        public init(name: String, rules: RuleGroup, runID: String) {
            self.name = name
            self.rules = rules
            self.runID = runID
        }
    }

    /// Re-evaluates several segments for the profiles `only`, in one
    /// transaction (one commit per tick, however many dynamic segments), each
    /// in its own savepoint: a segment that fails leaves the others' results.
    public func refreshIncrementally(_ segments: [IncrementalRefresh], context: RuleContext, only: [String], subscriptions: [SegmentSubscription]) async throws -> [Result<(members: Int, entered: Int, exited: Int), StoreError>] {
        let compiled = segments.map { segment -> Result<CompiledSegment, StoreError> in
            var query = SegmentQuery(context: context, scope: "temp.scope")
            do {
                return .success(CompiledSegment(name: segment.name, runID: segment.runID, select: try query.select(segment.rules), arguments: query.arguments))
            } catch {
                return .failure(StoreError.from(error))
            }
        }
        return try await pool.write { db in
            try Self.createScope(only, in: db)
            defer { try? db.execute(sql: "DROP TABLE IF EXISTS temp.scope") }
            return compiled.map { segment in
                segment.flatMap { segment in
                    var result: (members: Int, entered: Int, exited: Int) = (0, 0, 0)
                    do {
                        try db.inSavepoint {
                            result = try Self.applyIncrementally(segment, context: context, subscriptions: subscriptions, in: db)
                            return .commit
                        }
                        return .success(result)
                    } catch {
                        return .failure(StoreError.from(error))
                    }
                }
            }
        }
    }

    /// A segment's rules compiled to SQL, ready to apply.
    struct CompiledSegment: Sendable {
        var name: String
        var runID: String
        var select: String
        var argumentValues: [DatabaseValue]

        init(name: String, runID: String, select: String, arguments: [DatabaseValueConvertible?]) {
            self.name = name
            self.runID = runID
            self.select = select
            argumentValues = arguments.map { $0?.databaseValue ?? .null }
        }

        /// The ids its query selects.
        func members(in db: Database) throws -> [String] {
            try String.fetchAll(db, sql: select, arguments: StatementArguments(argumentValues))
        }
    }

    /// The touched profiles an incremental run is limited to, as temp.scope.
    static func createScope(_ ids: [String], in db: Database) throws {
        try db.execute(sql: "DROP TABLE IF EXISTS temp.scope")
        try db.execute(sql: "CREATE TEMP TABLE scope (id TEXT PRIMARY KEY)")
        let insert = try db.makeStatement(sql: "INSERT OR IGNORE INTO temp.scope (id) VALUES (?)")
        for id in ids { try insert.execute(arguments: [id]) }
    }

    /// Makes a segment's stored membership equal `selected` (its query's result,
    /// for every profile of the tenant), recording each entry and exit, the
    /// deliveries and the segment's state. `queried`: how long the query took
    /// (part of computation_duration_ms).
    ///
    /// The difference is found by walking the selected ids and the stored
    /// members side by side, both in SQLite's order, so only the changes are
    /// written: a run that changes nothing reads the members once and writes
    /// none, and the writer is held that much less. With
    /// `yieldingToIncremental`, profiles updated after the evaluation instant
    /// keep the membership they have.
    static func apply(_ segment: CompiledSegment, members selected: [String], queried: Duration = .zero, context: RuleContext, nextRefreshAt: Milliseconds?, yieldingToIncremental: Bool, subscriptions: [SegmentSubscription], in db: Database) throws -> (members: Int, entered: Int, exited: Int) {
        let (name, runID, tenant, asOf) = (segment.name, segment.runID, context.tenant, context.asOf)
        let started = ContinuousClock.now
        var selected = selected
        if !zip(selected, selected.dropFirst()).allSatisfy({ ProfileOrder.compare($0, $1) < 0 }) {
            selected.sort(by: ProfileOrder.precedes)
            selected = selected.enumerated().filter { $0.offset == 0 || !ProfileOrder.equal(selected[$0.offset - 1], $0.element) }.map(\.element)
        }
        let stored = try String.fetchAll(db, sql: "SELECT profile_id FROM segment_memberships WHERE tenant_id = ? AND segment = ? ORDER BY profile_id", arguments: [tenant, name])
        let recent = yieldingToIncremental
            ? Set(try String.fetchAll(db, sql: "SELECT id FROM profiles WHERE tenant_id = ? AND updated_at > ?", arguments: [tenant, asOf]))
            : []
        var entered: [String] = []
        var exited: [String] = []
        var (next, member) = (0, 0)
        while next < selected.count || member < stored.count {
            let order = next == selected.count ? 1 : member == stored.count ? -1 : ProfileOrder.compare(selected[next], stored[member])
            if order < 0 {
                if !recent.contains(selected[next]) { entered.append(selected[next]) }
                next += 1
            } else if order > 0 {
                if !recent.contains(stored[member]) { exited.append(stored[member]) }
                member += 1
            } else {
                (next, member) = (next + 1, member + 1)
            }
        }
        let statements = HotStatements(db: db)
        // Each change recorded, then the membership inserted (entered_at: asOf) or deleted.
        for id in entered {
            try statements.recordSegmentChange(tenant: tenant, segment: name, profileID: id, change: "entered", at: asOf, runID: runID)
            var insert = try statements.statement(.insertMembership)
            for text in [tenant, name, id] { insert.bind(text) }
            insert.bind(asOf)
            try insert.execute()
        }
        for id in exited {
            try statements.recordSegmentChange(tenant: tenant, segment: name, profileID: id, change: "exited", at: asOf, runID: runID)
            try statements.deleteMembership(tenant: tenant, segment: name, profileID: id)
        }
        let members = stored.count + entered.count - exited.count
        try finish(segment, context: context, members: members, entered: entered.count, exited: exited.count, full: true,
                   duration: ContinuousClock.now - started + queried, nextRefreshAt: nextRefreshAt, subscriptions: subscriptions, in: db)
        return (members, entered.count, exited.count)
    }

    /// Makes the stored membership of the profiles in temp.scope equal the
    /// segment's compiled query's result for them, recording changes and
    /// deliveries; the segment's count follows, its status and metrics are
    /// the full runs'.
    static func applyIncrementally(_ segment: CompiledSegment, context: RuleContext, subscriptions: [SegmentSubscription], in db: Database) throws -> (members: Int, entered: Int, exited: Int) {
        let (name, runID, tenant, asOf) = (segment.name, segment.runID, context.tenant, context.asOf)
        let started = ContinuousClock.now
        try db.execute(sql: "DROP TABLE IF EXISTS temp.new_members")
        try db.execute(sql: "CREATE TEMP TABLE new_members (id TEXT PRIMARY KEY)")
        try db.execute(sql: "INSERT INTO temp.new_members (id) " + segment.select, arguments: StatementArguments(segment.argumentValues))
        try db.execute(sql: """
            INSERT INTO segment_changes (tenant_id, segment, profile_id, change, changed_at, run_id)
            SELECT ?1, ?2, n.id, 'entered', ?3, ?4 FROM temp.new_members n
            WHERE NOT EXISTS (SELECT 1 FROM segment_memberships m WHERE m.tenant_id = ?1 AND m.segment = ?2 AND m.profile_id = n.id)
            ORDER BY n.id
            """, arguments: [tenant, name, asOf, runID])
        let entered = db.changesCount
        try db.execute(sql: """
            INSERT INTO segment_changes (tenant_id, segment, profile_id, change, changed_at, run_id)
            SELECT ?1, ?2, m.profile_id, 'exited', ?3, ?4 FROM segment_memberships m
            WHERE m.tenant_id = ?1 AND m.segment = ?2 AND m.profile_id NOT IN (SELECT id FROM temp.new_members)
              AND m.profile_id IN (SELECT id FROM temp.scope)
            ORDER BY m.profile_id
            """, arguments: [tenant, name, asOf, runID])
        let exited = db.changesCount
        try db.execute(sql: """
            DELETE FROM segment_memberships WHERE tenant_id = ?1 AND segment = ?2 AND profile_id NOT IN (SELECT id FROM temp.new_members)
              AND profile_id IN (SELECT id FROM temp.scope)
            """, arguments: [tenant, name])
        try db.execute(sql: """
            INSERT INTO segment_memberships (tenant_id, segment, profile_id, entered_at)
            SELECT ?1, ?2, id, ?3 FROM temp.new_members WHERE true
            ON CONFLICT (tenant_id, segment, profile_id) DO NOTHING
            """, arguments: [tenant, name, asOf])
        try db.execute(sql: "DROP TABLE temp.new_members")
        let members = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM segment_memberships WHERE tenant_id = ? AND segment = ?", arguments: [tenant, name]) ?? 0
        try finish(segment, context: context, members: members, entered: entered, exited: exited, full: false,
                   duration: ContinuousClock.now - started, nextRefreshAt: nil, subscriptions: subscriptions, in: db)
        return (members, entered, exited)
    }

    /// What every run ends with: deliveries for its changes, and the segment's
    /// state (a full run's status and metrics; an incremental run's count).
    private static func finish(_ segment: CompiledSegment, context: RuleContext, members: Int, entered: Int, exited: Int, full: Bool, duration: Duration, nextRefreshAt: Milliseconds?, subscriptions: [SegmentSubscription], in db: Database) throws {
        let (name, tenant) = (segment.name, context.tenant)
        if entered + exited > 0 {
            try Self.enqueueSegmentDeliveries(db, tenant: tenant, segment: name, runID: segment.runID, asOf: context.asOf, subscriptions: subscriptions)
        }
        let milliseconds = duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        if full {
            try db.execute(sql: """
                INSERT INTO segment_state (tenant_id, segment, status, profile_count, last_computed_at, computation_duration_ms, next_refresh_at)
                VALUES (?1, ?2, 'active', ?3, ?4, ?5, ?6)
                ON CONFLICT (tenant_id, segment) DO UPDATE SET status = 'active', profile_count = ?3, last_computed_at = ?4,
                  computation_duration_ms = ?5, next_refresh_at = COALESCE(?6, next_refresh_at)
                """, arguments: [tenant, name, members, context.asOf, milliseconds, nextRefreshAt])
        } else {
            try db.execute(sql: """
                INSERT INTO segment_state (tenant_id, segment, status, profile_count) VALUES (?1, ?2, 'stale', ?3)
                ON CONFLICT (tenant_id, segment) DO UPDATE SET profile_count = ?3
                """, arguments: [tenant, name, members])
        }
    }

    /// The recorded state of a tenant's segments.
    public func segmentStates(tenant: String) async throws -> [SegmentState] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM segment_state WHERE tenant_id = ? ORDER BY segment", arguments: [tenant]).map { row in
                SegmentState(
                    tenant: row["tenant_id"], segment: row["segment"], status: row["status"], profileCount: row["profile_count"],
                    lastComputedAt: row["last_computed_at"], computationDurationMilliseconds: row["computation_duration_ms"],
                    nextRefreshAt: row["next_refresh_at"])
            }
        }
    }

    /// A segment's members after `cursor` (profile ids ascending), up to `limit`.
    public func segmentMembers(tenant: String, segment: String, after cursor: String?, limit: Int) async throws -> [String] {
        try await pool.read { db in
            try String.fetchAll(db, sql: """
                SELECT profile_id FROM segment_memberships WHERE tenant_id = ? AND segment = ? AND profile_id > ?
                ORDER BY profile_id LIMIT ?
                """, arguments: [tenant, segment, cursor ?? "", limit])
        }
    }

    /// The segments a profile belongs to.
    public func segments(tenant: String, profileID: String) async throws -> [String] {
        try await pool.read { db in
            try String.fetchAll(db, sql: "SELECT segment FROM segment_memberships WHERE tenant_id = ? AND profile_id = ? ORDER BY segment", arguments: [tenant, profileID])
        }
    }

    /// Membership changes after `sequence`, oldest first.
    public func segmentChanges(tenant: String, after sequence: Int64 = 0, limit: Int = 1_000) async throws -> [SegmentChange] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM segment_changes WHERE tenant_id = ? AND seq > ? ORDER BY seq LIMIT ?", arguments: [tenant, sequence, limit]).map { row in
                SegmentChange(sequence: row["seq"], segment: row["segment"], profileID: row["profile_id"], change: row["change"], changedAt: row["changed_at"], runID: row["run_id"])
            }
        }
    }

    /// Records the start of an evaluation run.
    public func startRun(id: String, tenant: String, kind: DefinitionKind, name: String, asOf: Milliseconds, at startedAt: Milliseconds) async throws {
        try await pool.write { db in
            try db.execute(sql: "INSERT INTO evaluation_runs (id, tenant_id, kind, name, as_of, started_at, status, owner) VALUES (?, ?, ?, ?, ?, ?, 'running', ?)",
                           arguments: [id, tenant, kind.rawValue, name, asOf, startedAt, RunOwner.current])
        }
    }

    /// Sets a segment's status — `computing` while a full run is under way,
    /// `stale` after one failed — keeping its metrics and members, and its
    /// next scheduled refresh when given (a failed run is tried again then).
    /// Written even from a task being cancelled (a shutdown ending a run): a
    /// segment left `computing` would stay so until the next start.
    public func setSegmentStatus(tenant: String, segment: String, status: String, nextRefreshAt: Milliseconds? = nil) async throws {
        let pool = self.pool
        try await Task {
            try await pool.write { db in
            try db.execute(sql: """
                INSERT INTO segment_state (tenant_id, segment, status, next_refresh_at) VALUES (?, ?, ?, ?)
                ON CONFLICT (tenant_id, segment) DO UPDATE SET status = excluded.status,
                  next_refresh_at = COALESCE(excluded.next_refresh_at, segment_state.next_refresh_at)
                """, arguments: [tenant, segment, status, nextRefreshAt])
            }
        }.value
    }

    /// Marks what a process that stopped mid-run left behind: its runs still
    /// `running` become `failed` ("interrupted"), and segments `computing`
    /// with no run still going become `stale`. Runs of a live process (a
    /// `stratum refresh` beside the daemon) are left alone. Returns how many
    /// runs were marked. The daemon calls it at start and once a minute.
    @discardableResult
    public func recoverInterruptedRuns(at instant: Milliseconds) async throws -> Int {
        try await pool.write { db in
            let running = try Row.fetchAll(db, sql: "SELECT id, owner FROM evaluation_runs WHERE status = 'running'")
            let interrupted = running.filter { !RunOwner.isAlive($0["owner"]) }.map { $0["id"] as String }
            for id in interrupted {
                try db.execute(sql: "UPDATE evaluation_runs SET status = 'failed', finished_at = ?, error = 'interrupted: the process stopped during the run' WHERE id = ?", arguments: [instant, id])
            }
            try db.execute(sql: """
                UPDATE segment_state SET status = 'stale' WHERE status = 'computing' AND NOT EXISTS (
                  SELECT 1 FROM evaluation_runs r WHERE r.tenant_id = segment_state.tenant_id AND r.kind = 'Segment'
                    AND r.name = segment_state.segment AND r.status = 'running')
                """)
            return interrupted.count
        }
    }

    /// Records how an evaluation run ended.
    /// Recorded even from a task being cancelled (a shutdown ending a run, in an
    /// unstructured task that does not inherit it): a run left `running` would
    /// wait for the next start to be marked.
    public func finishRun(id: String, at finishedAt: Milliseconds, profiles: Int?, entered: Int?, exited: Int?, error: String?) async throws {
        let pool = self.pool
        try await Task {
            try await pool.write { db in
                try db.execute(sql: "UPDATE evaluation_runs SET finished_at = ?, status = ?, profiles = ?, entered = ?, exited = ?, error = ? WHERE id = ?",
                               arguments: [finishedAt, error == nil ? "succeeded" : "failed", profiles, entered, exited, error, id])
            }
        }.value
    }
}

/// One recorded evaluation run.
public struct EvaluationRun: Sendable, Hashable {
    public var id: String
    public var kind: String
    public var name: String
    public var asOf: Milliseconds
    public var startedAt: Milliseconds
    public var finishedAt: Milliseconds?
    public var status: String
    public var profiles: Int?
    public var entered: Int?
    public var exited: Int?
    public var error: String?
}

extension SQLiteStore {
    /// A tenant's evaluation runs, oldest first.
    public func evaluationRuns(tenant: String, limit: Int = 1_000) async throws -> [EvaluationRun] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM evaluation_runs WHERE tenant_id = ? ORDER BY started_at, rowid LIMIT ?", arguments: [tenant, limit]).map { row in
                EvaluationRun(
                    id: row["id"], kind: row["kind"], name: row["name"], asOf: row["as_of"], startedAt: row["started_at"], finishedAt: row["finished_at"],
                    status: row["status"], profiles: row["profiles"], entered: row["entered"], exited: row["exited"], error: row["error"])
            }
        }
    }
}

extension SQLiteStore {
    /// Adds and removes a static segment's members, recording the changes and
    /// writing the deliveries for `subscriptions` in the same transaction.
    /// With `replace`, every current member not in `add` is removed.
    public func changeStaticMembers(tenant: String, segment: String, add: [String], remove: [String], replace: Bool = false, at instant: Milliseconds, runID: String, subscriptions: [SegmentSubscription] = []) async throws -> (members: Int, entered: Int, exited: Int) {
        try await pool.write { db in
            var entered = 0
            var exited = 0
            // The callers resolved the ids on a read connection: a merge may have
            // committed since. Each id is read again here, in the writing
            // transaction, as the profile it now is (a merged-away id as its
            // survivor; an id of no profile is dropped), so no membership is
            // written for a deleted profile.
            let reader = SQLiteTransaction(db: db, cache: nil, statements: HotStatements(db: db))
            func current(_ id: String) throws -> String? { try reader.currentProfileID(tenant: tenant, id: id) }
            func isMember(_ id: String) throws -> Bool {
                try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM segment_memberships WHERE tenant_id = ? AND segment = ? AND profile_id = ?)",
                                  arguments: [tenant, segment, id]) == true
            }
            let add = try add.compactMap(current)
            // A stored member is removed as named, even one of no profile now.
            var remove = try remove.compactMap { try isMember($0) ? $0 : current($0) }
            if replace {
                remove = try String.fetchAll(db, sql: "SELECT profile_id FROM segment_memberships WHERE tenant_id = ? AND segment = ?", arguments: [tenant, segment])
            }
            // Sorted, so the recorded changes (and the deliveries built from them) come out in a stable order.
            for id in Set(add).sorted() {
                try db.execute(sql: "INSERT INTO segment_memberships (tenant_id, segment, profile_id, entered_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING", arguments: [tenant, segment, id, instant])
                if db.changesCount == 1 {
                    entered += 1
                    try db.execute(sql: "INSERT INTO segment_changes (tenant_id, segment, profile_id, change, changed_at, run_id) VALUES (?, ?, ?, 'entered', ?, ?)", arguments: [tenant, segment, id, instant, runID])
                }
            }
            for id in Set(remove).subtracting(add).sorted() {
                try db.execute(sql: "DELETE FROM segment_memberships WHERE tenant_id = ? AND segment = ? AND profile_id = ?", arguments: [tenant, segment, id])
                if db.changesCount == 1 {
                    exited += 1
                    try db.execute(sql: "INSERT INTO segment_changes (tenant_id, segment, profile_id, change, changed_at, run_id) VALUES (?, ?, ?, 'exited', ?, ?)", arguments: [tenant, segment, id, instant, runID])
                }
            }
            if entered + exited > 0 {
                try Self.enqueueSegmentDeliveries(db, tenant: tenant, segment: segment, runID: runID, asOf: instant, subscriptions: subscriptions)
            }
            let members = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM segment_memberships WHERE tenant_id = ? AND segment = ?", arguments: [tenant, segment]) ?? 0
            try db.execute(sql: """
                INSERT INTO segment_state (tenant_id, segment, status, profile_count, last_computed_at)
                VALUES (?1, ?2, 'active', ?3, ?4)
                ON CONFLICT (tenant_id, segment) DO UPDATE SET status = 'active', profile_count = ?3, last_computed_at = ?4
                """, arguments: [tenant, segment, members, instant])
            return (members, entered, exited)
        }
    }
}
