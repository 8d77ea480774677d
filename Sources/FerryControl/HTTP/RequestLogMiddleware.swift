import Hummingbird

/// Logs each request once at debug level (constant message, dotted keys); the
/// trace context middleware has made its trace current, so the line carries it.
struct RequestLogMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let response = try await next(request, context)
        context.logger.debug(
            "http request",
            metadata: [
                "http.method": "\(request.method)", "http.route": "\(context.endpointPath ?? "unmatched")",
                "http.status": "\(response.status.code)",
            ])
        return response
    }
}
