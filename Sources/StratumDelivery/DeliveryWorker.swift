import Foundation
import Logging
import ServiceLifecycle
import StratumDefinitions
import StratumEngine
import StratumJSON
import StratumStore
import Synchronization

/// A webhook endpoint ready to send to: secrets resolved, defaults applied.
public struct WebhookEndpoint: Sendable {
    public var tenant: String
    public var name: String
    public var url: String
    public var key: [UInt8]
    public var headers: [(String, String)]
    /// A consent type every profile it carries must have in force when sent.
    public var requiresConsent: String?
    public var connectTimeoutMilliseconds: Int
    public var totalTimeoutMilliseconds: Int
    /// Delays before each retry, after the first attempt.
    public var retrySchedule: [Int64]

    public init(tenant: String, name: String, url: String, key: [UInt8], headers: [(String, String)], requiresConsent: String? = nil, connectTimeoutMilliseconds: Int, totalTimeoutMilliseconds: Int, retrySchedule: [Int64]) {
        self.tenant = tenant
        self.name = name
        self.url = url
        self.key = key
        self.headers = headers
        self.requiresConsent = requiresConsent
        self.connectTimeoutMilliseconds = connectTimeoutMilliseconds
        self.totalTimeoutMilliseconds = totalTimeoutMilliseconds
        self.retrySchedule = retrySchedule
    }

    /// The endpoints of `definitions`; secrets come from `environment` and must
    /// be `whsec_<base64>` (problems are returned, one line each).
    public static func endpoints(definitions: DefinitionSet, environment: [String: String]) -> ([WebhookEndpoint], [String]) {
        var endpoints: [WebhookEndpoint] = []
        var problems: [String] = []
        for loaded in definitions.webhooks where loaded.definition.enabled != false {
            let webhook = loaded.definition
            guard let secret = Runtime.resolve(webhook.secret, environment), let key = WebhookSignature.key(fromSecret: secret) else {
                problems.append("\(loaded.file): Webhook \"\(webhook.name)\" secret \(webhook.secret) is not set to whsec_<base64>")
                continue
            }
            // A header whose variable is unset (or holds a line break) makes the endpoint
            // unusable, as it keeps the daemon from starting: it is never sent without it.
            var headers: [(String, String)] = []
            var unusable: String?
            for (name, value) in (webhook.headers ?? [:]).sorted(by: { $0.key < $1.key }) {
                switch WebhookDefinition.headerValue(value, environment: environment) {
                case .success(let resolved): headers.append((name, resolved))
                case .failure(let problem): unusable = unusable ?? "\(loaded.file): Webhook \"\(webhook.name)\" header \(name) \(problem)"
                }
            }
            if let unusable {
                problems.append(unusable)
                continue
            }
            endpoints.append(WebhookEndpoint(
                tenant: webhook.tenantID, name: webhook.name, url: webhook.url, key: key, headers: headers, requiresConsent: webhook.requiresConsent,
                connectTimeoutMilliseconds: webhook.timeout?.connect.flatMap(TimeSpan.init(parsing:))?.milliseconds ?? 5_000,
                totalTimeoutMilliseconds: webhook.timeout?.total.flatMap(TimeSpan.init(parsing:))?.milliseconds ?? 30_000,
                retrySchedule: (webhook.retry?.schedule ?? WebhookDefinition.defaultRetrySchedule).compactMap { TimeSpan(parsing: $0).map { Int64($0.milliseconds) } }))
        }
        return (endpoints, problems)
    }

    /// The headers of a signed request with this body: the Standard Webhooks
    /// headers, then the extra `headers` — never one of the protocol's
    /// (`WebhookDefinition.protocolHeaders`), which would reach the receiver
    /// twice, ahead of the real one.
    public func requestHeaders(id: String, timestamp: Int64, body: [UInt8]) -> [(String, String)] {
        [
            ("webhook-id", id),
            ("webhook-timestamp", String(timestamp)),
            ("webhook-signature", WebhookSignature.sign(id: id, timestamp: timestamp, body: body, key: key)),
        ] + headers.filter { !WebhookDefinition.protocolHeaders.contains($0.0.lowercased()) }
    }
}

