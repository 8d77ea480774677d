import DequeModule
import NIOCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// One event loop's part of the spool: its segment files, its sequence
/// numbers, what its consumer has settled, and which of its records are on
/// disk only.
///
/// Written by the loop's receive thread (UDP bursts) and by the loop itself
/// (HTTP bodies, `ferry://` frames), once per burst, under one lock that no
/// one else takes on the hot path; synced, checkpointed and trimmed by the
/// spool's worker thread.
///
/// **The memory window.** A burst is admitted in one step under the lock: its
/// records get sequence numbers, are written (one `write`), and get room in
/// the memory buffer if it has some. If it has none, the shard starts
/// *spilling*: from that sequence on, every record is on disk only, until the
/// loop has read them all back (``readSpilled(maxRecords:capacity:)``). Taking
/// the decision under the lock that assigns sequences keeps the disk-only
/// records one contiguous range, read back in order.
package final class SpoolShard: Sendable {
    /// One segment file.
    struct Segment {
        var first: UInt64
        var path: String
        var bytes: Int
        /// One past the last sequence written to it (for the active one: so far).
        var end: UInt64
        var createdAt: Double
    }

    /// Where reading back spilled records resumes.
    struct Spill {
        var sequence: UInt64
        var segmentFirst: UInt64
        var offset: Int
    }

    struct State {
        var segments: Deque<Segment> = []
        var activeDescriptor: CInt = -1
        var nextSequence: UInt64 = 1
        var ledger = DeliveryLedger(watermark: 1)
        /// The watermark as of the last sync: segments before it may be deleted.
        var durableWatermark: UInt64 = 0
        var spill: Spill?
        var encoding = ByteBuffer()
        /// Rolled segments' descriptors, for the worker to sync and close.
        var sealed: [CInt] = []
        /// Appends since the last sync.
        var unsynced = false
        var appended = 0
        var recovered = 0
        /// Records lost to damage found while reading back (counted as dropped).
        var lostWhileReading = 0
        var lastWriteError: CInt?
        /// Spilled records a lane sends again in their old frames (its ``FrameJournal``): read back
        /// by it, so the spill reader passes them by. Sorted, disjoint.
        var claimed: [SpoolRun] = []
        /// (sequence, time) marks, one per 100 ms at most, for the oldest record's age.
        var marks: Deque<(sequence: UInt64, at: Double)> = []
    }

    /// Why an admission took fewer records than it was offered.
    package enum Refusal: Equatable {
        /// `spool.max-bytes` reached.
        case full
        /// The write failed (the disk is full, say): errno.
        case writeFailed(CInt)
    }

    /// What ``admit(_:bytes:capacity:allOrNothing:)`` did with a burst.
    package struct Admission {
        /// Sequences of the records taken (the first `run.count` offered); nil if none.
        package var run: SpoolRun?
        /// The taken records also hold room in the memory buffer; otherwise they are on disk only.
        package var inMemory = false
        /// Records not taken (the last ones offered), and why.
        package var refused = 0
        package var refusal: Refusal?
    }

    package let index: Int
    let directory: String
    private let segmentBytes: Int
    private let budget: SpoolBudget
    let state: Mutex<State>
    let clock: @Sendable () -> Double

    init(index: Int, directory: String, segmentBytes: Int, budget: SpoolBudget, clock: @escaping @Sendable () -> Double) {
        self.index = index
        self.directory = directory
        self.segmentBytes = segmentBytes
        self.budget = budget
        self.clock = clock
        self.state = Mutex(State())
    }

    // MARK: - Admission (hot path)

    /// Appends `records` (payload total `bytes`) and reserves memory for them
    /// when the window has room and nothing is spilled ahead of them.
    ///
    /// - Parameter allOrNothing: take all or none (an HTTP body, a frame: the
    ///   sender is told either way); otherwise the records that fit are taken,
    ///   in order.
    package func admit<Records: RandomAccessCollection<ByteBuffer>>(
        _ records: Records, bytes: Int, capacity: BufferCapacity, allOrNothing: Bool
    ) -> Admission {
        guard !records.isEmpty else { return Admission() }
        return state.withLock { state in
            var admission = Admission()
            // As many as fit the byte limit (all or none when asked).
            var count = records.count
            var takenDiskBytes = bytes + records.count * SpoolRecordFormat.recordHeaderBytes
            if !budget.tryReserve(takenDiskBytes) {
                admission.refusal = .full
                guard !allOrNothing else {
                    admission.refused = records.count
                    return admission
                }
                let room = budget.limit - budget.bytes
                count = 0
                takenDiskBytes = 0
                for record in records {
                    let next = SpoolRecordFormat.recordBytes(payload: record.readableBytes)
                    guard takenDiskBytes + next <= room else { break }
                    takenDiskBytes += next
                    count += 1
                }
                admission.refused = records.count - count
                guard count > 0, budget.tryReserve(takenDiskBytes) else {
                    admission.refused = records.count
                    return admission
                }
            }
            let taken = records.prefix(count)
            let first = state.nextSequence
            state.encoding.clear(minimumCapacity: takenDiskBytes)
            var sequence = first
            var payloadBytes = 0
            for record in taken {
                SpoolRecordFormat.encodeRecord(sequence: sequence, payload: record, into: &state.encoding)
                sequence += 1
                payloadBytes += record.readableBytes
            }
            guard let segment = state.segments.last, state.activeDescriptor >= 0 else {
                budget.release(takenDiskBytes)
                admission.refused = records.count
                admission.refusal = .writeFailed(EBADF)
                admission.run = nil
                return admission
            }
            let offset = segment.bytes
            if let code = Self.writeAll(state.activeDescriptor, state.encoding, at: offset) {
                // Nothing half-written stays behind: the file is cut back to its last whole record.
                _ = ftruncate(state.activeDescriptor, off_t(offset))
                budget.release(takenDiskBytes)
                state.lastWriteError = code
                admission.refused = records.count
                admission.refusal = .writeFailed(code)
                admission.run = nil
                return admission
            }
            state.lastWriteError = nil
            state.nextSequence = sequence
            state.segments[state.segments.count - 1].bytes += takenDiskBytes
            state.segments[state.segments.count - 1].end = sequence
            state.unsynced = true
            state.appended += count
            let run = SpoolRun(shard: index, first: first, count: count)
            admission.run = run
            if state.spill == nil, capacity.reserveAll(count: count, bytes: payloadBytes) {
                admission.inMemory = true
            } else if state.spill == nil {
                state.spill = Spill(sequence: first, segmentFirst: segment.first, offset: offset)
            }
            let now = clock()
            if state.marks.last.map({ now - $0.at >= 0.1 }) ?? true { state.marks.append((first, now)) }
            if state.segments[state.segments.count - 1].bytes >= segmentBytes { roll(&state) }
            return admission
        }
    }

    /// Starts a new segment at the next sequence; the old one's descriptor goes to the worker to sync and close.
    private func roll(_ state: inout State) {
        let first = state.nextSequence
        let path = Self.segmentPath(directory, first)
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            state.lastWriteError = errno
            return  // keep appending to the current one; tried again on the next burst
        }
        var header = ByteBuffer()
        SpoolRecordFormat.encodeSegmentHeader(shard: index, firstSequence: first, into: &header)
        if let code = Self.writeAll(descriptor, header, at: 0) {
            close(descriptor)
            unlink(path)
            state.lastWriteError = code
            return
        }
        budget.add(SpoolRecordFormat.segmentHeaderBytes)
        if state.activeDescriptor >= 0 { state.sealed.append(state.activeDescriptor) }
        state.activeDescriptor = descriptor
        state.segments.append(Segment(first: first, path: path, bytes: SpoolRecordFormat.segmentHeaderBytes, end: first, createdAt: clock()))
    }

    /// Opens the first active segment (at start-up, after recovery).
    func openActiveSegment() -> CInt? {
        state.withLock { state in
            roll(&state)
            return state.activeDescriptor >= 0 ? nil : (state.lastWriteError ?? EIO)
        }
    }

    // MARK: - Settlement

    /// Records of this shard that left Ferry (delivered, or dropped with a counted reason).
    func settle<Runs: Sequence<SpoolRun>>(_ runs: Runs) {
        state.withLock { state in
            for run in runs where run.shard == index { state.ledger.settle(run) }
        }
    }

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
                        result.lost += noteLost(SpoolRun(shard: index, first: spill.sequence, count: Int(sequence - spill.sequence)))
                    }
                    if isClaimed(sequence) {
                        // Sent again in its old frame by a lane: its room in memory goes back.
                        capacity.release(count: 1, bytes: payload.readableBytes)
                        result.bytes -= payload.readableBytes
                        spill.sequence = sequence + 1
                        continue
                    }
                    result.records.append(payload)
                    result.spans.append(SpoolRun(shard: index, first: sequence, count: 1))
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
                        state.ledger.settle(SpoolRun(shard: index, first: spill.sequence, count: Int(state.nextSequence - spill.sequence)))
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
                result.lost += noteLost(SpoolRun(shard: index, first: spill.sequence, count: Int(next - spill.sequence)))
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
    private func noteLost(_ run: SpoolRun) -> Int {
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

    // MARK: - Files

    func addToBudget(_ bytes: Int) { budget.add(bytes) }

    static func segmentPath(_ directory: String, _ first: UInt64) -> String {
        let hex = String(first, radix: 16)
        return "\(directory)/\(String(repeating: "0", count: max(0, 16 - hex.count)))\(hex).seg"
    }

    /// Writes all of `buffer` at `offset`, continuing partial writes. Returns errno on failure.
    static func writeAll(_ descriptor: CInt, _ buffer: ByteBuffer, at offset: Int) -> CInt? {
        buffer.withUnsafeReadableBytes { bytes -> CInt? in
            var done = 0
            while done < bytes.count {
                let result = pwrite(descriptor, bytes.baseAddress! + done, bytes.count - done, off_t(offset + done))
                if result < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                if result == 0 { return EIO }
                done += result
            }
            return nil
        }
    }
}

