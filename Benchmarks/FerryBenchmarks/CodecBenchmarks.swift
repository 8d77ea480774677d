import Benchmark
import FerryCore
import NIOCore

/// A `ferry://` data frame of 7 records of 200 bytes (about the size Ferry
/// packs a burst of typical log lines into), encoded into one reused buffer
/// and decoded back.
func registerCodecBenchmarks() {
    let recordCount = 7
    let recordBytes = 200

    func makeRecords() -> [ByteBuffer] {
        (0..<recordCount).map { index in
            ByteBuffer(string: String(repeating: Character(UnicodeScalar(UInt8(97 + index))), count: recordBytes))
        }
    }
    let header = FrameCodec.DataHeader(
        senderID: 0x1234_5678_9ABC_DE00, sequence: 42, ttlMilliseconds: 5_000, sentAtMilliseconds: 1_700_000_000_000,
        traceID: TraceID(high: 0x0123_4567_89AB_CDEF, low: 0xFEDC_BA98_7654_3211))

    Benchmark("FrameCodec.encodeData 7×200 B into a reused buffer", configuration: ferryConfiguration(.kilo)) { benchmark in
        let records = makeRecords()
        var buffer = ByteBufferAllocator().buffer(capacity: FrameCodec.maximumFrameBytes)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            buffer.clear()
            FrameCodec.encodeData(header: header, records: records[...], into: &buffer)
            blackHole(buffer.readableBytes)
        }
        benchmark.stopMeasurement()
        precondition(buffer.readableBytes == FrameCodec.dataHeaderBytes + recordCount * (recordBytes + 2) + FrameCodec.trailerBytes)
    }

    Benchmark("FrameCodec.decodeData 7×200 B (records as slices)", configuration: ferryConfiguration(.kilo)) { benchmark in
        var frame = ByteBufferAllocator().buffer(capacity: FrameCodec.maximumFrameBytes)
        FrameCodec.encodeData(header: header, records: makeRecords()[...], into: &frame)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            do {
                let decoded = try FrameCodec.decodeData(frame)
                blackHole(decoded.records.count)
            } catch {
                benchmark.error("decode failed: \(error)")
                return
            }
        }
    }
}
