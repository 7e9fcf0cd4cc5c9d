import CSQLite
import Foundation
import GRDB
import StratumJSON

/// The embedded store: one SQLite file in WAL mode.
///
/// Commits are durable against process crashes and, with the default
/// `synchronous = FULL`, against power loss: a write that returned is on disk.
public final class SQLiteStore: Store {
    let pool: DatabasePool
    public let path: String
    /// Profiles per write transaction when evaluation stores traits and RFM
    /// scores: small enough that ingestion never waits long for the writer.
    let writeChunk: Int
    /// Identifier and profile lookups of ingestion, kept for the writer connection.
    let writerCache = WriterCache()
    /// Full evaluation runs under way in this process, one per definition.
    public let runLocks = RunLocks()

    /// Process-wide SQLite settings, made before the first connection opens.
    /// Memory statistics off: each of SQLite's allocations would otherwise lock
    /// one process-wide mutex, which readers computing traits side by side (and
    /// the ingestion writer beside them) contend for.
    private static let configured: Bool = stratum_sqlite_disable_memory_statistics() == SQLITE_OK

    /// Opens (creating if needed) the store at `path` and runs pending migrations.
    public init(path: String, writeChunk: Int = 50_000) throws {
        _ = Self.configured
        self.path = path
        self.writeChunk = max(1, writeChunk)
        var configuration = Configuration()
        configuration.journalMode = .wal
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
            // Identity lookups hit random pages of several indexes: a small page
            // cache turns each into a read() system call.
            // Readers (a pool of up to five) get a smaller cache than the one writer,
            // so memory stays bounded by configuration, not by the data's size.
            try db.execute(sql: db.configuration.readonly ? "PRAGMA cache_size = -16384" : "PRAGMA cache_size = -65536")
            // Each connection maps the file separately and resident pages count once
            // per mapping: only the writer maps it.
            try db.execute(sql: db.configuration.readonly ? "PRAGMA mmap_size = 0" : "PRAGMA mmap_size = 268435456")
            // Ingestion commits thousands of pages per transaction: checkpoint
            // less often (every 256 MiB of WAL) so pages written repeatedly are
            // copied back once. Measured on 1M events (three runs each, noisy):
            // 16,384 pages 17,300-18,700 events/s (batch p99 226-238 ms), 65,536
            // pages 19,500-21,800 (p99 352-390 ms: the commit that checkpoints
            // takes longer); without checkpoints the growing WAL made it 16,100,
            // and a passive checkpoint from a second connection every 0.5-5 s
            // 19,200-19,300 (it competes with the HTTP side for the other core).
            try db.execute(sql: "PRAGMA wal_autocheckpoint = 65536")
            try db.execute(sql: "PRAGMA temp_store = MEMORY")
            db.add(function: InstantFunction.function)
        }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            try Migrations.migrator.migrate(pool)
        } catch {
            throw StoreError("cannot open the store at \(path): \(error)")
        }
    }

    public func write<T: Sendable>(_ body: @escaping @Sendable (any StoreTransaction) throws -> T) async throws -> T {
        let cache = writerCache
        return try await pool.writeWithoutTransaction { db in
            do {
                var result: T?
                try db.inTransaction {
                    try cache.synchronize(with: db)
                    result = try body(SQLiteTransaction(db: db, cache: cache, statements: HotStatements(db: db)))
                    return .commit
                }
                return result!
            } catch {
                // Rolled back (or the commit failed): what the transaction cached may
                // not exist. Cleared while this write still holds the writer.
                cache.clear()
                throw error
            }
        }
    }

    public func read<T: Sendable>(_ body: @escaping @Sendable (any StoreReader) throws -> T) async throws -> T {
        try await pool.read { db in try body(SQLiteTransaction(db: db, cache: nil, statements: HotStatements(db: db))) }
    }
}

