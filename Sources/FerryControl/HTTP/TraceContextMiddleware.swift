import FerryCore
import HTTPTypes
import Hummingbird
import W3CTraceContext

/// Joins the caller's W3C trace (`traceparent`) or starts a new one, makes it
/// the current trace while the request is served (so every log line carries
/// it), and returns it in the response's `traceparent` header.
struct TraceContextMiddleware<Context: RequestContext>: RouterMiddleware {
    private static var traceParent: HTTPField.Name { HTTPField.Name("traceparent")! }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let incoming = request.headers[Self.traceParent].flatMap { try? W3CTraceContext.TraceContext(traceParentHeaderValue: $0) }
        let trace = W3CTraceContext.TraceContext(
            traceID: incoming?.traceID ?? .random(),
            spanID: .random(),
            flags: incoming?.flags ?? .sampled,
            state: incoming?.state ?? TraceState([]))
        let metadata = TraceMetadata(traceID: "\(trace.traceID)", spanID: "\(trace.spanID)")
        var response: Response
        do {
            response = try await metadata.withCurrent { try await next(request, context) }
        } catch let error as any HTTPResponseError {
            response = try error.response(from: request, context: context)
        }
        response.headers[Self.traceParent] = trace.traceParentHeaderValue
        return response
    }
}
