import Foundation
import StratumDefinitions
import StratumEngine
import StratumJSON
import StratumStore
import Testing

/// The writer's in-memory identifier and profile lookups never disagree with
/// the store: not after a rollback, not after another connection's commit,
/// not after traits are written.
struct WriterCacheTests {
    @Test func aRolledBackProfileIsNotFoundAfterwards() async throws {
        let harness = try EngineHarness()
        struct Abort: Error {}
        let store = harness.store
        // A savepoint that fails after inserting: the transaction goes on without it.
        let found = try await store.write { transaction -> Bool in
            _ = try? transaction.savepoint { () throws -> Void in
                try transaction.insertProfile(ProfileRecord(tenantID: "default", id: "ghost", now: 1, seenAt: 1))
                throw Abort()
            }
            return try transaction.profile(tenant: "default", id: "ghost") != nil
        }
        #expect(found == false)
        // A whole transaction that fails after inserting.
        await #expect(throws: Abort.self) {
            try await store.write { transaction in
                try transaction.insertProfile(ProfileRecord(tenantID: "default", id: "ghost", now: 1, seenAt: 1))
                throw Abort()
            }
        }
        #expect(try await store.write { try $0.profile(tenant: "default", id: "ghost") } == nil)
    }

    @Test func anotherConnectionsCommitIsSeen() async throws {
        let harness = try EngineHarness()
        try await harness.ingest([["type": "track", "anonymousId": "a1", "event": "Viewed", "messageId": "m1"]])
        // Another process (here: another connection to the same file) adds an event for the same visitor.
        let other = try SQLiteStore(path: harness.store.path)
        let pipeline = harness.pipeline
        let source = harness.source
        let message = try MessageParser.parse(["type": "track", "anonymousId": "a1", "event": "Viewed", "messageId": "m2"], type: nil, path: "", receivedAt: EngineHarness.instant("2026-01-01T00:00:01Z"), newMessageID: { "unused" })
        _ = try await other.write { transaction in try pipeline.process([message], source: source, in: transaction) }
        try await harness.ingest([["type": "track", "anonymousId": "a1", "event": "Viewed", "messageId": "m3"]])
        let id = try #require(try await harness.profileID(type: "anonymous_id", value: "a1"))
        #expect(try await harness.profile(id)?.totalEvents == 3)
    }

    @Test func traitsWrittenMeanwhileSurviveTheNextIdentify() async throws {
        let trait = "kind: Trait\nname: views\ntype: count\nevent: Viewed\n"
        let harness = try EngineHarness(definitions: ["t.yaml": trait])
        try await harness.ingest([["type": "track", "userId": "u", "event": "Viewed", "messageId": "m1"]])
        let loaded = DefinitionLoader.load(files: [("t.yaml", Array(trait.utf8))])
        _ = try await DefinitionEvaluator(definitions: loaded.definitions, store: harness.store).refresh(asOf: EngineHarness.instant("2026-06-01T00:00:00Z"))
        // An identify rewrites profile_data (and with it the whole profile row).
        try await harness.ingest([["type": "identify", "userId": "u", "traits": ["plan": "pro"], "messageId": "m2"]])
        let id = try #require(try await harness.profileID(type: "external_id", value: "u"))
        let profile = try #require(try await harness.profile(id))
        #expect(profile.computedTraits["views"] == 1)
        #expect(profile.profileData["plan"] == "pro")
    }
}
