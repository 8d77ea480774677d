import ServiceLifecycle

/// A `Service` that watches the running relay: it waits for the relay to start
/// (``RelayHandle``), then runs ``watch(_:)`` until graceful shutdown.
protocol RelayMonitor: Service {
    var handle: RelayHandle { get }
    /// Watches `relay` until the task is cancelled.
    func watch(_ relay: Relay) async
}

extension RelayMonitor {
    public func run() async throws {
        let relay = try await cancelWhenGracefulShutdown { await handle.started() }
        guard let relay else {
            // No relay (its start failed, or shutdown came first): wait for the
            // group's graceful shutdown to reach this service. Returning now would
            // end the group by cancellation, and cancelled services (the HTTP
            // server) log that as an error beside the one that matters.
            try? await gracefulShutdown()
            return
        }
        try await cancelWhenGracefulShutdown { await watch(relay) }
    }
}
