import Foundation
import StratumJSON

/// Milliseconds since 1970-01-01T00:00:00Z: how the store keeps instants.
public typealias Milliseconds = Int64

/// The lifecycle stage stored with a profile. `churned` is not stored: it
/// depends on the evaluation instant (see `ProfileRecord.lifecycleStage(at:churnPeriod:)`).
public enum LifecycleStage: String, Sendable, Codable, CaseIterable {
    case anonymous, known, customer, churned
}

/// The seed's CDPProfile as stored.
public struct ProfileRecord: Sendable {
    public var tenantID: String
    public var id: String
    public var externalID: String?
    public var firstSeenAt: Milliseconds
    public var lastSeenAt: Milliseconds
    public var profileData: JSONObject
    public var computedTraits: JSONObject
    /// anonymous, known or customer; churned is derived.
    public var storedStage: LifecycleStage
    public var totalEvents: Int64
    public var totalSessions: Int64
    public var totalPurchases: Int64
    /// Exact decimal.
    public var totalRevenue: Decimal
    public var canonicalType: String?
    public var canonicalHash: String?
    public var lastSessionID: String?
    public var lastEventAt: Milliseconds?
    public var createdAt: Milliseconds
    public var updatedAt: Milliseconds
    /// Whether `profileData` changed since the profile was read; the store
    /// rewrites that column only then. (`computedTraits` is never written from
    /// the record: evaluation owns it.) Not stored.
    public var dataChanged = false

    public init(tenantID: String, id: String, now: Milliseconds, seenAt: Milliseconds) {
        self.tenantID = tenantID
        self.id = id
        externalID = nil
        firstSeenAt = seenAt
        lastSeenAt = seenAt
        profileData = JSONObject()
        computedTraits = JSONObject()
        storedStage = .anonymous
        totalEvents = 0
        totalSessions = 0
        totalPurchases = 0
        totalRevenue = 0
        canonicalType = nil
        canonicalHash = nil
        lastSessionID = nil
        lastEventAt = nil
        createdAt = now
        updatedAt = now
    }

    /// The stage as the seed's table defines it at `instant`: churned when
    /// inactive for longer than the churn period.
    public func lifecycleStage(at instant: Milliseconds, churnPeriodDays: Int) -> LifecycleStage {
        if instant - lastSeenAt > Milliseconds(churnPeriodDays) * 86_400_000 { return .churned }
        return storedStage
    }
}

/// The seed's CDPProfileIdentifier as stored.
public struct IdentifierRecord: Sendable, Hashable {
    public var tenantID: String
    public var id: String
    public var profileID: String
    public var type: String
    /// The normalised value, kept only when Identity `store_raw_values` is on.
    public var value: String?
    /// Lowercase hex SHA-256 of the normalised value.
    public var hash: String
    public var isPrimary: Bool
    public var confidence: Double
    public var verifiedAt: Milliseconds?
    public var createdAt: Milliseconds

    public init(tenantID: String, id: String, profileID: String, type: String, value: String?, hash: String, isPrimary: Bool, confidence: Double, verifiedAt: Milliseconds?, createdAt: Milliseconds) {
        self.tenantID = tenantID
        self.id = id
        self.profileID = profileID
        self.type = type
        self.value = value
        self.hash = hash
        self.isPrimary = isPrimary
        self.confidence = confidence
        self.verifiedAt = verifiedAt
        self.createdAt = createdAt
    }
}

/// The Segment message types.
public enum MessageType: String, Sendable, Codable, CaseIterable {
    case track, identify, page, screen, group, alias
}

/// The seed's CDPEvent as stored (append-only; merges reassign `profileID`).
public struct EventRecord: Sendable, Hashable {
    public var tenantID: String
    public var id: String
    public var sequence: Int64?
    public var profileID: String?
    public var sourceID: String?
    public var type: MessageType
    public var eventName: String
    public var eventTime: Milliseconds
    public var receivedAt: Milliseconds
    public var idempotencyKey: String
    public var properties: JSONObject
    public var context: JSONObject
    /// `[{type, hash}]` of the identifiers the message carried.
    public var identifiers: [JSONValue]
    public var processed: Bool
    public var emqScore: Double?

    public init(tenantID: String, id: String, sequence: Int64? = nil, profileID: String?, sourceID: String?, type: MessageType, eventName: String, eventTime: Milliseconds, receivedAt: Milliseconds, idempotencyKey: String, properties: JSONObject, context: JSONObject, identifiers: [JSONValue], processed: Bool, emqScore: Double?) {
        self.tenantID = tenantID
        self.id = id
        self.sequence = sequence
        self.profileID = profileID
        self.sourceID = sourceID
        self.type = type
        self.eventName = eventName
        self.eventTime = eventTime
        self.receivedAt = receivedAt
        self.idempotencyKey = idempotencyKey
        self.properties = properties
        self.context = context
        self.identifiers = identifiers
        self.processed = processed
        self.emqScore = emqScore
    }
}

