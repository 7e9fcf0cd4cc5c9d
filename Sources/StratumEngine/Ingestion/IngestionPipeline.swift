import Foundation
import StratumCrypto
import StratumDefinitions
import StratumJSON
import StratumStore

/// What happened to one accepted message.
public enum MessageOutcome: Sendable, Hashable {
    /// Stored, linked to a profile (nil when no identifier was usable).
    case stored(eventID: String, profileID: String?, createdProfile: Bool, mergedProfiles: [String])
    /// Its messageId was already accepted: nothing changed.
    case duplicate
}

/// A message with everything that needs no store access already done:
/// identifiers normalised and hashed, EMQ scored, JSON columns serialised.
/// Preparing happens on the request's task, so the write transaction (one
/// at a time) does only what needs the store.
public struct PreparedMessage: Sendable {
    public var message: IncomingMessage
    public var identifiers: [ResolvedIdentifier]
    /// Identifiers only matched, never attached (an alias's earlier userId).
    public var extraLookups: [ResolvedIdentifier]
    public var emqScore: Double
    public var propertiesJSON: String
    public var contextJSON: String
    public var identifiersJSON: String
}

/// Runs accepted messages through identity resolution, profile updates,
/// consent and the event store, inside one store transaction.
public struct IngestionPipeline: Sendable {

    /// Writes the profile and event webhook deliveries of one message in its
    /// transaction (the outbox), skipping endpoints whose required consent the
    /// profile has not granted or whose segment filter it is outside of. Ids
    /// derive from the event, so they are stable.
    func enqueue(_ notices: [(WebhookEventType, JSONObject)], profile: ProfileRecord, eventID: String, tenant: TenantRuntime, now: Milliseconds, in transaction: any StoreTransaction) throws {
        let identifiers = try transaction.identifiers(tenant: tenant.tenant, profileID: profile.id)
        for subscription in tenant.profileSubscriptions {
            if let consent = subscription.requiresConsent, !(try transaction.consentGranted(tenant: tenant.tenant, profileID: profile.id, type: consent, at: now)) { continue }
            if let segments = subscription.segments, !(try transaction.isMember(tenant: tenant.tenant, profileID: profile.id, ofAny: segments)) { continue }
            for (type, extra) in notices where subscription.types.contains(type) {
                var data: JSONObject = [
                    "tenant": .string(tenant.tenant),
                    "profile_id": .string(profile.id),
                    "lifecycle_stage": .string(profile.lifecycleStage(at: now, churnPeriodDays: tenant.churnPeriodDays).rawValue),
                    "identifiers": .array(identifiers.map { ["type": .string($0.type), "hash": .string($0.hash)] }),
                ]
                for (key, value) in extra { data[key] = value }
                let payload: JSONValue = ["event_type": .string(type.rawValue), "timestamp": .string(Instant.format(milliseconds: now)), "data": .object(data)]
                let discriminator = extra["absorbed_profile_id"]?.stringValue ?? extra["consent_type"]?.stringValue ?? ""
                let id = "msg_" + String(Digest.sha256Hex("\(eventID)|\(subscription.webhook)|\(type.rawValue)|\(discriminator)").prefix(32))
                try transaction.enqueueDelivery(id: id, tenant: tenant.tenant, webhook: subscription.webhook, eventType: type.rawValue, payload: payload.jsonText(), at: now)
            }
        }
    }

    public var runtime: Runtime
    /// Supplies ids for new rows (UUIDv7 by default; deterministic in tests).
    public var newID: @Sendable () -> String
    /// The current instant.
    public var clock: @Sendable () -> Milliseconds

    public init(runtime: Runtime, newID: (@Sendable () -> String)? = nil, clock: @escaping @Sendable () -> Milliseconds = IngestionPipeline.systemClock) {
        self.runtime = runtime
        if let newID {
            self.newID = newID
        } else {
            let generator = IDGenerator(clock: clock)
            self.newID = { generator.next() }
        }
        self.clock = clock
    }

    public static let systemClock: @Sendable () -> Milliseconds = { Milliseconds((Date().timeIntervalSince1970 * 1000).rounded()) }

    /// Does the store-free work for `messages` of `source`.
    public func prepare(_ messages: [IncomingMessage], source: SourceRuntime) throws -> [PreparedMessage] {
        guard let tenant = runtime.tenants[source.tenant] else { throw StoreError("tenant \(source.tenant) is not configured") }
        return messages.map { message in
            var identifiers = tenant.identity.identifiers(of: message)
            var extraLookups: [ResolvedIdentifier] = []
            if message.type == .alias, let previous = message.previousID {
                // previousId is usually the anonymousId; it may also be an earlier userId.
                // analytics.js sends anonymousId == previousId: the same identifier once.
                if let anonymous = tenant.identity.identifier(type: "anonymous_id", raw: previous),
                   !identifiers.contains(where: { $0.type == anonymous.type && $0.hash == anonymous.hash }) {
                    identifiers.append(anonymous)
                }
                if let external = tenant.identity.identifier(type: "external_id", raw: previous) { extraLookups.append(external) }
            }
            var properties = message.properties
            if message.type == .identify || message.type == .group { properties = message.traits.isEmpty ? properties : message.traits }
            if let group = message.groupID { properties["groupId"] = .string(group) }
            if let previous = message.previousID { properties["previousId"] = .string(previous) }
            let score = EMQ.score(message, identifiers: identifiers, requiredProperties: source.trackingPlan?.requiredProperties[message.eventName])
            return PreparedMessage(
                message: message, identifiers: identifiers, extraLookups: extraLookups, emqScore: score.total,
                propertiesJSON: JSONValue.object(properties).jsonText(), contextJSON: JSONValue.object(message.context).jsonText(),
                identifiersJSON: JSONValue.array(identifiers.map { ["type": .string($0.type), "hash": .string($0.hash)] }).jsonText())
        }
    }

