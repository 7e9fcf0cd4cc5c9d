import StratumDefinitions
import StratumJSON
import Testing

struct YAMLLoaderTests {
    func load(_ text: String) -> (YAMLDocument?, [Diagnostic]) {
        YAMLLoader.load(Array(text.utf8), file: "t.yaml")
    }

    @Test func scalarsFollowTheYAML12CoreSchema() throws {
        let (document, problems) = load("""
            a: yes
            b: NO
            c: true
            d: ~
            e:
            f: 0x1F
            g: 0o17
            h: -2.5e3
            i: "42"
            j: 1_000
            l: 007
            m: 0x-1
            n: 0o+7
            """)
        #expect(problems.isEmpty)
        let root = try #require(document?.root)
        #expect(root["a"] == "yes")
        #expect(root["b"] == "NO")
        #expect(root["c"] == true)
        #expect(root["d"] == .null)
        #expect(root["e"] == .null)
        #expect(root["f"] == 31)
        #expect(root["g"] == 15)
        #expect(root["h"] == -2500)
        #expect(root["i"] == "42")
        #expect(root["j"] == "1_000")
        #expect(root["l"] == 7)
        #expect(root["m"] == "0x-1")
        #expect(root["n"] == "0o+7")
    }

    /// JSON holds neither NaN nor infinity, nor integers past 2^53 exactly:
    /// each would compare wrongly in a rule, so each is an error where written.
    @Test func nonFiniteAndInexactNumbersAreRefused() throws {
        let (_, problems) = load("a: .nan\nb: -.inf\nc: !!float .inf\nd: 12345678901234567890\ne: 9007199254740991\nf: 1e20\ng: \"12345678901234567890\"\n")
        #expect(problems.map { "\($0.location.line):\($0.location.column)" } == ["1:4", "2:4", "3:4", "4:4"])
        #expect(problems.first?.message == ".nan is not a finite number; definitions hold finite numbers only (JSON has no NaN or infinity)")
        #expect(problems.last?.message == "12345678901234567890 is too large to keep exactly (2^53 or more)")
        // Keys are text, whatever they look like.
        let (keys, none) = load(".inf: 1\n12345678901234567890: 2\n")
        #expect(none.isEmpty)
        #expect(keys?.root["12345678901234567890"] == 2)
    }

    /// libyaml (YAML 1.1) breaks lines at NEL, LS and PS: each is reported where
    /// it stands, not as a parse error lines away.
    @Test func yaml11LineBreaksAreReportedWhereTheyStand() {
        let (document, problems) = load("kind: Segment\ndescription: a\u{2028}b and c\u{85}d\nname: x\n")
        #expect(document == nil)
        #expect(problems.map { "\($0.location.line):\($0.location.column) \($0.message)" } == [
            "2:15 U+2028 (line separator) is a line break to the YAML parser",
            "2:23 U+0085 (next line) is a line break to the YAML parser",
        ])
    }

    @Test func everyValueAndKeyHasItsLineAndColumn() throws {
        let (document, _) = load("kind: Segment\nrules:\n  conditions:\n    - {field: x, value: [1, 2]}\n")
        let doc = try #require(document)
        #expect(doc.valueLocations[JSONPointer(["rules", "conditions", "0", "value", "1"])] == SourceLocation(line: 4, column: 29))
        #expect(doc.keyLocations[JSONPointer(["rules", "conditions"])] == SourceLocation(line: 3, column: 3))
        #expect(doc.location(of: JSONPointer(["rules", "conditions", "0", "missing"])) == SourceLocation(line: 4, column: 7))
    }

    /// Long collections near the size limit load whole, each member where it
    /// belongs (the frames are now changed in place on the builder's stack).
    @Test
    func longListsAndMappingsLoadWhole() throws {
        let count = 35_000
        let list = (0..<count).map { "  - v\($0)" }.joined(separator: "\n")
        let mapping = (0..<count).map { "  k\($0): \($0)" }.joined(separator: "\n")
        let (document, problems) = load("list:\n" + list + "\nmap:\n" + mapping + "\n")
        #expect(problems.isEmpty)
        let root = try #require(document?.root)
        #expect(root["list"]?.arrayValue?.count == count)
        #expect(root["list"]?.arrayValue?.last == .string("v\(count - 1)"))
        #expect(root["map"]?.objectValue?.count == count)
        #expect(root["map"]?["k\(count - 1)"] == .number(Double(count - 1)))
        #expect(document?.location(of: JSONPointer(["map", "k\(count - 1)"])).line == 2 * count + 2)
    }

    @Test func filesOverTheSizeLimitAreRefusedBeforeParsing() {
        let text = "a: " + String(repeating: "x", count: YAMLLoader.maximumFileSize)
        let (document, problems) = load(text)
        #expect(document == nil)
        #expect(problems.map(\.message) == ["file is 1048579 bytes; definition files are limited to 1 MiB (1,048,576 bytes) (split it into several definitions)"])
    }

    @Test func deepNestingIsRefusedNotRecursedInto() {
        let text = String(repeating: "[", count: 10_000)
        let (document, problems) = load(text)
        #expect(document == nil)
        #expect(problems.first?.message.hasPrefix("nesting deeper than 64 levels") == true || problems.first?.message.hasPrefix("YAML syntax") == true)
    }

    @Test func aBillionLaughsCannotExpand() {
        let text = """
            a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
            b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
            c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
            d: [*c, *c, *c, *c, *c, *c, *c, *c, *c]
            """
        let (document, problems) = load(text)
        #expect(document == nil)
        #expect(problems.count == 3 + 27)
        #expect(problems.first?.message == "anchors (&a) are not supported in definitions")
    }

    @Test func invalidUTF8IsASyntaxErrorWithAPosition() {
        let (document, problems) = YAMLLoader.load(Array("name: ok\nbad: ".utf8) + [0xFF, 0xFE], file: "t.yaml")
        #expect(document == nil)
        #expect(problems.first?.message.hasPrefix("YAML syntax: invalid") == true)
        #expect(problems.first?.location.line == 2)
    }
}
