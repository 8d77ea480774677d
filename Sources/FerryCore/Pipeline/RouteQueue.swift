import DequeModule
import Logging
import NIOCore

/// One route on one event loop: its lanes (one per upstream of the route), the
/// logs waiting for them, and the choice of lane — the first that can take
/// traffic (`failover`) or each source's member (`balance`).
///
/// Confined to its loop, like the ``LoopPipeline`` that owns it. Each route
/// waits on its own: a route whose upstreams are all down keeps its logs here,
/// up to its backlog cap, and never holds back another route's.
final class RouteQueue {
    /// The route as the current routing table has it (a reload may change its caps).
    var route: RoutingTable.Route
    let stats: RouteStats
    unowned let pipeline: LoopPipeline
    /// The route's lanes, in its failover order.
    private(set) var lanes: [any UpstreamLane] = []
    /// Batches waiting for an upstream, oldest first.
    private(set) var shard: Deque<RecordBatch> = []
    private var retryScheduled = false
    /// Position (in ``lanes``) of the upstream this loop sent to last, to log changes once.
    private(set) var currentUpstream = 0

    /// The route's own spool (with `routes` and `spool.dir`), where its logs
    /// are appended before they go anywhere; nil otherwise (the loop's spool,
    /// if any, then holds every log once).
    let spool: Spool?
    /// This loop's shard of it.
    let spoolShard: SpoolShard?
    /// Where the route's spilled logs come back from (``SpoolReadBack``).
    var readBack: SpoolReadBack

    init(route: RoutingTable.Route, stats: RouteStats, pipeline: LoopPipeline) {
        self.route = route
        self.stats = stats
        self.pipeline = pipeline
        let spool = pipeline.registry?.spool(forRoute: route.name)
        self.spool = spool
        self.spoolShard = spool.map { $0.shards[pipeline.index] }
        if let spool {
            let shards = SpoolReadBack.shards(of: spool, readBy: pipeline.index, loopCount: pipeline.loopCount)
            readBack = SpoolReadBack(shards: shards, countsAsRouted: false)
        } else if let loopSpool = pipeline.spool {
            // The loop's spool exists only without `routes`: this is its one route.
            let shards = SpoolReadBack.shards(of: loopSpool, readBy: pipeline.index, loopCount: pipeline.loopCount)
            readBack = SpoolReadBack(shards: shards, countsAsRouted: true)
        } else {
            readBack = .none
        }
    }

    /// Whether logs of this route wait on disk only (its own spool's shard, or the loop's).
    var isSpilling: Bool {
        if let spoolShard { return spoolShard.isSpilling }
        return pipeline.spoolShard?.isSpilling == true
    }

    /// Whether the route's logs are on disk (its own spool, or the loop's): its
    /// cap is then the spool's, enforced when logs are appended, and the cap
    /// in memory only decides what waits in memory and what on disk only.
    var isSpoolBacked: Bool { spoolShard != nil || pipeline.spoolShard != nil }

    /// Whether the route's logs may take room in memory now: it keeps its
    /// share of the buffer, the rest waits on disk only (with its own spool).
    var hasMemoryRoom: Bool {
        stats.waitingBytes.load < route.maxBacklogBytes && stats.waitingLogs.load < route.maxBacklogLogs
    }

    func setLanes(_ lanes: [any UpstreamLane]) {
        self.lanes = lanes
    }

    var isWaiting: Bool { !shard.isEmpty }

    // MARK: - Sending

    /// Sends reserved records now if nothing is waiting ahead of them and an
    /// upstream can take them; otherwise queues a copy behind the waiting ones.
    func dispatch(_ records: [ByteBuffer], bytes: Int, receivedAt: NIODeadline, spans: SpoolSpans, sources: [SourceKey?] = []) {
        if shard.isEmpty {
            switch route.mode {
            case .failover:
                if let lane = firstAvailableLane() {
                    lane.send(records, bytes: bytes, receivedAt: receivedAt, spans: spans)
                    return
                }
            case .balance:
                if sendBalanced(records, bytes: bytes, receivedAt: receivedAt, spans: spans, sources: sources, avoiding: nil) { return }
            }
        }
        enqueue(
            RecordBatch(copying: records, bytes: bytes, receivedAt: receivedAt, spans: spans, sources: sources, allocator: pipeline.allocator),
            atFront: false)
        drainShard()
    }