/// What to do after an attempt (Standard Webhooks / common practice).
public enum AttemptOutcome: Sendable, Equatable {
    case delivered
    /// Try again at this instant.
    case retry(at: Milliseconds)
    /// Out of retries: a dead letter.
    case dead
    /// A 4xx other than 410/429: the receiver refuses this delivery.
    case failed
    /// 410 Gone: the endpoint is disabled.
    case gone

    /// The longest Retry-After honoured, in seconds.
    public static let longestRetryAfter: Double = 86_400

    /// Classifies an attempt: 2xx delivered; 410 gone; 429, 5xx and no
    /// response retry (honouring Retry-After when longer) until the schedule
    /// is exhausted; other statuses fail. `attempt` counts from 1.
    public static func classify(_ result: SendResult, attempt: Int, schedule: [Int64], now: Milliseconds, jitter: Double) -> AttemptOutcome {
        if let status = result.status {
            if (200..<300).contains(status) { return .delivered }
            if status == 410 { return .gone }
            if status != 429 && status < 500 { return .failed }
        }
        guard attempt <= schedule.count else { return .dead }
        var delay = Double(schedule[attempt - 1]) * (1 + jitter)
        // Honoured up to a day: a receiver's Retry-After must not push a delivery
        // past any instant we can store (99999999999999999 s overflowed).
        if let retryAfter = result.retryAfter { delay = max(delay, min(max(Double(retryAfter), 0), Self.longestRetryAfter) * 1000) }
        return .retry(at: now + Int64(delay))
    }
}

/// Drains the outbox: signs and sends due deliveries through libcurl from a
/// few threads (one reused connection each), recording every attempt.
/// At-least-once: a delivery is marked only after its attempt, so a crash
/// mid-send sends it again, with the same `webhook-id`.
public final class DeliveryWorker: Service, Sendable {
    let store: SQLiteStore
    let endpoints: [String: WebhookEndpoint]
    let logger: Logger
    let clock: @Sendable () -> Milliseconds
    let concurrency: Int
    let metrics: DeliveryMetrics?
    private let senders: Mutex<[CurlSender]>

    public init(store: SQLiteStore, endpoints: [WebhookEndpoint], logger: Logger, concurrency: Int = 4, metrics: DeliveryMetrics? = nil, clock: @escaping @Sendable () -> Milliseconds = IngestionPipeline.systemClock) {
        self.store = store
        self.metrics = metrics
        self.endpoints = Dictionary(endpoints.map { ($0.tenant + "/" + $0.name, $0) }) { first, _ in first }
        self.logger = logger
        self.concurrency = concurrency
        self.clock = clock
        senders = Mutex([])
    }

    /// How many requests one endpoint may have in flight: all slots but one, so
    /// a slow or hanging receiver always leaves the others a slot.
    var perEndpoint: Int { max(1, concurrency - 1) }

