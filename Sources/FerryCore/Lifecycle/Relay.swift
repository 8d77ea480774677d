import Logging
import NIOCore
import NIOPosix
import Synchronization

/// The running data plane: receive sockets, per-loop pipelines, upstream lanes
/// and file sinks, built from one ``FerryConfiguration``.
///
/// ``start(configuration:logger:)`` binds and connects everything before any
/// service runs, so a bad address fails start-up with a clear error instead of
/// a half-started process. ``shutdown()`` stops intake, drains the buffer
/// within `drain.timeout`, and accounts for whatever could not be drained.
public final class Relay: Sendable {
    public let configuration: FerryConfiguration
    public let capacity: BufferCapacity
    /// Every upstream of every route now, in route order then failover order.
    public var upstreams: [Upstream] { routing.withLock { state in state.live.map { state.slots[$0] } } }
    /// The disk spool (`spool.dir`), if configured without `routes`.
    package let spool: Spool?
    /// Each route's spool, with `routes` and `spool.dir`.
    package let registry: SpoolRegistry?
    let handles: [PipelineHandle]
    let group: MultiThreadedEventLoopGroup
    /// `POST /v1/logs`'s allowlist (`allow`) and per-client rate limit (`rate-limit.*`); nil: neither is set.
    let httpGate: SourceGate?
    /// Whether UDP receive threads keep each datagram's source (a route's `source` match or `balance` needs it): one flag for all.
    let keepsSources = AtomicFlag(false)
    /// Each route's counters, in route order (name order; one `default` without `routes`).
    public var routes: [RouteStats] { routing.withLock { $0.routes } }
    /// What a reload changes: the configuration in force, routes, upstreams and their kinds.
    let routing: Mutex<RoutingState>
    /// Makes each new upstream's latency recorder (kept for reloads).
    let latency: LatencyRecorders
    /// What opening an upstream's kind needs (kept for reloads).
    let kindContext: UpstreamKindContext
    let logger: Logger
    let state: Mutex<RelayState>
    private let nextHTTPLoop = AtomicCounter()
    /// The one shutdown, once started (see ``shutdown()``).
    private let shutdownTask = Mutex<Task<Int, Never>?>(nil)

    /// A loop's pipeline together with what may be read of it from any thread.
    struct PipelineHandle: Sendable {
        let index: Int
        let eventLoop: any EventLoop
        let counters: PipelineCounters
        /// The route the pipeline opens for its receive thread's direct sends.
        let route: DirectRoute
        let pipeline: NIOLoopBound<LoopPipeline>
        /// The loop's spool shard (its receive thread appends there) and the buffer it reserves room in.
        var spoolShard: SpoolShard? = nil
        var capacity: BufferCapacity? = nil
    }

    init(
        configuration: FerryConfiguration, capacity: BufferCapacity, upstreams: [Upstream], spool: Spool?, registry: SpoolRegistry? = nil,
        handles: [PipelineHandle],
        group: MultiThreadedEventLoopGroup, kinds: [any UpstreamKind], routes: [RouteStats] = [], latency: @escaping LatencyRecorders = { _ in nil },
        kindContext: UpstreamKindContext, logger: Logger
    ) {
        self.kindContext = kindContext
        self.latency = latency
        self.httpGate = SourceGate.make(allowlist: configuration.allow, rateLimit: configuration.rateLimit)
        self.routing = Mutex(
            RoutingState(
                configuration: configuration, slots: upstreams, live: Array(upstreams.indices),
                kinds: Dictionary(uniqueKeysWithValues: kinds.enumerated().map { ($0.offset, $0.element) }),
                listeners: ListenerPositions(configuration: configuration), routes: routes))
        self.configuration = configuration
        self.spool = spool
        self.registry = registry
        self.capacity = capacity
        self.handles = handles
        self.group = group
        self.logger = logger
        self.state = Mutex(RelayState(startedAt: .now))
    }

    // MARK: - Intake from the control plane

    /// What happened to the lines of one HTTP request.
    public enum IntakeOutcome: Sendable, Equatable {
        case accepted(Int)
        case bufferFull
        /// The spool could not take them (`spool.max-bytes` reached, or the disk refused the write).
        case spoolFull
        /// The client is not in `allow`: nothing is taken (counted `denied`).
        case denied
        /// The client has not the rate limit's tokens for every line: nothing is taken (counted `rate_limited`).
        case rateLimited
        case draining
    }

