import NIOCore

/// Encodes and decodes Ferry-to-Ferry frames (`ferry://`). The README has the
/// byte diagram; all integers are big-endian.
///
/// A data frame carries several logs with a sender id, a sequence number, a
/// time-to-live, a trace id and a CRC-32C over everything before it. An ack
/// frame names the sender id and sequence number it acknowledges.
public enum FrameCodec {
    /// `0xFE 'F' 'R' 'Y'`: a plain log datagram almost never starts with 0xFE.
    public static let magic: UInt32 = 0xFE46_5259
    public static let version: UInt8 = 1
    /// Bytes of a data frame's header (before the records).
    public static let dataHeaderBytes = 52
    /// Bytes of the checksum trailer.
    public static let trailerBytes = 4
    /// Bytes of a whole ack frame.
    public static let ackBytes = 44
    /// Bytes each record adds besides its payload (its length).
    public static let recordOverhead = 2
    /// The largest frame UDP can carry.
    public static let maximumFrameBytes = 65_507

    public enum FrameType: UInt8, Sendable {
        case data = 1
        case ack = 2
    }

    public struct DataHeader: Sendable, Equatable {
        public var senderID: UInt64
        public var sequence: UInt32
        public var ttlMilliseconds: UInt32
        public var sentAtMilliseconds: UInt64
        public var traceID: TraceID
        /// Header flags (bytes 6–7): ``DataHeader/traced`` so far; unknown bits are ignored.
        public var flags: UInt16

        /// Flag: every hop logs this frame at info (`trace.frame-sample-interval`), so `ferry trace` can follow it.
        public static let traced: UInt16 = 0x0001

        public var isTraced: Bool { flags & Self.traced != 0 }

        public init(
            senderID: UInt64, sequence: UInt32, ttlMilliseconds: UInt32, sentAtMilliseconds: UInt64, traceID: TraceID, flags: UInt16 = 0
        ) {
            self.flags = flags
            self.senderID = senderID
            self.sequence = sequence
            self.ttlMilliseconds = ttlMilliseconds
            self.sentAtMilliseconds = sentAtMilliseconds
            self.traceID = traceID
        }
    }

    public struct Ack: Sendable, Equatable {
        public var senderID: UInt64
        public var sequence: UInt32
        public var traceID: TraceID
    }

    public enum DecodeError: Error, Equatable, CustomStringConvertible {
        case truncated(Int)
        case badMagic
        case unsupportedVersion(UInt8)
        case unexpectedType(UInt8)
        case checksumMismatch
        case badRecordLength(index: Int)
        case trailingBytes(Int)

        public var description: String {
            switch self {
            case .truncated(let length): return "frame truncated at \(length) bytes"
            case .badMagic: return "not a Ferry frame"
            case .unsupportedVersion(let version): return "unsupported frame version \(version) (this Ferry speaks 1)"
            case .unexpectedType(let type): return "unexpected frame type \(type)"
            case .checksumMismatch: return "checksum mismatch"
            case .badRecordLength(let index): return "record \(index) runs past the end of the frame"
            case .trailingBytes(let count): return "\(count) bytes after the last record"
            }
        }
    }

    /// True when `datagram` starts with the frame magic (it may still be malformed).
    @inline(__always)
    public static func looksLikeFrame(_ datagram: ByteBuffer) -> Bool {
        datagram.readableBytes >= 4 && datagram.getInteger(at: datagram.readerIndex, as: UInt32.self) == magic
    }

    /// How many records from `records[start...]` fit one frame of at most
    /// `maximumBytes` (always at least one, so a large log travels alone), and their payload bytes.
    public static func recordsFitting(_ records: [ByteBuffer], from start: Int, maximumBytes: Int) -> (count: Int, bytes: Int) {
        var size = dataHeaderBytes + trailerBytes
        var count = 0
        var bytes = 0
        for index in start..<records.count {
            let length = records[index].readableBytes
            if count > 0, size + recordOverhead + length > maximumBytes { break }
            if count >= Int(UInt16.max) { break }
            size += recordOverhead + length
            bytes += length
            count += 1
        }
        return (count, bytes)
    }

    /// Whether a single record can travel in a frame at all.
    public static func fitsAlone(_ length: Int) -> Bool {
        dataHeaderBytes + recordOverhead + length + trailerBytes <= maximumFrameBytes
    }

