import Foundation
import Hummingbird
import StratumDefinitions
import StratumEngine
import StratumJSON
import StratumStore

/// Segments: list with the seed's metrics, members with cursors, refresh now,
/// and static segments' members managed by API.
struct SegmentController: Sendable {
    let state: ServerState

    func register(on router: Router<StratumRequestContext>) {
        router.get("/v1/segments") { request, _ in try await self.list(request) }
        router.get("/v1/segments/:name/members") { request, context in try await self.members(request, name: try context.parameters.require("name")) }
        router.post("/v1/segments/:name/refresh") { request, context in try await self.refresh(request, name: try context.parameters.require("name")) }
        router.post("/v1/segments/:name/members") { request, context in try await self.changeMembers(request, name: try context.parameters.require("name")) }
    }

    func evaluator() throws(APIError) -> DefinitionEvaluator {
        guard let evaluator = state.evaluator else { throw APIError.notFound("segments are not evaluated by this server") }
        return evaluator
    }

    func segment(_ name: String, tenant: String) throws(APIError) -> SegmentDefinition {
        let evaluator = try evaluator()
        guard let segment = evaluator.definitions.segments.first(where: { $0.definition.name == name && $0.definition.tenantID == tenant })?.definition else {
            let known = evaluator.definitions.segments.filter { $0.definition.tenantID == tenant }.map(\.definition.name)
            let hint = Suggestion.closest(to: name, in: known).map { "; did you mean \($0)?" } ?? ""
            throw APIError.notFound("no segment \(name)\(hint)")
        }
        return segment
    }

    func list(_ request: Request) async throws -> Response {
        let tenant = try state.adminTenant(request, scope: .read, limit: nil)
        let evaluator = try evaluator()
        let states = Dictionary(try await evaluator.store.segmentStates(tenant: tenant).map { ($0.segment, $0) }) { first, _ in first }
        let segments = evaluator.definitions.segments.map(\.definition).filter { $0.tenantID == tenant }.sorted { $0.name < $1.name }
        let now = state.clock()
        return jsonResponse(["segments": .array(segments.map { segment in
            let recorded = states[segment.name]
            // A static segment has nothing to compute: active unless a draft, never
            // scheduled (whatever it recorded when it was computed, before a change of type).
            let isStatic = segment.effectiveType == .static
            let status = segment.status == .draft ? "draft" : isStatic ? "active" : recorded?.status(at: now, scheduled: segment.autoRefresh != false) ?? "stale"
            return [
                "name": .string(segment.name),
                "display_name": segment.displayName.map(JSONValue.string) ?? .null,
                "description": segment.description.map(JSONValue.string) ?? .null,
                "segment_type": .string(segment.effectiveType.rawValue),
                "status": .string(status),
                "profile_count": .number(Double(recorded?.profileCount ?? 0)),
                "last_computed_at": recorded?.lastComputedAt.map { .string(Instant.format(milliseconds: $0)) } ?? .null,
                "computation_duration_ms": recorded?.computationDurationMilliseconds.map { .number(Double($0)) } ?? .null,
                "next_refresh_at": isStatic || segment.status == .draft ? .null : recorded?.nextRefreshAt.map { .string(Instant.format(milliseconds: $0)) } ?? .null,
                "auto_refresh": .bool(segment.autoRefresh ?? true),
            ]
        })])
    }

    /// `?limit=100&cursor=<opaque>`: members by profile id, with canonical identity.
    func members(_ request: Request, name: String) async throws -> Response {
        let tenant = try state.adminTenant(request, scope: .read, limit: nil)
        _ = try segment(name, tenant: tenant)
        let query = request.uri.queryParameters
        let limit = try pageSize(request, default: 100, maximum: 1_000)
        var cursor: String?
        if let text = query["cursor"] {
            // A made-up cursor would silently end (or restart) the pagination.
            guard let id = Self.decodeCursor(String(text)) else { throw APIError.badRequest("invalid_query", "the cursor is not one this API returned", path: "cursor") }
            cursor = id
        }
        let store = try evaluator().store
        let ids = try await store.segmentMembers(tenant: tenant, segment: name, after: cursor, limit: limit + 1)
        let page = Array(ids.prefix(limit))
        let profiles = try await state.store.read { reader in try page.compactMap { try reader.profile(tenant: tenant, id: $0) } }
        return jsonResponse([
            "members": .array(profiles.map { profile in
                [
                    "profile_id": .string(profile.id),
                    "canonical_identity": profile.canonicalType.map { ["type": .string($0), "hash": .string(profile.canonicalHash ?? "")] } ?? .null,
                ]
            }),
            "next_cursor": ids.count > limit ? page.last.map { .string(Self.encodeCursor($0)) } ?? .null : .null,
        ])
    }

