import Logging
import ServiceLifecycle

/// Starts the data plane inside the `ServiceGroup` and runs it: on graceful
/// shutdown (SIGTERM, SIGINT) it stops intake and drains before the services
/// listed before it (the HTTP control plane) are shut down, so `/readyz` can
/// say `draining`. A failed start throws, which shuts the whole group down
/// gracefully (`failureTerminationBehavior: .gracefullyShutdownGroup` in `serve`).
public struct RelayService: Service {
    let configuration: FerryConfiguration
    let logger: Logger
    let latency: LatencyRecorders
    let handle: RelayHandle

    public init(configuration: FerryConfiguration, logger: Logger, latency: @escaping LatencyRecorders = { _ in nil }, handle: RelayHandle) {
        self.configuration = configuration
        self.logger = logger
        self.latency = latency
        self.handle = handle
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
        try? await gracefulShutdown()
        await relay.shutdown()
    }
}
