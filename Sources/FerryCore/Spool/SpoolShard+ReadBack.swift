import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// Reading spilled records back into the memory window, and claiming the
/// records of frames a lane replays after a restart.
extension SpoolShard {
    // MARK: - Reading back

    /// Whether records wait on disk only.
    package var isSpilling: Bool { state.withLock { $0.spill != nil } }

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

    /// Records that can never be read (damage, a deleted file): settled, counted.
    func noteLost(_ run: SpoolRun) -> Int {
        guard run.count > 0 else { return 0 }
        state.withLock { state in
            state.ledger.settle(run)
            state.lostWhileReading += run.count
        }
        return run.count
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
            var reader = SegmentReader(descriptor: descriptor, scanner: SpoolRecordScanner(lowestSequence: segment.first))
            _ = reader.read(from: SpoolRecordFormat.segmentHeaderBytes, to: segment.bytes, allocator: allocator) { sequence, payload, _ in
                if wanted.contains(where: { $0.first <= sequence && sequence < $0.end }) {
                    var copy = allocator.buffer(capacity: payload.readableBytes)
                    copy.writeImmutableBuffer(payload)
                    found[sequence] = copy
                }
                return true
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
