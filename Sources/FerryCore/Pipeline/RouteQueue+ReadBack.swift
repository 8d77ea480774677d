import NIOCore

/// A route queue refilling its memory window from its spool.
extension RouteQueue {
    /// Reads spilled logs back while they wait on disk only, the queue is
    /// nearly empty and a lane can take traffic: oldest first, as many as the
    /// route's share of memory and the buffer have room for.
    func readBackSpilled() {
        guard readBack.hasSpilled, shard.count < 4, lanes.contains(where: \.canAccept) else { return }
        let room = min(SpoolReadBack.burst, route.maxBacklogLogs - stats.waitingLogs.load)
        guard room > 0, let (read, index) = readBack.read(maximum: room, capacity: pipeline.capacity, allocator: pipeline.allocator) else {
            return
        }
        if read.lost > 0 { pipeline.drops.drop(.spoolCorrupt, logs: read.lost, detail: index) }
        guard !read.records.isEmpty else { return }
        if readBack.countsAsRouted { stats.routed.add(read.records.count) }
        append(RecordBatch(copying: read.records, bytes: read.bytes, receivedAt: .now(), spans: read.spans, allocator: pipeline.allocator))
    }

    /// This queue was replaced by a reload: the new queue reads its spool back from now on.
    func stopReadingBack() {
        readBack.stop()
    }
}
