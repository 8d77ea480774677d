import HummingbirdCore
import Logging
import NIOCore
import NIOHTTPTypes

/// Hummingbird's HTTP/1.1 channel with the time limits a control plane on a
/// shared host needs, so no client can hold a connection without using it:
///
/// - **header timeout**: a request head must be complete within
///   `headerTimeout` of the connection's start, or of the first byte of the
///   next request on a kept-alive connection (slowloris);
/// - **idle timeout**: a kept-alive connection with no request is closed after
///   `idleTimeout`;
/// - a response sent before the request's body was read (413, errors) closes
///   the connection, so an oversize body is never read and thrown away.
///
/// The number of connections is capped by the application's
/// `availableConnectionsDelegate` (see ``HTTPConnectionBudget``).
struct GuardedHTTP1Channel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value

    let responder: HTTPChannelHandler.Responder
    let headerTimeout: TimeAmount
    let idleTimeout: TimeAmount

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            let timers = ConnectionTimers(channel: channel, headerTimeout: headerTimeout, idleTimeout: idleTimeout)
            // First in the pipeline: sees the raw bytes of each request's head arrive.
            try channel.pipeline.syncOperations.addHandler(RequestBytesObserver(timers: timers))
        }.flatMap {
            inner.setup(channel: channel, logger: logger)
        }
    }

    func handle(value: Value, logger: Logger) async {
        await inner.handle(value: value, logger: logger)
    }

    /// The stock channel, with the request-part observer after its HTTP codec.
    private var inner: HTTP1Channel {
        HTTP1Channel(
            responder: responder,
            configuration: .init(additionalChannelHandlers: [RequestPartObserver()]))
    }
}

/// Where a connection is between requests, and the one timer that bounds it.
/// Confined to the connection's event loop.
final class ConnectionTimers {
    enum Phase {
        /// Connected, or between requests with no byte of the next one yet.
        case waiting
        /// Bytes of a request head have arrived; the head is not complete.
        case readingHead
        /// The head is complete; the request is being handled.
        case handling
    }

    private let channel: any Channel
    private let headerTimeout: TimeAmount
    private let idleTimeout: TimeAmount
    private(set) var phase = Phase.waiting
    private var timer: Scheduled<Void>?
    private var isFirstRequest = true

    init(channel: any Channel, headerTimeout: TimeAmount, idleTimeout: TimeAmount) {
        self.channel = channel
        self.headerTimeout = headerTimeout
        self.idleTimeout = idleTimeout
        arm(headerTimeout)  // a new connection has the header timeout to send its first head
    }

    func bytesArrived() {
        guard phase == .waiting else { return }
        phase = .readingHead
        if !isFirstRequest { arm(headerTimeout) }
    }

    func headReceived() {
        phase = .handling
        isFirstRequest = false
        timer?.cancel()
        timer = nil
    }

    func responseEnded() {
        guard phase == .handling else { return }
        phase = .waiting
        arm(idleTimeout)
    }

    func cancel() {
        timer?.cancel()
        timer = nil
    }

    private func arm(_ delay: TimeAmount) {
        timer?.cancel()
        let channel = self.channel
        timer = channel.eventLoop.assumeIsolated().scheduleTask(in: delay) { [weak self] in
            guard let self, self.phase != .handling else { return }
            channel.close(promise: nil)
        }
    }
}

/// Raw bytes in: the first byte of a request starts its header timeout.
final class RequestBytesObserver: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    let timers: ConnectionTimers

    init(timers: ConnectionTimers) {
        self.timers = timers
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        timers.bytesArrived()
        context.fireChannelRead(data)
    }

    func channelInactive(context: ChannelHandlerContext) {
        timers.cancel()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timers.cancel()
    }
}

/// Request parts in, response parts out: a complete head stops the header
/// timeout; a finished response starts the idle timeout, or closes the
/// connection when the request's body was not read to its end.
final class RequestPartObserver: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private var timers: ConnectionTimers?
    private var requestEnded = true

    func handlerAdded(context: ChannelHandlerContext) {
        timers = try? context.pipeline.syncOperations.handler(type: RequestBytesObserver.self).timers
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            requestEnded = false
            timers?.headReceived()
        case .body:
            break
        case .end:
            requestEnded = true
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .end = unwrapOutboundIn(data) else {
            context.write(data, promise: promise)
            return
        }
        if requestEnded {
            context.write(data, promise: promise)
            timers?.responseEnded()
        } else {
            // Answered before its body arrived (413 for an oversize body): the
            // rest of the body is not read, so the connection cannot be reused.
            timers?.cancel()
            context.writeAndFlush(data, promise: promise)
            context.close(promise: nil)
        }
    }
}