    /// Prepares and processes `messages` of `source` in `transaction`.
    public func process(_ messages: [IncomingMessage], source: SourceRuntime, in transaction: any StoreTransaction) throws -> [MessageOutcome] {
        try process(prepare(messages, source: source), source: source, in: transaction)
    }

    /// Processes prepared messages of `source` in order, in `transaction`.
    public func process(_ messages: [PreparedMessage], source: SourceRuntime, in transaction: any StoreTransaction) throws -> [MessageOutcome] {
        guard let tenant = runtime.tenants[source.tenant] else { throw StoreError("tenant \(source.tenant) is not configured") }
        let now = clock()
        var outcomes: [MessageOutcome] = []
        outcomes.reserveCapacity(messages.count)
        for message in messages {
            outcomes.append(try process(message, source: source, tenant: tenant, now: now, in: transaction))
        }
        return outcomes
    }

    func process(_ prepared: PreparedMessage, source: SourceRuntime, tenant: TenantRuntime, now: Milliseconds, in transaction: any StoreTransaction) throws -> MessageOutcome {
        let message = prepared.message
        if try transaction.eventExists(tenant: tenant.tenant, idempotencyKey: message.messageID) { return .duplicate }
        let eventID = newID()
        let resolver = IdentityResolver(rules: tenant.identity, transaction: transaction, tenant: tenant.tenant, now: now, newID: newID, segmentSubscriptions: tenant.segmentSubscriptions, sessionTimeout: tenant.sessionTimeoutMilliseconds)
        let outcome = try resolver.resolve(prepared.identifiers, eventID: eventID, eventTime: message.eventTime, extraLookups: prepared.extraLookups)
        var profileID: String?
        var notices: [(WebhookEventType, JSONObject)] = []
        var updated: ProfileRecord?
        if var profile = outcome?.profile {
            try ProfileUpdater(tenant: tenant, now: now, transaction: transaction).apply(message, to: &profile)
            try transaction.updateProfile(profile)
            let consents = try ConsentRecorder(tenant: tenant, source: source.name, transaction: transaction, newID: newID, now: now)
                .record(message, profileID: profile.id)
            // Consent-gated segment webhooks hear of a change in force now for the segments
            // the profile is in (an ad audience drops a person who revoked).
            // A merge's own entries (below) already announce the segments it moved.
            let merged = Set((outcome?.segmentEntries ?? []).flatMap(\.segments))
            for (type, granted) in consents.inForce {
                try transaction.enqueueConsentSegmentNotices(tenant: tenant.tenant, profileID: profile.id, consentType: type, granted: granted, eventID: eventID, at: now, subscriptions: tenant.segmentSubscriptions, excluding: merged)
            }
            // The survivor's segment entries from merges, now that its row (canonical
            // identity) and consents are the merged ones.
            for entries in outcome?.segmentEntries ?? [] {
                try transaction.enqueueSegmentEntries(tenant: tenant.tenant, segments: entries.segments, runID: entries.mergeID, at: now, subscriptions: tenant.segmentSubscriptions)
            }
            profileID = profile.id
            if !tenant.profileSubscriptions.isEmpty {
                if outcome?.created == true { notices.append((.profileCreated, [:])) }
                for absorbed in outcome?.merged ?? [] { notices.append((.profileMerged, ["absorbed_profile_id": .string(absorbed)])) }
                if message.type == .identify && !message.traits.isEmpty && outcome?.created != true { notices.append((.profileUpdated, [:])) }
                for (type, granted) in consents.recorded { notices.append((.consentUpdated, ["consent_type": .string(type), "granted": .bool(granted)])) }
                notices.append((.eventReceived, ["event": [
                    "event_id": .string(eventID), "type": .string(message.type.rawValue), "event_name": .string(message.eventName),
                    "message_id": .string(message.messageID), "event_time": .string(Instant.format(milliseconds: message.eventTime)),
                ]]))
            }
            updated = profile
        }
        let event = NewEvent(
            tenantID: tenant.tenant, id: eventID, profileID: profileID, sourceID: source.name, type: message.type,
            eventName: message.eventName, eventTime: message.eventTime, receivedAt: message.receivedAt,
            idempotencyKey: message.messageID, propertiesJSON: prepared.propertiesJSON, contextJSON: prepared.contextJSON,
            identifiersJSON: prepared.identifiersJSON, emqScore: prepared.emqScore)
        guard try transaction.insertEvent(event) else { return .duplicate }
        if let updated, !notices.isEmpty {
            try enqueue(notices, profile: updated, eventID: eventID, tenant: tenant, now: now, in: transaction)
        }
        return .stored(eventID: eventID, profileID: profileID, createdProfile: outcome?.created ?? false, mergedProfiles: outcome?.merged ?? [])
    }
}
