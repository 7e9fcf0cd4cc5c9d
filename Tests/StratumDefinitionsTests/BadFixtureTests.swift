import Foundation
import StratumDefinitions
import Testing

/// The table of bad definitions: every `Fixtures/bad/<layer>/*.bad.yaml` is
/// loaded beside the valid base set, and must produce exactly the diagnostics
/// its trailing `# expect: [FILE:]LINE:COLUMN: severity: message` lines list.
struct BadFixtureTests {
    static let layers = ["yaml", "schema", "semantic"]

    static var fixtures: [String] {
        layers.flatMap { layer in
            ((try? Repository.files(in: Repository.fixtures.appending(path: "bad/\(layer)"), suffix: ".bad.yaml")) ?? [])
                .map { "\(layer)/\($0.lastPathComponent)" }
        }
    }

    @Test func thereAreAtLeastThirtyDistinctBadFixtures() {
        #expect(Self.fixtures.count >= 30)
    }

    /// A definition whose own file has an error is not also "unknown" where it is used.
    @Test func aBrokenDefinitionIsReportedOnceNotAlsoWhereItIsUsed() {
        let result = DefinitionLoader.load(files: [
            ("spend.yaml", Array("kind: Trait\nname: spend\ntype: sum\nevent: Purchase\nproperty: total\nbogus: 1\n".utf8)),
            ("big.yaml", Array("kind: Segment\nname: big\nrules:\n  conditions:\n    - {field: computed_traits.spend, operator: greater_than, value: 5}\n".utf8)),
            ("typo.yaml", Array("kind: Segment\nname: typo\nrules:\n  conditions:\n    - {field: computed_traits.spent, operator: greater_than, value: 5}\n".utf8)),
        ])
        #expect(result.diagnostics.map(\.file) == ["spend.yaml", "typo.yaml"], "\(result.diagnostics.map(\.formatted))")
    }

    @Test func theBaseSetIsValidWithoutWarnings() throws {
        let result = try DefinitionLoader.load(directory: Repository.fixtures.appending(path: "base").path, environment: Repository.fixtureEnvironment)
        #expect(result.diagnostics.map(\.formatted) == [])
        #expect(result.definitions.count == 9)
    }

    @Test(arguments: fixtures)
    func badFixtureReportsExactlyItsExpectedDiagnostics(_ fixture: String) throws {
        let fixtureURL = Repository.fixtures.appending(path: "bad/\(fixture)")
        let baseDirectory = Repository.fixtures.appending(path: "base")
        let bytes = try Data(contentsOf: fixtureURL)
        var inputs = try Repository.files(in: baseDirectory).map { ($0.lastPathComponent, Array(try Data(contentsOf: $0))) }
        inputs.append((fixtureURL.lastPathComponent, Array(bytes)))

        let result = DefinitionLoader.load(files: inputs, environment: Repository.fixtureEnvironment)

        let expected = String(decoding: bytes, as: UTF8.self).split(separator: "\n")
            .compactMap { line in line.hasPrefix("# expect: ") ? String(line.dropFirst("# expect: ".count)) : nil }
        #expect(!expected.isEmpty, "a bad fixture must say what it expects")
        let actual = result.diagnostics.map { diagnostic in
            diagnostic.file == fixtureURL.lastPathComponent
                ? String(diagnostic.formatted.dropFirst(diagnostic.file.count + 1))
                : diagnostic.formatted
        }
        #expect(actual.sorted() == expected.sorted())
        #expect(!result.isValid || actual.allSatisfy { $0.contains(": warning: ") })
    }
}
