import NIOCore
import Testing

@testable import FerryCore

struct FrameCodecTests {
    private let header = FrameCodec.DataHeader(
        senderID: 0xABCD_EF01_2345_6700, sequence: 0xFFFF_FFFE, ttlMilliseconds: 10_000,
        sentAtMilliseconds: 1_790_000_000_000, traceID: TraceID(high: 0x0102_0304_0506_0708, low: 0x090A_0B0C_0D0E_0F10))

    private func encode(_ records: [ByteBuffer]) -> ByteBuffer {
        var buffer = ByteBuffer()
        FrameCodec.encodeData(header: header, records: records[...], into: &buffer)
        return buffer
    }

    /// The standard check values of CRC-32C, over lengths that do and do not
    /// fill the 8-byte steps of the hardware path.
    @Test func crc32cMatchesTheStandardCheckValues() {
        func crc(_ text: String) -> UInt32 {
            Array(text.utf8).withUnsafeBytes { CRC32C.checksum($0) }
        }
        #expect(crc("123456789") == 0xE306_9283)
        #expect(crc("") == 0)
        #expect(crc("a") == 0xC1D0_4330)
        #expect(crc("The quick brown fox jumps over the lazy dog") == 0x2262_0404)
        let zeros = [UInt8](repeating: 0, count: 32)
        #expect(zeros.withUnsafeBytes { CRC32C.checksum($0) } == 0x8A91_36AA)
    }

    @Test func roundTripsHeaderAndRecordsIncludingEmptyOnes() throws {
        let records = [ByteBuffer(string: "first"), ByteBuffer(), ByteBuffer(bytes: [0, 10, 255, 254])]
        let frame = encode(records)
        #expect(FrameCodec.looksLikeFrame(frame))
        #expect(frame.readableBytes == FrameCodec.dataHeaderBytes + 3 * FrameCodec.recordOverhead + 9 + FrameCodec.trailerBytes)
        let decoded = try FrameCodec.decodeData(frame)
        #expect(decoded.header == header)
        #expect(decoded.records == records)
        #expect(header.traceID.description == "0102030405060708090a0b0c0d0e0f10")
    }

    @Test func everyTruncationAndEveryFlippedBitIsRejected() {
        let frame = encode([ByteBuffer(string: "hello"), ByteBuffer(string: "world")])
        for length in 0..<frame.readableBytes {
            #expect(throws: FrameCodec.DecodeError.self) { try FrameCodec.decodeData(frame.getSlice(at: 0, length: length)!) }
        }
        for byte in 0..<frame.readableBytes {
            for bit in 0..<8 {
                var corrupted = frame
                let value = corrupted.getInteger(at: byte, as: UInt8.self)!
                corrupted.setInteger(value ^ (1 << bit), at: byte)
                #expect(throws: FrameCodec.DecodeError.self) { try FrameCodec.decodeData(corrupted) }
            }
        }
    }

    @Test func anotherVersionIsRefusedByName() {
        var frame = encode([ByteBuffer(string: "x")])
        frame.setInteger(UInt8(2), at: 4)
        #expect(throws: FrameCodec.DecodeError.unsupportedVersion(2)) { try FrameCodec.decodeData(frame) }
    }

    @Test func recordsAreGroupedUpToTheFrameSize() {
        let records = (0..<10).map { _ in ByteBuffer(repeating: 65, count: 200) }
        let fit = FrameCodec.recordsFitting(records, from: 0, maximumBytes: 1_400)
        // 56 bytes of header and trailer + n × 202 ≤ 1,400 → 6 records
        #expect(fit.count == 6 && fit.bytes == 1_200)
        let big = [ByteBuffer(repeating: 66, count: 5_000)]
        #expect(FrameCodec.recordsFitting(big, from: 0, maximumBytes: 1_400).count == 1)  // travels alone
        #expect(FrameCodec.fitsAlone(65_507 - 58))
        #expect(!FrameCodec.fitsAlone(65_507 - 57))
    }