/// Reads and writes on one GRDB connection, with cached statements for the hot
/// paths and, on the writer, the `WriterCache`.
struct SQLiteTransaction: StoreTransaction {
    let db: Database
    let cache: WriterCache?
    let statements: HotStatements

    // MARK: Reads

    func profile(tenant: String, id: String) throws -> ProfileRecord? {
        if let cached = cache?.profile(tenant: tenant, id: id) { return cached }
        let statement = try db.cachedStatement(sql: "SELECT \(Self.profileColumns) FROM profiles WHERE tenant_id = ? AND id = ?")
        let profile = try Row.fetchOne(statement, arguments: [tenant, id]).map(Self.profile(from:))
        if let profile { cache?.store(profile) }
        return profile
    }

    func survivor(tenant: String, absorbedID: String) throws -> String? {
        try String.fetchOne(db.cachedStatement(sql: "SELECT survivor_id FROM profile_aliases WHERE tenant_id = ? AND absorbed_id = ?"), arguments: [tenant, absorbedID])
    }

    func matches(tenant: String, identifiers: [(type: String, hash: String)]) throws -> [IdentifierMatch] {
        var result: [IdentifierMatch] = []
        for identifier in identifiers {
            if let profileID = cache?.profileID(tenant: tenant, type: identifier.type, hash: identifier.hash) {
                result.append(IdentifierMatch(type: identifier.type, hash: identifier.hash, profileID: profileID))
                continue
            }
            var statement = try statements.statement(.identifierOwner)
            statement.bind(tenant)
            statement.bind(identifier.type)
            statement.bind(identifier.hash)
            if let profileID = try statement.text() {
                cache?.store(tenant: tenant, type: identifier.type, hash: identifier.hash, profileID: profileID)
                result.append(IdentifierMatch(type: identifier.type, hash: identifier.hash, profileID: profileID))
            }
        }
        return result
    }

    func identifiers(tenant: String, profileID: String) throws -> [IdentifierRecord] {
        // Without statistics the planner prefers a scan of the tenant's primary-key
        // range (a "covering" read) over this index: a full scan per event.
        let statement = try db.cachedStatement(sql: """
            SELECT tenant_id, id, profile_id, identifier_type, identifier_value, identifier_hash, is_primary, confidence_score,
              verified_at, created_at
            FROM profile_identifiers INDEXED BY profile_identifiers_by_profile
            WHERE tenant_id = ? AND profile_id = ? ORDER BY created_at, id
            """)
        return try Row.fetchAll(statement, arguments: [tenant, profileID]).map { row in
            IdentifierRecord(
                tenantID: row[0], id: row[1], profileID: row[2], type: row[3], value: row[4], hash: row[5], isPrimary: row[6],
                confidence: row[7], verifiedAt: row[8], createdAt: row[9])
        }
    }

    func events(tenant: String, profileID: String, after cursor: EventCursor?, limit: Int) throws -> [EventRecord] {
        let rows: [Row]
        if let cursor {
            rows = try Row.fetchAll(db, sql: """
                SELECT * FROM events WHERE tenant_id = ? AND profile_id = ?
                  AND (event_time < ? OR (event_time = ? AND seq < ?))
                ORDER BY event_time DESC, seq DESC LIMIT ?
                """, arguments: [tenant, profileID, cursor.eventTime, cursor.eventTime, cursor.sequence, limit])
        } else {
            rows = try Row.fetchAll(db, sql: """
                SELECT * FROM events WHERE tenant_id = ? AND profile_id = ?
                ORDER BY event_time DESC, seq DESC LIMIT ?
                """, arguments: [tenant, profileID, limit])
        }
        return try rows.map(Self.event(from:))
    }

    func eventExists(tenant: String, idempotencyKey: String) throws -> Bool {
        var statement = try statements.statement(.eventExists)
        statement.bind(tenant)
        statement.bind(idempotencyKey)
        return try statement.exists()
    }

