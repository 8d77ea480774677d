import FerryCore
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore

/// Who may use the state-changing endpoints, and what they do.
public struct AdminAccess: Sendable {
    /// The token from `admin.token-file`; nil: the endpoints answer 403.
    public var token: AdminToken?
    /// What `POST /v1/reopen` does (reopen the log file and `file:` upstreams; returns what it reopened).
    public var reopen: @Sendable () -> [String]
    /// What `POST /v1/reload` does (nil: no reloader, the endpoint answers 503).
    public var reload: (@Sendable () async -> ReloadStats.Outcome)?
    public var logger: Logger

    public init(
        token: AdminToken?, logger: Logger, reload: (@Sendable () async -> ReloadStats.Outcome)? = nil,
        reopen: @escaping @Sendable () -> [String]
    ) {
        self.token = token
        self.reopen = reopen
        self.reload = reload
        self.logger = logger
    }

    /// No token: admin endpoints are off.
    public static var off: AdminAccess { AdminAccess(token: nil, logger: Logger(label: "ferry.admin")) { [] } }
}

/// The HTTP control plane: health, readiness, status and log intake, served by
/// Hummingbird in the same process as the data plane.
public enum ControlPlane {
    /// Builds the router; the relay is looked up in `handle` on every request
    /// (until it has started: `/healthz` 200, everything else 503 `starting`).
    public static func makeRouter(
        configuration: FerryConfiguration, handle: RelayHandle, metrics: MetricsEndpoint, admin: AdminAccess = .off
    ) -> Router<FerryRequestContext> {
        let router = Router(context: FerryRequestContext.self)
        router.add(middleware: HTTPMetricsMiddleware(registry: metrics.registry))
        router.add(middleware: TraceContextMiddleware())
        router.add(middleware: RequestLogMiddleware())
        router.get("metrics") { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: metrics.render())))
        }
        HealthRoutes(handle: handle).register(on: router)
        StatusRoutes(handle: handle).register(on: router)
        LogIntakeRoutes(handle: handle, limit: configuration.httpMaxBodyBytes).register(on: router)
        AdminRoutes(token: admin.token, actions: .init(reopen: admin.reopen, reload: admin.reload), logger: admin.logger).register(on: router)
        return router
    }

    /// The HTTP server as a `Service` for the process's `ServiceGroup`.
    ///
    /// - Parameter onServerRunning: called with the bound channel (tests read the port from it).
    public static func makeApplication(
        configuration: FerryConfiguration,
        handle: RelayHandle,
        metrics: MetricsEndpoint,
        admin: AdminAccess = .off,
        logger: Logger,
        onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let address = configuration.httpAddress
        let softLimit = HTTPConnectionBudget.raiseDescriptorLimit()
        let open = ProcessMetrics.openDescriptors()
        let cap = HTTPConnectionBudget.cap(softLimit: softLimit, open: open, configured: configuration.httpMaxConnections)
        logger.info(
            "http connection limit",
            metadata: [
                "http.max_connections": "\(cap)", "process.fd_limit": "\(softLimit)", "process.fds_open": "\(open)",
                "process.fds_reserved": "\(HTTPConnectionBudget.reserve)",
            ])
        let headerTimeout = TimeAmount(configuration.httpHeaderTimeout)
        let idleTimeout = TimeAmount(configuration.httpIdleTimeout)
        return Application(
            router: makeRouter(configuration: configuration, handle: handle, metrics: metrics, admin: admin),
            server: HTTPServerBuilder { responder in
                GuardedHTTP1Channel(responder: responder, headerTimeout: headerTimeout, idleTimeout: idleTimeout)
            },
            configuration: .init(
                address: .hostname(address.host, port: address.port), serverName: "ferry",
                availableConnectionsDelegate: MaximumAvailableConnections(cap, logger: logger)),
            onServerRunning: onServerRunning,
            logger: logger)
    }
}
