#if canImport(Glibc)
    import Glibc
#endif

/// The logs `ferry bench` sends: printable syslog-style lines that carry their
/// own sequence number and send time, `<14>SEQUENCE16HEX TIME16HEX xxx…\n`
/// (the same shape as relay-bench's `--text` load), so any relay and any sink
/// pass them unchanged.
enum BenchPayload {
    static let minimumSize = 38

    static func monotonicNanoseconds() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
    }

    /// Writes log number `sequence`, sent now, as the first `length` bytes of
    /// `buffer` (filled with `x`, at least `length` long).
    static func fill(_ buffer: inout [UInt8], length: Int, sequence: UInt64, time: UInt64) {
        buffer.withUnsafeMutableBufferPointer { bytes in
            bytes[0] = UInt8(ascii: "<")
            bytes[1] = UInt8(ascii: "1")
            bytes[2] = UInt8(ascii: "4")
            bytes[3] = UInt8(ascii: ">")
            writeHex(sequence, into: bytes, at: 4)
            bytes[20] = UInt8(ascii: " ")
            writeHex(time, into: bytes, at: 21)
            bytes[37] = UInt8(ascii: " ")
            bytes[length - 1] = UInt8(ascii: "\n")
        }
    }

    /// Reads the sequence number and send time back, or nil for anything else.
    static func parse(_ bytes: UnsafeRawBufferPointer) -> (sequence: UInt64, time: UInt64)? {
        guard bytes.count >= minimumSize, bytes[0] == UInt8(ascii: "<"), bytes[3] == UInt8(ascii: ">"),
            let sequence = readHex(bytes, at: 4), let time = readHex(bytes, at: 21)
        else { return nil }
        return (sequence, time)
    }

    private static let digits = Array("0123456789abcdef".utf8)

    private static func writeHex(_ value: UInt64, into bytes: UnsafeMutableBufferPointer<UInt8>, at offset: Int) {
        for index in 0..<16 {
            bytes[offset + index] = digits[Int((value >> UInt64(60 - 4 * index)) & 0xF)]
        }
    }

    private static func readHex(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> UInt64? {
        var value: UInt64 = 0
        for index in 0..<16 {
            let byte = bytes[offset + index]
            let digit: UInt64
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt64(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt64(byte - UInt8(ascii: "a") + 10)
            default: return nil
            }
            value = value << 4 | digit
        }
        return value
    }
}
