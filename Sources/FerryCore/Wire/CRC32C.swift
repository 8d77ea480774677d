import CFerrySystem

/// CRC-32C (Castagnoli), the checksum of Ferry frames: detects corruption and
/// truncation far better than the 16-bit UDP checksum (which may even be off).
///
/// Computed in C (`cferry_crc32c`) with the CPU's crc32 instruction where it
/// has one (SSE4.2), else with a table; a software table in Swift cost about a
/// twentieth of both hops' CPU in the ferry:// benchmark.
enum CRC32C {
    static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        guard let base = bytes.baseAddress else { return 0 }
        return cferry_crc32c(0xFFFF_FFFF, base, bytes.count) ^ 0xFFFF_FFFF
    }
}
