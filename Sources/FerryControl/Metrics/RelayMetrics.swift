import FerryCore
import NIOCore
import Prometheus
import Synchronization

/// Ferry's Prometheus metrics: built once per relay, brought up to date from
/// the relay's counters each time `/metrics` is scraped.
///
/// The data path only touches relaxed atomics; everything here runs at
/// scrape time, on the control plane. Every family and its help text are
/// listed in docs/observability.md.
public final class RelayMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    private let relay: Relay
    private let state: Mutex<State>
    private let process: ProcessMetrics

    /// One UDP receive socket's families.
    private struct SocketFamilies {
        var receiveBuffer: Gauge
        var kernelDrops: TotalCounter
        var receiveQueue: Gauge
        var datagrams: TotalCounter

        func unregister(from registry: PrometheusCollectorRegistry) {
            registry.unregister(counters: [kernelDrops, datagrams], gauges: [receiveBuffer, receiveQueue])
        }
    }

    private struct State {
        var received: [Transport: TotalCounter]
        var receivedBytes: [Transport: TotalCounter]
        var dropped: [DropReason: TotalCounter]
        var frames: [FrameOutcome: TotalCounter]
        /// By upstream id; one made at the first scrape after a reload added the upstream.
        var upstreams: [Int: UpstreamFamilies]
        var logLinesDropped: TotalCounter
        var undrained: Gauge
        /// By listener and socket; one made at the first scrape after a reload added the listener.
        var sockets: [String: SocketFamilies]
        var host: [String: [String: TotalCounter]]
        var foreignReceivers: Gauge
        var foreignReceiversSeen: TotalCounter
        var senderEvictions: TotalCounter
        var unauthenticatedFrames: [FrameAuthFailure: TotalCounter]
        var refused: [RefusalReason: TotalCounter]
        var streamListeners: ListenerMetrics
        var routes: RouteMetrics
    }

    private let bufferLogs: Gauge
    private let bufferBytes: Gauge
    private let capacityLogs: Gauge
    private let capacityBytes: Gauge
    private let ready: Gauge
    private let spool: SpoolMetrics?
    private let logLinesDroppedSource: AtomicCounter?
    private let reloads: ReloadStats?
    private let reloadsSucceeded: Counter
    private let reloadsFailed: Counter
    private let lastReloadSuccess: Gauge
    private let reloadsExported = Mutex((succeeded: 0, failed: 0))

    public init(relay: Relay, registry: PrometheusCollectorRegistry, logLinesDropped: AtomicCounter? = nil, reloads: ReloadStats? = nil) {
        self.relay = relay
        self.reloads = reloads
        reloadsSucceeded = registry.ferryCounter(
            "config_reloads", "Configuration reloads (SIGHUP, POST /v1/reload), by result.", [("result", "success")])
        reloadsFailed = registry.ferryCounter(
            "config_reloads", "Configuration reloads (SIGHUP, POST /v1/reload), by result.", [("result", "failure")])
        lastReloadSuccess = registry.ferryGauge(
            "config_last_reload_success_timestamp", unit: "seconds", "When the last configuration reload succeeded (0: none since start).")
        self.registry = registry
        self.logLinesDroppedSource = logLinesDropped
        self.spool = relay.spoolSnapshot == nil ? nil : SpoolMetrics(registry: registry, relay: relay)
        self.process = ProcessMetrics(registry: registry)

        registry.ferryGauge("build_info", "Ferry's version; always 1.", [("version", FerryVersion.current)]).set(Int64(1))
        bufferLogs = registry.ferryGauge("buffer_logs", "Logs held in the bounded buffer (waiting or in flight).")
        bufferBytes = registry.ferryGauge("buffer", unit: "bytes", "Payload bytes held in the bounded buffer.")
        capacityLogs = registry.ferryGauge("buffer_capacity_logs", "Capacity of the bounded buffer in logs.")
        capacityBytes = registry.ferryGauge("buffer_capacity", unit: "bytes", "Capacity of the bounded buffer in payload bytes.")
        ready = registry.ferryGauge("ready", "1 when /readyz answers 200, else 0.")
        let sockets = Dictionary(
            relay.listeners.map { (Self.socketKey($0), Self.families(of: $0, registry: registry)) }, uniquingKeysWith: { first, _ in first })
        var host: [String: [String: TotalCounter]] = [:]
        for proto in ["udp", "udp6"] {
            let label = [("proto", proto)]
            host[proto] = [
                "rcvbuf": TotalCounter(
                    registry.makeCounter(
                        descriptor: .init(
                            namespace: "ferry_host", metricName: "udp_rcvbuf_errors", unitName: "total",
                            helpText: "Host-wide UDP datagrams dropped for a full receive buffer (RcvbufErrors of /proc/net/snmp, snmp6)."),
                        labels: label)),
                "sndbuf": TotalCounter(
                    registry.makeCounter(
                        descriptor: .init(
                            namespace: "ferry_host", metricName: "udp_sndbuf_errors", unitName: "total",
                            helpText: "Host-wide UDP sends failed for a full send buffer (SndbufErrors)."),
                        labels: label)),
                "inerrors": TotalCounter(
                    registry.makeCounter(
                        descriptor: .init(
                            namespace: "ferry_host", metricName: "udp_in_errors", unitName: "total",
                            helpText: "Host-wide UDP receive errors (InErrors)."),
                        labels: label)),
                "noports": TotalCounter(
                    registry.makeCounter(
                        descriptor: .init(
                            namespace: "ferry_host", metricName: "udp_no_ports", unitName: "total",
                            helpText: "Host-wide UDP datagrams to a port nobody listens on (NoPorts)."),
                        labels: label)),
            ]
        }

        var received: [Transport: TotalCounter] = [:]
        var receivedBytes: [Transport: TotalCounter] = [:]
        for transport in Transport.allCases {
            received[transport] = TotalCounter(
                registry.ferryCounter("logs_received", "Logs received, by transport (udp, tcp, tls, http, ferry).", [("transport", "\(transport)")]))
            receivedBytes[transport] = TotalCounter(
                registry.makeCounter(
                    descriptor: .ferry("received_bytes", unit: "total", help: "Payload bytes of logs received, by transport."),
                    labels: [("transport", "\(transport)")]))
        }
        var dropped: [DropReason: TotalCounter] = [:]
        for reason in DropReason.allCases {
            dropped[reason] = TotalCounter(registry.ferryCounter("logs_dropped", "Logs dropped, by reason.", [("reason", "\(reason)")]))
        }
        var frames: [FrameOutcome: TotalCounter] = [:]
        for outcome in FrameOutcome.allCases {
            frames[outcome] = TotalCounter(
                registry.ferryCounter(
                    "frames_received", "ferry:// frames received from other Ferry instances, by outcome.", [("outcome", "\(outcome)")]))
        }
        let upstreams = Dictionary(uniqueKeysWithValues: relay.upstreams.map { ($0.index, UpstreamFamilies(upstream: $0, registry: registry)) })
        state = Mutex(
            State(
                received: received, receivedBytes: receivedBytes, dropped: dropped, frames: frames, upstreams: upstreams,
                logLinesDropped: TotalCounter(
                    registry.ferryCounter("log_lines_dropped", "Ferry's own log lines dropped because the log writer's queue was full.")),
                undrained: registry.ferryGauge("logs_undrained", "Logs still buffered when the last drain deadline passed."),
                sockets: sockets, host: host,
                foreignReceivers: registry.ferryGauge(
                    "udp_foreign_receivers", "Other processes' sockets on a UDP listener's port now (SO_REUSEPORT): each takes part of its traffic."),
                foreignReceiversSeen: TotalCounter(
                    registry.ferryCounter("udp_foreign_receivers_seen", "Foreign sockets seen joining a UDP listener's port since start.")),
                senderEvictions: TotalCounter(
                    registry.ferryCounter(
                        "frame_sender_evictions", "ferry:// senders whose dedupe window was evicted (least recently used) to make room for another.")),
                unauthenticatedFrames: UpstreamFamilies.unauthenticatedCounters(registry: registry, upstream: nil),
                refused: Dictionary(
                    uniqueKeysWithValues: RefusalReason.allCases.map { reason in
                        (
                            reason,
                            TotalCounter(
                                registry.ferryCounter(
                                    "logs_refused", "Logs refused before they were read (allow, rate-limit): never received, by reason.",
                                    [("reason", reason.description)]))
                        )
                    }),
                streamListeners: ListenerMetrics(registry: registry, listeners: relay.streamListeners),
                routes: RouteMetrics(registry: registry, routes: relay.routeSnapshots)
            ))
    }

    /// Brings every family up to date and returns the exposition text.
    public func render() -> String {
        collect()
        return registry.emitToString()
    }

    /// Brings every family up to date from the relay's counters.
    public func collect() {
        let totals = relay.totals
        let upstreams = relay.upstreams
        let snapshots = upstreams.map(\.snapshot)
        let isReady = upstreams.contains(where: \.isAvailable) && relay.phase == .running
        bufferLogs.set(Int64(relay.capacity.usedLogs))
        bufferBytes.set(Int64(relay.capacity.usedBytes))
        capacityLogs.set(Int64(relay.capacity.capacityLogs))
        capacityBytes.set(Int64(relay.capacity.capacityBytes))
        ready.set(Int64(isReady ? 1 : 0))
        if let spool, let snapshot = relay.spoolSnapshot { spool.collect(snapshot) }
        if let reloads {
            let (succeeded, failed) = (reloads.succeeded, reloads.failed)
            reloadsExported.withLock { exported in
                if succeeded > exported.succeeded { reloadsSucceeded.increment(by: Int64(succeeded - exported.succeeded)) }
                if failed > exported.failed { reloadsFailed.increment(by: Int64(failed - exported.failed)) }
                exported = (succeeded, failed)
            }
            lastReloadSuccess.set(reloads.lastSuccessAt ?? 0)
        }
        process.collect()
        let listeners = relay.listeners
        let streamListeners = relay.streamListeners
        let hostCounters = KernelUDPStats.hostCounters()
        let routes = relay.routeSnapshots
        state.withLock { state in
            state.streamListeners.collect(streamListeners)
            state.routes.collect(totals: totals, routes: routes)
            state.foreignReceivers.set(Int64(Set(listeners.flatMap(\.foreignReceivers)).count))
            state.foreignReceiversSeen.update(to: relay.foreignReceiversSeen.load)
            state.senderEvictions.update(to: totals.senderEvictions)
            for (reason, count) in totals.unauthenticated { state.unauthenticatedFrames[reason]?.update(to: count) }
            for (reason, count) in totals.refused { state.refused[reason]?.update(to: count) }
            for listener in listeners {
                let key = Self.socketKey(listener)
                if state.sockets[key] == nil { state.sockets[key] = Self.families(of: listener, registry: registry) }
                guard var families = state.sockets[key] else { continue }
                if let drops = listener.kernelReceiveDrops { families.kernelDrops.update(to: drops) }
                if let queue = listener.receiveQueueBytes { families.receiveQueue.set(Int64(queue)) }
                families.datagrams.update(to: listener.datagramsReceived)
                state.sockets[key] = families
            }
            // Sockets of listeners a reload removed.
            let socketKeys = Set(listeners.map(Self.socketKey))
            for (key, families) in state.sockets where !socketKeys.contains(key) {
                families.unregister(from: registry)
                state.sockets[key] = nil
            }
            for (proto, counters) in [("udp", hostCounters.udp), ("udp6", hostCounters.udp6)] {
                state.host[proto]?["rcvbuf"]?.update(to: counters.receiveBufferErrors)
                state.host[proto]?["sndbuf"]?.update(to: counters.sendBufferErrors)
                state.host[proto]?["inerrors"]?.update(to: counters.inErrors)
                state.host[proto]?["noports"]?.update(to: counters.noPorts)
            }
            for (transport, count) in totals.received { state.received[transport]?.update(to: count) }
            for (transport, count) in totals.receivedBytes { state.receivedBytes[transport]?.update(to: count) }
            for (reason, count) in totals.dropped { state.dropped[reason]?.update(to: count) }
            for (outcome, count) in totals.frames { state.frames[outcome]?.update(to: count) }
            state.logLinesDropped.update(to: logLinesDroppedSource?.load ?? 0)
            state.undrained.set(Int64(relay.undrained))
            for (upstream, snapshot) in zip(upstreams, snapshots) {
                let index = upstream.index
                if state.upstreams[index] == nil { state.upstreams[index] = UpstreamFamilies(upstream: upstream, registry: registry) }
                state.upstreams[index]?.forwarded.update(to: snapshot.forwarded)
                state.upstreams[index]?.forwardedBytes.update(to: snapshot.forwardedBytes)
                state.upstreams[index]?.attemptsSucceeded.update(to: upstream.attemptsSucceeded.load)
                state.upstreams[index]?.attemptsFailed.update(to: upstream.attemptsFailed.load)
                state.upstreams[index]?.retries.update(to: snapshot.retries)
                if let frames = snapshot.frames { state.upstreams[index]?.frames?.update(from: frames) }
                state.upstreams[index]?.budgetExhausted.update(to: snapshot.retryBudget.exhausted)
                state.upstreams[index]?.failovers.update(to: snapshot.failovers)
                for breakerState in CircuitBreaker.State.allCases {
                    state.upstreams[index]?.transitions[breakerState]?.update(to: snapshot.breaker.transitions[breakerState.rawValue] ?? 0)
                    state.upstreams[index]?.breakerState[breakerState]?.set(Int64(snapshot.breaker.state == breakerState.rawValue ? 1 : 0))
                }
                for reason in SendErrorReason.allCases {
                    state.upstreams[index]?.sendErrors[reason]?.update(to: snapshot.sendErrors[reason.description] ?? 0)
                }
                state.upstreams[index]?.inFlight.set(Int64(snapshot.inFlightFrames))
                state.upstreams[index]?.failureRate.set(snapshot.breaker.failureRate)
                state.upstreams[index]?.budgetTokens.set(snapshot.retryBudget.tokens)
                state.upstreams[index]?.resent.update(to: snapshot.resent)
                state.upstreams[index]?.unacknowledged.set(Int64(snapshot.unacknowledged))
                for (reason, count) in snapshot.tlsFailures { state.upstreams[index]?.tlsFailures[reason]?.update(to: count) }
                state.upstreams[index]?.tlsInsecure.set(Int64(snapshot.tlsInsecure ? 1 : 0))
                for reason in FrameAuthFailure.allCases {
                    state.upstreams[index]?.unauthenticatedAcks[reason]?.update(to: snapshot.unauthenticatedAcks[reason.description] ?? 0)
                }
            }
            // Upstreams a reload removed: their series end (what they still deliver while retiring is in the route's counts).
            let live = Set(upstreams.map(\.index))
            for (index, families) in state.upstreams where !live.contains(index) {
                families.unregister(from: registry)
                // The registry hands back the histogram the relay made for it, to unregister it too.
                registry.unregisterDurationHistogram(Self.latencyHistogram(families.url, registry: registry))
                state.upstreams[index] = nil
            }
        }
    }
}

