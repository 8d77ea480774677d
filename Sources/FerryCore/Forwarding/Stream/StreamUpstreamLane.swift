import CFerrySystem
import DequeModule
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import Synchronization

/// One event loop's connection to a `tcp://` or `tls://` upstream.
///
/// Logs are written framed (octet counting, or one per line) and kept until
/// the peer's TCP has acknowledged their bytes: the lane counts every byte it
/// hands the socket (TLS records included, by a handler next to the socket)
/// and reads the kernel's count of acknowledged bytes (`TCP_INFO`'s
/// `tcpi_bytes_acked`) while anything is outstanding. Only then are logs
/// settled (forwarded, their buffer room and spool place released). When the
/// connection drops, what was not acknowledged goes back to the buffer and is
/// written again on the next connection (or to the next upstream): at least
/// once, counted as `resent`. Bytes the peer's kernel acknowledged but its
/// process never read are beyond what TCP can tell a sender (`ferry://` closes
/// that gap with its own acknowledgements).
///
/// Connecting never blocks intake: until a connection (and its handshake) is
/// up the lane cannot accept, so the pipeline fails over or buffers.
final class StreamUpstreamLane: UpstreamLane {
    /// What one `send` wrote, until its last byte is acknowledged.
    struct Outstanding {
        var records: [ByteBuffer]
        var bytes: Int
        var receivedAt: NIODeadline
        var spans: SpoolSpans
        /// Wire offset of the last byte of this write (TLS overhead included).
        var end: UInt64
    }

    let upstream: Upstream
    private let eventLoop: any EventLoop
    private let settlement: Settlement
    private let laneIndex: Int
    private let framing: StreamFraming
    private let tls: NIOSSLContext?
    private let serverName: String?
    private let logger: Logger
    /// Payload bytes written and not acknowledged that the lane allows before it stops accepting.
    static let windowBytes = 4 << 20
    static let connectTimeout = TimeAmount.seconds(5)
    /// A poll while writes are outstanding: the kernel reports the peer's TCP acks only when asked (`TCP_INFO`).
    static let ackPollInterval = TimeAmount.milliseconds(5)

    private var channel: (any Channel)?
    private var counter: WireByteCounter?
    private var ready = false
    private var connecting = false
    private var stopped = false
    private var reconnect = ReconnectBackoff()
    private var outstanding: Deque<Outstanding> = []
    private var outstandingBytes = 0
    private var polling = false
    private var warnings = WarningLimiter(interval: .seconds(10))
    private let allocator = ByteBufferAllocator()
    var returnToBuffer: (([ByteBuffer], Int, NIODeadline, SpoolSpans) -> Void)?
    var onAvailable: (() -> Void)?

    init(
        upstream: Upstream, eventLoop: any EventLoop, settlement: Settlement, laneIndex: Int, framing: StreamFraming, tls: NIOSSLContext?,
        serverName: String?, logger: Logger
    ) {
        self.upstream = upstream
        self.eventLoop = eventLoop
        self.settlement = settlement
        self.laneIndex = laneIndex
        self.framing = framing
        self.tls = tls
        self.serverName = serverName
        self.logger = logger
    }

    var canAccept: Bool {
        ready && outstandingBytes < Self.windowBytes && (channel?.isWritable ?? false) && upstream.allowsTraffic()
    }

    var roomBytes: Int { max(0, Self.windowBytes - outstandingBytes) }

    func start() -> EventLoopFuture<Void> {
        connect()
        return eventLoop.makeSucceededVoidFuture()
    }

    func stop() -> EventLoopFuture<Void> {
        stopped = true
        ready = false
        upstream.setAvailable(false, lane: laneIndex)
        guard let channel else { return eventLoop.makeSucceededVoidFuture() }
        // A last look at what the peer acknowledged, so that what arrived is not left undrained.
        return pollAcknowledged(channel).flatMap { channel.close() }.recover { _ in }
    }

    /// Settles what the peer has not acknowledged (those logs leave as dropped) and stops.
    func abandon() -> Int {
        let count = outstanding.reduce(0) { $0 + $1.records.count }
        for write in outstanding { settlement.settle(count: write.records.count, bytes: write.bytes, spans: write.spans) }
        upstream.unacknowledged.add(-count)
        outstanding.removeAll()
        outstandingBytes = 0
        _ = stop()
        return count
    }

    func repoint(to address: SocketAddress) {
        guard !stopped else { return }
        if let channel, channel.remoteAddress != address {
            channel.close(promise: nil)  // reconnects to the new address when it has closed
        } else if channel == nil {
            connect()
        }
    }

    // MARK: Sending

