import DequeModule
import NIOCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Reading spilled records back into the memory window, and claiming the
/// records of frames a lane replays after a restart.
extension SpoolShard {
    // MARK: - Reading back

    /// Whether records wait on disk only.
    package var isSpilling: Bool { state.withLock { $0.spill != nil || !$0.released.isEmpty } }

    /// Gives records held in memory back to the disk, unsettled: their copy
    /// there is read back (``readSpilled(maxRecords:capacity:allocator:)``,
    /// before the spill cursor's) when their route has room again. The caller
    /// releases their room in the memory buffer.
    package func release(_ run: SpoolRun) {
        guard run.count > 0, run.shard == index, run.spool == spoolID else { return }
        defer { changed() }
        state.withLock { state in
            guard run.end > state.ledger.watermark else { return }
            Self.insertReleased(run, into: &state.released)
        }
    }

    /// Adds `run` to the sorted given-back runs, merging neighbours that now touch.
    static func insertReleased(_ run: SpoolRun, into released: inout [SpoolRun]) {
        let position = released.firstIndex { $0.first > run.first } ?? released.endIndex
        released.insert(run, at: position)
        var merged: [SpoolRun] = []
        merged.reserveCapacity(released.count)
        for next in released {
            if let last = merged.last, last.end >= next.first {
                merged[merged.count - 1].count = Int(max(last.end, next.end) - last.first)
            } else {
                merged.append(next)
            }
        }
        released = merged
    }

