import Foundation
import StratumCrypto
import StratumDefinitions
import StratumJSON
import Synchronization

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
    /// Recently resolved raw values: the same anonymous id arrives on every
    /// event of a visit, and normalising (regular expressions) and hashing it
    /// again each time would dominate ingestion.
    let cache = IdentifierCache()

    /// The priority and limits of identifier types no definition declares
    /// (custom `context.externalIds` types).
    public static let undeclaredPriority = 50

    public init(_ definition: IdentityDefinition?) {
        // A built-in type the definition leaves out keeps the seed's rule: without
        // it, a file listing only email would let two userIds merge (no limit)
        // and stop normalising phone numbers.
        let declared = IdentityDefinition.defaultIdentifierTypes.filter { builtIn in
            !(definition?.identifierTypes ?? []).contains { $0.type == builtIn.type }
        } + (definition?.identifierTypes ?? [])
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
        // Canonically equivalent text is one identifier: "josé" typed precomposed
        // or with a combining accent hashes the same (Swift's String equality,
        // which the caches use, already treats the two as equal).
        let composed = raw.utf8.allSatisfy { $0 < 0x80 } ? raw : raw.precomposedStringWithCanonicalMapping
        let trimmed = composed.trimmingWhitespaceAndNewlines()
        var value: String
        var asSent = [trimmed]
        switch rule.normalization {
        case .email:
            value = trimmed.lowercased()
            guard let at = value.firstIndex(of: "@"), at != value.startIndex, value.index(after: at) != value.endIndex else { return nil }
        case .phone:
            value = normalizePhone(trimmed) ?? ""
            // A placeholder number is blocked however it is written: its normal form
            // gains a "+" (maybe a country code, or loses a leading "00"), and
            // "(000) 000-0000" has brackets and spaces `^[0-]*$` would not match.
            asSent.append(String(trimmed.unicodeScalars.filter { ("0"..."9").contains($0) }.map(Character.init)))
        case .trim:
            value = trimmed
        case .none:
            value = composed
        }
        guard !value.isEmpty, !isBlocked(value), !asSent.contains(where: isBlocked) else { return nil }
        return value
    }

    /// Digits with a leading `+` of a trimmed value: `00` becomes `+`; a number
    /// without a country code gets the default one. Fewer than 7 digits is not
    /// a phone number.
    func normalizePhone(_ trimmed: String) -> String? {
        // "+44 (0)20 7946 0000": the bracketed trunk zero is dialled only at home.
        let international = trimmed.hasPrefix("+") || trimmed.hasPrefix("00") ? trimmed.replacingOccurrences(of: "(0)", with: "") : trimmed
        var digits = international.filter(\.isASCII).filter(\.isNumber)
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
        let key = type + "\u{0}" + raw
        if let cached = cache.lookup(key) { return cached }
        var resolved: ResolvedIdentifier?
        if let normalized = normalize(raw, type: type) {
            let rule = rule(for: type)
            resolved = ResolvedIdentifier(type: type, normalized: normalized, hash: Digest.sha256Hex(normalized), priority: rule.priority, limit: rule.limit, confidence: rule.confidence)
        }
        cache.store(key, resolved)
        return resolved
    }

    /// The identifiers a message carries (DESIGN.md: userId, anonymousId,
    /// traits/context.traits email and phone, context.device.id,
    /// context.externalIds[]), normalised, hashed and de-duplicated.
    public func identifiers(of message: IncomingMessage) -> [ResolvedIdentifier] {
        var found: [ResolvedIdentifier] = []
        /// The first of `candidates` that is a usable identifier of `type`: a
        /// `traits.email` of null or "  " leaves `context.traits.email` its say.
        func add(_ type: String, _ candidates: JSONValue?...) {
            for raw in candidates {
                let text: String
                switch raw {
                case .string(let string): text = string
                case .number(let number): text = JSONValue.number(number).jsonText()
                default: continue
                }
                guard let identifier = identifier(type: type, raw: text) else { continue }
                if !found.contains(where: { $0.type == identifier.type && $0.hash == identifier.hash }) { found.append(identifier) }
                return
            }
        }
        add("external_id", message.userID.map(JSONValue.string))
        add("anonymous_id", message.anonymousID.map(JSONValue.string))
        let contextTraits = message.context["traits"]?.objectValue ?? JSONObject()
        // A group call's traits describe the group (its info@ address), not the person.
        let traits = message.type == .group ? JSONObject() : message.traits
        add("email", traits["email"], contextTraits["email"])
        add("phone", traits["phone"], contextTraits["phone"])
        add("device_id", message.context["device"]?["id"])
        for entry in message.context["externalIds"]?.arrayValue ?? [] {
            // Segment's own types are dotted (`ios.idfa`, `android.id`): dots become
            // underscores, as in `identifiers.ios_idfa` of a rule.
            guard let type = entry["type"]?.stringValue?.replacingOccurrences(of: ".", with: "_"), Self.isIdentifierType(type) else { continue }
            add(type, entry["id"])
        }
        return found
    }

    /// Custom identifier types are slugs, like every name in Stratum.
    static func isIdentifierType(_ type: String) -> Bool {
        guard let first = type.unicodeScalars.first, type.count <= 64 else { return false }
        let allowed = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyz0123456789_-")
        return CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyz0123456789").contains(first)
            && type.unicodeScalars.allSatisfy(allowed.contains)
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

/// A bounded map from raw identifier to its resolution (nil: unusable).
final class IdentifierCache: Sendable {
    static let capacity = 100_000
    private let entries = Mutex<[String: ResolvedIdentifier?]>([:])

    func lookup(_ key: String) -> ResolvedIdentifier?? {
        entries.withLock { $0[key] }
    }

    func store(_ key: String, _ value: ResolvedIdentifier?) {
        entries.withLock { entries in
            // Dropping everything at capacity is simpler than LRU and costs one
            // cold start per 100,000 distinct identifiers.
            if entries.count >= Self.capacity { entries.removeAll(keepingCapacity: true) }
            entries[key] = value
        }
    }
}
