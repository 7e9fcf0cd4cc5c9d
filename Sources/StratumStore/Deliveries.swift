import Foundation
import GRDB
import StratumCrypto
import StratumDefinitions
import StratumJSON

/// A webhook that receives segment.entered / segment.exited deliveries.
public struct SegmentSubscription: Sendable {
    public var webhook: String
    public var entered: Bool
    public var exited: Bool
    /// Only these segments (nil: all).
    public var segments: Set<String>?
    /// A consent type the profile must have granted (the record of the type or
    /// `all` in force: the latest at or before the instant).
    public var requiresConsent: String?
    public var batchSize: Int

    public init(webhook: String, entered: Bool, exited: Bool, segments: Set<String>?, requiresConsent: String?, batchSize: Int) {
        self.webhook = webhook
        self.entered = entered
        self.exited = exited
        self.segments = segments
        self.requiresConsent = requiresConsent
        self.batchSize = batchSize
    }
}

/// One delivery in the outbox.
public struct Delivery: Sendable, Hashable {
    public var id: String
    public var tenant: String
    public var webhook: String
    public var eventType: String
    public var payload: String
    public var createdAt: Milliseconds
    public var nextAttemptAt: Milliseconds
    public var attempts: Int
    public var status: String
    public var lastStatus: Int?
    public var lastError: String?
}

extension SQLiteStore {
    /// Writes the segment.entered/exited deliveries of one segment run, in the
    /// run's own transaction: batches of at most `batchSize` profiles with
    /// their canonical identity and hashed identifiers, ids derived from the
    /// run (stable, so a delivery is recognisable across retries).
    static func enqueueSegmentDeliveries(_ db: Database, tenant: String, segment: String, runID: String, asOf: Milliseconds, subscriptions: [SegmentSubscription], changes: [String] = ["entered", "exited"]) throws {
        for subscription in subscriptions where subscription.segments?.contains(segment) ?? true {
            for change in changes where change == "entered" ? subscription.entered : subscription.exited {
                var sql = """
                    SELECT c.profile_id, p.canonical_type, p.canonical_hash FROM segment_changes c
                    LEFT JOIN profiles p ON p.tenant_id = c.tenant_id AND p.id = c.profile_id
                    WHERE c.tenant_id = ?1 AND c.run_id = ?2 AND c.segment = ?3 AND c.change = ?4
                    """
                var arguments: [DatabaseValueConvertible?] = [tenant, runID, segment, change]
                if let consent = subscription.requiresConsent {
                    // A profile without the consent in force at the run's instant is never sent
                    // to this endpoint (a record stamped later is not in force yet).
                    sql += """
                         AND (SELECT k.granted FROM consents k WHERE k.tenant_id = c.tenant_id AND k.profile_id = c.profile_id
                              AND k.consent_type IN (?5, 'all') AND k.recorded_at <= ?6 ORDER BY k.recorded_at DESC, k.seq DESC LIMIT 1) = 1
                        """
                    arguments += [consent, asOf]
                }
                sql += " ORDER BY c.seq"
                let rows = try Row.fetchAll(db, sql: sql, arguments: StatementArguments(arguments))
                let batches = stride(from: 0, to: rows.count, by: max(1, subscription.batchSize)).map { Array(rows[$0..<min($0 + max(1, subscription.batchSize), rows.count)]) }
                for (index, batch) in batches.enumerated() {
                    let profiles = try batch.map { row in try segmentProfile(db, tenant: tenant, profileID: row[0], canonicalType: row[1], canonicalHash: row[2]) }
                    let eventType = "segment." + change
                    let payload: JSONValue = [
                        "event_type": .string(eventType),
                        "timestamp": .string(Instant.format(milliseconds: asOf)),
                        "data": ["tenant": .string(tenant), "segment": .string(segment), "profiles": .array(profiles)],
                    ]
                    // The segment too: a merge's run moves memberships of several segments.
                    let id = "msg_" + String(Digest.sha256Hex("\(runID)|\(segment)|\(subscription.webhook)|\(change)|\(index)").prefix(32))
                    try insertDelivery(db, id: id, tenant: tenant, webhook: subscription.webhook, eventType: eventType, payload: payload.jsonText(), at: asOf)
                }
            }
        }
    }


