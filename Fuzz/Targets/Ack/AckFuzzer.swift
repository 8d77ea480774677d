import FerryCore
import FuzzSupport
import NIOCore

/// `ferry://` acks and batched acks, unkeyed and keyed
/// (``FrameCodec/decodeAcks(_:keys:)`` and ``FrameCodec/decodeAck(_:keys:)``).
///
/// First byte as in the frame target (bit 0 keyed, bit 1 seal, bit 2 second
/// key, bits 4–7 reader offset). Checks: an ack that decodes re-encodes to its
/// own bytes apart from what this version ignores (flag bits other than the
/// keyed one; the reserved bytes 20–23 of an ack, 18–19 of a batched ack) and
/// decodes again to the same; both decoders agree on a single ack; a batched
/// ack names 1...256 sequences; a refusal's figures agree with the bytes.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzAck(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let mode = input.byte()
    let keys = mode & 1 != 0 ? FuzzKeys.ring : nil
    var frame = input.rest()
    if mode & 2 != 0 { FrameBytes.seal(&frame, key: keys == nil ? nil : mode & 4 != 0 ? FuzzKeys.second : FuzzKeys.first) }
    let buffer = FrameBytes.buffer(frame, offset: Int(mode >> 4))
    let batched = frame.count >= 6 && frame[5] == FrameCodec.FrameType.batchedAck.rawValue
    var acks: (senderID: UInt64, sequences: [UInt32])?
    do {
        acks = try FrameCodec.decodeAcks(buffer, keys: keys)
    } catch {
        checkRefused(frame, error)
    }
    if batched {
        if let acks { checkBatched(frame, acks, keys: keys) }
        return 0
    }
    do {
        let ack = try FrameCodec.decodeAck(buffer, keys: keys)
        invariant(acks?.senderID == ack.senderID && acks?.sequences == [ack.sequence], "decodeAcks and decodeAck disagree")
        checkSingle(frame, ack, keys: keys)
    } catch {
        invariant(acks == nil, "decodeAcks took an ack decodeAck refuses: \(error)")
        checkRefused(frame, error)
    }
    return 0
}

private func checkSingle(_ frame: [UInt8], _ ack: FrameCodec.Ack, keys: FrameKeyRing?) {
    let key = keys == nil ? nil : FrameBytes.keyOf(frame)
    invariant(keys == nil || key != nil, "decoded with a key the ring does not hold")
    var again = ByteBuffer()
    FrameCodec.encodeAck(ack, into: &again, key: key)
    let encoded = Array(again.readableBytesView)
    let ignored = ignoredFlagBytes(frame) + [20..<24, (FrameCodec.ackBytes - FrameCodec.trailerBytes)..<frame.count]
    invariant(FrameBytes.equal(encoded, frame, ignoring: ignored), "re-encoded ack differs: \(encoded) vs \(frame)")
    if FrameBytes.equal(encoded, frame, ignoring: ignoredFlagBytes(frame) + [20..<24]) {
        invariant(encoded == frame, "re-encoded ack differs only in its checksum or MAC")
    }
    do {
        let decoded = try FrameCodec.decodeAck(again, keys: keys)
        invariant(decoded == ack, "the re-encoded ack decodes differently")
    } catch {
        invariant(false, "the re-encoded ack is refused: \(error)")
    }
}

private func checkBatched(_ frame: [UInt8], _ acks: (senderID: UInt64, sequences: [UInt32]), keys: FrameKeyRing?) {
    invariant((1...FrameCodec.maximumBatchedAcks).contains(acks.sequences.count), "a batched ack of \(acks.sequences.count) sequences")
    let key = keys == nil ? nil : FrameBytes.keyOf(frame)
    invariant(keys == nil || key != nil, "decoded with a key the ring does not hold")
    var again = ByteBuffer()
    FrameCodec.encodeBatchedAck(senderID: acks.senderID, sequences: acks.sequences[...], into: &again, key: key)
    let encoded = Array(again.readableBytesView)
    let body = FrameCodec.batchedAckHeaderBytes + 4 * acks.sequences.count
    let ignored = ignoredFlagBytes(frame) + [18..<20, body..<frame.count]
    invariant(FrameBytes.equal(encoded, frame, ignoring: ignored), "re-encoded batched ack differs: \(encoded) vs \(frame)")
    if FrameBytes.equal(encoded, frame, ignoring: ignoredFlagBytes(frame) + [18..<20]) {
        invariant(encoded == frame, "re-encoded batched ack differs only in its checksum or MAC")
    }
    do {
        let decoded = try FrameCodec.decodeAcks(again, keys: keys)
        invariant(decoded.senderID == acks.senderID && decoded.sequences == acks.sequences, "the re-encoded batched ack decodes differently")
    } catch {
        invariant(false, "the re-encoded batched ack is refused: \(error)")
    }
}

/// The flag bytes when they hold bits other than the keyed one (ignored by this version; written as 0).
private func ignoredFlagBytes(_ frame: [UInt8]) -> [Range<Int>] {
    let flags = UInt16(frame[6]) << 8 | UInt16(frame[7])
    return flags & ~FrameCodec.keyedFlag == 0 ? [] : [6..<8]
}

private func checkRefused(_ frame: [UInt8], _ error: FrameCodec.DecodeError) {
    switch error {
    case .truncated(let length):
        invariant(length == frame.count, "truncated(\(length)) for \(frame.count) bytes")
    case .trailingBytes(let count):
        invariant(count > 0 && count < frame.count, "trailingBytes(\(count)) for \(frame.count) bytes")
    case .badAckCount(let count):
        invariant(!(1...FrameCodec.maximumBatchedAcks).contains(count), "badAckCount(\(count))")
    case .badRecordLength:
        invariant(false, "an ack refused for a record length")
    case .badMagic, .unsupportedVersion, .unexpectedType, .checksumMismatch, .unauthenticated:
        break
    }
}

@main
enum AckFuzzer {
    static func main() { FuzzDriver.run(fuzzAck) }
}
