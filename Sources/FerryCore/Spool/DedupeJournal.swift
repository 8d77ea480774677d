import NIOCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// One loop's `ferry://` dedupe windows (``SenderWindows``), kept in the spool
/// so that a receiver restarted after `kill -9` still recognises the frames it
/// delivered before: an edge that never got their acks (it died too, or they
/// were lost) sends them again, and they are acknowledged, not delivered twice.
///
/// The loop offers a snapshot at most every ``interval`` while frames arrive
/// (``offer(_:)``); the spool's thread takes it at the start of a round and
/// writes it at the end, after the round's sync, into two files in turn
/// (`dedupe.0`, `.1`), each whole and checksummed: a torn write leaves the
/// other, one snapshot older. So a crash forgets at most the frames of the last
/// interval or two, and under `spool.fsync: always` no snapshot names a frame
/// whose logs a sync does not cover yet. At start every loop reads every
/// shard's newest snapshot (the kernel may hand a sender to another loop).
///
/// ```
///  0 "FERRYDD1"  8 u64 generation  16 u64 evicted horizon  24 u32 senders
/// 28 senders, least recently used first: u64 sender, u64 newest first-send ms, u8 has-highest, u32 highest, 16 × u64 bitmap
///    CRC-32C of everything before it (u32)
/// ```
final class DedupeJournal: Sendable {
    static let magic: [UInt8] = Array("FERRYDD1".utf8)
    static let headerBytes = 28
    static let senderBytes = 8 + 8 + 1 + 4 + DedupeWindow.size / 8
    /// Largest snapshot read back: a full table of one loop.
    static let maximumBytes = headerBytes + FrameReceiver.maximumSenders * senderBytes + 4
    /// How often a loop offers a snapshot while frames arrive.
    static let interval = TimeAmount.milliseconds(10)

    private let paths: [String]
    private struct State {
        var pending: SenderWindows?
        var generation: UInt64 = 0
    }
    private let state = Mutex(State())
    /// Tells the spool's worker a snapshot waits.
    private let changed: @Sendable () -> Void

    init(directory: String, changed: @escaping @Sendable () -> Void = {}) {
        paths = ["\(directory)/dedupe.0", "\(directory)/dedupe.1"]
        self.changed = changed
    }

    // MARK: - The loop's side

    /// Replaces the snapshot waiting to be written (a copy-on-write value: cheap for the loop).
    func offer(_ windows: SenderWindows) {
        state.withLock { $0.pending = windows }
        changed()
    }

    // MARK: - The spool thread's side

    /// The snapshot offered since the last call, taken before the round syncs.
    func take() -> SenderWindows? {
        state.withLock { state in
            defer { state.pending = nil }
            return state.pending
        }
    }

    /// Writes a taken snapshot into the older file.
    func write(_ windows: SenderWindows) {
        let generation = state.withLock { state -> UInt64 in
            state.generation += 1
            return state.generation
        }
        let snapshot = Self.encode(windows, generation: generation)
        let descriptor = open(paths[Int(generation % 2)], O_WRONLY | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0o600)
        guard descriptor >= 0 else { return }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG else { return }
        if SpoolShard.writeAll(descriptor, snapshot, at: 0) == nil { _ = ftruncate(descriptor, off_t(snapshot.readableBytes)) }
    }

    /// Reads the newest good snapshot in `directory` into `windows`; its generation (0 if none).
    @discardableResult
    static func load(directory: String, into windows: inout SenderWindows) -> UInt64 {
        var best: (generation: UInt64, bytes: ByteBuffer)?
        for path in ["\(directory)/dedupe.0", "\(directory)/dedupe.1"] {
            guard let bytes = read(path), let generation = validGeneration(bytes), generation >= best?.generation ?? 0 else { continue }
            best = (generation, bytes)
        }
        guard let best, decode(best.bytes, into: &windows) else { return 0 }
        return best.generation
    }

    /// Goes on numbering from what was read, so the next write replaces the older file.
    func resume(after generation: UInt64) {
        state.withLock { $0.generation = max($0.generation, generation) }
    }

    // MARK: - Format

    static func encode(_ windows: SenderWindows, generation: UInt64) -> ByteBuffer {
        let saved = windows.saved
        var buffer = ByteBuffer()
        buffer.reserveCapacity(headerBytes + saved.count * senderBytes + 4)
        buffer.writeBytes(magic)
        buffer.writeInteger(generation)
        buffer.writeInteger(windows.evictedHorizon)
        buffer.writeInteger(UInt32(saved.count))
        for (sender, window, newestSentAt) in saved {
            let (highest, bits) = window.saved
            buffer.writeInteger(sender)
            buffer.writeInteger(newestSentAt)
            buffer.writeInteger(UInt8(highest == nil ? 0 : 1))
            buffer.writeInteger(highest ?? 0)
            for word in bits { buffer.writeInteger(word) }
        }
        let crc = buffer.withUnsafeReadableBytes { CRC32C.checksum($0) }
        buffer.writeInteger(crc)
        return buffer
    }

    /// The generation of a whole, checksummed snapshot; nil for anything else.
    static func validGeneration(_ bytes: ByteBuffer) -> UInt64? {
        guard bytes.readableBytes >= headerBytes + 4, bytes.readableBytes <= maximumBytes else { return nil }
        let body = bytes.readableBytes - 4
        let crc = bytes.withUnsafeReadableBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<body])) }
        guard bytes.getInteger(at: bytes.readerIndex + body, as: UInt32.self) == crc,
            bytes.getBytes(at: bytes.readerIndex, length: 8) == magic,
            let count = bytes.getInteger(at: bytes.readerIndex + 24, as: UInt32.self),
            headerBytes + Int(count) * senderBytes == body
        else { return nil }
        return bytes.getInteger(at: bytes.readerIndex + 8, as: UInt64.self)
    }

    /// Restores a snapshot into `windows` (merged with what they hold); false, and nothing restored, if it is not valid.
    static func decode(_ bytes: ByteBuffer, into windows: inout SenderWindows) -> Bool {
        guard validGeneration(bytes) != nil else { return false }
        var buffer = bytes
        buffer.moveReaderIndex(forwardBy: 16)
        guard let horizon = buffer.readInteger(as: UInt64.self), let count = buffer.readInteger(as: UInt32.self) else { return false }
        var restored: [(UInt64, DedupeWindow, UInt64)] = []
        for _ in 0..<count {
            guard let sender = buffer.readInteger(as: UInt64.self), let newest = buffer.readInteger(as: UInt64.self),
                let hasHighest = buffer.readInteger(as: UInt8.self), hasHighest <= 1, let highest = buffer.readInteger(as: UInt32.self)
            else { return false }
            var bits: [UInt64] = []
            for _ in 0..<(DedupeWindow.size / 64) {
                guard let word = buffer.readInteger(as: UInt64.self) else { return false }
                bits.append(word)
            }
            guard let window = DedupeWindow(highest: hasHighest == 1 ? highest : nil, bits: bits) else { return false }
            restored.append((sender, window, newest))
        }
        windows.restore(evictedHorizon: horizon)
        for (sender, window, newest) in restored { windows.restore(sender: sender, window: window, newestSentAt: newest) }
        return true
    }

    private static func read(_ path: String) -> ByteBuffer? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG else { return nil }
        var buffer = ByteBuffer()
        let count = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: maximumBytes + 1) { bytes in
            max(0, pread(descriptor, bytes.baseAddress, maximumBytes + 1, 0))
        }
        return buffer.getSlice(at: buffer.readerIndex, length: count)
    }
}
