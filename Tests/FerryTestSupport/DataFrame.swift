import FerryCore
import Foundation
import NIOCore

/// A `ferry://` data frame's bytes, one datagram, for a test that plays the sender.
public func dataFrame(
    sender: UInt64 = 0x1234_5600, sequence: UInt32, records: [String], sentAt: UInt64 = epochMilliseconds(), ttl: UInt32 = 10_000,
    flags: UInt16 = 0, key: FrameKey? = nil
) -> [UInt8] {
    var buffer = ByteBuffer()
    let header = FrameCodec.DataHeader(
        senderID: sender, sequence: sequence, ttlMilliseconds: ttl, sentAtMilliseconds: sentAt, traceID: .random(), flags: flags)
    FrameCodec.encodeData(header: header, records: ArraySlice(records.map { ByteBuffer(string: $0) }), into: &buffer, key: key)
    return Array(buffer.readableBytesView)
}

/// Now, in milliseconds since the epoch (a frame's first-send time).
public func epochMilliseconds() -> UInt64 {
    UInt64(Date().timeIntervalSince1970 * 1_000)
}
