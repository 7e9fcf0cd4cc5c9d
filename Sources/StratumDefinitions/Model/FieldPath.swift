import StratumJSON

/// A profile field a segment condition reads (DESIGN.md, Rule semantics).
public enum FieldPath: Sendable, Hashable {
    case lifecycleStage
    case externalID
    case firstSeenAt
    case lastSeenAt
    case totalEvents
    case totalSessions
    case totalPurchases
    case totalRevenue
    case profileData(String)
    case computedTrait(String)
    case rfm(model: String, part: RFMPart)
    case identifier(String)
    case consent(String)
    case segment

    public enum RFMPart: String, Sendable, CaseIterable { case r, f, m, segment }

    /// The fixed (non-parameterised) field names.
    public static let fixedFields: [String: FieldPath] = [
        "lifecycle_stage": .lifecycleStage, "external_id": .externalID, "first_seen_at": .firstSeenAt,
        "last_seen_at": .lastSeenAt, "total_events": .totalEvents, "total_sessions": .totalSessions,
        "total_purchases": .totalPurchases, "total_revenue": .totalRevenue, "segment": .segment,
    ]
    static let prefixes = ["profile_data", "computed_traits", "identifiers", "consent", "rfm"]

    public static let lifecycleStages = ["anonymous", "known", "customer", "churned"]

    /// Parses `computed_traits.ltv`, `rfm.main.segment`, ...; nil when unknown.
    public init?(parsing text: String) {
        if let fixed = Self.fixedFields[text] {
            self = fixed
            return
        }
        guard let dot = text.firstIndex(of: ".") else { return nil }
        let prefix = String(text[..<dot])
        let rest = String(text[text.index(after: dot)...])
        guard !rest.isEmpty else { return nil }
        switch prefix {
        case "profile_data": self = .profileData(rest)
        case "computed_traits": self = .computedTrait(rest)
        case "identifiers": self = .identifier(rest)
        case "consent": self = .consent(rest)
        case "rfm":
            let parts = rest.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 2, let part = RFMPart(rawValue: String(parts[1])), !parts[0].isEmpty else { return nil }
            self = .rfm(model: String(parts[0]), part: part)
        default: return nil
        }
    }

    /// A likely intended field for a mistyped one, e.g. `total_purchase` →
    /// `total_purchases`, `computed_trait.ltv` → `computed_traits.ltv`.
    public static func suggestion(for text: String) -> String? {
        if let dot = text.firstIndex(of: ".") {
            let prefix = String(text[..<dot])
            if let fixedPrefix = Suggestion.closest(to: prefix, in: prefixes) {
                return fixedPrefix + text[dot...]
            }
            if prefix == "rfm" { return "rfm.<model>.<r|f|m|segment>" }
            return nil
        }
        return Suggestion.closest(to: text, in: Array(fixedFields.keys).sorted() + ["event"])
    }

    /// A hint for a pattern violation at `pointer`, when it is a rule's `field`.
    static func suggestion(forPointer pointer: JSONPointer, value: String) -> String? {
        guard pointer.lastToken == "field", let guess = suggestion(for: value) else { return nil }
        return "did you mean \"\(guess)\"?"
    }
}
