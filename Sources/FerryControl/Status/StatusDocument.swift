import FerryCore

/// The JSON document `GET /v1/status` returns.
///
/// `counters` obeys `received + recovered = forwarded + dropped + queued`
/// at any moment the relay is quiet (`recovered`: undelivered logs an earlier
/// run left in the spool; `queued`: logs held now, in memory or in the spool),
/// which is how an operator checks that nothing went missing without a reason,
/// across restarts too.
struct StatusDocument: Encodable {
    struct Queue: Encodable {
        var depthLogs: Int
        var depthBytes: Int
        var capacityLogs: Int
        var capacityBytes: Int
    }

    struct Counters: Encodable {
        var received: Int
        var receivedByTransport: [String: Int]
        var receivedBytes: Int
        var forwarded: Int
        var dropped: Int
        var droppedByReason: [String: Int]
        var undrained: Int
        /// Undelivered logs found in the spool at start (an earlier run's).
        var recovered: Int
        /// Logs held now and not yet delivered (with a spool: in it, in memory or on disk).
        var queued: Int
        var framesReceivedByOutcome: [String: Int]
        /// `ferry://` senders whose dedupe window was evicted to make room (least recently used).
        var frameSenderEvictions: Int
        /// `ferry://` frames dropped unread because no key of `auth.key-file` signed them, by reason.
        var framesUnauthenticated: [String: Int]
        /// Logs refused at the door (`denied`, `rate_limited`): never received, so `sent = received + refused + kernel drops`.
        var refused: Int
        var refusedByReason: [String: Int]
        /// Foreign sockets seen joining a UDP listener's port (`SO_REUSEPORT`) since start.
        var foreignReceiversSeen: Int
        /// Logs received by syslog severity (`none`: no valid PRI) and by facility.
        var receivedBySeverity: [String: Int]
        var receivedByFacility: [String: Int]
    }

    var version: String
    var phase: String
    var uptimeSeconds: Double
    var listeners: [ListenerSnapshot]
    /// `tcp://` and `tls://` listeners.
    var streamListeners: [StreamListenerSnapshot]
    var upstreams: [UpstreamSnapshot]
    var queue: Queue
    var counters: Counters
    /// The disk spool, if `spool.dir` is set.
    var spool: SpoolSnapshot?
    /// Listeners' allowlists and rate limits, with the sources rate-limited most.
    var sourceLimits: [SourceLimitsSnapshot]
    /// The routes: what each took, dropped and keeps waiting, and its upstreams.
    /// With several, `forwarded` and `dropped` above count copies (a log that
    /// two routes take is forwarded twice); each route's own books balance:
    /// `routed = forwarded + route drops + waiting + in flight`.
    var routes: [RouteSnapshot]
    /// Live reloads: how many succeeded and failed, and the last one's result (what changed, or why it was refused).
    var reloads: Reloads

    struct Reloads: Encodable {
        var succeeded: Int
        var failed: Int
        var lastSuccessAt: Double?
        var last: ReloadStats.Outcome?
    }
    /// Host-wide UDP error counters (/proc/net/snmp and snmp6), beside Ferry's own.
    var hostUDP: [String: KernelUDPStats.HostCounters]

    init(relay: Relay, reloads: ReloadStats = ReloadStats()) {
        self.reloads = Reloads(succeeded: reloads.succeeded, failed: reloads.failed, lastSuccessAt: reloads.lastSuccessAt, last: reloads.last)
        let totals = relay.totals
        let upstreams = relay.upstreams.map(\.snapshot)
        let uptime = ContinuousClock.now - relay.startedAt
        version = FerryVersion.current
        phase = relay.phase.rawValue
        uptimeSeconds = Double(uptime.components.seconds) + Double(uptime.components.attoseconds) / 1e18
        listeners = relay.listeners
        streamListeners = relay.streamListeners
        let host = KernelUDPStats.hostCounters()
        hostUDP = ["udp": host.udp, "udp6": host.udp6]
        self.upstreams = upstreams
        queue = Queue(
            depthLogs: relay.capacity.usedLogs, depthBytes: relay.capacity.usedBytes,
            capacityLogs: relay.capacity.capacityLogs, capacityBytes: relay.capacity.capacityBytes)
        counters = Counters(
            received: totals.receivedTotal,
            receivedByTransport: Dictionary(uniqueKeysWithValues: totals.received.map { ($0.key.description, $0.value) }),
            receivedBytes: totals.receivedBytes.values.reduce(0, +),
            forwarded: upstreams.reduce(0) { $0 + $1.forwarded },
            dropped: totals.droppedTotal,
            droppedByReason: Dictionary(uniqueKeysWithValues: totals.dropped.map { ($0.key.description, $0.value) }),
            undrained: relay.undrained,
            recovered: relay.recoveredLogs,
            queued: relay.queuedLogs,
            framesReceivedByOutcome: Dictionary(uniqueKeysWithValues: totals.frames.map { ($0.key.description, $0.value) }),
            frameSenderEvictions: totals.senderEvictions,
            framesUnauthenticated: Dictionary(uniqueKeysWithValues: totals.unauthenticated.map { ($0.key.description, $0.value) }),
            refused: totals.refusedTotal,
            refusedByReason: Dictionary(uniqueKeysWithValues: totals.refused.map { ($0.key.description, $0.value) }),
            foreignReceiversSeen: relay.foreignReceiversSeen.load,
            receivedBySeverity: totals.bySeverity, receivedByFacility: totals.byFacility.filter { $0.value > 0 })
        spool = relay.spoolSnapshot
        sourceLimits = relay.sourceLimits
        routes = relay.routeSnapshots
    }
}