    @Test func acksRoundTrip() throws {
        var buffer = ByteBuffer()
        let ack = FrameCodec.Ack(senderID: 42, sequence: 7, traceID: header.traceID)
        FrameCodec.encodeAck(ack, into: &buffer)
        #expect(buffer.readableBytes == FrameCodec.ackBytes)
        #expect(try FrameCodec.decodeAck(buffer) == ack)
        #expect(throws: FrameCodec.DecodeError.self) { try FrameCodec.decodeData(buffer) }
        // decodeAcks reads a single ack as a batch of one.
        let one = try FrameCodec.decodeAcks(buffer)
        #expect(one.senderID == 42 && one.sequences == [7])
    }

    @Test func batchedAcksRoundTripAndEveryDamageIsRejected() throws {
        let sequences: [UInt32] = [5, 6, 9, 0xFFFF_FFFF, 0]
        var buffer = ByteBuffer()
        FrameCodec.encodeBatchedAck(senderID: 0xAB, sequences: sequences[...], into: &buffer)
        #expect(buffer.readableBytes == FrameCodec.batchedAckHeaderBytes + 4 * sequences.count + FrameCodec.trailerBytes)
        let decoded = try FrameCodec.decodeAcks(buffer)
        #expect(decoded.senderID == 0xAB && decoded.sequences == sequences)
        #expect(throws: FrameCodec.DecodeError.self) { try FrameCodec.decodeAck(buffer) }  // not a single ack
        #expect(throws: FrameCodec.DecodeError.self) { try FrameCodec.decodeData(buffer) }
        for length in 0..<buffer.readableBytes {
            #expect(throws: FrameCodec.DecodeError.self) { try FrameCodec.decodeAcks(buffer.getSlice(at: 0, length: length)!) }
        }
        for byte in 0..<buffer.readableBytes {
            for bit in 0..<8 {
                var corrupted = buffer
                corrupted.setInteger(corrupted.getInteger(at: byte, as: UInt8.self)! ^ (1 << bit), at: byte)
                #expect(throws: FrameCodec.DecodeError.self) { try FrameCodec.decodeAcks(corrupted) }
            }
        }
        // A count that does not match the bytes, with a repaired checksum: refused, never read past the end.
        for count in [0, 4, 6, FrameCodec.maximumBatchedAcks + 1, Int(UInt16.max)] {
            var lying = buffer
            lying.setInteger(UInt16(count), at: 16)
            let crc = lying.withUnsafeReadableBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[..<($0.count - 4)])) }
            lying.setInteger(crc, at: lying.readableBytes - 4)
            #expect(throws: FrameCodec.DecodeError.self) { try FrameCodec.decodeAcks(lying) }
        }
        // The largest batch fits the buffer a sender reads replies into.
        var largest = ByteBuffer()
        let many = (0..<UInt32(FrameCodec.maximumBatchedAcks)).map { $0 }
        FrameCodec.encodeBatchedAck(
            senderID: 1, sequences: many[...], into: &largest, key: FrameKey(secret: [UInt8](repeating: 7, count: 32)))
        #expect(largest.readableBytes == FrameCodec.maximumBatchedAckBytes)
    }

    /// Random bytes behind a valid magic, version and type (and a valid CRC
    /// half the time): every decoder refuses or decodes within bounds, never traps.
    @Test func randomFramesAndAcksNeverTrap() {
        var generator = SystemRandomNumberGenerator()
        for round in 0..<5_000 {
            let length = Int.random(in: 6...1_200, using: &generator)
            var bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            bytes.replaceSubrange(0..<4, with: [0xFE, 0x46, 0x52, 0x59])
            bytes[4] = 1
            bytes[5] = UInt8(1 + round % 3)
            var buffer = ByteBuffer(bytes: bytes)
            if round % 2 == 0, length >= 8 {
                let crc = buffer.withUnsafeReadableBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[..<($0.count - 4)])) }
                buffer.setInteger(crc, at: length - 4)
            }
            if let acks = try? FrameCodec.decodeAcks(buffer) { #expect((1...FrameCodec.maximumBatchedAcks).contains(acks.sequences.count)) }
            if let data = try? FrameCodec.decodeData(buffer) { #expect(data.records.allSatisfy { $0.readableBytes < length }) }
        }
    }
}
