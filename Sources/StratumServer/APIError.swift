import Foundation
import Hummingbird
import StratumStore
import StratumJSON

/// An error a client sees: a status and a JSON body saying what is wrong and where.
///
/// Body: `{"error": {"status": 400, "code": "invalid_message", "message": "...", "path": "batch[3].userId"}}`.
struct APIError: HTTPResponseError {
    var status: HTTPResponse.Status
    var code: String
    var message: String
    var path: String?
    var headers: HTTPFields = [:]

    func response(from request: Request, context: some RequestContext) throws -> Response {
        var error: JSONObject = ["status": .number(Double(status.code)), "code": .string(code), "message": .string(message)]
        if let path { error["path"] = .string(path) }
        var headers = self.headers
        headers[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: JSONValue.object(["error": .object(error)]).jsonText() + "\n")))
    }

    static func badRequest(_ code: String, _ message: String, path: String? = nil) -> APIError {
        APIError(status: .badRequest, code: code, message: message, path: path)
    }

    static func unauthorized(_ message: String) -> APIError {
        APIError(status: .unauthorized, code: "unauthorized", message: message, headers: [.wwwAuthenticate: "Basic realm=\"stratum\""])
    }

    static func tooLarge(_ limit: Int) -> APIError {
        APIError(status: .contentTooLarge, code: "body_too_large", message: "the request body is larger than \(limit / 1024) KB")
    }

    static func rateLimited(retryAfter seconds: Int, _ what: String) -> APIError {
        APIError(status: .tooManyRequests, code: "rate_limited", message: "\(what); retry after \(seconds) s", headers: [.retryAfter: String(seconds)])
    }

    static func notFound(_ message: String) -> APIError {
        APIError(status: .notFound, code: "not_found", message: message)
    }
}

/// Refuses a request body member other than `allowed`: a misspelt one must not
/// be read as absent (and widen what the request does).
func refuseUnknownMembers(_ fields: JSONObject, allowed: Set<String>, code: String, usage: String) throws(APIError) {
    if let unknown = fields.keys.sorted().first(where: { !allowed.contains($0) }) {
        throw APIError.badRequest(code, "unknown member \"\(unknown)\"; \(usage)", path: unknown)
    }
}

/// A JSON response.
func jsonResponse(_ value: JSONValue, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
    var headers = headers
    headers[.contentType] = "application/json; charset=utf-8"
    return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: value.jsonText() + "\n")))
}

/// The `limit` query parameter of a paged listing: `default` when absent,
/// 400 naming the parameter when not a whole number in 1...`maximum`.
func pageSize(_ request: Request, default fallback: Int, maximum: Int) throws(APIError) -> Int {
    guard let text = request.uri.queryParameters["limit"] else { return fallback }
    guard let parsed = Int(String(text)), (1...maximum).contains(parsed) else {
        throw APIError.badRequest("invalid_query", "limit must be a whole number from 1 to \(maximum)", path: "limit")
    }
    return parsed
}

/// Errors the framework raises (no route for the method and path, a body
/// over a limit) answered as JSON like ours, instead of an empty body.
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError {
            switch error.status {
            case .notFound:
                throw APIError.notFound("no route for \(request.method) \(request.uri.path); the API is described in schemas/openapi.json")
            case .contentTooLarge:
                throw APIError(status: error.status, code: "body_too_large", message: error.body ?? "the request body is too large")
            default:
                throw APIError(status: error.status, code: "http_error", message: error.body ?? error.status.reasonPhrase, headers: error.headers)
            }
        } catch let error as APIError {
            throw error
        } catch {
            // Anything else (a store error in a segment run) is the server's fault, and still JSON;
            // the log has the whole error, the client its gist.
            context.logger.error("A request failed on the server.", metadata: ["error": "\(error)", "path": "\(request.uri.path)"])
            throw APIError(status: .internalServerError, code: "internal_error", message: "the request failed on the server: \(StoreError.from(error).message)")
        }
    }
}
