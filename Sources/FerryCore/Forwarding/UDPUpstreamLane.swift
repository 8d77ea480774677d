import Logging
import NIOCore

/// One event loop's connected UDP socket to a `udp://` upstream, for the logs
/// that go through the loop (the receive thread sends the rest itself).
///
/// It sends with the same ``UDPSender`` as the direct route: one
/// `sendmmsg` per batch on a connected socket (only a connected socket hears
/// the ICMP errors that tell Ferry an upstream is gone). A refused send is a
/// breaker failure and its logs go back to the buffer, to be retried or to
/// fail over; a half-open probe counts as a success only when no error came
/// back for it within 50 ms.
package final class UDPUpstreamLane: UpstreamLane {
    package let upstream: Upstream
    private let eventLoop: any EventLoop
    private let settlement: Settlement
    private let laneIndex: Int
    private let sender: UDPSender
    private var stopped = false
    private var reconnect = ReconnectBackoff()
    private var reconnectScheduled = false
    /// Gives records the lane could not send back to the pipeline (front of its shard).
    var returnToBuffer: (([ByteBuffer], Int, NIODeadline, SpoolSpans) -> Void)?
    /// Called when the lane becomes available again, so waiting batches move.
    var onAvailable: (() -> Void)?

    package init(upstream: Upstream, eventLoop: any EventLoop, settlement: Settlement, laneIndex: Int, logger: Logger) {
        self.upstream = upstream
        self.eventLoop = eventLoop
        self.settlement = settlement
        self.laneIndex = laneIndex
        self.sender = UDPSender(upstream: upstream, batch: 64, logger: logger)
    }

    package var sendsFromReceiveThread: Bool { true }

    package var canAccept: Bool {
        upstream.isLaneAvailable(laneIndex) && upstream.allowsTraffic()
    }

    package func start() -> EventLoopFuture<Void> {
        // An upstream whose name did not resolve yet starts without a socket;
        // the resolver repoints the lane once it does.
        connect()
        return eventLoop.makeSucceededVoidFuture()
    }

    package func stop() -> EventLoopFuture<Void> {
        stopped = true
        upstream.setAvailable(false, lane: laneIndex)
        sender.close()
        return eventLoop.makeSucceededVoidFuture()
    }

    package func send(_ records: [ByteBuffer], bytes: Int, receivedAt: NIODeadline, spans: SpoolSpans) {
        let count = records.count
        guard count > 0, !stopped, upstream.acquire() else {
            returnToBuffer?(records, bytes, receivedAt, spans)
            return
        }
        let probing = upstream.breakerState == .halfOpen
        let sent = sender.send(records, bytes: bytes, receivedAt: receivedAt, recordSuccess: !probing)
        if sent.logs > 0 {
            settlement.settle(count: sent.logs, bytes: sent.bytes, spans: spans.prefix(sent.logs))
        }
        if sent.logs < count {
            returnToBuffer?(Array(records[sent.logs...]), bytes - sent.bytes, receivedAt, spans.dropFirst(sent.logs))
        } else if probing {
            // UDP has no acknowledgement: a probe succeeded if no error came back for it.
            eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(50)) { self.sender.settleProbe() }
        }
    }

    /// The upstream moved to `address`: the sender reconnects on its next send
    /// (it follows the upstream's current address); make sure the lane is available.
    package func repoint(to address: SocketAddress) {
        guard !stopped else { return }
        connect()
    }

    /// Connects the socket if the upstream has an address; the lane is
    /// available while it is connected, and retries with a growing delay.
    private func connect() {
        guard !stopped else { return }
        guard upstream.currentAddress != nil else { return }
        if sender.connectIfNeeded() {
            reconnect.reset()
            let wasAvailable = upstream.isLaneAvailable(laneIndex)
            upstream.setAvailable(true, lane: laneIndex)
            // Not from inside the caller's stack (start, repoint): waiting logs move on the next tick.
            if !wasAvailable { eventLoop.assumeIsolated().execute { self.onAvailable?() } }
        } else {
            upstream.setAvailable(false, lane: laneIndex)
            guard !reconnectScheduled else { return }
            reconnectScheduled = true
            eventLoop.assumeIsolated().scheduleTask(in: reconnect.next()) {
                self.reconnectScheduled = false
                self.connect()
            }
        }
    }
}
