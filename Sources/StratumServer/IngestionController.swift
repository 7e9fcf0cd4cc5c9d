import CompressNIO
import Foundation
import Hummingbird
import StratumEngine
import StratumJSON
import StratumStore

/// The Segment HTTP Tracking API: `/v1/track`, `/identify`, `/page`,
/// `/screen`, `/group`, `/alias` and `/batch`. A 200 means committed.
struct IngestionController: Sendable {
    let state: ServerState

    /// Every ingestion route, each under its Segment name and the one-letter
    /// alias Segment's client SDKs post to (analytics.js `/v1/t`, the mobile
    /// SDKs' `/v1/b`).
    static let routes: [(path: String, type: MessageType?)] = MessageType.allCases.flatMap { type in
        [("/v1/\(type.rawValue)", type), ("/v1/\(type.rawValue.prefix(1))", type)]
    } + [("/v1/batch", nil), ("/v1/b", nil)]

    func register(on router: Router<StratumRequestContext>) {
        for (path, type) in Self.routes {
            router.post(RouterPath(path)) { request, context in
                try await self.counted {
                    if let type { try await self.single(request, context: context, type: type) } else { try await self.batch(request, context: context) }
                }
            }
        }
        router.get("/v1/pixel/:type") { request, context in
            try await self.counted { try await self.pixel(request, type: try context.parameters.require("type")) }
        }
    }

    /// Counts requests that end in an error for /metrics.
    func counted(_ handle: () async throws -> Response) async throws -> Response {
        do {
            return try await handle()
        } catch {
            state.rejectedRequests.increment()
            throw error
        }
    }

    /// A transparent 1×1 GIF, the pixel endpoint's answer.
    static let pixelGIF: [UInt8] = [
        0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF,
        0x21, 0xF9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2C, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02,
        0x02, 0x44, 0x01, 0x00, 0x3B,
    ]

    /// `GET /v1/pixel/{track|page|identify}?data=<base64 JSON>`, Segment's pixel
    /// API, for `website_pixel` sources only (their key is public in the page).
    func pixel(_ request: Request, type name: String) async throws -> Response {
        guard let type = MessageType(rawValue: name), [.track, .page, .identify, .screen].contains(type) else {
            throw APIError.notFound("no pixel endpoint /v1/pixel/\(name); use track, page, screen or identify")
        }
        // A HEAD (a link checker, a prefetch) learns the answer's headers; it records nothing.
        guard request.method != .head else {
            return Response(status: .ok, headers: [.contentType: "image/gif", .cacheControl: "no-store", .contentLength: "\(Self.pixelGIF.count)"])
        }
        guard let encoded = request.uri.queryParameters["data"].map(String.init) else {
            throw APIError.badRequest("invalid_message", "the data query parameter is required: base64 of the message JSON", path: "data")
        }
        var base64 = encoded.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        guard base64.utf8.count <= MessageParser.maximumMessageBytes * 4 / 3 + 4, let data = Data(base64Encoded: base64) else {
            throw APIError.badRequest("invalid_message", "data is not base64 of a message under 32 KB", path: "data")
        }
        let body: JSONValue
        do {
            body = try JSONParser.parse(Array(data))
        } catch {
            throw APIError.badRequest("invalid_json", "data does not decode to JSON: \(error.message) at column \(error.column)", path: "data")
        }
        let source = try authenticate(request, body: body)
        guard source.type == .websitePixel else {
            throw APIError(status: .forbidden, code: "forbidden", message: "source \(source.name) is not a website_pixel source; its key must not appear in URLs")
        }
        try rateLimit(source)
        let message: IncomingMessage
        do {
            message = try MessageParser.parse(body, type: type, path: "", receivedAt: state.clock(), newMessageID: state.newMessageID)
        } catch {
            throw APIError.badRequest("invalid_message", error.message, path: error.path.isEmpty ? nil : error.path)
        }
        try enforcePlan(message, source: source)
        try await commit([message], source: source)
        return Response(
            status: .ok, headers: [.contentType: "image/gif", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(bytes: Self.pixelGIF)))
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
        try enforcePlan(message, source: source)
        try await commit([message], source: source)
        return jsonResponse(["success": true])
    }