    /// Offers lines received over HTTP, all or none, to one loop's pipeline.
    ///
    /// - Parameter client: the sender's address: each line's source for `match.source` and `balance`.
    public func ingest(_ records: [ByteBuffer], transport: Transport = .http, from client: SocketAddress? = nil) async -> IntakeOutcome {
        let source = client.flatMap { SourceKey($0) }
        guard state.withLock({ $0.phase == .running }) else { return .draining }
        let handle = handles[Int(UInt(bitPattern: nextHTTPLoop.load) % UInt(handles.count))]
        nextHTTPLoop.add(1)
        let gate = httpGate
        let outcome = try? await handle.eventLoop.submit {
            handle.pipeline.value.receiveAll(records, transport: transport, source: source, gate: gate)
        }.get()
        switch outcome {
        case .accepted(let count, let marks):
            // Answered once the lines are in the spool (each route's, with `routes`), and synced if `spool.fsync` is `always`.
            await Countdown.awaitDurable(marks)
            return .accepted(count)
        case .bufferFull: return .bufferFull
        case .spoolFull: return .spoolFull
        case .refused(.denied): return .denied
        case .refused(.rateLimited): return .rateLimited
        case nil: return .draining
        }
    }

    // MARK: - Shutdown

    /// Stops intake, forwards what is buffered within `drain.timeout`, closes
    /// upstreams and returns how many logs could not be drained.
    ///
    /// Idempotent: running → draining → stopped happens once; a second call
    /// (from anywhere) waits for that one and returns the same count.
    @discardableResult
    public func shutdown() async -> Int {
        let task = shutdownTask.withLock { existing -> Task<Int, Never> in
            if let existing { return existing }
            let task = Task { await self.drainAndStop() }
            existing = task
            return task
        }
        return await task.value
    }

    private func drainAndStop() async -> Int {
        let listeners = state.withLock { state -> [any IntakeListener] in
            guard state.phase == .running || state.phase == .starting else { return [] }
            state.phase = .draining
            return state.listeners
        }
        for listener in listeners {
            await listener.stopIntake(handles: handles)
        }
        logger.info("draining", metadata: ["buffer.logs": "\(capacity.usedLogs)", "drain.timeout": "\(configuration.drainTimeout)"])

        // Woken by the release that empties the buffer, or by the deadline.
        let deadline = ContinuousClock.now + configuration.drainTimeout
        let capacity = self.capacity
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await capacity.waitUntilEmpty() }
            group.addTask { try? await Task.sleep(until: deadline, clock: .continuous) }
            await group.next()
            group.cancelAll()
        }
        // Close sinks first so that a batch being written settles before the
        // count of what is left is taken.
        for kind in routing.withLock({ Array($0.kinds.values) }) {
            await kind.close()
        }
        for handle in handles {
            try? await handle.eventLoop.flatSubmit {
                EventLoopFuture.andAllComplete(handle.pipeline.value.allLanes.map { $0.stop() }, on: handle.eventLoop)
            }.get()
        }
        let undrained = capacity.usedLogs
        // A last checkpoint and sync: what was not delivered is sent first on the next start.
        spool?.close()
        registry?.close()
        state.withLock {
            $0.phase = .stopped
            $0.undrained = undrained
        }
        let totals = self.totals
        let forwarded = upstreams.reduce(0) { $0 + $1.forwarded.load }
        var metadata: Logger.Metadata = [
            "logs.received": "\(totals.receivedTotal)",
            "logs.forwarded": "\(forwarded)",
            "logs.dropped": "\(totals.droppedTotal)",
            "logs.undrained": "\(undrained)",
        ]
        for (reason, count) in totals.dropped where count > 0 {
            metadata["logs.dropped.\(reason)"] = "\(count)"
        }
        if undrained > 0 {
            logger.error("drain incomplete, logs left undrained", metadata: metadata)
        } else {
            logger.info("drained", metadata: metadata)
        }
        try? await group.shutdownGracefully()
        return undrained
    }

    /// Closes and reopens every `file:` upstream's file (SIGHUP, after
    /// logrotate moved them); returns their paths.
    @discardableResult
    public func reopenFiles() -> [String] {
        routing.withLock { Array($0.kinds.values) }.compactMap { $0.reopen() }
    }

    // MARK: - Reading state

    /// Sums of every loop's counters.
    public var totals: PipelineTotals {
        PipelineTotals(summing: handles.map(\.counters))
    }

    /// Where the relay is in its life.
    public var phase: RelayState.Phase { state.withLock { $0.phase } }

    /// Logs that were still buffered when the drain deadline passed.
    public var undrained: Int { state.withLock { $0.undrained } }

    /// The bound receive sockets: addresses, granted buffers, and what the
    /// kernel says of them (drops before Ferry could read, bytes waiting).
    public var listeners: [ListenerSnapshot] {
        let listeners = state.withLock { $0.listeners }
        let table = kernelTable()
        let own = Self.receiveSockets(of: listeners)
        return listeners.flatMap { $0.snapshots(kernel: table, own: own, directRoute: directRoute(of:)) }
    }

    /// The upstream loop `index`'s receive thread sends to itself now: the
    /// route its pipeline opened, if that upstream can still take traffic.
    private func directRoute(of index: Int) -> String? {
        guard let position = handles[index].route.upstream else { return nil }
        let upstream = routing.withLock { $0.slots[position] }
        return upstream.isBreakerClosed && upstream.isLaneAvailable(index) ? upstream.url.description : nil
    }

    /// The `tcp://` and `tls://` listeners: connections, refusals, TLS failures, backpressure.
    public var streamListeners: [StreamListenerSnapshot] {
        state.withLock { $0.listeners }.compactMap(\.streamSnapshot)
    }

    /// Receive sockets bound now (no /proc read: for `/readyz`).
    public var listenerCount: Int { state.withLock { $0.listeners.reduce(0) { $0 + $1.socketCount } } }

    /// The kernel's UDP socket tables, read at most every 250 ms however often
    /// status, metrics and the monitors ask (a scrape storm costs no /proc parsing).
    private func kernelTable(now: NIODeadline = .now()) -> [KernelUDPStats.SocketLine] {
        if let cached = kernelCache.withLock({ $0 }), now - cached.readAt < .milliseconds(250) { return cached.lines }
        let lines = PortSharing.kernelTable()
        kernelCache.withLock { $0 = (now, lines) }
        return lines
    }

    private let kernelCache = Mutex<(readAt: NIODeadline, lines: [KernelUDPStats.SocketLine])?>(nil)

    /// Foreign sockets seen on a listener's port since start (each counted once).
    public let foreignReceiversSeen = AtomicCounter()

    /// What each listener's allowlist and rate limit let in, for status (addresses stay out of metrics).
    public var sourceLimits: [SourceLimitsSnapshot] {
        state.withLock { $0.gates }.map { entry in
            SourceLimitsSnapshot(listener: entry.listener, allow: entry.gate.allowlist?.description, rateLimit: entry.gate.snapshot)
        }
    }

    /// Each route with its counters and upstreams, for status.
    public var routeSnapshots: [RouteSnapshot] {
        let (routes, settings, slots, ids) = routing.withLock { state in
            (state.routes, state.configuration.effectiveRoutes, state.slots, state.ids)
        }
        return zip(routes, settings).map { stats, settings in
            var snapshot = stats.snapshot
            snapshot.upstreams = settings.upstreams.map(\.description)
            snapshot.forwarded = settings.upstreams.compactMap { ids[$0] }.reduce(0) { $0 + slots[$1].forwarded.load }
            return snapshot
        }
    }

    /// When the relay started, for uptime.
    public var startedAt: ContinuousClock.Instant { state.withLock { $0.startedAt } }
}

