import Foundation
import GRDB
import StratumCrypto
import StratumDefinitions
import StratumEngine
import StratumJSON
import StratumStore
import Testing

struct IdentityResolutionTests {
    @Test func anonymousBrowsingThenIdentifyAttachesToTheSameProfile() async throws {
        let harness = try EngineHarness()
        let browsing = try await harness.ingest([
            ["type": "page", "anonymousId": "anon-1", "name": "Home", "messageId": "m1"],
            ["type": "track", "anonymousId": "anon-1", "event": "ProductView", "messageId": "m2"],
        ])
        let identified = try await harness.ingest([
            ["type": "identify", "anonymousId": "anon-1", "userId": "user-1", "traits": ["email": "Foo@Example.COM ", "name": "Foo"], "messageId": "m3"],
        ])
        let id = try #require(profileID(of: browsing[0]))
        #expect(profileID(of: browsing[1]) == id)
        #expect(profileID(of: identified[0]) == id)
        let profile = try #require(try await harness.profile(id))
        #expect(profile.totalEvents == 3)
        #expect(profile.externalID == "user-1")
        #expect(profile.storedStage == .known)
        #expect(profile.profileData["name"] == "Foo")
        // The canonical identity is the strongest identifier: external_id.
        #expect(profile.canonicalType == "external_id")
        #expect(profile.canonicalHash == "c6c289e49e9c05b2145860387b73bcb18df43fb09a1e4a4a9713c76c88bb541b")
        // Emails are trimmed, lowercased and SHA-256 hashed (as ad platforms expect).
        let identifiers = try await harness.read { try $0.identifiers(tenant: "default", profileID: id) }
        #expect(identifiers.contains { $0.type == "email" && $0.hash == "321ba197033e81286fedb719d60d4ed5cecaed170733cb4a92013811afc0e3b6" })
        #expect(identifiers.allSatisfy { $0.value == nil }, "raw values are not stored by default")
        #expect(identifiers.filter(\.isPrimary).map(\.type) == ["external_id"])
    }

    @Test func identifyingOnASecondDeviceMergesIntoTheOlderProfileWithItsHistory() async throws {
        let harness = try EngineHarness()
        harness.setNow("2026-01-01T10:00:00Z")
        try await harness.ingest([["type": "identify", "userId": "user-1", "anonymousId": "laptop", "messageId": "m1"]])
        harness.setNow("2026-01-02T10:00:00Z")
        try await harness.ingest([["type": "track", "anonymousId": "phone", "event": "ProductView", "messageId": "m2"]])
        let older = try #require(try await harness.profileID(type: "external_id", value: "user-1"))
        let newer = try #require(try await harness.profileID(type: "anonymous_id", value: "phone"))
        #expect(older != newer)

        harness.setNow("2026-01-03T10:00:00Z")
        let outcome = try await harness.ingest([["type": "identify", "userId": "user-1", "anonymousId": "phone", "messageId": "m3"]])

        guard case .stored(_, let survivor, false, let merged) = outcome[0] else { Issue.record("not stored: \(outcome)"); return }
        #expect(survivor == older)
        #expect(merged == [newer])
        let profile = try #require(try await harness.profile(older))
        #expect(profile.totalEvents == 3)
        #expect(profile.firstSeenAt == EngineHarness.instant("2026-01-01T10:00:00Z"))
        #expect(profile.lastSeenAt == EngineHarness.instant("2026-01-03T10:00:00Z"))
        let events = try await harness.read { try $0.events(tenant: "default", profileID: older, after: nil, limit: 10) }
        #expect(Set(events.map(\.idempotencyKey)) == ["m1", "m2", "m3"])
        #expect(try await harness.profile(newer) == nil)
        let identifiers = try await harness.read { try $0.identifiers(tenant: "default", profileID: older) }
        #expect(identifiers.filter(\.isPrimary).map(\.type) == ["external_id"])
        #expect(profile.canonicalType == "external_id")
        // The absorbed id still resolves, and the merge is on record.
        #expect(try await harness.read { try $0.survivor(tenant: "default", absorbedID: newer) } == older)
        let merges = try await harness.read { try $0.merges(tenant: "default", survivorID: older) }
        #expect(merges.map(\.absorbedID) == [newer])
        #expect(merges.first?.eventsMoved == 1)
    }