extension RelayMetrics {
    /// One UDP receive socket's key among every UDP listener's.
    fileprivate static func socketKey(_ listener: ListenerSnapshot) -> String { "\(listener.listener)#\(listener.loop)" }

    /// Registers one receive socket's families (a listener a reload adds gets them at the next scrape).
    private static func families(of listener: ListenerSnapshot, registry: PrometheusCollectorRegistry) -> SocketFamilies {
        let labels = [("listener", listener.address), ("socket", String(listener.loop))]
        let receiveBuffer = registry.ferryGauge(
            "udp_receive_buffer", unit: "bytes", "Receive buffer the kernel granted to each receive socket.", labels)
        receiveBuffer.set(Int64(listener.receiveBufferBytes))
        return SocketFamilies(
            receiveBuffer: receiveBuffer,
            kernelDrops: TotalCounter(
                registry.ferryCounter(
                    "udp_kernel_receive_drops", "Datagrams the kernel dropped on a receive socket because its queue was full (/proc/net/udp).",
                    labels)),
            receiveQueue: registry.ferryGauge(
                "udp_receive_queue", unit: "bytes", "Bytes waiting in a receive socket's queue (/proc/net/udp).", labels),
            datagrams: TotalCounter(
                registry.ferryCounter(
                    "udp_datagrams_received", "Datagrams a receive socket read (logs, frames and oversize ones), by UDP listener and socket.",
                    [("listener", listener.listener), ("socket", String(listener.loop))])))
    }

    /// Buckets of the forward latency histogram: 100 µs to 10 s.
    public static let latencyBuckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .microseconds(2500), .milliseconds(5),
        .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
    ]

    /// Each upstream's `ferry_forward_latency_seconds` histogram, registered in `registry`
    /// (pass to ``Relay/start(configuration:logger:latency:)``).
    public static func latencyRecorders(registry: PrometheusCollectorRegistry) -> LatencyRecorders {
        { url in latencyHistogram(url.description, registry: registry) }
    }

    /// The `ferry_forward_latency_seconds` histogram of `url` (made at the first call, the same one after).
    static func latencyHistogram(_ url: String, registry: PrometheusCollectorRegistry) -> DurationHistogram {
        registry.makeDurationHistogram(
            descriptor: .ferry(
                "forward_latency", unit: "seconds",
                help: "Time from receipt to acknowledgement (ferry://), send (udp://) or write (file:), one observation per batch or frame."),
            labels: [("upstream", url)], buckets: latencyBuckets)
    }
}

extension DurationHistogram: LatencyRecorder {}
