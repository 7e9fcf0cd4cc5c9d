import ArgumentParser
import Foundation
import StratumDefinitions
import StratumEngine
import StratumJSON
import StratumStore

/// Parses `--as-of`; nil means now.
func asOfInstant(_ text: String?) throws -> Milliseconds {
    guard let text else { return IngestionPipeline.systemClock() }
    guard let seconds = Instant.parse(text) else {
        throw ValidationError("--as-of must be an ISO-8601 date like 2026-01-31 or 2026-01-31T12:00:00Z")
    }
    return Milliseconds((seconds * 1000).rounded())
}

extension Stratum {
    struct Refresh: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Compute every trait, RFM model and segment now, in dependency order, and store the results.",
            discussion: """
                Traits first, then RFM models, then dynamic and computed segments (each after the segments it
                refers to; drafts and static segments are skipped). Segment runs record who entered and exited.
                Prints each run: the profiles its events gave a value (the others get the trait's default,
                such as 0 or false; members, for segments) and its duration.
                """
        )

        @Option(help: "Compute as of this instant (ISO-8601; default: now).")
        var asOf: String?

        @OptionGroup var location: StoreOptions

        func run() async throws {
            let instant = try asOfInstant(asOf)
            let loaded = try location.loadDefinitions()
            let store = try location.openStore(settings: loaded.definitions.settings(for: Tenant.defaultID), existing: true)
            let runtime = Runtime(definitions: loaded.definitions, environment: ProcessInfo.processInfo.environment)
            let runs = try await DefinitionEvaluator(definitions: loaded.definitions, store: store, runtime: runtime).refresh(asOf: instant)
            for run in runs {
                let milliseconds = Double(run.duration.components.seconds) * 1000 + Double(run.duration.components.attoseconds) / 1e15
                let changes = run.kind == .segment ? " (+\(run.entered) −\(run.exited))" : ""
                print(String(format: "%@ %@/%@: %d profile%@%@ in %.1f ms", run.kind.rawValue, run.tenant, run.name, run.profiles, run.profiles == 1 ? "" : "s", changes, milliseconds))
            }
        }
    }

    struct TraitCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "trait",
            abstract: "Show the distribution of a computed trait's stored values."
        )

        @Argument(help: "The trait's name.")
        var name: String

        @Option(help: "The tenant.")
        var tenant = Tenant.defaultID

        @OptionGroup var location: StoreOptions

        func run() async throws {
            let store = try location.storeHolding(.trait, name: name, tenant: tenant) { $0.traits.map(\.definition) }
            let values = try await store.traitValues(tenant: tenant, path: [name])
            print(Distribution(values).render(title: "trait \(name)"))
        }
    }

    struct RFMCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rfm",
            abstract: "Show an RFM model's stored segments and score distributions."
        )

        @Argument(help: "The RFM model's name.")
        var name: String

        @Option(help: "The tenant.")
        var tenant = Tenant.defaultID

        @OptionGroup var location: StoreOptions

        func run() async throws {
            let store = try location.storeHolding(.rfm, name: name, tenant: tenant) { $0.rfmModels.map(\.definition) }
            for part in ["segment", "r", "f", "m"] {
                let values = try await store.traitValues(tenant: tenant, path: ["rfm." + name, part])
                print(Distribution(values).render(title: "rfm \(name) \(part)"))
            }
        }
    }
}

extension StoreOptions {
    /// The store, after checking the definitions hold a `kind` named `name` in `tenant` (else exit 2).
    func storeHolding<D: Definition>(_ kind: DefinitionKind, name: String, tenant: String, _ all: (DefinitionSet) -> [D]) throws -> SQLiteStore {
        let loaded = try loadDefinitions()
        guard all(loaded.definitions).contains(where: { $0.name == name && $0.tenantID == tenant }) else {
            printError("error: no \(kind.rawValue) \"\(name)\" in tenant \(tenant)")
            throw ExitCode(2)
        }
        return try openStore(settings: loaded.definitions.settings(for: Tenant.defaultID), existing: true)
    }
}

/// A summary of stored values for people reading a terminal: quantiles when
/// every value is a number, else the most frequent values.
struct Distribution {
    let values: [JSONValue?]

    init(_ values: [JSONValue?]) { self.values = values }

    func render(title: String, limit: Int = 15) -> String {
        let present = values.compactMap { $0 }
        var lines = ["\(title): \(values.count) profile\(values.count == 1 ? "" : "s"), \(present.count) with a value"]
        let numbers = present.compactMap(\.numberValue).sorted()
        if !numbers.isEmpty && numbers.count == present.count {
            func quantile(_ q: Double) -> String { JSONValue.number(numbers[min(numbers.count - 1, Int(q * Double(numbers.count)))]).jsonText() }
            let mean = numbers.reduce(0, +) / Double(numbers.count)
            lines.append("  min \(quantile(0))  p25 \(quantile(0.25))  median \(quantile(0.5))  p75 \(quantile(0.75))  max \(quantile(1))  mean \(String(format: "%.2f", mean))")
            return lines.joined(separator: "\n")
        }
        var counts: [String: Int] = [:]
        for value in present { counts[value.stringValue ?? value.jsonText(), default: 0] += 1 }
        let sorted = counts.sorted { ($1.value, $0.key) < ($0.value, $1.key) }
        let width = min(40, sorted.prefix(limit).map(\.key.count).max() ?? 0)
        for (value, count) in sorted.prefix(limit) {
            let padded = value.count >= width ? value : value + String(repeating: " ", count: width - value.count)
            lines.append(String(format: "  %@  %8d  %5.1f%%", padded, count, Double(count) / Double(max(present.count, 1)) * 100))
        }
        if sorted.count > limit { lines.append("  ... \(sorted.count - limit) more values") }
        return lines.joined(separator: "\n")
    }
}
