import NIOCore
import NIOSSL
import NIOTLS
import Synchronization

/// Sits behind a `tls://` connection's `NIOSSLServerHandler`: closes the
/// connection if its handshake does not finish within `tls.handshake-timeout`
/// (a client that never finishes must not hold a slot forever, rsyslog#5539),
/// and counts and logs a failed handshake with its reason and the peer.
final class TLSHandshakeGuard: ChannelInboundHandler {
    typealias InboundIn = NIOAny

    /// What the certificate check found, filled in by the verification callback.
    final class Verification: Sendable {
        // Written and read on the connection's loop (the callback runs there): the lock is never contended.
        private let found = Mutex<TLSFailureReason?>(nil)

        var failure: TLSFailureReason? {
            get { found.withLock { $0 } }
            set { found.withLock { $0 = newValue } }
        }
    }

    private let timeout: TimeAmount
    private let stats: StreamListenerStats
    private let events: StreamListenerEvents
    private unowned let connection: StreamConnectionHandler
    let verification: Verification
    private var completed = false
    private var deadline: Scheduled<Void>?

    init(
        timeout: TimeAmount, stats: StreamListenerStats, events: StreamListenerEvents, connection: StreamConnectionHandler,
        verification: Verification
    ) {
        self.timeout = timeout
        self.stats = stats
        self.events = events
        self.connection = connection
        self.verification = verification
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        deadline = context.eventLoop.scheduleTask(in: timeout) {
            let (handler, context) = loopBound.value
            guard !handler.completed else { return }
            handler.connection.closure = .handshakeTimeout
            handler.events.handshakeTimedOut(source: handler.connection.source, after: handler.timeout)
            context.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let tls = event as? TLSUserEvent, case .handshakeCompleted = tls {
            completed = true
            deadline?.cancel()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard !completed else {
            context.fireErrorCaught(error)
            return
        }
        if connection.closure == .peer || connection.closure == .error {
            let reason = TLSFailureReason.classify(error, verification: verification.failure)
            stats.tlsFailures[reason.rawValue].add(1)
            events.tlsFailed(source: connection.source, reason: reason, error: error)
            connection.closure = .handshakeFailed
        }
        completed = true  // one failure per connection
        deadline?.cancel()
        context.close(promise: nil)
    }
}
