import Foundation
import Hummingbird
import StratumEngine
import StratumJSON
import StratumStore

/// The Segment HTTP Tracking API: `/v1/track`, `/identify`, `/page`,
/// `/screen`, `/group`, `/alias` and `/batch`. A 200 means committed.
struct IngestionController: Sendable {
    let state: ServerState

    func register(on router: Router<StratumRequestContext>) {
        for type in MessageType.allCases {
            router.post("/v1/\(type.rawValue)") { request, context in
                try await self.single(request, context: context, type: type)
            }
        }
        router.post("/v1/batch") { request, context in
            try await self.batch(request, context: context)
        }
    }

    func single(_ request: Request, context: StratumRequestContext, type: MessageType) async throws -> Response {
        let (body, _) = try await Self.json(request, limit: MessageParser.maximumMessageBytes)
        let source = try authenticate(request, body: body)
        try rateLimit(source)
        let receivedAt = state.clock()
        let message: IncomingMessage
        do {
            message = try MessageParser.parse(body, type: type, path: "", receivedAt: receivedAt, newMessageID: state.newMessageID)
        } catch {
            throw APIError.badRequest("invalid_message", error.message, path: error.path.isEmpty ? nil : error.path)
        }
        try await commit([message], source: source)
        return jsonResponse(["success": true])
    }

    func batch(_ request: Request, context: StratumRequestContext) async throws -> Response {
        let (body, size) = try await Self.json(request, limit: MessageParser.maximumBatchBytes)
        let source = try authenticate(request, body: body)
        try rateLimit(source)
        let messages: [IncomingMessage]
        do {
            messages = try MessageParser.parseBatch(body, receivedAt: state.clock(), bodySize: size, newMessageID: state.newMessageID)
        } catch {
            throw APIError.badRequest("invalid_batch", error.message, path: error.path.isEmpty ? nil : error.path)
        }
        try await commit(messages, source: source)
        return jsonResponse(["success": true])
    }

    func commit(_ messages: [IncomingMessage], source: SourceRuntime) async throws {
        do {
            _ = try await state.writer.submit(messages, source: source)
        } catch IngestionWriter.WriterError.shuttingDown {
            throw APIError(status: .serviceUnavailable, code: "shutting_down", message: "the daemon is shutting down; retry", headers: [.retryAfter: "5"])
        } catch {
            throw APIError(status: .internalServerError, code: "store_error", message: "the events were not stored: \(error)")
        }
    }

    /// The request body as JSON and its size, refusing bodies over `limit` (413) and bad JSON (400).
    static func json(_ request: Request, limit: Int) async throws -> (JSONValue, Int) {
        if let encoding = request.headers[.contentEncoding], encoding.lowercased() != "identity" {
            throw APIError(status: .unsupportedMediaType, code: "unsupported_encoding", message: "Content-Encoding \(encoding) is not supported; send uncompressed JSON (analytics-python: gzip=False, the default)")
        }
        if let length = request.headers[.contentLength].flatMap(Int.init), length > limit { throw APIError.tooLarge(limit) }
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: limit)
        } catch {
            throw APIError.tooLarge(limit)
        }
        guard buffer.readableBytes > 0 else { throw APIError.badRequest("invalid_json", "the request body is empty; send a JSON object") }
        do {
            return (try JSONParser.parse(Array(buffer.readableBytesView)), buffer.readableBytes)
        } catch {
            throw APIError.badRequest("invalid_json", "the body is not valid JSON: \(error.message) at line \(error.line), column \(error.column)")
        }
    }

    /// The source whose write key the request carries (header, or `writeKey` in the body).
    func authenticate(_ request: Request, body: JSONValue) throws(APIError) -> SourceRuntime {
        guard let key = try Credential.fromHeader(request) ?? body["writeKey"]?.stringValue, !key.isEmpty else {
            throw .unauthorized("no write key; send it as the Basic-auth user name, a Bearer token, or writeKey in the body")
        }
        guard let source = state.runtime().source(writeKey: key) else {
            throw .unauthorized("unknown write key")
        }
        return source
    }

    func rateLimit(_ source: SourceRuntime) throws(APIError) {
        if let wait = state.limiter.acquire("source:" + source.tenant + "/" + source.name, perMinute: source.requestsPerMinute) {
            throw .rateLimited(retryAfter: wait, "source \(source.name) allows \(source.requestsPerMinute) requests per minute")
        }
    }
}
