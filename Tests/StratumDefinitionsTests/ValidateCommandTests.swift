import Foundation
import StratumJSON
import Testing

/// `stratum validate` as CI runs it: the real binary, real files, exit codes.
struct ValidateCommandTests {
    static let base = "Tests/StratumDefinitionsTests/Fixtures/base"

    /// A temporary copy of the base set plus extra files.
    static func directory(with extra: [String: String]) throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appending(path: "stratum-validate-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory.appending(path: "nested"), withIntermediateDirectories: true)
        for file in try Repository.files(in: Repository.root.appending(path: base)) {
            try FileManager.default.copyItem(at: file, to: directory.appending(path: file.lastPathComponent))
        }
        for (name, text) in extra { try Data(text.utf8).write(to: directory.appending(path: name)) }
        return directory
    }

    @Test func validDefinitionsExitZeroWithASummary() throws {
        let output = try StratumBinary.run(["validate", Self.base], environment: Repository.fixtureEnvironment)
        #expect(output.status == 0)
        #expect(output.stdout.contains("9 files, 9 definitions, 0 errors, 0 warnings: valid"))
    }

    @Test func theDefaultDirectoryIsDefinitions() throws {
        let output = try StratumBinary.run(["validate"])
        #expect(output.status == 0)
        #expect(output.stdout.contains("definitions: "))
    }

    @Test func anInvalidSetExitsOneAndNamesFileLineAndColumn() throws {
        let directory = try Self.directory(with: ["nested/bad.yml": "kind: Trait\nname: t\ntype: summ\nevent: Purchase\n"])
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = try StratumBinary.run(["validate", directory.path], environment: Repository.fixtureEnvironment)
        #expect(output.status == 1)
        #expect(output.stdout.contains("\(directory.path)/nested/bad.yml:3:7: error: \"summ\" is not allowed here"))
        #expect(output.stdout.contains("did you mean \"sum\"? (at /type)"))
    }

    @Test func warningsPassUnlessStrict() throws {
        let output = try StratumBinary.run(["validate", Self.base], environment: ["FIXTURE_ADMIN_TOKEN": "t", "FIXTURE_WRITE_KEY": "k"])
        #expect(output.status == 0)
        #expect(output.stdout.contains("warning: environment variable FIXTURE_WEBHOOK_SECRET is not set"))
        let strict = try StratumBinary.run(["validate", "--strict", Self.base], environment: ["FIXTURE_ADMIN_TOKEN": "t", "FIXTURE_WRITE_KEY": "k"])
        #expect(strict.status == 1)
    }

    @Test func jsonFormatIsMachineReadable() throws {
        let directory = try Self.directory(with: ["bad.yaml": "kind: Segment\nname: s\nrules:\n  conditions:\n    - {field: computed_traits.lifetime_valu, operator: exists}\n"])
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = try StratumBinary.run(["validate", "--format", "json", directory.path], environment: Repository.fixtureEnvironment)
        #expect(output.status == 1)
        let report = try JSONParser.parse(output.stdout)
        #expect(report["valid"] == false)
        #expect(report["errors"] == 1)
        let diagnostic = try #require(report["diagnostics"]?.arrayValue?.first)
        #expect(diagnostic["file"] == .string(directory.path + "/bad.yaml"))
        #expect(diagnostic["line"] == 5)
        #expect(diagnostic["column"] == 15)
        #expect(diagnostic["severity"] == "error")
        #expect(diagnostic["message"] == "unknown trait \"lifetime_valu\"")
        #expect(diagnostic["hint"] == "did you mean \"lifetime_value\"?")
        #expect(diagnostic["pointer"] == "/rules/conditions/0/field")
    }

    @Test func githubFormatPrintsWorkflowCommands() throws {
        let directory = try Self.directory(with: ["bad, file.yaml": "kind: Trait\nname: t\ntype: count\n"])
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = try StratumBinary.run(["validate", "--format", "github", directory.path], environment: Repository.fixtureEnvironment)
        #expect(output.status == 1)
        let escapedPath = directory.path.replacingOccurrences(of: ":", with: "%3A") + "/bad%2C file.yaml"
        #expect(output.stdout.contains("::error file=\(escapedPath),line=1,col=1,title=stratum validate::missing required key \"event\""))
    }