    @Test func twoKnownProfilesJoinedByASharedDeviceMergeIntoTheOlder() async throws {
        let harness = try EngineHarness()
        harness.setNow("2026-01-01T00:00:00Z")
        try await harness.ingest([["type": "identify", "anonymousId": "a1", "traits": ["email": "one@example.com"], "context": ["device": ["id": "ipad-7"]], "messageId": "m1"]])
        harness.setNow("2026-02-01T00:00:00Z")
        try await harness.ingest([["type": "identify", "anonymousId": "a2", "traits": ["email": "two@example.com", "plan": "pro"], "messageId": "m2"]])
        let first = try #require(try await harness.profileID(type: "email", value: "one@example.com"))
        let second = try #require(try await harness.profileID(type: "email", value: "two@example.com"))
        #expect(first != second)

        try await harness.ingest([["type": "track", "anonymousId": "a2", "event": "Opened App", "context": ["device": ["id": "ipad-7"]], "messageId": "m3"]])

        #expect(try await harness.profileID(type: "email", value: "two@example.com") == first)
        let profile = try #require(try await harness.profile(first))
        #expect(profile.totalEvents == 3)
        #expect(profile.profileData["plan"] == "pro")
        let identifiers = try await harness.read { try $0.identifiers(tenant: "default", profileID: first) }
        #expect(Set(identifiers.map(\.type)) == ["anonymous_id", "email", "device_id"])
        #expect(identifiers.count == 5)
    }

