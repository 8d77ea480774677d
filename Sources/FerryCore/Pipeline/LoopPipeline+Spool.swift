import NIOCore

/// The pipeline's side of the spool: reading spilled logs back into the
/// memory window.
extension LoopPipeline {
    /// Most logs read back from disk per drain step.
    static let readBackBurst = 4_096

    /// Whether `queue` reads spilled logs back: with a spool there is one route (the configuration allows no more).
    func readsSpool(_ queue: RouteQueue) -> Bool {
        !readShards.isEmpty && queue === routes.first
    }

    /// Refills the memory window from the spool while logs wait on disk only,
    /// the route's queue is nearly empty and an upstream can take traffic:
    /// oldest first (a previous run's shards before this run's), as many as
    /// the buffer has room for.
    func readBackSpilled(into queue: RouteQueue) {
        guard queue.shard.count < 4, queue.lanes.contains(where: \.canAccept) else { return }
        for source in readShards where source.isSpilling {
            let read = source.readSpilled(maxRecords: Self.readBackBurst, capacity: capacity, allocator: allocator)
            if read.lost > 0 { drops.drop(.spoolCorrupt, logs: read.lost, detail: source.index) }
            guard !read.records.isEmpty else { return }
            queue.stats.routed.add(read.records.count)
            queue.append(RecordBatch(copying: read.records, bytes: read.bytes, receivedAt: .now(), spans: read.spans, allocator: allocator))
            return
        }
    }
}
