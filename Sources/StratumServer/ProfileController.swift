import Foundation
import Hummingbird
import StratumCrypto
import StratumDefinitions
import StratumEngine
import StratumJSON
import StratumStore

/// The read API: profiles by id or identifier, and their events. Admin
/// tokens (Bearer) select the tenant; every query stays inside it.
struct ProfileController: Sendable {
    let state: ServerState
    /// The seed's lookup limit: 300 per minute per tenant.
    static let lookupsPerMinute = 300

    func register(on router: Router<StratumRequestContext>) {
        router.get("/v1/profiles/lookup") { request, _ in try await self.lookup(request) }
        router.get("/v1/profiles/:id") { request, context in try await self.profile(request, id: try context.parameters.require("id")) }
        router.get("/v1/profiles/:id/events") { request, context in try await self.events(request, id: try context.parameters.require("id")) }
        router.get("/v1/profiles/:id/segments") { request, context in try await self.segments(request, id: try context.parameters.require("id")) }
    }

    /// The tenant of a read-scoped admin token, after the lookup rate limit.
    func tenant(_ request: Request) throws(APIError) -> String {
        try state.adminTenant(request, scope: .read, limit: ("lookup", Self.lookupsPerMinute, "profile lookups"))
    }

    /// An absorbed id redirects to the profile it was merged into, keeping the
    /// query (a page size, a cursor), so a client paging through the events
    /// goes on where it was.
    static func redirect(_ request: Request, to survivor: String, path: String) -> Response {
        let query = request.uri.query.map { "?" + $0 } ?? ""
        return jsonResponse(["merged_into": .string(survivor)], status: .permanentRedirect, headers: [.location: "/v1/profiles/\(survivor)\(path)\(query)"])
    }

    func profile(_ request: Request, id: String) async throws -> Response {
        let tenant = try tenant(request)
        let found = try await state.store.read { reader -> (ProfileRecord?, String?, [IdentifierRecord], [ConsentRecord]) in
            if let profile = try reader.profile(tenant: tenant, id: id) {
                return (profile, nil, try reader.identifiers(tenant: tenant, profileID: id), try reader.consents(tenant: tenant, profileID: id))
            }
            return (nil, try reader.survivor(tenant: tenant, absorbedID: id), [], [])
        }
        if let survivor = found.1 {
            return Self.redirect(request, to: survivor, path: "")
        }
        guard let profile = found.0 else { throw APIError.notFound("no profile \(id)") }
        return jsonResponse(render(profile, identifiers: found.2, consents: found.3))
    }

    /// `?identifier=email:foo@example.com` (any identifier type); the value is
    /// normalised and hashed as ingestion does, or given as `sha256:<hex>`.
    func lookup(_ request: Request) async throws -> Response {
        let tenant = try tenant(request)
        guard let parameter = request.uri.queryParameters["identifier"].map(String.init), let colon = parameter.firstIndex(of: ":") else {
            throw APIError.badRequest("invalid_query", "give identifier=<type>:<value>, e.g. identifier=email:jane@example.com", path: "identifier")
        }
        let type = String(parameter[..<colon])
        let value = String(parameter[parameter.index(after: colon)...])
        let hash: String
        if value.hasPrefix("sha256:") {
            hash = String(value.dropFirst(7)).lowercased()
            guard hash.count == 64, hash.allSatisfy(\.isHexDigit) else {
                throw APIError.badRequest("invalid_identifier", "a sha256: value is 64 hexadecimal digits, the SHA-256 of the normalised value", path: "identifier")
            }
        } else {
            guard let rules = state.runtime().tenants[tenant]?.identity, let identifier = rules.identifier(type: type, raw: value) else {
                throw APIError.badRequest("invalid_identifier", "\"\(value)\" is not a usable \(type) identifier (empty, blocked or malformed)", path: "identifier")
            }
            hash = identifier.hash
        }
        let match = try await state.store.read { try $0.matches(tenant: tenant, identifiers: [(type, hash)]).first }
        guard let match else { throw APIError.notFound("no profile holds that \(type)") }
        let found = try await state.store.read { reader in
            (try reader.profile(tenant: tenant, id: match.profileID), try reader.identifiers(tenant: tenant, profileID: match.profileID), try reader.consents(tenant: tenant, profileID: match.profileID))
        }
        guard let profile = found.0 else { throw APIError.notFound("no profile holds that \(type)") }
        return jsonResponse(render(profile, identifiers: found.1, consents: found.2))
    }

    /// A profile's events, newest first: `?limit=50&cursor=<opaque>`.
    func events(_ request: Request, id: String) async throws -> Response {
        let tenant = try tenant(request)
        let query = request.uri.queryParameters
        let limit = try pageSize(request, default: 50, maximum: 500)
        var cursor: EventCursor?
        if let text = query["cursor"] {
            guard let decoded = Self.decodeCursor(String(text)) else { throw APIError.badRequest("invalid_query", "the cursor is not one this API returned", path: "cursor") }
            cursor = decoded
        }
        let (pageSize, after) = (limit, cursor)
        let result = try await state.store.read { reader -> (exists: Bool, survivor: String?, events: [EventRecord]) in
            guard try reader.profile(tenant: tenant, id: id) != nil else {
                return (false, try reader.survivor(tenant: tenant, absorbedID: id), [])
            }
            return (true, nil, try reader.events(tenant: tenant, profileID: id, after: after, limit: pageSize + 1))
        }
        if let survivor = result.survivor {
            return Self.redirect(request, to: survivor, path: "/events")
        }
        guard result.exists else { throw APIError.notFound("no profile \(id)") }
        let page = Array(result.events.prefix(limit))
        let next: JSONValue = result.events.count > limit ? page.last.map { .string(Self.encodeCursor(EventCursor(eventTime: $0.eventTime, sequence: $0.sequence ?? 0))) } ?? .null : .null
        return jsonResponse(["events": .array(page.map(render)), "next_cursor": next])
    }

