/// A kind of listener (`udp://` today; `tcp://`, `tls://` next): the sockets its
/// configuration names, bound before anything runs, delivering bursts to each
/// event loop's pipeline.
///
/// Adding a kind is a new type conforming to this, bound in
/// ``Relay/start(configuration:logger:latency:)``; the pipeline, the drain and
/// the status code do not change.
protocol IntakeListener: Sendable {
    /// The listener as configured (one entry of `listen`): a reload keeps it while its URL stays.
    var url: ListenerURL { get }
    /// Sockets bound (for `/readyz` and the `listening` log line).
    var socketCount: Int { get }
    /// Starts delivering bursts to the pipelines; on failure nothing of it runs.
    func start(handles: [Relay.PipelineHandle]) async throws
    /// Stops intake. When it returns, no burst of this listener will reach a
    /// pipeline again: what was read before is already queued on its loop.
    func stopIntake(handles: [Relay.PipelineHandle]) async
    /// What `/v1/status` shows of each socket: `kernel` is the socket table
    /// read once by the caller, `own` every receive socket of Ferry's (not
    /// foreign to each other: a reload may run two listeners on one port for a
    /// moment), `directRoute` the route of a loop, if open.
    func snapshots(kernel: [KernelUDPStats.SocketLine], own: Set<UInt64>, directRoute: (Int) -> String?) -> [ListenerSnapshot]
    /// What `/v1/status` shows of a connection listener (nil for UDP).
    var streamSnapshot: StreamListenerSnapshot? { get }
    /// The listener with the address it bound (`tcp://127.0.0.1:40123`), for the `listening` line.
    var boundDescription: String { get }
}

extension IntakeListener {
    var streamSnapshot: StreamListenerSnapshot? { nil }
}