    /// The last profile id of a page, as an opaque cursor.
    static func encodeCursor(_ id: String) -> String {
        Data("member:\(id)".utf8).base64EncodedString()
    }

    static func decodeCursor(_ text: String) -> String? {
        guard let data = Data(base64Encoded: text) else { return nil }
        let decoded = String(decoding: data, as: UTF8.self)
        guard decoded.hasPrefix("member:"), decoded.count > 7 else { return nil }
        return String(decoded.dropFirst(7))
    }

    /// Evaluates a dynamic or computed segment now.
    func refresh(_ request: Request, name: String) async throws -> Response {
        let tenant = try state.adminTenant(request, scope: .write, limit: nil)
        let segment = try segment(name, tenant: tenant)
        guard DefinitionEvaluator.isEvaluated(segment) else {
            throw APIError(status: .conflict, code: "not_evaluated", message: "segment \(name) is \(segment.status == .draft ? "a draft" : "static"); it is not evaluated")
        }
        let run = try await evaluator().refresh(segment: segment, asOf: state.clock(), nextRefreshAt: nil)
        return jsonResponse(["segment": .string(name), "profile_count": .number(Double(run.profiles)), "entered": .number(Double(run.entered)), "exited": .number(Double(run.exited))])
    }

    /// A static segment's members: `{"add": [profile ids], "remove": [profile ids]}`.
    func changeMembers(_ request: Request, name: String) async throws -> Response {
        let tenant = try state.adminTenant(request, scope: .write, limit: nil)
        let segment = try segment(name, tenant: tenant)
        guard segment.effectiveType == .static else {
            throw APIError(status: .conflict, code: "not_static", message: "segment \(name) is \(segment.effectiveType.rawValue); only static segments take members by API")
        }
        let (body, _) = try await IngestionController.json(request, limit: MessageParser.maximumBatchBytes)
        let usage = #"send {"add": [profile ids], "remove": [profile ids]}"#
        guard let fields = body.objectValue else { throw APIError.badRequest("invalid_members", usage) }
        try refuseUnknownMembers(fields, allowed: ["add", "remove"], code: "invalid_members", usage: usage)
        func ids(_ key: String) throws(APIError) -> [String] {
            guard let value = fields[key] else { return [] }
            guard let list = value.arrayValue, list.allSatisfy({ $0.stringValue != nil }) else {
                throw APIError.badRequest("invalid_members", "\(key) must be a list of profile ids", path: key)
            }
            return list.compactMap(\.stringValue)
        }
        let (addIDs, removeIDs) = (try ids("add"), try ids("remove"))
        let members = try await evaluator().store.segmentMembers(tenant: tenant, segment: name, after: nil, limit: Int.max)
        // Ids merged into another profile stand for their survivor, as `stratum segment import` reads them;
        // an id that is no profile of this tenant is refused (removing a stored member is always allowed).
        let (add, remove, unknown) = try await state.store.read { reader -> ([String], [String], [(String, String)]) in
            func resolve(_ id: String) throws -> String? { try reader.currentProfileID(tenant: tenant, id: id) }
            var unknown: [(String, String)] = []
            var add: [String] = []
            for id in addIDs {
                if let resolved = try resolve(id) { add.append(resolved) } else { unknown.append(("add", id)) }
            }
            var remove: [String] = []
            for id in removeIDs {
                if let resolved = try resolve(id) { remove.append(resolved) } else if members.contains(id) { remove.append(id) } else { unknown.append(("remove", id)) }
            }
            return (add, remove, unknown)
        }
        if let first = unknown.first {
            let listed = unknown.filter { $0.0 == first.0 }.map(\.1)
            throw APIError.badRequest("invalid_members", "no profile \(listed.prefix(3).joined(separator: ", "))\(listed.count > 3 ? ", ..." : "") in this tenant", path: first.0)
        }
        // The same profile (by any of its ids) both added and removed says two things at once.
        let both = Set(add).intersection(remove)
        if !both.isEmpty {
            throw APIError.badRequest("invalid_members", "profile \(both.sorted().prefix(3).joined(separator: ", "))\(both.count > 3 ? ", ..." : "") is both in add and in remove; send each profile in one of them", path: "remove")
        }
        let run = try await evaluator().changeMembers(of: segment, add: add, remove: remove)
        // Dynamic segments that refer to this one re-evaluate these profiles now, not at their next schedule.
        state.writer.touch(tenant: tenant, profiles: add + remove)
        return jsonResponse(["segment": .string(name), "profile_count": .number(Double(run.profiles)), "entered": .number(Double(run.entered)), "exited": .number(Double(run.exited))])
    }
}
