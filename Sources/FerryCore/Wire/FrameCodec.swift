import NIOCore

/// Encodes and decodes Ferry-to-Ferry frames (`ferry://`). docs/formats.md has the
/// byte diagram; all integers are big-endian.
///
/// A data frame carries several logs with a sender id, a sequence number, a
/// time-to-live, a trace id and a CRC-32C over everything before it. An ack
/// frame names the sender id and sequence number it acknowledges.
///
/// With a ``FrameKey``, frames and acks are *keyed*: flag bit 1 is set and a
/// key id and a MAC (HMAC-SHA256, 128 bits, over every byte before the MAC)
/// come just before the CRC. Version 1's fields keep their offsets. A
/// decoder given a ``FrameKeyRing`` accepts only keyed frames whose MAC it can
/// verify; one given none refuses keyed frames (it cannot tell them from forgeries).
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
    /// Bytes a key adds to a frame or ack: key id and MAC, before the CRC.
    public static let authBytes = FrameKey.idBytes + FrameKey.macBytes
    /// Bytes of a whole keyed ack frame.
    public static let keyedAckBytes = ackBytes + authBytes
    /// Header flag (data frames and acks): a key id and a MAC precede the CRC.
    public static let keyedFlag: UInt16 = 0x0002
    /// Bytes each record adds besides its payload (its length).
    public static let recordOverhead = 2
    /// The largest frame UDP can carry.
    public static let maximumFrameBytes = 65_507

    public enum FrameType: UInt8, Sendable {
        case data = 1
        case ack = 2
        /// Several acks to one sender in one datagram (to senders whose frames set ``DataHeader/acceptsBatchedAcks``).
        case batchedAck = 3
    }

    /// Bytes of a batched ack's header (before its sequence numbers).
    public static let batchedAckHeaderBytes = 20
    /// Most sequence numbers one batched ack carries (1,048 bytes unkeyed: one packet).
    public static let maximumBatchedAcks = 256
    /// Bytes of the largest batched ack (keyed): what a sender's reply buffer must hold.
    public static let maximumBatchedAckBytes = batchedAckHeaderBytes + 4 * maximumBatchedAcks + authBytes + trailerBytes

    public struct DataHeader: Sendable, Equatable {
        public var senderID: UInt64
        public var sequence: UInt32
        public var ttlMilliseconds: UInt32
        public var sentAtMilliseconds: UInt64
        public var traceID: TraceID
        /// Header flags (bytes 6–7): ``DataHeader/traced`` and ``FrameCodec/keyedFlag`` (set by the encoder); unknown bits are ignored.
        public var flags: UInt16

        /// Flag: every hop logs this frame at info (`trace.frame-sample-interval`), so `ferry trace` can follow it.
        public static let traced: UInt16 = 0x0001
        /// Flag: the sender reads batched acks (type 3): the receiver may answer
        /// all of a burst's frames from it with one datagram. Senders without it get one ack per frame.
        public static let acceptsBatchedAcks: UInt16 = 0x0004

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

        public init(senderID: UInt64, sequence: UInt32, traceID: TraceID) {
            self.senderID = senderID
            self.sequence = sequence
            self.traceID = traceID
        }
    }

    public enum DecodeError: Error, Equatable, CustomStringConvertible {
        case truncated(Int)
        case badMagic
        case unsupportedVersion(UInt8)
        case unexpectedType(UInt8)
        case checksumMismatch
        case badRecordLength(index: Int)
        case trailingBytes(Int)
        /// A batched ack naming no frame or more than ``FrameCodec/maximumBatchedAcks``.
        case badAckCount(Int)
        /// Not signed by a key this Ferry holds (only when keys are in use on either side).
        case unauthenticated(FrameAuthFailure)

        public var description: String {
            switch self {
            case .truncated(let length): return "frame truncated at \(length) bytes"
            case .badMagic: return "not a Ferry frame"
            case .unsupportedVersion(let version): return "unsupported frame version \(version) (this Ferry speaks 1)"
            case .unexpectedType(let type): return "unexpected frame type \(type)"
            case .checksumMismatch: return "checksum mismatch"
            case .badRecordLength(let index): return "record \(index) runs past the end of the frame"
            case .trailingBytes(let count): return "\(count) bytes after the last record"
            case .badAckCount(let count): return "a batched ack naming \(count) frames (1...\(FrameCodec.maximumBatchedAcks) allowed)"
            case .unauthenticated(let reason): return "not authenticated: \(reason)"
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

    /// Whether a single record can travel in a frame at all (keyed frames are
    /// ``authBytes`` longer; a record of the largest datagram size still fits).
    public static func fitsAlone(_ length: Int, keyed: Bool = false) -> Bool {
        dataHeaderBytes + recordOverhead + length + trailerBytes + (keyed ? authBytes : 0) <= maximumFrameBytes
    }

    /// Appends a data frame holding `records[range]` to `buffer`, keyed with `key` if given.
    public static func encodeData(header: DataHeader, records: ArraySlice<ByteBuffer>, into buffer: inout ByteBuffer, key: FrameKey? = nil) {
        let start = buffer.writerIndex
        buffer.writeInteger(magic)
        buffer.writeInteger(version)
        buffer.writeInteger(FrameType.data.rawValue)
        buffer.writeInteger(key == nil ? header.flags & ~keyedFlag : header.flags | keyedFlag)
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
        finish(&buffer, from: start, key: key)
    }

    /// Appends the key id and MAC (if keyed) and the CRC-32C of everything from `start`.
    private static func finish(_ buffer: inout ByteBuffer, from start: Int, key: FrameKey?) {
        if let key {
            buffer.writeInteger(key.id)
            let mac = buffer.withUnsafeReadableBytes { bytes in key.mac(UnsafeRawBufferPointer(rebasing: bytes[(start - buffer.readerIndex)...])) }
            buffer.writeInteger(mac.0)
            buffer.writeInteger(mac.1)
        }
        let crc = buffer.withUnsafeReadableBytes { bytes in
            CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[(start - buffer.readerIndex)...]))
        }
        buffer.writeInteger(crc)
    }

    /// Decodes a data frame; its records are slices of `frame` (no copy).
    /// With `keys`, only a keyed frame whose MAC one of them verifies is decoded.
    public static func decodeData(_ frame: ByteBuffer, keys: FrameKeyRing? = nil) throws(DecodeError) -> (
        header: DataHeader, records: [ByteBuffer]
    ) {
        try verify(frame, type: .data, minimumLength: dataHeaderBytes + trailerBytes)
        let authenticated = try authenticate(frame, keys: keys)
        guard frame.readableBytes >= dataHeaderBytes + trailerBytes + authenticated else { throw .truncated(frame.readableBytes) }
        let base = frame.readerIndex
        let header = DataHeader(
            senderID: frame.getInteger(at: base + 8)!,
            sequence: frame.getInteger(at: base + 16)!,
            ttlMilliseconds: frame.getInteger(at: base + 20)!,
            sentAtMilliseconds: frame.getInteger(at: base + 24)!,
            traceID: TraceID(high: frame.getInteger(at: base + 32)!, low: frame.getInteger(at: base + 40)!),
            flags: frame.getInteger(at: base + 6)!)
        let count = Int(frame.getInteger(at: base + 48, as: UInt16.self)!)
        let end = base + frame.readableBytes - trailerBytes - authenticated
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

    /// Appends an ack frame to `buffer`, keyed with `key` if given.
    public static func encodeAck(_ ack: Ack, into buffer: inout ByteBuffer, key: FrameKey? = nil) {
        let start = buffer.writerIndex
        buffer.writeInteger(magic)
        buffer.writeInteger(version)
        buffer.writeInteger(FrameType.ack.rawValue)
        buffer.writeInteger(key == nil ? UInt16(0) : keyedFlag)
        buffer.writeInteger(ack.senderID)
        buffer.writeInteger(ack.sequence)
        buffer.writeInteger(UInt32(0))  // reserved
        buffer.writeInteger(ack.traceID.high)
        buffer.writeInteger(ack.traceID.low)
        finish(&buffer, from: start, key: key)
    }

    /// Appends one batched ack to `sender`'s frames `sequences` (at most
    /// ``maximumBatchedAcks``), keyed with `key` if given: one MAC for all of them.
    public static func encodeBatchedAck(senderID: UInt64, sequences: ArraySlice<UInt32>, into buffer: inout ByteBuffer, key: FrameKey? = nil) {
        precondition(!sequences.isEmpty && sequences.count <= maximumBatchedAcks, "a batched ack names 1...\(maximumBatchedAcks) frames")
        let start = buffer.writerIndex
        buffer.writeInteger(magic)
        buffer.writeInteger(version)
        buffer.writeInteger(FrameType.batchedAck.rawValue)
        buffer.writeInteger(key == nil ? UInt16(0) : keyedFlag)
        buffer.writeInteger(senderID)
        buffer.writeInteger(UInt16(sequences.count))
        buffer.writeInteger(UInt16(0))  // reserved
        for sequence in sequences { buffer.writeInteger(sequence) }
        finish(&buffer, from: start, key: key)
    }

    /// Decodes an ack or a batched ack: the sender id and every sequence it
    /// acknowledges; with `keys`, only one whose MAC one of them verifies.
    public static func decodeAcks(_ frame: ByteBuffer, keys: FrameKeyRing? = nil) throws(DecodeError) -> (senderID: UInt64, sequences: [UInt32]) {
        guard frame.readableBytes >= 6, frame.getInteger(at: frame.readerIndex + 5, as: UInt8.self) == FrameType.batchedAck.rawValue else {
            let ack = try decodeAck(frame, keys: keys)
            return (ack.senderID, [ack.sequence])
        }
        try verify(frame, type: .batchedAck, minimumLength: batchedAckHeaderBytes + 4 + trailerBytes)
        let authenticated = try authenticate(frame, keys: keys)
        let base = frame.readerIndex
        let count = Int(frame.getInteger(at: base + 16, as: UInt16.self)!)
        guard (1...maximumBatchedAcks).contains(count) else { throw .badAckCount(count) }
        let expected = batchedAckHeaderBytes + 4 * count + authenticated + trailerBytes
        guard frame.readableBytes == expected else {
            throw frame.readableBytes < expected ? .truncated(frame.readableBytes) : .trailingBytes(frame.readableBytes - expected)
        }
        var sequences: [UInt32] = []
        sequences.reserveCapacity(count)
        for index in 0..<count { sequences.append(frame.getInteger(at: base + batchedAckHeaderBytes + 4 * index)!) }
        return (frame.getInteger(at: base + 8)!, sequences)
    }

    /// Decodes an ack; with `keys`, only a keyed ack whose MAC one of them verifies.
    public static func decodeAck(_ frame: ByteBuffer, keys: FrameKeyRing? = nil) throws(DecodeError) -> Ack {
        try verify(frame, type: .ack, minimumLength: ackBytes)
        let authenticated = try authenticate(frame, keys: keys)
        let expected = ackBytes + authenticated
        guard frame.readableBytes == expected else {
            throw frame.readableBytes < expected ? .truncated(frame.readableBytes) : .trailingBytes(frame.readableBytes - expected)
        }
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

    /// Checks a frame's key against `keys`; returns the bytes the key id and MAC take (0 when unkeyed).
    ///
    /// Runs after the CRC (cheap, catches corruption) and before anything else
    /// is read, so nothing of an unauthenticated frame is used.
    private static func authenticate(_ frame: ByteBuffer, keys: FrameKeyRing?) throws(DecodeError) -> Int {
        let base = frame.readerIndex
        let keyed = frame.getInteger(at: base + 6, as: UInt16.self)! & keyedFlag != 0
        guard let keys else {
            if keyed { throw .unauthenticated(.noLocalKey) }
            return 0
        }
        guard keyed else { throw .unauthenticated(.unkeyed) }
        let macOffset = frame.readableBytes - trailerBytes - FrameKey.macBytes
        let idOffset = macOffset - FrameKey.idBytes
        guard idOffset >= 8 else { throw .truncated(frame.readableBytes) }
        guard let key = keys.key(id: frame.getInteger(at: base + idOffset)!) else { throw .unauthenticated(.unknownKey) }
        let expected: (UInt64, UInt64) = (frame.getInteger(at: base + macOffset)!, frame.getInteger(at: base + macOffset + 8)!)
        let valid = frame.withUnsafeReadableBytes { bytes in key.verify(UnsafeRawBufferPointer(rebasing: bytes[..<macOffset]), expected: expected) }
        guard valid else { throw .unauthenticated(.badMAC) }
        return authBytes
    }
}
