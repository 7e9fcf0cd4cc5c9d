import ArgumentParser
import Foundation
import StratumDefinitions
import StratumEngine
import StratumJSON
import StratumStore

extension Stratum {
    struct Segment: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Work with segments.",
            subcommands: [Preview.self, Import.self]
        )
    }
}

extension Stratum.Segment {
    struct Preview: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Evaluate a segment file against the store and print its size and a sample, saving nothing.",
            discussion: """
                FILE is validated together with the definitions directory (a segment of the same name
                there is replaced by FILE), so references to traits and other segments resolve.
                Exit codes: 0 evaluated, 1 invalid definitions, 2 usage or I/O error.
                """
        )

        @Argument(help: "The Segment definition file to preview.")
        var file: String

        @Option(help: "Evaluate as of this instant (ISO-8601 date or date-time; default: now).")
        var asOf: String?

        @Option(help: "How many member profiles to print.")
        var sample = 10

        /// How the preview is printed.
        enum Format: String, ExpressibleByArgument, CaseIterable {
            case text, json
        }

        @Option(help: "text or json.")
        var format: Format = .text

        @OptionGroup var location: StoreOptions

        func validate() throws {
            guard (0...10_000).contains(sample) else { throw ValidationError("--sample must be 0...10000") }
        }

        func run() async throws {
            let instant = try asOfInstant(asOf)
            guard let bytes = FileManager.default.contents(atPath: file) else {
                printError("error: cannot read \(file)")
                throw ExitCode(2)
            }
            // Alone, the file only needs to parse (its references resolve below, with the directory).
            let previewed = DefinitionLoader.load(files: [(file, Array(bytes))])
            guard let segment = previewed.definitions.segments.first?.definition else {
                let problems = previewed.diagnostics.filter { $0.severity == .error }
                for diagnostic in problems { printError(diagnostic.formatted) }
                if problems.isEmpty { printError("error: \(file) is not a Segment definition") }
                throw ExitCode(problems.isEmpty ? 2 : 1)
            }
            // The directory's files, less the file itself and the segment it replaces.
            let directory: DefinitionLoader.Result
            do {
                directory = try DefinitionLoader.load(directory: location.definitions)
            } catch {
                printError("error: \(error.description)")
                throw ExitCode(2)
            }
            let replaced = directory.definitions.segments.first { $0.definition.name == segment.name && $0.definition.tenantID == segment.tenantID }?.file
            let standardized = (file as NSString).standardizingPath
            let inputs: [(path: String, bytes: [UInt8])] = try DefinitionLoader.definitionFiles(in: location.definitions)
                .filter { $0 != replaced && ($0 as NSString).standardizingPath != standardized }
                .map { ($0, Array(FileManager.default.contents(atPath: $0) ?? Data())) }
            let loaded = DefinitionLoader.load(files: inputs + [(file, Array(bytes))], environment: ProcessInfo.processInfo.environment)
            let errors = loaded.diagnostics.filter { $0.severity == .error }
            guard errors.isEmpty else {
                for diagnostic in errors { printError(diagnostic.formatted) }
                throw ExitCode(1)
            }
            let store = try location.openStore(settings: loaded.definitions.settings(for: Tenant.defaultID), existing: true)
            let runtime = Runtime(definitions: loaded.definitions, environment: ProcessInfo.processInfo.environment)
            let evaluator = SegmentEvaluator(definitions: loaded.definitions, runtime: runtime)
            let started = ContinuousClock.now
            let (count, members) = try await evaluator.preview(segment, store: store, asOf: instant, sample: sample)
            let elapsed = ContinuousClock.now - started
            let profiles = try await store.read { reader in try members.compactMap { try reader.profile(tenant: segment.tenantID, id: $0) } }
            let churn = runtime.tenants[segment.tenantID]?.churnPeriodDays ?? SettingsDefinition.defaultChurnPeriodDays
            // The proleptic Gregorian calendar, as --as-of was read (Foundation's formatter goes Julian before 1582).
            let asOfText = Instant.format(milliseconds: instant)
            switch format {
            case .json:
                let report: JSONValue = [
                    "segment": .string(segment.name), "tenant": .string(segment.tenantID), "as_of": .string(asOfText),
                    "profile_count": .number(Double(count)),
                    "sample": .array(profiles.map { profile in
                        ["id": .string(profile.id), "lifecycle_stage": .string(profile.lifecycleStage(at: instant, churnPeriodDays: churn).rawValue),
                         "canonical_type": profile.canonicalType.map(JSONValue.string) ?? .null, "canonical_hash": profile.canonicalHash.map(JSONValue.string) ?? .null]
                    }),
                ]
                print(report.jsonText(pretty: true))
            case .text:
                print("\(segment.name): \(count) profile\(count == 1 ? "" : "s") as of \(asOfText) (computed in \(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000) ms, not saved)")
                for profile in profiles {
                    let identity = profile.canonicalType.map { "\($0) \(profile.canonicalHash?.prefix(12) ?? "")…" } ?? "no identifier"
                    print("  \(profile.id)  \(profile.lifecycleStage(at: instant, churnPeriodDays: churn).rawValue)  \(identity)")
                }
            }
        }
    }
}