    /// Splits records over the members that can take traffic, each source to
    /// its rendezvous member; false when no member can. Records a member
    /// handed back (`avoiding`: its upstream id) go to another while one can take them.
    private func sendBalanced(
        _ records: [ByteBuffer], bytes: Int, receivedAt: NIODeadline, spans: SpoolSpans, sources: [SourceKey?], avoiding: Int?
    ) -> Bool {
        var available: [Bool] = []
        available.reserveCapacity(lanes.count)
        var open = 0
        var last = 0
        let others = avoiding.map { avoided in lanes.contains { $0.upstream.index != avoided && $0.canAccept } } ?? false
        for (position, lane) in lanes.enumerated() {
            let can = lane.canAccept && !(others && lane.upstream.index == avoiding)
            available.append(can)
            if can {
                open += 1
                last = position
            }
        }
        guard open > 0 else { return false }
        if open == 1 {
            lanes[last].send(records, bytes: bytes, receivedAt: receivedAt, spans: spans)
            return true
        }
        var members: [Int] = []
        members.reserveCapacity(records.count)
        for index in records.indices {
            let source = index < sources.count ? sources[index] : nil
            members.append(RendezvousHash.pick(source, members: route.memberIDs) { available[$0] }!)
        }
        for member in lanes.indices where available[member] {
            var subset: [ByteBuffer] = []
            var subsetBytes = 0
            var subsetSpans = SpoolSpans()
            for index in records.indices where members[index] == member {
                subset.append(records[index])
                subsetBytes += records[index].readableBytes
                if !spans.isEmpty { subsetSpans.append(contentsOf: spans.slice(from: index, count: 1)) }
            }
            if !subset.isEmpty { lanes[member].send(subset, bytes: subsetBytes, receivedAt: receivedAt, spans: subsetSpans) }
        }
        return true
    }

    /// Moves waiting batches to upstreams, oldest first, for as long as one can take them.
    func drainShard() {
        readBackSpilled()
        // Bounded: a lane may hand part of a batch back (to the front), which
        // is then tried on the next round rather than in a loop here.
        var remaining = shard.count
        while remaining > 0, let batch = shard.first {
            remaining -= 1
            if route.mode == .balance {
                guard lanes.contains(where: \.canAccept) else { break }
                let whole = popFront()
                _ = sendBalanced(
                    whole.records, bytes: whole.bytes, receivedAt: whole.receivedAt, spans: whole.spans, sources: whole.sources,
                    avoiding: whole.handedBackBy)
                continue
            }
            guard let lane = firstAvailableLane() else { break }
            // Waiting batches leave together, up to one large burst, so that
            // frames and sendmmsg calls are full rather than one per batch;
            // but no more than the lane can take now, so nothing is handed back.
            let budget = lane.roomBytes
            let fitting = min(batch.countFitting(bytes: budget), Self.drainBurst)
            var records: [ByteBuffer]
            var bytes: Int
            var spans: SpoolSpans
            if fitting < batch.count {
                (records, bytes, spans) = takeFront(fitting)
            } else {
                let first = popFront()
                (records, bytes, spans) = (first.records, first.bytes, first.spans)
                while remaining > 0, let next = shard.first, records.count + next.count <= Self.drainBurst, bytes + next.bytes <= budget {
                    let more = popFront()
                    records.append(contentsOf: more.records)
                    bytes += more.bytes
                    spans.append(contentsOf: more.spans)
                    remaining -= 1
                }
            }
            lane.send(records, bytes: bytes, receivedAt: batch.receivedAt, spans: spans)
        }
        if !shard.isEmpty || isSpilling { scheduleRetry() }
        pipeline.publishDirectRoute()
    }

    /// Most logs one drain step hands to a lane at once.
    private static let drainBurst = 1_024

