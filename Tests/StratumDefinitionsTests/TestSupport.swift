import Foundation
import StratumDefinitions
@_exported import StratumTestSupport

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

