import ArgumentParser
import Foundation
import Logging
import Prometheus
import ServiceLifecycle
import StratumDefinitions
import StratumDelivery
import StratumEngine
import StratumServer
import StratumStore
import Synchronization

extension Stratum {
    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the daemon: HTTP ingestion and read API over the SQLite store.",
            discussion: """
                Loads and validates the definitions (any error, or an unset ${env:NAME} secret, stops it),
                runs the store's migrations, then serves, runs traits, RFM models and segments on their
                schedules and delivers signed webhooks, until SIGTERM or SIGINT, which drain in-flight work.
                """
        )

        @OptionGroup var location: StoreOptions

        @Option(help: "Serve on HOST:PORT (default: Settings listen, else 127.0.0.1:8080; port 0 picks a free one).")
        var listen: String?

        @Option(help: "Close a connection that sends nothing for this many seconds (a stalled upload, an idle keep-alive).")
        var idleTimeout = 30

        func validate() throws {
            guard (1...3_600).contains(idleTimeout) else { throw ValidationError("--idle-timeout must be 1...3600 seconds") }
        }

        func run() async throws {
            var logger = Logger(label: "stratum")
            let level = ProcessInfo.processInfo.environment["LOG_LEVEL"]
            logger.logLevel = level.flatMap(Self.logLevel) ?? .info
            if let level, Self.logLevel(level) == nil {
                logger.warning("LOG_LEVEL is not a level; logging at info.", metadata: ["LOG_LEVEL": "\(level)", "levels": "trace, debug, info, notice, warning, error, critical"])
            }
            let loaded = try location.loadDefinitions()
            let settings = loaded.definitions.settings(for: Tenant.defaultID)
            let (host, port) = try Self.address(listen ?? settings?.listen ?? SettingsDefinition.defaultListen)
            let store = try location.openStore(settings: settings)
            // One daemon per store: two would each send every webhook and run every schedule.
            // (CLI commands beside it are fine.) The lock goes with the process.
            let lock = try DaemonLock(store: store.path)
            defer { lock.release() }
            // Definitions do not reload yet: a SIGHUP (systemctl reload, a closed terminal)
            // must not end the daemon, which is its default action.
            signal(SIGHUP, SIG_IGN)
            let hangups = DispatchSource.makeSignalSource(signal: SIGHUP)
            hangups.setEventHandler { logger.warning("SIGHUP ignored: definitions do not reload yet; restart the daemon to apply changes.") }
            hangups.resume()
            defer { hangups.cancel() }
            let environment = ProcessInfo.processInfo.environment
            let state: ServerState
            let registry = PrometheusCollectorRegistry()
            let touched = TouchedProfiles()
            let writer: IngestionWriter
            let evaluator: DefinitionEvaluator
            do {
                let runtime = Runtime(definitions: loaded.definitions, environment: environment)
                writer = IngestionWriter(store: store, pipeline: IngestionPipeline(runtime: runtime), logger: logger, touched: touched)
                evaluator = DefinitionEvaluator(definitions: loaded.definitions, store: store, runtime: runtime)
                state = try ServerState(store: store, writer: writer, definitions: loaded.definitions, environment: environment, evaluator: evaluator, metrics: registry, logger: logger)
            } catch {
                printError("error: the definitions cannot run:\n\(error)")
                throw ExitCode(1)
            }
            let scheduler = Scheduler(evaluator: evaluator, logger: logger, touched: touched)
            let (endpoints, problems) = WebhookEndpoint.endpoints(definitions: loaded.definitions, environment: environment)
            guard problems.isEmpty else {
                printError("error: the definitions cannot run:\n" + problems.joined(separator: "\n"))
                throw ExitCode(1)
            }
            let deliveries = DeliveryWorker(store: store, endpoints: endpoints, logger: logger, metrics: DeliveryMetrics(registry: registry))
            // Scheduled runs and deliveries start once the server listens: a daemon that
            // cannot bind its address records no runs and sends nothing.
            let listening = ListeningGate()
            let app = buildApplication(
                state: state, host: host, port: port,
                services: [writer, AfterListening(scheduler, gate: listening), AfterListening(deliveries, gate: listening)],
                idleTimeout: .seconds(idleTimeout), logger: logger
            ) { port in
                // Tools and tests read this line to find the port.
                let authority = host.contains(":") ? "[\(host)]" : host
                FileHandle.standardOutput.write(Data("stratum: listening on http://\(authority):\(port)\n".utf8))
                listening.open()
            }
            logger.info("Starting.", metadata: ["definitions": "\(loaded.definitions.count)", "store": "\(store.path)"])
            var configuration = ServiceGroupConfiguration(services: [.init(service: app)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
            // Past this, what is still running is cancelled: a shutdown always ends.
            // Committed events are already durable; a request cut off was never acknowledged.
            configuration.maximumGracefulShutdownDuration = .seconds(60)
            let group = ServiceGroup(configuration: configuration)
            do {
                try await group.run()
            } catch {
                // Most often the address: "bind(descriptor:ptr:bytes:): Address already in use (errno: 98)".
                printError("error: the daemon stopped serving \(host):\(port): \(error)")
                throw ExitCode(2)
            }
            logger.info("Stopped.")
        }

        /// `LOG_LEVEL` in any case; `warn` is `warning`.
        static func logLevel(_ text: String) -> Logger.Level? {
            let name = text.lowercased()
            return Logger.Level(rawValue: name == "warn" ? "warning" : name)
        }

        static func address(_ text: String) throws -> (String, Int) {
            guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
                throw ValidationError("--listen must be HOST:PORT, e.g. 127.0.0.1:8080")
            }
            var host = String(text[..<colon])
            if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            return (host, port)
        }
    }
}

