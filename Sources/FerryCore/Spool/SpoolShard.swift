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
        /// A record's (sequence, offset) about every ``indexStride`` bytes, in order:
        /// where a read of records given back to the disk starts instead of the file's head.
        var index: [(sequence: UInt64, offset: Int)] = []

        /// Where to start reading for `sequence`: the last indexed record at or before it.
        func readStart(for sequence: UInt64) -> Int {
            var low = 0
            var high = index.count
            while low < high {
                let middle = (low + high) / 2
                if index[middle].sequence <= sequence { low = middle + 1 } else { high = middle }
            }
            return low > 0 ? index[low - 1].offset : SpoolRecordFormat.segmentHeaderBytes
        }
    }

    /// Bytes between two entries of a segment's ``Segment/index``.
    static let indexStride = 64 << 10

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
        /// Records read into memory once and given back to the disk (their route had
        /// more in memory than its share): read back before the spill cursor's. Sorted, disjoint.
        var released: [SpoolRun] = []
        /// (sequence, time) marks, one per 100 ms at most, for the oldest record's age.
        var marks: Deque<(sequence: UInt64, at: Double)> = []
        /// What a route's spool at its cap evicted, past the watermark (also on disk): no damage after a restart.
        var evicted = EvictedRuns()
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
        /// Records that waited on disk only and were dropped to make room
        /// (a route's spool past its cap drops its oldest: `route_overflow`).
        package var evicted = 0
    }

    package let index: Int
    /// The spool this shard belongs to (``SpoolRun/spool``).
    package let spoolID: Int
    /// Past the byte limit, drop the oldest records that wait on disk only
    /// rather than refuse new ones (a route's own spool: its backlog cap).
    let evictsOldest: Bool
    let directory: String
    private let segmentBytes: Int
    let budget: SpoolBudget
    let state: Mutex<State>
    let clock: @Sendable () -> Double
    /// Tells the spool's worker that the state changed (an append, a settlement): a round is due soon.
    let changed: @Sendable () -> Void

    init(
        index: Int, spoolID: Int = 0, evictsOldest: Bool = false, directory: String, segmentBytes: Int, budget: SpoolBudget,
        clock: @escaping @Sendable () -> Double, changed: @escaping @Sendable () -> Void = {}
    ) {
        self.index = index
        self.changed = changed
        self.spoolID = spoolID
        self.evictsOldest = evictsOldest
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
    /// - Parameter memory: whether the records may take room in the memory
    ///   buffer at all (false: on disk only, as when the buffer is full).
    // Exported for arrays, so a caller in another module (the benchmarks) runs the specialized code, as FerryCore does.
    @_specialize(exported:true,where Records == [ByteBuffer])
    package func admit<Records: RandomAccessCollection<ByteBuffer>>(
        _ records: Records, bytes: Int, capacity: BufferCapacity, allOrNothing: Bool, memory: Bool = true
    ) -> Admission {
        guard !records.isEmpty else { return Admission() }
        defer { changed() }
        return state.withLock { state in
            var admission = Admission()
            // As many as fit the byte limit (all or none when asked).
            var count = records.count
            var takenDiskBytes = bytes + records.count * SpoolRecordFormat.recordHeaderBytes
            if evictsOldest, budget.room < takenDiskBytes {
                admission.evicted = evictSpilled(&state, toFit: takenDiskBytes)
            }
            if !budget.tryReserve(takenDiskBytes) {
                admission.refusal = .full
                guard !allOrNothing else {
                    admission.refused = records.count
                    return admission
                }
                let room = budget.room
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
            // Scalars only: a copy of the segment would share its index, and the append below would copy it.
            guard let segment = state.segments.last.map({ (first: $0.first, bytes: $0.bytes, indexed: $0.index.last?.offset ?? 0) }),
                state.activeDescriptor >= 0
            else {
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
            if offset - segment.indexed >= Self.indexStride {
                state.segments[state.segments.count - 1].index.append((first, offset))
            }
            state.segments[state.segments.count - 1].bytes += takenDiskBytes
            state.segments[state.segments.count - 1].end = sequence
            state.unsynced = true
            state.appended += count
            let run = SpoolRun(spool: spoolID, shard: index, first: first, count: count)
            admission.run = run
            if state.spill == nil, state.released.isEmpty, memory, capacity.reserveAll(count: count, bytes: payloadBytes) {
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
    func roll(_ state: inout State) {
        let first = state.nextSequence
        let path = Self.segmentPath(directory, first)
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NONBLOCK, 0o600)  // a FIFO in the way fails, never waits
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
    package func settle<Runs: Sequence<SpoolRun>>(_ runs: Runs) {
        defer { changed() }
        state.withLock { state in
            for run in runs where run.shard == index && run.spool == spoolID { state.ledger.settle(run) }
        }
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

/// The byte bound of a spool, shared by its shards: `spool.max-bytes`, or a
/// route's `max-backlog-bytes` within it (then `parent` is the whole spool's).
package final class SpoolBudget: Sendable {
    let limit: Int
    let parent: SpoolBudget?
    private let used = Atomic<Int>(0)

    init(limit: Int, parent: SpoolBudget? = nil) {
        self.limit = limit
        self.parent = parent
    }

    var bytes: Int { used.load(ordering: .relaxed) }

    /// Bytes that would still fit, here and in the parent.
    var room: Int { min(limit - bytes, parent?.room ?? Int.max) }

    func tryReserve(_ bytes: Int) -> Bool {
        var current = used.load(ordering: .relaxed)
        while true {
            guard current + bytes <= limit else { return false }
            let (done, original) = used.compareExchange(expected: current, desired: current + bytes, ordering: .relaxed)
            if done { break }
            current = original
        }
        if let parent, !parent.tryReserve(bytes) {
            used.subtract(bytes, ordering: .relaxed)
            return false
        }
        return true
    }

    func add(_ bytes: Int) {
        used.add(bytes, ordering: .relaxed)
        parent?.add(bytes)
    }

    func release(_ bytes: Int) {
        used.subtract(bytes, ordering: .relaxed)
        parent?.release(bytes)
    }
}