    /// Sends everything due (including what falls due while it sends); returns
    /// how many attempts were made.
    ///
    /// A slot is refilled as soon as its request ends, from the due deliveries
    /// of endpoints under their share, and a free slot looks for newly due
    /// deliveries every 100 ms while requests are in flight: one slow or hanging
    /// receiver delays only its own deliveries, not the next ones of every other webhook.
    @discardableResult
    public func drainOnce() async throws -> Int {
        var queued = try await store.dueDeliveries(now: clock(), limit: 256)
        guard !queued.isEmpty else { return 0 }
        // Endpoints that answered 410 Gone in this drain: their pending deliveries
        // (these included) are disabled in the store, so they are not sent. A
        // later delivery, or a replay, tries the endpoint again.
        let gone = GoneEndpoints()
        var attempts = 0
        enum Finished: Sendable {
            case sent(Delivery)
            /// Time to look for what fell due while requests are in flight.
            case look
        }
        try await withThrowingTaskGroup(of: Finished.self) { group in
            var inFlight: [String: Int] = [:]
            var sending: Set<String> = []
            var waitingToLook = false
            func fill() {
                // Shutting down: nothing new starts; what is in flight is given up.
                while !Task.isCancelled, sending.count < concurrency, let next = queued.firstIndex(where: { inFlight[$0.endpointKey, default: 0] < perEndpoint }) {
                    let delivery = queued.remove(at: next)
                    inFlight[delivery.endpointKey, default: 0] += 1
                    sending.insert(delivery.id)
                    attempts += 1
                    group.addTask {
                        // One delivery's store error must not cancel (and so abort) the others in
                        // flight: it is logged, and the delivery, still pending, is tried again.
                        do {
                            try await self.attempt(delivery, gone: gone)
                        } catch is CancellationError {
                            throw CancellationError()
                        } catch {
                            self.logger.error("A webhook attempt could not be recorded; the delivery stays pending.", metadata: ["delivery": "\(delivery.id)", "error": "\(error)"])
                        }
                        return .sent(delivery)
                    }
                }
                // A free slot with nothing to start looks again soon, while requests are in
                // flight (none in flight: the drain ends). Not once shutting down.
                if !waitingToLook, !sending.isEmpty, sending.count < concurrency, !Task.isCancelled {
                    waitingToLook = true
                    group.addTask {
                        try? await Task.sleep(for: .milliseconds(100))
                        return .look
                    }
                }
            }
            // What fell due meanwhile, leaving out what is queued or being sent and
            // the endpoints at their share.
            func look() async throws {
                let waiting = Set(queued.map(\.id))
                let full = Set(inFlight.filter { $0.value >= perEndpoint }.keys)
                queued += try await store.dueDeliveries(now: clock(), limit: 256, skipping: full).filter { !sending.contains($0.id) && !waiting.contains($0.id) }
            }
            fill()
            while let finished = try await group.next() {
                switch finished {
                case .sent(let done):
                    inFlight[done.endpointKey, default: 1] -= 1
                    sending.remove(done.id)
                    // The queue is used up: look at once rather than wait for the next look.
                    if queued.isEmpty { try await look() }
                case .look:
                    waitingToLook = false
                    if sending.count < concurrency, !queued.contains(where: { inFlight[$0.endpointKey, default: 0] < perEndpoint }) { try await look() }
                }
                fill()
            }
        }
        return attempts
    }

    /// Endpoints that answered 410 Gone during one drain, by `Delivery.endpointKey`.
    final class GoneEndpoints: Sendable {
        private let endpoints = Mutex<Set<String>>([])
        func contains(_ key: String) -> Bool { endpoints.withLock { $0.contains(key) } }
        func insert(_ key: String) { endpoints.withLock { _ = $0.insert(key) } }
    }

