import Synchronization

/// A route's totals since the process started: kept by every ``RouteStats``
/// of that route name, so a reload that changes the route (a new queue and new
/// stats) carries them on at the source. Loops still on the old table add to
/// the same counters as those on the new one, so no count is lost between.
final class RouteTotals: Sendable {
    /// Logs the route took (matched, and room found for them).
    let routed = AtomicCounter()
    /// Copies the route dropped: its oldest past its backlog cap (`route_overflow`), or no room in the buffer (`queue_full`).
    let overflowed = AtomicCounter()
    let queueFull = AtomicCounter()
    /// Logs of a route on disk that left memory past its share, to be read back from its spool.
    let givenBackToDisk = AtomicCounter()
}

/// One route's counters, shared by every loop (added to once per burst).
public final class RouteStats: Sendable {
    public let name: String
    public let mode: RouteSettings.Mode
    /// Totals that go on across reloads (shared with the route's earlier stats).
    let totals: RouteTotals
    var routed: AtomicCounter { totals.routed }
    var overflowed: AtomicCounter { totals.overflowed }
    var queueFull: AtomicCounter { totals.queueFull }
    var givenBackToDisk: AtomicCounter { totals.givenBackToDisk }
    /// Logs waiting in the route's queues on every loop now (none in flight).
    let waitingLogs = AtomicCounter()
    let waitingBytes = AtomicCounter()
    /// The most bytes that ever waited at once (over every loop): what the
    /// backlog cap let through, so an operator can see how close it came.
    private let peakWaitingBytes = Atomic<Int>(0)
    /// Most bytes it may keep waiting, over every loop.
    public let maxBacklogBytes: Int

    /// - Parameter continuing: the stats of the route of the same name before a reload: its totals go on here.
    init(route: RoutingTable.Route, continuing earlier: RouteStats? = nil) {
        name = route.name
        mode = route.mode
        maxBacklogBytes = route.maxBacklogBytes
        totals = earlier?.totals ?? RouteTotals()
    }

    /// Raises the peak to what waits now (called after logs were queued; not on the direct path).
    func notePeak() {
        let now = waitingBytes.load
        var peak = peakWaitingBytes.load(ordering: .relaxed)
        while now > peak {
            let (exchanged, original) = peakWaitingBytes.compareExchange(expected: peak, desired: now, ordering: .relaxed)
            if exchanged { return }
            peak = original
        }
    }

    public var snapshot: RouteSnapshot {
        RouteSnapshot(
            name: name, mode: mode.rawValue, routed: routed.load, routeOverflow: overflowed.load, queueFull: queueFull.load,
            givenBackToDisk: givenBackToDisk.load, waitingLogs: waitingLogs.load, waitingBytes: waitingBytes.load,
            peakWaitingBytes: peakWaitingBytes.load(ordering: .relaxed), maxBacklogBytes: maxBacklogBytes)
    }
}

/// What `/v1/status` shows of one route.
public struct RouteSnapshot: Sendable, Codable, Equatable {
    public var name: String
    public var mode: String
    /// Logs the route took.
    public var routed: Int
    /// Its oldest logs dropped past its backlog cap.
    public var routeOverflow: Int
    /// Logs it could not take for want of room in the buffer.
    public var queueFull: Int
    /// Logs of a route on disk that left memory past its share, read back later from its spool (none lost).
    public var givenBackToDisk: Int
    public var waitingLogs: Int
    public var waitingBytes: Int
    /// The most bytes that ever waited at once; never above `maxBacklogBytes`.
    public var peakWaitingBytes: Int
    public var maxBacklogBytes: Int
    /// Its upstreams, in its failover order, and what they accepted (set by the relay).
    public var upstreams: [String] = []
    public var forwarded = 0
}