    func consents(tenant: String, profileID: String) throws -> [ConsentRecord] {
        try Row.fetchAll(db.cachedStatement(sql: "SELECT * FROM consents WHERE tenant_id = ? AND profile_id = ? ORDER BY recorded_at, seq"), arguments: [tenant, profileID]).map { row in
            ConsentRecord(
                tenantID: row["tenant_id"], id: row["id"], profileID: row["profile_id"], consentType: row["consent_type"],
                granted: row["granted"], grantedAt: row["granted_at"], revokedAt: row["revoked_at"], source: row["source"],
                ipAddress: row["ip_address"], consentText: row["consent_text"], consentVersion: row["consent_version"],
                recordedAt: row["recorded_at"], confirmedAt: row["confirmed_at"])
        }
    }

    func merges(tenant: String, survivorID: String) throws -> [MergeRecord] {
        try Row.fetchAll(db, sql: "SELECT * FROM profile_merges WHERE tenant_id = ? AND survivor_id = ? ORDER BY merged_at, id", arguments: [tenant, survivorID]).map { row in
            MergeRecord(
                tenantID: row["tenant_id"], id: row["id"], survivorID: row["survivor_id"], absorbedID: row["absorbed_id"],
                mergedAt: row["merged_at"], reason: row["reason"], identifiersMoved: row["identifiers_moved"], eventsMoved: row["events_moved"])
        }
    }

    func conflicts(tenant: String, profileID: String) throws -> [ConflictRecord] {
        try Row.fetchAll(db, sql: "SELECT * FROM identity_conflicts WHERE tenant_id = ? AND profile_id = ? ORDER BY occurred_at, id", arguments: [tenant, profileID]).map { row in
            ConflictRecord(
                tenantID: row["tenant_id"], id: row["id"], profileID: row["profile_id"], otherProfileID: row["other_profile_id"],
                identifierType: row["identifier_type"], identifierHash: row["identifier_hash"], reason: row["reason"],
                eventID: row["event_id"], occurredAt: row["occurred_at"])
        }
    }

    func countEvents(tenant: String, idempotencyKeys: [String]) throws -> [String: Int] {
        // The key is unique per tenant: a count is 0 or 1.
        var counts: [String: Int] = [:]
        for key in idempotencyKeys {
            counts[key] = try eventExists(tenant: tenant, idempotencyKey: key) ? 1 : 0
        }
        return counts
    }

    func countProfiles(tenant: String) throws -> Int {
        try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM profiles WHERE tenant_id = ?", arguments: [tenant]) ?? 0
    }

    // MARK: Writes

    func insertProfile(_ profile: ProfileRecord) throws {
        var statement = try statements.statement(.insertProfile)
        Self.bindCommonColumns(of: profile, to: &statement)
        statement.bind(profile.createdAt)
        statement.bind(JSONValue.object(profile.profileData).jsonText())
        statement.bind(JSONValue.object(profile.computedTraits).jsonText())
        try statement.execute()
        cache?.store(Self.stored(profile))
    }

    /// Binds ?1 to ?15 of `insertProfile`, `updateProfile` and `updateProfileWithData`.
    static func bindCommonColumns(of profile: ProfileRecord, to statement: inout HotStatement) {
        statement.bind(profile.tenantID)
        statement.bind(profile.id)
        statement.bind(profile.externalID)
        statement.bind(profile.firstSeenAt)
        statement.bind(profile.lastSeenAt)
        statement.bind(profile.storedStage.rawValue)
        statement.bind(profile.totalEvents)
        statement.bind(profile.totalSessions)
        statement.bind(profile.totalPurchases)
        statement.bind("\(profile.totalRevenue)")
        statement.bind(profile.canonicalType)
        statement.bind(profile.canonicalHash)
        statement.bind(profile.lastSessionID)
        statement.bind(profile.lastEventAt)
        statement.bind(profile.updatedAt)
    }

    /// The record as a fresh read returns it (no pending change flags).
    static func stored(_ profile: ProfileRecord) -> ProfileRecord {
        var stored = profile
        stored.dataChanged = false
        return stored
    }

