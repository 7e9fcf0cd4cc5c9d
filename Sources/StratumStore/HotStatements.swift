import CSQLite
import GRDB

/// The statements run for every event (ingestion), every profile (the trait
/// write pass) or every membership change (segment runs), prepared once per
/// write transaction and driven through SQLite's C API.
///
/// `db.cachedStatement(sql:)` hashes and compares the whole SQL text on every
/// call, and `StatementArguments` boxes each value in an existential array;
/// per event, across half a dozen statements, that was a measurable share of
/// the single writer's time. Values here are bound straight from Swift
/// strings and integers (SQLite copies them), and errors carry SQLite's
/// message.
final class HotStatements {
    enum Kind: Int, CaseIterable {
        case eventExists, identifierOwner, insertEvent, updateProfile, updateProfileWithData, insertProfile, insertIdentifier, setPrimary
        case rewriteComputedTraits
        case insertMembership, deleteMembership, insertSegmentChange

        var sql: String {
            switch self {
            case .eventExists:
                "SELECT 1 FROM events WHERE tenant_id = ?1 AND idempotency_key = ?2"
            case .identifierOwner:
                "SELECT profile_id FROM profile_identifiers WHERE tenant_id = ?1 AND identifier_type = ?2 AND identifier_hash = ?3"
            case .insertEvent:
                """
                INSERT INTO events (tenant_id, id, profile_id, source_id, type, event_name, event_time, received_at, idempotency_key,
                  properties, context, identifiers, processed, emq_score)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 1, ?13)
                ON CONFLICT (tenant_id, idempotency_key) DO NOTHING
                """
            case .updateProfile:
                """
                UPDATE profiles SET external_id = ?3, first_seen_at = ?4, last_seen_at = ?5, lifecycle_stage = ?6, total_events = ?7,
                  total_sessions = ?8, total_purchases = ?9, total_revenue = ?10, canonical_type = ?11, canonical_hash = ?12,
                  last_session_id = ?13, last_event_at = ?14, updated_at = ?15
                WHERE tenant_id = ?1 AND id = ?2
                """
            case .updateProfileWithData:
                """
                UPDATE profiles SET external_id = ?3, first_seen_at = ?4, last_seen_at = ?5, lifecycle_stage = ?6, total_events = ?7,
                  total_sessions = ?8, total_purchases = ?9, total_revenue = ?10, canonical_type = ?11, canonical_hash = ?12,
                  last_session_id = ?13, last_event_at = ?14, updated_at = ?15, created_at = ?16, profile_data = ?17
                WHERE tenant_id = ?1 AND id = ?2
                """
            case .insertProfile:
                """
                INSERT INTO profiles (tenant_id, id, external_id, first_seen_at, last_seen_at, lifecycle_stage, total_events,
                  total_sessions, total_purchases, total_revenue, canonical_type, canonical_hash, last_session_id, last_event_at,
                  updated_at, created_at, profile_data, computed_traits)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)
                """
            case .insertIdentifier:
                """
                INSERT INTO profile_identifiers (tenant_id, identifier_type, identifier_hash, id, profile_id, identifier_value,
                  is_primary, confidence_score, verified_at, created_at)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                """
            case .setPrimary:
                "UPDATE profile_identifiers SET is_primary = ?4 WHERE tenant_id = ?1 AND identifier_type = ?2 AND identifier_hash = ?3"
            case .rewriteComputedTraits:
                // Only if the row is still as it was read.
                "UPDATE profiles SET computed_traits = ?1 WHERE tenant_id = ?2 AND id = ?3 AND computed_traits = ?4"
            case .insertMembership:
                "INSERT INTO segment_memberships (tenant_id, segment, profile_id, entered_at) VALUES (?1, ?2, ?3, ?4)"
            case .deleteMembership:
                "DELETE FROM segment_memberships WHERE tenant_id = ?1 AND segment = ?2 AND profile_id = ?3"
            case .insertSegmentChange:
                "INSERT INTO segment_changes (tenant_id, segment, profile_id, change, changed_at, run_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
            }
        }
    }

    private let db: Database
    private var prepared: [Statement?] = Array(repeating: nil, count: Kind.allCases.count)

    init(db: Database) {
        self.db = db
    }

