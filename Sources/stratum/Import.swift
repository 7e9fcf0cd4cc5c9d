import ArgumentParser
import Foundation
import StratumDefinitions
import StratumEngine
import StratumStore

extension Stratum {
    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Import Segment-format JSONL or CRM CSV through the ingestion pipeline.",
            discussion: """
                JSONL: one Segment message per line (with its type). CSV: a header row; the Source's
                csv.columns maps columns to userId, anonymousId, timestamp, traits.<name> or
                context.externalIds.<type>, and each row becomes an identify call. Messages without a
                messageId get one derived from their content, so importing a file twice stores it once.
                Lines that cannot be imported are reported as FILE:LINE:COLUMN and skipped; the exit
                code is then 1.
                """
        )

        @Argument(help: "The file to import (.jsonl, .ndjson or .csv).")
        var file: String

        @Option(help: "The Source definition the data comes from.")
        var source: String

        @Option(help: "The tenant of the source.")
        var tenant = Tenant.defaultID

        @Option(help: "jsonl or csv (default: from the file extension).")
        var format: String?

        @OptionGroup var location: StoreOptions

        func run() async throws {
            let importFormat = try resolvedFormat()
            guard let data = FileManager.default.contents(atPath: file) else {
                printError("error: cannot read \(file)")
                throw ExitCode(2)
            }
            let loaded = try location.loadDefinitions()
            let runtime = Runtime(definitions: loaded.definitions, environment: ProcessInfo.processInfo.environment)
            guard let sourceRuntime = runtime.source(named: source, tenant: tenant) else {
                let known = runtime.sources.values.filter { $0.tenant == tenant }.map(\.name).sorted()
                printError("error: no Source \"\(source)\" in tenant \(tenant); sources: \(known.joined(separator: ", "))")
                throw ExitCode(2)
            }
            let store = try location.openStore(settings: loaded.definitions.settings(for: Tenant.defaultID))
            let importer = Importer(store: store, pipeline: IngestionPipeline(runtime: runtime), source: sourceRuntime)
            let bar = ProgressBar(total: data.count, enabled: isatty(STDERR_FILENO) == 1)
            let started = ContinuousClock.now
            let summary = try await importer.run(Array(data), format: importFormat, fileName: URL(fileURLWithPath: file).lastPathComponent) { consumed in bar.update(consumed) }
            bar.finish()
            for problem in summary.problems {
                printError("\(file):\(problem.line):\(problem.column): error: \(problem.message)")
            }
            let seconds = (ContinuousClock.now - started).components.seconds
            print("\(file): \(summary.stored) stored, \(summary.duplicates) duplicate\(summary.duplicates == 1 ? "" : "s") skipped, \(summary.problems.count) error\(summary.problems.count == 1 ? "" : "s") (\(seconds) s)")
            if !summary.problems.isEmpty { throw ExitCode(1) }
        }

        func resolvedFormat() throws -> Importer.Format {
            if let format {
                guard let parsed = Importer.Format(rawValue: format) else { throw ValidationError("--format must be jsonl or csv") }
                return parsed
            }
            let lowered = file.lowercased()
            if lowered.hasSuffix(".csv") { return .csv }
            if lowered.hasSuffix(".jsonl") || lowered.hasSuffix(".ndjson") { return .jsonl }
            throw ValidationError("cannot tell the format of \(file) from its extension; pass --format jsonl or --format csv")
        }
    }
}

/// A one-line progress bar on standard error, drawn only on a terminal.
final class ProgressBar {
    let total: Int
    let enabled: Bool
    let started = ContinuousClock.now

    init(total: Int, enabled: Bool) {
        self.total = max(total, 1)
        self.enabled = enabled
    }

    func update(_ done: Int) {
        guard enabled else { return }
        let fraction = min(1, Double(done) / Double(total))
        let width = 30
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        FileHandle.standardError.write(Data("\r[\(bar)] \(Int(fraction * 100))% of \(total / 1024) KiB".utf8))
    }

    func finish() {
        guard enabled else { return }
        update(total)
        FileHandle.standardError.write(Data("\n".utf8))
    }
}
