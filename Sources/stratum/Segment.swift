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

        @Option(help: "text or json.")
        var format: Stratum.Validate.Format = .text

        @OptionGroup var location: StoreOptions

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
            let store = try location.openStore(settings: loaded.definitions.settings(for: Tenant.defaultID))
            let runtime = Runtime(definitions: loaded.definitions, environment: ProcessInfo.processInfo.environment)
            let evaluator = SegmentEvaluator(definitions: loaded.definitions, runtime: runtime)
            let started = ContinuousClock.now
            let (count, members) = try await evaluator.preview(segment, store: store, asOf: instant, sample: sample)
            let elapsed = ContinuousClock.now - started
            let profiles = try await store.read { reader in try members.compactMap { try reader.profile(tenant: segment.tenantID, id: $0) } }
            let churn = runtime.tenants[segment.tenantID]?.churnPeriodDays ?? SettingsDefinition.defaultChurnPeriodDays
            let asOfText = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(instant) / 1000))
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
            case .text, .github:
                print("\(segment.name): \(count) profile\(count == 1 ? "" : "s") as of \(asOfText) (computed in \(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000) ms, not saved)")
                for profile in profiles {
                    let identity = profile.canonicalType.map { "\($0) \(profile.canonicalHash?.prefix(12) ?? "")…" } ?? "no identifier"
                    print("  \(profile.id)  \(profile.lifecycleStage(at: instant, churnPeriodDays: churn).rawValue)  \(identity)")
                }
            }
        }
    }
}

extension Stratum.Segment {
    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add, remove or replace a static segment's members from a CSV list.",
            discussion: """
                FILE has a header row and one person per row, named by profile_id or by an identifier
                type of the tenant's Identity (email, phone, external_id, ...), normalised and hashed as
                ingestion does; a row's first non-empty column counts. Merged-away profile ids follow
                their survivor. Rows naming no stored profile are reported as FILE:LINE and skipped.
                The changes are recorded like any segment run and reach subscribed webhooks.
                Exit codes: 0 applied, 1 applied with skipped rows, 2 usage, I/O or format error.
                """
        )

        enum Mode: String, ExpressibleByArgument, CaseIterable {
            case add, remove, replace
        }

        @Argument(help: "The static segment.")
        var segment: String

        @Argument(help: "The CSV list.")
        var file: String

        @Option(help: "add the listed profiles, remove them, or replace the members with them.")
        var mode: Mode = .add

        @Option(help: "The tenant of the segment.")
        var tenant = Tenant.defaultID

        @Flag(help: "Report what would change without changing anything.")
        var dryRun = false

        @OptionGroup var location: StoreOptions

        func run() async throws {
            let loaded = try location.loadDefinitions()
            let segments = loaded.definitions.segments.map(\.definition).filter { $0.tenantID == tenant }
            guard let definition = segments.first(where: { $0.name == segment }) else {
                let hint = Suggestion.closest(to: segment, in: segments.map(\.name)).map { "; did you mean \($0)?" } ?? ""
                printError("error: no Segment \"\(segment)\" in tenant \(tenant)\(hint)")
                throw ExitCode(2)
            }
            guard definition.effectiveType == .static else {
                printError("error: segment \(segment) is \(definition.effectiveType.rawValue); only static segments take members from a list (its rules decide who belongs)")
                throw ExitCode(2)
            }
            guard let data = FileManager.default.contents(atPath: file) else {
                printError("error: cannot read \(file)")
                throw ExitCode(2)
            }
            let runtime = Runtime(definitions: loaded.definitions, environment: ProcessInfo.processInfo.environment)
            guard let identity = runtime.tenants[tenant]?.identity else {
                printError("error: tenant \(tenant) is not configured")
                throw ExitCode(2)
            }
            let list: StaticMemberList
            do {
                list = try StaticMemberList(csv: Array(data), identity: identity)
            } catch {
                printError("\(file):\(error.line):\(error.column): error: \(error.message)")
                throw ExitCode(2)
            }
            let store = try location.openStore(settings: loaded.definitions.settings(for: Tenant.defaultID))
            let tenantID = tenant
            let (ids, problems) = try await store.read { reader in try list.resolve(tenant: tenantID, in: reader) }
            for problem in problems { printError("\(file):\(problem.line): warning: \(problem.message); row skipped") }
            let matched = Set(ids).count
            let summary = "\(file): \(list.entries.count + list.problems.count) rows, \(matched) profile\(matched == 1 ? "" : "s") matched, \(problems.count) skipped"
            if dryRun {
                let current = Set(try await store.segmentMembers(tenant: tenant, segment: segment, after: nil, limit: .max))
                let wanted = Set(ids)
                let (entering, exiting) = switch mode {
                case .add: (wanted.subtracting(current).count, 0)
                case .remove: (0, wanted.intersection(current).count)
                case .replace: (wanted.subtracting(current).count, current.subtracting(wanted).count)
                }
                print("\(summary); would enter \(entering), exit \(exiting) (dry run, nothing changed)")
            } else {
                let evaluator = DefinitionEvaluator(definitions: loaded.definitions, store: store, runtime: runtime)
                let run = try await evaluator.changeMembers(
                    of: definition, add: mode == .remove ? [] : ids, remove: mode == .remove ? ids : [], replace: mode == .replace)
                print("\(summary); \(run.entered) entered, \(run.exited) exited; \(segment) has \(run.profiles) member\(run.profiles == 1 ? "" : "s")")
            }
            if !problems.isEmpty { throw ExitCode(1) }
        }
    }
}
