import Foundation
import StratumJSON
import GRDB

/// The store behind every part of Stratum: profiles, identifiers, events,
/// merges, conflicts and consents, every row scoped to a tenant.
///
/// SQLite is the embedded implementation; a PostgreSQL one follows the same
/// protocol. Writes run in one serialised transaction at a time, which the
/// ingestion pipeline uses for group commit.
public protocol Store: Sendable {
    /// Runs `body` in one write transaction: all of it commits, or none.
    func write<T: Sendable>(_ body: @escaping @Sendable (any StoreTransaction) throws -> T) async throws -> T
    /// Runs `body` against a consistent snapshot.
    func read<T: Sendable>(_ body: @escaping @Sendable (any StoreReader) throws -> T) async throws -> T
}

/// A position in a profile's event list, for cursor pagination.
public struct EventCursor: Sendable, Hashable {
    public var eventTime: Milliseconds
    public var sequence: Int64

    public init(eventTime: Milliseconds, sequence: Int64) {
        self.eventTime = eventTime
        self.sequence = sequence
    }
}

/// Reads, within one tenant.
public protocol StoreReader {
    /// The profile with `id`, or nil. Does not follow merges.
    func profile(tenant: String, id: String) throws -> ProfileRecord?
    /// The survivor an absorbed profile id was merged into (transitively), or nil.
    func survivor(tenant: String, absorbedID: String) throws -> String?
    /// Which profiles hold these identifiers.
    func matches(tenant: String, identifiers: [(type: String, hash: String)]) throws -> [IdentifierMatch]
    func identifiers(tenant: String, profileID: String) throws -> [IdentifierRecord]
    /// A profile's events, newest first, starting after `cursor`.
    func events(tenant: String, profileID: String, after cursor: EventCursor?, limit: Int) throws -> [EventRecord]
    /// Whether an event with this idempotency key was already accepted.
    func eventExists(tenant: String, idempotencyKey: String) throws -> Bool
    /// Every consent record of a profile, oldest first.
    func consents(tenant: String, profileID: String) throws -> [ConsentRecord]
    /// Whether the profile's consent of `type` in force at `instant` is granted:
    /// the latest record of the type or of `all` at or before it (a record
    /// stamped later, by a clock running ahead, is not in force yet).
    func consentGranted(tenant: String, profileID: String, type: String, at instant: Milliseconds) throws -> Bool
    func merges(tenant: String, survivorID: String) throws -> [MergeRecord]
    func conflicts(tenant: String, profileID: String) throws -> [ConflictRecord]
    /// How many events the tenant has with these idempotency keys (for audits and tests).
    func countEvents(tenant: String, idempotencyKeys: [String]) throws -> [String: Int]
    func countProfiles(tenant: String) throws -> Int
}

extension StoreReader {
    /// The profile `id` stands for now: itself, or the survivor it was merged
    /// into; nil when it is no profile of the tenant.
    public func currentProfileID(tenant: String, id: String) throws -> String? {
        if try profile(tenant: tenant, id: id) != nil { return id }
        return try survivor(tenant: tenant, absorbedID: id)
    }
}

