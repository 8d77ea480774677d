import Logging
import NIOCore
import NIOPosix

/// One event loop's connected UDP socket to a `udp://` upstream.
///
/// A connected socket is used on purpose: only a connected socket receives the
/// ICMP port-unreachable errors that tell Ferry an upstream is gone. NIO closes
/// such a channel when a burst of sends is refused; the lane then counts the
/// failed batch, reports itself unavailable, and reconnects with backoff.
final class UDPUpstreamLane: UpstreamLane {
    let upstream: Upstream
    /// Nil until the upstream's name resolves for the first time.
    private var address: SocketAddress?
    private let eventLoop: any EventLoop
    private let capacity: BufferCapacity
    private let laneIndex: Int
    private let logger: Logger
    private var warnings: WarningLimiter
    private var channel: (any Channel)?
    private var stopped = false
    private var reconnect = ReconnectBackoff()
    private var lastErrorAt = NIODeadline.uptimeNanoseconds(0)
    private var random = FastRandom()
    /// Gives records the lane could not send back to the pipeline (front of its shard).
    var returnToBuffer: (([ByteBuffer], Int, NIODeadline) -> Void)?
    /// Called when the lane becomes available again, so waiting batches move.
    var onAvailable: (() -> Void)?
    /// The pipeline counters of this lane's loop, for drops the lane decides.
    var counters: PipelineCounters?

    init(upstream: Upstream, address: SocketAddress?, eventLoop: any EventLoop, capacity: BufferCapacity, laneIndex: Int, logger: Logger) {
        self.upstream = upstream
        self.address = address
        self.eventLoop = eventLoop
        self.capacity = capacity
        self.laneIndex = laneIndex
        self.logger = logger
        self.warnings = WarningLimiter(interval: .seconds(10))
    }

    var canAccept: Bool {
        channel != nil && upstream.allowsTraffic()
    }

    func start() -> EventLoopFuture<Void> {
        // An upstream whose name did not resolve yet starts without a socket;
        // the resolver repoints the lane once it does.
        guard address != nil else { return eventLoop.makeSucceededVoidFuture() }
        return connect().map { _ in }
    }

    func stop() -> EventLoopFuture<Void> {
        stopped = true
        upstream.setAvailable(false, lane: laneIndex)
        guard let channel else { return eventLoop.makeSucceededVoidFuture() }
        self.channel = nil
        return channel.close().recover { _ in }
    }

    func send(_ records: [ByteBuffer], bytes: Int, receivedAt: NIODeadline) {
        let count = records.count
        guard let channel, count > 0, upstream.acquire() else {
            returnToBuffer?(records, bytes, receivedAt)
            return
        }
        let probing = upstream.breakerState == .halfOpen
        let sentAt = NIODeadline.now()
        let promise = eventLoop.makePromise(of: Void.self)
        for index in records.indices {
            channel.write(records[index], promise: index == records.count - 1 ? promise : nil)
        }
        channel.flush()
        let upstream = self.upstream
        let capacity = self.capacity
        promise.futureResult.assumeIsolated().whenComplete { result in
            capacity.release(count: count, bytes: bytes)
            switch result {
            case .success:
                upstream.forwarded.add(count)
                upstream.forwardedBytes.add(bytes)
                upstream.observeLatency(since: receivedAt)
                self.recordDelivery(sentAt: sentAt, probing: probing)
            case .failure(let error):
                self.counters?.countDropped(.sendFailed, logs: count)
                self.noteError(error, droppedLogs: count, traceID: TraceID.random(using: &self.random))
            }
        }
    }

    /// UDP has no acknowledgement: a refused send is only heard of afterwards,
    /// as an ICMP error. A write counts as a success when no error arrived
    /// shortly after it; for a half-open probe Ferry waits for that moment.
    private func recordDelivery(sentAt: NIODeadline, probing: Bool) {
        let grace = TimeAmount.milliseconds(50)
        guard probing else {
            if lastErrorAt + grace < sentAt { upstream.record(success: true) }
            return
        }
        eventLoop.assumeIsolated().scheduleTask(in: grace) {
            self.upstream.record(success: self.lastErrorAt < sentAt)
        }
    }

