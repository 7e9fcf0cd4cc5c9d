import Foundation
import Logging
import ServiceLifecycle
import StratumDefinitions
import StratumEngine
import StratumServer
import StratumStore
import Synchronization

/// The daemon as the ingestion benchmarks run it: in-process on 127.0.0.1,
/// a `bench` server_api source (write key `bench-key`, no practical rate
/// limit) and Purchase as the purchase event, plus any extra definitions.
/// With `scheduled`, the scheduler runs too, with incremental segment runs.
struct BenchDaemon {
    static let writeKey = "bench-key"
    static let authorization = "Basic " + Data("\(writeKey):".utf8).base64EncodedString()

    let store: SQLiteStore
    let runtime: Runtime
    let port: Int
    private let group: ServiceGroup
    private let server: Task<Void, any Error>

    static func start(store: SQLiteStore, extraDefinitions: [(String, String)] = [], scheduled: Bool = false) async throws -> BenchDaemon {
        let environment = ["BENCH_KEY": writeKey]
        let files = [
            ("source.yaml", "kind: Source\nname: bench\ntype: server_api\nwrite_key: ${env:BENCH_KEY}\nrate_limit: {requests_per_minute: 100000000}\n"),
            ("settings.yaml", "kind: Settings\nname: stratum\npurchase_events: [Purchase]\nrevenue_property: total\n"),
        ] + extraDefinitions
        let loaded = DefinitionLoader.load(files: files.map { ($0.0, Array($0.1.utf8)) }, environment: environment)
        guard loaded.isValid else { throw StoreError("the bench definitions are invalid: \(loaded.diagnostics.map(\.formatted))") }
        var logger = Logger(label: "bench")
        logger.logLevel = ProcessInfo.processInfo.environment["LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .warning
        let runtime = Runtime(definitions: loaded.definitions, environment: environment)
        let touched = scheduled ? TouchedProfiles() : nil
        let writer = IngestionWriter(store: store, pipeline: IngestionPipeline(runtime: runtime), logger: logger, touched: touched)
        var services: [any Service] = [writer]
        var evaluator: DefinitionEvaluator?
        if scheduled {
            let scheduling = DefinitionEvaluator(definitions: loaded.definitions, store: store, runtime: runtime)
            services.append(Scheduler(evaluator: scheduling, logger: logger, touched: touched))
            evaluator = scheduling
        }
        let state = try ServerState(store: store, writer: writer, definitions: loaded.definitions, environment: environment, evaluator: evaluator)
        let portBox = PortBox()
        let app = buildApplication(state: state, host: "127.0.0.1", port: 0, services: services, logger: logger) { port in portBox.set(port) }
        let group = ServiceGroup(configuration: .init(services: [.init(service: app)], logger: logger))
        let server = Task { try await group.run() }
        return BenchDaemon(store: store, runtime: runtime, port: try await portBox.wait(), group: group, server: server)
    }

    /// Drains in-flight work and stops.
    func stop() async {
        await group.triggerGracefulShutdown()
        _ = await server.result
    }
}

/// The port the in-process server bound, once it is listening.
final class PortBox: Sendable {
    private let port = Mutex<Int?>(nil)

    func set(_ value: Int) { port.withLock { $0 = value } }

    func wait() async throws -> Int {
        for _ in 0..<3_000 {
            if let value = port.withLock({ $0 }) { return value }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw StoreError("the server did not start within 30 s")
    }
}
