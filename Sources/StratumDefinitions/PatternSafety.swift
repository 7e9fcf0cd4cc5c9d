/// Regular expressions that can take exponential time. ICU (like every
/// backtracking engine) tries each way a repeated group can split the input,
/// so a group repeated without bound whose content can itself match the same
/// text in more than one way — `(a+)+`, `(a|aa)*`, `(\w+\s?)*`, `(a?a)+` —
/// takes seconds on a value of a few dozen characters that almost matches.
/// Identity's `blocked_patterns` run on every identifier of every event, so
/// such a pattern would let one crafted value stall ingestion for every tenant.
///
/// The check reads the pattern's structure. A repeated group is safe when its
/// content has one way to match: no variable count or alternation inside; or
/// alternatives that are plain words none of which starts another
/// (`(test|demo)+`); or a sequence ending in a literal nothing before it can
/// match, which fixes where each repetition ends (`([a-z0-9-]+\.)+`). A
/// bounded repetition (`{3}`, `{1,3}`) is never exponential.
public enum PatternSafety {
    /// The first unboundedly repeated group that can match ambiguously, as written.
    public static func nestedRepetition(in pattern: String) -> String? {
        var parser = Parser(characters: Array(pattern))
        let root = parser.alternation()
        return first(in: root, pattern: Array(pattern))
    }

    // MARK: - Structure

    indirect enum Node {
        /// Matches one character `test` accepts.
        case character(CharacterTest)
        /// A zero-width assertion (`^`, `$`, `\b`).
        case anchor
        case group(branches: [[Node]], start: Int, end: Int)
        case repeated(Node, minimum: Int, maximum: Int?, end: Int)
    }

    enum CharacterTest {
        case literal(Character)
        case any
        case digit(Bool), word(Bool), space(Bool)
        case set(items: [CharacterTest], ranges: [ClosedRange<Character>], negated: Bool)

        func accepts(_ c: Character) -> Bool {
            switch self {
            case .literal(let l): l == c
            case .any: c != "\n"
            case .digit(let yes): (c.isASCII && c.isNumber) == yes
            case .word(let yes): (c.isASCII && (c.isLetter || c.isNumber) || c == "_") == yes
            case .space(let yes): c.isWhitespace == yes
            case .set(let items, let ranges, let negated):
                (items.contains { $0.accepts(c) } || ranges.contains { $0.contains(c) }) != negated
            }
        }
    }

    struct Parser {
        let characters: [Character]
        var index = 0

        mutating func alternation() -> [[Node]] {
            var branches: [[Node]] = [sequence()]
            while index < characters.count, characters[index] == "|" {
                index += 1
                branches.append(sequence())
            }
            return branches
        }

        mutating func sequence() -> [Node] {
            var nodes: [Node] = []
            while index < characters.count, characters[index] != "|", characters[index] != ")" {
                guard let atom = atom() else { continue }
                nodes.append(quantified(atom))
            }
            return nodes
        }

        mutating func atom() -> Node? {
            let start = index
            let c = characters[index]
            index += 1
            switch c {
            case "(":
                // (?:…), (?=…), (?<name>…): the prefix is no part of what is matched.
                if index < characters.count, characters[index] == "?" {
                    index += 1
                    if index < characters.count, characters[index] == "<", index + 1 < characters.count, characters[index + 1] != "=", characters[index + 1] != "!" {
                        while index < characters.count, characters[index] != ">" { index += 1 }
                    }
                    if index < characters.count { index += 1 }
                }
                let branches = alternation()
                if index < characters.count { index += 1 }
                return .group(branches: branches, start: start, end: index)
            case "[": return .character(characterSet())
            case ".": return .character(.any)
            case "^", "$": return .anchor
            case "\\":
                guard index < characters.count else { return .character(.literal("\\")) }
                let escaped = characters[index]
                index += 1
                switch escaped {
                case "b", "B", "A", "z", "Z": return .anchor
                default: return .character(Self.escape(escaped))
                }
            default: return .character(.literal(c))
            }
        }

        static func escape(_ c: Character) -> CharacterTest {
            switch c {
            case "d": .digit(true)
            case "D": .digit(false)
            case "w": .word(true)
            case "W": .word(false)
            case "s": .space(true)
            case "S": .space(false)
            case "n": .literal("\n")
            case "t": .literal("\t")
            case "r": .literal("\r")
            default: .literal(c)
            }
        }