    /// Queues one delivery, due now, into the outbox. Ids derive from what the
    /// delivery announces, so the same one queued again (a retried message) is one row.
    static func insertDelivery(_ db: Database, id: String, tenant: String, webhook: String, eventType: String, payload: String, at instant: Milliseconds) throws {
        try db.cachedStatement(sql: """
            INSERT INTO webhook_deliveries (id, tenant_id, webhook, event_type, payload, created_at, next_attempt_at, status)
            VALUES (?, ?, ?, ?, ?, ?, ?, 'pending') ON CONFLICT (id) DO NOTHING
            """).execute(arguments: [id, tenant, webhook, eventType, payload, instant, instant])
    }

    /// A profile as a segment delivery carries it: id, canonical identity, hashed identifiers.
    static func segmentProfile(_ db: Database, tenant: String, profileID: String, canonicalType: String?, canonicalHash: String?) throws -> JSONValue {
        let identifiers = try db.cachedStatement(sql: "SELECT identifier_type, identifier_hash FROM profile_identifiers INDEXED BY profile_identifiers_by_profile WHERE tenant_id = ? AND profile_id = ? ORDER BY identifier_type, identifier_hash")
        let hashes = try Row.fetchAll(identifiers, arguments: [tenant, profileID]).map { identifier -> JSONValue in
            ["type": .string(identifier[0]), "hash": .string(identifier[1])]
        }
        return [
            "profile_id": .string(profileID),
            "canonical_identity": canonicalType.map { ["type": .string($0), "hash": .string(canonicalHash ?? "")] } ?? .null,
            "identifiers": .array(hashes),
        ]
    }

    /// When a profile's `consentType` consent in force changes, the segment
    /// webhooks that require it hear about the segments it is in: revoked, a
    /// `segment.exited` (`data.reason` "consent_revoked"), so an ad audience
    /// drops the person — the one delivery about a profile without the
    /// consent, and it is never withheld for that; granted, a
    /// `segment.entered` ("consent_granted"). Written in the message's
    /// transaction; ids derive from the event, so they are stable.
    static func enqueueConsentSegmentNotices(_ db: Database, tenant: String, profileID: String, consentType: String, granted: Bool, eventID: String, at instant: Milliseconds, subscriptions: [SegmentSubscription], excluding: Set<String> = []) throws {
        let change = granted ? "entered" : "exited"
        let interested = subscriptions.filter { $0.requiresConsent == consentType && (granted ? $0.entered : $0.exited) }
        guard !interested.isEmpty,
              let row = try Row.fetchOne(db, sql: "SELECT canonical_type, canonical_hash FROM profiles WHERE tenant_id = ? AND id = ?", arguments: [tenant, profileID])
        else { return }
        let segments = try String.fetchAll(db, sql: "SELECT segment FROM segment_memberships INDEXED BY segment_memberships_by_profile WHERE tenant_id = ? AND profile_id = ? ORDER BY segment", arguments: [tenant, profileID])
        guard !segments.isEmpty else { return }
        let profile = try segmentProfile(db, tenant: tenant, profileID: profileID, canonicalType: row[0], canonicalHash: row[1])
        for subscription in interested {
            for segment in segments where subscription.segments?.contains(segment) ?? true && !excluding.contains(segment) {
                let eventType = "segment." + change
                let payload: JSONValue = [
                    "event_type": .string(eventType),
                    "timestamp": .string(Instant.format(milliseconds: instant)),
                    "data": ["tenant": .string(tenant), "segment": .string(segment), "reason": .string(granted ? "consent_granted" : "consent_revoked"), "profiles": [profile]],
                ]
                let id = "msg_" + String(Digest.sha256Hex("\(eventID)|\(segment)|\(subscription.webhook)|\(change)|consent:\(consentType)").prefix(32))
                try insertDelivery(db, id: id, tenant: tenant, webhook: subscription.webhook, eventType: eventType, payload: payload.jsonText(), at: instant)
            }
        }
    }

    /// Pending deliveries due at `now`, oldest first, leaving out the webhooks
    /// in `skipping` (as "tenant/webhook"): a backlog of one does not hide the others'.
    public func dueDeliveries(now: Milliseconds, limit: Int, skipping: Set<String> = []) async throws -> [Delivery] {
        try await pool.read { db in
            let skipped = skipping.isEmpty ? "" : " AND tenant_id || '/' || webhook NOT IN (\(skipping.map { _ in "?" }.joined(separator: ", ")))"
            let values: [DatabaseValueConvertible?] = [now] + skipping.sorted() + [limit]
            let arguments = StatementArguments(values)
            return try Row.fetchAll(db, sql: "SELECT * FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= ?\(skipped) ORDER BY next_attempt_at, seq LIMIT ?", arguments: arguments).map(Self.delivery)
        }
    }

