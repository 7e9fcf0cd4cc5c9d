import ArgumentParser
import Foundation
import StratumDefinitions
import StratumEngine
import StratumJSON
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
                duration and the peak RSS. With --duckdb, scripts/bench-duckdb.py (pip: duckdb) then
                loads the same source data into DuckDB, runs SQL equivalent to every definition there,
                checks that every value and member agrees with what this run stored, and the two are
                printed side by side, with the ratio the target is set against.
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

        @Flag(help: "Also run the equivalent SQL in DuckDB over the same data and compare.")
        var duckdb = false

        @Option(help: "The DuckDB side of the comparison.")
        var duckdbScript = "scripts/bench-duckdb.py"

        func validate() throws {
            guard (1...100_000_000).contains(profiles) else { throw ValidationError("--profiles must be 1...100000000") }
            guard (0...1_000_000_000).contains(events) else { throw ValidationError("--events must be 0...1000000000") }
        }

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
            let total = ContinuousClock.now - started
            for run in runs {
                print("  \(run.kind.rawValue) \(run.name): \(Self.seconds(run.duration)) s, \(run.profiles) profiles")
            }
            print("full refresh of \(runs.count) definitions: \(Self.seconds(total)) s; peak RSS \(Int(peakResidentMiB())) MiB")
            if duckdb { try compareWithDuckDB(path: path, asOf: "2026-11-01T00:00:00Z", runs: runs, total: total) }
        }

        /// Runs the DuckDB script over the same store and prints both sides.
        func compareWithDuckDB(path: String, asOf: String, runs: [DefinitionEvaluator.Run], total: Swift.Duration) throws {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", duckdbScript, "--store", path, "--as-of", asOf, "--definitions", definitions, "--json", "--verify"]
            let output = Pipe()
            process.standardOutput = output
            try process.run()
            let data = output.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            // Exit 1 with a report: the results differ from the ones stored by this run (printed on stderr).
            guard let report = try? JSONParser.parse(Array(data)), let duckTotal = report["total_seconds"]?.numberValue else {
                printError("error: \(duckdbScript) failed (exit \(process.terminationStatus)); install DuckDB with scripts/install-dependencies --with-bench-tools")
                throw ExitCode(1)
            }
            let version = report["duckdb_version"]?.stringValue ?? "?"
            let load = report["load_seconds"]?.numberValue ?? 0
            print("DuckDB \(version) over the same data (loading it took \(String(format: "%.2f", load)) s, not counted):")
            var duck: [String: (Double, Int)] = [:]
            for entry in report["definitions"]?.arrayValue ?? [] {
                guard let kind = entry["kind"]?.stringValue, let name = entry["name"]?.stringValue else { continue }
                duck[kind + " " + name] = (entry["seconds"]?.numberValue ?? 0, Int(entry["profiles"]?.numberValue ?? -1))
            }
            for run in runs {
                let key = run.kind.rawValue + " " + run.name
                guard let (seconds, profiles) = duck[key] else {
                    print("  \(key): stratum \(Self.seconds(run.duration)) s; not in the DuckDB run")
                    continue
                }
                let agreement = profiles == run.profiles ? "same profiles" : "DIFFERENT profiles: stratum \(run.profiles), duckdb \(profiles)"
                print("  \(key): stratum \(Self.seconds(run.duration)) s, duckdb \(String(format: "%.2f", seconds)) s (\(agreement))")
            }
            let ratio = Self.value(total) / max(duckTotal, 0.001)
            print("full refresh: stratum \(Self.seconds(total)) s, duckdb \(String(format: "%.2f", duckTotal)) s: stratum takes \(String(format: "%.1f", ratio))x DuckDB's time (target: at most 2x)")
            guard process.terminationStatus == 0 else {
                printError("error: DuckDB's results differ from stratum's for the same data (listed above)")
                throw ExitCode(1)
            }
        }

        static func value(_ duration: Swift.Duration) -> Double {
            Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        }

        static func seconds(_ duration: Swift.Duration) -> String {
            String(format: "%.2f", value(duration))
        }
    }
}
