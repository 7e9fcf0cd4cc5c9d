import Foundation

/// An RFC 6901 JSON Pointer: the path to a value inside a JSON document.
public struct JSONPointer: Sendable, Hashable, CustomStringConvertible, Comparable {
    public var tokens: [String]

    public init(_ tokens: [String] = []) { self.tokens = tokens }

    /// Parses `/a/b~1c` (an empty string is the root). Returns nil when the text
    /// does not start with `/` or has a bad `~` escape.
    public init?(parsing text: String) {
        guard !text.isEmpty else { self.tokens = []; return }
        guard text.hasPrefix("/") else { return nil }
        var tokens: [String] = []
        for raw in text.dropFirst().split(separator: "/", omittingEmptySubsequences: false) {
            var token = ""
            var iterator = raw.makeIterator()
            while let character = iterator.next() {
                if character == "~" {
                    switch iterator.next() {
                    case "0": token.append("~")
                    case "1": token.append("/")
                    default: return nil
                    }
                } else {
                    token.append(character)
                }
            }
            tokens.append(token)
        }
        self.tokens = tokens
    }

    public static let root = JSONPointer()

    public func appending(_ token: String) -> JSONPointer { JSONPointer(tokens + [token]) }
    public func appending(_ index: Int) -> JSONPointer { JSONPointer(tokens + [String(index)]) }

    public var parent: JSONPointer? { tokens.isEmpty ? nil : JSONPointer(Array(tokens.dropLast())) }
    public var lastToken: String? { tokens.last }

    public var description: String {
        tokens.map { "/" + $0.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1") }
            .joined()
    }

    public static func < (lhs: JSONPointer, rhs: JSONPointer) -> Bool {
        lhs.tokens.lexicographicallyPrecedes(rhs.tokens)
    }
}

extension JSONValue {
    /// The value the pointer designates, or nil when a token does not exist.
    public func value(at pointer: JSONPointer) -> JSONValue? {
        var current = self
        for token in pointer.tokens {
            guard let next = current.child(token) else { return nil }
            current = next
        }
        return current
    }

    /// The member or element one pointer token designates.
    public func child(_ token: String) -> JSONValue? {
        switch self {
        case .object(let object):
            return object[token]
        case .array(let elements):
            guard let index = Int(token), token == String(index), elements.indices.contains(index) else { return nil }
            return elements[index]
        default:
            return nil
        }
    }
}
