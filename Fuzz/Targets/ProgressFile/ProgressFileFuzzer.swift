import FerryCore
import FuzzSupport

/// The progress file (``ProgressFile``): two checksummed slots of any bytes,
/// read at start, then written twice as the spool's worker does.
///
/// First byte: bit 0 takes the rest as the raw file, else builds two slots
/// (generation and watermark from the input; bit 1 and bit 2 damage one).
/// Checks: the reading is what an independent decoder of the two slots says
/// (the newest good slot, the second on a tie; unreadable when none); after
/// reading any file, each write is what the next start reads.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzProgressFile(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let mode = input.byte()
    var file: [UInt8]
    if mode & 1 != 0 {
        file = input.rest()
    } else {
        file = SpoolFileBytes.progressSlot(generation: SpoolFileBytes.number(&input), watermark: SpoolFileBytes.number(&input))
        file += SpoolFileBytes.progressSlot(generation: SpoolFileBytes.number(&input), watermark: SpoolFileBytes.number(&input))
        if mode & 2 != 0 { file[Int(input.byte()) % file.count] ^= input.byte() | 1 }
        if mode & 4 != 0 { file = Array(file.prefix(Int(input.byte()))) }
    }
    let path = ScratchDirectory.path + "/progress"
    ScratchDirectory.write(file, to: path)
    var progress = ProgressFile(path: path)
    let reading = progress.read()
    invariant(reading == expected(file), "read \(reading), expected \(expected(file))")

    for watermark in [SpoolFileBytes.number(&input), SpoolFileBytes.number(&input)] {
        invariant(progress.write(watermark) == nil, "a write failed")
        var again = ProgressFile(path: path)
        invariant(again.read() == .watermark(watermark), "wrote \(watermark), the next start reads \(again.read())")
    }
    progress.close()
    return 0
}

/// The newest slot whose magic and checksum are right (the later one on a tie), read independently.
private func expected(_ file: [UInt8]) -> ProgressFile.Reading {
    let bytes = file.prefix(64)
    guard !bytes.isEmpty else { return .unreadable }
    var best: (generation: UInt64, watermark: UInt64)?
    for slot in 0..<2 where (slot + 1) * 32 <= bytes.count {
        let start = slot * 32
        guard bytes[start..<(start + 8)].elementsEqual("FERRYPRG".utf8) else { continue }
        guard ReferenceCRC32C.load(bytes, at: start + 28, count: 4) == UInt64(ReferenceCRC32C.checksum(bytes[start..<(start + 28)])) else {
            continue
        }
        let generation = ReferenceCRC32C.load(bytes, at: start + 8, count: 8)
        if generation >= best?.generation ?? 0 { best = (generation, ReferenceCRC32C.load(bytes, at: start + 16, count: 8)) }
    }
    return best.map { .watermark($0.watermark) } ?? .unreadable
}

@main
enum ProgressFileFuzzer {
    static func main() { FuzzDriver.run(fuzzProgressFile) }
}
