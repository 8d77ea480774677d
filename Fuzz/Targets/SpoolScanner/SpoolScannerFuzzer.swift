import FerryCore
import FuzzSupport

/// The spool record scanner (``SpoolRecordScanner``) over bytes held in memory.
///
/// First byte: bit 0 takes the rest as raw bytes, else as a description of
/// records (``SpoolBytes``) built with Ferry's encoder and damaged; bit 1
/// starts with a last sequence; the second byte sets the window the region is
/// fed through. Checks: every record it returns has a right checksum (by an
/// independent CRC-32C), rises in sequence and lies inside the region; every
/// step moves forward and the scan ends; fed through small windows (as the
/// segment reader does) it finds exactly what one whole pass finds; and
/// undamaged records are found, all of them, with no damage reported.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSpoolScanner(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let mode = input.byte()
    let window = Int(input.byte()) + 1
    let lowest = mode & 4 != 0 ? input.integer(bytes: 8) : 1
    let last: UInt64? = mode & 2 != 0 ? lowest &+ input.integer(bytes: 1) : nil
    let region: [UInt8]
    var built: SpoolBytes?
    if mode & 1 != 0 {
        region = input.rest()
    } else {
        built = SpoolBytes(&input, firstSequence: last.map { $0 &+ 1 } ?? lowest)
        region = built!.bytes
    }
    let whole = scan(region, lowest: lowest, last: last, window: region.count)
    let windowed = scan(region, lowest: lowest, last: last, window: window)
    invariant(whole.records == windowed.records, "a scan through \(window)-byte windows found other records")
    let first = built?.built.first?.sequence ?? .max
    if let built, built.intact, first >= lowest, last.map({ $0 < first }) ?? true {
        invariant(whole.records.map(\.sequence) == built.built.map(\.sequence), "a clean region's records were not all found")
        invariant(!whole.damaged, "damage reported in a clean region")
    }
    return 0
}

private struct Found: Equatable {
    var sequence: UInt64
    var offset: Int
    var length: Int
}

/// Scans `region` as the segment reader does, `window` bytes at a time (grown when one record does not fit).
private func scan(_ region: [UInt8], lowest: UInt64, last: UInt64?, window: Int) -> (records: [Found], damaged: Bool) {
    var scanner = SpoolRecordScanner(lowestSequence: lowest, lastSequence: last)
    var records: [Found] = []
    var damaged = false
    var offset = 0
    var size = max(window, 1)
    var steps = 0
    while offset < region.count {
        let end = min(region.count, offset + size)
        let atEnd = end == region.count
        var position = 0
        var needMore = false
        region[offset..<end].withUnsafeBytes { chunk in
            while position < chunk.count, !needMore {
                steps += 1
                invariant(steps <= 4 * region.count + 16, "the scanner does not move forward")
                switch scanner.step(in: chunk, at: position, atEnd: atEnd) {
                case .record(let sequence, let payload, let next):
                    invariant(next > position && next <= chunk.count && payload.upperBound == next, "record bounds \(payload) next \(next)")
                    invariant(payload.lowerBound == position + 16, "payload does not follow its header")
                    let previous = records.last?.sequence ?? last
                    invariant(
                        sequence >= lowest && previous.map { sequence > $0 } ?? true, "sequence \(sequence) after \(String(describing: previous))")
                    let start = offset + position
                    let bytes = Array(region[start..<(offset + next)])
                    invariant(
                        SpoolBytes.isGoodRecord(bytes, at: 0, sequence: sequence, payload: Array(bytes[16...])),
                        "a record whose checksum fails at offset \(start)")
                    records.append(Found(sequence: sequence, offset: start, length: payload.count))
                    position = next
                case .needMore(let at):
                    invariant(!atEnd, "needMore at the end of the region")
                    invariant(at == position, "needMore elsewhere than asked")
                    needMore = true
                case .damaged(let resumeAt):
                    invariant(resumeAt > position && resumeAt <= chunk.count, "damage does not move forward: \(position) -> \(resumeAt)")
                    damaged = true
                    position = resumeAt
                }
            }
        }
        if needMore && position == 0 {
            size = region.count - offset  // one record longer than the window: the rest in one piece
            continue
        }
        offset += position
    }
    return (records, damaged)
}

@main
enum SpoolScannerFuzzer {
    static func main() { FuzzDriver.run(fuzzSpoolScanner) }
}
