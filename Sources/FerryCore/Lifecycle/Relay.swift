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
    public let upstreams: [Upstream]
    let handles: [PipelineHandle]
    private let group: MultiThreadedEventLoopGroup
    private let fileSinks: [FileSink]
    private let logger: Logger
    private let state: Mutex<RelayState>
    private let nextHTTPLoop = AtomicCounter()

    /// A loop's pipeline together with what may be read of it from any thread.
    struct PipelineHandle: Sendable {
        let index: Int
        let eventLoop: any EventLoop
        let counters: PipelineCounters
        /// The route the pipeline opens for its receive thread's direct sends.
        let route: DirectRoute
        let pipeline: NIOLoopBound<LoopPipeline>
    }

    private init(
        configuration: FerryConfiguration, capacity: BufferCapacity, upstreams: [Upstream], handles: [PipelineHandle],
        group: MultiThreadedEventLoopGroup, fileSinks: [FileSink], logger: Logger
    ) {
        self.configuration = configuration
        self.capacity = capacity
        self.upstreams = upstreams
        self.handles = handles
        self.group = group
        self.fileSinks = fileSinks
        self.logger = logger
        self.state = Mutex(RelayState(startedAt: .now))
    }

    /// Resolves upstreams, opens file sinks, connects upstream sockets and binds
    /// the receive sockets.
    ///
    /// - Parameter latency: makes each upstream's forward latency recorder (the metrics backend's histogram).
    public static func start(
        configuration: FerryConfiguration, logger: Logger, latency: @escaping LatencyRecorders = { _ in nil }
    ) async throws -> Relay {
        try UDPListener.refuseSharedPort(configuration)
        let loopCount = configuration.effectiveReceiveSockets
        let group = MultiThreadedEventLoopGroup(numberOfThreads: loopCount)
        do {
            return try await build(configuration: configuration, group: group, loopCount: loopCount, latency: latency, logger: logger)
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    private static func build(
        configuration: FerryConfiguration, group: MultiThreadedEventLoopGroup, loopCount: Int, latency: LatencyRecorders,
        logger: Logger
    ) async throws -> Relay {
        let capacity = BufferCapacity(logs: configuration.queueCapacityLogs, bytes: configuration.queueCapacityBytes)
        let upstreams = configuration.upstreams.enumerated().map { index, url in
            return Upstream(
                url: url, index: index, lanes: loopCount, breaker: configuration.breaker, budget: configuration.retryBudget,
                latency: latency(url), udpSegmentation: configuration.udpSegmentation, logger: logger)
        }
        // Sender ids: one random instance id, with the loop index in the low byte,
        // so every loop has its own sequence space and receivers their own dedupe window.
        var random = SystemRandomNumberGenerator()
        let instanceID = random.next() & ~UInt64(0xFF)
        let frameSettings = FerryUpstreamLane.Settings(
            maximumFrameBytes: configuration.frameMaxBytes,
            windowFrames: configuration.windowFrames,
            timing: .init(
                ackTimeout: TimeAmount(configuration.ackTimeout), ttl: TimeAmount(configuration.frameTTL),
                policy: configuration.retryPolicy),
            traceInterval: configuration.frameSampleInterval > .zero ? TimeAmount(configuration.frameSampleInterval) : nil)

        // Resolve names and open files once, before any loop uses them.
        var targets: [UpstreamTarget] = []
        var fileSinks: [FileSink] = []
        for upstream in upstreams {
            switch upstream.url {
            case .udp(let address):
                try resolveAtStart(address, for: upstream, logger: logger)
                targets.append(.udp(upstream))
            case .ferry(let address):
                try resolveAtStart(address, for: upstream, logger: logger)
                targets.append(.ferry(upstream, upstream.currentAddress, instanceID, frameSettings))
            case .file(let path):
                let sink = try FileSink(path: path, upstream: upstream, logger: logger)
                fileSinks.append(sink)
                targets.append(.file(upstream, sink))
            }
        }

        let lanesToBuild = targets
        let loops = Array(group.makeIterator())
        var handles: [PipelineHandle] = []
        for (index, loop) in loops.prefix(loopCount).enumerated() {
            let handle = try await loop.submit {
                let pipeline = LoopPipeline(
                    index: index, eventLoop: loop, capacity: capacity, maxRecordBytes: configuration.maxDatagramBytes,
                    sampleRate: configuration.traceSampleRate, logger: logger)
                pipeline.setLanes(lanesToBuild.map { $0.makeLane(pipeline: pipeline, capacity: capacity, logger: logger) })
                return PipelineHandle(
                    index: index, eventLoop: loop, counters: pipeline.counters, route: pipeline.directRoute,
                    pipeline: NIOLoopBound(pipeline, eventLoop: loop))
            }.get()
            try await loop.flatSubmit {
                EventLoopFuture.andAllSucceed(handle.pipeline.value.lanes.map { $0.start() }, on: loop)
            }.get()
            handles.append(handle)
        }

        let relay = Relay(
            configuration: configuration, capacity: capacity, upstreams: upstreams, handles: handles,
            group: group, fileSinks: fileSinks, logger: logger)
        for upstream in upstreams {
            let handlesToRepoint = handles
            upstream.setRepointHandler { address in
                for handle in handlesToRepoint {
                    handle.eventLoop.execute { handle.pipeline.value.lanes[upstream.index].repoint(to: address) }
                }
            }
        }
        let listener = UDPListener(configuration: configuration, logger: logger)
        let sockets = try listener.bind(handles: handles, upstreams: upstreams)
        do {
            for socket in sockets {
                let handle = handles[socket.loopIndex]
                let replySocket = socket.socket
                try await handle.eventLoop.submit { handle.pipeline.value.replySocket = replySocket }.get()
                let deliver = try await handle.eventLoop.submit {
                    let pipeline = handle.pipeline.value
                    return NIOLoopBound<([ReceivedBurst]) -> Void>({ pipeline.receive($0) }, eventLoop: handle.eventLoop)
                }.get()
                try socket.receiver.start(name: "ferry-rx-\(socket.loopIndex)", eventLoop: handle.eventLoop, deliver: deliver)
            }
        } catch {
            for socket in sockets {
                socket.receiver.stop()
                socket.socket.close()
            }
            throw error
        }
        relay.state.withLock {
            $0.sockets = sockets
            $0.phase = .running
        }
        let granted = sockets.map(\.socket.receiveBufferBytes).min() ?? 0
        logger.info(
            "listening",
            metadata: [
                "udp.address": "\(sockets.first?.socket.localAddress.hostAndPort ?? "?")",
                "udp.sockets": "\(sockets.count)",
                "udp.receive_buffer.requested_bytes": "\(configuration.receiveBufferBytes)",
                "udp.receive_buffer.granted_bytes": "\(granted)",
                "upstreams": "\(configuration.upstreams.map(\.description).joined(separator: ","))",
            ])
        if granted < configuration.receiveBufferBytes {
            logger.warning(
                "receive buffer smaller than requested",
                metadata: [
                    "udp.receive_buffer.requested_bytes": "\(configuration.receiveBufferBytes)",
                    "udp.receive_buffer.granted_bytes": "\(granted)",
                    "fix": "raise the sysctl net.core.rmem_max to at least the requested size (or run with CAP_NET_ADMIN)",
                ])
        }
        return relay
    }

    /// Resolves an upstream before start. A host name that does not resolve
    /// yet (a peer that starts later, DNS not ready) does not stop Ferry: the
    /// upstream starts without an address, logs wait or fail over, and the
    /// resolver keeps trying. An address that cannot be used at all fails start-up.
    private static func resolveAtStart(_ address: HostAndPort, for upstream: Upstream, logger: Logger) throws {
        do {
            upstream.setInitialAddresses(try resolve(address, for: upstream))
        } catch {
            guard !NameResolver.isLiteral(address.host) else { throw error }
            upstream.setInitialAddresses([])
            upstream.applyResolution(.failure(error))
        }
    }

    private static func resolve(_ address: HostAndPort, for upstream: Upstream) throws -> [SocketAddress] {
        do {
            return try NameResolver.resolveAll(host: address.host, port: address.port)
        } catch {
            throw ForwardingError.cannotResolve(upstream: upstream.url.description, reason: String(describing: error))
        }
    }

    // MARK: - Intake from the control plane

    /// What happened to the lines of one HTTP request.
    public enum IntakeOutcome: Sendable, Equatable {
        case accepted(Int)
        case bufferFull
        case draining
    }

    /// Offers lines received over HTTP, all or none, to one loop's pipeline.
    public func ingest(_ records: [ByteBuffer], transport: Transport = .http) async -> IntakeOutcome {
        guard state.withLock({ $0.phase == .running }) else { return .draining }
        let handle = handles[Int(UInt(bitPattern: nextHTTPLoop.load) % UInt(handles.count))]
        nextHTTPLoop.add(1)
        let outcome = try? await handle.eventLoop.submit {
            handle.pipeline.value.receiveAll(records, transport: transport)
        }.get()
        switch outcome {
        case .accepted(let count): return .accepted(count)
        case .bufferFull: return .bufferFull
        case nil: return .draining
        }
    }

    // MARK: - Shutdown

    /// Stops intake, forwards what is buffered within `drain.timeout`, closes
    /// upstreams and returns how many logs could not be drained.
    @discardableResult
    public func shutdown() async -> Int {
        let sockets = state.withLock { state -> [UDPListener.Socket] in
            guard state.phase == .running || state.phase == .starting else { return [] }
            state.phase = .draining
            return state.sockets
        }
        for socket in sockets {
            socket.receiver.stop()
        }
        // Bursts read before the stop are delivered on their loops first (tasks
        // run in order); after this no loop sends from a receive socket again.
        for socket in sockets {
            let handle = handles[socket.loopIndex]
            try? await handle.eventLoop.submit { handle.pipeline.value.replySocket = nil }.get()
            socket.socket.close()
        }
        logger.info("draining", metadata: ["buffer.logs": "\(capacity.usedLogs)", "drain.timeout": "\(configuration.drainTimeout)"])

        let deadline = ContinuousClock.now + configuration.drainTimeout
        while capacity.usedLogs > 0, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(5))
        }
        // Close sinks first so that a batch being written settles before the
        // count of what is left is taken.
        for sink in fileSinks {
            await sink.close()
        }
        for handle in handles {
            try? await handle.eventLoop.flatSubmit {
                EventLoopFuture.andAllComplete(handle.pipeline.value.lanes.map { $0.stop() }, on: handle.eventLoop)
            }.get()
        }
        let undrained = capacity.usedLogs
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
        for sink in fileSinks { sink.reopen() }
        return fileSinks.map(\.path)
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
        let sockets = state.withLock { $0.sockets }
        let table = kernelTable()
        let kernel = Dictionary(table.map { ($0.inode, $0) }, uniquingKeysWith: { first, _ in first })
        let own = Set(sockets.map(\.socket.inode))
        return sockets.map { socket in
            let line = kernel[socket.socket.inode]
            let foreign = PortSharing.foreignReceivers(of: socket.socket.localAddress, own: own, table: table)
            return ListenerSnapshot(
                address: socket.socket.localAddress.hostAndPort,
                port: socket.socket.localAddress.port ?? 0,
                loop: socket.loopIndex,
                receiveBufferBytes: socket.socket.receiveBufferBytes,
                directRoute: directRoute(of: socket.loopIndex),
                kernelReceiveDrops: line?.drops,
                receiveQueueBytes: line?.receiveQueueBytes,
                foreignReceivers: foreign.map(\.inode).sorted())
        }
    }

    /// Receive sockets bound now (no /proc read: for `/readyz`).
    public var listenerCount: Int { state.withLock { $0.sockets.count } }

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
    private let foreignInodesSeen = Mutex<Set<UInt64>>([])

    /// Warns about, and counts, sockets that joined a listener's port group
    /// since the last check: they take part of its traffic.
    func checkForeignReceivers(_ listeners: [ListenerSnapshot]) {
        for listener in listeners where listener.loop == listeners.first?.loop {
            let fresh = foreignInodesSeen.withLock { seen in
                let fresh = listener.foreignReceivers.filter { !seen.contains($0) }
                seen.formUnion(fresh)
                return fresh
            }
            guard !fresh.isEmpty else { continue }
            foreignReceiversSeen.add(fresh.count)
            logger.warning(
                "foreign receiver on the UDP port takes part of its traffic",
                metadata: [
                    "listener": "\(listener.address)",
                    "socket.inodes": "\(fresh.map(String.init).joined(separator: ","))",
                    "foreign_receivers": "\(listener.foreignReceivers.count)",
                    "fix": "another process bound this port with SO_REUSEPORT (a second Ferry?): stop it; see 'ss -ulpn sport = :\(listener.port)'",
                ])
        }
    }

    /// The upstream loop `index`'s receive thread sends to itself now: the
    /// route its pipeline opened, if that upstream can still take traffic.
    private func directRoute(of index: Int) -> String? {
        guard let position = handles[index].route.upstream else { return nil }
        let upstream = upstreams[position]
        return upstream.isBreakerClosed && upstream.isLaneAvailable(index) ? upstream.url.description : nil
    }

    /// Re-resolves upstream host names every `resolve.interval` (and soon after
    /// a breaker opens) until cancelled; a changed address moves every lane.
    public func monitorResolution() async {
        // With resolve.interval 0, names are still retried until they resolve once.
        let interval = configuration.resolveInterval > .zero ? TimeAmount(configuration.resolveInterval) : .hours(1_000_000)
        while !Task.isCancelled {
            for upstream in upstreams {
                guard upstream.needsResolution(interval: interval), let host = upstream.hostName,
                    let address = upstream.url.networkAddress
                else { continue }
                let result: Result<[SocketAddress], any Error>
                do {
                    let port = address.port
                    result = .success(try await NIOThreadPool.singleton.runIfActive { try NameResolver.resolveAll(host: host, port: port) })
                } catch {
                    result = .failure(error)
                }
                upstream.applyResolution(result)
            }
            do {
                try await Task.sleep(for: .milliseconds(250))
            } catch {
                return
            }
        }
    }

    /// Watches the kernel's drop counter of every receive socket until cancelled,
    /// and logs one warning per listener and interval in which it grew, saying what to do.
    public func monitorKernelDrops() async {
        var previous: [Int: Int] = [:]
        for listener in listeners { previous[listener.loop] = listener.kernelReceiveDrops ?? 0 }
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: configuration.kernelCheckInterval)
            } catch {
                return
            }
            let listeners = self.listeners
            checkForeignReceivers(listeners)
            for listener in listeners {
                guard let drops = listener.kernelReceiveDrops else { continue }
                let grown = drops - previous[listener.loop, default: drops]
                previous[listener.loop] = drops
                guard grown > 0 else { continue }
                logger.warning(
                    "kernel dropped datagrams before Ferry could read them",
                    metadata: [
                        "listener": "\(listener.address)",
                        "socket": "\(listener.loop)",
                        "kernel.drops.interval": "\(grown)",
                        "kernel.drops.total": "\(drops)",
                        "interval": "\(configuration.kernelCheckInterval)",
                        "udp.receive_buffer.granted_bytes": "\(listener.receiveBufferBytes)",
                        "fix":
                            "raise the sysctl net.core.rmem_max and receive.buffer-bytes (FERRY_RECEIVE_BUFFER_BYTES), or add receive sockets (receive.sockets) so more cores read",
                    ])
            }
        }
    }

    /// When the relay started, for uptime.
    public var startedAt: ContinuousClock.Instant { state.withLock { $0.startedAt } }
}

