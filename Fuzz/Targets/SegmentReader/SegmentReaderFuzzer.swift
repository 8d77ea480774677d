import FuzzSupport
import NIOCore

@testable import FerryCore

#if canImport(Glibc)
    import Glibc
#endif

/// The segment reader (``SegmentReader``) over a real file: a segment header
/// and records built from the input (or raw bytes), read whole and again in
/// small chunks, stopping every few records and resuming where it stopped
/// (as the read-back does).
///
/// Checks: both reads visit the same records at the same offsets; each is a
/// record with a right checksum in the file; records, damaged and torn bytes
/// add up to the bytes read; and a clean segment is read whole.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSegmentReader(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let mode = input.byte()
    let chunk = Int(input.byte()) + 1
    let stopEvery = Int(input.byte() % 8)
    let first = mode & 2 != 0 ? input.integer(bytes: 8) : 1
    var file = SpoolBytes.segmentHeader(shard: 0, firstSequence: first)
    var built: SpoolBytes?
    if mode & 1 != 0 {
        file += input.rest()
    } else {
        built = SpoolBytes(&input, firstSequence: first)
        file += built!.bytes
    }
    let path = ScratchDirectory.path + "/segment"
    ScratchDirectory.write(file, to: path)
    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
    invariant(descriptor >= 0, "open: errno \(errno)")
    defer { close(descriptor) }
    let start = SpoolRecordFormat.segmentHeaderBytes

    var whole: [Visit] = []
    var reader = SegmentReader(descriptor: descriptor, scanner: SpoolRecordScanner(lowestSequence: first))
    let outcome = reader.read(from: start, to: file.count, allocator: ByteBufferAllocator()) { sequence, payload, offset in
        whole.append(Visit(sequence: sequence, payload: Array(payload.readableBytesView), offset: offset))
        return true
    }
    invariant(!outcome.stoppedEarly && outcome.offset == file.count, "a whole read ended at \(outcome.offset) of \(file.count)")
    let recordBytes = whole.reduce(0) { $0 + SpoolRecordFormat.recordHeaderBytes + $1.payload.count }
    let tornBytes = outcome.tornFrom.map { file.count - $0 } ?? 0
    invariant(recordBytes + outcome.damagedBytes + tornBytes == file.count - start, "records, damage and torn tail do not add up")
    for visit in whole {
        invariant(
            SpoolBytes.isGoodRecord(file, at: visit.offset, sequence: visit.sequence, payload: visit.payload), "a bad record at \(visit.offset)")
    }
    if let built, built.intact {
        invariant(whole.map(\.sequence) == built.built.map(\.sequence), "a clean segment was not read whole")
        invariant(outcome.damagedBytes == 0 && outcome.tornFrom == nil, "damage reported in a clean segment")
    }

    let pieces = readInPieces(descriptor, first: first, from: start, to: file.count, chunk: chunk, stopEvery: stopEvery)
    invariant(pieces.visits == whole, "a read in \(chunk)-byte chunks, stopping every \(stopEvery), visited other records")
    invariant(pieces.damagedBytes == outcome.damagedBytes && pieces.tornFrom == outcome.tornFrom, "chunked reads count damage differently")
    return 0
}

private struct Visit: Equatable {
    var sequence: UInt64
    var payload: [UInt8]
    var offset: Int
}

/// Reads with `chunk`-byte chunks, taking `stopEvery` records (all when 0) per read and resuming where it stopped.
private func readInPieces(
    _ descriptor: CInt, first: UInt64, from start: Int, to end: Int, chunk: Int, stopEvery: Int
) -> (visits: [Visit], damagedBytes: Int, tornFrom: Int?) {
    var visits: [Visit] = []
    var damagedBytes = 0
    var offset = start
    for _ in 0...(end - start + 1) {
        var reader = SegmentReader(
            descriptor: descriptor, scanner: SpoolRecordScanner(lowestSequence: first, lastSequence: visits.last?.sequence), chunkBytes: chunk)
        var taken = 0
        let outcome = reader.read(from: offset, to: end, allocator: ByteBufferAllocator()) { sequence, payload, at in
            guard stopEvery == 0 || taken < stopEvery else { return false }
            taken += 1
            visits.append(Visit(sequence: sequence, payload: Array(payload.readableBytesView), offset: at))
            return true
        }
        damagedBytes += outcome.damagedBytes
        invariant(outcome.offset >= offset, "a read went backwards: \(offset) -> \(outcome.offset)")
        offset = outcome.offset
        if !outcome.stoppedEarly {
            invariant(offset == end, "a chunked read ended at \(offset) of \(end)")
            return (visits, damagedBytes, outcome.tornFrom)
        }
        invariant(taken > 0, "stopped before taking anything")
    }
    invariant(false, "chunked reads do not end")
    return (visits, damagedBytes, nil)
}

@main
enum SegmentReaderFuzzer {
    static func main() { FuzzDriver.run(fuzzSegmentReader) }
}
