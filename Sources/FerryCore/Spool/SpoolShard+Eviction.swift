import DequeModule
#if canImport(Glibc)
    import Glibc
#endif

/// A route's spool at its cap makes room by dropping its oldest records that
/// wait on disk only (`route_overflow`), a whole segment at a time.
extension SpoolShard {
    /// Drops the oldest records that wait on disk only, a segment at a time,
    /// until `bytes` fit the budget or none is left; returns how many. A
    /// segment whose older records are still in memory or in flight cannot be
    /// deleted yet, so dropping the rest of it would free no room: those are
    /// kept as given back to the disk (read back first) and the next segment
    /// goes instead. (Dropping them lost up to a segment of logs the cap had
    /// room for, more or fewer with the timing of the spill.)
    /// Only route spools evict, and their loop is their one writer and
    /// reader: this never runs while ``readSpilled(maxRecords:capacity:allocator:)`` does.
    func evictSpilled(_ state: inout State, toFit bytes: Int) -> Int {
        // Records given back to the disk are kept, as those in memory are: they share segments with
        // records in flight, so dropping them would free no room until those settle, and the spill
        // behind the cursor would be evicted too. They are few: at most a route's share of memory.
        var evicted = 0
        while budget.room < bytes, let spill = state.spill, spill.sequence < state.nextSequence,
            let position = state.segments.firstIndex(where: { $0.first == spill.segmentFirst })
        {
            if position == state.segments.count - 1 {
                roll(&state)  // the active segment: sealed, so its records can go
                guard state.segments.count - 1 > position else { break }
            }
            let segment = state.segments[position]
            let rest = SpoolRun(spool: spoolID, shard: index, first: spill.sequence, count: Int(segment.end - spill.sequence))
            let next = state.segments[position + 1]
            state.spill = Spill(sequence: segment.end, segmentFirst: next.first, offset: SpoolRecordFormat.segmentHeaderBytes)
            // Deletable once these go: nothing before the cursor in it, or all of that settled (the oldest segment).
            guard spill.sequence == segment.first || (position == 0 && state.ledger.watermark >= spill.sequence) else {
                for run in Self.subtracting(state.claimed, from: rest) { Self.insertReleased(run, into: &state.released) }
                continue
            }
            state.ledger.settle(rest)
            state.claimed.removeAll { $0.first < segment.end }
            evicted += rest.count
            // Recorded before the file goes, so a restart does not count the gap again as damage.
            state.evicted.forget(below: state.ledger.watermark)
            state.evicted.add(rest.first..<rest.end)
            state.evicted.write(directory: directory)
            state.segments.remove(at: position)
            unlink(segment.path)
            budget.release(segment.bytes)
        }
        return evicted
    }

    /// `run` less the (sorted) runs of `claimed`.
    static func subtracting(_ claimed: [SpoolRun], from run: SpoolRun) -> [SpoolRun] {
        var pieces: [SpoolRun] = []
        var start = run.first
        for taken in claimed where taken.end > start && taken.first < run.end {
            if taken.first > start { pieces.append(SpoolRun(spool: run.spool, shard: run.shard, first: start, count: Int(taken.first - start))) }
            start = max(start, taken.end)
        }
        if start < run.end { pieces.append(SpoolRun(spool: run.spool, shard: run.shard, first: start, count: Int(run.end - start))) }
        return pieces
    }
}
