import ServiceLifecycle

/// Runs the data plane inside a `ServiceGroup`: on graceful shutdown (SIGTERM,
/// SIGINT) it stops intake and drains before the services started before it
/// (the HTTP control plane) are shut down, so `/readyz` can say `draining`.
public struct RelayService: Service {
    public let relay: Relay

    public init(relay: Relay) {
        self.relay = relay
    }

    public func run() async throws {
        try? await gracefulShutdown()
        await relay.shutdown()
    }
}
