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
        let kindContext = UpstreamKindContext(instanceID: instanceID, frameSettings: frameSettings, logger: logger)
        var kinds: [any UpstreamKind] = []
        for upstream in upstreams {
            kinds.append(try UpstreamKinds.open(upstream, context: kindContext))
        }

        let lanesToBuild = kinds
        let loops = Array(group.makeIterator())
        var handles: [PipelineHandle] = []
        for (index, loop) in loops.prefix(loopCount).enumerated() {
            let handle = try await loop.submit {
                let pipeline = LoopPipeline(
                    index: index, eventLoop: loop, capacity: capacity, maxRecordBytes: configuration.maxDatagramBytes,
                    sampleRate: configuration.traceSampleRate, logger: logger)
                let context = LaneContext(pipeline: pipeline, capacity: capacity, logger: logger)
                pipeline.setLanes(lanesToBuild.map { $0.makeLane(context) })
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
            group: group, kinds: kinds, logger: logger)
        for upstream in upstreams {
            let handlesToRepoint = handles
            upstream.setRepointHandler { address in
                for handle in handlesToRepoint {
                    handle.eventLoop.execute { handle.pipeline.value.lanes[upstream.index].repoint(to: address) }
                }
            }
        }
        let intake = try UDPListener(configuration: configuration, logger: logger).bind(handles: handles, upstreams: upstreams)
        try await intake.start(handles: handles)
        relay.state.withLock {
            $0.listeners = [intake]
            $0.phase = .running
        }
        let sockets = intake.sockets
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
}
