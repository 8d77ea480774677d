import NIOCore

/// One event loop's connection to one upstream.
///
/// A lane is confined to its loop: the pipeline of that loop asks it whether it
/// can take traffic now and hands it whole batches. The lane owns the batch from
/// then on: it must eventually release the batch's buffer reservation and count
/// every record as forwarded or dropped.
package protocol UpstreamLane: AnyObject {
    var upstream: Upstream { get }
    /// Whether a batch handed over now has a chance of being delivered.
    var canAccept: Bool { get }
    /// About how many payload bytes the lane can take now without handing any
    /// back (`Int.max`: whatever it is given). The pipeline hands it no more,
    /// so waiting logs are not passed back and forth.
    var roomBytes: Int { get }
    /// Whether the receive thread may send this lane's traffic itself (the
    /// direct route: `recvmmsg` → `sendmmsg`, no hop to the loop) while the
    /// lane can take traffic and its breaker is closed. Only a lane whose
    /// sends are stateless per datagram can: `udp://`.
    var sendsFromReceiveThread: Bool { get }
    /// Sends `records` (whose reservation totals `bytes`), received at `receivedAt`,
    /// at `spans` in the spool (empty without one); settles them once delivered.
    func send(_ records: [ByteBuffer], bytes: Int, receivedAt: NIODeadline, spans: SpoolSpans)
    /// Opens sockets or files; called once on the lane's loop.
    func start() -> EventLoopFuture<Void>
    /// Closes what ``start()`` opened.
    func stop() -> EventLoopFuture<Void>
    /// Moves the lane to a new address of its upstream (its name was re-resolved).
    func repoint(to address: SocketAddress)
    /// Stops the lane for good (its upstream left the configuration) and
    /// settles what it still holds; returns how many logs that was, for the
    /// caller to count as dropped (`route_removed`).
    func abandon() -> Int
}

extension UpstreamLane {
    package var roomBytes: Int { .max }
    package var sendsFromReceiveThread: Bool { false }
    /// Lanes that hold nothing once a send returns (`udp://`) or settle what
    /// they started on their own (`file:`) just stop.
    package func abandon() -> Int {
        _ = stop()
        return 0
    }
}