/// One upstream resolved and opened, ready to get a lane on every loop.
private enum UpstreamTarget: Sendable {
    case udp(Upstream)
    case ferry(Upstream, SocketAddress?, UInt64, FerryUpstreamLane.Settings)
    case file(Upstream, FileSink)

    func makeLane(pipeline: LoopPipeline, capacity: BufferCapacity, logger: Logger) -> any UpstreamLane {
        switch self {
        case .udp(let upstream):
            let lane = UDPUpstreamLane(
                upstream: upstream, eventLoop: pipeline.eventLoop, capacity: capacity, laneIndex: pipeline.index, logger: logger)
            lane.onAvailable = { [unowned pipeline] in pipeline.drainShard() }
            lane.returnToBuffer = { [unowned pipeline] records, bytes, receivedAt in
                pipeline.returnToBuffer(records, bytes: bytes, receivedAt: receivedAt)
            }
            return lane
        case .ferry(let upstream, let address, let instanceID, let settings):
            let lane = FerryUpstreamLane(
                upstream: upstream, address: address, eventLoop: pipeline.eventLoop, capacity: capacity, counters: pipeline.counters,
                laneIndex: pipeline.index, senderID: instanceID | UInt64(pipeline.index & 0xFF), settings: settings, logger: logger)
            lane.onAvailable = { [unowned pipeline] in pipeline.drainShard() }
            lane.returnToBuffer = { [unowned pipeline] records, bytes, receivedAt in
                pipeline.returnToBuffer(records, bytes: bytes, receivedAt: receivedAt)
            }
            return lane
        case .file(let upstream, let sink):
            let lane = FileUpstreamLane(
                upstream: upstream, sink: sink, eventLoop: pipeline.eventLoop, capacity: capacity,
                laneIndex: pipeline.index)
            let loopBound = NIOLoopBound(pipeline, eventLoop: pipeline.eventLoop)
            lane.returnToBuffer = { records, bytes, receivedAt in
                loopBound.value.returnToBuffer(records, bytes: bytes, receivedAt: receivedAt)
            }
            return lane
        }
    }
}

/// Mutable facts about the relay, behind the relay's lock.
public struct RelayState: Sendable {
    public enum Phase: String, Sendable {
        case starting, running, draining, stopped
    }
    var phase: Phase = .starting
    var sockets: [UDPListener.Socket] = []
    var undrained = 0
    let startedAt: ContinuousClock.Instant

    init(startedAt: ContinuousClock.Instant) {
        self.startedAt = startedAt
    }
}

/// What `/v1/status` shows of one receive socket.
public struct ListenerSnapshot: Sendable, Codable, Equatable {
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
}