    func updateProfile(_ profile: ProfileRecord) throws {
        // computed_traits is evaluation's (and `carryComputedTraits`'): never
        // rewritten from the record, which holds its numbers as Doubles.
        var statement = try statements.statement(profile.dataChanged ? .updateProfileWithData : .updateProfile)
        Self.bindCommonColumns(of: profile, to: &statement)
        if profile.dataChanged {
            statement.bind(profile.createdAt)
            statement.bind(JSONValue.object(profile.profileData).jsonText())
        }
        try statement.execute()
        if db.changesCount != 1 { throw StoreError("profile \(profile.id) does not exist in tenant \(profile.tenantID)") }
        cache?.store(Self.stored(profile))
    }

    func deleteProfile(tenant: String, id: String) throws {
        try db.execute(sql: "DELETE FROM profiles WHERE tenant_id = ? AND id = ?", arguments: [tenant, id])
        cache?.removeProfile(tenant: tenant, id: id)
    }

    func insertIdentifier(_ identifier: IdentifierRecord) throws {
        var statement = try statements.statement(.insertIdentifier)
        statement.bind(identifier.tenantID)
        statement.bind(identifier.type)
        statement.bind(identifier.hash)
        statement.bind(identifier.id)
        statement.bind(identifier.profileID)
        statement.bind(identifier.value)
        statement.bind(identifier.isPrimary)
        statement.bind(identifier.confidence)
        statement.bind(identifier.verifiedAt)
        statement.bind(identifier.createdAt)
        try statement.execute()
        cache?.store(tenant: identifier.tenantID, type: identifier.type, hash: identifier.hash, profileID: identifier.profileID)
    }

    func moveIdentifiers(tenant: String, from: String, to: String) throws -> Int {
        try db.execute(sql: "UPDATE profile_identifiers SET profile_id = ?, is_primary = 0 WHERE tenant_id = ? AND profile_id = ?", arguments: [to, tenant, from])
        cache?.clearIdentifiers()
        return db.changesCount
    }

    func moveEvents(tenant: String, from: String, to: String) throws -> Int {
        try db.execute(sql: "UPDATE events SET profile_id = ? WHERE tenant_id = ? AND profile_id = ?", arguments: [to, tenant, from])
        return db.changesCount
    }

