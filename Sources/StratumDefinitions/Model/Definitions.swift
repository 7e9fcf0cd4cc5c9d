import StratumJSON

/// Daemon and tenant settings (`stratum.yaml`).
public struct SettingsDefinition: Definition {
    public static let kind = DefinitionKind.settings
    public var name: String
    public var tenant: String?
    public var description: String?
    public var store: Store?
    public var listen: String?
    public var adminTokens: [AdminToken]?
    public var churnPeriodDays: Int?
    public var sessionTimeoutMinutes: Int?
    public var purchaseEvents: [String]?
    public var revenueProperty: String?
    public var defaultSchedule: Schedule?
    public var consentTypes: [String]?
    public var retention: Retention?

    public struct Store: Sendable, Codable, Hashable { public var path: String? }
    public struct Retention: Sendable, Codable, Hashable {
        public var eventsDays: Int?
        public var deliveriesDays: Int?
    }
    public enum Scope: String, Sendable, Codable { case read, write, admin }
    public struct AdminToken: Sendable, Codable, Hashable {
        public var name: String
        public var token: String?
        public var tokenSha256: String?
        public var scopes: [Scope]
    }

    public static let defaultChurnPeriodDays = 90
    public static let defaultSessionTimeoutMinutes = 30
    public static let defaultPurchaseEvents = ["Purchase", "Order Completed"]
    public static let defaultRevenueProperty = "total"
    public static let defaultListen = "127.0.0.1:8080"
    public static let defaultStorePath = "stratum.sqlite"
}

/// Where events come from; its write key selects the source and tenant.
public struct SourceDefinition: Definition {
    public static let kind = DefinitionKind.source
    public var name: String
    public var tenant: String?
    public var description: String?
    public var type: SourceType
    public var writeKey: String?
    public var writeKeySha256: String?
    public var rateLimit: RateLimit?
    public var trackingPlan: TrackingPlan?
    public var csv: CSVMapping?
    public var enabled: Bool?

    public enum SourceType: String, Sendable, Codable { case websitePixel = "website_pixel", serverAPI = "server_api", sgtm, crmImport = "crm_import" }
    public struct RateLimit: Sendable, Codable, Hashable { public var requestsPerMinute: Int? }
    public struct TrackingPlan: Sendable, Codable, Hashable {
        public var events: [String: JSONValue]?
        public var unplannedEvents: UnplannedEvents?
    }
    public enum UnplannedEvents: String, Sendable, Codable { case allow, warn, reject }
    public struct CSVMapping: Sendable, Codable, Hashable {
        public var columns: [String: String]
        public var delimiter: String?
    }

    /// The seed's ingestion limit: 100 requests per minute per tenant.
    public static let defaultRequestsPerMinute = 100
}

/// Identity rules: identifier types, priorities, limits, blocked values.
public struct IdentityDefinition: Definition {
    public static let kind = DefinitionKind.identity
    public var name: String
    public var tenant: String?
    public var description: String?
    public var identifierTypes: [IdentifierType]?
    public var blockedValues: [String]?
    public var blockedPatterns: [String]?
    public var phoneDefaultCountryCode: String?
    public var storeRawValues: Bool?

    public enum Normalization: String, Sendable, Codable { case email, phone, trim, none }
    public struct IdentifierType: Sendable, Codable, Hashable {
        public var type: String
        public var priority: Int
        public var limit: Int?
        public var normalize: Normalization?
        public var confidence: Double?
    }

    /// The seed's identifier table.
    public static let defaultIdentifierTypes = [
        IdentifierType(type: "external_id", priority: 100, limit: 1, normalize: .trim, confidence: 1),
        IdentifierType(type: "email", priority: 80, limit: 5, normalize: .email, confidence: 1),
        IdentifierType(type: "phone", priority: 70, limit: 5, normalize: .phone, confidence: 1),
        IdentifierType(type: "device_id", priority: 40, limit: nil, normalize: .trim, confidence: 1),
        IdentifierType(type: "anonymous_id", priority: 10, limit: nil, normalize: .trim, confidence: 1),
    ]
    public static let defaultBlockedValues = ["-1", "null", "anonymous", "undefined", "none", "unknown", "0"]
    public static let defaultBlockedPatterns = ["^[0-]*$"]
}