    /// Takes back logs an upstream could not send or gave up on. They keep
    /// their reservation and go to the front of this route's queue, from where
    /// they fail over to the next upstream that can take them, or wait.
    func returnToBuffer(_ records: [ByteBuffer], bytes: Int, receivedAt: NIODeadline, spans: SpoolSpans, from upstream: Int? = nil) {
        guard !records.isEmpty else { return }
        if isExpired {
            // A removed route past its deadline: what comes back leaves, counted.
            pipeline.settlement.settle(count: records.count, bytes: bytes, spans: spans)
            pipeline.drops.drop(.routeRemoved, logs: records.count, detail: 0, route: route.name)
            return
        }
        var batch = RecordBatch(copying: records, bytes: bytes, receivedAt: receivedAt, spans: spans, allocator: pipeline.allocator)
        batch.handedBackBy = upstream
        enqueue(batch, atFront: true)
        pipeline.directRoute.close()
        scheduleRetry()
    }

    /// Queues a batch that arrived while the upstreams could not take it (at the back; waits for a retry).
    func park(_ records: [ByteBuffer], bytes: Int, receivedAt: NIODeadline, spans: SpoolSpans) {
        enqueue(RecordBatch(copying: records, bytes: bytes, receivedAt: receivedAt, spans: spans, allocator: pipeline.allocator), atFront: false)
        scheduleRetry()
    }

    /// Queues a batch read back from the spool.
    func append(_ batch: RecordBatch) {
        enqueue(batch, atFront: false)
    }

    // MARK: - Reloads

    /// Set once a reload removed this route and `drain.timeout` passed: nothing waits any more.
    private(set) var isExpired = false

    /// Takes over the waiting logs of the queue this one replaces (the same
    /// route, changed by a reload), ahead of anything newer.
    func adopt(_ old: RouteQueue) {
        var batches: [RecordBatch] = []
        while !old.shard.isEmpty { batches.append(old.popFront()) }
        for batch in batches.reversed() { enqueue(batch, atFront: true) }
        if !shard.isEmpty { scheduleRetry() }
    }

    /// A removed route's deadline passed: its waiting logs leave, counted as
    /// `route_removed`, and so will whatever its lanes still hand back. Returns how many left.
    func expire() -> Int {
        isExpired = true
        var dropped = 0
        while !shard.isEmpty {
            let batch = popFront()
            pipeline.settlement.settle(count: batch.count, bytes: batch.bytes, spans: batch.spans)
            dropped += batch.count
        }
        if dropped > 0 { pipeline.drops.drop(.routeRemoved, logs: dropped, detail: 0, route: route.name) }
        return dropped
    }

    // MARK: - The queue and its cap

    /// Makes room for a batch, then queues what of it fits. Room is made
    /// before the batch counts as waiting, so a reader of the route's figures
    /// never sees it over its cap: the oldest leave first, which are this
    /// loop's waiting logs for a new batch (at the back) and the batch's own
    /// front for logs handed back (at the front, older than what waits).
    ///
    /// A route on disk loses nothing here: what is over its share of memory
    /// goes back to the disk (``overflow(count:bytes:spans:)``).
    private func enqueue(_ incoming: RecordBatch, atFront: Bool) {
        guard incoming.count > 0 else { return }
        var batch = incoming
        if !atFront { trimBacklog(makingRoomFor: batch) }
        while batch.count > 0 {
            let over = excess(adding: batch)
            guard over.bytes > 0 || over.logs > 0 else { break }
            let part = batch.takeFirst(Self.dropCount(of: batch, clearing: over))
            overflow(count: part.records.count, bytes: part.bytes, spans: part.spans)
        }
        if batch.count > 0 {
            if atFront { shard.prepend(batch) } else { shard.append(batch) }
            stats.waitingLogs.add(batch.count)
            stats.waitingBytes.add(batch.bytes)
            stats.notePeak()
        }
        // Another loop may have queued for the route meanwhile (the cap is over every loop).
        trimBacklog(makingRoomFor: nil)
    }

    private func popFront() -> RecordBatch {
        let batch = shard.removeFirst()
        stats.waitingLogs.add(-batch.count)
        stats.waitingBytes.add(-batch.bytes)
        return batch
    }

