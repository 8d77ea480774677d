import NIOCore

/// The bytes of a spool segment: a header, then records, each framed with its
/// checksum, length and sequence number.
///
/// ```
/// segment header (32 bytes)       record (16-byte header + payload)
///  0  "FERRYSPL"   magic           0  CRC-32C of bytes 4..<16+length
///  8  u32 version (1)              4  u32 length of the payload
/// 12  u32 shard                    8  u64 sequence (consecutive per shard, from 1)
/// 16  u64 first sequence          16  payload: the log's bytes, as received
/// 24  u32 reserved (0)
/// 28  CRC-32C of bytes 0..<28
/// ```
/// All integers big-endian. The checksum covers the length and the sequence,
/// so a damaged length cannot send the reader past good records unnoticed.
package enum SpoolRecordFormat {
    static let magic: [UInt8] = Array("FERRYSPL".utf8)
    static let version: UInt32 = 1
    static let segmentHeaderBytes = 32
    static let recordHeaderBytes = 16
    /// The largest payload a record may have; longer lengths are damage.
    package static let maximumPayloadBytes = 1 << 20
    /// Sequences are below this (2^62: 146,000 years at a million logs a second); a larger one in a
    /// file name, a record or a progress file is damage, so every count of sequences fits an `Int`.
    package static let sequenceLimit: UInt64 = 1 << 62

    /// Writes a segment header.
    static func encodeSegmentHeader(shard: Int, firstSequence: UInt64, into buffer: inout ByteBuffer) {
        let start = buffer.writerIndex
        buffer.writeBytes(magic)
        buffer.writeInteger(version)
        buffer.writeInteger(UInt32(truncatingIfNeeded: shard))
        buffer.writeInteger(firstSequence)
        buffer.writeInteger(UInt32(0))
        let crc = buffer.withUnsafeReadableBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[(start - buffer.readerIndex)...])) }
        buffer.writeInteger(crc)
    }

    /// Reads a segment header: the shard and first sequence, or nil when the bytes are not one.
    package static func decodeSegmentHeader(_ bytes: UnsafeRawBufferPointer) -> (shard: Int, firstSequence: UInt64)? {
        guard bytes.count >= segmentHeaderBytes, bytes.prefix(8).elementsEqual(magic) else { return nil }
        guard readUInt32(bytes, 8) == version else { return nil }
        guard readUInt32(bytes, 28) == CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[0..<28])) else { return nil }
        return (Int(readUInt32(bytes, 12)), readUInt64(bytes, 16))
    }

    /// Appends one record.
    @inline(__always)
    static func encodeRecord(sequence: UInt64, payload: ByteBuffer, into buffer: inout ByteBuffer) {
        let start = buffer.writerIndex
        buffer.writeInteger(UInt32(0))  // the checksum, filled in below
        buffer.writeInteger(UInt32(payload.readableBytes))
        buffer.writeInteger(sequence)
        buffer.writeImmutableBuffer(payload)
        let crc = buffer.withUnsafeReadableBytes { bytes in
            CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[(start - buffer.readerIndex + 4)...]))
        }
        buffer.setInteger(crc, at: start)
    }

    /// Bytes a record of `payloadBytes` takes on disk.
    @inline(__always)
    static func recordBytes(payload payloadBytes: Int) -> Int { recordHeaderBytes + payloadBytes }

    @inline(__always)
    static func readUInt32(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> UInt32 {
        var value: UInt32 = 0
        withUnsafeMutableBytes(of: &value) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + 4)])) }
        return UInt32(bigEndian: value)
    }

    @inline(__always)
    static func readUInt64(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> UInt64 {
        var value: UInt64 = 0
        withUnsafeMutableBytes(of: &value) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + 8)])) }
        return UInt64(bigEndian: value)
    }
}

/// Finds the records in a region of a segment file, whatever its bytes: the
/// one reader of spool data, at start-up (recovery) and while spilled logs are
/// read back.
///
/// It never trusts a length it has not checked: a record counts only when its
/// checksum matches and its sequence is later than the last good one (and not
/// absurdly far beyond it, nor past ``SpoolRecordFormat/sequenceLimit``). After damage it searches forward, byte by byte, for
/// the next record that passes, so the good records of a damaged segment are
/// kept. Every call moves forward or asks for more bytes: it cannot loop.
package struct SpoolRecordScanner {
    /// What was found at the scanner's position.
    package enum Step: Equatable {
        /// A good record: its sequence, and where its payload is in the region.
        case record(sequence: UInt64, payload: Range<Int>, next: Int)
        /// The region ends inside what may be a good record: read more from `at`
        /// (at the end of the file, that is a torn tail).
        case needMore(at: Int)
        /// Bytes that are not records, from the position to `resumeAt`.
        case damaged(resumeAt: Int)
    }

    /// Sequences below this are not of this segment (its header's first sequence).
    package var lowestSequence: UInt64
    /// The last good sequence seen; the next must be later.
    package var lastSequence: UInt64?
    /// A good record's sequence is at most this far past the last one: further is damage.
    package static let maximumGap: UInt64 = 1 << 40

    package init(lowestSequence: UInt64, lastSequence: UInt64? = nil) {
        self.lowestSequence = lowestSequence
        self.lastSequence = lastSequence
    }

    /// Looks at `region[position...]`. `atEnd`: the region ends where the
    /// file does, so a record that would run past it is damage (a torn tail).
    package mutating func step(in region: UnsafeRawBufferPointer, at position: Int, atEnd: Bool) -> Step {
        switch check(region, position, atEnd: atEnd) {
        case .good(let sequence, let next):
            lastSequence = sequence
            return .record(sequence: sequence, payload: (position + SpoolRecordFormat.recordHeaderBytes)..<next, next: next)
        case .incomplete:
            return .needMore(at: position)
        case .bad:
            var candidate = position + 1
            while candidate < region.count {
                switch check(region, candidate, atEnd: atEnd) {
                case .good, .incomplete: return .damaged(resumeAt: candidate)
                case .bad: candidate += 1
                }
            }
            return .damaged(resumeAt: region.count)
        }
    }

    private enum Check {
        case good(sequence: UInt64, next: Int)
        case incomplete
        case bad
    }

    private func check(_ region: UnsafeRawBufferPointer, _ position: Int, atEnd: Bool) -> Check {
        let headerBytes = SpoolRecordFormat.recordHeaderBytes
        guard region.count - position >= headerBytes else { return atEnd ? .bad : .incomplete }
        let length = Int(SpoolRecordFormat.readUInt32(region, position + 4))
        let sequence = SpoolRecordFormat.readUInt64(region, position + 8)
        // Nothing follows UInt64.max, and no record is at or past the sequence limit.
        let (afterLast, past) = (lastSequence ?? 0).addingReportingOverflow(1)
        let floor = max(lowestSequence, afterLast)
        guard length <= SpoolRecordFormat.maximumPayloadBytes, !past, sequence < SpoolRecordFormat.sequenceLimit, sequence >= floor,
            sequence - floor < Self.maximumGap
        else { return .bad }
        let next = position + headerBytes + length
        guard next <= region.count else { return atEnd ? .bad : .incomplete }
        let crc = SpoolRecordFormat.readUInt32(region, position)
        guard crc == CRC32C.checksum(UnsafeRawBufferPointer(rebasing: region[(position + 4)..<next])) else { return .bad }
        return .good(sequence: sequence, next: next)
    }
}