/// A computed trait: one value per profile derived from its events.
public struct TraitDefinition: Definition {
    public static let kind = DefinitionKind.trait
    public var name: String
    public var tenant: String?
    public var description: String?
    public var displayName: String?
    public var type: TraitType
    public var event: String
    public var property: String?
    public var `where`: [PropertyCondition]?
    public var window: TraitWindow?
    public var sources: [String]?
    public var schedule: Schedule?

    /// A trait built in code rather than read from a file (RFM's inputs).
    public init(name: String, tenant: String?, type: TraitType, event: String, property: String? = nil, window: TraitWindow? = nil) {
        self.name = name
        self.tenant = tenant
        self.type = type
        self.event = event
        self.property = property
        self.window = window
    }

    public enum TraitType: String, Sendable, Codable, CaseIterable {
        case count, sum, average, min, max, first, last
        case uniqueCount = "unique_count"
        case exists
    }
}

/// Which events a trait looks at: all of them, or the last N units.
public enum TraitWindow: Sendable, Codable, Hashable {
    case all
    case last(Int, TimeUnit)

    private struct Relative: Codable { var last: Int; var unit: TimeUnit }

    public init(from decoder: any Decoder) throws {
        if let text = try? decoder.singleValueContainer().decode(String.self), text == "all" {
            self = .all
        } else {
            let relative = try Relative(from: decoder)
            self = .last(relative.last, relative.unit)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .all:
            var container = encoder.singleValueContainer()
            try container.encode("all")
        case .last(let count, let unit):
            try Relative(last: count, unit: unit).encode(to: encoder)
        }
    }
}

/// An RFM model (the seed's RFMConfig plus named segments).
public struct RFMDefinition: Definition {
    public static let kind = DefinitionKind.rfm
    public var name: String
    public var tenant: String?
    public var description: String?
    public var displayName: String?
    public var recencyEvent: String?
    public var frequencyEvent: String?
    public var monetaryProperty: String?
    public var lookbackDays: Int?
    public var quintileScoring: Bool?
    public var thresholds: Thresholds?
    public var segments: [NamedSegment]?
    public var schedule: Schedule?

    public struct Thresholds: Sendable, Codable, Hashable {
        public var recencyDays: [Int]
        public var frequency: [Int]
        public var monetary: [Double]
    }

    /// A named RFM segment; each score is `n` or a range `lo-hi`.
    public struct NamedSegment: Sendable, Codable, Hashable {
        public var name: String
        public var r: ScoreRange
        public var f: ScoreRange
        public var m: ScoreRange
    }

    /// The seed's table first, then the standard map; first match wins.
    /// The segment name of scores no rule of the map covers.
    public static let unclassifiedSegment = "Other"

    public static let defaultSegments: [NamedSegment] = [
        .init(name: "Champions", r: .init(5, 5), f: .init(5, 5), m: .init(5, 5)),
        .init(name: "Loyal", r: .init(4, 5), f: .init(4, 5), m: .init(4, 5)),
        .init(name: "Potential Loyal", r: .init(4, 5), f: .init(2, 3), m: .init(2, 3)),
        .init(name: "New", r: .init(5, 5), f: .init(1, 1), m: .init(1, 1)),
        .init(name: "At Risk", r: .init(2, 3), f: .init(4, 5), m: .init(4, 5)),
        .init(name: "Hibernating", r: .init(1, 2), f: .init(1, 2), m: .init(1, 2)),
        .init(name: "Promising", r: .init(4, 5), f: .init(1, 1), m: .init(1, 5)),
        .init(name: "Need Attention", r: .init(3, 3), f: .init(2, 3), m: .init(2, 5)),
        .init(name: "About to Sleep", r: .init(2, 3), f: .init(1, 2), m: .init(1, 3)),
        .init(name: "Can't Lose Them", r: .init(1, 1), f: .init(4, 5), m: .init(4, 5)),
        .init(name: "Lost", r: .init(1, 2), f: .init(1, 5), m: .init(1, 5)),
    ]
}

/// An inclusive range of RFM scores, written `4` or `"4-5"`.
public struct ScoreRange: Sendable, Codable, Hashable {
    public var low: Int
    public var high: Int

    public init(_ low: Int, _ high: Int) {
        self.low = low
        self.high = high
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let score = try? container.decode(Int.self) {
            self.init(score, score)
            return
        }
        let text = try container.decode(String.self)
        let parts = text.split(separator: "-").compactMap { Int($0) }
        guard parts.count == 2 else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "expected a score range like 4-5")
        }
        self.init(parts[0], parts[1])
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if low == high { try container.encode(low) } else { try container.encode("\(low)-\(high)") }
    }

    public func contains(_ score: Int) -> Bool { low <= score && score <= high }
}

