import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import Logging
import Prometheus
import StratumCrypto
import StratumDefinitions
import StratumDelivery
import StratumEngine
import StratumJSON
import StratumStore
import StratumTestSupport
import Synchronization
import Testing

/// A real HTTP receiver on 127.0.0.1 that records what it gets and answers
/// with the statuses it is told to, in order.
final class Receiver: Sendable {
    struct Request: Sendable {
        var headers: [String: String]
        /// Every header field as it arrived, repeats included (lowercased names).
        var fields: [(name: String, value: String)]
        var body: [UInt8]
    }

    let received = Locked<[Request]>([])
    let answers: Locked<[(Int, [String: String])]>
    /// How long each answer takes.
    let delay: Duration

    init(answers: [(Int, [String: String])] = [], delay: Duration = .zero) {
        self.answers = Locked(answers)
        self.delay = delay
    }

    /// Runs `body` with the receiver listening; passes its URL.
    func serve(_ body: @escaping @Sendable (String) async throws -> Void) async throws {
        let router = Router()
        router.post("/hook") { request, _ -> Response in
            let bytes = try await request.body.collect(upTo: 1 << 20)
            if self.delay > .zero { try await Task.sleep(for: self.delay) }
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName] = field.value }
            let arrived = request.headers.map { (name: $0.name.canonicalName, value: $0.value) }
            self.received.withLock { $0.append(Request(headers: headers, fields: arrived, body: Array(bytes.readableBytesView))) }
            let (status, extra) = self.answers.withLock { $0.isEmpty ? (204, [:]) : $0.removeFirst() }
            var fields = HTTPFields()
            for (name, value) in extra { fields[HTTPField.Name(name)!] = value }
            return Response(status: .init(code: status), headers: fields)
        }
        let port = Locked<Int?>(nil)
        var logger = Logger(label: "receiver")
        logger.logLevel = .error
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)), onServerRunning: { channel in
            port.withLock { $0 = channel.localAddress?.port }
        }, logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.runService() }
            var waited = 0
            while port.withLock({ $0 }) == nil && waited < 500 {
                try await Task.sleep(for: .milliseconds(10))
                waited += 1
            }
            try await body("http://127.0.0.1:\(try #require(port.withLock { $0 }))/hook")
            group.cancelAll()
        }
    }
}

struct WebhookDeliveryTests {
    static let secret = "whsec_" + Data("0123456789abcdef0123456789abcdef".utf8).base64EncodedString()

    /// A store with people, one dynamic segment and a webhook on it.
    static func setUp(url: String, extra: String = "", consent: String? = nil) async throws -> (EngineHarness, DefinitionEvaluator, [WebhookEndpoint]) {
        let webhook = """
            kind: Webhook
            name: crm
            url: \(url)
            secret: ${env:HOOK_SECRET}
            events: [segment.entered, segment.exited]
            batch_size: 2
            retry: {schedule: [1s, 1s]}
            headers: {X-Destination: crm, Authorization: "Bearer ${env:CRM_TOKEN}", X-Route: "${env:CRM_TOKEN}/${env:WEB_KEY}"}
            \(consent.map { "requires_consent: \($0)" } ?? "")\(extra)
            """
        let definitions = [
            "buyers.yaml": "kind: Segment\nname: buyers\nrules:\n  conditions:\n    - {field: total_purchases, operator: greater_than, value: 0}\n",
            "crm.yaml": webhook,
        ]
        let harness = try EngineHarness(definitions: definitions)
        try await harness.ingest((1...3).map { index in
            ["type": "track", "userId": .string("u\(index)"), "event": "Purchase", "properties": ["total": 5],
             "context": ["consent": ["ads": .bool(index != 2)]], "messageId": .string("m\(index)")]
        })
        let loaded = EngineHarness.load(definitions, environment: ["WEB_KEY": "k", "HOOK_SECRET": secret, "CRM_TOKEN": "t0ken"])
        #expect(loaded.diagnostics.filter { $0.severity == .error }.map(\.formatted) == [])
        let (endpoints, problems) = WebhookEndpoint.endpoints(definitions: loaded.definitions, environment: ["HOOK_SECRET": secret, "CRM_TOKEN": "t0ken", "WEB_KEY": "k"])
        // The daemon's own check of the same definitions (it refused two references in one value).
        #expect(Runtime(definitions: loaded.definitions, environment: ["HOOK_SECRET": secret, "CRM_TOKEN": "t0ken", "WEB_KEY": "k"]).configurationProblems == [])
        #expect(problems == [])
        return (harness, DefinitionEvaluator(definitions: loaded.definitions, store: harness.store, runtime: harness.runtime), endpoints)
    }

    static func verifyWithStandardWebhooks(_ request: Receiver.Request) throws -> Bool? {
        let check = Process()
        check.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        check.arguments = ["python3", "-c", """
            import sys, json
            from standardwebhooks import Webhook
            headers = json.loads(sys.argv[2])
            Webhook(sys.argv[1]).verify(sys.stdin.buffer.read(), headers)
            print("verified")
            """, secret, JSONValue.object(JSONObject(request.headers.map { ($0.key, .string($0.value)) })).jsonText()]
        let input = Pipe()
        let output = Pipe()
        check.standardInput = input
        check.standardOutput = output
        check.standardError = FileHandle.nullDevice
        try check.run()
        input.fileHandleForWriting.write(Data(request.body))
        try input.fileHandleForWriting.close()
        let printed = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        check.waitUntilExit()
        if check.terminationStatus != 0 && !printed.contains("verified") {
            // Distinguish "library missing" from "signature rejected".
            let probe = Process()
            probe.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            probe.arguments = ["python3", "-c", "import standardwebhooks"]
            probe.standardError = FileHandle.nullDevice
            try probe.run()
            probe.waitUntilExit()
            // scripts/test installs the library and requires it; elsewhere its absence skips the check.
            let required = ProcessInfo.processInfo.environment["STRATUM_REQUIRE_PYTHON_SDK"] == "1"
            return probe.terminationStatus == 0 || required ? false : nil
        }
        return printed.contains("verified")
    }