/// The byte bound of the whole spool (`spool.max-bytes`), shared by its shards.
final class SpoolBudget: Sendable {
    let limit: Int
    private let used = Atomic<Int>(0)

    init(limit: Int) {
        self.limit = limit
    }

    var bytes: Int { used.load(ordering: .relaxed) }

    func tryReserve(_ bytes: Int) -> Bool {
        var current = used.load(ordering: .relaxed)
        while true {
            guard current + bytes <= limit else { return false }
            let (done, original) = used.compareExchange(expected: current, desired: current + bytes, ordering: .relaxed)
            if done { return true }
            current = original
        }
    }

    func add(_ bytes: Int) { used.add(bytes, ordering: .relaxed) }
    func release(_ bytes: Int) { used.subtract(bytes, ordering: .relaxed) }
}

// MARK: - Maintenance (the spool's worker thread)

extension SpoolShard {
    /// What one round of the worker does for this shard.
    struct Maintenance {
        var watermark: UInt64
        /// The watermark as of the last sync (what a power loss keeps).
        var durableWatermark: UInt64
        /// Sync the active segment now.
        var sync: Bool
        var active: CInt
        /// One past the last sequence appended before this round.
        var appendedThrough: UInt64
        /// Rolled segments' descriptors to sync and close.
        var sealed: [CInt]
    }