    // MARK: - Connection management

    /// Connects to `newAddress` and moves traffic there once connected; the old
    /// socket is closed after what was written to it has gone out.
    func repoint(to newAddress: SocketAddress) {
        guard newAddress != address, !stopped else { return }
        address = newAddress
        let old = channel
        connect().assumeIsolated().whenComplete { result in
            if case .failure(let error) = result {
                self.noteError(error, droppedLogs: 0)
                self.scheduleReconnect()
            }
            old?.close(promise: nil)
        }
    }

    private func connect() -> EventLoopFuture<any Channel> {
        let makeHandler = NIOLoopBound<() -> any ChannelHandler>({ [unowned self] in UpstreamChannelHandler(lane: self) }, eventLoop: eventLoop)
        return UpstreamSocket.connect(to: address!, on: eventLoop, makeHandler: makeHandler)
            .assumeIsolated()
            .map { channel in
                self.channel = channel
                self.reconnect.reset()
                self.upstream.setAvailable(true, lane: self.laneIndex)
                // Not from inside connect's own call stack: the new channel is
                // still finishing its registration and must not be written to yet.
                self.eventLoop.assumeIsolated().execute { self.onAvailable?() }
                return channel
            }
            .nonisolated()
    }

    /// The socket was closed under us (NIO closes a connected datagram channel
    /// when `sendmmsg` is refused): reconnect after a growing delay.
    func channelClosed(_ closed: any Channel) {
        guard channel === closed else { return }
        // Not another breaker failure: the failed write that made NIO close
        // the socket has already been recorded (with its reason) by `send`.
        channel = nil
        upstream.setAvailable(false, lane: laneIndex)
        scheduleReconnect()
    }

    private func scheduleReconnect() {
        guard !stopped else { return }
        eventLoop.assumeIsolated().scheduleTask(in: reconnect.next()) {
            guard !self.stopped, self.channel == nil else { return }
            self.connect().assumeIsolated().whenFailure { error in
                self.noteError(error, droppedLogs: 0)
                self.scheduleReconnect()
            }
        }
    }

    /// An error reported by the socket, such as ICMP port unreachable for an earlier send.
    /// `traceID` names the batch that was lost, when one was.
    /// `source` is the socket that reported it (an old address's socket does not count against the new one).
    func noteError(_ error: any Error, droppedLogs: Int, traceID: TraceID? = nil, source: (any Channel)? = nil) {
        let reason = SendErrorReason(classifying: error)
        upstream.recordError(reason, detail: String(describing: error))
        let current = source == nil || source === channel
        if current { lastErrorAt = .now() }
        upstream.record(success: false, fromCurrentAddress: current)
        if let suppressed = warnings.shouldLog(key: reason.rawValue) {
            var metadata: Logger.Metadata = [
                "upstream": "\(upstream.url)",
                "error.reason": "\(reason)",
                "error.detail": "\(error)",
                "logs.dropped": "\(droppedLogs)",
                "warnings.suppressed": "\(suppressed)",
            ]
            if let traceID { metadata["trace_id"] = "\(traceID)" }
            logger.warning("upstream send failed", metadata: metadata)
        }
    }
}

/// Watches a connected upstream socket for errors and closure.
private final class UpstreamChannelHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    private weak var lane: UDPUpstreamLane?

    init(lane: UDPUpstreamLane) {
        self.lane = lane
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Upstreams do not talk back on udp://; anything received is ignored.
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        lane?.noteError(error, droppedLogs: 0, source: context.channel)
    }

    func channelInactive(context: ChannelHandlerContext) {
        lane?.channelClosed(context.channel)
        context.fireChannelInactive()
    }
}

extension SendErrorReason {
    init(classifying error: any Error) {
        guard let ioError = error as? IOError else {
            self = .other
            return
        }
        switch ioError.errnoCode {
        case ECONNREFUSED: self = .refused
        case EHOSTUNREACH, ENETUNREACH: self = .unreachable
        case ENOBUFS: self = .noBufferSpace
        case EAGAIN: self = .wouldBlock
        default: self = .other
        }
    }
}
