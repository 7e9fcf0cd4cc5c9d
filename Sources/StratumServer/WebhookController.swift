import Foundation
import Hummingbird
import StratumDefinitions
import StratumDelivery
import StratumEngine
import StratumJSON
import StratumStore

/// Webhook operations: list, deliveries, replay of dead letters, a test send.
/// The seed's limit: 30 webhook operations per minute per tenant.
struct WebhookController: Sendable {
    let state: ServerState
    static let operationsPerMinute = 30

    func register(on router: Router<StratumRequestContext>) {
        router.get("/v1/webhooks") { request, _ in try await self.list(request) }
        router.get("/v1/webhooks/:name/deliveries") { request, context in try await self.deliveries(request, name: try context.parameters.require("name")) }
        router.post("/v1/webhooks/:name/replay") { request, context in try await self.replay(request, name: try context.parameters.require("name")) }
        router.post("/v1/webhooks/:name/test") { request, context in try await self.test(request, name: try context.parameters.require("name")) }
    }

    func tenant(_ request: Request, scope: SettingsDefinition.Scope) throws(APIError) -> String {
        try state.adminTenant(request, scope: scope, limit: ("webhooks", Self.operationsPerMinute, "webhook operations"))
    }

    func store() throws(APIError) -> SQLiteStore {
        guard let evaluator = state.evaluator else { throw APIError.notFound("webhooks are not delivered by this server") }
        return evaluator.store
    }

    func webhook(_ name: String, tenant: String) throws(APIError) -> WebhookDefinition {
        guard let webhook = state.evaluator?.definitions.webhooks.first(where: { $0.definition.name == name && $0.definition.tenantID == tenant })?.definition else {
            throw APIError.notFound("no webhook \(name)")
        }
        return webhook
    }

    func list(_ request: Request) async throws -> Response {
        let tenant = try tenant(request, scope: .read)
        let counts = try await store().deliveryCounts(tenant: tenant)
        let webhooks = (state.evaluator?.definitions.webhooks ?? []).map(\.definition).filter { $0.tenantID == tenant }.sorted { $0.name < $1.name }
        return jsonResponse(["webhooks": .array(webhooks.map { webhook in
            let statuses = counts[webhook.name] ?? [:]
            return [
                "name": .string(webhook.name), "url": .string(webhook.url), "enabled": .bool(webhook.enabled ?? true),
                "events": .array(webhook.events.map { .string($0.rawValue) }),
                "deliveries": .object(JSONObject(["pending", "delivered", "failed", "dead", "disabled"].map { ($0, .number(Double(statuses[$0] ?? 0))) })),
            ]
        })])
    }

    /// `?status=dead`: a webhook's deliveries, oldest first (at most 1,000).
    func deliveries(_ request: Request, name: String) async throws -> Response {
        let tenant = try tenant(request, scope: .read)
        _ = try webhook(name, tenant: tenant)
        let status = request.uri.queryParameters["status"].map(String.init)
        if let status, !["pending", "delivered", "failed", "dead", "disabled"].contains(status) {
            throw APIError.badRequest("invalid_query", "status must be pending, delivered, failed, dead or disabled", path: "status")
        }
        let selected = try await store().deliveries(tenant: tenant, webhook: name, status: status, limit: 1_000)
        return jsonResponse(["deliveries": .array(selected.map { delivery in
            [
                "id": .string(delivery.id), "event_type": .string(delivery.eventType), "status": .string(delivery.status),
                "attempts": .number(Double(delivery.attempts)), "last_status": delivery.lastStatus.map { .number(Double($0)) } ?? .null,
                "last_error": delivery.lastError.map(JSONValue.string) ?? .null,
                "next_attempt_at": .string(Instant.format(milliseconds: delivery.nextAttemptAt)),
            ]
        })])
    }

    /// `{"id": "msg_..."}` or `{"all": true}`: dead letters (with all: failed and disabled too) queued again.
    func replay(_ request: Request, name: String) async throws -> Response {
        let tenant = try tenant(request, scope: .write)
        _ = try webhook(name, tenant: tenant)
        let limit = 4_096
        guard let buffer = try? await request.body.collect(upTo: limit) else { throw APIError.tooLarge(limit) }
        let body = buffer.readableBytes == 0 ? JSONValue.object(JSONObject()) : (try? JSONParser.parse(Array(buffer.readableBytesView))) ?? .null
        let usage = "send {} (every dead letter), {\"id\": \"msg_...\"} or {\"all\": true}"
        guard let fields = body.objectValue else { throw APIError.badRequest("invalid_json", usage) }
        // A wrong member must not widen the replay: {"id": 5} is not "every dead letter".
        try refuseUnknownMembers(fields, allowed: ["id", "all"], code: "invalid_request", usage: usage)
        if let id = fields["id"], id.stringValue?.isEmpty != false { throw APIError.badRequest("invalid_request", "id must be a delivery id string; \(usage)", path: "id") }
        if let all = fields["all"], all.boolValue == nil { throw APIError.badRequest("invalid_request", "all must be true or false; \(usage)", path: "all") }
        let replayed = try await store().replayDeliveries(
            tenant: tenant, webhook: name, id: fields["id"]?.stringValue,
            statuses: fields["all"] == .bool(true) ? ["dead", "failed", "disabled"] : ["dead"], at: state.clock())
        return jsonResponse(["webhook": .string(name), "replayed": .number(Double(replayed))])
    }

    /// Sends one signed `webhook.test` delivery now and reports the answer.
    func test(_ request: Request, name: String) async throws -> Response {
        let tenant = try tenant(request, scope: .write)
        _ = try webhook(name, tenant: tenant)
        guard let endpoint = state.webhookEndpoints.first(where: { $0.name == name && $0.tenant == tenant }) else {
            throw APIError(status: .conflict, code: "not_configured", message: "webhook \(name) has no usable secret (whsec_...) in this daemon's environment")
        }
        let id = "msg_test_" + IDGenerator().next().replacingOccurrences(of: "-", with: "")
        let timestamp = state.clock() / 1000
        let payload: JSONValue = ["event_type": "webhook.test", "timestamp": .string(Instant.format(milliseconds: state.clock())), "data": ["webhook": .string(name)]]
        let body = Array(payload.jsonText().utf8)
        let headers = endpoint.requestHeaders(id: id, timestamp: timestamp, body: body)
        let result = await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(returning: CurlSender().post(
                    url: endpoint.url, headers: headers, body: body,
                    connectTimeoutMilliseconds: endpoint.connectTimeoutMilliseconds, totalTimeoutMilliseconds: endpoint.totalTimeoutMilliseconds))
            }
        }
        return jsonResponse([
            "webhook": .string(name), "delivery_id": .string(id),
            "status": result.status.map { .number(Double($0)) } ?? .null,
            "error": result.error.map(JSONValue.string) ?? .null,
        ])
    }
}
