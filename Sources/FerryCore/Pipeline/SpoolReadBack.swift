import NIOCore

/// Where one route queue's spilled logs come back from: its own spool's
/// shards (with `routes`), or the loop's (the one route of a configuration
/// without `routes`); a previous run's shards before this run's.
///
/// Owned by its ``RouteQueue``, which decides when to read. A queue that a
/// reload replaced reads nothing more: its replacement reads the same shards.
struct SpoolReadBack {
    /// Most logs read back from disk per drain step.
    static let burst = 4_096
    /// Nothing to read back: no spool.
    static let none = SpoolReadBack(shards: [], countsAsRouted: false)

    private(set) var shards: [SpoolShard]
    /// Whether logs read back count as routed now: those of the loop's spool
    /// do; a route's own spool counted them when it took them.
    let countsAsRouted: Bool

    init(shards: [SpoolShard], countsAsRouted: Bool) {
        self.shards = shards
        self.countsAsRouted = countsAsRouted
    }

    /// The shards of `spool` that loop `index` reads back: its own, and those
    /// of loops an earlier run had beyond this run's count.
    static func shards(of spool: Spool, readBy index: Int, loopCount: Int) -> [SpoolShard] {
        spool.shards.filter { $0.index == index || ($0.index >= loopCount && $0.index % loopCount == index) }
    }

    /// Whether logs wait on disk only, to be read back.
    var hasSpilled: Bool { shards.contains(where: \.isSpilling) }

    /// Reads nothing from now on (the queue was replaced by a reload).
    mutating func stop() { shards = [] }

    /// Reads at most `maximum` spilled logs from the first shard that has any.
    func read(maximum: Int, capacity: BufferCapacity, allocator: ByteBufferAllocator) -> (read: SpoolShard.ReadBack, shard: Int)? {
        for shard in shards where shard.isSpilling {
            return (shard.readSpilled(maxRecords: maximum, capacity: capacity, allocator: allocator), shard.index)
        }
        return nil
    }
}
