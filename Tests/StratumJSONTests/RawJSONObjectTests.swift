import Foundation
import StratumJSON
import Testing

/// RawJSONObject against Foundation's JSONSerialization as the reference: the
/// members it finds, written back, are the same object.
struct RawJSONObjectTests {
    static let objects = [
        "{}",
        " { } ",
        #"{"a":1}"#,
        #"{"a": 1.50, "b" : "x,y}", "c":[1,{"d":"]"}], "e":{"f":{"g":null}}, "h":true, "i":false, "j":-2.5e-3}"#,
        #"{"quote\"key":"va\\l\"ue", "tab\tkey": "\u00e9\n", "rfm.value": {"r":5,"segment":"Champions"}}"#,
        "{\n  \"pretty\": [\n    1,\n    2\n  ],\n  \"s\": \"{[\"\n}",
        #"{"exact":123456789012345678901234567890.123456789}"#,
    ]

    static func reference(_ text: String) throws -> NSDictionary {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed]) as? NSDictionary)
    }

    @Test(arguments: objects)
    func membersWrittenBackAreTheSameObject(_ text: String) throws {
        let object = try #require(RawJSONObject(text))
        let written = String(decoding: object.bytes, as: UTF8.self)
        #expect(try Self.reference(written) == Self.reference(text))
        #expect(object.members.map(\.key).sorted() == (try Self.reference(text).allKeys as? [String] ?? []).sorted())
        // Written back once more, nothing changes: minified text is a fixed point.
        #expect(RawJSONObject(written)?.bytes == object.bytes)
    }

    @Test func valuesKeepTheirExactText() throws {
        let object = try #require(RawJSONObject(#"{"exact": 0.1000000000000000055511151231257827, "n":  1e400 }"#))
        #expect(object["exact"] == Array("0.1000000000000000055511151231257827".utf8))
        #expect(object["n"] == Array("1e400".utf8))
        #expect(object["missing"] == nil)
    }

    @Test func keysMatchByteForByte() throws {
        var object = try #require(RawJSONObject("{\"caf\u{E9}\":1}"))
        object.set("cafe\u{301}", Array("2".utf8))
        #expect(object.members.count == 2)
        #expect(object["caf\u{E9}"] == Array("1".utf8))
    }

    @Test func setReplacesInPlaceAppendsAndRemoves() throws {
        var object = try #require(RawJSONObject(#"{"a":1,"b":2,"c":3}"#))
        object.set("b", Array("[20]".utf8))
        object.set("d", Array(#""four""#.utf8))
        object.set("a", nil)
        object.set("absent", nil)
        #expect(String(decoding: object.bytes, as: UTF8.self) == #"{"b":[20],"c":3,"d":"four"}"#)
    }

    @Test(arguments: ["", "[]", "1", #""text""#, "{", #"{"a"}"#, #"{"a":}"#, #"{"a":1,}"#, #"{"a":1 "b":2}"#, #"{"a":"unterminated}"#, #"{"a":[1,2}"#, #"{"a":[1,2}}"#, #"{"a":{"b":1]}"#, #"{"a":1"b":2}"#, #"{"a":1} x"#, #"{a:1}"#])
    func anythingButAnObjectIsRefused(_ text: String) {
        #expect(RawJSONObject(text) == nil)
    }
}
