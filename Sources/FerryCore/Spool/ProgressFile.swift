#if canImport(Glibc)
    import Glibc
#endif

/// A consumer's watermark on disk, in two checksummed slots written in turn.
///
/// A write replaces the older slot with one `pwrite` of 32 bytes; a torn or
/// damaged slot fails its checksum and the other, one write older, is used.
/// No rename, no fsync of its own: the spool's sync policy covers it with the
/// segments. Read at start; a missing or unreadable file means "from the oldest
/// record on disk" (duplicates, never loss).
///
/// ```
/// slot (32 bytes, at 0 and at 32)
///  0  "FERRYPRG"   8  u64 generation   16  u64 watermark   24  u32 reserved   28  CRC-32C of 0..<28
/// ```
package struct ProgressFile {
    static let magic: [UInt8] = Array("FERRYPRG".utf8)
    static let slotBytes = 32

    package let path: String
    private var descriptor: CInt = -1
    private var generation: UInt64 = 0
    /// The watermark last written (nil until the first write).
    package private(set) var written: UInt64?

    /// What the file said at start.
    package enum Reading: Equatable {
        case missing
        /// Neither slot passed its checksum.
        case unreadable
        case watermark(UInt64)
    }

    package init(path: String) {
        self.path = path
    }

    /// Reads the newest good slot.
    package mutating func read() -> Reading {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)  // a FIFO put in its place must not hold the start up
        guard fd >= 0 else { return .missing }
        defer { _ = Glibc.close(fd) }
        var bytes = [UInt8](repeating: 0, count: 2 * Self.slotBytes)
        let count = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return .unreadable }
        var best: (generation: UInt64, watermark: UInt64)?
        bytes.withUnsafeBytes { all in
            for slot in 0..<2 where (slot + 1) * Self.slotBytes <= count {
                if let value = Self.decode(UnsafeRawBufferPointer(rebasing: all[(slot * Self.slotBytes)..<((slot + 1) * Self.slotBytes)])),
                    value.generation >= best?.generation ?? 0
                {
                    best = value
                }
            }
        }
        guard let best else { return .unreadable }
        generation = best.generation
        return .watermark(best.watermark)
    }

    package static func decode(_ slot: UnsafeRawBufferPointer) -> (generation: UInt64, watermark: UInt64)? {
        guard slot.count >= slotBytes, slot.prefix(8).elementsEqual(magic) else { return nil }
        guard SpoolRecordFormat.readUInt32(slot, 28) == CRC32C.checksum(UnsafeRawBufferPointer(rebasing: slot[0..<28])) else { return nil }
        return (SpoolRecordFormat.readUInt64(slot, 8), SpoolRecordFormat.readUInt64(slot, 16))
    }

    /// Writes `watermark` into the older slot. Returns the errno on failure.
    package mutating func write(_ watermark: UInt64) -> CInt? {
        guard watermark != written else { return nil }
        if descriptor < 0 {
            descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
            guard descriptor >= 0 else { return errno }
        }
        if generation == .max {
            // A file that claims 2^64 writes (crafted, or damage its checksum missed): number the
            // slots again from 1, both of them, so that the one written last is the one read.
            generation = 0
            if let error = writeSlot(watermark) { return error }
        }
        return writeSlot(watermark)
    }

    /// Writes `watermark` into the slot of the next generation.
    private mutating func writeSlot(_ watermark: UInt64) -> CInt? {
        generation += 1
        var slot = [UInt8](repeating: 0, count: Self.slotBytes)
        slot.replaceSubrange(0..<8, with: Self.magic)
        withUnsafeBytes(of: generation.bigEndian) { slot.replaceSubrange(8..<16, with: $0) }
        withUnsafeBytes(of: watermark.bigEndian) { slot.replaceSubrange(16..<24, with: $0) }
        let crc = slot.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<28])) }
        withUnsafeBytes(of: crc.bigEndian) { slot.replaceSubrange(28..<32, with: $0) }
        let offset = off_t(Int(generation % 2) * Self.slotBytes)
        let result = slot.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, offset) }
        guard result == Self.slotBytes else { return result < 0 ? errno : EIO }
        written = watermark
        return nil
    }

    /// Makes what was written durable.
    package func sync() {
        if descriptor >= 0 { _ = fdatasync(descriptor) }
    }

    package mutating func close() {
        if descriptor >= 0 { _ = Glibc.close(descriptor) }
        descriptor = -1
    }
}