/// What a reload changes, behind one lock: the configuration in force, every
/// upstream ever made (by id: lanes on every loop are keyed by it, so an id is
/// never reused), those in use now, their kinds, and the routes' counters.
struct RoutingState: Sendable {
    var configuration: FerryConfiguration
    var slots: [Upstream]
    /// Ids of the upstreams in use, in route order then failover order.
    var live: [Int]
    var kinds: [Int: any UpstreamKind]
    /// The position of each running listener for `match.listener`.
    var listeners: ListenerPositions
    var routes: [RouteStats]

    /// Ids of the upstreams in use, by URL.
    var ids: [UpstreamURL: Int] {
        Dictionary(live.map { (slots[$0].url, $0) }, uniquingKeysWith: { first, _ in first })
    }
}

/// Mutable facts about the relay, behind the relay's lock.
public struct RelayState: Sendable {
    public enum Phase: String, Sendable {
        case starting, running, draining, stopped
    }
    var phase: Phase = .starting
    var listeners: [any IntakeListener] = []
    /// Each listener's allowlist and rate limit, by listener name (only those that have one).
    var gates: [(listener: String, gate: SourceGate)] = []
    var undrained = 0
    let startedAt: ContinuousClock.Instant

    init(startedAt: ContinuousClock.Instant) {
        self.startedAt = startedAt
    }
}

/// What `/v1/status` shows of one listener's source limits.
public struct SourceLimitsSnapshot: Sendable, Codable, Equatable {
    public var listener: String
    /// The blocks it takes traffic from (nil: any).
    public var allow: String?
    /// Its per-source rate limit, with the loudest sources (nil: none).
    public var rateLimit: SourceGateSnapshot?
}

/// What `/v1/status` shows of one receive socket.
public struct ListenerSnapshot: Sendable, Codable, Equatable {
    /// The `udp://` listener this socket belongs to, as configured.
    public var listener: String
    public var address: String
    public var port: Int
    public var loop: Int
    public var receiveBufferBytes: Int
    /// The `udp://` upstream this socket's receive thread sends to itself
    /// (recvmmsg → sendmmsg, no hop); nil while its bursts go through the
    /// event loop (ferry:// or file: first, logs waiting, breaker not closed).
    public var directRoute: String?
    /// Datagrams the kernel dropped on this socket because its receive queue was full.
    public var kernelReceiveDrops: Int?
    /// Bytes waiting in the socket's receive queue.
    public var receiveQueueBytes: Int?
    /// Inodes of other processes' sockets on the same port (`SO_REUSEPORT`):
    /// each takes part of the port's datagrams. Empty when Ferry has it alone.
    public var foreignReceivers: [UInt64] = []
    /// Datagrams this socket read (logs, frames and oversize ones), and their payload bytes.
    public var datagramsReceived = 0
    public var receivedBytes = 0
}
