import StratumJSON

/// The kinds of definition file. The raw value is what `kind:` says.
public enum DefinitionKind: String, Sendable, CaseIterable, Codable {
    case settings = "Settings"
    case source = "Source"
    case identity = "Identity"
    case trait = "Trait"
    case rfm = "RFM"
    case segment = "Segment"
    case funnel = "Funnel"
    case webhook = "Webhook"

    /// The file in `schemas/` that defines this kind's structure.
    public var schemaFile: String { rawValue.lowercased() + ".schema.json" }
}

/// What every definition has: the header lines of its file.
public protocol Definition: Decodable, Sendable {
    static var kind: DefinitionKind { get }
    var name: String { get }
    /// The tenant as written; nil means the default tenant.
    var tenant: String? { get }
}

extension Definition {
    public var tenantID: String { tenant ?? Tenant.defaultID }
}

public enum Tenant {
    public static let defaultID = "default"
}

/// The unit of a relative time window.
public enum TimeUnit: String, Sendable, Codable, CaseIterable {
    case minutes, hours, days

    public var seconds: Int {
        switch self {
        case .minutes: 60
        case .hours: 3_600
        case .days: 86_400
        }
    }
}

/// When a definition runs: `every: 15m` or a 5-field `cron:` expression.
public struct Schedule: Sendable, Codable, Hashable {
    public var every: String?
    public var cron: String?
}

/// The webhook event types a Webhook may subscribe to.
public enum WebhookEventType: String, Sendable, Codable, CaseIterable {
    case eventReceived = "event.received"
    case profileCreated = "profile.created"
    case profileUpdated = "profile.updated"
    case profileMerged = "profile.merged"
    case consentUpdated = "consent.updated"
    case segmentEntered = "segment.entered"
    case segmentExited = "segment.exited"
}

/// Consent types every tenant has; Settings may add more.
public enum ConsentTypes {
    public static let builtIn = ["analytics", "ads", "email", "sms", "all"]
}