/// A segment: the seed's CDPSegment as a definition.
public struct SegmentDefinition: Definition {
    public static let kind = DefinitionKind.segment
    public var name: String
    public var tenant: String?
    public var description: String?
    public var displayName: String?
    public var segmentType: SegmentType?
    public var status: Status?
    public var rules: RuleGroup?
    public var schedule: Schedule?
    public var refreshIntervalHours: Int?
    public var autoRefresh: Bool?

    public enum SegmentType: String, Sendable, Codable { case `static`, dynamic, computed }
    public enum Status: String, Sendable, Codable { case draft, active }

    public var effectiveType: SegmentType { segmentType ?? .dynamic }
}

/// A conversion funnel: the seed's CDPFunnel plus order, exclusions and breakdown.
public struct FunnelDefinition: Definition {
    public static let kind = DefinitionKind.funnel
    public var name: String
    public var tenant: String?
    public var description: String?
    public var displayName: String?
    public var steps: [Step]
    public var conversionWindowDays: Int?
    public var stepTimeoutHours: Int?
    public var order: Order?
    public var exclusions: [Exclusion]?
    public var breakdownProperty: String?
    public var segment: String?
    public var schedule: Schedule?

    public struct Step: Sendable, Codable, Hashable {
        public var stepName: String
        public var eventName: String
        public var conditions: [PropertyCondition]?
    }
    public enum Order: String, Sendable, Codable { case ordered, strict, unordered }
    public struct Exclusion: Sendable, Codable, Hashable {
        public var eventName: String
        public var conditions: [PropertyCondition]?
        public var afterStep: String?
        public var beforeStep: String?
    }

    public static let defaultConversionWindowDays = 30
}

/// A webhook endpoint and what it receives.
public struct WebhookDefinition: Definition {
    public static let kind = DefinitionKind.webhook
    public var name: String
    public var tenant: String?
    public var description: String?
    public var url: String
    public var secret: String
    public var events: [WebhookEventType]
    public var segments: [String]?
    public var requiresConsent: String?
    public var batchSize: Int?
    public var retry: Retry?
    public var timeout: Timeout?
    public var headers: [String: String]?
    public var enabled: Bool?

    public struct Retry: Sendable, Codable, Hashable { public var schedule: [String]? }
    public struct Timeout: Sendable, Codable, Hashable {
        public var connect: String?
        public var total: String?
    }

    /// Delays before each retry, after the first attempt.
    public static let defaultRetrySchedule = ["5s", "5m", "30m", "2h", "5h", "10h", "10h"]
    public static let defaultBatchSize = 100

    /// Headers the sender sets itself (lowercased): the Standard Webhooks
    /// signature headers and the body's type. Extra `headers` may not name them.
    public static let protocolHeaders: Set<String> = ["webhook-id", "webhook-timestamp", "webhook-signature", "content-type"]

    /// The variables a header value names: `Bearer ${env:CRM_TOKEN}` names CRM_TOKEN.
    public static func environmentNames(in value: String) -> [String] {
        value.matches(of: /\$\{env:([^}]*)\}/).map { String($0.1) }
    }

    /// `value` with each `${env:NAME}` replaced from `environment`, or why it
    /// cannot be sent: a variable not set (the header is never sent without
    /// it), or a line break taken from the environment (a secret read from a
    /// file often ends in one), which would start another header on the wire.
    public static func headerValue(_ value: String, environment: [String: String]) -> Result<String, HeaderValueProblem> {
        var unset: String?
        let resolved = value.replacing(/\$\{env:([^}]*)\}/) { match in
            guard let found = environment[String(match.1)], !found.isEmpty else { unset = unset ?? String(match.1); return "" }
            return found
        }
        if let unset { return .failure(HeaderValueProblem(description: "\(value) is not set (\(unset))")) }
        if resolved.contains(where: { $0 == "\r" || $0 == "\n" || $0 == "\0" }) {
            return .failure(HeaderValueProblem(description: "\(value) takes a line break from the environment; remove it (a file's trailing newline?)"))
        }
        return .success(resolved)
    }

    /// Why a header value cannot be sent.
    public struct HeaderValueProblem: Error, CustomStringConvertible, Sendable {
        public var description: String
    }
}
