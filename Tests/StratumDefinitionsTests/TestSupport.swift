import Foundation
import StratumDefinitions

/// Paths of the repository, for tests that read real files.
enum Repository {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let fixtures = root.appending(path: "Tests/StratumDefinitionsTests/Fixtures")

    /// Environment under which the fixture base set has no warnings.
    static let fixtureEnvironment = ["FIXTURE_ADMIN_TOKEN": "t", "FIXTURE_WRITE_KEY": "k", "FIXTURE_WEBHOOK_SECRET": "s"]

    static func files(in directory: URL, suffix: String = ".yaml") throws -> [URL] {
        try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
            .filter { $0.lastPathComponent.hasSuffix(suffix) }
            .sorted { $0.path < $1.path }
    }

    /// Loads files (name → YAML text) as one definition set.
    static func load(_ files: [String: String], environment: [String: String] = [:]) -> DefinitionLoader.Result {
        DefinitionLoader.load(files: files.sorted { $0.key < $1.key }.map { ($0.key, Array($0.value.utf8)) }, environment: environment)
    }
}

/// Runs the built `stratum` binary, as a user would.
enum StratumBinary {
    static var url: URL {
        let testBinary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var directory = testBinary.deletingLastPathComponent()
        while directory.path != "/" {
            let candidate = directory.appending(path: "stratum")
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate.path, isDirectory: &isDirectory), !isDirectory.boolValue {
                return candidate
            }
            directory = directory.deletingLastPathComponent()
        }
        return Repository.root.appending(path: ".build/debug/stratum")
    }

    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> Output {
        let process = Process()
        process.executableURL = url
        process.arguments = arguments
        process.currentDirectoryURL = Repository.root
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Output(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self), stderr: String(decoding: stderr, as: UTF8.self))
    }
}
