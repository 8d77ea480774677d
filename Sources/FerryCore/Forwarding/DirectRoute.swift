import Synchronization

/// Which `udp://` upstream a receive thread may send to itself, as its loop's
/// pipeline decided (or none).
///
/// The pipeline owns every forwarding decision: it opens the route only while
/// nothing waits in its shard and the first upstream that can take traffic is
/// a `udp://` one with a closed breaker, and closes it as soon as that changes.
/// While the route is open, a burst goes from `recvmmsg` to `sendmmsg` on the
/// receive thread, as in the C reference relay, with no hop and no buffering.
package final class DirectRoute: Sendable {
    private let target = Atomic<Int>(-1)

    package init() {}

    package func open(upstream position: Int) {
        target.store(position, ordering: .relaxed)
    }

    func close() {
        target.store(-1, ordering: .relaxed)
    }

    /// The upstream's position in the failover order, or nil while the route is closed.
    var upstream: Int? {
        let position = target.load(ordering: .relaxed)
        return position >= 0 ? position : nil
    }
}