    @Test func segmentChangesArriveSignedBatchedAndVerifiable() async throws {
        let receiver = Receiver()
        try await receiver.serve { url in
            let (harness, evaluator, endpoints) = try await Self.setUp(url: url)
            let buyers = try #require(evaluator.definitions.segments.first?.definition)
            _ = try await evaluator.refresh(segment: buyers, asOf: EngineHarness.instant("2026-01-02T00:00:00Z"), nextRefreshAt: nil)
            let registry = PrometheusCollectorRegistry()
            let worker = DeliveryWorker(store: harness.store, endpoints: endpoints, logger: Logger(label: "test"), metrics: DeliveryMetrics(registry: registry))
            #expect(try await worker.drainOnce() == 2)
            let exposition = registry.emitToString()
            #expect(exposition.contains(#"stratum_webhook_attempts_total{outcome="delivered"} 2"#))
            #expect(exposition.contains("stratum_webhook_attempt_duration_seconds_count 2"))
            let requests = receiver.received.withLock { $0 }
            #expect(requests.count == 2)
            var profiles: [JSONValue] = []
            for request in requests {
                let id = try #require(request.headers["webhook-id"])
                let timestamp = try #require(request.headers["webhook-timestamp"].flatMap(Int64.init))
                let key = try #require(WebhookSignature.key(fromSecret: Self.secret))
                #expect(request.headers["webhook-signature"] == WebhookSignature.sign(id: id, timestamp: timestamp, body: request.body, key: key))
                #expect(request.headers["x-destination"] == "crm")
                // ${env:…} inside a value is replaced.
                #expect(request.headers["authorization"] == "Bearer t0ken")
                #expect(request.headers["x-route"] == "t0ken/k")
                if let verified = try Self.verifyWithStandardWebhooks(request) { #expect(verified, "standardwebhooks rejected the signature") }
                let payload = try JSONParser.parse(request.body)
                #expect(payload["event_type"] == "segment.entered")
                #expect(payload["timestamp"] == "2026-01-02T00:00:00.000Z")
                #expect(payload["data"]?["segment"] == "buyers")
                profiles += payload["data"]?["profiles"]?.arrayValue ?? []
            }
            // Batches of at most batch_size (2) profiles, each with canonical identity and hashed identifiers.
            #expect(profiles.count == 3)
            #expect(profiles.allSatisfy { $0["canonical_identity"]?["type"] == "external_id" && $0["identifiers"]?.arrayValue?.isEmpty == false })
            #expect(try await harness.store.deliveries(tenant: "default").map(\.status) == ["delivered", "delivered"])
            #expect(try await worker.drainOnce() == 0)
        }
    }

    @Test func extraHeadersNeverShadowTheProtocolHeaders() async throws {
        let receiver = Receiver()
        try await receiver.serve { url in
            let (harness, evaluator, configured) = try await Self.setUp(url: url)
            // Validation refuses these names; an endpoint built another way still never sends them.
            var endpoints = configured
            endpoints[0].headers += [("Webhook-Id", "fixed"), ("WEBHOOK-SIGNATURE", "v1,forged"), ("webhook-timestamp", "0"), ("Content-Type", "text/plain")]
            let buyers = try #require(evaluator.definitions.segments.first?.definition)
            _ = try await evaluator.refresh(segment: buyers, asOf: EngineHarness.instant("2026-01-02T00:00:00Z"), nextRefreshAt: nil)
            try await DeliveryWorker(store: harness.store, endpoints: endpoints, logger: Logger(label: "test")).drainOnce()
            let requests = receiver.received.withLock { $0 }
            #expect(requests.count == 2)
            for request in requests {
                for name in ["webhook-id", "webhook-timestamp", "webhook-signature", "content-type"] {
                    #expect(request.fields.filter { $0.name == name }.count == 1, "\(name) arrived more than once")
                }
                #expect(request.headers["content-type"] == "application/json")
                #expect(request.headers["webhook-id"] != "fixed")
                #expect(request.headers["x-destination"] == "crm")
                // ${env:…} inside a value is replaced.
                #expect(request.headers["authorization"] == "Bearer t0ken")
                #expect(request.headers["x-route"] == "t0ken/k")
                if let verified = try Self.verifyWithStandardWebhooks(request) { #expect(verified, "standardwebhooks rejected the signature") }
            }
        }
    }

    /// A shutdown does not wait out a hanging receiver's timeout: the request
    /// is given up (libcurl's progress callback) and the delivery stays
    /// pending, with no attempt counted, to be sent again after the restart.
    @Test func aShutdownGivesUpARequestInFlightAndLeavesItPending() async throws {
        let hanging = Receiver(delay: .seconds(20))
        try await hanging.serve { url in
            let (harness, evaluator, endpoints) = try await Self.setUp(url: url, extra: "timeout: {connect: 2s, total: 60s}")
            let buyers = try #require(evaluator.definitions.segments.first?.definition)
            _ = try await evaluator.refresh(segment: buyers, asOf: EngineHarness.instant("2026-01-02T00:00:00Z"), nextRefreshAt: nil)
            let worker = DeliveryWorker(store: harness.store, endpoints: endpoints, logger: Logger(label: "test"), concurrency: 1)
            let started = ContinuousClock.now
            let drain = Task { try await worker.drainOnce() }
            try await Task.sleep(for: .milliseconds(500))
            drain.cancel()
            _ = try? await drain.value
            // The receiver would answer after 20 s, curl give up after 60 s; the progress callback looks about once a second.
            #expect(ContinuousClock.now - started < .seconds(10))
            let deliveries = try await harness.store.deliveries(tenant: "default")
            #expect(deliveries.map(\.status) == ["pending", "pending"])
            #expect(deliveries.map(\.attempts) == [0, 0])
        }
    }

    /// A header naming an unset variable is never sent without it: the
    /// endpoint is unusable, and validate warns where it is written.
    @Test func aHeaderWhoseVariableIsUnsetMakesTheEndpointUnusable() throws {
        let definitions = ["crm.yaml": "kind: Webhook\nname: crm\nurl: http://127.0.0.1:9/\nsecret: ${env:HOOK_SECRET}\nevents: [segment.entered]\nheaders: {Authorization: \"Bearer ${env:CRM_TOKEN}\"}\n"]
        let loaded = EngineHarness.load(definitions, environment: ["HOOK_SECRET": Self.secret, "WEB_KEY": "k"])
        #expect(loaded.diagnostics.map(\.formatted) == ["crm.yaml:6:26: warning: environment variable CRM_TOKEN is not set (or empty); the daemon will refuse to start without it; export CRM_TOKEN=... (at /headers/Authorization)"])
        let (endpoints, problems) = WebhookEndpoint.endpoints(definitions: loaded.definitions, environment: ["HOOK_SECRET": Self.secret])
        #expect(endpoints.isEmpty)
        #expect(problems == ["crm.yaml: Webhook \"crm\" header Authorization Bearer ${env:CRM_TOKEN} is not set (CRM_TOKEN)"])
        // A value read from a file often ends in a newline: sent, it would start another header.
        let (none, newline) = WebhookEndpoint.endpoints(definitions: loaded.definitions, environment: ["HOOK_SECRET": Self.secret, "CRM_TOKEN": "abc\nwebhook-signature: v1,forged"])
        #expect(none.isEmpty)
        #expect(newline == ["crm.yaml: Webhook \"crm\" header Authorization Bearer ${env:CRM_TOKEN} takes a line break from the environment; remove it (a file's trailing newline?)"])
    }

    /// An ad audience learns when a member revokes the consent it requires
    /// (so it drops the person), and when a member grants it.
    @Test func aMemberRevokingOrGrantingConsentIsAnExitOrAnEntry() async throws {
        let receiver = Receiver()
        try await receiver.serve { url in
            let (harness, evaluator, endpoints) = try await Self.setUp(url: url, consent: "ads")
            // u5, a member with no consent record at all.
            try await harness.ingest([["type": "track", "userId": "u5", "event": "Purchase", "messageId": "u5-buys"]])
            let buyers = try #require(evaluator.definitions.segments.first?.definition)
            _ = try await evaluator.refresh(segment: buyers, asOf: EngineHarness.instant("2026-01-02T00:00:00Z"), nextRefreshAt: nil)
            let worker = DeliveryWorker(store: harness.store, endpoints: endpoints, logger: Logger(label: "test"), concurrency: 1)
            try await worker.drainOnce()
            receiver.received.withLock { $0.removeAll() }
            // u1 (a member, consenting) revokes; u2 (a member, denied so far) grants.
            try await harness.ingest([
                ["type": "track", "userId": "u1", "event": "Opened", "context": ["consent": ["ads": false]], "messageId": "u1-revokes"],
                ["type": "track", "userId": "u2", "event": "Opened", "context": ["consent": ["ads": true]], "messageId": "u2-grants"],
                // A repeat changes nothing: no second notice.
                ["type": "track", "userId": "u1", "event": "Opened", "context": ["consent": ["ads": false]], "messageId": "u1-again"],
                // A first denial is no revocation: u5 was never sent, and is not now.
                ["type": "track", "userId": "u5", "event": "Opened", "context": ["consent": ["ads": false]], "messageId": "u5-denies"],
            ])
            try await worker.drainOnce()
            let bodies = receiver.received.withLock { $0 }.compactMap { try? JSONParser.parse($0.body) }
            let seen = bodies.map { [$0["event_type"], $0["data"]?["segment"], $0["data"]?["reason"], $0["data"]?["profiles"]?.arrayValue?.first?["profile_id"]] }
            let u1 = try #require(try await harness.profileID(type: "external_id", value: "u1"))
            let u2 = try #require(try await harness.profileID(type: "external_id", value: "u2"))
            #expect(seen == [
                ["segment.exited", "buyers", "consent_revoked", .string(u1)],
                ["segment.entered", "buyers", "consent_granted", .string(u2)],
            ])
            // The exit was sent although u1 no longer consents: it is how the audience drops u1.
            #expect(try await harness.store.deliveries(tenant: "default").allSatisfy { $0.status == "delivered" })
        }
    }

