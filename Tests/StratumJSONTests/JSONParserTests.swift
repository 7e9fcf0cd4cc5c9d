import StratumJSON
import Testing

struct JSONParserTests {
    /// Bytes that are not UTF-8 are refused where they are, never replaced
    /// (two different ids would become one).
    @Test(arguments: [
        ([0x7B, 0x22, 0x61, 0x22, 0x3A, 0x22, 0x76, 0xFF, 0x22, 0x7D], 8),
        ([0x7B, 0x22, 0x61, 0x22, 0x3A, 0x22, 0xC3, 0xA9, 0xFE, 0x22, 0x7D], 8),
        ([0x7B, 0x22, 0x61, 0xED, 0xA0, 0x80, 0x22, 0x3A, 0x31, 0x7D], 4),
        ([0x5B, 0x22, 0x78, 0x5C, 0x6E, 0xC3, 0x22, 0x5D], 6),
    ] as [([UInt8], Int)])
    func invalidUTF8IsRefusedWithItsPosition(_ bytes: [UInt8], _ column: Int) {
        do {
            _ = try JSONParser.parse(bytes)
            Issue.record("accepted \(bytes)")
        } catch {
            #expect(error.message == "invalid UTF-8 in a string; send text as UTF-8")
            #expect(error.line == 1 && error.column == column)
        }
    }

    @Test func validUTF8AndEscapesAreKept() throws {
        let value = try JSONParser.parse(Array(#"{"é":"日本\n\u00e9","n":1e308}"#.utf8))
        #expect(value["é"] == "日本\né")
        #expect(value["n"] == .number(1e308))
    }

    @Test func aNumberNoDoubleHoldsIsRefused() {
        #expect(throws: JSONParser.SyntaxError.self) { try JSONParser.parse(Array("[1e400]".utf8)) }
        #expect(throws: JSONParser.SyntaxError.self) { try JSONParser.parse(Array("[-1e400]".utf8)) }
    }
}