    func attempt(_ delivery: Delivery, gone: GoneEndpoints) async throws {
        let endpointKey = delivery.endpointKey
        if gone.contains(endpointKey) { return }
        guard let endpoint = endpoints[endpointKey] else {
            try await store.recordAttempt(id: delivery.id, status: "failed", nextAttemptAt: nil, httpStatus: nil, error: "no enabled webhook \(delivery.webhook)", at: clock())
            return
        }
        var payload = delivery.payload
        if let consent = endpoint.requiresConsent {
            guard let consenting = try await payloadOfConsenting(delivery, type: consent) else {
                logger.info("A webhook delivery is withheld: its profiles no longer consent.", metadata: ["webhook": "\(delivery.webhook)", "delivery": "\(delivery.id)", "consent": "\(consent)"])
                try await store.withholdDelivery(id: delivery.id, reason: "withheld: no profile it carries has \(consent) consent in force any more")
                return
            }
            payload = consenting
        }
        let timestamp = clock() / 1000
        let body = Array(payload.utf8)
        let headers = endpoint.requestHeaders(id: delivery.id, timestamp: timestamp, body: body)
        let started = ContinuousClock.now
        // A shutdown gives up the request rather than wait out a hanging receiver's timeout.
        let abort = AbortFlag()
        let result = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                // libcurl blocks: run it on its own thread, not the cooperative pool.
                Thread.detachNewThread {
                    let sender = self.senders.withLock { $0.popLast() } ?? CurlSender()
                    let result = sender.post(url: endpoint.url, headers: headers, body: body,
                                             connectTimeoutMilliseconds: endpoint.connectTimeoutMilliseconds, totalTimeoutMilliseconds: endpoint.totalTimeoutMilliseconds, abort: abort)
                    self.senders.withLock { $0.append(sender) }
                    continuation.resume(returning: result)
                }
            }
        } onCancel: {
            abort.set()
        }
        // Given up at shutdown: no attempt is recorded; the delivery stays as it was and is
        // sent again after the restart, with the same id (at least once).
        if result.aborted { return }
        let now = clock()
        let outcome = AttemptOutcome.classify(result, attempt: delivery.attempts + 1, schedule: endpoint.retrySchedule, now: now, jitter: Double.random(in: -0.1...0.1))
        let error = result.error ?? result.status.map { "HTTP \($0)" }
        metrics?.record(outcome, took: ContinuousClock.now - started)
        switch outcome {
        case .delivered:
            try await store.recordAttempt(id: delivery.id, status: "delivered", nextAttemptAt: nil, httpStatus: result.status, error: nil, at: now)
        case .retry(let at):
            try await store.recordAttempt(id: delivery.id, status: "pending", nextAttemptAt: at, httpStatus: result.status, error: error, at: now)
        case .dead:
            logger.warning("A webhook delivery is out of retries: a dead letter.", metadata: ["webhook": "\(delivery.webhook)", "delivery": "\(delivery.id)"])
            try await store.recordAttempt(id: delivery.id, status: "dead", nextAttemptAt: nil, httpStatus: result.status, error: error, at: now)
        case .failed:
            try await store.recordAttempt(id: delivery.id, status: "failed", nextAttemptAt: nil, httpStatus: result.status, error: error, at: now)
        case .gone:
            gone.insert(endpointKey)
            logger.warning("A webhook endpoint answered 410 Gone; its pending deliveries are disabled.", metadata: ["webhook": "\(delivery.webhook)"])
            try await store.recordAttempt(id: delivery.id, status: "disabled", nextAttemptAt: nil, httpStatus: result.status, error: error, at: now)
            try await store.disableDeliveries(tenant: delivery.tenant, webhook: delivery.webhook)
        }
    }

    /// The payload of `delivery` carrying only the profiles with `type` consent in
    /// force now (an absorbed id as its survivor), stored when it shrank; nil
    /// when none has it. Consent is checked when a delivery is queued, and
    /// again here: it may have been revoked while the delivery waited or retried.
    func payloadOfConsenting(_ delivery: Delivery, type: String) async throws -> String? {
        guard let parsed = try? JSONParser.parse(Array(delivery.payload.utf8)), var root = parsed.objectValue, var data = root["data"]?.objectValue else {
            return delivery.payload
        }
        // An exit is never held back: it is how the receiver learns to drop a profile it
        // was sent (a consent_revoked notice, or a member leaving who revoked meanwhile).
        if root["event_type"] == "segment.exited" { return delivery.payload }
        let now = clock()
        let tenant = delivery.tenant
        @Sendable func consents(_ reader: any StoreReader, _ id: String) throws -> Bool {
            guard let current = try reader.currentProfileID(tenant: tenant, id: id) else { return false }
            return try reader.consentGranted(tenant: tenant, profileID: current, type: type, at: now)
        }
        if let id = data["profile_id"]?.stringValue {
            return try await store.read { try consents($0, id) } ? delivery.payload : nil
        }
        guard let profiles = data["profiles"]?.arrayValue else { return delivery.payload }
        let kept = try await store.read { reader in
            try profiles.filter { profile in try profile["profile_id"]?.stringValue.map { try consents(reader, $0) } ?? false }
        }
        if kept.isEmpty { return nil }
        if kept.count == profiles.count { return delivery.payload }
        data["profiles"] = .array(kept)
        root["data"] = .object(data)
        let narrowed = JSONValue.object(root).jsonText()
        try await store.narrowDelivery(id: delivery.id, payload: narrowed)
        return narrowed
    }

    public func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                while !Task.isCancelled {
                    do {
                        let attempts = try await self.drainOnce()
                        if attempts == 0 { try await Task.sleep(for: .milliseconds(200)) }
                    } catch is CancellationError {
                        throw CancellationError()
                    } catch {
                        // The store was busy or failed: the deliveries stay pending and are sent
                        // again (at least once). It never stops the worker, nor the daemon with it.
                        self.logger.error("The delivery worker could not record its attempts; it tries again.", metadata: ["error": "\(error)"])
                        try await Task.sleep(for: .seconds(1))
                    }
                }
            }
        } catch is CancellationError {
            logger.info("Delivery worker stopped.")
        }
    }
}

extension Delivery {
    /// The endpoint it goes to: tenant and webhook.
    var endpointKey: String { tenant + "/" + webhook }
}
