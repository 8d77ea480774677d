import Logging
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// A `tcp://` or `tls://` listener: one NIO server socket whose connections
/// are spread over the event loops, each feeding its own loop's pipeline.
///
/// Every connection gets, in order: TLS (`NIOSSLServerHandler` with the
/// current certificate, and a ``TLSHandshakeGuard``) for `tls://`; an idle
/// timeout; and a ``StreamConnectionHandler`` that frames and offers its
/// messages. Caps on open connections per listener and per source address
/// are checked at accept; a refused connection is closed at once and counted.
/// NIO's accept backoff keeps a full file-descriptor table from spinning.
final class StreamListener: IntakeListener {
    let url: ListenerURL
    let stats: StreamListenerStats
    let events: StreamListenerEvents
    let tls: TLSServerContextSource?
    /// The address bound (the kernel's port when 0 was asked for).
    let localAddress: SocketAddress
    private let server: any Channel
    private let connections: Connections
    private let reload: RepeatedTask?

    /// The open connections, to close them when intake stops.
    final class Connections: Sendable {
        struct Entry: Sendable {
            let channel: any Channel
            let handler: NIOLoopBound<StreamConnectionHandler>
        }
        let entries = Mutex<[ObjectIdentifier: Entry]>([:])
        let accepting = Atomic<Bool>(true)
    }

    private init(
        url: ListenerURL, stats: StreamListenerStats, events: StreamListenerEvents, tls: TLSServerContextSource?, server: any Channel,
        connections: Connections, reload: RepeatedTask?
    ) {
        self.url = url
        self.stats = stats
        self.events = events
        self.tls = tls
        self.server = server
        self.localAddress = server.localAddress!
        self.connections = connections
        self.reload = reload
    }

    /// Binds `url` and starts accepting: connections go to the pipeline of the loop NIO gives them.
    static func bind(
        _ url: ListenerURL, configuration: FerryConfiguration, group: any EventLoopGroup, handles: [Relay.PipelineHandle],
        gate: SourceGate? = nil, position listenerPosition: Int = 0, logger: Logger
    ) async throws -> StreamListener {
        let settings = configuration.streamListener
        let stats = StreamListenerStats(
            name: url.description, maxConnections: settings.maxConnections, maxPerSource: settings.maxConnectionsPerSource)
        let events = StreamListenerEvents(name: url.description, logger: logger)
        var tls: TLSServerContextSource?
        let framing: StreamFraming
        let transport: Transport
        switch url {
        case .udp: preconditionFailure("UDP listeners are UDPListener's")
        case .tcp(_, let fixed):
            framing = fixed
            transport = .tcp
        case .tls(_, let fixed):
            framing = fixed
            transport = .tls
            tls = try TLSServerContextSource(settings: configuration.tlsListener)
        }
        let byLoop = Dictionary(uniqueKeysWithValues: handles.map { (ObjectIdentifier($0.eventLoop), $0) })
        let connections = Connections()
        let idle = TimeAmount(settings.idleTimeout)
        let handshakeTimeout = TimeAmount(configuration.tlsListener.handshakeTimeout)
        let tlsSource = tls
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.maxMessagesPerRead, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.so_keepalive), value: 1)
            // At most 4 reads of up to 64 KiB per read cycle: what a paused connection may hold read and not yet taken.
            .childChannelOption(.maxMessagesPerRead, value: 4)
            .childChannelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 1024, initial: 16 << 10, maximum: 64 << 10))
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                let source = channel.remoteAddress?.ipAddress ?? "unknown"
                guard connections.accepting.load(ordering: .acquiring) else {
                    stats.refused[StreamListenerStats.Refusal.draining.rawValue].add(1)
                    return channel.close()
                }
                let sourceKey = channel.remoteAddress.flatMap { SourceKey($0) }
                if let allowlist = gate?.allowlist, !(sourceKey.map { allowlist.allows($0) } ?? false) {
                    // Before the TLS handshake and before any byte is read.
                    stats.refused[StreamListenerStats.Refusal.denied.rawValue].add(1)
                    events.refused(source: source, reason: .denied)
                    return channel.close()
                }
                if let refusal = stats.admit(source: source) {
                    events.refused(source: source, reason: refusal)
                    return channel.close()
                }
                guard let handle = byLoop[ObjectIdentifier(channel.eventLoop)] else {
                    stats.release(source: source, closure: .error)
                    return channel.close()
                }
                do {
                    let connection = StreamConnectionHandler(
                        pipeline: handle.pipeline.value, stats: stats, events: events, transport: transport, framing: framing, source: source,
                        gate: gate, sourceKey: sourceKey, listener: listenerPosition)
                    var handlers: [any ChannelHandler] = []
                    if let tlsSource {
                        let verification = TLSHandshakeGuard.Verification()
                        let ssl = try NIOSSLServerHandler(context: tlsSource.current) { result, certificate in
                            if result == .failed, verification.failure == nil {
                                verification.failure = TLSFailureReason.verificationFailure(of: certificate)
                            }
                            return result
                        }
                        handlers.append(ssl)
                        handlers.append(
                            TLSHandshakeGuard(
                                timeout: handshakeTimeout, stats: stats, events: events, connection: connection, verification: verification))
                    }
                    handlers.append(IdleStateHandler(readTimeout: idle))
                    handlers.append(connection)
                    try channel.pipeline.syncOperations.addHandlers(handlers)
                    let key = ObjectIdentifier(channel)
                    connections.entries.withLock {
                        $0[key] = Connections.Entry(channel: channel, handler: NIOLoopBound(connection, eventLoop: channel.eventLoop))
                    }
                    channel.closeFuture.whenComplete { _ in connections.entries.withLock { _ = $0.removeValue(forKey: key) } }
                    return channel.eventLoop.makeSucceededVoidFuture()
                } catch {
                    stats.release(source: source, closure: .error)
                    return channel.close()
                }
            }
        let server: any Channel
        do {
            server = try await bootstrap.bind(host: url.address.host, port: url.address.port).get()
        } catch {
            throw IngestError.cannotBindStream(listener: url.description, reason: String(describing: error))
        }
        let reload = tls.map { source in
            group.next().scheduleRepeatedTask(initialDelay: .seconds(2), delay: .seconds(2)) { _ in source.reloadIfChanged(logger: logger) }
        }
        return StreamListener(url: url, stats: stats, events: events, tls: tls, server: server, connections: connections, reload: reload)
    }

    var socketCount: Int { 1 }

    var boundDescription: String {
        let scheme = url.description.prefix { $0 != ":" }
        return "\(scheme)://\(localAddress.hostAndPort)"
    }

    func start(handles: [Relay.PipelineHandle]) async throws {}

    func stopIntake(handles: [Relay.PipelineHandle]) async {
        connections.accepting.store(false, ordering: .releasing)
        reload?.cancel()
        try? await server.close()
        // Each connection offers what it read once more, then closes.
        let open = connections.entries.withLock { Array($0.values) }
        for entry in open {
            entry.channel.eventLoop.execute {
                entry.handler.value.closure = .shutdown
                entry.channel.close(promise: nil)
            }
        }
        for entry in open {
            try? await entry.channel.closeFuture.get()
        }
    }

    func snapshots(kernel: [KernelUDPStats.SocketLine], own: Set<UInt64>, directRoute: (Int) -> String?) -> [ListenerSnapshot] { [] }

    var streamSnapshot: StreamListenerSnapshot? {
        var snapshot = stats.snapshot
        snapshot.address = localAddress.hostAndPort
        snapshot.port = localAddress.port ?? 0
        snapshot.certificate = tls?.summary
        return snapshot
    }
}