/// An event about to be stored, its JSON columns already serialised (done
/// outside the write transaction, which is the ingestion bottleneck).
public struct NewEvent: Sendable, Hashable {
    public var tenantID: String
    public var id: String
    public var profileID: String?
    public var sourceID: String?
    public var type: MessageType
    public var eventName: String
    public var eventTime: Milliseconds
    public var receivedAt: Milliseconds
    public var idempotencyKey: String
    public var propertiesJSON: String
    public var contextJSON: String
    public var identifiersJSON: String
    public var emqScore: Double?

    public init(tenantID: String, id: String, profileID: String?, sourceID: String?, type: MessageType, eventName: String, eventTime: Milliseconds, receivedAt: Milliseconds, idempotencyKey: String, propertiesJSON: String, contextJSON: String, identifiersJSON: String, emqScore: Double?) {
        self.tenantID = tenantID
        self.id = id
        self.profileID = profileID
        self.sourceID = sourceID
        self.type = type
        self.eventName = eventName
        self.eventTime = eventTime
        self.receivedAt = receivedAt
        self.idempotencyKey = idempotencyKey
        self.propertiesJSON = propertiesJSON
        self.contextJSON = contextJSON
        self.identifiersJSON = identifiersJSON
        self.emqScore = emqScore
    }
}

/// One merge of an absorbed profile into a survivor.
public struct MergeRecord: Sendable, Hashable {
    public var tenantID: String
    public var id: String
    public var survivorID: String
    public var absorbedID: String
    public var mergedAt: Milliseconds
    public var reason: String
    public var identifiersMoved: Int
    public var eventsMoved: Int

    public init(tenantID: String, id: String, survivorID: String, absorbedID: String, mergedAt: Milliseconds, reason: String, identifiersMoved: Int, eventsMoved: Int) {
        self.tenantID = tenantID
        self.id = id
        self.survivorID = survivorID
        self.absorbedID = absorbedID
        self.mergedAt = mergedAt
        self.reason = reason
        self.identifiersMoved = identifiersMoved
        self.eventsMoved = eventsMoved
    }
}

/// A merge or attachment refused because it would break a per-type limit.
public struct ConflictRecord: Sendable, Hashable {
    public var tenantID: String
    public var id: String
    public var profileID: String
    public var otherProfileID: String?
    public var identifierType: String
    public var identifierHash: String
    public var reason: String
    public var eventID: String
    public var occurredAt: Milliseconds

    public init(tenantID: String, id: String, profileID: String, otherProfileID: String?, identifierType: String, identifierHash: String, reason: String, eventID: String, occurredAt: Milliseconds) {
        self.tenantID = tenantID
        self.id = id
        self.profileID = profileID
        self.otherProfileID = otherProfileID
        self.identifierType = identifierType
        self.identifierHash = identifierHash
        self.reason = reason
        self.eventID = eventID
        self.occurredAt = occurredAt
    }
}

/// The seed's CDPConsent: one record in a profile's consent history.
public struct ConsentRecord: Sendable, Hashable {
    public var tenantID: String
    public var id: String
    public var profileID: String
    public var consentType: String
    public var granted: Bool
    public var grantedAt: Milliseconds?
    public var revokedAt: Milliseconds?
    public var source: String
    public var ipAddress: String?
    public var consentText: String?
    public var consentVersion: String?
    public var recordedAt: Milliseconds
    /// The latest time the same value was sent again (repeats are not new records).
    public var confirmedAt: Milliseconds?

    public init(tenantID: String, id: String, profileID: String, consentType: String, granted: Bool, grantedAt: Milliseconds?, revokedAt: Milliseconds?, source: String, ipAddress: String?, consentText: String?, consentVersion: String?, recordedAt: Milliseconds, confirmedAt: Milliseconds? = nil) {
        self.tenantID = tenantID
        self.id = id
        self.profileID = profileID
        self.consentType = consentType
        self.granted = granted
        self.grantedAt = grantedAt
        self.revokedAt = revokedAt
        self.source = source
        self.ipAddress = ipAddress
        self.consentText = consentText
        self.consentVersion = consentVersion
        self.recordedAt = recordedAt
        self.confirmedAt = confirmedAt
    }
}

/// An identifier that matched a lookup: which profile holds it.
public struct IdentifierMatch: Sendable, Hashable {
    public var type: String
    public var hash: String
    public var profileID: String

    public init(type: String, hash: String, profileID: String) {
        self.type = type
        self.hash = hash
        self.profileID = profileID
    }
}
