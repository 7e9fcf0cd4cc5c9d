/// One way an instance fails its JSON Schema, said so a person can fix it.
public struct SchemaViolation: Sendable, Hashable {
    /// Where in the instance the problem is.
    public var instancePath: JSONPointer
    /// True when the problem is the member name at `instancePath` (an unknown
    /// key), not its value: an editor should point at the key.
    public var isAboutKey: Bool
    /// The schema keyword that failed (`required`, `enum`, ...).
    public var keyword: String
    public var message: String
    /// A one-line fix, when one is obvious ("did you mean `greater_than`?").
    public var hint: String?

    public init(instancePath: JSONPointer, isAboutKey: Bool = false, keyword: String, message: String, hint: String? = nil) {
        self.instancePath = instancePath
        self.isAboutKey = isAboutKey
        self.keyword = keyword
        self.message = message
        self.hint = hint
    }
}

/// Finds the closest of a set of words, for "did you mean" hints.
public enum Suggestion {
    /// The candidate nearest to `word` by edit distance, if it is near enough
    /// to be a likely typo (at most a third of the word's length, minimum 2).
    public static func closest<S: Sequence>(to word: String, in candidates: S) -> String? where S.Element == String {
        let limit = max(2, word.count / 3)
        var best: (candidate: String, distance: Int)?
        let lowered = word.lowercased()
        for candidate in candidates where candidate != word {
            if lowered.count >= 3, candidate.lowercased().hasPrefix(lowered) || lowered.hasPrefix(candidate.lowercased()) {
                return candidate
            }
            let distance = editDistance(word.lowercased(), candidate.lowercased())
            if distance <= limit, distance < (best?.distance ?? .max) {
                best = (candidate, distance)
            }
        }
        return best?.candidate
    }

    /// Levenshtein distance over characters.
    public static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a)
        let b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)
                current[j] = min(previous[j] + 1, current[j - 1] + 1, substitution)
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}

extension JSONValue {
    /// A short rendering for messages: strings quoted and clipped, short
    /// containers as JSON, long ones named.
    public var briefDescription: String {
        switch self {
        case .null: return "null"
        case .bool(let value): return value ? "true" : "false"
        case .number(let value): return JSONValue.numberText(value)
        case .string(let value):
            // JSON-escaped, so a line break or a control character cannot split a one-line message.
            let clipped = value.count > 40 ? String(value.prefix(37)) + "..." : value
            return JSONValue.string(clipped).jsonText()
        case .array, .object:
            let text = jsonText()
            if text.count <= 40 { return text }
            if case .array = self { return "a list" }
            return "a mapping"
        }
    }
}
