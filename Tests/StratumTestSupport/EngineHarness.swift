import Foundation
import StratumDefinitions
import StratumEngine
import StratumJSON
import StratumStore
import Synchronization

/// A real SQLite store in a fresh temporary file, and a pipeline over the
/// given definitions with deterministic ids and a settable clock.
public final class EngineHarness: Sendable {
    public let directory: URL
    public let store: SQLiteStore
    public let pipeline: IngestionPipeline
    public let source: SourceRuntime
    public let runtime: Runtime
    private let now: Locked<Milliseconds>

    public static let baseDefinitions = [
        "source.yaml": "kind: Source\nname: web\ntype: server_api\nwrite_key: ${env:WEB_KEY}\n",
        "settings.yaml": "kind: Settings\nname: stratum\npurchase_events: [Purchase]\nrevenue_property: total\nchurn_period_days: 90\n",
    ]

    public init(definitions extra: [String: String] = [:]) throws {
        directory = FileManager.default.temporaryDirectory.appending(path: "stratum-engine-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        // Three profiles per evaluation write transaction: the hand-built fixtures span several.
        store = try SQLiteStore(path: directory.appending(path: "store.sqlite").path, writeChunk: 3)
        let loaded = Self.load(extra)
        precondition(loaded.isValid, "\(loaded.diagnostics.map(\.formatted))")
        runtime = Runtime(definitions: loaded.definitions, environment: ["WEB_KEY": "k"])
        source = runtime.source(named: "web")!
        let counter = Locked(0)
        let now = Locked<Milliseconds>(Self.instant("2026-01-01T00:00:00Z"))
        self.now = now
        pipeline = IngestionPipeline(
            runtime: runtime,
            newID: { counter.withLock { $0 += 1; return String(format: "id-%06d", $0) } },
            clock: { now.withLock { $0 } })
    }

    deinit { try? FileManager.default.removeItem(at: directory) }

    /// `extra` loaded beside the base definitions, as the harness loads them.
    public static func load(_ extra: [String: String], environment: [String: String] = ["WEB_KEY": "k"]) -> DefinitionLoader.Result {
        DefinitionLoader.load(files: baseDefinitions.merging(extra) { $1 }.sorted { $0.key < $1.key }.map { ($0.key, Array($0.value.utf8)) }, environment: environment)
    }

    public static func instant(_ text: String) -> Milliseconds { Milliseconds(Instant.parse(text)! * 1000) }

    public func setNow(_ text: String) { now.withLock { $0 = Self.instant(text) } }

    /// Parses messages as the HTTP API would and ingests them in one transaction.
    @discardableResult
    public func ingest(_ messages: [JSONValue]) async throws -> [MessageOutcome] {
        let receivedAt = now.withLock { $0 }
        let counter = Locked(0)
        let parsed = try messages.enumerated().map { index, value in
            try MessageParser.parse(value, type: nil, path: "batch[\(index)]", receivedAt: receivedAt, newMessageID: {
                counter.withLock { $0 += 1; return "generated-\(receivedAt)-\($0)" }
            })
        }
        let pipeline = self.pipeline
        let source = self.source
        return try await store.write { transaction in try pipeline.process(parsed, source: source, in: transaction) }
    }

    public func read<T: Sendable>(_ body: @escaping @Sendable (any StoreReader) throws -> T) async throws -> T {
        try await store.read(body)
    }

    /// The profile holding an identifier.
    public func profileID(type: String, value: String) async throws -> String? {
        let hash = runtime.tenants["default"]!.identity.identifier(type: type, raw: value)!.hash
        return try await read { try $0.matches(tenant: "default", identifiers: [(type, hash)]).first?.profileID }
    }

    public func profile(_ id: String) async throws -> ProfileRecord? {
        try await read { try $0.profile(tenant: "default", id: id) }
    }
}

public func profileID(of outcome: MessageOutcome) -> String? {
    if case .stored(_, let profileID, _, _) = outcome { return profileID }
    return nil
}
