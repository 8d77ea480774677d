import Logging
import ServiceLifecycle

/// Starts the data plane inside the `ServiceGroup` and runs it: on graceful
/// shutdown (SIGTERM, SIGINT) it stops intake and drains before the services
/// listed before it (the HTTP control plane) are shut down, so `/readyz` can
/// say `draining`. A failed start throws, which shuts the whole group down
/// gracefully (`failureTerminationBehavior: .gracefullyShutdownGroup` in `serve`).
/// Under systemd (`Type=notify`) it says `READY=1` once the listeners are bound
/// and `STOPPING=1` when the graceful shutdown begins.
public struct RelayService: Service {
    let configuration: FerryConfiguration
    let logger: Logger
    let latency: LatencyRecorders
    let handle: RelayHandle
    let notifier: SystemdNotifier?

    public init(
        configuration: FerryConfiguration, logger: Logger, latency: @escaping LatencyRecorders = { _ in nil }, handle: RelayHandle,
        notifier: SystemdNotifier? = nil
    ) {
        self.configuration = configuration
        self.logger = logger
        self.latency = latency
        self.handle = handle
        self.notifier = notifier
    }

    public func run() async throws {
        let relay: Relay
        do {
            relay = try await Relay.start(configuration: configuration, logger: logger, latency: latency)
        } catch {
            handle.abandon()
            logger.critical("start-up failed", metadata: ["error": "\(error)"])
            throw error
        }
        handle.publish(relay)
        notifier?.send(.ready, logger: logger)
        try? await gracefulShutdown()
        notifier?.send(.stopping, logger: logger)
        await relay.shutdown()
    }
}
