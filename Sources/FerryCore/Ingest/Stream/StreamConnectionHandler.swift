import Logging
import NIOCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// One `tcp://` or `tls://` connection: frames its bytes into messages
/// (``SyslogStreamFramer``) and offers them to its loop's pipeline once per
/// read cycle (the burst). When the pipeline has no room (buffer, or spool,
/// full) it stops reading from the socket until there is: the sender's TCP
/// window holds the rest, nothing is dropped, and the time paused is counted.
///
/// Confined to its channel's event loop, which is also its pipeline's.
final class StreamConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    /// How often a paused connection checks for room again: a poll, as room returns from settlements on any thread (docs/design.md).
    static let pauseRetry = TimeAmount.milliseconds(5)

    private let pipeline: LoopPipeline
    private let stats: StreamListenerStats
    private let events: StreamListenerEvents
    private let transport: Transport
    let source: String
    /// The listener's rate limit (nil: none) and this connection's source as its key.
    private let gate: SourceGate?
    private let sourceKey: SourceKey?
    /// The listener's position in `listen` (routes may match by listener).
    private let listener: Int
    /// The first `checked` of `pending` passed the rate limit already (they waited for room).
    private var checked = 0
    private var framer: SyslogStreamFramer
    /// Messages read and not yet taken by the pipeline (only while paused).
    private var pending: [ByteBuffer] = []
    private var pausedAt: NIODeadline?
    private var retry: Scheduled<Void>?
    /// Why the connection ends; set by whoever closes it (idle, framing, the TLS guard).
    var closure: StreamListenerStats.Closure = .peer
    private var released = false
    /// The peer finished sending (half-close): close once what is pending is taken.
    private var inputClosed = false
    /// How long messages read from a connection that has ended may wait for room before they are dropped.
    static let lingerLimit = TimeAmount.seconds(30)

    init(
        pipeline: LoopPipeline, stats: StreamListenerStats, events: StreamListenerEvents, transport: Transport, framing: StreamFraming,
        source: String, gate: SourceGate? = nil, sourceKey: SourceKey? = nil, listener: Int = 0
    ) {
        self.listener = listener
        self.gate = gate?.isRateLimited == true ? gate : nil
        self.sourceKey = sourceKey
        self.pipeline = pipeline
        self.stats = stats
        self.events = events
        self.transport = transport
        self.source = source
        self.framer = SyslogStreamFramer(framing: framing, maxMessageBytes: pipeline.maxRecordBytes)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        framer.append(unwrapInboundIn(data))
        while let event = framer.next() {
            switch event {
            case .message(let message):
                pending.append(message)
            case .oversize(let length):
                pipeline.counters.countReceived(transport, logs: 1, bytes: length)
                pipeline.drops.drop(.oversize, logs: 1, detail: length)
            case .fatal(let error):
                pipeline.counters.countReceived(transport, logs: 1, bytes: 0)
                pipeline.drops.drop(.framingError, logs: 1, detail: 0, error: error.description)
                events.framingError(source: source, error: error)
                closure = .framingError
                limitRate()
                offer(context: context)
                context.close(promise: nil)
                return
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        limitRate()
        offer(context: context)
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            // Quiet because Ferry stopped reading is not idle.
            guard pausedAt == nil else { return }
            closure = .idle
            context.close(promise: nil)
            return
        }
        if let channelEvent = event as? ChannelEvent, channelEvent == .inputClosed {
            // What it sent is read; it is closed once the pipeline has taken all of it.
            inputClosed = true
            if pending.isEmpty { context.close(promise: nil) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if closure == .peer, !Self.isReset(error) { closure = .error }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        retry?.cancel()
        let (last, truncated) = framer.finish()
        if let last { pending.append(last) }
        if truncated {
            pipeline.counters.countReceived(transport, logs: 1, bytes: 0)
            pipeline.drops.drop(.truncated, logs: 1, detail: 0)
        }
        endPause()
        release()
        // Read from the socket, so the sender counts them delivered: they wait
        // for room like any other (up to lingerLimit), then are dropped with a reason.
        take()
        if !pending.isEmpty { linger(until: .now() + Self.lingerLimit) }
        context.fireChannelInactive()
    }

    /// Keeps offering what a closed connection left until it is taken or `deadline` passes.
    private func linger(until deadline: NIODeadline) {
        let loopBound = NIOLoopBound(self, eventLoop: pipeline.eventLoop)
        pipeline.eventLoop.scheduleTask(in: Self.pauseRetry) {
            let handler = loopBound.value
            handler.take()
            guard !handler.pending.isEmpty else { return }
            guard NIODeadline.now() < deadline else {
                let bytes = handler.pending.reduce(0) { $0 + $1.readableBytes }
                handler.pipeline.counters.countReceived(handler.transport, logs: handler.pending.count, bytes: bytes)
                handler.pipeline.drops.drop(.queueFull, logs: handler.pending.count, detail: handler.pipeline.capacity.usedLogs)
                handler.pending.removeAll()
                return
            }
            handler.linger(until: deadline)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        release()
    }

    private func release() {
        guard !released else { return }
        released = true
        stats.release(source: source, closure: closure)
    }

    /// Offers what is pending; pauses reading if the pipeline could not take all of it.
    private func offer(context: ChannelHandlerContext) {
        guard !pending.isEmpty else { return }
        take()
        if pending.isEmpty {
            if inputClosed {
                context.close(promise: nil)
                return
            }
            if pausedAt != nil {
                endPause()
                context.channel.setOption(ChannelOptions.autoRead, value: true).whenComplete { _ in }
                context.read()
            }
            return
        }
        if pausedAt == nil {
            pausedAt = .now()
            stats.pausedNow.add(1)
            context.channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in }
        }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        retry = context.eventLoop.scheduleTask(in: Self.pauseRetry) {
            let (handler, context) = loopBound.value
            handler.retry = nil
            guard context.channel.isActive else { return }
            handler.offer(context: context)
        }
    }

    private func take() {
        let taken = pipeline.receiveStream(pending[...], transport: transport, listener: listener, source: sourceKey)
        guard taken > 0 else { return }
        stats.received.add(taken)
        stats.receivedBytes.add(pending.prefix(taken).reduce(0) { $0 + $1.readableBytes })
        if taken == pending.count { pending.removeAll(keepingCapacity: true) } else { pending.removeFirst(taken) }
        checked = max(0, checked - taken)
    }

    /// Holds the messages this read cycle framed to the source's rate limit:
    /// those over it are refused (`rate_limited`, not received), the rest go on.
    private func limitRate() {
        guard let gate, let sourceKey, pending.count > checked else { return }
        let fresh = pending.count - checked
        let admitted = gate.admit(fresh, from: sourceKey)
        if admitted < fresh {
            pending.removeLast(fresh - admitted)
            pipeline.drops.refuse(.rateLimited, logs: fresh - admitted, source: sourceKey, listener: stats.name)
        }
        checked = pending.count
    }

    private func endPause() {
        guard let pausedAt else { return }
        self.pausedAt = nil
        stats.pausedNow.add(-1)
        stats.pausedNanoseconds.add(Int((NIODeadline.now() - pausedAt).nanoseconds))
    }

    private static func isReset(_ error: any Error) -> Bool {
        if let io = error as? IOError { return io.errnoCode == ECONNRESET || io.errnoCode == EPIPE }
        return false
    }
}

/// A listener's rate-limited log lines (one per kind and ten seconds, with
/// the number suppressed): framing errors, refusals, TLS failures. Shared by
/// its connections on every loop.
final class StreamListenerEvents: Sendable {
    private let name: String
    private let logger: Logger
    private let limiter = Mutex(WarningLimiter(interval: .seconds(10)))

    init(name: String, logger: Logger) {
        self.name = name
        self.logger = logger
    }

    private func log(_ kind: Int, _ message: Logger.Message, _ metadata: Logger.Metadata) {
        guard let suppressed = limiter.withLock({ $0.shouldLog(key: kind) }) else { return }
        var metadata = metadata
        metadata["listener"] = "\(name)"
        metadata["warnings.suppressed"] = "\(suppressed)"
        logger.warning(message, metadata: metadata)
    }

    func framingError(source: String, error: StreamFramingError) {
        log(0, "connection closed: stream cannot be framed", ["peer": "\(source)", "reason": "\(error.reason)", "error": "\(error)"])
    }

    func refused(source: String, reason: StreamListenerStats.Refusal) {
        log(200 + reason.rawValue, "connection refused", ["peer": "\(source)", "reason": "\(reason)"])
    }

    func tlsFailed(source: String, reason: TLSFailureReason, error: any Error) {
        log(2 + reason.rawValue, "tls handshake failed", ["peer": "\(source)", "reason": "\(reason)", "error": "\(error)"])
    }

    func handshakeTimedOut(source: String, after timeout: TimeAmount) {
        log(100, "tls handshake timed out", ["peer": "\(source)", "timeout_ms": "\(timeout.nanoseconds / 1_000_000)"])
    }
}
