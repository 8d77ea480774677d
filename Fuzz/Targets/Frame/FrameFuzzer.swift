import FerryCore
import FuzzSupport
import NIOCore

/// `ferry://` data frames, unkeyed and keyed (``FrameCodec/decodeData(_:keys:)``).
///
/// First byte: bit 0 decodes with the fuzz key ring (keyed), bit 1 seals the
/// rest as an encoder would (CRC, and key id and MAC with the key of bit 2),
/// bits 4–7 put the frame that far into its buffer. Checks: a frame that
/// decodes re-encodes to its own bytes (bytes 50–51 are reserved and ignored:
/// the rest must agree, and all of them when those are 0) and decodes again to
/// the same header and records; each record is the bytes the frame holds at
/// its place; a refusal's figures agree with the frame.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFrame(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let mode = input.byte()
    let keys = mode & 1 != 0 ? FuzzKeys.ring : nil
    var frame = input.rest()
    if mode & 2 != 0 { FrameBytes.seal(&frame, key: keys == nil ? nil : mode & 4 != 0 ? FuzzKeys.second : FuzzKeys.first) }
    let buffer = FrameBytes.buffer(frame, offset: Int(mode >> 4))
    do {
        let (header, records) = try FrameCodec.decodeData(buffer, keys: keys)
        checkDecoded(frame, header: header, records: records, keys: keys)
    } catch {
        checkRefused(frame, error)
    }
    return 0
}

private func checkDecoded(_ frame: [UInt8], header: FrameCodec.DataHeader, records: [ByteBuffer], keys: FrameKeyRing?) {
    invariant(FrameCodec.looksLikeFrame(FrameBytes.buffer(frame, offset: 0)), "decoded a frame without the magic")
    invariant((header.flags & FrameCodec.keyedFlag != 0) == (keys != nil), "keyed flag \(header.flags) decoded with keys: \(keys != nil)")
    invariant(records.count == Int(ReferenceCRC32C.load(frame, at: 48, count: 2)), "record count differs from the header's")
    var offset = FrameCodec.dataHeaderBytes
    for record in records {
        let length = Int(ReferenceCRC32C.load(frame, at: offset, count: 2))
        offset += FrameCodec.recordOverhead
        invariant(record.readableBytesView.elementsEqual(frame[offset..<(offset + length)]), "a record is not the frame's bytes at its place")
        offset += length
    }
    let key = keys == nil ? nil : FrameBytes.keyOf(frame)
    invariant(keys == nil || key != nil, "decoded with a key the ring does not hold")
    var again = ByteBuffer()
    FrameCodec.encodeData(header: header, records: records[...], into: &again, key: key)
    let encoded = Array(again.readableBytesView)
    let trailer = FrameCodec.trailerBytes + (key == nil ? 0 : FrameCodec.authBytes)
    if frame[50] == 0 && frame[51] == 0 {
        invariant(encoded == frame, "re-encoded frame differs: \(encoded) vs \(frame)")
    } else {
        invariant(
            FrameBytes.equal(encoded, frame, ignoring: [50..<52, (frame.count - trailer)..<frame.count]),
            "re-encoded frame differs outside the reserved bytes")
    }
    do {
        let decoded = try FrameCodec.decodeData(again, keys: keys)
        invariant(decoded.header == header && decoded.records == records, "the re-encoded frame decodes differently")
    } catch {
        invariant(false, "the re-encoded frame is refused: \(error)")
    }
}

private func checkRefused(_ frame: [UInt8], _ error: FrameCodec.DecodeError) {
    switch error {
    case .truncated(let length):
        invariant(length == frame.count, "truncated(\(length)) for \(frame.count) bytes")
    case .trailingBytes(let count):
        invariant(count > 0 && count < frame.count, "trailingBytes(\(count)) for \(frame.count) bytes")
    case .badRecordLength(let index):
        invariant(index >= 0 && index < Int(ReferenceCRC32C.load(frame, at: 48, count: 2)), "badRecordLength(\(index))")
    case .unexpectedType(let type):
        invariant(type != FrameCodec.FrameType.data.rawValue, "a data frame refused as of unexpected type")
    case .badMagic, .unsupportedVersion, .checksumMismatch, .badAckCount, .unauthenticated:
        break
    }
}

@main
enum FrameFuzzer {
    static func main() { FuzzDriver.run(fuzzFrame) }
}
