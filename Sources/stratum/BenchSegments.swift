import ArgumentParser
import Foundation
import StratumDefinitions
import StratumEngine
import StratumStore

extension Stratum {
    struct BenchSegments: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "segments",
            abstract: "Refresh a definitions directory over generated profiles and events; time every definition.",
            discussion: """
                Writes deterministic shop data straight into a fresh store (profiles with email and country,
                page views, product views, carts and purchases spread over a year), then runs every trait,
                RFM model and segment of the definitions as `stratum refresh` does, printing each run's
                duration and the peak RSS.
                """
        )

        @Option(help: "Profiles to generate.")
        var profiles = 1_000_000

        @Option(help: "Events to generate.")
        var events = 10_000_000

        @Option(help: "The definitions to refresh.")
        var definitions = "definitions"

        @Option(help: "Keep the store here (reused if it exists with data) instead of a temporary file.")
        var store: String?

        func run() async throws {
            let directory = FileManager.default.temporaryDirectory.appending(path: "stratum-bench-segments-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let path = store ?? directory.appending(path: "bench.sqlite").path
            let loaded = try DefinitionLoader.load(directory: definitions)
            guard loaded.isValid else {
                for diagnostic in loaded.diagnostics where diagnostic.severity == .error { printError(diagnostic.formatted) }
                throw ExitCode(1)
            }
            let sqlite = try SQLiteStore(path: path)
            let existing = try await sqlite.read { try $0.countProfiles(tenant: Tenant.defaultID) }
            var started = ContinuousClock.now
            if existing == 0 {
                try await sqlite.generateShopData(profiles: profiles, events: events)
                print("generated \(profiles) profiles and \(events) events in \(Self.seconds(ContinuousClock.now - started)) s")
            } else {
                print("reusing \(path) (\(existing) profiles)")
            }
            let asOf = Milliseconds(Instant.parse("2026-11-01T00:00:00Z")! * 1000)
            let evaluator = DefinitionEvaluator(definitions: loaded.definitions, store: sqlite, runtime: Runtime(definitions: loaded.definitions, environment: [:]))
            started = ContinuousClock.now
            let runs = try await evaluator.refresh(asOf: asOf)
            for run in runs {
                print("  \(run.kind.rawValue) \(run.name): \(Self.seconds(run.duration)) s, \(run.profiles) profiles")
            }
            print("full refresh of \(runs.count) definitions: \(Self.seconds(ContinuousClock.now - started)) s; peak RSS \(Int(peakResidentMiB())) MiB")
        }

        static func seconds(_ duration: Swift.Duration) -> String {
            String(format: "%.2f", Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18)
        }
    }
}
