import Synchronization

/// Where the running ``Relay`` appears once ``RelayService`` has started it.
///
/// The relay starts inside the `ServiceGroup`, like every other service, so a
/// failed start stops the group cleanly. The control plane, the monitors and
/// the signal router are built before it exists and find it here: the HTTP
/// endpoints answer `starting` (503) until then, the monitors wait for it.
public final class RelayHandle: Sendable {
    private struct State {
        var relay: Relay?
        var waiting: [Int: CheckedContinuation<Relay?, Never>] = [:]
        var next = 0
        /// The relay will never appear (its start failed or the process is stopping).
        var abandoned = false
    }

    private let state = Mutex(State())
    /// What live reloads did (they outlive no relay, but are counted from the start).
    public let reloads = ReloadStats()

    public init() {}

    /// The relay, once started.
    public var relay: Relay? { state.withLock { $0.relay } }

    /// Waits for the relay; nil if its start failed or the task is cancelled.
    public func started() async -> Relay? {
        let id = state.withLock { state in
            defer { state.next += 1 }
            return state.next
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Relay?, Never>) in
                let now = state.withLock { state -> Relay?? in
                    if let relay = state.relay { return .some(relay) }
                    if state.abandoned || Task.isCancelled { return .some(nil) }
                    state.waiting[id] = continuation
                    return .none
                }
                if let now { continuation.resume(returning: now) }
            }
        } onCancel: {
            state.withLock { $0.waiting.removeValue(forKey: id) }?.resume(returning: nil)
        }
    }

    /// Makes `relay` available to everyone waiting (once).
    public func publish(_ relay: Relay) {
        let waiting = state.withLock { state in
            state.relay = relay
            defer { state.waiting.removeAll() }
            return Array(state.waiting.values)
        }
        for continuation in waiting { continuation.resume(returning: relay) }
    }

    /// The relay will not start: everyone waiting gets nil.
    public func abandon() {
        let waiting = state.withLock { state in
            state.abandoned = true
            defer { state.waiting.removeAll() }
            return Array(state.waiting.values)
        }
        for continuation in waiting { continuation.resume(returning: nil) }
    }
}
