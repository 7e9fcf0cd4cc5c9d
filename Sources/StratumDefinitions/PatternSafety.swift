/// Regular expressions that can take exponential time. ICU (like every
/// backtracking engine) tries each way a repeated group can split the input,
/// so a group that repeats, and itself repeats or alternates — `(a+)+`,
/// `(a|aa)*`, `(\w+\s?)*` — takes seconds on a value of a few dozen
/// characters that almost matches. Identity's `blocked_patterns` run on every
/// identifier of every event, so such a pattern would let one crafted value
/// stall ingestion for every tenant.
public enum PatternSafety {
    /// The first repeated group that repeats or alternates inside, if any.
    public static func nestedRepetition(in pattern: String) -> String? {
        var groups: [Group] = []
        var index = pattern.startIndex
        var inClass = false
        while index < pattern.endIndex {
            let character = pattern[index]
            let next = pattern.index(after: index)
            if character == "\\" {
                index = next < pattern.endIndex ? pattern.index(after: next) : next
                if !inClass, isRepetition(at: index, in: pattern) { markRepeat(&groups) }
                continue
            }
            if inClass {
                if character == "]" {
                    inClass = false
                    if isRepetition(at: next, in: pattern) { markRepeat(&groups) }
                }
                index = next
                continue
            }
            switch character {
            case "[": inClass = true
            case "(": groups.append(Group(start: index))
            case "|": markRepeat(&groups)
            case ")":
                guard let group = groups.popLast() else { break }
                if isRepetition(at: next, in: pattern) {
                    if group.repeatsInside { return String(pattern[group.start...index]) + String(pattern[next]) }
                    markRepeat(&groups)
                } else if group.repeatsInside {
                    markRepeat(&groups)
                }
            default:
                if isRepetition(at: next, in: pattern) { markRepeat(&groups) }
            }
            index = next
        }
        return nil
    }

    /// An open group, and whether something inside it repeats or alternates.
    private struct Group {
        var start: String.Index
        var repeatsInside = false
    }

    private static func markRepeat(_ groups: inout [Group]) {
        if !groups.isEmpty { groups[groups.count - 1].repeatsInside = true }
    }

    /// `*`, `+` or a `{n,}` / `{n,m}` allowing more than one at `index`.
    private static func isRepetition(at index: String.Index, in pattern: String) -> Bool {
        guard index < pattern.endIndex else { return false }
        switch pattern[index] {
        case "*", "+": return true
        case "{":
            guard let close = pattern[index...].firstIndex(of: "}") else { return false }
            let bounds = pattern[pattern.index(after: index)..<close].split(separator: ",", omittingEmptySubsequences: false)
            guard let low = bounds.first.flatMap({ Int($0) }) else { return false }
            if bounds.count == 1 { return low > 1 }
            guard bounds.count == 2 else { return false }
            return bounds[1].isEmpty || (Int(bounds[1]) ?? 0) > 1
        default: return false
        }
    }
}