    func send(_ records: [ByteBuffer], bytes: Int, receivedAt: NIODeadline, spans: SpoolSpans) {
        guard !records.isEmpty else { return }
        guard ready, let channel, let counter, upstream.acquire() else {
            returnToBuffer?(records, bytes, receivedAt, spans)
            return
        }
        var wire = allocator.buffer(capacity: bytes + records.count * 8)
        for record in records {
            switch framing {
            case .lf:
                LineFormat.append(record, to: &wire)
            case .octet, .detect:
                wire.writeString(String(record.readableBytes))
                wire.writeInteger(UInt8(ascii: " "))
                wire.writeImmutableBuffer(record)
            }
        }
        upstream.recordFirstAttempts(1)
        channel.writeAndFlush(wire, promise: nil)
        // TLS encrypts during the flush: the counter has seen this write's last byte now.
        outstanding.append(Outstanding(records: records, bytes: bytes, receivedAt: receivedAt, spans: spans, end: counter.total))
        outstandingBytes += bytes
        upstream.unacknowledged.add(records.count)
        startPolling()
    }

    private func startPolling() {
        guard !polling, !outstanding.isEmpty else { return }
        polling = true
        eventLoop.assumeIsolated().scheduleTask(in: Self.ackPollInterval) {
            self.polling = false
            guard let channel = self.channel, !self.outstanding.isEmpty else { return }
            self.pollAcknowledged(channel).assumeIsolated().whenComplete { _ in self.startPolling() }
        }
    }

    /// Settles every write whose last byte the peer's TCP acknowledged.
    private func pollAcknowledged(_ channel: any Channel) -> EventLoopFuture<Void> {
        guard let options = channel as? any SocketOptionProvider else { return eventLoop.makeSucceededVoidFuture() }
        let future: EventLoopFuture<cferry_tcp_info_raw> = options.unsafeGetSocketOption(
            level: .init(rawValue: CInt(IPPROTO_TCP)), name: .init(rawValue: CInt(TCP_INFO)))
        return future.assumeIsolated().map { info in
            var info = info
            guard channel === self.channel else { return }
            self.settle(through: cferry_tcp_bytes_acked(&info))
        }.nonisolated().recover { _ in }
    }

    private func settle(through acknowledged: UInt64) {
        var settledAny = false
        while let first = outstanding.first, first.end <= acknowledged {
            outstanding.removeFirst()
            outstandingBytes -= first.bytes
            settlement.settle(count: first.records.count, bytes: first.bytes, spans: first.spans)
            upstream.unacknowledged.add(-first.records.count)
            upstream.forwarded.add(first.records.count)
            upstream.forwardedBytes.add(first.bytes)
            upstream.observeLatency(since: first.receivedAt)
            upstream.record(success: true)
            settledAny = true
        }
        if settledAny { onAvailable?() }
    }

    // MARK: Connecting

    private func connect() {
        guard !stopped, !connecting, channel == nil, let address = upstream.currentAddress else { return }
        connecting = true
        let counter = WireByteCounter()
        let tls = self.tls
        let serverName = self.serverName
        let verification = TLSHandshakeGuard.Verification()
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        ClientBootstrap(group: eventLoop)
            .connectTimeout(Self.connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .channelInitializer { channel in
                do {
                    try channel.pipeline.syncOperations.addHandler(counter)
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(
                            StreamUpstreamLane.clientHandler(context: tls, serverName: serverName, verification: verification))
                    }
                    try channel.pipeline.syncOperations.addHandler(StreamUpstreamChannelHandler(lane: bound.value, verification: verification))
                    return channel.eventLoop.makeSucceededVoidFuture()
                } catch {
                    return channel.eventLoop.makeFailedFuture(error)
                }
            }
            .connect(to: address)
            .assumeIsolated()
            .whenComplete { result in
                self.connecting = false
                switch result {
                case .success(let channel):
                    guard !self.stopped else {
                        channel.close(promise: nil)
                        return
                    }
                    self.channel = channel
                    self.counter = counter
                    if tls == nil { self.becameReady(channel) }  // TLS: once the handshake completes
                case .failure(let error):
                    self.noteFailure(error, tlsReason: nil)
                    self.scheduleReconnect()
                }
            }
    }

    /// The NIOSSL client handler, verifying the server's name (a host name; an
    /// IP address is checked against the certificate's IP entries) and noting
    /// why a certificate failed.
    private static func clientHandler(
        context: NIOSSLContext, serverName: String?, verification: TLSHandshakeGuard.Verification
    ) throws -> NIOSSLClientHandler {
        let factory: any VerifyingClientHandlerFactory.Type = VerifyingClientHandler.self
        return try factory.make(context: context, serverHostname: serverName) { result, certificate in
            if result == .failed, verification.failure == nil {
                verification.failure = TLSFailureReason.verificationFailure(of: certificate)
            }
            return result
        }
    }

    func becameReady(_ readyChannel: any Channel) {
        guard readyChannel === channel else { return }
        ready = true
        reconnect.reset()
        upstream.setAvailable(true, lane: laneIndex)
        eventLoop.assumeIsolated().execute { self.onAvailable?() }
    }