    @Test func usageAndIOErrorsExitTwo() throws {
        #expect(try StratumBinary.run(["validate", "/nonexistent/definitions"]).status == 2)
        // Machine formats say so on stdout as well.
        let json = try StratumBinary.run(["validate", "--format", "json", "/nonexistent/definitions"])
        #expect(json.status == 2)
        let report = try JSONParser.parse(Array(json.stdout.utf8))
        #expect(report["valid"] == false)
        #expect(report["error"] == "/nonexistent/definitions: no such directory")
        let github = try StratumBinary.run(["validate", "--format", "github", "/nonexistent/definitions"])
        #expect(github.stdout == "::error title=stratum validate::/nonexistent/definitions: no such directory\n")
        #expect(try StratumBinary.run(["validate", "--format", "xml"]).status == 2)
        #expect(try StratumBinary.run(["validate", "--no-such-flag"]).status == 2)
        #expect(try StratumBinary.run(["bench", "validate", "--files", "3"]).status == 2)
    }

    @Test func anUnreadableFileIsReportedNotFatal() throws {
        let directory = try Self.directory(with: ["binary.yaml": "kind: Trait\nname: \u{FFFE}\u{0}\n"])
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = try StratumBinary.run(["validate", directory.path], environment: Repository.fixtureEnvironment)
        #expect(output.status == 1)
        #expect(output.stdout.contains("binary.yaml:"))
    }

    /// What the walk finds: any-case extensions; links to files (a dangling one
    /// is an I/O error, never skipped); links to directories are not followed.
    @Test func theDirectoryWalkSkipsNothingSilently() throws {
        let directory = try Self.directory(with: ["nested/SHOUTY.YAML": "kind: Segment\nname: shouty\nrules: {conditions: [{field: nope, operator: exists}]}\n"])
        defer { try? FileManager.default.removeItem(at: directory) }
        let shouty = try StratumBinary.run(["validate", directory.path], environment: Repository.fixtureEnvironment)
        #expect(shouty.status == 1)
        #expect(shouty.stdout.contains("nested/SHOUTY.YAML:"), "\(shouty.stdout)")
        try FileManager.default.removeItem(at: directory.appending(path: "nested/SHOUTY.YAML"))
        // A link to a directory is walked, once: here its own parent (a loop) adds nothing,
        // and a shared directory of segments is read.
        try FileManager.default.createSymbolicLink(atPath: directory.appending(path: "nested/loop").path, withDestinationPath: directory.path)
        #expect(try StratumBinary.run(["validate", directory.path], environment: Repository.fixtureEnvironment).status == 0)
        let shared = FileManager.default.temporaryDirectory.appending(path: "stratum-shared-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: shared, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: shared) }
        try Data("kind: Segment\nname: shared-one\nrules: {conditions: [{field: nope, operator: exists}]}\n".utf8).write(to: shared.appending(path: "shared.yaml"))
        try FileManager.default.createSymbolicLink(atPath: directory.appending(path: "segments-shared").path, withDestinationPath: shared.path)
        let linked = try StratumBinary.run(["validate", directory.path], environment: Repository.fixtureEnvironment)
        #expect(linked.status == 1)
        #expect(linked.stdout.contains("segments-shared/shared.yaml:"), "\(linked.stdout)")
        try FileManager.default.removeItem(at: directory.appending(path: "segments-shared"))
        try FileManager.default.createSymbolicLink(atPath: directory.appending(path: "gone.yaml").path, withDestinationPath: directory.appending(path: "missing.yaml").path)
        let dangling = try StratumBinary.run(["validate", directory.path], environment: Repository.fixtureEnvironment)
        #expect(dangling.status == 2)
        #expect(dangling.stderr.contains("gone.yaml: a symbolic link to a file that does not exist"), "\(dangling.stderr)")
        let file = try StratumBinary.run(["validate", directory.appending(path: "gone.yaml").path + "x"])
        #expect(file.status == 2)
        let aFile = try Repository.files(in: Repository.root.appending(path: Self.base)).first!
        let given = try StratumBinary.run(["validate", aFile.path])
        #expect(given.status == 2)
        #expect(given.stderr.contains("is a file; pass the directory that holds the definitions"), "\(given.stderr)")
    }
}
