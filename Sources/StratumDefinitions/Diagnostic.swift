import StratumJSON

/// A 1-based line and column in a source file.
public struct SourceLocation: Sendable, Hashable, Comparable {
    public var line: Int
    public var column: Int

    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }

    public static let start = SourceLocation(line: 1, column: 1)

    public static func < (lhs: SourceLocation, rhs: SourceLocation) -> Bool {
        (lhs.line, lhs.column) < (rhs.line, rhs.column)
    }
}

/// One problem found in the definitions, with where it is and how to fix it.
public struct Diagnostic: Sendable, Hashable {
    public enum Severity: String, Sendable, Hashable, Codable {
        case error
        case warning
    }

    /// The file's path as given to the loader.
    public var file: String
    public var location: SourceLocation
    public var severity: Severity
    public var message: String
    /// Where in the definition (a JSON pointer), when the problem is in a value.
    public var pointer: JSONPointer?
    /// A one-line fix, when one is obvious.
    public var hint: String?

    public init(file: String, location: SourceLocation, severity: Severity = .error, message: String, pointer: JSONPointer? = nil, hint: String? = nil) {
        self.file = file
        self.location = location
        self.severity = severity
        self.message = message
        self.pointer = pointer
        self.hint = hint
    }

    /// `path:line:column: error: message; hint (at /pointer)`.
    public var formatted: String {
        var text = "\(file):\(location.line):\(location.column): \(severity.rawValue): \(message)"
        if let hint { text += "; \(hint)" }
        if let pointer, !pointer.tokens.isEmpty { text += " (at \(pointer))" }
        return text
    }
}

extension Array where Element == Diagnostic {
    /// Sorted by file, then position, then message: stable output for people and tests.
    public func sortedForDisplay() -> [Diagnostic] {
        sorted { ($0.file, $0.location, $0.message) < ($1.file, $1.location, $1.message) }
    }

    public var errorCount: Int { count { $0.severity == .error } }
    public var warningCount: Int { count { $0.severity == .warning } }
}