    func takeMaintenance(syncing: Bool) -> Maintenance {
        state.withLock { state in
            let sync = syncing && (state.unsynced || !state.sealed.isEmpty)
            if sync { state.unsynced = false }
            defer { state.sealed.removeAll() }
            return Maintenance(
                watermark: state.ledger.watermark, durableWatermark: state.durableWatermark, sync: sync, active: state.activeDescriptor,
                appendedThrough: state.nextSequence, sealed: state.sealed)
        }
    }

    /// Deletes segments (oldest first, never the active one) whose every record is before `watermark`.
    func deleteDelivered(through watermark: UInt64, markDurable: Bool) {
        let doomed = state.withLock { state -> [Segment] in
            if markDurable { state.durableWatermark = max(state.durableWatermark, state.ledger.watermark) }
            var doomed: [Segment] = []
            while state.segments.count > 1, let oldest = state.segments.first, oldest.end <= watermark,
                state.spill.map({ $0.segmentFirst != oldest.first }) ?? true
            {
                doomed.append(state.segments.removeFirst())
            }
            while state.marks.count > 1, state.marks[1].sequence <= state.ledger.watermark { state.marks.removeFirst() }
            return doomed
        }
        for segment in doomed {
            unlink(segment.path)
            budget.release(segment.bytes)
        }
    }

    func closeFiles() {
        state.withLock { state in
            if state.activeDescriptor >= 0 { close(state.activeDescriptor) }
            state.activeDescriptor = -1
            for descriptor in state.sealed { close(descriptor) }
            state.sealed.removeAll()
        }
    }

    /// A shard's figures for status and metrics.
    package struct Figures: Sendable {
        /// Logs appended and not yet settled (on disk or in memory).
        package var undeliveredLogs: Int
        package var segments: Int
        package var bytes: Int
        /// Age in seconds of the oldest undelivered log (0 if none).
        package var oldestAgeSeconds: Double
        package var appended: Int
        package var recovered: Int
        package var settled: Int
        package var lostWhileReading: Int
        package var spilling: Bool
        package var lastWriteError: CInt?
    }

    package var figures: Figures {
        state.withLock { state in
            let undelivered = Int(state.nextSequence - state.ledger.watermark) - state.ledger.settledAhead
            var age = 0.0
            if undelivered > 0 {
                let mark = state.marks.last(where: { $0.sequence <= state.ledger.watermark })
                let segment = state.segments.first(where: { $0.end > state.ledger.watermark })
                if let at = mark?.at ?? segment?.createdAt { age = max(0, clock() - at) }
            }
            return Figures(
                undeliveredLogs: max(0, undelivered), segments: state.segments.count, bytes: state.segments.reduce(0) { $0 + $1.bytes },
                oldestAgeSeconds: age, appended: state.appended, recovered: state.recovered, settled: state.ledger.settled,
                lostWhileReading: state.lostWhileReading, spilling: state.spill != nil, lastWriteError: state.lastWriteError)
        }
    }
}
