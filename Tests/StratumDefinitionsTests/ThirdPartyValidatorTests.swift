import Foundation
import Testing

/// check-jsonschema (PyPI) must agree with `stratum validate` on structure:
/// it accepts every bundled set and rejects every schema-level bad fixture.
/// `scripts/test` installs it and sets STRATUM_REQUIRE_CHECK_JSONSCHEMA, so
/// in CI its absence fails; elsewhere these tests are skipped without it.
struct ThirdPartyValidatorTests {
    @Test func checkJSONSchemaIsPresentWhereRequired() {
        if ProcessInfo.processInfo.environment["STRATUM_REQUIRE_CHECK_JSONSCHEMA"] == "1" {
            #expect(Self.checkJSONSchema != nil, "check-jsonschema is required but not on PATH")
        }
    }

    static let checkJSONSchema: URL? = {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        return path.split(separator: ":").map { URL(fileURLWithPath: String($0)).appending(path: "check-jsonschema") }
            .first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }()

    static func run(_ executable: URL, _ arguments: [String]) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.currentDirectoryURL = Repository.root
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }

    @Test(.enabled(if: checkJSONSchema != nil, "check-jsonschema is not installed"))
    func checkJSONSchemaAcceptsEverySetStratumAccepts() throws {
        let script = Repository.root.appending(path: "scripts/check-jsonschema.sh")
        let (status, output) = try Self.run(URL(fileURLWithPath: "/bin/bash"), [script.path, "definitions", "examples", "Tests/StratumDefinitionsTests/Fixtures/base"])
        #expect(status == 0, "\(output)")
    }

    @Test(.enabled(if: checkJSONSchema != nil, "check-jsonschema is not installed"))
    func checkJSONSchemaRejectsEverySchemaLevelBadFixture() throws {
        let fixtures = try Repository.files(in: Repository.fixtures.appending(path: "bad/schema"), suffix: ".bad.yaml")
        #expect(fixtures.count >= 10)
        for fixture in fixtures {
            let text = try String(contentsOf: fixture, encoding: .utf8)
            let kindLine = try #require(text.split(separator: "\n").first { $0.hasPrefix("kind: ") })
            let schema = "schemas/\(kindLine.dropFirst("kind: ".count).lowercased()).schema.json"
            let (status, output) = try Self.run(try #require(Self.checkJSONSchema), ["--schemafile", schema, fixture.path])
            #expect(status == 1, "check-jsonschema accepted \(fixture.lastPathComponent): \(output)")
        }
    }
}
