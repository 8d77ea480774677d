import Hummingbird
import Prometheus

/// Counts requests by route, method and status and times them, under Ferry's
/// own metric names (`ferry_http_requests_total`, `ferry_http_request_duration_seconds`).
/// Routes are the router's patterns, so label values stay bounded.
struct HTTPMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let registry: PrometheusCollectorRegistry

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let status: HTTPResponse.Status
        let response: Response
        do {
            response = try await next(request, context)
            status = response.status
        } catch let error as any HTTPResponseError {
            record(route: context.endpointPath ?? "unmatched", method: request.method, status: error.status, since: start)
            throw error
        }
        record(route: context.endpointPath ?? "unmatched", method: request.method, status: status, since: start)
        return response
    }

    private func record(route: String, method: HTTPRequest.Method, status: HTTPResponse.Status, since start: ContinuousClock.Instant) {
        registry.makeCounter(
            descriptor: MetricNameDescriptor(
                namespace: "ferry", metricName: "http_requests", unitName: "total", helpText: "HTTP requests, by route, method and status."),
            labels: [("route", route), ("method", method.rawValue), ("status", String(status.code))]
        ).increment()
        registry.makeDurationHistogram(
            descriptor: MetricNameDescriptor(
                namespace: "ferry", metricName: "http_request_duration", unitName: "seconds",
                helpText: "Time to answer HTTP requests, by route and method."),
            labels: [("route", route), ("method", method.rawValue)],
            buckets: [
                .microseconds(100), .microseconds(500), .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(50), .milliseconds(100),
                .milliseconds(500), .seconds(1), .seconds(5),
            ]
        ).record(ContinuousClock.now - start)
    }
}