        mutating func characterSet() -> CharacterTest {
            var negated = false
            if index < characters.count, characters[index] == "^" {
                negated = true
                index += 1
            }
            var items: [CharacterTest] = []
            var ranges: [ClosedRange<Character>] = []
            var first = true
            while index < characters.count, characters[index] != "]" || first {
                first = false
                var item: CharacterTest
                if characters[index] == "\\", index + 1 < characters.count {
                    item = Self.escape(characters[index + 1])
                    index += 2
                } else {
                    item = .literal(characters[index])
                    index += 1
                }
                if case .literal(let low) = item, index + 1 < characters.count, characters[index] == "-", characters[index + 1] != "]" {
                    let high = characters[index + 1] == "\\" && index + 2 < characters.count ? characters[index + 2] : characters[index + 1]
                    index += characters[index + 1] == "\\" ? 3 : 2
                    if low <= high { ranges.append(low...high) }
                    continue
                }
                items.append(item)
            }
            if index < characters.count { index += 1 }
            return .set(items: items, ranges: ranges, negated: negated)
        }

        mutating func quantified(_ node: Node) -> Node {
            guard index < characters.count else { return node }
            let bounds: (Int, Int?)
            switch characters[index] {
            case "*": bounds = (0, nil); index += 1
            case "+": bounds = (1, nil); index += 1
            case "?": bounds = (0, 1); index += 1
            case "{":
                guard let close = characters[index...].firstIndex(of: "}") else { return node }
                let parts = String(characters[(index + 1)..<close]).split(separator: ",", omittingEmptySubsequences: false)
                guard let low = parts.first.flatMap({ Int($0) }), parts.count <= 2 else { return node }
                bounds = parts.count == 1 ? (low, low) : (low, parts[1].isEmpty ? nil : Int(parts[1]))
                index = close + 1
            default: return node
            }
            // Lazy and possessive markers change the order of tries, not their number.
            if index < characters.count, characters[index] == "?" || characters[index] == "+" { index += 1 }
            return .repeated(node, minimum: bounds.0, maximum: bounds.1, end: index)
        }
    }

    // MARK: - Analysis

    static func first(in branches: [[Node]], pattern: [Character]) -> String? {
        for branch in branches {
            for node in branch {
                if let found = first(in: node, pattern: pattern) { return found }
            }
        }
        return nil
    }

    static func first(in node: Node, pattern: [Character]) -> String? {
        switch node {
        case .character, .anchor: return nil
        case .group(let branches, _, _): return first(in: branches, pattern: pattern)
        case .repeated(let inner, _, let maximum, let end):
            if maximum == nil, case .group(let branches, let start, _) = inner, isAmbiguous(branches) {
                return String(pattern[start..<end])
            }
            return first(in: inner, pattern: pattern)
        }
    }

    /// Whether the content of a group can match one text in more than one way.
    static func isAmbiguous(_ branches: [[Node]]) -> Bool {
        if branches.count > 1 {
            // Plain words, none the start of another: each repetition has one reading.
            let words = branches.map { branch in branch.map { node -> Character? in if case .character(.literal(let c)) = node { c } else { nil } } }
            guard words.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0 != nil } }) else { return true }
            let texts = words.map { String($0.compactMap { $0 }) }
            return texts.enumerated().contains { index, text in texts.enumerated().contains { $0.offset != index && $0.element.hasPrefix(text) } }
        }
        let sequence = branches.first ?? []
        guard sequence.contains(where: varies) else { return false }
        // A last literal that nothing before it can match ends each repetition at one place.
        guard case .character(.literal(let last))? = sequence.last else { return true }
        return sequence.dropLast().contains { canMatch($0, last) }
    }

    /// Whether `node` matches a variable amount of text, or alternatives.
    static func varies(_ node: Node) -> Bool {
        switch node {
        case .character, .anchor: false
        case .group(let branches, _, _): branches.count > 1 || branches.contains { $0.contains(where: varies) }
        case .repeated(let inner, let minimum, let maximum, _): maximum != minimum || varies(inner)
        }
    }

    static func canMatch(_ node: Node, _ c: Character) -> Bool {
        switch node {
        case .character(let test): test.accepts(c)
        case .anchor: false
        case .group(let branches, _, _): branches.contains { $0.contains { canMatch($0, c) } }
        case .repeated(let inner, _, _, _): canMatch(inner, c)
        }
    }
}
