import Hummingbird

/// Browsers send events cross-origin (analytics.js on a shop's own pages
/// posting to the daemon), so the ingestion routes answer CORS preflights
/// and let any origin read their answers. Nothing there rides on cookies: a
/// browser source's write key is public by nature. The read and admin API
/// gets no CORS headers.
struct IngestionCORSMiddleware<Context: RequestContext>: RouterMiddleware {
    static var ingestionPaths: Set<String> { Set(IngestionController.routes.map(\.path)) }
    let paths = Self.ingestionPaths

    func isIngestion(_ path: String) -> Bool {
        // The router serves /v1/track/ as /v1/track.
        let path = path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
        return paths.contains(path) || path.hasPrefix("/v1/pixel/")
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard isIngestion(request.uri.path) else { return try await next(request, context) }
        if request.method == .options {
            var headers: HTTPFields = [
                .accessControlAllowOrigin: "*",
                .accessControlAllowMethods: "POST, GET, OPTIONS",
                .accessControlMaxAge: "86400",
            ]
            headers[.accessControlAllowHeaders] = request.headers[.accessControlRequestHeaders] ?? "Content-Type, Authorization"
            return Response(status: .noContent, headers: headers)
        }
        // Added outside JSONErrorMiddleware, so every error reaches here as an APIError.
        do {
            var response = try await next(request, context)
            response.headers[.accessControlAllowOrigin] = "*"
            response.headers[.accessControlExposeHeaders] = "Retry-After"
            return response
        } catch var error as APIError {
            // A refused event is readable too (analytics.js logs the reason), and so is a 429's Retry-After.
            error.headers[.accessControlAllowOrigin] = "*"
            error.headers[.accessControlExposeHeaders] = "Retry-After"
            throw error
        }
    }
}
