import NIOCore

/// The pipeline's side of the spool: reading spilled logs back into the
/// memory window.
extension LoopPipeline {
    /// Most logs read back from disk per drain step.
    static let readBackBurst = 4_096

    /// Whether `queue` reads spilled logs back: from its own spool, or (the
    /// one route without `routes`) from the loop's.
    func readsSpool(_ queue: RouteQueue) -> Bool {
        queue.spool != nil ? !queue.readShards.isEmpty : !readShards.isEmpty && queue === routes.first
    }

    /// The shards of `spool` loop `index` reads back: its own, and those of
    /// loops an earlier run had beyond this run's count.
    static func shards(of spool: Spool, readBy index: Int, loopCount: Int) -> [SpoolShard] {
        spool.shards.filter { $0.index == index || ($0.index >= loopCount && $0.index % loopCount == index) }
    }

    /// Has every queue with logs waiting on disk drain soon. Spilled logs move
    /// only when a queue drains, and while it spills nothing else asks it to
    /// (new logs go to disk behind the old): so after every burst, whatever it
    /// held, and at start, when a spool recovered from an earlier run may hold
    /// logs and no traffic comes at all.
    func scheduleReadBack() {
        for queue in routes where readsSpool(queue) {
            if (queue.spool != nil ? queue.readShards : readShards).contains(where: \.isSpilling) { queue.scheduleRetry() }
        }
    }

    /// Refills the memory window from the spool while logs wait on disk only,
    /// the route's queue is nearly empty and an upstream can take traffic:
    /// oldest first (a previous run's shards before this run's), as many as
    /// the buffer has room for.
    func readBackSpilled(into queue: RouteQueue) {
        guard queue.shard.count < 4, queue.lanes.contains(where: \.canAccept) else { return }
        for source in queue.spool != nil ? queue.readShards : readShards where source.isSpilling {
            // No more than the route's share of memory: the rest waits on disk.
            let room = min(Self.readBackBurst, queue.route.maxBacklogLogs - queue.stats.waitingLogs.load)
            guard room > 0 else { return }
            let read = source.readSpilled(maxRecords: room, capacity: capacity, allocator: allocator)
            if read.lost > 0 { drops.drop(.spoolCorrupt, logs: read.lost, detail: source.index) }
            guard !read.records.isEmpty else { return }
            if queue.spool == nil { queue.stats.routed.add(read.records.count) }  // a route's own spool counted them when it took them
            queue.append(RecordBatch(copying: read.records, bytes: read.bytes, receivedAt: .now(), spans: read.spans, allocator: allocator))
            return
        }
    }
}
