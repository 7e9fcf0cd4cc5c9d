import ArgumentParser
import Foundation
import StratumDefinitions
import StratumEngine
import StratumJSON
import StratumStore

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
                --mode replace refuses a list that matches no profile or had rows skipped (those people
                would leave the segment) unless --allow-skipped is given. A CLI import does not wake a
                running daemon: dynamic segments that refer to this one follow at their next full run
                (the admin API's member changes take effect at once).
                Exit codes: 0 applied, 1 applied with skipped rows, 2 usage, I/O or format error, or a
                replace refused.
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

        @Flag(help: "With --mode replace, apply the list even though some rows were skipped (those people leave the segment).")
        var allowSkipped = false

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
            let store = try location.openStore(settings: loaded.definitions.settings(for: Tenant.defaultID), existing: true)
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
                // Replacing from a list that lost rows would silently drop those people.
                if mode == .replace && ids.isEmpty {
                    printError("error: \(file) names no stored profile; replacing would empty \(segment). Fix the list, or use --mode remove to take people out")
                    throw ExitCode(2)
                }
                if mode == .replace && !problems.isEmpty && !allowSkipped {
                    printError("error: \(problems.count) row\(problems.count == 1 ? " was" : "s were") skipped (above); replacing would take those people out of \(segment) if they are members. Fix the list, or pass --allow-skipped")
                    throw ExitCode(2)
                }
                let evaluator = DefinitionEvaluator(definitions: loaded.definitions, store: store, runtime: runtime)
                let run = try await evaluator.changeMembers(
                    of: definition, add: mode == .remove ? [] : ids, remove: mode == .remove ? ids : [], replace: mode == .replace)
                print("\(summary); \(run.entered) entered, \(run.exited) exited; \(segment) has \(run.profiles) member\(run.profiles == 1 ? "" : "s")")
            }
            if !problems.isEmpty { throw ExitCode(1) }
        }
    }
}
