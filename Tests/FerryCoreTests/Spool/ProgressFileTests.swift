import FerryTestSupport
import Foundation
import Testing

@testable import FerryCore

/// The progress file read from any bytes, then written.
struct ProgressFileTests {
    /// One slot as ``ProgressFile`` writes it.
    private func slot(generation: UInt64, watermark: UInt64) -> [UInt8] {
        var bytes = Array("FERRYPRG".utf8)
        withUnsafeBytes(of: generation.bigEndian) { bytes += $0 }
        withUnsafeBytes(of: watermark.bigEndian) { bytes += $0 }
        bytes += [0, 0, 0, 0]
        let crc = bytes.withUnsafeBytes { CRC32C.checksum($0) }
        withUnsafeBytes(of: crc.bigEndian) { bytes += $0 }
        return bytes
    }

    /// Found by the ProgressFile fuzz target: a slot whose generation is
    /// 2^64 − 1 (checksum right) took Ferry down at the first write after
    /// start (`generation += 1` overflowed).
    @Test func aFileAtTheLastGenerationIsWrittenAndReadBack() throws {
        let path = try scratchDirectory("progress") + "/progress-default"
        let file = slot(generation: 3, watermark: UInt64.max) + slot(generation: UInt64.max, watermark: UInt64.max)  // the fuzzer's file
        try Data(file).write(to: URL(fileURLWithPath: path))
        var progress = ProgressFile(path: path)
        #expect(progress.read() == .watermark(.max))
        for watermark: UInt64 in [100, 250] {
            #expect(progress.write(watermark) == nil)
            var next = ProgressFile(path: path)
            #expect(next.read() == .watermark(watermark))
        }
        progress.close()
    }
}