/// Where the definitions and the store are, shared by the commands that use them.
struct StoreOptions: ParsableArguments {
    @Option(help: "The definitions directory.")
    var definitions = "definitions"

    @Option(help: "The SQLite store file (default: Settings store.path, else stratum.sqlite).")
    var store: String?

    /// Loads the definitions; prints every problem and exits 1 if they are invalid.
    func loadDefinitions() throws -> DefinitionLoader.Result {
        let result: DefinitionLoader.Result
        do {
            result = try DefinitionLoader.load(directory: definitions)
        } catch {
            printError("error: \(error.description)")
            throw ExitCode(2)
        }
        for diagnostic in result.diagnostics where diagnostic.severity == .error { printError(diagnostic.formatted) }
        guard result.isValid else {
            printError("error: \(definitions) has \(result.diagnostics.errorCount) error(s); run `stratum validate \(definitions)`")
            throw ExitCode(1)
        }
        return result
    }

    /// The store; with `existing`, a missing file is an error (exit 2) rather
    /// than a new, empty store: commands that only read must not answer
    /// "0 profiles" for a mistyped path.
    func openStore(settings: SettingsDefinition?, existing: Bool = false) throws -> SQLiteStore {
        let path = store ?? settings?.store?.path ?? SettingsDefinition.defaultStorePath
        if existing, !FileManager.default.fileExists(atPath: path) {
            printError("error: there is no store at \(path); give --store, or create it with `stratum run` or `stratum import`")
            throw ExitCode(2)
        }
        do {
            return try SQLiteStore(path: path)
        } catch {
            // SQLite's message; the statement (a whole migration) is no help here.
            printError("error: cannot open the store \(path): \(StoreError.from(error).message)")
            throw ExitCode(2)
        }
    }
}

/// An exclusive lock on `<store>.daemon.lock`, held while `stratum run` lives.
final class DaemonLock: Sendable {
    let descriptor: Int32

    init(store: String) throws {
        let path = store + ".daemon.lock"
        descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            printError("error: cannot create the lock file \(path): \(String(cString: strerror(errno)))")
            throw ExitCode(2)
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(descriptor)
            printError("error: another `stratum run` serves the store \(store); one daemon per store (two would send every webhook twice). CLI commands may run beside it.")
            throw ExitCode(2)
        }
    }

    func release() {
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }
}

/// Opened once the HTTP server listens.
final class ListeningGate: Sendable {
    private let state = Mutex<(open: Bool, waiting: [UUID: CheckedContinuation<Void, Never>])>((false, [:]))

    func open() {
        let waiting = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.open = true
            defer { state.waiting = [:] }
            return Array(state.waiting.values)
        }
        for continuation in waiting { continuation.resume() }
    }

    /// Returns once the gate is open, or once the task is cancelled.
    func wait() async {
        let id = UUID()
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let now = state.withLock { state -> Bool in
                    if state.open || Task.isCancelled { return true }
                    state.waiting[id] = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiting.removeValue(forKey: id) }?.resume()
        }
    }
}

/// Runs `service` once `gate` opens; ends at once on graceful shutdown or
/// cancellation before then.
struct AfterListening: Service {
    let service: any Service
    let gate: ListeningGate

    init(_ service: any Service, gate: ListeningGate) {
        self.service = service
        self.gate = gate
    }

    func run() async throws {
        let opened = await withTaskGroup(of: Bool.self) { group in
            group.addTask { await gate.wait(); return true }
            group.addTask {
                // Shutdown (or cancellation) before the server listens: nothing to run.
                try? await gracefulShutdown()
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
        guard opened, !Task.isCancelled, !Task.isShuttingDownGracefully else { return }
        try await service.run()
    }
}