    /// Reads back records given back to the disk, oldest first, as many as the
    /// memory buffer has room for and at most `maxRecords`; those found missing
    /// (their segment evicted or deleted) are settled and counted lost.
    private func readReleased(maxRecords: Int, capacity: BufferCapacity, allocator: ByteBufferAllocator) -> ReadBack {
        var result = ReadBack()
        let (wanted, segments) = state.withLock { state -> ([SpoolRun], [Segment]) in
            var wanted: [SpoolRun] = []
            var left = maxRecords
            for run in state.released where left > 0 {
                wanted.append(SpoolRun(spool: run.spool, shard: run.shard, first: run.first, count: min(run.count, left)))
                left -= min(run.count, left)
            }
            return (wanted, Array(state.segments))
        }
        guard let low = wanted.first?.first, let high = wanted.last?.end else { return result }
        var found: [(UInt64, ByteBuffer)] = []
        for segment in segments where segment.first < high && segment.end > low {
            let runs = wanted.filter { $0.first < segment.end && $0.end > segment.first }
            guard !runs.isEmpty else { continue }
            let descriptor = open(segment.path, O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else { continue }
            defer { close(descriptor) }
            for run in runs {
                // Each run from the indexed record nearest before it, not the file's head:
                // a read never scans what lies before or between the runs it wants.
                var reader = SegmentReader(descriptor: descriptor, scanner: SpoolRecordScanner(lowestSequence: segment.first))
                let start = segment.readStart(for: max(run.first, segment.first))
                _ = reader.read(from: start, to: segment.bytes, allocator: allocator) { sequence, payload, _ in
                    guard sequence < run.end else { return false }
                    if sequence >= run.first { found.append((sequence, payload)) }
                    return true
                }
            }
        }
        // Room in memory for as many as fit, oldest first; the rest stay released.
        let (fitting, fittingBytes) = capacity.reservePrefix(of: found) { $0.1.readableBytes }
        let through = fitting < found.count ? found[fitting].0 : high
        for (sequence, payload) in found.prefix(fitting) {
            result.records.append(payload)
            result.spans.append(SpoolRun(spool: spoolID, shard: index, first: sequence, count: 1))
        }
        result.bytes = fittingBytes
        // What was wanted before `through` and not found can never be read.
        var missing: [SpoolRun] = []
        let taken = Set(found.prefix(fitting).map(\.0))
        for run in wanted {
            var sequence = run.first
            while sequence < min(run.end, through) {
                if !taken.contains(sequence) {
                    let start = sequence
                    while sequence < min(run.end, through), !taken.contains(sequence) { sequence += 1 }
                    missing.append(SpoolRun(spool: spoolID, shard: index, first: start, count: Int(sequence - start)))
                } else {
                    sequence += 1
                }
            }
        }
        state.withLock { state in
            // Everything before `through` was taken or is lost: trim it off the released runs.
            var kept: [SpoolRun] = []
            for run in state.released {
                if run.end <= through { continue }
                if run.first < through {
                    kept.append(SpoolRun(spool: run.spool, shard: run.shard, first: through, count: Int(run.end - through)))
                } else {
                    kept.append(run)
                }
            }
            state.released = kept
        }
        for run in missing { result.lost += noteLost(run) }
        return result
    }

    /// What ``readSpilled(maxRecords:capacity:)`` brought back.
    package struct ReadBack {
        package var records: [ByteBuffer] = []
        package var bytes = 0
        package var spans = SpoolSpans()
        /// Records found missing or damaged on the way (settled; the caller counts them dropped).
        package var lost = 0
    }

    /// Reads spilled records back, oldest first, as many as the memory buffer
    /// has room for (reserved) and at most `maxRecords`. Ends the spill when it
    /// reaches the last record written.
    package func readSpilled(maxRecords: Int, capacity: BufferCapacity, allocator: ByteBufferAllocator) -> ReadBack {
        defer { changed() }  // the spill cursor moved, lost records were settled
        if state.withLock({ !$0.released.isEmpty }) {
            let released = readReleased(maxRecords: maxRecords, capacity: capacity, allocator: allocator)
            if !released.records.isEmpty || released.lost > 0 { return released }
        }
        var result = ReadBack()
        guard var spill = state.withLock({ $0.spill }) else { return result }
        var claimed = state.withLock { $0.claimed }
        /// Whether `sequence` belongs to a frame a lane replays (claims behind the cursor are dropped).
        func isClaimed(_ sequence: UInt64) -> Bool {
            while let first = claimed.first, first.end <= sequence { claimed.removeFirst() }
            return claimed.first.map { $0.first <= sequence } ?? false
        }
        defer { state.withLock { $0.claimed = claimed } }
        while result.records.count < maxRecords {
            // The segment holding the cursor, and how far it is written.
            let snapshot: (path: String, end: Int, isActive: Bool, next: UInt64?)? = state.withLock { state in
                guard let position = state.segments.firstIndex(where: { $0.first == spill.segmentFirst }) else { return nil }
                let segment = state.segments[position]
                let next = position + 1 < state.segments.count ? state.segments[position + 1].first : nil
                return (segment.path, segment.bytes, position == state.segments.count - 1, next)
            }
            guard let snapshot else {
                // Its segment is gone (deleted by hand): go on with the oldest one after it.
                let next = state.withLock { $0.segments.first(where: { $0.first > spill.segmentFirst }) }
                guard let next else { break }
                spill = Spill(sequence: max(spill.sequence, next.first), segmentFirst: next.first, offset: SpoolRecordFormat.segmentHeaderBytes)
                continue
            }
            var readAll = true
            if spill.offset < snapshot.end {
                let descriptor = open(snapshot.path, O_RDONLY | O_CLOEXEC)
                guard descriptor >= 0 else { break }
                defer { close(descriptor) }
                var reader = SegmentReader(
                    descriptor: descriptor, scanner: SpoolRecordScanner(lowestSequence: spill.segmentFirst, lastSequence: spill.sequence &- 1))
                var pending: [(UInt64, ByteBuffer)] = []
                var offsets: [Int] = []
                let outcome = reader.read(from: spill.offset, to: snapshot.end, allocator: allocator) { sequence, payload, offset in
                    guard result.records.count + pending.count < maxRecords else { return false }
                    pending.append((sequence, payload))
                    offsets.append(offset)
                    return true
                }
                // Room in memory for as many as fit; the rest stay spilled.
                let (fitting, fittingBytes) = capacity.reservePrefix(of: pending) { $0.1.readableBytes }
                for (sequence, payload) in pending.prefix(fitting) {
                    if sequence > spill.sequence {
                        result.lost += noteLost(SpoolRun(spool: spoolID, shard: index, first: spill.sequence, count: Int(sequence - spill.sequence)))
                    }
                    if isClaimed(sequence) {
                        // Sent again in its old frame by a lane: its room in memory goes back.
                        capacity.release(count: 1, bytes: payload.readableBytes)
                        result.bytes -= payload.readableBytes
                        spill.sequence = sequence + 1
                        continue
                    }
                    result.records.append(payload)
                    result.spans.append(SpoolRun(spool: spoolID, shard: index, first: sequence, count: 1))
                    spill.sequence = sequence + 1
                }
                result.bytes += fittingBytes
                if fitting < pending.count {
                    // Resume at the first record not taken.
                    spill.offset = offsets[fitting]
                    readAll = false
                } else {
                    spill.offset = outcome.offset
                    readAll = !outcome.stoppedEarly
                }
                if fitting == 0 && !pending.isEmpty { break }
            }
            if !readAll { break }
            if snapshot.isActive {
                // Caught up with the writer, unless it wrote more meanwhile.
                let caughtUp = state.withLock { state -> Bool in
                    guard let last = state.segments.last, last.first == spill.segmentFirst, last.bytes == spill.offset else { return false }
                    if spill.sequence < state.nextSequence {
                        result.lost += Int(state.nextSequence - spill.sequence)
                        state.ledger.settle(
                            SpoolRun(spool: spoolID, shard: index, first: spill.sequence, count: Int(state.nextSequence - spill.sequence)))
                        state.lostWhileReading += Int(state.nextSequence - spill.sequence)
                    }
                    state.spill = nil
                    return true
                }
                if caughtUp { return result }
                continue
            }
            guard let next = snapshot.next else { break }
            if spill.sequence < next {
                result.lost += noteLost(SpoolRun(spool: spoolID, shard: index, first: spill.sequence, count: Int(next - spill.sequence)))
                spill.sequence = next
            }
            spill = Spill(sequence: spill.sequence, segmentFirst: next, offset: SpoolRecordFormat.segmentHeaderBytes)
        }
        state.withLock { state in
            if state.spill != nil { state.spill = spill }
        }
        return result
    }

    /// Records that can never be read (damage, a deleted file): settled, and
    /// counted unless a route's spool evicted them at its cap (counted then).
    func noteLost(_ run: SpoolRun) -> Int {
        guard run.count > 0 else { return 0 }
        defer { changed() }
        return state.withLock { state in
            state.ledger.settle(run)
            let lost = run.count - state.evicted.overlap(run.first..<run.end)
            state.lostWhileReading += lost
            return lost
        }
    }

    // MARK: - Replaying frames

    /// Reads the records of `runs` (any order, any segment) for a lane that
    /// sends them again in their old frames, and claims them so the spill
    /// reader passes them by. Nil when any of them is already settled, missing
    /// or damaged: then nothing is claimed and they go out as new frames.
    func claim(_ runs: [SpoolRun]) -> [ByteBuffer]? {
        let wanted = runs.filter { $0.count > 0 }
        guard !wanted.isEmpty else { return nil }
        let (watermark, segments, spillFrom) = state.withLock { ($0.ledger.watermark, Array($0.segments), $0.spill?.sequence) }
        // Only records still waiting on disk, behind the read-back cursor.
        guard let spillFrom, wanted.allSatisfy({ $0.first >= max(watermark, spillFrom) }) else { return nil }
        var found: [UInt64: ByteBuffer] = [:]
        let allocator = ByteBufferAllocator()
        for segment in segments where wanted.contains(where: { $0.first < segment.end && $0.end > segment.first }) {
            let descriptor = open(segment.path, O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else { return nil }
            defer { close(descriptor) }
            for run in wanted where run.first < segment.end && run.end > segment.first {
                // From the indexed record nearest before the run, to its end: a
                // start-up with many frames to send again never scans whole segments for each.
                var reader = SegmentReader(descriptor: descriptor, scanner: SpoolRecordScanner(lowestSequence: segment.first))
                _ = reader.read(from: segment.readStart(for: max(run.first, segment.first)), to: segment.bytes, allocator: allocator) {
                    sequence, payload, _ in
                    guard sequence < run.end else { return false }
                    if sequence >= run.first {
                        var copy = allocator.buffer(capacity: payload.readableBytes)
                        copy.writeImmutableBuffer(payload)
                        found[sequence] = copy
                    }
                    return true
                }
            }
        }
        var records: [ByteBuffer] = []
        for run in wanted {
            for sequence in run.first..<run.end {
                guard let record = found[sequence] else { return nil }
                records.append(record)
            }
        }
        state.withLock { state in
            state.claimed.append(contentsOf: wanted)
            state.claimed.sort { $0.first < $1.first }
        }
        return records
    }

    /// Gives back a claim that was not used.
    func unclaim(_ runs: [SpoolRun]) {
        state.withLock { state in state.claimed.removeAll { claimed in runs.contains(claimed) } }
    }
}
