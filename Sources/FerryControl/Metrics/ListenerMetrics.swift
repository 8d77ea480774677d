import FerryCore
import Prometheus

/// The `tcp://` and `tls://` listeners' families (`ferry_listener_*`), one
/// label set per listener as configured, so the `listener` label is bounded
/// by the configuration. Logs they read that could not be forwarded are in
/// `ferry_logs_dropped_total` (`oversize`, `truncated`, `framing_error`).
struct ListenerMetrics {
    private struct Families {
        var open: Gauge
        var paused: Gauge
        var accepted: TotalCounter
        var received: TotalCounter
        var receivedBytes: TotalCounter
        var pausedSeconds: Counter
        var exportedPaused = 0.0
        var refused: [String: TotalCounter]
        var closed: [String: TotalCounter]
        var tlsFailures: [String: TotalCounter]
    }

    private var families: [String: Families] = [:]
    private let registry: PrometheusCollectorRegistry

    init(registry: PrometheusCollectorRegistry, listeners: [StreamListenerSnapshot]) {
        self.registry = registry
        for listener in listeners { register(listener) }
    }

    /// Makes one listener's families (at start, or at the first scrape after a reload added it).
    private mutating func register(_ listener: StreamListenerSnapshot) {
        let label = ("listener", listener.listener)
        var refused: [String: TotalCounter] = [:]
        for reason in StreamListenerStats.Refusal.allCases.map(\.description) {
            refused[reason] = TotalCounter(
                registry.ferryCounter(
                    "listener_connections_refused", "Connections closed at accept, by listener and reason (a cap, or draining).",
                    [label, ("reason", reason)]))
        }
        var closed: [String: TotalCounter] = [:]
        for reason in StreamListenerStats.Closure.allCases.map(\.description) {
            closed[reason] = TotalCounter(
                registry.ferryCounter(
                    "listener_connections_closed", "Connections that ended, by listener and reason.", [label, ("reason", reason)]))
        }
        var tls: [String: TotalCounter] = [:]
        if listener.listener.hasPrefix("tls://") {
            for reason in TLSFailureReason.allCases.map(\.description) {
                tls[reason] = TotalCounter(
                    registry.ferryCounter(
                        "listener_tls_handshake_failures", "TLS handshakes that failed on a tls:// listener, by reason.",
                        [label, ("reason", reason)]))
            }
        }
        families[listener.listener] = Families(
            open: registry.ferryGauge("listener_connections", "Open connections, by tcp/tls listener.", [label]),
            paused: registry.ferryGauge(
                "listener_paused_connections", "Connections not being read now because the buffer or spool is full (backpressure).", [label]),
            accepted: TotalCounter(registry.ferryCounter("listener_connections_accepted", "Connections accepted, by tcp/tls listener.", [label])),
            received: TotalCounter(registry.ferryCounter("listener_logs_received", "Logs taken from a tcp/tls listener's connections.", [label])),
            receivedBytes: TotalCounter(
                registry.makeCounter(
                    descriptor: .ferry("listener_received_bytes", unit: "total", help: "Payload bytes of logs taken from a tcp/tls listener."),
                    labels: [label])),
            pausedSeconds: registry.makeCounter(
                descriptor: .ferry(
                    "listener_paused_seconds", unit: "total",
                    help: "Connection-seconds spent not reading because Ferry had no room (backpressure)."),
                labels: [label]),
            refused: refused, closed: closed, tlsFailures: tls)
    }

    mutating func collect(_ listeners: [StreamListenerSnapshot]) {
        for listener in listeners {
            if families[listener.listener] == nil { register(listener) }
            guard var family = families[listener.listener] else { continue }
            family.open.set(Int64(listener.connectionsOpen))
            family.paused.set(Int64(listener.pausedNow))
            family.accepted.update(to: listener.connectionsAccepted)
            family.received.update(to: listener.received)
            family.receivedBytes.update(to: listener.receivedBytes)
            if listener.pausedSeconds > family.exportedPaused {
                family.pausedSeconds.increment(by: listener.pausedSeconds - family.exportedPaused)
                family.exportedPaused = listener.pausedSeconds
            }
            for (reason, count) in listener.refused { family.refused[reason]?.update(to: count) }
            for (reason, count) in listener.closed { family.closed[reason]?.update(to: count) }
            for (reason, count) in listener.tlsFailures { family.tlsFailures[reason]?.update(to: count) }
            families[listener.listener] = family
        }
        // Listeners a reload removed: their series end.
        let names = Set(listeners.map(\.listener))
        for (name, family) in families where !names.contains(name) {
            registry.unregister(
                counters: [family.accepted, family.received, family.receivedBytes] + Array(family.refused.values) + Array(family.closed.values)
                    + Array(family.tlsFailures.values),
                gauges: [family.open, family.paused])
            registry.unregisterCounter(family.pausedSeconds)
            families[name] = nil
        }
    }
}
