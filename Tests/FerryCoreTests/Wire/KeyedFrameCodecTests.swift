import NIOCore
import Testing

@testable import FerryCore

/// Keyed `ferry://` frames and acks: what a key adds, and that nothing without
/// a valid MAC of a held key is decoded.
struct KeyedFrameCodecTests {
    private let header = FrameCodec.DataHeader(
        senderID: 0x1111_2222_3333_4400, sequence: 77, ttlMilliseconds: 10_000, sentAtMilliseconds: 1_790_000_000_000,
        traceID: TraceID(high: 1, low: 2))
    private let key = FrameKey(secret: (0..<32).map { UInt8($0 * 7 + 1) })
    private let otherKey = FrameKey(secret: (0..<32).map { UInt8(255 - $0) })

    private func keyed(_ records: [ByteBuffer], key: FrameKey? = nil) -> ByteBuffer {
        var buffer = ByteBuffer()
        FrameCodec.encodeData(header: header, records: records[...], into: &buffer, key: key ?? self.key)
        return buffer
    }

    @Test func aKeyedFrameKeepsVersionOnesOffsetsAndRoundTrips() throws {
        let records = [ByteBuffer(string: "one"), ByteBuffer(), ByteBuffer(string: "three")]
        let frame = keyed(records)
        var plain = ByteBuffer()
        FrameCodec.encodeData(header: header, records: records[...], into: &plain)
        #expect(frame.readableBytes == plain.readableBytes + FrameCodec.authBytes)
        // Every header field but the flags is where version 1 has it, byte for byte.
        #expect(frame.getBytes(at: 0, length: 6) == plain.getBytes(at: 0, length: 6))
        #expect(frame.getBytes(at: 8, length: plain.readableBytes - 12) == plain.getBytes(at: 8, length: plain.readableBytes - 12))
        #expect(frame.getInteger(at: 6, as: UInt16.self)! & FrameCodec.keyedFlag != 0)
        #expect(frame.getInteger(at: frame.readableBytes - 24, as: UInt32.self) == key.id)
        let decoded = try FrameCodec.decodeData(frame, keys: FrameKeyRing(keys: [key]))
        #expect(decoded.records == records)
        #expect(decoded.header.senderID == header.senderID && decoded.header.sequence == header.sequence)
    }