    /// The statement of `kind`, reset and with no values bound.
    func statement(_ kind: Kind) throws -> HotStatement {
        let statement: Statement
        if let existing = prepared[kind.rawValue] {
            statement = existing
        } else {
            statement = try db.cachedStatement(sql: kind.sql)
            prepared[kind.rawValue] = statement
        }
        let handle = statement.sqliteStatement
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
        return HotStatement(handle: handle, connection: db.sqliteConnection)
    }
}

extension HotStatements {
    /// Records `profileID` entering or exiting `segment` (`change`) at `instant` under `runID`.
    func recordSegmentChange(tenant: String, segment: String, profileID: String, change: String, at instant: Int64, runID: String) throws {
        var record = try statement(.insertSegmentChange)
        for text in [tenant, segment, profileID, change] { record.bind(text) }
        record.bind(instant)
        record.bind(runID)
        try record.execute()
    }

    /// Removes `profileID` from `segment`'s members.
    func deleteMembership(tenant: String, segment: String, profileID: String) throws {
        var delete = try statement(.deleteMembership)
        for text in [tenant, segment, profileID] { delete.bind(text) }
        try delete.execute()
    }
}

/// One prepared statement being bound and stepped; parameters are numbered
/// from 1 in the order `bind` is called.
struct HotStatement {
    let handle: OpaquePointer
    let connection: OpaquePointer?
    private var next: Int32 = 1
    /// The first binding SQLite refused (a parameter number past the SQL's,
    /// a value too big), reported when the statement runs.
    private var refused: Int32 = SQLITE_OK

    init(handle: OpaquePointer, connection: OpaquePointer?) {
        self.handle = handle
        self.connection = connection
    }

    /// SQLite copies the text before this returns (SQLITE_TRANSIENT).
    private static let transient = unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)

    mutating func bind(_ value: String?) {
        var code: Int32
        if var value {
            let (handle, index) = (self.handle, next)
            code = value.withUTF8 { bytes in
                bytes.isEmpty
                    ? sqlite3_bind_text(handle, index, "", 0, Self.transient)
                    : bytes.withMemoryRebound(to: CChar.self) { sqlite3_bind_text(handle, index, $0.baseAddress, Int32($0.count), Self.transient) }
            }
        } else {
            code = sqlite3_bind_null(handle, next)
        }
        bound(code)
    }

    mutating func bind(_ value: Int64?) {
        bound(value.map { sqlite3_bind_int64(handle, next, $0) } ?? sqlite3_bind_null(handle, next))
    }

    mutating func bind(_ value: Double?) {
        bound(value.map { sqlite3_bind_double(handle, next, $0) } ?? sqlite3_bind_null(handle, next))
    }

    mutating func bind(_ value: Bool) {
        bound(sqlite3_bind_int64(handle, next, value ? 1 : 0))
    }

    private mutating func bound(_ code: Int32) {
        if refused == SQLITE_OK, code != SQLITE_OK { refused = code }
        next += 1
    }

    /// Steps once; throws what SQLite refused, in binding or in running.
    private func step() throws -> Int32 {
        guard refused == SQLITE_OK else {
            sqlite3_reset(handle)
            throw StoreError("SQLite refused parameter values (\(String(cString: sqlite3_errstr(refused))))", statement: String(cString: sqlite3_sql(handle)))
        }
        return sqlite3_step(handle)
    }

    /// Runs a statement that returns no rows.
    func execute() throws {
        let code = try step()
        defer { sqlite3_reset(handle) }
        guard code == SQLITE_DONE else { throw failure(code) }
    }

    /// Whether the query returns a row.
    func exists() throws -> Bool {
        let code = try step()
        defer { sqlite3_reset(handle) }
        guard code == SQLITE_ROW || code == SQLITE_DONE else { throw failure(code) }
        return code == SQLITE_ROW
    }

    /// The first column of the first row as text, or nil when there is no row.
    func text() throws -> String? {
        let code = try step()
        defer { sqlite3_reset(handle) }
        guard code == SQLITE_ROW || code == SQLITE_DONE else { throw failure(code) }
        guard code == SQLITE_ROW, let text = sqlite3_column_text(handle, 0) else { return nil }
        return String(decoding: UnsafeBufferPointer(start: text, count: Int(sqlite3_column_bytes(handle, 0))), as: UTF8.self)
    }

    private func failure(_ code: Int32) -> StoreError {
        let message = connection.flatMap { sqlite3_errmsg($0) }.map { String(cString: $0) } ?? "SQLite error \(code)"
        return StoreError("\(message) (SQLite code \(code))", statement: String(cString: sqlite3_sql(handle)), sqliteCode: code)
    }
}