    /// A batch stores its valid messages and answers 200 with `rejected`
    /// listing the others (index, code, path, message): one bad event must
    /// not cost the rest, since SDKs drop a batch answered 4xx and do not
    /// retry it. Only a batch with no valid message at all is a 400.
    func batch(_ request: Request, context: StratumRequestContext) async throws -> Response {
        let (body, size) = try await Self.json(request, limit: MessageParser.maximumBatchBytes)
        let source = try authenticate(request, body: body)
        try rateLimit(source)
        let items: [Result<IncomingMessage, MessageError>]
        do {
            items = try MessageParser.parseBatch(body, receivedAt: state.clock(), bodySize: size, newMessageID: state.newMessageID)
        } catch {
            throw APIError.badRequest("invalid_batch", error.message, path: error.path.isEmpty ? nil : error.path)
        }
        var accepted: [IncomingMessage] = []
        var rejected: [(index: Int, error: APIError)] = []
        for (index, item) in items.enumerated() {
            switch item {
            case .success(let message):
                if let (field, text) = planViolation(message, source: source) {
                    rejected.append((index, .badRequest("tracking_plan_violation", text, path: "batch[\(index)]." + field)))
                } else {
                    accepted.append(message)
                }
            case .failure(let error):
                rejected.append((index, .badRequest("invalid_message", error.message, path: error.path.isEmpty ? nil : error.path)))
            }
        }
        if let first = rejected.first, accepted.isEmpty {
            let others = rejected.count - 1
            let more = others > 0 ? " (and \(others) other message\(others == 1 ? "" : "s"); each is listed when a batch stores some)" : ""
            throw APIError.badRequest(first.error.code == "invalid_message" ? "invalid_batch" : first.error.code, first.error.message + more, path: first.error.path)
        }
        try await commit(accepted, source: source)
        // Counted once the others are stored (a batch refused whole counts as a rejected request).
        if !rejected.isEmpty { state.rejectedMessages.increment(by: Int64(rejected.count)) }
        var answer: JSONObject = ["success": true]
        if !rejected.isEmpty {
            answer["rejected"] = .array(rejected.map { index, error in
                var item: JSONObject = ["index": .number(Double(index)), "code": .string(error.code), "message": .string(error.message)]
                if let path = error.path { item["path"] = .string(path) }
                return .object(item)
            })
        }
        return jsonResponse(.object(answer))
    }

    /// The field and reason when `message` breaks its source's tracking plan;
    /// an unplanned event under `warn` is logged and accepted.
    func planViolation(_ message: IncomingMessage, source: SourceRuntime) -> (String, String)? {
        guard let plan = source.trackingPlan else { return nil }
        switch plan.check(message) {
        case .conforms: return nil
        case .warning(let text):
            state.logger.warning("Accepted an unplanned event.", metadata: ["detail": "\(text)"])
            return nil
        case .violation(let field, let text): return (field, text)
        }
    }

    /// Refuses a single message that breaks its source's tracking plan.
    func enforcePlan(_ message: IncomingMessage, source: SourceRuntime) throws(APIError) {
        if let (field, text) = planViolation(message, source: source) {
            throw .badRequest("tracking_plan_violation", text, path: field)
        }
    }

    func commit(_ messages: [IncomingMessage], source: SourceRuntime) async throws {
        do {
            _ = try await state.writer.submit(messages, source: source)
            state.acceptedMessages.increment(by: Int64(messages.count))
        } catch IngestionWriter.WriterError.shuttingDown {
            throw APIError(status: .serviceUnavailable, code: "shutting_down", message: "the daemon is shutting down; retry", headers: [.retryAfter: "5"])
        } catch {
            state.logger.error("A request's events were not stored.", metadata: ["error": "\(error)", "source": "\(source.name)"])
            let underlying = if case IngestionWriter.WriterError.failed(let stored) = error { stored } else { error }
            let cause = StoreError.from(underlying)
            // Another process (an import, a backup) holding the store is no fault of the request.
            if cause.isBusy {
                throw APIError(status: .serviceUnavailable, code: "store_busy", message: "the store is busy (\(cause.message)); the events were not stored; retry", headers: [.retryAfter: "1"])
            }
            throw APIError(status: .internalServerError, code: "store_error", message: "the events were not stored: \(cause.message); retry")
        }
    }

    /// The request body as JSON and its size, refusing bodies over `limit` (413) and bad JSON (400).
    /// A gzip or deflate body (Segment's mobile SDKs compress theirs) is
    /// inflated first, and `limit` applies to what it inflates to.
    static func json(_ request: Request, limit: Int) async throws -> (JSONValue, Int) {
        let algorithm: CompressionAlgorithm?
        switch request.headers[.contentEncoding]?.lowercased().trimmingCharacters(in: .whitespaces) {
        case nil, "", "identity": algorithm = nil
        case "gzip", "x-gzip": algorithm = .gzip()
        case "deflate": algorithm = .zlib()
        case let encoding?:
            throw APIError(status: .unsupportedMediaType, code: "unsupported_encoding", message: "Content-Encoding \(encoding) is not supported; send JSON as it is, or gzip or deflate it")
        }
        if let length = request.headers[.contentLength].flatMap(Int.init), length > limit { throw APIError.tooLarge(limit) }
        var buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: limit)
        } catch {
            throw APIError.tooLarge(limit)
        }
        if let algorithm {
            do {
                // maxSize bounds the memory (allocations round up past it); the limit is checked exactly below.
                buffer = try buffer.decompress(with: algorithm, maxSize: limit)
            } catch let error as CompressNIOError where error == .bufferOverflow {
                throw APIError.tooLarge(limit)
            } catch {
                throw APIError.badRequest("invalid_encoding", "the body is not valid \(algorithm) data (Content-Encoding): \(error)")
            }
        }
        guard buffer.readableBytes <= limit else { throw APIError.tooLarge(limit) }
        // A byte order mark is no part of the JSON; some HTTP clients write one.
        if buffer.readableBytesView.starts(with: [0xEF, 0xBB, 0xBF]) { buffer.moveReaderIndex(forwardBy: 3) }
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