    @Test func eachWayOfNotBeingSignedIsNamed() {
        let ring = FrameKeyRing(keys: [key])
        var plain = ByteBuffer()
        FrameCodec.encodeData(header: header, records: [ByteBuffer(string: "x")][...], into: &plain)
        #expect(throws: FrameCodec.DecodeError.unauthenticated(.unkeyed)) { try FrameCodec.decodeData(plain, keys: ring) }
        #expect(throws: FrameCodec.DecodeError.unauthenticated(.unknownKey)) {
            try FrameCodec.decodeData(keyed([ByteBuffer(string: "x")], key: otherKey), keys: ring)
        }
        #expect(throws: FrameCodec.DecodeError.unauthenticated(.noLocalKey)) { try FrameCodec.decodeData(keyed([ByteBuffer(string: "x")])) }
        // Another key's MAC under this key's id: the CRC is recomputed, so only the MAC can tell.
        var forged = keyed([ByteBuffer(string: "x")], key: otherKey)
        forged.setInteger(key.id, at: forged.readableBytes - 24)
        rewriteCRC(&forged)
        #expect(throws: FrameCodec.DecodeError.unauthenticated(.badMAC)) { try FrameCodec.decodeData(forged, keys: ring) }
    }

    /// What an attacker who sees frames can change: any bit of a keyed frame,
    /// with the CRC made right again, is refused as not authenticated.
    @Test func everyChangedBitWithARepairedChecksumIsRefused() {
        let ring = FrameKeyRing(keys: [key])
        let frame = keyed([ByteBuffer(string: "hello"), ByteBuffer(string: "world")])
        for byte in 0..<(frame.readableBytes - FrameCodec.trailerBytes) {
            for bit in 0..<8 {
                var changed = frame
                changed.setInteger(changed.getInteger(at: byte, as: UInt8.self)! ^ (1 << bit), at: byte)
                rewriteCRC(&changed)
                #expect(throws: FrameCodec.DecodeError.self) { try FrameCodec.decodeData(changed, keys: ring) }
            }
        }
    }

    @Test func theSecondKeyOfARingVerifiesAndTheFirstSigns() throws {
        let ring = FrameKeyRing(keys: [otherKey, key])
        #expect(try FrameCodec.decodeData(keyed([ByteBuffer(string: "old")], key: key), keys: ring).records.count == 1)
        #expect(ring.signing.id == otherKey.id)
        #expect(ring.key(id: key.id) != nil && ring.key(id: 0xDEAD_BEEF) == nil)
    }

    @Test func keyedBatchedAcksCarryOneMACAndForgedOnesAreRefused() throws {
        let ring = FrameKeyRing(keys: [key])
        let sequences: [UInt32] = [1, 2, 3]
        var buffer = ByteBuffer()
        FrameCodec.encodeBatchedAck(senderID: 9, sequences: sequences[...], into: &buffer, key: key)
        #expect(buffer.readableBytes == FrameCodec.batchedAckHeaderBytes + 12 + FrameCodec.authBytes + FrameCodec.trailerBytes)
        #expect(try FrameCodec.decodeAcks(buffer, keys: ring).sequences == sequences)
        var plain = ByteBuffer()
        FrameCodec.encodeBatchedAck(senderID: 9, sequences: sequences[...], into: &plain)
        #expect(throws: FrameCodec.DecodeError.unauthenticated(.unkeyed)) { try FrameCodec.decodeAcks(plain, keys: ring) }
        var forged = ByteBuffer()
        FrameCodec.encodeBatchedAck(senderID: 9, sequences: sequences[...], into: &forged, key: otherKey)
        #expect(throws: FrameCodec.DecodeError.unauthenticated(.unknownKey)) { try FrameCodec.decodeAcks(forged, keys: ring) }
        for byte in 0..<(buffer.readableBytes - FrameCodec.trailerBytes) {
            for bit in 0..<8 {
                var changed = buffer
                changed.setInteger(changed.getInteger(at: byte, as: UInt8.self)! ^ (1 << bit), at: byte)
                rewriteCRC(&changed)
                #expect(throws: FrameCodec.DecodeError.self) { try FrameCodec.decodeAcks(changed, keys: ring) }
            }
        }
    }

    @Test func keyedAcksRoundTripAndForgedOnesAreRefused() throws {
        let ring = FrameKeyRing(keys: [key])
        let ack = FrameCodec.Ack(senderID: 9, sequence: 10, traceID: TraceID(high: 3, low: 4))
        var buffer = ByteBuffer()
        FrameCodec.encodeAck(ack, into: &buffer, key: key)
        #expect(buffer.readableBytes == FrameCodec.keyedAckBytes)
        #expect(try FrameCodec.decodeAck(buffer, keys: ring) == ack)
        var plain = ByteBuffer()
        FrameCodec.encodeAck(ack, into: &plain)
        #expect(throws: FrameCodec.DecodeError.unauthenticated(.unkeyed)) { try FrameCodec.decodeAck(plain, keys: ring) }
        var forged = ByteBuffer()
        FrameCodec.encodeAck(ack, into: &forged, key: otherKey)
        #expect(throws: FrameCodec.DecodeError.unauthenticated(.unknownKey)) { try FrameCodec.decodeAck(forged, keys: ring) }
        var changed = buffer
        changed.setInteger(UInt32(11), at: 16)  // another sequence
        rewriteCRC(&changed)
        #expect(throws: FrameCodec.DecodeError.unauthenticated(.badMAC)) { try FrameCodec.decodeAck(changed, keys: ring) }
    }

    /// Found by the Ack fuzz target: a keyed ack shorter than a keyed ack is
    /// (45 bytes, its key id and MAC where they fit) was refused as
    /// `trailingBytes(-19)`, a negative count in logs and status.
    @Test func aKeyedAckTooShortForItsKeyIsTruncated() {
        let key = FrameKey(secret: (0..<32).map { UInt8(255 - $0 * 3) })
        let ack: [UInt8] = [
            0xFE, 0x46, 0x52, 0x59, 0x01, 0x02, 0x00, 0x03, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x2D, 0xBB, 0x00, 0xD6, 0xFF, 0x14,
            0x75, 0xCB, 0x6C, 0xC5, 0xB7, 0x22, 0xAB, 0x29, 0x0F, 0x76, 0xEA, 0xF9, 0x49, 0xDD, 0x63, 0x20, 0x64, 0x87, 0xD1, 0x94, 0x13, 0x4E,
            0xF0,
        ]
        let ring = FrameKeyRing(keys: [key])
        #expect(throws: FrameCodec.DecodeError.truncated(45)) { try FrameCodec.decodeAck(ByteBuffer(bytes: ack), keys: ring) }
        #expect(throws: FrameCodec.DecodeError.truncated(45)) { try FrameCodec.decodeAcks(ByteBuffer(bytes: ack), keys: ring) }
    }

    @Test func theKeyIdSaysNothingOfTheSecretAndDescriptionsNeverShowIt() {
        let secret = (0..<32).map { UInt8($0 * 7 + 1) }
        #expect(FrameKey(secret: secret).id == key.id)  // stable, so both ends agree
        #expect(key.id != otherKey.id)
        let hex = secret.map { String($0, radix: 16) }.joined()
        #expect(!"\(key)".contains(hex) && !"\(FrameKeyRing(keys: [key]))".contains(hex))
    }

    private func rewriteCRC(_ frame: inout ByteBuffer) {
        let crc = frame.withUnsafeReadableBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[..<($0.count - 4)])) }
        frame.setInteger(crc, at: frame.readableBytes - 4)
    }
}