    /// The segments a profile belongs to, and its computed traits and RFM scores.
    func segments(_ request: Request, id: String) async throws -> Response {
        let tenant = try tenant(request)
        guard let evaluator = state.evaluator else { throw APIError.notFound("segments are not evaluated by this server") }
        let found = try await state.store.read { reader -> (ProfileRecord?, String?) in
            if let profile = try reader.profile(tenant: tenant, id: id) { return (profile, nil) }
            return (nil, try reader.survivor(tenant: tenant, absorbedID: id))
        }
        if let survivor = found.1 {
            return Self.redirect(request, to: survivor, path: "/segments")
        }
        guard let profile = found.0 else { throw APIError.notFound("no profile \(id)") }
        // Memberships of a segment whose definition was removed stay in the store
        // (a definition put back finds them); they are no segment of the tenant now.
        let defined = Set(evaluator.definitions.segments.map(\.definition).filter { $0.tenantID == tenant }.map(\.name))
        let names = try await evaluator.store.segments(tenant: tenant, profileID: id).filter(defined.contains)
        return jsonResponse(["profile_id": .string(id), "segments": .array(names.map(JSONValue.string)), "computed_traits": .object(profile.computedTraits)])
    }

    static func encodeCursor(_ cursor: EventCursor) -> String {
        Data("\(cursor.eventTime).\(cursor.sequence)".utf8).base64EncodedString()
    }

    static func decodeCursor(_ text: String) -> EventCursor? {
        guard let data = Data(base64Encoded: text) else { return nil }
        let parts = String(decoding: data, as: UTF8.self).split(separator: ".")
        guard parts.count == 2, let time = Int64(parts[0]), let sequence = Int64(parts[1]) else { return nil }
        return EventCursor(eventTime: time, sequence: sequence)
    }

    func render(_ profile: ProfileRecord, identifiers: [IdentifierRecord], consents: [ConsentRecord]) -> JSONValue {
        let churn = state.runtime().tenants[profile.tenantID]?.churnPeriodDays ?? 90
        // The records in force now: one stamped later (a clock running ahead) is not yet.
        let now = state.clock()
        // `consents` come in the order they were recorded; the position breaks ties.
        var latest: [String: (position: Int, granted: Bool)] = [:]
        for (position, record) in consents.enumerated() where record.recordedAt <= now { latest[record.consentType] = (position, record.granted) }
        // A type's state is its latest record or the global `all` toggle's, whichever came
        // later (as the webhook gate and consent.<type> rules read it): ads granted at 10:00
        // and all revoked at 11:00 is ads revoked.
        let global = latest["all"]
        let consent = JSONObject(latest.sorted { $0.key < $1.key }.map { type, own in
            guard type != "all", let global, global.position > own.position else { return (type, .bool(own.granted)) }
            return (type, .bool(global.granted))
        })
        return [
            "id": .string(profile.id),
            "tenant": .string(profile.tenantID),
            "external_id": profile.externalID.map(JSONValue.string) ?? .null,
            "lifecycle_stage": .string(profile.lifecycleStage(at: state.clock(), churnPeriodDays: churn).rawValue),
            "first_seen_at": .string(Instant.format(milliseconds: profile.firstSeenAt)),
            "last_seen_at": .string(Instant.format(milliseconds: profile.lastSeenAt)),
            "total_events": .number(Double(profile.totalEvents)),
            "total_sessions": .number(Double(profile.totalSessions)),
            "total_purchases": .number(Double(profile.totalPurchases)),
            "total_revenue": .string("\(profile.totalRevenue)"),
            "profile_data": .object(profile.profileData),
            "computed_traits": .object(profile.computedTraits),
            "canonical_identity": profile.canonicalType.map { ["type": .string($0), "hash": .string(profile.canonicalHash ?? "")] } ?? .null,
            "identifiers": .array(identifiers.map { identifier in
                var object: JSONObject = ["type": .string(identifier.type), "hash": .string(identifier.hash), "is_primary": .bool(identifier.isPrimary), "confidence_score": .number(identifier.confidence)]
                if let value = identifier.value { object["value"] = .string(value) }
                return .object(object)
            }),
            "consent": .object(consent),
        ]
    }

    func render(_ event: EventRecord) -> JSONValue {
        [
            "id": .string(event.id),
            "type": .string(event.type.rawValue),
            "event_name": .string(event.eventName),
            "event_time": .string(Instant.format(milliseconds: event.eventTime)),
            "received_at": .string(Instant.format(milliseconds: event.receivedAt)),
            "message_id": .string(event.idempotencyKey),
            "source": event.sourceID.map(JSONValue.string) ?? .null,
            "properties": .object(event.properties),
            "context": .object(event.context),
            "emq_score": event.emqScore.map(JSONValue.number) ?? .null,
        ]
    }

}
