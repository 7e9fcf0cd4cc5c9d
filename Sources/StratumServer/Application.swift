import Foundation
import Hummingbird
import Logging
import NIOCore
import Prometheus
import ServiceLifecycle
import StratumDefinitions
import StratumDelivery
import StratumEngine
import StratumStore
import Synchronization

/// The request context: Hummingbird's core plus the peer address.
public struct StratumRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }

    /// The largest body any endpoint accepts (a batch); endpoints enforce their own.
    public var maxUploadSize: Int { MessageParser.maximumBatchBytes }
}

/// What every controller shares: the store, the writer, the definitions in force.
public final class ServerState: Sendable {
    let store: any Store
    let writer: IngestionWriter
    let limiter: RateLimiter
    let clock: @Sendable () -> Milliseconds
    let newMessageID: @Sendable () -> String
    let logger: Logger
    /// Traits, RFM and segments, when this server evaluates them.
    let evaluator: DefinitionEvaluator?
    /// Webhook endpoints with their secrets resolved, for the webhook API.
    let webhookEndpoints: [WebhookEndpoint]
    /// What /metrics shows.
    let metrics: PrometheusCollectorRegistry
    let acceptedMessages: Counter
    let rejectedRequests: Counter
    let rejectedMessages: Counter
    private let current: Mutex<(Runtime, AdminTokens)>

    public init(store: any Store, writer: IngestionWriter, definitions: DefinitionSet, environment: [String: String], evaluator: DefinitionEvaluator? = nil, metrics: PrometheusCollectorRegistry = PrometheusCollectorRegistry(), logger: Logger = Logger(label: "stratum"), clock: @escaping @Sendable () -> Milliseconds = IngestionPipeline.systemClock) throws {
        self.logger = logger
        self.metrics = metrics
        acceptedMessages = metrics.makeCounter(descriptor: MetricNameDescriptor(namespace: "stratum", metricName: "ingested_messages", unitName: "total", helpText: "Messages committed by the ingestion API."))
        rejectedRequests = metrics.makeCounter(descriptor: MetricNameDescriptor(namespace: "stratum", metricName: "rejected_requests", unitName: "total", helpText: "Ingestion requests answered with an error."))
        rejectedMessages = metrics.makeCounter(descriptor: MetricNameDescriptor(namespace: "stratum", metricName: "rejected_messages", unitName: "total", helpText: "Messages refused one by one inside batches that stored the others."))
        self.evaluator = evaluator
        webhookEndpoints = WebhookEndpoint.endpoints(definitions: definitions, environment: environment).0
        self.store = store
        self.writer = writer
        self.limiter = RateLimiter()
        self.clock = clock
        self.newMessageID = { UUID().uuidString.lowercased() }
        let runtime = Runtime(definitions: definitions, environment: environment)
        guard runtime.configurationProblems.isEmpty else { throw Runtime.ConfigurationError(description: runtime.configurationProblems.joined(separator: "\n")) }
        current = Mutex((runtime, try AdminTokens(definitions: definitions, environment: environment)))
    }

    func runtime() -> Runtime { current.withLock { $0.0 } }
    func adminTokens() -> AdminTokens { current.withLock { $0.1 } }

    /// The tenant of the request's admin token, which must carry `scope` (or
    /// `admin`); `limit` names a per-tenant rate limit (key, per minute, what).
    func adminTenant(_ request: Request, scope: SettingsDefinition.Scope, limit: (String, Int, String)?) throws(APIError) -> String {
        guard let value = try Credential.fromHeader(request) else {
            throw .unauthorized("an admin token is required: Authorization: Bearer <token>")
        }
        guard let token = adminTokens().token(for: value) else { throw .unauthorized("unknown admin token") }
        guard token.scopes.contains(scope) || token.scopes.contains(.admin) else {
            throw APIError(status: .forbidden, code: "forbidden", message: "admin token \(token.name) lacks the \(scope.rawValue) scope")
        }
        if let (key, perMinute, what) = limit, let wait = limiter.acquire(key + ":" + token.tenant, perMinute: perMinute) {
            throw .rateLimited(retryAfter: wait, "\(what) are limited to \(perMinute) per minute per tenant")
        }
        return token.tenant
    }
}

/// The router: ingestion, the read API and health endpoints.
public func buildRouter(state: ServerState) -> Router<StratumRequestContext> {
    // HEAD answers for every GET route.
    let router = Router(context: StratumRequestContext.self, options: .autoGenerateHeadEndpoints)
    // Added before the routes, so it wraps them and the router's miss alike.
    router.add(middleware: IngestionCORSMiddleware())
    router.add(middleware: JSONErrorMiddleware())
    router.get("/healthz") { _, _ in jsonResponse(["status": "ok"]) }
    router.get("/metrics") { _, _ in
        Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(bytes: state.metrics.emitToBuffer())))
    }
    router.get("/readyz") { _, _ in
        _ = try await state.store.read { try $0.countProfiles(tenant: Tenant.defaultID) }
        return jsonResponse(["status": "ready"])
    }
    IngestionController(state: state).register(on: router)
    ProfileController(state: state).register(on: router)
    SegmentController(state: state).register(on: router)
    WebhookController(state: state).register(on: router)
    return router
}

/// The HTTP application serving `state` on `host:port` (port 0: any free port).
///
/// `services` run beside the server and stop after it, so requests in
/// flight at shutdown still reach them (pass the ingestion writer).
/// A connection that sends nothing for `idleTimeout` (a stalled upload, an
/// idle keep-alive) is closed, so it can neither hold a connection forever
/// nor keep a graceful shutdown from finishing.
public func buildApplication(state: ServerState, host: String, port: Int, services: [any Service] = [], idleTimeout: Duration = .seconds(30), logger: Logger, onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
    let (seconds, attoseconds) = idleTimeout.components
    return Application(
        router: buildRouter(state: state),
        server: .http1(configuration: .init(idleTimeout: .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000))),
        configuration: .init(address: .hostname(host, port: port), serverName: "stratum"),
        services: services,
        onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? port) },
        logger: logger)
}
