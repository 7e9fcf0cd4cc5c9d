import Foundation
import StratumCrypto
import StratumDefinitions
import StratumStore

/// What the running daemon needs of one tenant's definitions.
public struct TenantRuntime: Sendable {
    public var tenant: String
    public var identity: IdentityRules
    public var purchaseEvents: Set<String>
    public var revenueProperty: String
    public var sessionTimeoutMilliseconds: Int64
    public var churnPeriodDays: Int
    public var consentTypes: Set<String>
    /// Enabled webhooks subscribed to profile and event types (not segment ones).
    public var profileSubscriptions: [ProfileSubscription]
    /// Enabled webhooks subscribed to segment.entered or segment.exited.
    public var segmentSubscriptions: [SegmentSubscription]

    public init(tenant: String, definitions: DefinitionSet) {
        self.tenant = tenant
        let settings = definitions.settings(for: tenant)
        identity = IdentityRules(definitions.identity(for: tenant))
        purchaseEvents = Set(settings?.purchaseEvents ?? SettingsDefinition.defaultPurchaseEvents)
        revenueProperty = settings?.revenueProperty ?? SettingsDefinition.defaultRevenueProperty
        sessionTimeoutMilliseconds = Int64(settings?.sessionTimeoutMinutes ?? SettingsDefinition.defaultSessionTimeoutMinutes) * 60_000
        churnPeriodDays = settings?.churnPeriodDays ?? SettingsDefinition.defaultChurnPeriodDays
        consentTypes = Set(ConsentTypes.builtIn + (settings?.consentTypes ?? []))
        let webhooks = definitions.webhooks.map(\.definition).filter { $0.tenantID == tenant && $0.enabled != false }
        profileSubscriptions = webhooks.compactMap { webhook in
            let types = Set(webhook.events).subtracting([.segmentEntered, .segmentExited])
            return types.isEmpty ? nil : ProfileSubscription(webhook: webhook.name, types: types, requiresConsent: webhook.requiresConsent, segments: webhook.segments.map(Set.init))
        }
        segmentSubscriptions = webhooks.compactMap { webhook in
            let entered = webhook.events.contains(.segmentEntered)
            let exited = webhook.events.contains(.segmentExited)
            guard entered || exited else { return nil }
            return SegmentSubscription(
                webhook: webhook.name, entered: entered, exited: exited, segments: webhook.segments.map(Set.init),
                requiresConsent: webhook.requiresConsent, batchSize: webhook.batchSize ?? WebhookDefinition.defaultBatchSize)
        }
    }
}

/// A webhook's subscription to profile and event types, and its consent requirement.
public struct ProfileSubscription: Sendable {
    public var webhook: String
    public var types: Set<WebhookEventType>
    public var requiresConsent: String?
    /// Only profiles that are members of one of these segments (nil: all).
    public var segments: Set<String>?
}

/// A source as ingestion sees it: who it is and how to authenticate it.
public struct SourceRuntime: Sendable {
    public var name: String
    public var tenant: String
    public var type: SourceDefinition.SourceType
    /// SHA-256 of the write key (from `write_key_sha256`, or of the resolved `${env:...}` key).
    public var writeKeyHash: [UInt8]?
    public var requestsPerMinute: Int
    public var csvMapping: SourceDefinition.CSVMapping?
    public var enabled: Bool
    public var trackingPlan: TrackingPlan?
}

/// The daemon's view of a definition set: tenants and sources, with secrets resolved.
public struct Runtime: Sendable {
    public var tenants: [String: TenantRuntime]
    public var sources: [String: SourceRuntime]

    /// Why a definition set cannot run (for example, an unset secret).
    public struct ConfigurationError: Error, CustomStringConvertible {
        public var description: String
        public init(description: String) { self.description = description }
    }

    /// Secrets that are referenced but unset, and write keys shared by two
    /// sources: the daemon refuses to start with any.
    public var configurationProblems: [String]

    /// Resolves secrets from `environment`; unset ones, and write keys two
    /// sources share once resolved, are listed in `configurationProblems`.
    public init(definitions: DefinitionSet, environment: [String: String]) {
        var tenants: [String: TenantRuntime] = [:]
        for tenant in definitions.tenants.union([Tenant.defaultID]) {
            tenants[tenant] = TenantRuntime(tenant: tenant, definitions: definitions)
        }
        var sources: [String: SourceRuntime] = [:]
        var missing: [String] = []
        for loaded in definitions.sources {
            let source = loaded.definition
            var hash: [UInt8]?
            if let digest = source.writeKeySha256 {
                hash = Digest.bytes(hex: digest)
            } else if let reference = source.writeKey {
                if let value = Self.resolve(reference, environment) {
                    hash = Digest.sha256(Array(value.utf8))
                } else {
                    missing.append("\(loaded.file): Source \"\(source.name)\" write_key \(reference) is not set")
                }
            }
            sources[source.tenantID + "/" + source.name] = SourceRuntime(
                name: source.name, tenant: source.tenantID, type: source.type, writeKeyHash: hash,
                requestsPerMinute: source.rateLimit?.requestsPerMinute ?? SourceDefinition.defaultRequestsPerMinute,
                csvMapping: source.csv, enabled: source.enabled ?? true, trackingPlan: TrackingPlan(source: source))
        }
        for loaded in definitions.webhooks {
            let webhook = loaded.definition
            if webhook.secret.hasPrefix("${env:"), Self.resolve(webhook.secret, environment) == nil {
                missing.append("\(loaded.file): Webhook \"\(webhook.name)\" secret \(webhook.secret) is not set")
            }
            // A header value may name several variables, anywhere in it.
            for (name, value) in (webhook.headers ?? [:]).sorted(by: { $0.key < $1.key }) {
                if case .failure(let problem) = WebhookDefinition.headerValue(value, environment: environment) {
                    missing.append("\(loaded.file): Webhook \"\(webhook.name)\" header \(name) \(problem)")
                }
            }
        }
        // Keys are compared once resolved: two ${env:...} references may hold the same value.
        let byKey = Dictionary(grouping: sources.values.filter { $0.writeKeyHash != nil }, by: { Digest.hex($0.writeKeyHash!) })
        for (_, sharing) in byKey.sorted(by: { $0.key < $1.key }) where sharing.count > 1 {
            missing.append("Sources \(sharing.map { "\($0.tenant)/\($0.name)" }.sorted().joined(separator: " and ")) have the same write key; a write key selects exactly one source: give each its own")
        }
        self.tenants = tenants
        self.sources = sources
        self.configurationProblems = missing
    }

    /// The value of `${env:NAME}` in `environment`, or nil when unset.
    public static func resolve(_ reference: String, _ environment: [String: String]) -> String? {
        guard reference.hasPrefix("${env:"), reference.hasSuffix("}") else { return nil }
        // Set but empty (a CI or Kubernetes secret that is missing) is not set: no key is empty.
        return environment[String(reference.dropFirst(6).dropLast())].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The enabled source whose write key is `key`, compared in constant time.
    public func source(writeKey key: String) -> SourceRuntime? {
        let digest = Digest.sha256(Array(key.utf8))
        var found: SourceRuntime?
        for source in sources.values.sorted(by: { $0.name < $1.name }) {
            if let hash = source.writeKeyHash, Digest.constantTimeEquals(hash, digest), source.enabled { found = source }
        }
        return found
    }

    /// The source named `name` in `tenant`.
    public func source(named name: String, tenant: String = Tenant.defaultID) -> SourceRuntime? {
        sources[tenant + "/" + name]
    }
}
