/// CRC-32C in plain Swift, bit by bit from the table: an independent check of
/// the checksums Ferry computes in C.
public enum ReferenceCRC32C {
    private static let table: [UInt32] = (0..<256).map { index in
        var crc = UInt32(index)
        for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
        return crc
    }

    public static func checksum<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }

    /// Writes `value` big-endian at `offset`.
    public static func store(_ value: UInt32, into bytes: inout [UInt8], at offset: Int) {
        for index in 0..<4 { bytes[offset + index] = UInt8(truncatingIfNeeded: value >> (24 - 8 * index)) }
    }

    /// Reads a big-endian integer of `count` bytes at `offset`.
    public static func load<C: Collection>(_ bytes: C, at offset: Int, count: Int) -> UInt64 where C.Element == UInt8, C.Index == Int {
        var value: UInt64 = 0
        for index in 0..<count { value = value << 8 | UInt64(bytes[bytes.startIndex + offset + index]) }
        return value
    }
}
