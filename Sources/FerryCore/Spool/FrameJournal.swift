import NIOCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The `ferry://` frames one lane has in flight, kept in the spool so that an
/// edge restarted after `kill -9` sends them again with the **same** sender id
/// and sequence numbers, holding the same logs: the receiver's dedupe window
/// then drops what it already delivered, and only what it never got is new.
///
/// The lane records frames as it opens and closes them (a dictionary update
/// under a lock); the spool's thread writes the journal when it changed, every
/// round (~10 ms), into two files in turn (`frames-KEY.0`, `.1`), each a whole
/// checksummed snapshot, so a torn write leaves the other, one round older.
/// An acknowledged frame stays in the journal until the shard's progress file
/// records its logs as delivered: a crash in between sends it again, and the
/// receiver, which has it, only acknowledges it. A frame opened after the last
/// write is simply sent again as new (a duplicate, never a loss). New frames after a restart start 2¹⁶ sequence numbers past
/// the last recorded one: the old run cannot have used that many in one round.
///
/// ```
///  0 "FERRYFJ1"  8 u64 generation  16 u32 next sequence  20 u32 entries
/// 24 entries: u32 sequence, u64 first-send ms, u32 TTL ms, u16 runs, runs × (u64 first, u32 count)
///    CRC-32C of everything before it (u32)
/// ```
package final class FrameJournal: Sendable {
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
    }

    /// What an earlier run left.
    package struct Snapshot: Sendable, Equatable {
        package var nextSequence: UInt32
        package var entries: [UInt32: Entry]
    }

    private struct State {
        var entries: [UInt32: Entry] = [:]
        var nextSequence: UInt32 = 0
        var dirty = false
        var generation: UInt64 = 0
    }

    static let magic: [UInt8] = Array("FERRYFJ1".utf8)
    /// Largest snapshot read back (bounded: a window of frames).
    static let maximumBytes = 4 << 20
    /// How far past the last recorded sequence a restarted lane starts its new frames.
    package static let restartGap: UInt32 = 1 << 16

    let shard: Int
    /// The spool the shard belongs to (``SpoolRun/spool``).
    let spoolID: Int
    private let paths: [String]
    private let state = Mutex(State())

    /// - Parameter key: names the upstream (a hash of its URL), so a journal is only read back for the same one.
    init(directory: String, shard: Int, spoolID: Int = 0, key: String) {
        self.shard = shard
        self.spoolID = spoolID
        self.paths = ["\(directory)/frames-\(key).0", "\(directory)/frames-\(key).1"]
    }

    /// Reads the newest good snapshot, if any.
    package func load() -> Snapshot? {
        var best: (generation: UInt64, snapshot: Snapshot)?
        for path in paths {
            guard let (generation, snapshot) = Self.read(path), generation >= best?.generation ?? 0 else { continue }
            best = (generation, snapshot)
        }
        guard var snapshot = best?.snapshot else { return nil }
        state.withLock { $0.generation = best?.generation ?? 0 }
        for (sequence, entry) in snapshot.entries {
            snapshot.entries[sequence]?.runs = entry.runs.map { SpoolRun(spool: spoolID, shard: shard, first: $0.first, count: $0.count) }
        }
        return snapshot
    }

    // MARK: - The lane's side (its loop)

    /// The lane's first new sequence (written with the next snapshot, so a second crash jumps past it too).
    func begin(next: UInt32) {
        state.withLock { state in
            state.nextSequence = next
            state.dirty = true
        }
    }

    func opened(_ sequence: UInt32, entry: Entry, next: UInt32) {
        state.withLock { state in
            state.entries[sequence] = entry
            state.nextSequence = next
            state.dirty = true
        }
    }

    /// A frame given up (its logs go out in new frames) or settled otherwise: forgotten now.
    func closed(_ sequence: UInt32) {
        state.withLock { state in
            if state.entries.removeValue(forKey: sequence) != nil { state.dirty = true }
        }
    }

    /// A frame acknowledged: forgotten once the progress file covers its logs (see ``writeIfChanged(recordedWatermark:)``).
    func acknowledged(_ sequence: UInt32) {
        state.withLock { state in
            guard state.entries[sequence] != nil else { return }
            state.entries[sequence]?.acknowledged = true
            state.dirty = true
        }
    }

    // MARK: - The spool thread's side

    /// Writes the snapshot if it changed since the last write, first
    /// forgetting acknowledged frames whose logs are all before the watermark
    /// the progress file now holds.
    func writeIfChanged(recordedWatermark: UInt64) {
        let taken = state.withLock { state -> (UInt64, UInt32, [UInt32: Entry])? in
            for (sequence, entry) in state.entries where entry.acknowledged && entry.runs.allSatisfy({ $0.end <= recordedWatermark }) {
                state.entries.removeValue(forKey: sequence)
                state.dirty = true
            }
            guard state.dirty else { return nil }
            state.dirty = false
            state.generation += 1
            return (state.generation, state.nextSequence, state.entries)
        }
        guard let (generation, next, entries) = taken else { return }
        var buffer = ByteBuffer()
        buffer.writeBytes(Self.magic)
        buffer.writeInteger(generation)
        buffer.writeInteger(next)
        buffer.writeInteger(UInt32(entries.count))
        for (sequence, entry) in entries.sorted(by: { $0.key < $1.key }) {
            buffer.writeInteger(sequence)
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
        let path = paths[Int(generation % 2)]
        let descriptor = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { return }
        defer { close(descriptor) }
        if SpoolShard.writeAll(descriptor, buffer, at: 0) == nil { _ = ftruncate(descriptor, off_t(buffer.readableBytes)) }
    }

    /// One file's snapshot, if it is whole and checksummed; any byte pattern is survivable.
    static func read(_ path: String) -> (UInt64, Snapshot)? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var buffer = ByteBuffer()
        let count = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: maximumBytes) { bytes in
            max(0, pread(descriptor, bytes.baseAddress, maximumBytes, 0))
        }
        return decode(buffer.getSlice(at: buffer.readerIndex, length: count)!)
    }

    package static func decode(_ bytes: ByteBuffer) -> (UInt64, Snapshot)? {
        var buffer = bytes
        guard buffer.readableBytes >= 28 else { return nil }
        let body = buffer.readableBytes - 4
        let crc = buffer.withUnsafeReadableBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<body])) }
        guard buffer.getInteger(at: buffer.readerIndex + body, as: UInt32.self) == crc else { return nil }
        guard buffer.readBytes(length: 8) == magic, let generation = buffer.readInteger(as: UInt64.self),
            let next = buffer.readInteger(as: UInt32.self), let count = buffer.readInteger(as: UInt32.self), count <= 1 << 16
        else { return nil }
        var entries: [UInt32: Entry] = [:]
        for _ in 0..<count {
            guard let sequence = buffer.readInteger(as: UInt32.self), let sentAt = buffer.readInteger(as: UInt64.self),
                let ttl = buffer.readInteger(as: UInt32.self), let runCount = buffer.readInteger(as: UInt16.self)
            else { return nil }
            var runs: [SpoolRun] = []
            for _ in 0..<runCount {
                guard let first = buffer.readInteger(as: UInt64.self), let length = buffer.readInteger(as: UInt32.self) else { return nil }
                runs.append(SpoolRun(first: first, count: Int(length)))
            }
            entries[sequence] = Entry(sentAtMilliseconds: sentAt, ttlMilliseconds: ttl, runs: runs)
        }
        return (generation, Snapshot(nextSequence: next, entries: entries))
    }
}