    /// An exit queued while the profile consented still goes out after it
    /// revokes: the receiver holds the person, and the exit is how it drops them.
    @Test func anExitIsNeverWithheldForConsent() async throws {
        let receiver = Receiver()
        try await receiver.serve { url in
            let (harness, evaluator, endpoints) = try await Self.setUp(url: url, consent: "ads")
            let buyers = try #require(evaluator.definitions.segments.first?.definition)
            _ = try await evaluator.refresh(segment: buyers, asOf: EngineHarness.instant("2026-01-02T00:00:00Z"), nextRefreshAt: nil)
            let worker = DeliveryWorker(store: harness.store, endpoints: endpoints, logger: Logger(label: "test"), concurrency: 1)
            try await worker.drainOnce()
            receiver.received.withLock { $0.removeAll() }
            // u1 stops being a buyer (its counter reset by hand), and the run queues its exit;
            let database = try DatabaseQueue(path: harness.store.path)
            try await database.write { try $0.execute(sql: "UPDATE profiles SET total_purchases = 0 WHERE external_id = 'u1'") }
            _ = try await evaluator.refresh(segment: buyers, asOf: EngineHarness.instant("2026-01-03T00:00:00Z"), nextRefreshAt: nil)
            // then u1 revokes before the exit is sent.
            try await harness.ingest([["type": "track", "userId": "u1", "event": "Opened", "context": ["consent": ["ads": false]], "messageId": "u1-revokes"]])
            try await worker.drainOnce()
            let u1 = try #require(try await harness.profileID(type: "external_id", value: "u1"))
            let bodies = receiver.received.withLock { $0 }.compactMap { try? JSONParser.parse($0.body) }
            #expect(bodies.map { [$0["event_type"], $0["data"]?["profiles"]?.arrayValue?.first?["profile_id"]] } == [["segment.exited", .string(u1)]])
            #expect(try await harness.store.deliveries(tenant: "default").allSatisfy { $0.status == "delivered" })
        }
    }

    @Test func aProfileWhoseConsentIsMissingDeniedOrRevokedIsNeverSent() async throws {
        let receiver = Receiver()
        try await receiver.serve { url in
            let (harness, evaluator, endpoints) = try await Self.setUp(url: url, consent: "ads")
            // u1 and u3 granted ads, u2 denied it; now u3 revokes it and u4 never says.
            try await harness.ingest([
                ["type": "track", "userId": "u3", "event": "Opened", "context": ["consent": ["ads": false]], "messageId": "revoke"],
                ["type": "track", "userId": "u4", "event": "Purchase", "properties": ["total": 5], "messageId": "silent"],
            ])
            let buyers = try #require(evaluator.definitions.segments.first?.definition)
            _ = try await evaluator.refresh(segment: buyers, asOf: EngineHarness.instant("2026-01-02T00:00:00Z"), nextRefreshAt: nil)
            try await DeliveryWorker(store: harness.store, endpoints: endpoints, logger: Logger(label: "test")).drainOnce()
            let sent = receiver.received.withLock { $0 }.flatMap { (try? JSONParser.parse($0.body))?["data"]?["profiles"]?.arrayValue ?? [] }
            let u1 = try #require(try await harness.profileID(type: "external_id", value: "u1"))
            #expect(sent.map { $0["profile_id"] } == [.string(u1)])
        }
    }