    /// Appends a data frame holding `records[range]` to `buffer`.
    public static func encodeData(header: DataHeader, records: ArraySlice<ByteBuffer>, into buffer: inout ByteBuffer) {
        let start = buffer.writerIndex
        buffer.writeInteger(magic)
        buffer.writeInteger(version)
        buffer.writeInteger(FrameType.data.rawValue)
        buffer.writeInteger(header.flags)
        buffer.writeInteger(header.senderID)
        buffer.writeInteger(header.sequence)
        buffer.writeInteger(header.ttlMilliseconds)
        buffer.writeInteger(header.sentAtMilliseconds)
        buffer.writeInteger(header.traceID.high)
        buffer.writeInteger(header.traceID.low)
        buffer.writeInteger(UInt16(records.count))
        buffer.writeInteger(UInt16(0))  // reserved
        for record in records {
            buffer.writeInteger(UInt16(record.readableBytes))
            buffer.writeImmutableBuffer(record)
        }
        let crc = buffer.withUnsafeReadableBytes { bytes in
            CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[(start - buffer.readerIndex)...]))
        }
        buffer.writeInteger(crc)
    }

    /// Decodes a data frame; its records are slices of `frame` (no copy).
    public static func decodeData(_ frame: ByteBuffer) throws(DecodeError) -> (header: DataHeader, records: [ByteBuffer]) {
        try verify(frame, type: .data, minimumLength: dataHeaderBytes + trailerBytes)
        let base = frame.readerIndex
        let header = DataHeader(
            senderID: frame.getInteger(at: base + 8)!,
            sequence: frame.getInteger(at: base + 16)!,
            ttlMilliseconds: frame.getInteger(at: base + 20)!,
            sentAtMilliseconds: frame.getInteger(at: base + 24)!,
            traceID: TraceID(high: frame.getInteger(at: base + 32)!, low: frame.getInteger(at: base + 40)!),
            flags: frame.getInteger(at: base + 6)!)
        let count = Int(frame.getInteger(at: base + 48, as: UInt16.self)!)
        let end = base + frame.readableBytes - trailerBytes
        var offset = base + dataHeaderBytes
        var records: [ByteBuffer] = []
        records.reserveCapacity(count)
        for index in 0..<count {
            guard offset + recordOverhead <= end else { throw .badRecordLength(index: index) }
            let length = Int(frame.getInteger(at: offset, as: UInt16.self)!)
            offset += recordOverhead
            guard offset + length <= end else { throw .badRecordLength(index: index) }
            records.append(frame.getSlice(at: offset, length: length)!)
            offset += length
        }
        guard offset == end else { throw .trailingBytes(end - offset) }
        return (header, records)
    }

    public static func encodeAck(_ ack: Ack, into buffer: inout ByteBuffer) {
        let start = buffer.writerIndex
        buffer.writeInteger(magic)
        buffer.writeInteger(version)
        buffer.writeInteger(FrameType.ack.rawValue)
        buffer.writeInteger(UInt16(0))
        buffer.writeInteger(ack.senderID)
        buffer.writeInteger(ack.sequence)
        buffer.writeInteger(UInt32(0))  // reserved
        buffer.writeInteger(ack.traceID.high)
        buffer.writeInteger(ack.traceID.low)
        let crc = buffer.withUnsafeReadableBytes { bytes in
            CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[(start - buffer.readerIndex)...]))
        }
        buffer.writeInteger(crc)
    }

    public static func decodeAck(_ frame: ByteBuffer) throws(DecodeError) -> Ack {
        try verify(frame, type: .ack, minimumLength: ackBytes)
        guard frame.readableBytes == ackBytes else { throw .trailingBytes(frame.readableBytes - ackBytes) }
        let base = frame.readerIndex
        return Ack(
            senderID: frame.getInteger(at: base + 8)!,
            sequence: frame.getInteger(at: base + 16)!,
            traceID: TraceID(high: frame.getInteger(at: base + 24)!, low: frame.getInteger(at: base + 32)!))
    }

    private static func verify(_ frame: ByteBuffer, type: FrameType, minimumLength: Int) throws(DecodeError) {
        guard frame.readableBytes >= minimumLength else { throw .truncated(frame.readableBytes) }
        let base = frame.readerIndex
        guard frame.getInteger(at: base, as: UInt32.self) == magic else { throw .badMagic }
        let version = frame.getInteger(at: base + 4, as: UInt8.self)!
        guard version == Self.version else { throw .unsupportedVersion(version) }
        let actualType = frame.getInteger(at: base + 5, as: UInt8.self)!
        guard actualType == type.rawValue else { throw .unexpectedType(actualType) }
        let stored = frame.getInteger(at: base + frame.readableBytes - trailerBytes, as: UInt32.self)!
        let computed = frame.withUnsafeReadableBytes { bytes in
            CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[..<(bytes.count - trailerBytes)]))
        }
        guard stored == computed else { throw .checksumMismatch }
    }
}
