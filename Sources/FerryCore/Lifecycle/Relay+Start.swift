import Logging
import NIOCore
import NIOPosix

/// Composing the data plane: what ``Relay/start(configuration:logger:latency:)``
/// builds, in order, before anything runs.
extension Relay {
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