    /// The absorbed profile's memberships (static ones are kept nowhere else)
    /// go to the survivor: recorded as the absorbed id exiting and the survivor
    /// entering, under the merge's id, and delivered like any segment change.
    @Test func aMergeMovesSegmentMembershipsToTheSurvivor() async throws {
        let harness = try EngineHarness(definitions: [
            "vip.yaml": "kind: Segment\nname: vip\nsegment_type: static\n",
            "both.yaml": "kind: Segment\nname: both\nsegment_type: static\n",
            "hooks.yaml": "kind: Webhook\nname: hooks\nurl: http://127.0.0.1:9/\nsecret: ${env:WEB_KEY}\nevents: [segment.entered, segment.exited]\n",
            "ads.yaml": "kind: Webhook\nname: ads\nurl: http://127.0.0.1:9/\nsecret: ${env:WEB_KEY}\nevents: [segment.entered, segment.exited]\nrequires_consent: ads\nsegments: [vip]\n",
        ])
        harness.setNow("2026-01-01T00:00:00Z")
        try await harness.ingest([["type": "identify", "anonymousId": "a1", "traits": ["email": "one@example.com"], "context": ["device": ["id": "ipad-7"]], "messageId": "m1"]])
        harness.setNow("2026-02-01T00:00:00Z")
        try await harness.ingest([["type": "identify", "anonymousId": "a2", "traits": ["email": "two@example.com"], "context": ["consent": ["ads": true]], "messageId": "m2"]])
        let older = try #require(try await harness.profileID(type: "email", value: "one@example.com"))
        let newer = try #require(try await harness.profileID(type: "email", value: "two@example.com"))
        let at = EngineHarness.instant("2026-02-01T00:00:00Z")
        _ = try await harness.store.changeStaticMembers(tenant: "default", segment: "vip", add: [newer], remove: [], at: at, runID: "r1")
        _ = try await harness.store.changeStaticMembers(tenant: "default", segment: "both", add: [older, newer], remove: [], at: at, runID: "r2")

        harness.setNow("2026-03-01T00:00:00Z")
        try await harness.ingest([["type": "track", "anonymousId": "a2", "event": "Opened App", "context": ["device": ["id": "ipad-7"]], "messageId": "m3"]])
        #expect(try await harness.profileID(type: "email", value: "two@example.com") == older)

        #expect(try await harness.store.segmentMembers(tenant: "default", segment: "vip", after: nil, limit: 10) == [older])
        #expect(try await harness.store.segmentMembers(tenant: "default", segment: "both", after: nil, limit: 10) == [older])
        #expect(try await harness.store.segments(tenant: "default", profileID: older) == ["both", "vip"])
        #expect(try await harness.store.segmentStates(tenant: "default").map { "\($0.segment) \($0.profileCount)" } == ["both 1", "vip 1"])
        let merge = try #require(try await harness.read { try $0.merges(tenant: "default", survivorID: older) }.first)
        let changes = try await harness.store.segmentChanges(tenant: "default").filter { $0.runID == merge.id }
        #expect(changes.map { "\($0.segment) \($0.profileID == older ? "survivor" : "absorbed") \($0.change)" } == [
            "both absorbed exited", "vip absorbed exited", "vip survivor entered",
        ])
        #expect(changes.allSatisfy { $0.changedAt == EngineHarness.instant("2026-03-01T00:00:00Z") })
        let deliveries = try await harness.store.deliveries(tenant: "default", webhook: "hooks").filter { $0.createdAt == EngineHarness.instant("2026-03-01T00:00:00Z") }
        #expect(deliveries.map(\.eventType).sorted() == ["segment.entered", "segment.exited", "segment.exited"])
        // The survivor's entry is delivered once it holds the absorbed profile's identifiers
        // and consents: the ads webhook (ads consent required) hears of it, with both emails.
        let ads = try await harness.store.deliveries(tenant: "default", webhook: "ads").filter { $0.createdAt == EngineHarness.instant("2026-03-01T00:00:00Z") }
        #expect(ads.map(\.eventType).sorted() == ["segment.entered", "segment.exited"])
        let entry = try #require(ads.first { $0.eventType == "segment.entered" })
        let emails = try #require(try JSONParser.parse(entry.payload)["data"]?["profiles"]?.arrayValue?.first?["identifiers"]?.arrayValue).filter { $0["type"] == "email" }
        #expect(emails.count == 2)
    }

    /// A merge can change the survivor's canonical identity (it gains a userId):
    /// its segment entries are delivered with the new one, as its profile shows.
    @Test func aMergesSegmentEntriesCarryTheSurvivorsNewCanonicalIdentity() async throws {
        let harness = try EngineHarness(definitions: [
            "vip.yaml": "kind: Segment\nname: vip\nsegment_type: static\n",
            "hooks.yaml": "kind: Webhook\nname: hooks\nurl: http://127.0.0.1:9/\nsecret: ${env:WEB_KEY}\nevents: [segment.entered]\n",
        ])
        harness.setNow("2026-01-01T00:00:00Z")
        try await harness.ingest([["type": "track", "anonymousId": "visitor", "event": "Viewed", "messageId": "m1"]])
        harness.setNow("2026-02-01T00:00:00Z")
        try await harness.ingest([["type": "identify", "userId": "u-7", "messageId": "m2"]])
        let known = try #require(try await harness.profileID(type: "external_id", value: "u-7"))
        _ = try await harness.store.changeStaticMembers(tenant: "default", segment: "vip", add: [known], remove: [], at: 1, runID: "r1")
        harness.setNow("2026-03-01T00:00:00Z")
        try await harness.ingest([["type": "track", "anonymousId": "visitor", "userId": "u-7", "event": "Viewed", "messageId": "m3"]])
        let survivor = try #require(try await harness.profileID(type: "external_id", value: "u-7"))
        #expect(try await harness.profile(survivor)?.canonicalType == "external_id")
        let entry = try #require(try await harness.store.deliveries(tenant: "default", webhook: "hooks").last { $0.eventType == "segment.entered" })
        let member = try JSONParser.parse(entry.payload)["data"]?["profiles"]?.arrayValue?.first
        #expect(member?["profile_id"]?.stringValue == survivor)
        #expect(member?["canonical_identity"]?["type"] == "external_id")
        #expect(member?["canonical_identity"]?["hash"]?.stringValue == Digest.sha256Hex("u-7"))
    }

    @Test func twoDifferentUserIDsNeverMerge() async throws {
        let harness = try EngineHarness()
        try await harness.ingest([["type": "identify", "userId": "alice", "anonymousId": "shared-kiosk", "messageId": "m1"]])
        let outcome = try await harness.ingest([["type": "identify", "userId": "bob", "anonymousId": "shared-kiosk", "messageId": "m2"]])
        let alice = try #require(try await harness.profileID(type: "external_id", value: "alice"))
        let bob = try #require(try await harness.profileID(type: "external_id", value: "bob"))
        #expect(alice != bob)
        // The event belongs to the profile of its strongest identifier.
        #expect(profileID(of: outcome[0]) == bob)
        let conflicts = try await harness.read { try $0.conflicts(tenant: "default", profileID: bob) }
        #expect(conflicts.count == 1)
        #expect(conflicts.first?.otherProfileID == alice)
        #expect(conflicts.first?.identifierType == "external_id")
        #expect(conflicts.first?.reason.contains("more than 1 external_id") == true)
    }

    @Test func aSecondUserIDOnAKnownDeviceIsADifferentPerson() async throws {
        let harness = try EngineHarness()
        try await harness.ingest([["type": "identify", "userId": "alice", "anonymousId": "a", "messageId": "m1"]])
        // Same anonymous id, a new user id that no profile holds yet.
        let outcome = try await harness.ingest([["type": "identify", "userId": "mallory", "anonymousId": "a", "traits": ["email": "m@example.com"], "messageId": "m2"]])
        let alice = try #require(try await harness.profileID(type: "external_id", value: "alice"))
        let mallory = try #require(try await harness.profileID(type: "external_id", value: "mallory"))
        #expect(alice != mallory)
        #expect(profileID(of: outcome[0]) == mallory)
        #expect(try await harness.profileID(type: "anonymous_id", value: "a") == alice)
        #expect(try await harness.profileID(type: "email", value: "m@example.com") == mallory)
        let conflicts = try await harness.read { try $0.conflicts(tenant: "default", profileID: mallory) }
        #expect(conflicts.map(\.otherProfileID) == [alice])
    }

    @Test func anIdentifierOverItsTypesLimitIsNotAttached() async throws {
        let harness = try EngineHarness(definitions: ["identity.yaml": "kind: Identity\nname: identity\nidentifier_types:\n  - {type: external_id, priority: 100, limit: 1}\n  - {type: email, priority: 80, limit: 2}\n  - {type: anonymous_id, priority: 10}\n"])
        var messages: [JSONValue] = []
        for index in 1...3 {
            messages.append(["type": "identify", "userId": "u", "traits": ["email": .string("e\(index)@example.com")], "messageId": .string("m\(index)")])
        }
        let outcomes = try await harness.ingest(messages)
        let id = try #require(profileID(of: outcomes[0]))
        #expect(outcomes.map(profileID(of:)) == [id, id, id])
        let identifiers = try await harness.read { try $0.identifiers(tenant: "default", profileID: id) }
        #expect(identifiers.filter { $0.type == "email" }.count == 2)
        let conflicts = try await harness.read { try $0.conflicts(tenant: "default", profileID: id) }
        #expect(conflicts.map(\.reason) == ["not attached: the profile already has 2 email identifiers (limit 2)"])
    }

    @Test(arguments: ["undefined", "null", "anonymous", "0", "-1", "000-000", "  "])
    func blockedValuesAreNeverIdentifiers(_ value: String) async throws {
        let harness = try EngineHarness()
        let first = try await harness.ingest([["type": "track", "userId": .string(value), "anonymousId": "real-1", "event": "A", "messageId": "m1"]])
        let second = try await harness.ingest([["type": "track", "userId": .string(value), "anonymousId": "real-2", "event": "B", "messageId": "m2"]])
        // Had the blocked value been an identifier, both would share a profile.
        #expect(profileID(of: first[0]) != profileID(of: second[0]))
        #expect(try await harness.read { try $0.countProfiles(tenant: "default") } == 2)
        // Nor is it anyone's external id.
        for outcome in first + second {
            #expect(try await harness.profile(try #require(profileID(of: outcome)))?.externalID == nil)
        }
    }

    /// A phone's normal form gains a "+" (and a country code), which the blocked
    /// patterns would never match: the value as sent is checked too.
    @Test(arguments: ["000-000-0000", "0000000000", " 0000000 ", "000 000 0000", "(000) 000-0000", "000.000.0000", "+0 000 000 0000", "00 000 000 000"])
    func placeholderPhonesAreBlocked(_ phone: String) async throws {
        let harness = try EngineHarness(definitions: ["identity.yaml": "kind: Identity\nname: rules\nphone_default_country_code: \"+1\"\n"])
        let first = try await harness.ingest([["type": "identify", "anonymousId": "a-1", "traits": ["phone": .string(phone)], "messageId": "m1"]])
        let second = try await harness.ingest([["type": "identify", "anonymousId": "a-2", "traits": ["phone": "0000000000"], "messageId": "m2"]])
        #expect(profileID(of: first[0]) != profileID(of: second[0]))
        let identifiers = try await harness.read { try $0.identifiers(tenant: "default", profileID: try #require(profileID(of: first[0]))) }
        #expect(identifiers.map(\.type) == ["anonymous_id"])
        // A real number still is one.
        let real = try await harness.ingest([["type": "identify", "anonymousId": "a-3", "traits": ["phone": "(415) 555-0100"], "messageId": "m3"]])
        let attached = try await harness.read { try $0.identifiers(tenant: "default", profileID: try #require(profileID(of: real[0]))) }
        #expect(attached.map(\.type).sorted() == ["anonymous_id", "phone"])
    }

    @Test func builtInTypesAnIdentityFileLeavesOutKeepTheSeedsRules() async throws {
        // The file lists only email: external_id keeps its limit of 1 and its top
        // priority, and phones are still normalised.
        let harness = try EngineHarness(definitions: ["identity.yaml": "kind: Identity\nname: rules\nidentifier_types:\n  - {type: email, priority: 80}\n"])
        let alice = try await harness.ingest([["type": "identify", "userId": "alice", "context": ["device": ["id": "shared-ipad"]], "traits": ["email": "a@example.com"], "messageId": "m1"]])
        let bob = try await harness.ingest([["type": "identify", "userId": "bob", "context": ["device": ["id": "shared-ipad"]], "messageId": "m2"]])
        #expect(profileID(of: alice[0]) != profileID(of: bob[0]))
        let aliceID = try #require(profileID(of: alice[0]))
        let profile = try #require(try await harness.profile(aliceID))
        #expect(profile.canonicalType == "external_id")
        let first = try await harness.ingest([["type": "identify", "anonymousId": "p-a", "traits": ["phone": "+1 (555) 010-0199"], "messageId": "p1"]])
        let second = try await harness.ingest([["type": "identify", "anonymousId": "p-b", "traits": ["phone": "+15550100199"], "messageId": "p2"]])
        #expect(profileID(of: first[0]) == profileID(of: second[0]))
        // And rules may name them, as validation agrees.
        let segment = "kind: Segment\nname: reachable\nrules:\n  conditions:\n    - {field: identifiers.phone, operator: exists}\n    - {field: identifiers.device_id, operator: exists}\n"
        let loaded = EngineHarness.load(["identity.yaml": "kind: Identity\nname: rules\nidentifier_types:\n  - {type: email, priority: 80}\n", "reachable.yaml": segment])
        #expect(loaded.diagnostics.map(\.formatted) == [])
    }

    @Test func segmentsDottedExternalIDTypesAndBracketedTrunkZerosAreUnderstood() async throws {
        let harness = try EngineHarness()
        let phone = try await harness.ingest([["type": "identify", "anonymousId": "uk-1", "traits": ["phone": "+44 (0)20 7946 0000"], "messageId": "p1",
                                               "context": ["externalIds": [["type": "ios.idfa", "id": "IDFA-1", "collection": "users", "encoding": "none"]]]]])
        let again = try await harness.ingest([["type": "identify", "anonymousId": "uk-2", "traits": ["phone": "0044 20 7946 0000"], "messageId": "p2"]])
        #expect(profileID(of: phone[0]) == profileID(of: again[0]))
        let identifiers = try await harness.read { try $0.identifiers(tenant: "default", profileID: try #require(profileID(of: phone[0]))) }
        #expect(Set(identifiers.map(\.type)) == ["anonymous_id", "phone", "ios_idfa"])
        #expect(identifiers.first { $0.type == "phone" }?.hash == Digest.sha256Hex("+442079460000"))
    }

    @Test func anUnusableTraitsEmailLeavesTheContextsEmail() async throws {
        let harness = try EngineHarness()
        for (index, email) in [JSONValue.null, "  ", "not-an-email"].enumerated() {
            let outcome = try await harness.ingest([["type": "identify", "anonymousId": .string("v\(index)"), "traits": ["email": email],
                                                     "context": ["traits": ["email": .string("v\(index)@example.com")]], "messageId": .string("m\(index)")]])
            let identifiers = try await harness.read { try $0.identifiers(tenant: "default", profileID: try #require(profileID(of: outcome[0]))) }
            #expect(identifiers.first { $0.type == "email" }?.hash == Digest.sha256Hex("v\(index)@example.com"), "\(email)")
        }
    }

    @Test func canonicallyEquivalentTextIsOneIdentifier() async throws {
        let composed = "jos\u{E9}@example.com"
        let decomposed = "jose\u{301}@example.com"
        // Whichever form a daemon sees first, both hash as the composed form.
        for first in [composed, decomposed] {
            let harness = try EngineHarness()
            let identity = try #require(harness.runtime.tenants["default"]).identity
            let hashes = [first, first == composed ? decomposed : composed].map { identity.identifier(type: "email", raw: $0)?.hash }
            #expect(hashes == [Digest.sha256Hex(composed), Digest.sha256Hex(composed)])
            let one = try await harness.ingest([["type": "identify", "anonymousId": "nf-1", "traits": ["email": .string(first)], "messageId": "n1"]])
            let other = try await harness.ingest([["type": "identify", "anonymousId": "nf-2", "traits": ["email": .string(first == composed ? decomposed : composed)], "messageId": "n2"]])
            #expect(profileID(of: one[0]) == profileID(of: other[0]))
        }
    }

    @Test func staticMembersResolvedBeforeAMergeLandOnItsSurvivor() async throws {
        let harness = try EngineHarness()
        harness.setNow("2026-01-01T00:00:00Z")
        let older = try await harness.ingest([["type": "identify", "userId": "u", "traits": ["email": "u@example.com"], "messageId": "m1"]])
        harness.setNow("2026-01-02T00:00:00Z")
        let newer = try await harness.ingest([["type": "track", "anonymousId": "x", "event": "A", "messageId": "m2"]])
        let (survivor, absorbed) = (try #require(profileID(of: older[0])), try #require(profileID(of: newer[0])))
        // The API looked the id up, then this merge committed before the membership was written.
        try await harness.ingest([["type": "identify", "anonymousId": "x", "traits": ["email": "u@example.com"], "messageId": "m3"]])
        #expect(try await harness.profile(absorbed) == nil)
        let added = try await harness.store.changeStaticMembers(tenant: "default", segment: "picked", add: [absorbed, "no-such-profile"], remove: [], at: 1, runID: "r1")
        #expect(added.members == 1 && added.entered == 1)
        #expect(try await harness.store.segmentMembers(tenant: "default", segment: "picked", after: nil, limit: 10) == [survivor])
        // A preview of a static segment shows its stored members.
        let picked = try JSONValueDecoder().decode(SegmentDefinition.self, from: ["name": "picked", "segment_type": "static"])
        let preview = try await SegmentEvaluator(definitions: EngineHarness.load([:]).definitions, runtime: harness.runtime).preview(picked, store: harness.store, asOf: 3, sample: 5)
        #expect(preview.count == 1 && preview.sample == [survivor])
        let removed = try await harness.store.changeStaticMembers(tenant: "default", segment: "picked", add: [], remove: [absorbed], at: 2, runID: "r2")
        #expect(removed.members == 0 && removed.exited == 1)
        // A stored member of no profile (left by an older version) is removed as named.
        let database = try DatabaseQueue(path: harness.store.path)
        try await database.write { try $0.execute(sql: "INSERT INTO segment_memberships (tenant_id, segment, profile_id, entered_at) VALUES ('default', 'picked', 'ghost', 0)") }
        let ghost = try await harness.store.changeStaticMembers(tenant: "default", segment: "picked", add: [], remove: ["ghost"], at: 3, runID: "r3")
        #expect(ghost.exited == 1 && ghost.members == 0)
    }

    @Test func aMessageWithOnlyBlockedIdentifiersIsStoredWithoutAProfile() async throws {
        let harness = try EngineHarness()
        let outcome = try await harness.ingest([["type": "track", "anonymousId": "undefined", "event": "A", "messageId": "m1"]])
        guard case .stored(_, nil, false, []) = outcome[0] else { Issue.record("\(outcome)"); return }
        #expect(try await harness.read { try $0.countEvents(tenant: "default", idempotencyKeys: ["m1"]) } == ["m1": 1])
    }

    @Test func mergedAwayIDsResolveThroughChainsOfMerges() async throws {
        let harness = try EngineHarness()
        harness.setNow("2026-01-01T00:00:00Z")
        try await harness.ingest([["type": "track", "anonymousId": "x", "event": "A", "messageId": "m1"]])
        harness.setNow("2026-01-02T00:00:00Z")
        try await harness.ingest([["type": "identify", "anonymousId": "y", "traits": ["email": "y@example.com"], "messageId": "m2"]])
        harness.setNow("2026-01-03T00:00:00Z")
        try await harness.ingest([["type": "track", "anonymousId": "z", "event": "A", "messageId": "m3"]])
        let x = try #require(try await harness.profileID(type: "anonymous_id", value: "x"))
        let y = try #require(try await harness.profileID(type: "anonymous_id", value: "y"))
        let z = try #require(try await harness.profileID(type: "anonymous_id", value: "z"))
        // z joins y (the older), then y joins x (the oldest).
        try await harness.ingest([["type": "identify", "anonymousId": "z", "traits": ["email": "y@example.com"], "messageId": "m4"]])
        #expect(try await harness.read { try $0.survivor(tenant: "default", absorbedID: z) } == y)
        try await harness.ingest([["type": "identify", "anonymousId": "x", "traits": ["email": "y@example.com"], "messageId": "m5"]])
        for absorbed in [y, z] {
            #expect(try await harness.read { try $0.survivor(tenant: "default", absorbedID: absorbed) } == x)
        }
        for value in ["x", "y", "z"] {
            #expect(try await harness.profileID(type: "anonymous_id", value: value) == x)
        }
        #expect(try await harness.profile(x)?.totalEvents == 5)
    }

    @Test func aliasJoinsThePreviousIDToTheUserID() async throws {
        let harness = try EngineHarness()
        try await harness.ingest([["type": "track", "anonymousId": "visitor-9", "event": "ProductView", "messageId": "m1"]])
        try await harness.ingest([["type": "alias", "userId": "user-9", "previousId": "visitor-9", "messageId": "m2"]])
        let profile = try #require(try await harness.profileID(type: "external_id", value: "user-9"))
        #expect(try await harness.profileID(type: "anonymous_id", value: "visitor-9") == profile)
    }

    /// analytics.js sends an alias with anonymousId equal to previousId: one identifier, not a failed insert.
    @Test func anAliasWhosePreviousIDIsItsAnonymousIDIsStored() async throws {
        let harness = try EngineHarness()
        let outcome = try await harness.ingest([["type": "alias", "previousId": "anon-x", "anonymousId": "anon-x", "userId": "u-x", "messageId": "m1"]])
        let profile = try #require(profileID(of: outcome[0]))
        #expect(try await harness.profileID(type: "anonymous_id", value: "anon-x") == profile)
        #expect(try await harness.profileID(type: "external_id", value: "u-x") == profile)
    }

    /// A group call's traits describe the group: its email joins no one.
    @Test func aGroupCallsEmailIsNotThePersons() async throws {
        let harness = try EngineHarness()
        let traits: JSONValue = ["name": "Initech", "email": "info@initech.com"]
        let alice = try await harness.ingest([["type": "group", "userId": "alice", "groupId": "initech", "traits": traits, "messageId": "m1"]])
        let bob = try await harness.ingest([["type": "group", "anonymousId": "visitor-bob", "groupId": "initech", "traits": traits, "messageId": "m2"]])
        #expect(profileID(of: alice[0]) != profileID(of: bob[0]))
        #expect(try await harness.profileID(type: "email", value: "info@initech.com") == nil)
    }

    /// An alias whose previousId is an earlier userId finds that profile by it,
    /// without also attaching it as an anonymous id.
    @Test func aliasFromAnEarlierUserIDDoesNotMakeItAnAnonymousID() async throws {
        let harness = try EngineHarness()
        try await harness.ingest([["type": "identify", "userId": "old-id", "anonymousId": "device-1", "messageId": "m1"]])
        let profile = try #require(try await harness.profileID(type: "external_id", value: "old-id"))
        let outcome = try await harness.ingest([["type": "alias", "userId": "new-id", "previousId": "old-id", "messageId": "m2"]])
        #expect(profileID(of: outcome[0]) == profile)
        #expect(try await harness.profileID(type: "anonymous_id", value: "old-id") == nil)
        let types = try await harness.read { try $0.identifiers(tenant: "default", profileID: profile) }.map(\.type).sorted()
        #expect(types == ["anonymous_id", "external_id"])
    }

    @Test func aDuplicateMessageIDChangesNothing() async throws {
        let harness = try EngineHarness()
        let message: JSONValue = ["type": "track", "userId": "u", "event": "Purchase", "properties": ["total": 10], "messageId": "same"]
        let outcomes = try await harness.ingest([message, message])
        let again = try await harness.ingest([message])
        #expect(outcomes[1] == .duplicate)
        #expect(again == [.duplicate])
        let id = try #require(profileID(of: outcomes[0]))
        let profile = try #require(try await harness.profile(id))
        #expect(profile.totalEvents == 1)
        #expect(profile.totalRevenue == 10)
    }
}
