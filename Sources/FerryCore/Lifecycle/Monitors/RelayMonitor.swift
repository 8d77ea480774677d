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
        try await cancelWhenGracefulShutdown {
            guard let relay = await handle.started() else { return }
            await watch(relay)
        }
    }
}
