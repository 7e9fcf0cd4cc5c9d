import Foundation
import StratumJSON
import Testing

/// Runs the official JSON-Schema-Test-Suite (draft 2020-12) from `../shared/`.
///
/// Every file in the suite directory must appear in exactly one of the two
/// lists below, so a suite update cannot slip past unnoticed.
struct JSONSchemaTestSuiteTests {
    /// `../shared/json-schema-test-suite` beside the repository, or the
    /// directory named by JSON_SCHEMA_TEST_SUITE.
    static let suiteDirectory: URL = {
        if let override = ProcessInfo.processInfo.environment["JSON_SCHEMA_TEST_SUITE"] {
            return URL(fileURLWithPath: override).appending(path: "draft2020-12")
        }
        return URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appending(path: "shared/json-schema-test-suite/draft2020-12")
    }()

    /// Files run in full (the keywords Stratum's schemas and tracking plans use, and more).
    static let runFiles = [
        "additionalProperties.json", "allOf.json", "anchor.json", "anyOf.json", "boolean_schema.json",
        "const.json", "contains.json", "content.json", "default.json", "dependentRequired.json",
        "dependentSchemas.json", "enum.json", "exclusiveMaximum.json", "exclusiveMinimum.json", "format.json",
        "if-then-else.json", "infinite-loop-detection.json", "items.json", "maxContains.json", "maxItems.json",
        "maxLength.json", "maxProperties.json", "maximum.json", "minContains.json", "minItems.json",
        "minLength.json", "minProperties.json", "minimum.json", "multipleOf.json", "not.json", "oneOf.json",
        "pattern.json", "patternProperties.json", "prefixItems.json", "properties.json", "propertyNames.json",
        "ref.json", "required.json", "type.json", "unevaluatedItems.json", "unevaluatedProperties.json",
        "uniqueItems.json",
    ]

    /// Files not run, with the reason.
    static let skippedFiles = [
        "dynamicRef.json": "$dynamicRef/$dynamicAnchor scoping is not implemented; Stratum's schemas do not use it",
        "refRemote.json": "needs the suite's remote documents served on localhost:1234; Stratum's schemas refer only to local definitions",
        "vocabulary.json": "custom metaschemas with $vocabulary are not supported; Stratum's schemas use the standard dialect",
        "defs.json": "its one group validates against the draft 2020-12 metaschema, which is not shipped; $defs itself is exercised by ref.json",
        "optional": "optional behaviours (formats as assertions, bignums, ECMA-262 regex corner cases) are not required",
    ]

    /// Groups that need a document we do not ship (the draft 2020-12 metaschema,
    /// fetched from the web) or `$dynamicRef` scoping, keyed by file.
    static let skippedGroups: [String: Set<String>] = [
        "ref.json": [
            "remote ref, containing refs itself",
            "$ref to $dynamicRef finds detached $dynamicAnchor",
            "ref creates new scope when adjacent to keywords",
        ],
        "unevaluatedItems.json": ["unevaluatedItems with $dynamicRef"],
        "unevaluatedProperties.json": ["unevaluatedProperties with $dynamicRef"],
    ]

    @Test func everySuiteFileIsEitherRunOrSkippedWithAReason() throws {
        let present = Set(try FileManager.default.contentsOfDirectory(atPath: Self.suiteDirectory.path))
        #expect(present == Set(Self.runFiles).union(Self.skippedFiles.keys))
    }

    /// The optional ECMA-262 groups that Stratum's schemas rely on: `$` is
    /// the end of the input (a name `"vip\n"` must not pass `^[a-z]+$`).
    static let optionalGroups: [String: Set<String>] = [
        "optional/ecmascript-regex.json": ["ECMA 262 regex $ does not match trailing newline", "ECMA 262 regex converts \\t to horizontal tab"],
    ]

    @Test func theOptionalGroupsWeRelyOnPass() throws {
        for (file, groups) in Self.optionalGroups {
            try run(file, only: groups)
        }
    }

    @Test(arguments: runFiles)
    func suiteFilePasses(_ file: String) throws {
        try run(file)
    }

    func run(_ file: String, only: Set<String>? = nil) throws {
        let data = try Data(contentsOf: Self.suiteDirectory.appending(path: file))
        let groups = try #require(try JSONParser.parse(Array(data)).arrayValue)
        var ran = 0
        var seen: Set<String> = []
        for group in groups {
            let description = group["description"]?.stringValue ?? "?"
            if Self.skippedGroups[file]?.contains(description) == true { continue }
            if let only, !only.contains(description) { continue }
            seen.insert(description)
            let schema = try #require(group["schema"])
            var validator = JSONSchemaValidator()
            validator.register(schema, uri: "https://suite.test/root.json")
            for test in group["tests"]?.arrayValue ?? [] {
                let expected = test["valid"]?.boolValue
                let violations = validator.validate(try #require(test["data"]), against: "https://suite.test/root.json")
                #expect(
                    violations.isEmpty == expected,
                    "\(file): \(description): \(test["description"]?.stringValue ?? "?"): \(violations.map(\.message))"
                )
                ran += 1
            }
        }
        #expect(ran > 0)
        if let only { #expect(seen == only, "groups not found in \(file): \(only.subtracting(seen))") }
    }
}
