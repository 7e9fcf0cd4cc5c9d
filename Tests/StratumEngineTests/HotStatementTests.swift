import Foundation
import StratumEngine
import StratumJSON
import StratumStore
import Testing

/// Ingestion's per-event statements bind values through SQLite's C API
/// (`HotStatements`): text keeps every byte, and a failed statement reports
/// SQLite's reason and leaves the transaction usable.
struct HotStatementTests {
    @Test func textKeepsEmbeddedNULsAndNonASCIIBytes() async throws {
        let harness = try EngineHarness()
        // Bound as C strings these two keys would both end at the NUL and dedupe to one event.
        let keys = ["m\u{0}1", "m\u{0}2"]
        let outcomes = try await harness.ingest(keys.map { key in
            ["type": "track", "anonymousId": "visitor-é", "event": "Café ☕", "messageId": .string(key), "properties": ["note": "a\u{0}b"]]
        })
        #expect(outcomes.allSatisfy { if case .stored = $0 { true } else { false } })
        let counts = try await harness.read { try $0.countEvents(tenant: "default", idempotencyKeys: keys + ["m"]) }
        #expect(counts == ["m\u{0}1": 1, "m\u{0}2": 1, "m": 0])
        let id = try #require(try await harness.profileID(type: "anonymous_id", value: "visitor-é"))
        let events = try await harness.read { try $0.events(tenant: "default", profileID: id, after: nil, limit: 10) }
        #expect(events.count == 2)
        #expect(events.allSatisfy { $0.eventName == "Café ☕" && $0.properties["note"] == "a\u{0}b" })
        // A replay of either key is a duplicate, not a third event.
        let replay = try await harness.ingest([["type": "track", "anonymousId": "visitor-é", "event": "Café ☕", "messageId": "m\u{0}2"]])
        #expect(replay == [.duplicate])
    }

    @Test func aFailedStatementNamesTheConstraintAndTheTransactionGoesOn() async throws {
        let harness = try EngineHarness()
        let stored = try await harness.store.write { transaction -> (String, Bool) in
            try transaction.insertProfile(ProfileRecord(tenantID: "default", id: "p1", now: 1, seenAt: 1))
            let identifier = IdentifierRecord(
                tenantID: "default", id: "i1", profileID: "p1", type: "email", value: nil, hash: String(repeating: "a", count: 64),
                isPrimary: false, confidence: 1, verifiedAt: nil, createdAt: 1)
            try transaction.insertIdentifier(identifier)
            var duplicate = identifier
            duplicate.id = "i2"
            var message = ""
            do {
                try transaction.insertIdentifier(duplicate)
            } catch {
                message = "\(error)"
            }
            // The same statement, reset after its failure, inserts the next row.
            duplicate.hash = String(repeating: "b", count: 64)
            try transaction.insertIdentifier(duplicate)
            return (message, try transaction.identifiers(tenant: "default", profileID: "p1").count == 2)
        }
        #expect(stored.0.contains("UNIQUE constraint failed: profile_identifiers"))
        #expect(stored.1)
    }
}