    /// Every delivery of a tenant (optionally of one webhook), oldest first.
    /// (`status` filters in SQL, so a few dead letters are found among any number of deliveries.)
    public func deliveries(tenant: String, webhook: String? = nil, status: String? = nil, limit: Int = 1_000) async throws -> [Delivery] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM webhook_deliveries WHERE tenant_id = ?1 AND (?2 IS NULL OR webhook = ?2) AND (?3 IS NULL OR status = ?3) ORDER BY seq LIMIT ?4",
                             arguments: [tenant, webhook, status, limit]).map(Self.delivery)
        }
    }

    static func delivery(_ row: Row) -> Delivery {
        Delivery(
            id: row["id"], tenant: row["tenant_id"], webhook: row["webhook"], eventType: row["event_type"], payload: row["payload"],
            createdAt: row["created_at"], nextAttemptAt: row["next_attempt_at"], attempts: row["attempts"], status: row["status"],
            lastStatus: row["last_status"], lastError: row["last_error"])
    }

    /// Records an attempt's outcome: the new status, and when to try again.
    public func recordAttempt(id: String, status: String, nextAttemptAt: Milliseconds?, httpStatus: Int?, error: String?, at instant: Milliseconds) async throws {
        try await pool.write { db in
            try db.execute(sql: """
                UPDATE webhook_deliveries SET attempts = attempts + 1, status = ?, next_attempt_at = COALESCE(?, next_attempt_at),
                  last_status = ?, last_error = ?, delivered_at = CASE WHEN ? = 'delivered' THEN ? ELSE delivered_at END
                WHERE id = ?
                """, arguments: [status, nextAttemptAt, httpStatus, error, status, instant, id])
        }
    }

    /// Narrows a delivery to the profiles still consenting: `payload` is what
    /// its next attempt sends (and what the delivery API shows).
    public func narrowDelivery(id: String, payload: String) async throws {
        try await pool.write { db in
            try db.execute(sql: "UPDATE webhook_deliveries SET payload = ? WHERE id = ?", arguments: [payload, id])
        }
    }

    /// Withholds a delivery none of whose profiles has the consent its webhook
    /// requires any more: `failed` without an attempt, `reason` as its error.
    public func withholdDelivery(id: String, reason: String) async throws {
        try await pool.write { db in
            try db.execute(sql: "UPDATE webhook_deliveries SET status = 'failed', last_status = NULL, last_error = ? WHERE id = ?", arguments: [reason, id])
        }
    }

    /// Stops every pending delivery of a webhook (the receiver answered 410 Gone).
    public func disableDeliveries(tenant: String, webhook: String) async throws {
        try await pool.write { db in
            try db.execute(sql: "UPDATE webhook_deliveries SET status = 'disabled' WHERE tenant_id = ? AND webhook = ? AND status = 'pending'", arguments: [tenant, webhook])
        }
    }
}

extension SQLiteStore {
    /// How many deliveries each webhook of a tenant has, by status.
    public func deliveryCounts(tenant: String) async throws -> [String: [String: Int]] {
        try await pool.read { db in
            var counts: [String: [String: Int]] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT webhook, status, COUNT(*) AS n FROM webhook_deliveries WHERE tenant_id = ? GROUP BY webhook, status", arguments: [tenant]) {
                counts[row["webhook"], default: [:]][row["status"]] = row["n"]
            }
            return counts
        }
    }

    /// Puts dead (or failed, or disabled) deliveries of a webhook back in the
    /// queue, due `at`, with a fresh retry budget; returns how many.
    public func replayDeliveries(tenant: String, webhook: String, id: String?, statuses: [String], at instant: Milliseconds) async throws -> Int {
        try await pool.write { db in
            let placeholders = statuses.map { _ in "?" }.joined(separator: ", ")
            var arguments: [DatabaseValueConvertible?] = [instant, tenant, webhook]
            arguments += statuses
            var sql = "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = ? WHERE tenant_id = ? AND webhook = ? AND status IN (\(placeholders))"
            if let id {
                sql += " AND id = ?"
                arguments.append(id)
            }
            try db.execute(sql: sql, arguments: StatementArguments(arguments))
            return db.changesCount
        }
    }
}
