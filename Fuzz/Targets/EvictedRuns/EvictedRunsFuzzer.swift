import FuzzSupport
import NIOCore

@testable import FerryCore

/// The evicted-runs file of a route's spool (``EvictedRuns``): any bytes
/// decoded, and runs added, forgotten and counted against a plain set.
///
/// First byte: bit 0 takes the rest raw (bit 1 then fixes its CRC), else
/// builds runs from the input. Checks: what decodes holds sorted, disjoint,
/// non-adjacent runs below the spool's sequence limit, encodes to the same
/// bytes and decodes to itself; added runs count what a set of their
/// sequences counts, before and after a watermark forgets some.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEvictedRuns(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let mode = input.byte()
    if mode & 1 != 0 {
        var bytes = input.rest()
        if mode & 2 != 0 { SpoolFileBytes.sealTail(&bytes) }
        if let runs = EvictedRuns.decode(ByteBuffer(bytes: bytes)) {
            checkShape(runs)
            let encoded = runs.encode()
            invariant(Array(encoded.readableBytesView) == bytes, "a decoded file does not encode to its bytes")
            invariant(EvictedRuns.decode(encoded) == runs, "encoded runs do not decode to themselves")
        }
        return 0
    }
    // Runs within 0..<512 (so a set can follow them), offset to somewhere below the limit.
    let base = input.integer(bytes: 8) % (SpoolRecordFormat.sequenceLimit - 1_024)
    var runs = EvictedRuns()
    var model = Set<UInt64>()
    while input.remaining >= 2 {
        let first = UInt64(input.byte()) * 2
        let count = UInt64(input.byte() % 40)
        runs.add((base + first)..<(base + first + count))
        for sequence in first..<(first + count) { model.insert(base + sequence) }
        checkShape(runs)
        invariant(runs.runs.count <= EvictedRuns.maximumRuns, "more runs than kept")
        invariant(runs.overlap(base..<(base + 1_024)) == model.count, "overlap \(runs.overlap(base..<(base + 1_024))) of \(model.count)")
        let low = base + UInt64(input.byte()) * 2
        let high = low + UInt64(input.byte())
        invariant(runs.overlap(low..<high) == model.filter { (low..<high).contains($0) }.count, "a partial overlap miscounts")
        invariant(EvictedRuns.decode(runs.encode()) == runs, "runs do not survive the file")
    }
    let watermark = base + UInt64(input.byte()) * 2
    runs.forget(below: watermark)
    checkShape(runs)
    invariant(runs.overlap(0..<SpoolRecordFormat.sequenceLimit) == model.filter { $0 >= watermark }.count, "forgetting miscounts")
    return 0
}

private func checkShape(_ runs: EvictedRuns) {
    for run in runs.runs {
        invariant(!run.isEmpty && run.upperBound <= SpoolRecordFormat.sequenceLimit, "run \(run)")
    }
    for (earlier, later) in zip(runs.runs, runs.runs.dropFirst()) {
        invariant(earlier.upperBound < later.lowerBound, "runs \(earlier) and \(later) touch or are out of order")
    }
}

@main
enum EvictedRunsFuzzer {
    static func main() { FuzzDriver.run(fuzzEvictedRuns) }
}
