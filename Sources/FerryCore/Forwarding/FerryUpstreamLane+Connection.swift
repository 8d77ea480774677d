import Logging
import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#endif

/// The socket of a `ferry://` lane: connecting (and reconnecting with backoff),
/// noticing when it closes, and what its errors mean for the upstream.
extension FerryUpstreamLane {
    func connect() -> EventLoopFuture<any Channel> {
        let makeHandler = NIOLoopBound<() -> any ChannelHandler>({ [unowned self] in FerryUpstreamChannelHandler(lane: self) }, eventLoop: eventLoop)
        return FrameSocket.open(
            to: address!, on: eventLoop, receiveBufferBytes: 1 << 20, replies: (perRead: 64, maximumBytes: FrameCodec.maximumBatchedAckBytes),
            makeHandler: makeHandler
        )
        .assumeIsolated()
        .map { socket in
            let channel = socket.channel
            self.sockets[ObjectIdentifier(channel)] = socket
            self.channel = channel
            // A new socket is a new path. Frames of a socket still open (a
            // repoint, a new source port) stay on it; those of a closed one move.
            // A new address is a new destination: what waits at the old one is no stall of this one.
            self.window.switchPath(
                movingOutstanding: !self.keepPathOnConnect, newAddress: self.pathAddress != self.address, now: .now())
            self.keepPathOnConnect = false
            self.pathAddress = self.address
            self.frameLimit = self.frameLimit(of: socket)
            self.reconnect.reset()
            self.upstream.setAvailable(true, lane: self.laneIndex)
            // Not from inside connect's own call stack: the new channel is
            // still finishing its registration and must not be written to yet.
            self.eventLoop.assumeIsolated().execute {
                self.sendReplayed()  // an earlier run's frames first
                self.onAvailable?()
            }
            return channel
        }
        .nonisolated()
    }

    /// `forward.frame-max-bytes`, or the path's largest datagram where that is smaller.
    func frameLimit(of socket: FrameSocket) -> Int {
        min(settings.maximumFrameBytes, socket.pathDatagramBytes ?? settings.maximumFrameBytes)
    }

    /// Sends from a new socket (a new source port) to the same address. After a
    /// silence, frames in flight stay on the old socket (its receiver may hold
    /// them). After a refusal (`receiverGone`), no socket listens behind the old
    /// port's path: its frames move to the new one. The old socket stays open
    /// until none of its frames is in flight, for acks sent before the refusal.
    func rotatePath(reason: String, receiverGone: Bool = false) {
        guard let old = channel, address != nil, !stopped else { return }
        channel = nil
        keepPathOnConnect = !receiverGone
        retiring.append(old)
        if receiverGone { goneReceivers.insert(ObjectIdentifier(old)) }
        upstream.pathChanges.add(1)
        upstream.newPath()
        logger.warning(
            "upstream silent: sending from a new source port",
            metadata: [
                "upstream": "\(upstream.url)", "reason": "\(reason)", "frames.in_flight": "\(window.count)",
                "effect":
                    "a stale route or connection-tracking entry (a Service's dead pod) gives way to a new one; frames in flight \(receiverGone ? "move to the new port" : "stay on the old port")",
            ])
        connect().assumeIsolated().whenFailure { error in
            self.keepPathOnConnect = false
            self.noteError(error)
            self.scheduleReconnect()
        }
    }

    func channelClosed(_ closed: any Channel) {
        sockets[ObjectIdentifier(closed)] = nil
        goneReceivers.remove(ObjectIdentifier(closed))
        retiring.removeAll { $0 === closed }
        guard channel === closed else { return }
        channel = nil
        upstream.setAvailable(false, lane: laneIndex)
        scheduleReconnect()
    }

    func scheduleReconnect() {
        guard !stopped else { return }
        eventLoop.assumeIsolated().scheduleTask(in: reconnect.next()) {
            guard !self.stopped, self.channel == nil else { return }
            self.connect().assumeIsolated().whenFailure { error in
                self.noteError(error)
                self.scheduleReconnect()
            }
        }
    }

    /// A socket error, such as ICMP port unreachable: the receiving Ferry is not there.
    /// `source` is the socket that reported it (an old address's socket does not count against the new one).
    func noteError(_ error: any Error, source: (any Channel)? = nil) {
        let reason = SendErrorReason(classifying: error)
        if let io = error as? IOError, io.errnoCode == EMSGSIZE, let channel, let socket = sockets[ObjectIdentifier(channel)] {
            // Path MTU discovery found a smaller MTU: later frames fit it (those
            // sent too large are given up after their TTL and framed again).
            socket.refreshPathMTU()
            frameLimit = frameLimit(of: socket)
        }
        // NIO may report a refused write after it has closed the channel (`channel` is nil by then): the address decides.
        // A socket left for a new source port (a retiring path) is not held against the upstream either: its
        // receiver (a dead pod behind a Service) is the one being left, and its refusals must not fail the probes of the new port.
        let leftPath = source.map { left in left !== channel && retiring.contains { $0 === left } } ?? false
        let fromCurrentAddress = !leftPath && (source == nil || source === channel || (address != nil && source?.remoteAddress == address))
        upstream.recordError(reason, detail: SendErrorReason.detail(of: error))
        // A refusal moves a name to its next address at once; the failure then belongs to the old one.
        let moved = reason == .refused && fromCurrentAddress && upstream.addressRefused()
        upstream.record(success: false, fromCurrentAddress: fromCurrentAddress && !moved)
        // A refusal on the current path with no other address to try: the receiver this port reaches is gone
        // (behind a Service, a dead pod's stale entry). A new source port may reach a live one; the frames move with it.
        if reason == .refused, !moved, let source, source === channel, retiring.count < 2 * Self.maximumPaths {
            rotatePath(reason: "send refused (port unreachable)", receiverGone: true)
        }
        if let suppressed = warnings.shouldLog(key: 100 + reason.rawValue) {
            logger.warning(
                "upstream send failed",
                metadata: [
                    "upstream": "\(upstream.url)", "error.reason": "\(reason)", "error.detail": "\(SendErrorReason.detail(of: error))",
                    "warnings.suppressed": "\(suppressed)",
                ])
        }
    }
}

/// Receives acks on a `ferry://` upstream socket and watches it for errors.
private final class FerryUpstreamChannelHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    private weak var lane: FerryUpstreamLane?

    init(lane: FerryUpstreamLane) {
        self.lane = lane
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        lane?.received(unwrapInboundIn(data).data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        lane?.readComplete()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        lane?.noteError(error, source: context.channel)
    }

    func channelInactive(context: ChannelHandlerContext) {
        lane?.channelClosed(context.channel)
        context.fireChannelInactive()
    }
}
