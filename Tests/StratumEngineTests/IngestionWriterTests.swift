import Foundation
import GRDB
import Logging
import StratumEngine
import StratumJSON
import StratumStore
import StratumTestSupport
import Synchronization
import Testing

/// Group commit: requests that share a transaction are each stored or
/// refused as a whole, and one request's failure is not the others'.
struct IngestionWriterTests {
    @Test func aFailingRequestDoesNotTakeItsGroupWithIt() async throws {
        let harness = try EngineHarness()
        // A store fault for one event name, put into the real SQLite file.
        let database = try DatabaseQueue(path: harness.store.path)
        try await database.write { db in
            try db.execute(sql: "CREATE TRIGGER poison BEFORE INSERT ON events WHEN NEW.event_name = 'Poison' BEGIN SELECT RAISE(ABORT, 'poisoned event'); END")
        }
        let log = LogLines()
        let writer = IngestionWriter(store: harness.store, pipeline: harness.pipeline, logger: Logger(label: "test") { _ in log })
        let source = harness.source
        func messages(_ items: [(id: String, event: String)]) throws -> [IncomingMessage] {
            try items.map { item in
                try MessageParser.parse(["type": "track", "anonymousId": .string("visitor-\(item.id)"), "event": .string(item.event), "messageId": .string(item.id)],
                                        type: nil, path: "", receivedAt: EngineHarness.instant("2026-01-01T00:00:00Z"), newMessageID: { item.id })
            }
        }
        let good = try messages([("good-1", "Viewed"), ("good-2", "Viewed")])
        let bad = try messages([("bad-1", "Viewed"), ("bad-2", "Poison")])

        // Both requests wait in the queue before the writer starts, so its first group holds both.
        let goodRequest = Task { try await writer.submit(good, source: source) }
        let badRequest = Task { try await writer.submit(bad, source: source) }
        try await Task.sleep(for: .milliseconds(300))
        let running = Task { try await writer.run() }

        let stored = try await goodRequest.value
        #expect(stored.count == 2)
        #expect(stored.allSatisfy { if case .stored = $0 { true } else { false } })
        await #expect(throws: IngestionWriter.WriterError.self) { try await badRequest.value }
        running.cancel()
        _ = await running.result

        #expect(log.messages.contains { $0.contains("A group commit failed; its requests are committed one at a time.") && $0.contains("requests=2") })
        // The failed request is refused whole: its valid message is not stored either.
        let keys = try await database.read { try String.fetchAll($0, sql: "SELECT idempotency_key FROM events ORDER BY idempotency_key") }
        #expect(keys == ["good-1", "good-2"])
        let profiles = try await database.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM profiles") }
        #expect(profiles == 2)
    }
}

/// A log handler that keeps every line, with its metadata, for assertions.
final class LogLines: LogHandler, Sendable {
    private let lines = Mutex<[String]>([])

    var messages: [String] { lines.withLock { $0 } }

    var metadata: Logger.Metadata {
        get { [:] }
        set {}
    }

    var logLevel: Logger.Level {
        get { .debug }
        set {}
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { nil }
        set {}
    }

    func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String, function: String, line: UInt) {
        let details = (metadata ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        lines.withLock { $0.append("\(message) \(details)") }
    }
}
