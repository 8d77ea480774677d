import FerryCore
import Hummingbird

/// `GET /healthz` (the process is alive) and `GET /readyz` (it can take traffic).
struct HealthRoutes {
    let handle: RelayHandle

    func register(on router: Router<FerryRequestContext>) {
        router.get("healthz") { _, _ in
            try JSONResponse.make(ReasonBody(status: "ok"))
        }
        router.get("readyz") { _, _ in
            let readiness = handle.relay.map { Readiness(relay: $0) } ?? Readiness(starting: ())
            return try JSONResponse.make(
                ReasonBody(status: readiness.isReady ? "ready" : "not_ready", reason: readiness.reason),
                status: readiness.isReady ? .ok : .serviceUnavailable)
        }
    }
}

/// Whether the relay can take traffic, and if not, why.
///
/// Ready means the receive sockets are bound and at least one upstream can
/// take traffic now. While draining the relay is never ready, so load
/// balancers stop sending before the sockets close.
public struct Readiness: Sendable {
    public let isReady: Bool
    public let reason: String?

    /// Before the relay exists.
    init(starting: Void) {
        (isReady, reason) = (false, "starting")
    }

    public init(relay: Relay) {
        switch relay.phase {
        case .starting:
            (isReady, reason) = (false, "starting")
        case .draining:
            (isReady, reason) = (false, "draining")
        case .stopped:
            (isReady, reason) = (false, "stopped")
        case .running:
            if relay.listenerCount == 0 {
                (isReady, reason) = (false, "no_listener")
            } else if !relay.upstreams.contains(where: \.isAvailable) {
                (isReady, reason) = (false, "no_upstream_available")
            } else {
                (isReady, reason) = (true, nil)
            }
        }
    }
}
