import Foundation
import StratumJSON
import StratumStore

/// What happened to one accepted message.
public enum MessageOutcome: Sendable, Hashable {
    /// Stored, linked to a profile (nil when no identifier was usable).
    case stored(eventID: String, profileID: String?, createdProfile: Bool, mergedProfiles: [String])
    /// Its messageId was already accepted: nothing changed.
    case duplicate
}

/// Runs accepted messages through identity resolution, profile updates,
/// consent and the event store, inside one store transaction.
public struct IngestionPipeline: Sendable {
    public var runtime: Runtime
    /// Supplies ids for new rows (UUIDs; deterministic in tests and benchmarks).
    public var newID: @Sendable () -> String
    /// The current instant.
    public var clock: @Sendable () -> Milliseconds

    public init(runtime: Runtime, newID: @escaping @Sendable () -> String = { UUID().uuidString.lowercased() }, clock: @escaping @Sendable () -> Milliseconds = IngestionPipeline.systemClock) {
        self.runtime = runtime
        self.newID = newID
        self.clock = clock
    }

    public static let systemClock: @Sendable () -> Milliseconds = { Milliseconds((Date().timeIntervalSince1970 * 1000).rounded()) }

    /// Processes `messages` of `source` in order, in `transaction`.
    public func process(_ messages: [IncomingMessage], source: SourceRuntime, in transaction: any StoreTransaction) throws -> [MessageOutcome] {
        guard let tenant = runtime.tenants[source.tenant] else { throw StoreError("tenant \(source.tenant) is not configured") }
        let now = clock()
        var outcomes: [MessageOutcome] = []
        outcomes.reserveCapacity(messages.count)
        for message in messages {
            outcomes.append(try process(message, source: source, tenant: tenant, now: now, in: transaction))
        }
        return outcomes
    }

    func process(_ message: IncomingMessage, source: SourceRuntime, tenant: TenantRuntime, now: Milliseconds, in transaction: any StoreTransaction) throws -> MessageOutcome {
        if try transaction.eventExists(tenant: tenant.tenant, idempotencyKey: message.messageID) { return .duplicate }
        let eventID = newID()
        let resolver = IdentityResolver(rules: tenant.identity, transaction: transaction, tenant: tenant.tenant, now: now, newID: newID)
        var identifiers = resolver.identifiers(of: message)
        var extraLookups: [ResolvedIdentifier] = []
        if message.type == .alias, let previous = message.previousID {
            // previousId is usually the anonymousId; it may also be an earlier userId.
            if let anonymous = tenant.identity.identifier(type: "anonymous_id", raw: previous) { identifiers.append(anonymous) }
            if let external = tenant.identity.identifier(type: "external_id", raw: previous) { extraLookups.append(external) }
        }
        let outcome = try resolver.resolve(identifiers, eventID: eventID, eventTime: message.eventTime, extraLookups: extraLookups)
        var profileID: String?
        if var profile = outcome?.profile {
            ProfileUpdater(tenant: tenant, now: now).apply(message, to: &profile)
            try transaction.updateProfile(profile)
            try ConsentRecorder(tenant: tenant, source: source.name, transaction: transaction, newID: newID)
                .record(message, profileID: profile.id)
            profileID = profile.id
        }
        let score = EMQ.score(message, identifiers: identifiers, requiredProperties: tenant.plannedRequiredProperties[message.eventName])
        var properties = message.properties
        if message.type == .identify || message.type == .group { properties = message.traits.isEmpty ? properties : message.traits }
        if let group = message.groupID { properties["groupId"] = .string(group) }
        if let previous = message.previousID { properties["previousId"] = .string(previous) }
        let event = EventRecord(
            tenantID: tenant.tenant, id: eventID, profileID: profileID, sourceID: source.name, type: message.type,
            eventName: message.eventName, eventTime: message.eventTime, receivedAt: message.receivedAt,
            idempotencyKey: message.messageID, properties: properties, context: message.context,
            identifiers: identifiers.map { ["type": .string($0.type), "hash": .string($0.hash)] },
            processed: true, emqScore: score.total)
        guard try transaction.insertEvent(event) else { return .duplicate }
        return .stored(eventID: eventID, profileID: profileID, createdProfile: outcome?.created ?? false, mergedProfiles: outcome?.merged ?? [])
    }
}
