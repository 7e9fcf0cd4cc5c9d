import Foundation
import StratumCrypto
import StratumDefinitions

/// A tenant's identity rules, resolved from its Identity definition (or the
/// seed's defaults): how each identifier type is normalised, ranked and limited.
public struct IdentityRules: Sendable {
    public struct TypeRule: Sendable, Hashable {
        public var type: String
        public var priority: Int
        /// At most this many identifiers of the type per profile (nil: no limit).
        public var limit: Int?
        public var normalization: IdentityDefinition.Normalization
        public var confidence: Double
    }

    public var types: [String: TypeRule]
    public var blockedValues: Set<String>
    public var blockedPatterns: [NSRegularExpression]
    public var phoneDefaultCountryCode: String?
    public var storeRawValues: Bool

    /// The priority and limits of identifier types no definition declares
    /// (custom `context.externalIds` types).
    public static let undeclaredPriority = 50

    public init(_ definition: IdentityDefinition?) {
        let declared = definition?.identifierTypes ?? IdentityDefinition.defaultIdentifierTypes
        var types: [String: TypeRule] = [:]
        for entry in declared {
            let defaults = IdentityDefinition.defaultIdentifierTypes.first { $0.type == entry.type }
            types[entry.type] = TypeRule(
                type: entry.type, priority: entry.priority, limit: entry.limit ?? defaults?.limit,
                normalization: entry.normalize ?? defaults?.normalize ?? .trim, confidence: entry.confidence ?? 1)
        }
        self.types = types
        blockedValues = Set((definition?.blockedValues ?? IdentityDefinition.defaultBlockedValues).map { $0.lowercased() })
        blockedPatterns = (definition?.blockedPatterns ?? IdentityDefinition.defaultBlockedPatterns).compactMap { try? NSRegularExpression(pattern: $0) }
        phoneDefaultCountryCode = definition?.phoneDefaultCountryCode
        storeRawValues = definition?.storeRawValues ?? false
    }

    public func rule(for type: String) -> TypeRule {
        types[type] ?? TypeRule(type: type, priority: Self.undeclaredPriority, limit: nil, normalization: .trim, confidence: 1)
    }

    /// The normalised form of `raw` for `type`, or nil when it is not a usable
    /// identifier (empty, blocked, or not an email/phone for those types).
    public func normalize(_ raw: String, type: String) -> String? {
        let rule = rule(for: type)
        var value: String
        switch rule.normalization {
        case .email:
            value = raw.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
            guard let at = value.firstIndex(of: "@"), at != value.startIndex, value.index(after: at) != value.endIndex else { return nil }
        case .phone:
            value = normalizePhone(raw) ?? ""
        case .trim:
            value = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        case .none:
            value = raw
        }
        guard !value.isEmpty, !isBlocked(value) else { return nil }
        return value
    }

    /// Digits with a leading `+`: `00` becomes `+`; a number without a country
    /// code gets the default one. Fewer than 7 digits is not a phone number.
    func normalizePhone(_ raw: String) -> String? {
        let trimmed = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        var digits = trimmed.filter(\.isASCII).filter(\.isNumber)
        guard digits.count >= 7 else { return nil }
        if trimmed.hasPrefix("+") { return "+" + digits }
        if digits.hasPrefix("00") {
            digits.removeFirst(2)
            return "+" + digits
        }
        if let code = phoneDefaultCountryCode {
            return code + (digits.hasPrefix("0") ? String(digits.dropFirst()) : digits)
        }
        return "+" + digits
    }

    public func isBlocked(_ value: String) -> Bool {
        if blockedValues.contains(value.lowercased()) { return true }
        let range = NSRange(value.startIndex..., in: value)
        return blockedPatterns.contains { $0.firstMatch(in: value, range: range) != nil }
    }

    /// The identifier for a raw value, normalised and hashed; nil when unusable.
    public func identifier(type: String, raw: String) -> ResolvedIdentifier? {
        guard let normalized = normalize(raw, type: type) else { return nil }
        let rule = rule(for: type)
        return ResolvedIdentifier(type: type, normalized: normalized, hash: Digest.sha256Hex(normalized), priority: rule.priority, limit: rule.limit, confidence: rule.confidence)
    }
}

/// An identifier ready for matching: normalised, hashed, ranked.
public struct ResolvedIdentifier: Sendable, Hashable {
    public var type: String
    public var normalized: String
    public var hash: String
    public var priority: Int
    public var limit: Int?
    public var confidence: Double
}
