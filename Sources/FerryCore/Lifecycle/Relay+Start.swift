import Logging
import NIOCore
import NIOPosix
import Synchronization

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
        // The spool first: what an earlier run left is sent before anything new.
        let spool = configuration.spoolsPerRoute ? nil : try configuration.spool.map { try openSpool($0, loopCount: loopCount, logger: logger) }
        let registry = try configuration.spool.flatMap { settings in
            configuration.spoolsPerRoute ? try openRouteSpools(settings, routes: configuration.routes, loopCount: loopCount, logger: logger) : nil
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: loopCount)
        do {
            return try await build(
                configuration: configuration, group: group, loopCount: loopCount, spool: spool, registry: registry, latency: latency,
                logger: logger)
        } catch {
            try? await group.shutdownGracefully()
            spool?.close()
            registry?.close()
            throw error
        }
    }

    /// Opens the spool and says what its scan found.
    private static func openSpool(_ settings: SpoolSettings, loopCount: Int, logger: Logger) throws -> Spool {
        let started = ContinuousClock.now
        let spool = try Spool.open(settings: settings, shardCount: loopCount, logger: logger)
        report(spool, route: nil, started: started, logger: logger)
        return spool
    }

    /// Opens each route's spool (``SpoolRegistry``), says what each scan found,
    /// and warns of route spools on disk that no route has any more (left alone).
    private static func openRouteSpools(_ settings: SpoolSettings, routes: [RouteSettings], loopCount: Int, logger: Logger) throws -> SpoolRegistry {
        let started = ContinuousClock.now
        let registry = try SpoolRegistry.open(settings: settings, routes: routes, shardCount: loopCount, logger: logger)
        for (name, spool) in registry.spools { report(spool, route: name, started: started, logger: logger) }
        let names = Set(routes.map(\.name))
        let orphans = SpoolShard.directoryEntries(settings.directory + "/routes").filter { $0 != "." && $0 != ".." && !names.contains($0) }
        if !orphans.isEmpty {
            logger.warning(
                "spool holds routes the configuration does not have",
                metadata: [
                    "spool.dir": "\(settings.directory)", "routes": "\(orphans.sorted().prefix(10).joined(separator: ","))",
                    "effect": "left alone: add the route back to deliver what it holds, or delete its directory under routes/",
                ])
        }
        return registry
    }

    /// Logs what a spool's start-up scan found.
    private static func report(_ spool: Spool, route: String?, started: ContinuousClock.Instant, logger: Logger) {
        let settings = spool.settings
        let found = spool.recoveries
        let recovered = found.reduce(0) { $0 + $1.recovered }
        logger.info(
            "spool opened",
            metadata: [
                "spool.dir": "\(settings.directory)", "spool.shards": "\(spool.shards.count)", "spool.bytes": "\(spool.bytes)",
                "spool.recovered_logs": "\(recovered)", "spool.fsync": "\(settings.sync)",
                "spool.scan_seconds": "\((ContinuousClock.now - started).components.seconds)", "route": "\(route ?? RouteSettings.defaultName)",
            ])
        for (index, report) in found.enumerated() {
            if report.damagedRecords > 0 || report.damagedBytes > 0 || report.tornBytes > 0 || report.progressLost {
                logger.warning(
                    "spool damage found at start",
                    metadata: [
                        "spool.shard": "\(index)", "spool.damaged_records": "\(report.damagedRecords)",
                        "spool.damaged_bytes": "\(report.damagedBytes)", "spool.torn_bytes": "\(report.tornBytes)",
                        "spool.progress_lost": "\(report.progressLost)",
                        "effect":
                            "damaged records are skipped and counted as spool_corrupt; a torn tail is cut; a lost progress file resends what is on disk",
                    ])
            }
            if !report.foreignFiles.isEmpty {
                logger.warning(
                    "spool directory holds files that are not Ferry's",
                    metadata: [
                        "spool.shard": "\(index)", "files": "\(report.foreignFiles.prefix(10).joined(separator: ","))", "effect": "left alone",
                    ])
            }
        }
    }

    private static func build(
        configuration: FerryConfiguration, group: MultiThreadedEventLoopGroup, loopCount: Int, spool: Spool?, registry: SpoolRegistry?,
        latency: @escaping LatencyRecorders, logger: Logger
    ) async throws -> Relay {
        let capacity = BufferCapacity(logs: configuration.queueCapacityLogs, bytes: configuration.queueCapacityBytes)
        let upstreams = configuration.allUpstreams.enumerated().map { index, url in
            return Upstream(
                url: url, index: index, lanes: loopCount, breaker: configuration.breaker, budget: configuration.retryBudget,
                latency: latency(url), udpSegmentation: configuration.udpSegmentation, logger: logger)
        }
        // Sender ids are each ferry:// lane's own (FerryUpstreamKind); the spool's `sender-id` only names
        // the frames a journal written by an earlier release holds.
        let legacyInstanceID = spool?.senderInstance ?? registry?.senderInstance ?? 0
        // Read again here (the configuration holds paths only): a file changed since it was checked fails the start.
        let keys = configuration.trust.keyFiles.isEmpty ? nil : try FrameKeySource(paths: configuration.trust.keyFiles)
        if let keys {
            let ring = keys.ring
            logger.info(
                "ferry:// frames keyed", metadata: ["auth.key_ids": "\(ring)", "auth.signing_key_id": "\(String(ring.signing.id, radix: 16))"])
            group.next().scheduleRepeatedTask(initialDelay: .seconds(2), delay: .seconds(2)) { _ in keys.reloadIfChanged(logger: logger) }
        }
        var frameSettings = FerryUpstreamLane.Settings(
            maximumFrameBytes: configuration.frameMaxBytes,
            windowFrames: configuration.windowFrames,
            windowLogs: configuration.windowLogs,
            timing: .init(
                ackTimeout: TimeAmount(configuration.ackTimeout), ttl: TimeAmount(configuration.frameTTL),
                policy: configuration.retryPolicy),
            traceInterval: configuration.frameSampleInterval > .zero ? TimeAmount(configuration.frameSampleInterval) : nil)
        frameSettings.keys = keys
        frameSettings.linger = configuration.frameLinger > .zero ? TimeAmount(configuration.frameLinger) : nil

        // Resolve names and open files once, before any loop uses them.
        var kindContext = UpstreamKindContext(legacyInstanceID: legacyInstanceID, frameSettings: frameSettings, logger: logger)
        kindContext.tlsUpstream = configuration.tlsUpstream
        switch configuration.spool?.sync {
        case .always: kindContext.fileSyncEvery = .zero
        case .interval: kindContext.fileSyncEvery = configuration.spool?.syncInterval
        case .never, nil: kindContext.fileSyncEvery = nil
        }
        var kinds: [any UpstreamKind] = []
        for upstream in upstreams {
            kinds.append(try UpstreamKinds.open(upstream, context: kindContext))
        }

        let lanesToBuild = kinds
        let table = RoutingTable(configuration: configuration)
        let routeStats = table.routes.map({ RouteStats(route: $0) })
        let loops = Array(group.makeIterator())
        var handles: [PipelineHandle] = []
        for (index, loop) in loops.prefix(loopCount).enumerated() {
            let handle = try await loop.submit {
                let pipeline = LoopPipeline(
                    index: index, eventLoop: loop, capacity: capacity, maxRecordBytes: configuration.maxDatagramBytes,
                    sampleRate: configuration.traceSampleRate, spool: spool, loopCount: loopCount, keys: keys, routing: table,
                    registry: registry, logger: logger)
                // Each lane belongs to its route's queue (where it hands back what it could not send).
                pipeline.install(
                    table, stats: routeStats, kinds: Dictionary(uniqueKeysWithValues: lanesToBuild.enumerated().map { ($0.offset, $0.element) }),
                    logger: logger)
                return PipelineHandle(
                    index: index, eventLoop: loop, counters: pipeline.counters, route: pipeline.directRoute,
                    pipeline: NIOLoopBound(pipeline, eventLoop: loop), spoolShard: spool?.shards[index], capacity: capacity)
            }.get()
            try await loop.flatSubmit {
                EventLoopFuture.andAllSucceed(handle.pipeline.value.allLanes.map { $0.start() }, on: loop).map {
                    handle.pipeline.value.scheduleReadBack()  // what an earlier run left on disk moves without waiting for traffic
                }
            }.get()
            handles.append(handle)
        }

        let relay = Relay(
            configuration: configuration, capacity: capacity, upstreams: upstreams, spool: spool, registry: registry, handles: handles,
            group: group, kinds: kinds, routes: routeStats, latency: latency, kindContext: kindContext, logger: logger)
        for upstream in upstreams { relay.connectRepoint(upstream) }
        relay.keepsSources.store(table.readsSource)
        let positions = ListenerPositions(configuration: configuration)
        var listeners: [any IntakeListener] = []
        var gates: [(listener: String, gate: SourceGate)] = []
        do {
            for url in configuration.listeners {
                let bound = try await bindListener(
                    url, configuration: configuration, group: group, handles: handles, upstreams: upstreams,
                    position: positions[url.description] ?? 0,
                    keepsSources: relay.keepsSources, logger: logger)
                listeners.append(bound.intake)
                if let gate = bound.gate { gates.append((url.description, gate)) }
                try await bound.intake.start(handles: handles)
            }
        } catch {
            for listener in listeners { await listener.stopIntake(handles: handles) }
            throw error
        }
        if let gate = relay.httpGate { gates.append((FerryConfiguration.httpListenerName, gate)) }
        relay.state.withLock {
            $0.listeners = listeners
            $0.gates = gates
            $0.phase = .running
        }
        let sockets = listeners.compactMap { $0 as? UDPIntake }.flatMap(\.sockets)
        let granted = sockets.map(\.socket.receiveBufferBytes).min() ?? configuration.receiveBufferBytes
        var metadata: Logger.Metadata = [
            "listeners": "\(listeners.map(\.boundDescription).joined(separator: ","))",
            "udp.sockets": "\(sockets.count)",
            "udp.receive_buffer.requested_bytes": "\(configuration.receiveBufferBytes)",
            "udp.receive_buffer.granted_bytes": "\(granted)",
            "upstreams": "\(configuration.allUpstreams.map(\.description).joined(separator: ","))",
            "routes": "\(configuration.effectiveRoutes.map(\.name).joined(separator: ","))",
        ]
        if let first = sockets.first { metadata["udp.address"] = "\(first.socket.localAddress.hostAndPort)" }
        logger.info("listening", metadata: metadata)
        StartupPages.releaseLater(on: group.next(), logger: logger)
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
