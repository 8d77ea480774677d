import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// The runs a route's spool at its cap evicted (counted `route_overflow` as
/// they went) that the watermark has not passed yet, kept in a small
/// checksummed file beside the segments. After a restart, recovery and the
/// read-back know the gap the deleted segments leave is no damage: it is not
/// counted a second time, as `spool_corrupt`.
///
/// Written whole, through a temporary file and a rename, before the segment is
/// deleted (an eviction drops a whole segment: rare). A missing or damaged
/// file means no runs: at worst a gap is counted twice, never a log lost.
///
/// ```
///  0 "FERRYEV1"  8 u32 runs  12 runs × (u64 first, u64 end)  CRC-32C of all before it (u32)
/// ```
struct EvictedRuns: Equatable {
    static let fileName = "evicted"
    static let magic: [UInt8] = Array("FERRYEV1".utf8)
    /// Runs kept at most (the oldest are forgotten first).
    static let maximumRuns = 4_096

    /// Sorted, disjoint, none adjacent: `first..<end`.
    private(set) var runs: [Range<UInt64>] = []

    /// Adds `first..<end`, merging it with the runs it touches.
    mutating func add(_ run: Range<UInt64>) {
        guard !run.isEmpty else { return }
        var merged = run
        runs.removeAll { existing in
            guard existing.upperBound >= merged.lowerBound, existing.lowerBound <= merged.upperBound else { return false }
            merged = min(existing.lowerBound, merged.lowerBound)..<max(existing.upperBound, merged.upperBound)
            return true
        }
        runs.insert(merged, at: runs.firstIndex { $0.lowerBound > merged.lowerBound } ?? runs.endIndex)
        if runs.count > Self.maximumRuns { runs.removeFirst(runs.count - Self.maximumRuns) }
    }

    /// Forgets what lies before `watermark` (settled: never read again).
    mutating func forget(below watermark: UInt64) {
        runs = runs.compactMap { run in
            run.upperBound <= watermark ? nil : max(run.lowerBound, watermark)..<run.upperBound
        }
    }

    /// How many sequences of `range` were evicted.
    func overlap(_ range: Range<UInt64>) -> Int {
        runs.reduce(0) { total, run in
            let low = max(run.lowerBound, range.lowerBound)
            let high = min(run.upperBound, range.upperBound)
            return total + (high > low ? Int(high - low) : 0)
        }
    }

    // MARK: - The file

    func encode() -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeBytes(Self.magic)
        buffer.writeInteger(UInt32(runs.count))
        for run in runs {
            buffer.writeInteger(run.lowerBound)
            buffer.writeInteger(run.upperBound)
        }
        let crc = buffer.withUnsafeReadableBytes { CRC32C.checksum($0) }
        buffer.writeInteger(crc)
        return buffer
    }

    /// The runs in `bytes`, if whole and checksummed; any byte pattern is survivable.
    static func decode(_ bytes: ByteBuffer) -> EvictedRuns? {
        var buffer = bytes
        guard buffer.readableBytes >= 16, buffer.readableBytes <= 16 + 16 * maximumRuns else { return nil }
        let body = buffer.readableBytes - 4
        let crc = buffer.withUnsafeReadableBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<body])) }
        guard buffer.getInteger(at: buffer.readerIndex + body, as: UInt32.self) == crc, buffer.readBytes(length: 8) == magic,
            let count = buffer.readInteger(as: UInt32.self), Int(count) * 16 == body - 12
        else { return nil }
        var result = EvictedRuns()
        for _ in 0..<count {
            // As Ferry writes them: in order, apart, and below the sequence limit (so a count of them fits an Int).
            guard let first = buffer.readInteger(as: UInt64.self), let end = buffer.readInteger(as: UInt64.self), first < end,
                end <= SpoolRecordFormat.sequenceLimit, first > result.runs.last?.upperBound ?? 0 || result.runs.isEmpty
            else { return nil }
            result.runs.append(first..<end)
        }
        return result
    }

    /// The runs recorded in `directory` (none when the file is missing or damaged).
    static func read(directory: String) -> EvictedRuns {
        // Non-blocking, and regular files only: a FIFO put in its place must not hold the start.
        let descriptor = open("\(directory)/\(fileName)", O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard descriptor >= 0 else { return EvictedRuns() }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG else { return EvictedRuns() }
        let limit = 16 + 16 * maximumRuns + 1
        var buffer = ByteBuffer()
        let count = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: limit) { bytes in
            max(0, pread(descriptor, bytes.baseAddress, limit, 0))
        }
        return decode(buffer.getSlice(at: buffer.readerIndex, length: count)!) ?? EvictedRuns()
    }

    /// Replaces the file in `directory` (removes it when there are no runs); false if the write failed.
    @discardableResult
    func write(directory: String) -> Bool {
        let path = "\(directory)/\(Self.fileName)"
        guard !runs.isEmpty else { return unlink(path) == 0 || errno == ENOENT }
        let temporary = path + ".new"
        _ = unlink(temporary)  // whatever was left there (a FIFO would hold the write)
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NONBLOCK, 0o600)
        guard descriptor >= 0 else { return false }
        let failed = SpoolShard.writeAll(descriptor, encode(), at: 0) != nil
        close(descriptor)
        return !failed && rename(temporary, path) == 0
    }
}
