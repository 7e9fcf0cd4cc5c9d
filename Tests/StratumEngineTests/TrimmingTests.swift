import Foundation
import StratumEngine
import StratumJSON
import StratumTestSupport
import Testing

/// Identifiers and message fields are trimmed of exactly what Foundation's
/// `trimmingCharacters(in:)` trims, for every Unicode scalar either side
/// counts as white space (the reference), without going through NSString.
struct TrimmingTests {
    /// Every scalar that Foundation's set or Unicode's properties call white space.
    static func candidates(_ set: CharacterSet) -> [Unicode.Scalar] {
        (0...0x10FFFF).compactMap(Unicode.Scalar.init).filter {
            set.contains($0) || $0.properties.isWhitespace || $0.properties.generalCategory == .spaceSeparator
        }
    }

    @Test func identifiersAreTrimmedOfWhiteSpaceAndNewlinesAsFoundationDoes() throws {
        let harness = try EngineHarness()
        let identity = try #require(harness.runtime.tenants["default"]).identity
        let scalars = Self.candidates(.whitespacesAndNewlines) + ["\u{FEFF}", "x"]
        #expect(scalars.count > 25)
        for scalar in scalars {
            let raw = "\(scalar)\(scalar)user 1\(scalar)"
            let expected = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(identity.identifier(type: "external_id", raw: raw)?.normalized == expected, "U+\(String(scalar.value, radix: 16))")
            #expect(identity.identifier(type: "email", raw: "\(scalar)Ann@Example.com\(scalar)")?.normalized
                == "\(scalar)Ann@Example.com\(scalar)".trimmingCharacters(in: .whitespacesAndNewlines).lowercased())
        }
    }

    @Test func messageIdsAreTrimmedOfSpacesAsFoundationDoes() throws {
        for scalar in Self.candidates(.whitespaces) + ["\n", "\u{2028}", "\u{FEFF}"] {
            let raw = "\(scalar)m 1\(scalar)\(scalar)"
            let message = try MessageParser.parse(
                ["type": "track", "anonymousId": "a", "event": "Viewed", "messageId": .string(raw)],
                type: nil, path: "", receivedAt: 0, newMessageID: { "unused" })
            #expect(message.messageID == raw.trimmingCharacters(in: .whitespaces), "U+\(String(scalar.value, radix: 16))")
        }
    }
}