/// Writes, within the transaction that `Store.write` opened.
public protocol StoreTransaction: StoreReader {
    func insertProfile(_ profile: ProfileRecord) throws
    func updateProfile(_ profile: ProfileRecord) throws
    func deleteProfile(tenant: String, id: String) throws
    func insertIdentifier(_ identifier: IdentifierRecord) throws
    /// Moves every identifier of `from` to `to`; returns how many moved.
    func moveIdentifiers(tenant: String, from: String, to: String) throws -> Int
    /// Reassigns every event of `from` to `to`; returns how many moved.
    func moveEvents(tenant: String, from: String, to: String) throws -> Int
    func moveConsents(tenant: String, from: String, to: String) throws
    /// The times of `profileID`'s stored events nearest `time`: the latest at or
    /// before it and the earliest after it, and whether the first event stored
    /// at that later time has no `context.sessionId` (for sessions of late events).
    func eventTimes(tenant: String, profileID: String, around time: Milliseconds) throws -> (before: Milliseconds?, after: Milliseconds?, afterWithoutSessionID: Bool)
    /// Whether an event of `profileID` carries `context.sessionId` `sessionID`.
    func hasSession(tenant: String, profileID: String, sessionID: String) throws -> Bool
    /// `profileID`'s sessions counted from its stored events (after a merge):
    /// one per distinct `context.sessionId`, and one per event without one
    /// that comes more than `timeout` after the event before it, or first.
    func sessionCount(tenant: String, profileID: String, timeout: Milliseconds) throws -> Int64
    /// Gives `to` the segment memberships of `from` (a merge): each is recorded
    /// as `from` exiting and, unless `to` was already a member, `to` entering,
    /// under `runID` at `instant`. The exits' deliveries for `subscriptions`
    /// are written now, while `from` still has its identifiers and consents;
    /// returns the segments `to` entered, whose deliveries
    /// `enqueueSegmentEntries` writes once the merge has moved everything.
    func moveMemberships(tenant: String, from: String, to: String, runID: String, at instant: Milliseconds, subscriptions: [SegmentSubscription]) throws -> [String]
    /// The segment.entered deliveries of `runID` in `segments`.
    func enqueueSegmentEntries(tenant: String, segments: [String], runID: String, at instant: Milliseconds, subscriptions: [SegmentSubscription]) throws
    /// The segment notices of a consent change in force now (see `SQLiteStore.enqueueConsentSegmentNotices`).
    func enqueueConsentSegmentNotices(tenant: String, profileID: String, consentType: String, granted: Bool, eventID: String, at instant: Milliseconds, subscriptions: [SegmentSubscription], excluding: Set<String>) throws
    /// Gives `to` the computed traits of `from` that it has none of (values kept
    /// as written: exact decimals stay exact).
    func carryComputedTraits(tenant: String, from: String, to: String) throws
    func insertMerge(_ merge: MergeRecord) throws
    /// Makes `absorbedID` (and ids formerly merged into it) resolve to `survivorID`.
    func insertAlias(tenant: String, absorbedID: String, survivorID: String, at: Milliseconds) throws
    func insertConflict(_ conflict: ConflictRecord) throws
    /// Inserts an event; returns false (and changes nothing) when its idempotency key exists.
    func insertEvent(_ event: NewEvent) throws -> Bool
    func insertConsent(_ consent: ConsentRecord) throws
    /// Notes that consent record `id`'s value was sent again at `instant`.
    func confirmConsent(tenant: String, id: String, at instant: Milliseconds) throws
    /// Puts a webhook delivery in the outbox (ignored if its id exists).
    func enqueueDelivery(id: String, tenant: String, webhook: String, eventType: String, payload: String, at: Milliseconds) throws
    /// Whether the profile is a member of any of `segments`.
    func isMember(tenant: String, profileID: String, ofAny segments: Set<String>) throws -> Bool
    /// Marks an identifier as its profile's primary (canonical) one, or not.
    func setPrimary(tenant: String, type: String, hash: String, isPrimary: Bool) throws
    /// Runs `body` in a savepoint: if it throws, its writes are undone and the
    /// rest of the transaction goes on.
    func savepoint<T>(_ body: () throws -> T) throws -> T
}

/// Why the store failed, said for an operator.
public struct StoreError: Error, CustomStringConvertible, Sendable {
    public var message: String
    /// The SQL statement that failed, for the log (never shown to API clients).
    public var statement: String?
    /// SQLite's result code, when SQLite raised it.
    public var sqliteCode: Int32?
    public var description: String { statement.map { "\(message) in: \($0)" } ?? message }
    public init(_ message: String, statement: String? = nil, sqliteCode: Int32? = nil) {
        self.message = message
        self.statement = statement
        self.sqliteCode = sqliteCode
    }

    /// Another connection holds the store (SQLITE_BUSY or SQLITE_LOCKED, any
    /// extended code): worth retrying shortly, nothing is wrong with the request.
    public var isBusy: Bool { sqliteCode.map { [5, 6].contains($0 & 0xFF) } ?? false }

    /// Any error as a store error, its message and statement kept apart: the
    /// `message` is what an API client or a command line is told (the
    /// statement would show the store's tables and the SQL compiled from a
    /// definition); the whole error belongs in the daemon's log.
    public static func from(_ error: any Error) -> StoreError {
        if let store = error as? StoreError { return store }
        if let database = error as? DatabaseError {
            return StoreError("SQLite error \(database.resultCode.rawValue): \(database.message ?? "unknown")", statement: database.sql, sqliteCode: database.extendedResultCode.rawValue)
        }
        return StoreError("\(error)")
    }
}
