import NIOCore

/// Splits a `POST /v1/logs` body into lines without copying: each line is a
/// slice of the body. A trailing `\r` is removed; empty lines carry no log and
/// are skipped. In FerryCore (not beside its route) so the fuzz build needs no
/// HTTP server.
package enum LineSplitter {
    package static func lines(of body: ByteBuffer) -> [ByteBuffer] {
        var lines: [ByteBuffer] = []
        body.withUnsafeReadableBytes { bytes in
            var start = 0
            for index in 0...bytes.count {
                guard index == bytes.count || bytes[index] == UInt8(ascii: "\n") else { continue }
                var end = index
                if end > start, bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
                if end > start {
                    lines.append(body.getSlice(at: body.readerIndex + start, length: end - start)!)
                }
                start = index + 1
            }
        }
        return lines
    }
}
