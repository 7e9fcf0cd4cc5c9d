import StratumJSON
import Testing

/// The writer: exact text for escapes and numbers, parse round trips, and a
/// byte count that matches the written text.
struct JSONWriterTests {
    static let samples: [(JSONValue, String)] = [
        (.null, "null"),
        (true, "true"),
        (false, "false"),
        (42, "42"),
        (-0.5, "-0.5"),
        (.number(9_007_199_254_740_992), "9007199254740992"),
        (1.5e300, "1.5e+300"),
        ("plain", #""plain""#),
        ("quote \" backslash \\ slash /", #""quote \" backslash \\ slash /""#),
        ("\n\r\t\u{08}\u{0C}", #""\n\r\t\b\f""#),
        ("\u{01}\u{1F}\u{7F}", #""\u0001\u001f\#u{7F}""#),
        ("é 日本 🎉", "\"é 日本 🎉\""),
        ([], "[]"),
        ([:], "{}"),
        ([1, "two", [3], ["four": 4]], #"[1,"two",[3],{"four":4}]"#),
        (["b": 1, "a": ["c\"": .null]], #"{"b":1,"a":{"c\"":null}}"#),
    ]

    @Test(arguments: samples.indices)
    func writesExactText(index: Int) throws {
        let (value, expected) = Self.samples[index]
        #expect(value.jsonText() == expected)
        #expect(value.compactByteCount == expected.utf8.count)
        #expect(try JSONParser.parse(value.jsonText()) == value)
    }

    @Test func prettyIndentsByTwoSpaces() {
        let value: JSONValue = ["a": [1, 2], "b": [:], "c": ["d": "e"]]
        #expect(value.jsonText(pretty: true) == "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": {},\n  \"c\": {\n    \"d\": \"e\"\n  }\n}")
    }
}