    /// Consent is checked again before every attempt: a profile that revoked
    /// while its batch waited to be retried is dropped from it.
    @Test func aProfileThatRevokesWhileItsDeliveryWaitsIsDroppedFromIt() async throws {
        let receiver = Receiver(answers: [(500, [:])])
        try await receiver.serve { url in
            let (harness, evaluator, endpoints) = try await Self.setUp(url: url, consent: "ads")
            let buyers = try #require(evaluator.definitions.segments.first?.definition)
            let start = EngineHarness.instant("2026-01-02T00:00:00Z")
            _ = try await evaluator.refresh(segment: buyers, asOf: start, nextRefreshAt: nil)
            let now = Locked(start)
            let worker = DeliveryWorker(store: harness.store, endpoints: endpoints, logger: Logger(label: "test"), concurrency: 1, clock: { now.withLock { $0 } })
            // Given u1 and u3 (who granted ads) in one batch that the receiver answered 500,
            #expect(try await worker.drainOnce() == 1)
            // when u3 revokes ads before the retry,
            harness.setNow("2026-01-02T00:00:01Z")
            try await harness.ingest([["type": "track", "userId": "u3", "event": "Opened", "context": ["consent": ["ads": false]], "messageId": "revoke"]])
            now.withLock { $0 = start + 5_000 }
            // (u3's revocation is also a segment.exited of its own, "consent_revoked".)
            #expect(try await worker.drainOnce() == 2)
            // then the retry carries u1 alone, and the delivery shows what was sent.
            let u1 = try #require(try await harness.profileID(type: "external_id", value: "u1"))
            let u3 = try #require(try await harness.profileID(type: "external_id", value: "u3"))
            let requests = receiver.received.withLock { $0 }.filter { (try? JSONParser.parse($0.body))?["data"]?["reason"] == nil }
            let bodies = requests.map { (try? JSONParser.parse($0.body))?["data"]?["profiles"]?.arrayValue?.map { $0["profile_id"] } }
            #expect(bodies.count == 2)
            #expect(bodies.last == [.string(u1)])
            let exits = receiver.received.withLock { $0 }.compactMap { try? JSONParser.parse($0.body) }.filter { $0["data"]?["reason"] == "consent_revoked" }
            #expect(exits.map { $0["data"]?["profiles"]?.arrayValue?.map { $0["profile_id"] } } == [[.string(u3)]])
            let delivery = try #require(try await harness.store.deliveries(tenant: "default").first)
            #expect(delivery.status == "delivered")
            #expect((try JSONParser.parse(Array(delivery.payload.utf8)))["data"]?["profiles"]?.arrayValue?.map { $0["profile_id"] } == [.string(u1)])
            // Signed over the body it carries.
            let last = try #require(requests.last)
            let timestamp = try #require(last.headers["webhook-timestamp"].flatMap(Int64.init))
            let key = try #require(WebhookSignature.key(fromSecret: Self.secret))
            #expect(last.headers["webhook-signature"] == WebhookSignature.sign(id: delivery.id, timestamp: timestamp, body: last.body, key: key))
        }
    }

    /// A delivery none of whose profiles consents any more is withheld, and a
    /// replay checks again.
    @Test func aDeliveryWhoseProfileRevokedIsWithheldAndAReplayChecksAgain() async throws {
        let receiver = Receiver()
        try await receiver.serve { url in
            let definitions = ["ads.yaml": "kind: Webhook\nname: ads\nurl: \(url)\nsecret: ${env:HOOK_SECRET}\nevents: [event.received]\nrequires_consent: ads\n"]
            let harness = try EngineHarness(definitions: definitions)
            try await harness.ingest([["type": "track", "userId": "u1", "event": "Viewed", "context": ["consent": ["ads": true]], "messageId": "m1"]])
            harness.setNow("2026-01-01T00:01:00Z")
            try await harness.ingest([["type": "track", "userId": "u1", "event": "Opened", "context": ["consent": ["ads": false]], "messageId": "revoke"]])
            let loaded = EngineHarness.load(definitions, environment: ["WEB_KEY": "k", "HOOK_SECRET": Self.secret])
            let (endpoints, _) = WebhookEndpoint.endpoints(definitions: loaded.definitions, environment: ["HOOK_SECRET": Self.secret])
            let now = Locked(EngineHarness.instant("2026-01-01T00:02:00Z"))
            let worker = DeliveryWorker(store: harness.store, endpoints: endpoints, logger: Logger(label: "test"), clock: { now.withLock { $0 } })
            try await worker.drainOnce()
            #expect(receiver.received.withLock { $0.count } == 0, "sent after the profile revoked its consent")
            var delivery = try #require(try await harness.store.deliveries(tenant: "default", webhook: "ads").first)
            #expect(delivery.status == "failed")
            #expect(delivery.attempts == 0)
            #expect(delivery.lastError?.contains("ads consent") == true)
            // Replayed while still revoked: withheld again.
            #expect(try await harness.store.replayDeliveries(tenant: "default", webhook: "ads", id: delivery.id, statuses: ["failed"], at: now.withLock { $0 }) == 1)
            try await worker.drainOnce()
            #expect(receiver.received.withLock { $0.count } == 0)
            // Granted again, a replay sends it.
            harness.setNow("2026-01-01T00:03:00Z")
            try await harness.ingest([["type": "track", "userId": "u1", "event": "Opened", "context": ["consent": ["ads": true]], "messageId": "grant"]])
            now.withLock { $0 = EngineHarness.instant("2026-01-01T00:04:00Z") }
            #expect(try await harness.store.replayDeliveries(tenant: "default", webhook: "ads", id: delivery.id, statuses: ["failed"], at: now.withLock { $0 }) == 1)
            try await worker.drainOnce()
            delivery = try #require(try await harness.store.deliveries(tenant: "default", webhook: "ads").first { $0.id == delivery.id })
            #expect(delivery.status == "delivered")
            #expect(receiver.received.withLock { $0 }.contains { $0.headers["webhook-id"] == delivery.id })
        }
    }

