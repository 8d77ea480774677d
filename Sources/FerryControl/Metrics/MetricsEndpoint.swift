import FerryCore
import Prometheus
import Synchronization

/// What `GET /metrics` renders: the HTTP families from the start, and Ferry's
/// own (``RelayMetrics``) from the moment the relay runs (they are registered
/// then, once, since they are labelled by the relay's listeners and upstreams).
public final class MetricsEndpoint: Sendable {
    public let registry: PrometheusCollectorRegistry
    private let handle: RelayHandle
    private let logLinesDropped: AtomicCounter?
    private let relayMetrics = Mutex<RelayMetrics?>(nil)

    public init(registry: PrometheusCollectorRegistry, handle: RelayHandle, logLinesDropped: AtomicCounter? = nil) {
        self.registry = registry
        self.handle = handle
        self.logLinesDropped = logLinesDropped
    }

    /// The exposition text, with the relay's families brought up to date if it runs.
    public func render() -> String {
        if let relay = handle.relay {
            let metrics = relayMetrics.withLock { metrics in
                if let metrics { return metrics }
                let made = RelayMetrics(relay: relay, registry: registry, logLinesDropped: logLinesDropped, reloads: handle.reloads)
                metrics = made
                return made
            }
            metrics.collect()
        }
        return registry.emitToString()
    }
}
