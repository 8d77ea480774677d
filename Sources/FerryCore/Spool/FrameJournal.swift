import NIOCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The `ferry://` frames one lane has in flight, kept in the spool so that an
/// edge restarted after `kill -9` sends them again under their **first
/// identity** — the sender id and sequence number they were first sent with —
/// holding the same logs: the receiver's dedupe window then drops what it
/// already delivered, and only what it never got is new.
///
/// Each entry records its own sender id. Every lane takes a new random sender
/// id when it is made, so a restarted edge's new frames start a dedupe window
/// of their own at the receiver and never push the earlier runs' frames out of
/// theirs: after any number of restarts, a frame of any earlier run is
/// recognised (before, new frames started 2¹⁶ past the old sequences under the
/// same id, and the receiver took an old run's frames sent again as too old:
/// never acknowledged, their logs went out again after their TTL).
///
/// The lane records frames as it opens and closes them (a dictionary update
/// under a lock); the spool's thread writes the journal when it changed, every
/// round (~10 ms), into two files in turn (`frames-KEY.0`, `.1`), each a whole
/// checksummed snapshot, so a torn write leaves the other, one round older.
/// An acknowledged frame stays in the journal until the shard's progress file
/// records its logs as delivered: a crash in between sends it again, and the
/// receiver, which has it, only acknowledges it. A new frame leaves only once
/// a write holds it (``whenWritten(_:)``: the lane asks, the spool's thread is
/// woken at once, ~0.1 ms), so a restarted edge never sends a log under a new
/// identity that the receiver may already have under one the journal forgot.
///
/// ```
/// version 2:
///  0 "FERRYFJ2"  8 u64 generation  16 u32 entries
/// 20 entries: u64 sender, u32 sequence, u64 first-send ms, u32 TTL ms, u16 runs, runs × (u64 first, u32 count)
///    CRC-32C of everything before it (u32)
/// version 1 (read only, written by earlier releases; its entries belong to the spool's `sender-id`):
///  0 "FERRYFJ1"  8 u64 generation  16 u32 next sequence  20 u32 entries
/// 24 entries: u32 sequence, u64 first-send ms, u32 TTL ms, u16 runs, runs × (u64 first, u32 count)
///    CRC-32C (u32)
/// ```
package final class FrameJournal: Sendable {
    /// The identity a frame was first sent under; a frame sent again keeps it.
    package struct Identity: Hashable, Comparable, Sendable, CustomStringConvertible {
        package var sender: UInt64
        package var sequence: UInt32

        package init(sender: UInt64, sequence: UInt32) {
            self.sender = sender
            self.sequence = sequence
        }

        package static func < (lhs: Identity, rhs: Identity) -> Bool {
            (lhs.sender, lhs.sequence) < (rhs.sender, rhs.sequence)
        }

        package var description: String { "\(String(sender, radix: 16))/\(sequence)" }
    }

    /// A frame in flight.
    package struct Entry: Sendable, Equatable {
        package var sentAtMilliseconds: UInt64
        package var ttlMilliseconds: UInt32
        package var runs: [SpoolRun]
        /// Acknowledged, not yet covered by the progress file (in memory only).
        package var acknowledged = false

        package init(sentAtMilliseconds: UInt64, ttlMilliseconds: UInt32, runs: [SpoolRun]) {
            self.sentAtMilliseconds = sentAtMilliseconds
            self.ttlMilliseconds = ttlMilliseconds
            self.runs = runs
        }

        /// Milliseconds of its time-to-live left at wall-clock `now`, never more than the whole
        /// TTL: a send time ahead of the clock (a clock set back, a crafted journal) would
        /// otherwise keep it for years, or overflow a deadline. 0 once past.
        package func remainingMilliseconds(at now: UInt64) -> UInt64 {
            guard now > sentAtMilliseconds else { return UInt64(ttlMilliseconds) }
            let elapsed = now - sentAtMilliseconds
            return elapsed >= UInt64(ttlMilliseconds) ? 0 : UInt64(ttlMilliseconds) - elapsed
        }
    }

    /// What an earlier run left.
    package struct Snapshot: Sendable, Equatable {
        package var entries: [Identity: Entry]

        package init(entries: [Identity: Entry]) {
            self.entries = entries
        }
    }

    private struct State {
        var entries: [Identity: Entry] = [:]
        /// Called once the next write holds what was recorded before they were added.
        var waiting: [@Sendable () -> Void] = []
        var dirty = false
        var generation: UInt64 = 0
    }

    static let magic: [UInt8] = Array("FERRYFJ2".utf8)
    static let magicVersion1: [UInt8] = Array("FERRYFJ1".utf8)
    /// Largest snapshot read back (bounded: a window of frames).
    static let maximumBytes = 4 << 20

    let shard: Int
    /// The spool the shard belongs to (``SpoolRun/spool``).
    let spoolID: Int
    private let paths: [String]
    private let state = Mutex(State())
    /// Wakes the spool's thread for a write now (set by the spool).
    private let wake: @Sendable () -> Void
    /// Tells the spool's thread a write is due soon (set by the spool).
    private let changed: @Sendable () -> Void

    /// - Parameter key: names the upstream (a hash of its URL), so a journal is only read back for the same one.
    init(
        directory: String, shard: Int, spoolID: Int = 0, key: String, wake: @escaping @Sendable () -> Void = {},
        changed: @escaping @Sendable () -> Void = {}
    ) {
        self.wake = wake
        self.changed = changed
        self.shard = shard
        self.spoolID = spoolID
        self.paths = ["\(directory)/frames-\(key).0", "\(directory)/frames-\(key).1"]
    }

    /// Reads the newest good snapshot, if any.
    ///
    /// - Parameter legacySender: the sender id of a version 1 journal's entries (the spool's `sender-id` with the loop in the low byte).
    package func load(legacySender: UInt64 = 0) -> Snapshot? {
        var best: (generation: UInt64, snapshot: Snapshot)?
        for path in paths {
            guard let (generation, snapshot) = Self.read(path, legacySender: legacySender), generation >= best?.generation ?? 0 else {
                continue
            }
            best = (generation, snapshot)
        }
        guard var snapshot = best?.snapshot else { return nil }
        for (identity, entry) in snapshot.entries {
            snapshot.entries[identity]?.runs = entry.runs.map { SpoolRun(spool: spoolID, shard: shard, first: $0.first, count: $0.count) }
        }
        // What was read stays in every write until the lane decides about each
        // frame (sends it again, or ``closed(_:)``): a run killed before it has
        // decided about all of them must leave them to the next.
        state.withLock { state in
            state.generation = max(state.generation, best?.generation ?? 0)
            for (identity, entry) in snapshot.entries where state.entries[identity] == nil { state.entries[identity] = entry }
        }
        return snapshot
    }

    // MARK: - The lane's side (its loop)

    func opened(_ identity: Identity, entry: Entry) {
        state.withLock { state in
            state.entries[identity] = entry
            state.dirty = true
        }
        changed()
    }

    /// Runs `done` (on the spool's thread) once a write holds every frame opened so far.
    func whenWritten(_ done: @escaping @Sendable () -> Void) {
        state.withLock { $0.waiting.append(done) }
        wake()
    }

    /// A frame given up (its logs go out in new frames) or settled otherwise: forgotten now.
    func closed(_ identity: Identity) {
        state.withLock { state in
            if state.entries.removeValue(forKey: identity) != nil { state.dirty = true }
        }
        changed()
    }

    /// A frame acknowledged: forgotten once the progress file covers its logs (see ``writeIfChanged(recordedWatermark:)``).
    func acknowledged(_ identity: Identity) {
        state.withLock { state in
            guard state.entries[identity] != nil else { return }
            state.entries[identity]?.acknowledged = true
            state.dirty = true
        }
        changed()
    }

    // MARK: - The spool thread's side

    /// Writes the snapshot if it changed since the last write, first
    /// forgetting acknowledged frames whose logs are all before the watermark
    /// the progress file now holds.
    func writeIfChanged(recordedWatermark: UInt64) {
        let (taken, waiting) = state.withLock { state -> ((UInt64, [Identity: Entry])?, [@Sendable () -> Void]) in
            for (identity, entry) in state.entries where entry.acknowledged && entry.runs.allSatisfy({ $0.end <= recordedWatermark }) {
                state.entries.removeValue(forKey: identity)
                state.dirty = true
            }
            let waiting = state.waiting
            state.waiting.removeAll()
            guard state.dirty else { return (nil, waiting) }
            state.dirty = false
            state.generation += 1
            return ((state.generation, state.entries), waiting)
        }
        // Run even if the write failed (a full disk): the frames go out, at worst a duplicate after a crash, never held.
        defer { for done in waiting { done() } }
        guard let (generation, entries) = taken else { return }
        let buffer = Self.encode(generation: generation, entries: entries)
        let path = paths[Int(generation % 2)]
        let descriptor = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0o600)  // a FIFO in its place: no write, no wait
        guard descriptor >= 0 else { return }
        defer { close(descriptor) }
        if SpoolShard.writeAll(descriptor, buffer, at: 0) == nil { _ = ftruncate(descriptor, off_t(buffer.readableBytes)) }
    }

    /// A version 2 snapshot's bytes.
    package static func encode(generation: UInt64, entries: [Identity: Entry]) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeBytes(Self.magic)
        buffer.writeInteger(generation)
        buffer.writeInteger(UInt32(entries.count))
        for (identity, entry) in entries.sorted(by: { $0.key < $1.key }) {
            buffer.writeInteger(identity.sender)
            buffer.writeInteger(identity.sequence)
            buffer.writeInteger(entry.sentAtMilliseconds)
            buffer.writeInteger(entry.ttlMilliseconds)
            buffer.writeInteger(UInt16(clamping: entry.runs.count))
            for run in entry.runs.prefix(Int(UInt16.max)) {
                buffer.writeInteger(run.first)
                buffer.writeInteger(UInt32(clamping: run.count))
            }
        }
        let crc = buffer.withUnsafeReadableBytes { CRC32C.checksum($0) }
        buffer.writeInteger(crc)
        return buffer
    }

    /// One file's snapshot, if it is whole and checksummed; any byte pattern is survivable.
    static func read(_ path: String, legacySender: UInt64) -> (UInt64, Snapshot)? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)  // a FIFO in its place reads as nothing, at once
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var buffer = ByteBuffer()
        let count = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: maximumBytes) { bytes in
            max(0, pread(descriptor, bytes.baseAddress, maximumBytes, 0))
        }
        return decode(buffer.getSlice(at: buffer.readerIndex, length: count)!, legacySender: legacySender)
    }

    /// A snapshot of either version, if whole and checksummed (`legacySender`: whose version 1 entries are).
    package static func decode(_ bytes: ByteBuffer, legacySender: UInt64 = 0) -> (UInt64, Snapshot)? {
        var buffer = bytes
        guard buffer.readableBytes >= 24 else { return nil }
        let body = buffer.readableBytes - 4
        let crc = buffer.withUnsafeReadableBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<body])) }
        guard buffer.getInteger(at: buffer.readerIndex + body, as: UInt32.self) == crc else { return nil }
        buffer.moveWriterIndex(to: buffer.writerIndex - 4)
        let version1: Bool
        switch buffer.readBytes(length: 8) {
        case magic?: version1 = false
        case magicVersion1?: version1 = true
        default: return nil
        }
        guard let generation = buffer.readInteger(as: UInt64.self) else { return nil }
        if version1 { _ = buffer.readInteger(as: UInt32.self) }  // its next sequence: each lane now has a sender id of its own
        guard let count = buffer.readInteger(as: UInt32.self), count <= 1 << 16 else { return nil }
        var entries: [Identity: Entry] = [:]
        for _ in 0..<count {
            let sender = version1 ? legacySender : buffer.readInteger(as: UInt64.self)
            guard let sender, let sequence = buffer.readInteger(as: UInt32.self), let sentAt = buffer.readInteger(as: UInt64.self),
                let ttl = buffer.readInteger(as: UInt32.self), let runCount = buffer.readInteger(as: UInt16.self)
            else { return nil }
            var runs: [SpoolRun] = []
            for _ in 0..<runCount {
                guard let first = buffer.readInteger(as: UInt64.self), let length = buffer.readInteger(as: UInt32.self) else { return nil }
                // A run of spool sequences ends where a sequence can: one past UInt64.max is not a run Ferry wrote.
                guard !first.addingReportingOverflow(UInt64(length)).overflow else { return nil }
                runs.append(SpoolRun(first: first, count: Int(length)))
            }
            entries[Identity(sender: sender, sequence: sequence)] = Entry(sentAtMilliseconds: sentAt, ttlMilliseconds: ttl, runs: runs)
        }
        return (generation, Snapshot(entries: entries))
    }
}