    /// A grant stamped by a clock running ahead is not in force before its
    /// time: a later revoke holds, for segment and profile webhooks alike.
    @Test func aConsentStampedInTheFutureDoesNotOpenTheGate() async throws {
        let definitions = [
            "buyers.yaml": "kind: Segment\nname: buyers\nrules:\n  conditions:\n    - {field: total_purchases, operator: greater_than, value: 0}\n",
            "segment-ads.yaml": "kind: Webhook\nname: segment-ads\nurl: http://127.0.0.1:9/closed\nsecret: ${env:HOOK_SECRET}\nevents: [segment.entered]\nrequires_consent: ads\n",
            "event-ads.yaml": "kind: Webhook\nname: event-ads\nurl: http://127.0.0.1:9/closed\nsecret: ${env:HOOK_SECRET}\nevents: [event.received]\nrequires_consent: ads\n",
        ]
        let harness = try EngineHarness(definitions: definitions)
        // u1 grants ads; u2's device, in 2099, grants it, and a message stamped now revokes it.
        try await harness.ingest([
            ["type": "track", "userId": "u1", "event": "Purchase", "context": ["consent": ["ads": true]], "messageId": "u1"],
            ["type": "track", "userId": "u2", "event": "Purchase", "timestamp": "2099-01-01T00:00:00Z", "context": ["consent": ["ads": true]], "messageId": "ahead"],
            ["type": "track", "userId": "u2", "event": "Opened", "context": ["consent": ["ads": false]], "messageId": "revoke"],
            ["type": "track", "userId": "u2", "event": "Opened", "messageId": "after"],
        ])
        let loaded = EngineHarness.load(definitions, environment: ["WEB_KEY": "k", "HOOK_SECRET": Self.secret])
        let evaluator = DefinitionEvaluator(definitions: loaded.definitions, store: harness.store, runtime: harness.runtime)
        _ = try await evaluator.refresh(segment: try #require(loaded.definitions.segments.first?.definition), asOf: EngineHarness.instant("2026-01-02T00:00:00Z"), nextRefreshAt: nil)
        let u1 = try #require(try await harness.profileID(type: "external_id", value: "u1"))
        let deliveries = try await harness.store.deliveries(tenant: "default")
        let segmentProfiles = deliveries.filter { $0.webhook == "segment-ads" }.flatMap { (try? JSONParser.parse($0.payload))?["data"]?["profiles"]?.arrayValue ?? [] }
        #expect(segmentProfiles.map { $0["profile_id"] } == [.string(u1)])
        let eventProfiles = deliveries.filter { $0.webhook == "event-ads" }.map { (try? JSONParser.parse($0.payload))?["data"]?["profile_id"] }
        #expect(eventProfiles == [.string(u1)])
    }

    @Test func failuresAreRetriedWithTheSameIDThenDeadOrDisabled() async throws {
        // 500, then 429 with Retry-After: 7, then success.
        let receiver = Receiver(answers: [(500, [:]), (429, ["Retry-After": "7"]), (200, [:])])
        try await receiver.serve { url in
            let (harness, evaluator, endpoints) = try await Self.setUp(url: url)
            let buyers = try #require(evaluator.definitions.segments.first?.definition)
            let start = EngineHarness.instant("2026-01-02T00:00:00Z")
            _ = try await evaluator.refresh(segment: buyers, asOf: start, nextRefreshAt: nil)
            let now = Locked(start)
            let worker = DeliveryWorker(store: harness.store, endpoints: endpoints, logger: Logger(label: "test"), concurrency: 1, clock: { now.withLock { $0 } })
            // Two deliveries (batches of 2); the first fails with 500, the second is told to wait 7 s.
            #expect(try await worker.drainOnce() == 2)
            var deliveries = try await harness.store.deliveries(tenant: "default")
            #expect(deliveries.map(\.status) == ["pending", "pending"])
            #expect(deliveries.map(\.lastStatus) == [500, 429])
            #expect(deliveries[1].nextAttemptAt >= start + 7_000)
            now.withLock { $0 = start + 2_000 }
            #expect(try await worker.drainOnce() == 1)
            now.withLock { $0 = start + 10_000 }
            #expect(try await worker.drainOnce() == 1)
            deliveries = try await harness.store.deliveries(tenant: "default")
            #expect(deliveries.map(\.status) == ["delivered", "delivered"])
            let ids = receiver.received.withLock { $0 }.map { $0.headers["webhook-id"] ?? "" }
            #expect(ids.count == 4)
            #expect(Set(ids).count == 2, "every retry carries its delivery's webhook-id")
        }
        let gone = Receiver(answers: [(410, [:])])
        try await gone.serve { url in
            let (harness, evaluator, endpoints) = try await Self.setUp(url: url)
            let buyers = try #require(evaluator.definitions.segments.first?.definition)
            _ = try await evaluator.refresh(segment: buyers, asOf: EngineHarness.instant("2026-01-02T00:00:00Z"), nextRefreshAt: nil)
            let worker = DeliveryWorker(store: harness.store, endpoints: endpoints, logger: Logger(label: "test"), concurrency: 1)
            try await worker.drainOnce()
            #expect(try await harness.store.deliveries(tenant: "default").map(\.status) == ["disabled", "disabled"])
            #expect(gone.received.withLock { $0.count } == 1, "one 410 disables the rest without sending them")
            // Nothing is left due: the worker does not spin on skipped rows.
            #expect(try await worker.drainOnce() == 0)
            // A replay tries the endpoint again (now answering 204), from the same worker.
            let replayed = try await harness.store.replayDeliveries(tenant: "default", webhook: "crm", id: nil, statuses: ["disabled"], at: EngineHarness.instant("2026-01-02T00:00:00Z"))
            #expect(replayed == 2)
            #expect(try await worker.drainOnce() == 2)
            #expect(try await harness.store.deliveries(tenant: "default").map(\.status) == ["delivered", "delivered"])
        }
    }

    /// One slow receiver holds at most its share of the sending slots: the
    /// other webhooks' deliveries go out meanwhile, not after it.
    @Test func aSlowReceiverDelaysOnlyItsOwnDeliveries() async throws {
        let (slow, fast) = (Receiver(delay: .seconds(3)), Receiver())
        try await slow.serve { slowURL in
            try await fast.serve { fastURL in
                let definitions = [
                    "buyers.yaml": "kind: Segment\nname: buyers\nrules:\n  conditions:\n    - {field: total_purchases, operator: greater_than, value: 0}\n",
                    "a-slow.yaml": "kind: Webhook\nname: slow\nurl: \(slowURL)\nsecret: ${env:HOOK_SECRET}\nevents: [segment.entered]\nbatch_size: 1\n",
                    "b-fast.yaml": "kind: Webhook\nname: fast\nurl: \(fastURL)\nsecret: ${env:HOOK_SECRET}\nevents: [segment.entered]\nbatch_size: 1\n",
                ]
                let harness = try EngineHarness(definitions: definitions)
                try await harness.ingest((1...3).map { ["type": "track", "userId": .string("u\($0)"), "event": "Purchase", "messageId": .string("m\($0)")] })
                let loaded = EngineHarness.load(definitions, environment: ["WEB_KEY": "k", "HOOK_SECRET": Self.secret])
                let evaluator = DefinitionEvaluator(definitions: loaded.definitions, store: harness.store, runtime: harness.runtime)
                _ = try await evaluator.refresh(segment: try #require(loaded.definitions.segments.first?.definition), asOf: EngineHarness.instant("2026-01-02T00:00:00Z"), nextRefreshAt: nil)
                let (endpoints, _) = WebhookEndpoint.endpoints(definitions: loaded.definitions, environment: ["HOOK_SECRET": Self.secret])
                let worker = DeliveryWorker(store: harness.store, endpoints: endpoints, logger: Logger(label: "test"), concurrency: 2)
                let started = ContinuousClock.now
                let drain = Task { try await worker.drainOnce() }
                while fast.received.withLock({ $0.count }) < 3, ContinuousClock.now - started < .seconds(10) { try await Task.sleep(for: .milliseconds(20)) }
                // All three went out while the slow receiver still held its first request (it records
                // one only when answering, after 3 s): told by order, not by a stopwatch.
                #expect(fast.received.withLock { $0.count } == 3)
                #expect(slow.received.withLock { $0.count } == 0, "the fast webhook waited for the slow one")
                #expect(try await drain.value == 6)
                #expect(slow.received.withLock { $0.count } == 3)
            }
        }
    }

    @Test func aRetryAfterDateIsHonouredUpToADay() async throws {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        let inTwoMinutes = formatter.string(from: Date().addingTimeInterval(120))
        let receiver = Receiver(answers: [(503, ["Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"]), (429, ["Retry-After": inTwoMinutes])])
        try await receiver.serve { url in
            let (harness, evaluator, endpoints) = try await Self.setUp(url: url)
            let buyers = try #require(evaluator.definitions.segments.first?.definition)
            let start = EngineHarness.instant("2026-01-02T00:00:00Z")
            _ = try await evaluator.refresh(segment: buyers, asOf: start, nextRefreshAt: nil)
            let worker = DeliveryWorker(store: harness.store, endpoints: endpoints, logger: Logger(label: "test"), concurrency: 1, clock: { start })
            #expect(try await worker.drainOnce() == 2)
            let deliveries = try await harness.store.deliveries(tenant: "default")
            #expect(deliveries.map(\.lastStatus) == [503, 429])
            // 2099 is capped at a day, as a number of seconds would be; two minutes are two minutes, not the 1 s schedule.
            #expect(deliveries[0].nextAttemptAt == start + 86_400_000)
            // (The date was written when the test began; a busy machine may take a while to send.)
            #expect((start + 60_000...start + 121_000).contains(deliveries[1].nextAttemptAt), "\(deliveries[1].nextAttemptAt - start)")
        }
        // The obsolete forms a recipient must accept (RFC 9110 §5.6.7), and nonsense.
        let now = try #require(formatter.date(from: "Sun, 06 Nov 1994 08:49:00 GMT"))
        #expect(SendResult.retryAfter(parsing: " 120 ", now: now) == 120)
        #expect(SendResult.retryAfter(parsing: "Sun, 06 Nov 1994 08:49:37 GMT", now: now) == 37)
        #expect(SendResult.retryAfter(parsing: "Sunday, 06-Nov-94 08:49:37 GMT", now: now) == 37)
        #expect(SendResult.retryAfter(parsing: "Sun Nov  6 08:49:37 1994", now: now) == 37)
        #expect(SendResult.retryAfter(parsing: "Sun, 06 Nov 1994 08:48:00 GMT", now: now) == -60)
        #expect(SendResult.retryAfter(parsing: "soon", now: now) == nil)
    }

    /// Deliveries that fall due while a receiver hangs go out in the free
    /// slots, not after the hanging request ends.
    @Test func aHangingReceiverDoesNotHoldBackWhatFallsDueMeanwhile() async throws {
        let (slow, fast) = (Receiver(delay: .seconds(4)), Receiver())
        try await slow.serve { slowURL in
            try await fast.serve { fastURL in
                let definitions = [
                    "a-slow.yaml": "kind: Webhook\nname: slow\nurl: \(slowURL)\nsecret: ${env:HOOK_SECRET}\nevents: [event.received]\n",
                    "b-fast.yaml": "kind: Webhook\nname: fast\nurl: \(fastURL)\nsecret: ${env:HOOK_SECRET}\nevents: [event.received]\n",
                ]
                let harness = try EngineHarness(definitions: definitions)
                try await harness.ingest([["type": "track", "userId": "u1", "event": "Viewed", "messageId": "m1"]])
                let loaded = EngineHarness.load(definitions, environment: ["WEB_KEY": "k", "HOOK_SECRET": Self.secret])
                let (endpoints, _) = WebhookEndpoint.endpoints(definitions: loaded.definitions, environment: ["HOOK_SECRET": Self.secret])
                let worker = DeliveryWorker(store: harness.store, endpoints: endpoints, logger: Logger(label: "test"), concurrency: 2, clock: { EngineHarness.instant("2026-01-02T00:00:00Z") })
                // Given the slow receiver holding one request and the fast one done with its first,
                let drain = Task { try await worker.drainOnce() }
                let started = ContinuousClock.now
                while try await harness.store.deliveries(tenant: "default", webhook: "fast").first?.status != "delivered", ContinuousClock.now - started < .seconds(5) {
                    try await Task.sleep(for: .milliseconds(10))
                }
                // (and the worker past its look for more, which found nothing),
                try await Task.sleep(for: .milliseconds(200))
                // when a second message falls due for both,
                try await harness.ingest([["type": "track", "userId": "u1", "event": "Viewed", "messageId": "m2"]])
                let queued = ContinuousClock.now
                while fast.received.withLock({ $0.count }) < 2, ContinuousClock.now - queued < .seconds(8) { try await Task.sleep(for: .milliseconds(10)) }
                // then the fast webhook gets it in the free slot while the slow receiver still holds
                // its first request (it records one only when answering, after 4 s): told by order,
                // not by a stopwatch, so a busy machine does not fail it.
                #expect(fast.received.withLock { $0.count } == 2)
                #expect(slow.received.withLock { $0.count } == 0, "the fast webhook waited for the hanging one")
                #expect(try await drain.value == 4)
                #expect(slow.received.withLock { $0.count } == 2)
            }
        }
    }

    @Test func aReceiverThatHangsPastTheTimeoutIsRetriedLater() async throws {
        let receiver = Receiver(delay: .seconds(3))
        try await receiver.serve { url in
            let (harness, evaluator, endpoints) = try await Self.setUp(url: url, extra: "\ntimeout: {connect: 1s, total: 1s}")
            let buyers = try #require(evaluator.definitions.segments.first?.definition)
            let start = EngineHarness.instant("2026-01-02T00:00:00Z")
            _ = try await evaluator.refresh(segment: buyers, asOf: start, nextRefreshAt: nil)
            let worker = DeliveryWorker(store: harness.store, endpoints: endpoints, logger: Logger(label: "test"), clock: { start })
            let began = ContinuousClock.now
            #expect(try await worker.drainOnce() == 2)
            #expect(ContinuousClock.now - began < .seconds(2.5), "the 1 s total timeout cut the attempts short")
            let deliveries = try await harness.store.deliveries(tenant: "default")
            #expect(deliveries.map(\.status) == ["pending", "pending"])
            #expect(deliveries.allSatisfy { $0.lastStatus == nil && $0.lastError?.lowercased().contains("timeout") == true && $0.nextAttemptAt > start })
        }
    }

    @Test func classificationFollowsTheRetryRules() {
        let schedule: [Int64] = [5_000, 300_000]
        func result(_ status: Int?, retryAfter: Int? = nil) -> SendResult { SendResult(status: status, retryAfter: retryAfter, body: "", error: status == nil ? "timeout" : nil) }
        #expect(AttemptOutcome.classify(result(204), attempt: 1, schedule: schedule, now: 0, jitter: 0) == .delivered)
        #expect(AttemptOutcome.classify(result(503), attempt: 1, schedule: schedule, now: 0, jitter: 0) == .retry(at: 5_000))
        #expect(AttemptOutcome.classify(result(nil), attempt: 2, schedule: schedule, now: 0, jitter: 0.1) == .retry(at: 330_000))
        #expect(AttemptOutcome.classify(result(429, retryAfter: 60), attempt: 1, schedule: schedule, now: 0, jitter: 0) == .retry(at: 60_000))
        #expect(AttemptOutcome.classify(result(500), attempt: 3, schedule: schedule, now: 0, jitter: 0) == .dead)
        #expect(AttemptOutcome.classify(result(400), attempt: 1, schedule: schedule, now: 0, jitter: 0) == .failed)
        #expect(AttemptOutcome.classify(result(410), attempt: 1, schedule: schedule, now: 0, jitter: 0) == .gone)
        // A receiver's Retry-After is honoured up to a day; an absurd one neither overflows nor crashes.
        #expect(AttemptOutcome.classify(result(503, retryAfter: 99_999_999_999_999_999), attempt: 1, schedule: schedule, now: 1_000, jitter: 0) == .retry(at: 1_000 + 86_400_000))
        #expect(AttemptOutcome.classify(result(503, retryAfter: -5), attempt: 1, schedule: schedule, now: 0, jitter: 0) == .retry(at: 5_000))
    }
}

struct ProfileWebhookTests {
    /// One message that merges two profiles and grants consent announces each
    /// moved segment once (the merge's entry), not again as a consent notice.
    @Test func aMergeThatGrantsConsentAnnouncesEachSegmentOnce() async throws {
        let definitions = [
            "vips.yaml": "kind: Segment\nname: vips\nsegment_type: static\n",
            "ads.yaml": "kind: Webhook\nname: ads\nurl: http://127.0.0.1:9/\nsecret: ${env:HOOK_SECRET}\nevents: [segment.entered, segment.exited]\nrequires_consent: ads\n",
        ]
        let harness = try EngineHarness(definitions: definitions)
        harness.setNow("2026-01-01T00:00:00Z")
        try await harness.ingest([["type": "page", "anonymousId": "a8", "messageId": "first-visit"]])
        harness.setNow("2026-01-02T00:00:00Z")
        try await harness.ingest([["type": "identify", "userId": "u8", "messageId": "signup"]])
        let loaded = EngineHarness.load(definitions, environment: ["HOOK_SECRET": WebhookDeliveryTests.secret, "WEB_KEY": "k"])
        let evaluator = DefinitionEvaluator(definitions: loaded.definitions, store: harness.store, runtime: harness.runtime)
        let u8 = try #require(try await harness.profileID(type: "external_id", value: "u8"))
        _ = try await evaluator.changeMembers(of: try #require(loaded.definitions.segments.first?.definition), add: [u8], remove: [])
        harness.setNow("2026-01-03T00:00:00Z")
        try await harness.ingest([["type": "identify", "userId": "u8", "anonymousId": "a8", "context": ["consent": ["ads": true]], "messageId": "joins"]])
        let entries = try await harness.store.deliveries(tenant: "default", webhook: "ads").filter { $0.eventType == "segment.entered" }
        #expect(entries.count == 1, "\(entries.map(\.payload))")
    }

    /// consent.updated announces what changed in force now: a grant stamped
    /// ahead (a clock running fast) is not in force yet, and a revoke sent
    /// after it is a change.
    @Test func consentNoticesFollowWhatIsInForceNow() async throws {
        let definitions = ["consent.yaml": "kind: Webhook\nname: consent\nurl: http://127.0.0.1:9/\nsecret: ${env:HOOK_SECRET}\nevents: [consent.updated]\n"]
        let harness = try EngineHarness(definitions: definitions)
        harness.setNow("2026-01-01T00:00:00Z")
        try await harness.ingest([
            ["type": "identify", "userId": "f1", "timestamp": "2026-01-01T06:00:00Z", "context": ["consent": ["ads": true]], "messageId": "ahead"],
            ["type": "identify", "userId": "f1", "timestamp": "2026-01-01T00:00:00Z", "context": ["consent": ["ads": false]], "messageId": "now"],
        ])
        let notices = try await harness.store.deliveries(tenant: "default").compactMap { try? JSONParser.parse(Array($0.payload.utf8)) }
        #expect(notices.map { [$0["data"]?["consent_type"], $0["data"]?["granted"]] } == [["ads", false]])
    }

    @Test func everyProfileAndEventTypeArrivesWithItsBody() async throws {
        let receiver = Receiver()
        try await receiver.serve { url in
            let definitions = [
                "everything.yaml": "kind: Webhook\nname: everything\nurl: \(url)\nsecret: ${env:HOOK_SECRET}\nevents: [event.received, profile.created, profile.updated, profile.merged, consent.updated]\n",
                "ads.yaml": "kind: Webhook\nname: ads\nurl: \(url)\nsecret: ${env:HOOK_SECRET}\nevents: [profile.created, event.received]\nrequires_consent: ads\n",
            ]
            let harness = try EngineHarness(definitions: definitions)
            harness.setNow("2026-01-01T00:00:00Z")
            try await harness.ingest([
                ["type": "identify", "userId": "u1", "traits": ["email": "u1@example.com"], "context": ["consent": ["ads": true]], "messageId": "m1"],
                ["type": "track", "anonymousId": "a2", "event": "Viewed", "messageId": "m2"],
            ])
            harness.setNow("2026-01-01T00:01:00Z")
            try await harness.ingest([["type": "identify", "userId": "u1", "anonymousId": "a2", "traits": ["plan": "pro"], "messageId": "m3"]])
            let loaded = DefinitionLoader.load(files: definitions.sorted { $0.key < $1.key }.map { ($0.key, Array($0.value.utf8)) })
            let (endpoints, _) = WebhookEndpoint.endpoints(definitions: loaded.definitions, environment: ["HOOK_SECRET": WebhookDeliveryTests.secret])
            try await DeliveryWorker(store: harness.store, endpoints: endpoints, logger: Logger(label: "test"), concurrency: 1).drainOnce()

            let deliveries = try await harness.store.deliveries(tenant: "default")
            #expect(deliveries.allSatisfy { $0.status == "delivered" })
            let everything = deliveries.filter { $0.webhook == "everything" }.map(\.eventType)
            #expect(everything == ["profile.created", "consent.updated", "event.received", "profile.created", "event.received", "profile.merged", "profile.updated", "event.received"])
            // a2's own profile had no ads consent: only u1's events reach the ads endpoint (m3 is u1's after the merge).
            #expect(deliveries.filter { $0.webhook == "ads" }.map(\.eventType) == ["profile.created", "event.received", "event.received"])

            let bodies = receiver.received.withLock { $0 }.compactMap { try? JSONParser.parse($0.body) }
            let merged = try #require(bodies.first { $0["event_type"] == "profile.merged" })
            #expect(merged["data"]?["absorbed_profile_id"]?.stringValue != nil)
            #expect(merged["data"]?["identifiers"]?.arrayValue?.count == 3)
            let consent = try #require(bodies.first { $0["event_type"] == "consent.updated" })
            #expect(consent["data"]?["consent_type"] == "ads")
            #expect(consent["data"]?["granted"] == true)
            let received = try #require(bodies.first { $0["event_type"] == "event.received" })
            #expect(received["data"]?["event"]?["message_id"] == "m1")
            #expect(received["timestamp"] == "2026-01-01T00:00:00.000Z")
        }
    }

    @Test func aSegmentFilterLimitsProfileNoticesToItsMembers() async throws {
        let definitions = [
            "vip.yaml": "kind: Segment\nname: vip\nsegment_type: static\n",
            "vip-events.yaml": "kind: Webhook\nname: vip-events\nurl: http://127.0.0.1:9/closed\nsecret: ${env:HOOK_SECRET}\nevents: [event.received]\nsegments: [vip]\n",
        ]
        let harness = try EngineHarness(definitions: definitions)
        try await harness.ingest([["type": "track", "userId": "insider", "event": "A", "messageId": "1"], ["type": "track", "userId": "outsider", "event": "A", "messageId": "2"]])
        let insider = try #require(try await harness.profileID(type: "external_id", value: "insider"))
        _ = try await harness.store.changeStaticMembers(tenant: "default", segment: "vip", add: [insider], remove: [], at: 0, runID: "r")
        try await harness.ingest([["type": "track", "userId": "insider", "event": "B", "messageId": "3"], ["type": "track", "userId": "outsider", "event": "B", "messageId": "4"]])
        let deliveries = try await harness.store.deliveries(tenant: "default")
        #expect(deliveries.count == 1)
        #expect((try JSONParser.parse(deliveries[0].payload))["data"]?["profile_id"] == .string(insider))
    }
}

struct DeadLetterTests {
    @Test func exhaustedDeliveriesBecomeDeadLettersThatCanBeReplayed() async throws {
        let receiver = Receiver(answers: Array(repeating: (503, [:]), count: 6))
        try await receiver.serve { url in
            let (harness, evaluator, endpoints) = try await WebhookDeliveryTests.setUp(url: url)
            let buyers = try #require(evaluator.definitions.segments.first?.definition)
            let start = EngineHarness.instant("2026-01-02T00:00:00Z")
            _ = try await evaluator.refresh(segment: buyers, asOf: start, nextRefreshAt: nil)
            let now = Locked(start)
            let worker = DeliveryWorker(store: harness.store, endpoints: endpoints, logger: Logger(label: "test"), concurrency: 1, clock: { now.withLock { $0 } })
            // The schedule [1s, 1s] allows three attempts.
            for step in 0..<3 {
                now.withLock { $0 = start + Int64(step) * 5_000 }
                #expect(try await worker.drainOnce() == 2)
            }
            #expect(try await harness.store.deliveries(tenant: "default").map(\.status) == ["dead", "dead"])
            #expect(try await harness.store.deliveries(tenant: "default").map(\.attempts) == [3, 3])
            let first = try #require(try await harness.store.deliveries(tenant: "default").first)
            #expect(try await harness.store.replayDeliveries(tenant: "default", webhook: "crm", id: first.id, statuses: ["dead"], at: start + 20_000) == 1)
            now.withLock { $0 = start + 20_000 }
            #expect(try await worker.drainOnce() == 1)
            #expect(try await harness.store.deliveries(tenant: "default").map(\.status) == ["delivered", "dead"])
            #expect(receiver.received.withLock { $0 }.last?.headers["webhook-id"] == first.id)
        }
    }
}