    func channelClosed(_ closed: any Channel) {
        guard closed === channel else { return }
        channel = nil
        counter = nil
        ready = false
        upstream.setAvailable(false, lane: laneIndex)
        // Whatever the peer did not acknowledge is written again, here or elsewhere.
        if !outstanding.isEmpty {
            let count = outstanding.reduce(0) { $0 + $1.records.count }
            upstream.resent.add(count)
            upstream.unacknowledged.add(-count)
            upstream.record(success: false)
            let pending = outstanding
            outstanding.removeAll()
            outstandingBytes = 0
            for write in pending.reversed() {  // each goes to the front: oldest ends up first
                returnToBuffer?(write.records, write.bytes, write.receivedAt, write.spans)
            }
            if let suppressed = warnings.shouldLog(key: 1) {
                logger.warning(
                    "upstream connection lost, unacknowledged logs will be sent again",
                    metadata: ["upstream": "\(upstream.url)", "logs": "\(count)", "warnings.suppressed": "\(suppressed)"])
            }
        }
        scheduleReconnect()
    }

    func noteFailure(_ error: any Error, tlsReason: TLSFailureReason?) {
        let reason: SendErrorReason = tlsReason == nil ? SendErrorReason(classifying: error) : .tls
        if let tlsReason { upstream.tlsFailures[tlsReason.rawValue].add(1) }
        let detail = tlsReason.map { "tls handshake failed (\($0)): \(error)" } ?? SendErrorReason.detail(of: error)
        upstream.recordError(reason, detail: detail)
        // A failed connection trips a closed breaker; while it is open, reconnecting goes on at the
        // backoff's pace without extending the open wait (the half-open probe is a real send).
        if upstream.breakerState == .closed { upstream.record(success: false) }
        if let suppressed = warnings.shouldLog(key: 10 + reason.rawValue) {
            var metadata: Logger.Metadata = [
                "upstream": "\(upstream.url)", "error.reason": "\(reason)", "error.detail": "\(error)", "warnings.suppressed": "\(suppressed)",
            ]
            if let tlsReason { metadata["tls.reason"] = "\(tlsReason)" }
            logger.warning("upstream connection failed", metadata: metadata)
        }
    }

    private func scheduleReconnect() {
        guard !stopped else { return }
        eventLoop.assumeIsolated().scheduleTask(in: reconnect.next()) { self.connect() }
    }
}

/// NIOSSL's client handler with a verification callback that observes the
/// default verification (to tell an expired certificate from an unknown CA)
/// without replacing it. NIOSSL deprecated that initialiser in favour of
/// custom verification, which would mean re-implementing chain checks; the
/// protocol keeps the deprecation to this one place.
private protocol VerifyingClientHandlerFactory {
    static func make(context: NIOSSLContext, serverHostname: String?, callback: @escaping NIOSSLVerificationCallback) throws -> NIOSSLClientHandler
}

private enum VerifyingClientHandler: VerifyingClientHandlerFactory {
    @available(*, deprecated, message: "observes NIOSSL's default verification; see VerifyingClientHandlerFactory")
    static func make(context: NIOSSLContext, serverHostname: String?, callback: @escaping NIOSSLVerificationCallback) throws -> NIOSSLClientHandler {
        try NIOSSLClientHandler(context: context, serverHostname: serverHostname, verificationCallback: callback)
    }
}

/// Counts the bytes written to the socket, next to it: after TLS, so the
/// count is in the same bytes the kernel's `tcpi_bytes_acked` counts.
final class WireByteCounter: ChannelOutboundHandler, Sendable {
    // Sendable so the bootstrap's initializer can take it; written on its channel's loop only (relaxed, uncontended).
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private let written = Atomic<UInt64>(0)

    var total: UInt64 { written.load(ordering: .relaxed) }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        written.wrappingAdd(UInt64(unwrapOutboundIn(data).readableBytes), ordering: .relaxed)
        context.write(data, promise: promise)
    }
}

/// Watches a `tcp://`/`tls://` upstream connection: its handshake, its end,
/// and what the peer sends (nothing is expected; it is read and discarded so
/// that the peer's writes never fill the socket).
private final class StreamUpstreamChannelHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private weak var lane: StreamUpstreamLane?
    private let verification: TLSHandshakeGuard.Verification
    private var failed = false

    init(lane: StreamUpstreamLane, verification: TLSHandshakeGuard.Verification) {
        self.lane = lane
        self.verification = verification
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let tls = event as? TLSUserEvent, case .handshakeCompleted = tls {
            lane?.becameReady(context.channel)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !failed {
            failed = true
            let handshake = error is NIOSSLError || error is NIOSSLExtraError || error is BoringSSLError
            lane?.noteFailure(error, tlsReason: handshake ? TLSFailureReason.classify(error, verification: verification.failure) : nil)
        }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        lane?.channelClosed(context.channel)
        context.fireChannelInactive()
    }
}