    private func takeFront(_ count: Int) -> (records: [ByteBuffer], bytes: Int, spans: SpoolSpans) {
        let taken = shard[shard.startIndex].takeFirst(count)
        stats.waitingLogs.add(-taken.records.count)
        stats.waitingBytes.add(-taken.bytes)
        return taken
    }

    /// How far the route is over its cap (over every loop) once `batch` waits too.
    private func excess(adding batch: RecordBatch?) -> (bytes: Int, logs: Int) {
        (
            stats.waitingBytes.load + (batch?.bytes ?? 0) - route.maxBacklogBytes,
            stats.waitingLogs.load + (batch?.count ?? 0) - route.maxBacklogLogs
        )
    }

    /// How many records from a batch's front to drop to clear an excess (at least one).
    private static func dropCount(of batch: RecordBatch, clearing over: (bytes: Int, logs: Int)) -> Int {
        min(batch.count, max(1, over.logs, over.bytes > 0 ? batch.countFitting(bytes: over.bytes) : 0))
    }

    /// Drops this loop's oldest waiting logs of the route as `route_overflow`
    /// while the route is over its cap (counting `batch`, about to wait): a dead
    /// destination costs its own route its oldest logs, never the other routes their room.
    private func trimBacklog(makingRoomFor batch: RecordBatch?) {
        while let front = shard.first {
            let over = excess(adding: batch)
            guard over.bytes > 0 || over.logs > 0 else { return }
            let count = Self.dropCount(of: front, clearing: over)
            if count == front.count {
                let whole = popFront()
                overflow(count: whole.count, bytes: whole.bytes, spans: whole.spans)
            } else {
                let part = takeFront(count)
                overflow(count: part.records.count, bytes: part.bytes, spans: part.spans)
            }
        }
    }

    /// Settles logs dropped past the cap and counts them, for the route and the relay alike.
    ///
    /// A route on disk drops nothing at its share of memory: its spool has
    /// their copy (its own cap is enforced when logs are appended), so they
    /// leave memory only, given back to the disk to be read back when the
    /// route has room. Dropping them there would empty a dead destination's
    /// spool frame by frame, as each unacknowledged frame came back.
    private func overflow(count: Int, bytes: Int, spans: SpoolSpans) {
        if isSpoolBacked, spans.count == count, let spool = spool ?? pipeline.spool {
            pipeline.capacity.release(count: count, bytes: bytes)
            spool.release(spans)
            stats.givenBackToDisk.add(count)
            return
        }
        pipeline.settlement.settle(count: count, bytes: bytes, spans: spans)
        stats.overflowed.add(count)
        pipeline.drops.drop(.routeOverflow, logs: count, detail: route.maxBacklogBytes, route: route.name)
    }

    // MARK: - Failover

    @inline(__always)
    func firstAvailableLane() -> (any UpstreamLane)? {
        for (position, lane) in lanes.enumerated() where lane.canAccept {
            if position != currentUpstream { noteFailover(from: currentUpstream, to: position) }
            return lane
        }
        return nil
    }

    /// Position of the first lane that can take traffic, without noting a failover.
    var firstAvailablePosition: Int? { lanes.firstIndex(where: \.canAccept) }

    /// Logs a move of this loop's traffic to another upstream (one line per change).
    func noteFailover(from old: Int, to new: Int) {
        let previous = lanes[old].upstream
        let next = lanes[new].upstream
        currentUpstream = new
        if new > old { previous.failovers.add(1) }
        pipeline.logger.notice(
            new > old ? "upstream failover" : "upstream failback",
            metadata: [
                "upstream.from": "\(previous.url)",
                "upstream.to": "\(next.url)",
                "route": "\(route.name)",
                "reason":
                    "\(new > old ? "\(previous.url) cannot take traffic (breaker \(previous.breakerState.rawValue))" : "\(next.url) can take traffic again")",
                "loop": "\(pipeline.index)",
            ])
    }

    func scheduleRetry() {
        guard !retryScheduled else { return }
        retryScheduled = true
        pipeline.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(20)) {
            self.retryScheduled = false
            self.drainShard()
        }
    }
}
