import FerryCore
import NIOCore

/// Helpers of the frame and ack targets: seal an input as an encoder would
/// (so the fuzzer gets past the CRC and the MAC), and compare bytes apart
/// from the ones this version ignores.
public enum FrameBytes {
    /// Writes the key id and MAC (when `key` is given and the keyed flag is
    /// set) and the CRC-32C at the end of `frame`, in place.
    public static func seal(_ frame: inout [UInt8], key: FrameKey?) {
        guard frame.count >= FrameCodec.trailerBytes + 4 else { return }
        let keyedFlag = frame.count >= 8 && UInt16(frame[6]) << 8 | UInt16(frame[7]) & FrameCodec.keyedFlag != 0
        if let key, keyedFlag, frame.count >= 8 + FrameCodec.authBytes + FrameCodec.trailerBytes {
            let macOffset = frame.count - FrameCodec.trailerBytes - FrameKey.macBytes
            ReferenceCRC32C.store(key.id, into: &frame, at: macOffset - FrameKey.idBytes)
            let mac = frame.withUnsafeBytes { key.mac(UnsafeRawBufferPointer(rebasing: $0[..<macOffset])) }
            store(mac.0, into: &frame, at: macOffset)
            store(mac.1, into: &frame, at: macOffset + 8)
        }
        let body = frame.count - FrameCodec.trailerBytes
        ReferenceCRC32C.store(ReferenceCRC32C.checksum(frame[..<body]), into: &frame, at: body)
    }

    /// `bytes` in a buffer whose reader index is `offset` (a decoder must not assume 0).
    public static func buffer(_ bytes: [UInt8], offset: Int) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeRepeatingByte(0xEE, count: offset)
        buffer.writeBytes(bytes)
        buffer.moveReaderIndex(forwardBy: offset)
        return buffer
    }

    /// The key of the fuzz ring a keyed frame names (its id sits before the MAC and CRC).
    public static func keyOf(_ frame: [UInt8]) -> FrameKey? {
        let idOffset = frame.count - FrameCodec.trailerBytes - FrameKey.macBytes - FrameKey.idBytes
        guard idOffset >= 0 else { return nil }
        return FuzzKeys.key(id: UInt32(ReferenceCRC32C.load(frame, at: idOffset, count: 4)))
    }

    /// Whether `a` and `b` have one length and agree outside `ignored` (byte offsets).
    public static func equal(_ a: [UInt8], _ b: [UInt8], ignoring ignored: [Range<Int>]) -> Bool {
        guard a.count == b.count else { return false }
        for index in a.indices where a[index] != b[index] {
            if !ignored.contains(where: { $0.contains(index) }) { return false }
        }
        return true
    }

    private static func store(_ value: UInt64, into bytes: inout [UInt8], at offset: Int) {
        for index in 0..<8 { bytes[offset + index] = UInt8(truncatingIfNeeded: value >> (56 - 8 * index)) }
    }
}