    func moveMemberships(tenant: String, from: String, to: String, runID: String, at instant: Milliseconds, subscriptions: [SegmentSubscription]) throws -> [String] {
        let held = try Row.fetchAll(db, sql: "SELECT segment, entered_at FROM segment_memberships WHERE tenant_id = ? AND profile_id = ? ORDER BY segment",
                                    arguments: [tenant, from])
        var entered: [String] = []
        for row in held {
            let segment: String = row[0]
            let enteredAt: Int64 = row[1]
            try statements.deleteMembership(tenant: tenant, segment: segment, profileID: from)
            try statements.recordSegmentChange(tenant: tenant, segment: segment, profileID: from, change: "exited", at: instant, runID: runID)
            // The survivor keeps the earlier entry.
            try db.execute(sql: "INSERT INTO segment_memberships (tenant_id, segment, profile_id, entered_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                           arguments: [tenant, segment, to, enteredAt])
            if db.changesCount == 1 {
                try statements.recordSegmentChange(tenant: tenant, segment: segment, profileID: to, change: "entered", at: instant, runID: runID)
                entered.append(segment)
            } else {
                try db.execute(sql: "UPDATE segment_state SET profile_count = max(profile_count - 1, 0) WHERE tenant_id = ? AND segment = ?", arguments: [tenant, segment])
            }
            try SQLiteStore.enqueueSegmentDeliveries(db, tenant: tenant, segment: segment, runID: runID, asOf: instant, subscriptions: subscriptions, changes: ["exited"])
        }
        return entered
    }

    func enqueueSegmentEntries(tenant: String, segments: [String], runID: String, at instant: Milliseconds, subscriptions: [SegmentSubscription]) throws {
        for segment in segments {
            try SQLiteStore.enqueueSegmentDeliveries(db, tenant: tenant, segment: segment, runID: runID, asOf: instant, subscriptions: subscriptions, changes: ["entered"])
        }
    }

    func enqueueConsentSegmentNotices(tenant: String, profileID: String, consentType: String, granted: Bool, eventID: String, at instant: Milliseconds, subscriptions: [SegmentSubscription], excluding: Set<String>) throws {
        try SQLiteStore.enqueueConsentSegmentNotices(db, tenant: tenant, profileID: profileID, consentType: consentType, granted: granted, eventID: eventID, at: instant, subscriptions: subscriptions, excluding: excluding)
    }

    func eventTimes(tenant: String, profileID: String, around time: Milliseconds) throws -> (before: Milliseconds?, after: Milliseconds?, afterWithoutSessionID: Bool) {
        let before = try Int64.fetchOne(db.cachedStatement(sql: """
            SELECT max(event_time) FROM events INDEXED BY events_by_profile WHERE tenant_id = ? AND profile_id = ? AND event_time <= ?
            """), arguments: [tenant, profileID, time])
        let after = try Int64.fetchOne(db.cachedStatement(sql: """
            SELECT min(event_time) FROM events INDEXED BY events_by_profile WHERE tenant_id = ? AND profile_id = ? AND event_time > ?
            """), arguments: [tenant, profileID, time])
        guard let after else { return (before, nil, false) }
        // Of the events at that time only the first stored can start a session (the
        // others follow it at no distance). A session id is a JSON string or number,
        // as ingestion reads it.
        let withoutSessionID = try Bool.fetchOne(db.cachedStatement(sql: """
            SELECT COALESCE(json_type(context, '$.sessionId'), 'null') NOT IN ('text', 'integer', 'real')
            FROM events INDEXED BY events_by_profile WHERE tenant_id = ? AND profile_id = ? AND event_time = ? ORDER BY seq LIMIT 1
            """), arguments: [tenant, profileID, after]) ?? false
        return (before, after, withoutSessionID)
    }

    func sessionCount(tenant: String, profileID: String, timeout: Milliseconds) throws -> Int64 {
        try Int64.fetchOne(db.cachedStatement(sql: """
            SELECT COUNT(DISTINCT session_id) + COALESCE(SUM(session_id IS NULL AND (previous IS NULL OR event_time - previous > ?)), 0)
            FROM (SELECT event_time,
                    CASE WHEN json_type(context, '$.sessionId') IN ('text', 'integer', 'real') THEN CAST(json_extract(context, '$.sessionId') AS TEXT) END AS session_id,
                    lag(event_time) OVER (ORDER BY event_time, seq) AS previous
                  FROM events INDEXED BY events_by_profile WHERE tenant_id = ? AND profile_id = ?)
            """), arguments: [timeout, tenant, profileID]) ?? 0
    }

    func hasSession(tenant: String, profileID: String, sessionID: String) throws -> Bool {
        try Bool.fetchOne(db.cachedStatement(sql: """
            SELECT EXISTS (SELECT 1 FROM events INDEXED BY events_by_profile WHERE tenant_id = ? AND profile_id = ?
              AND json_type(context, '$.sessionId') IN ('text', 'integer', 'real') AND CAST(json_extract(context, '$.sessionId') AS TEXT) = ?)
            """), arguments: [tenant, profileID, sessionID]) ?? false
    }

    func moveConsents(tenant: String, from: String, to: String) throws {
        try db.execute(sql: "UPDATE consents SET profile_id = ? WHERE tenant_id = ? AND profile_id = ?", arguments: [to, tenant, from])
    }

    func carryComputedTraits(tenant: String, from: String, to: String) throws {
        let statement = try db.cachedStatement(sql: "SELECT computed_traits FROM profiles WHERE tenant_id = ? AND id = ?")
        guard let absorbedText = try String.fetchOne(statement, arguments: [tenant, from]),
              let survivorText = try String.fetchOne(statement, arguments: [tenant, to]) else { return }
        guard let absorbed = RawJSONObject(absorbedText), var survivor = RawJSONObject(survivorText) else {
            throw StoreError("computed traits of profile \(from) or \(to) are not a JSON object")
        }
        let carried = absorbed.members.filter { survivor[$0.key] == nil }
        guard !carried.isEmpty else { return }
        for member in carried { survivor.set(member.key, member.value) }
        try db.execute(sql: "UPDATE profiles SET computed_traits = ? WHERE tenant_id = ? AND id = ?",
                       arguments: [String(decoding: survivor.bytes, as: UTF8.self), tenant, to])
    }

    func insertMerge(_ merge: MergeRecord) throws {
        try db.execute(sql: """
            INSERT INTO profile_merges (tenant_id, id, survivor_id, absorbed_id, merged_at, reason, identifiers_moved, events_moved)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """, arguments: [merge.tenantID, merge.id, merge.survivorID, merge.absorbedID, merge.mergedAt, merge.reason, merge.identifiersMoved, merge.eventsMoved])
    }

    func insertAlias(tenant: String, absorbedID: String, survivorID: String, at instant: Milliseconds) throws {
        try db.execute(sql: "UPDATE profile_aliases SET survivor_id = ? WHERE tenant_id = ? AND survivor_id = ?", arguments: [survivorID, tenant, absorbedID])
        try db.execute(sql: "INSERT INTO profile_aliases (tenant_id, absorbed_id, survivor_id, merged_at) VALUES (?, ?, ?, ?)", arguments: [tenant, absorbedID, survivorID, instant])
    }

    func insertConflict(_ conflict: ConflictRecord) throws {
        try db.execute(sql: """
            INSERT INTO identity_conflicts (tenant_id, id, profile_id, other_profile_id, identifier_type, identifier_hash, reason, event_id, occurred_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, arguments: [conflict.tenantID, conflict.id, conflict.profileID, conflict.otherProfileID, conflict.identifierType, conflict.identifierHash, conflict.reason, conflict.eventID, conflict.occurredAt])
    }

    func insertEvent(_ event: NewEvent) throws -> Bool {
        var statement = try statements.statement(.insertEvent)
        statement.bind(event.tenantID)
        statement.bind(event.id)
        statement.bind(event.profileID)
        statement.bind(event.sourceID)
        statement.bind(event.type.rawValue)
        statement.bind(event.eventName)
        statement.bind(event.eventTime)
        statement.bind(event.receivedAt)
        statement.bind(event.idempotencyKey)
        statement.bind(event.propertiesJSON)
        statement.bind(event.contextJSON)
        statement.bind(event.identifiersJSON)
        statement.bind(event.emqScore)
        try statement.execute()
        return db.changesCount == 1
    }

    func savepoint<T>(_ body: () throws -> T) throws -> T {
        var result: T?
        do {
            try db.inSavepoint {
                result = try body()
                return .commit
            }
        } catch {
            // Rolled back: what the savepoint cached may not exist.
            cache?.clear()
            throw error
        }
        return result!
    }

    func setPrimary(tenant: String, type: String, hash: String, isPrimary: Bool) throws {
        var statement = try statements.statement(.setPrimary)
        statement.bind(tenant)
        statement.bind(type)
        statement.bind(hash)
        statement.bind(isPrimary)
        try statement.execute()
    }

    func enqueueDelivery(id: String, tenant: String, webhook: String, eventType: String, payload: String, at instant: Milliseconds) throws {
        try SQLiteStore.insertDelivery(db, id: id, tenant: tenant, webhook: webhook, eventType: eventType, payload: payload, at: instant)
    }

    func consentGranted(tenant: String, profileID: String, type: String, at instant: Milliseconds) throws -> Bool {
        try Bool.fetchOne(db.cachedStatement(sql: """
            SELECT granted FROM consents WHERE tenant_id = ? AND profile_id = ? AND consent_type IN (?, 'all') AND recorded_at <= ?
            ORDER BY recorded_at DESC, seq DESC LIMIT 1
            """), arguments: [tenant, profileID, type, instant]) ?? false
    }

    func isMember(tenant: String, profileID: String, ofAny segments: Set<String>) throws -> Bool {
        let statement = try db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM segment_memberships WHERE tenant_id = ? AND segment = ? AND profile_id = ?)")
        for segment in segments.sorted() where try Bool.fetchOne(statement, arguments: [tenant, segment, profileID]) == true {
            return true
        }
        return false
    }

    func confirmConsent(tenant: String, id: String, at instant: Milliseconds) throws {
        try db.execute(sql: "UPDATE consents SET confirmed_at = max(coalesce(confirmed_at, recorded_at), ?) WHERE tenant_id = ? AND id = ?",
                       arguments: [instant, tenant, id])
    }

    func insertConsent(_ consent: ConsentRecord) throws {
        try db.cachedStatement(sql: """
            INSERT INTO consents (tenant_id, id, profile_id, consent_type, granted, granted_at, revoked_at, source, ip_address,
              consent_text, consent_version, recorded_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """).execute(arguments: [
                consent.tenantID, consent.id, consent.profileID, consent.consentType, consent.granted, consent.grantedAt,
                consent.revokedAt, consent.source, consent.ipAddress, consent.consentText, consent.consentVersion, consent.recordedAt,
            ])
    }

    // MARK: Mapping

    /// The columns `profile(from:)` reads, in the order it reads them by position
    /// (a lookup by name costs a case-insensitive search per column per row).
    static let profileColumns = """
        tenant_id, id, created_at, first_seen_at, external_id, last_seen_at, profile_data, computed_traits, lifecycle_stage,
        total_events, total_sessions, total_purchases, total_revenue, canonical_type, canonical_hash, last_session_id,
        last_event_at, updated_at
        """

    static func profile(from row: Row) throws -> ProfileRecord {
        var profile = ProfileRecord(tenantID: row[0], id: row[1], now: row[2], seenAt: row[3])
        profile.externalID = row[4]
        profile.lastSeenAt = row[5]
        profile.profileData = try jsonObject(row[6])
        profile.computedTraits = try jsonObject(row[7])
        profile.storedStage = LifecycleStage(rawValue: row[8]) ?? .anonymous
        profile.totalEvents = row[9]
        profile.totalSessions = row[10]
        profile.totalPurchases = row[11]
        profile.totalRevenue = Decimal(string: row[12] as String, locale: DecimalSum.posix) ?? 0
        profile.canonicalType = row[13]
        profile.canonicalHash = row[14]
        profile.lastSessionID = row[15]
        profile.lastEventAt = row[16]
        profile.updatedAt = row[17]
        return profile
    }

    static func event(from row: Row) throws -> EventRecord {
        EventRecord(
            tenantID: row["tenant_id"], id: row["id"], sequence: row["seq"], profileID: row["profile_id"], sourceID: row["source_id"],
            type: MessageType(rawValue: row["type"]) ?? .track, eventName: row["event_name"], eventTime: row["event_time"],
            receivedAt: row["received_at"], idempotencyKey: row["idempotency_key"], properties: try jsonObject(row["properties"]),
            context: try jsonObject(row["context"]), identifiers: try JSONParser.parse(row["identifiers"] as String).arrayValue ?? [],
            processed: row["processed"], emqScore: row["emq_score"])
    }

    static func jsonObject(_ text: String) throws -> JSONObject {
        guard case .object(let object) = try JSONParser.parse(text) else { throw StoreError("stored JSON is not an object") }
        return object
    }
}
