import Benchmark
import FerryCore
import NIOCore

/// The shared buffer bound: one compare-and-swap reserves a whole read burst.
///
/// Called from this module, the generic `reservePrefix(of:size:)` runs
/// unspecialized (it is not `@inlinable`), so it costs more here than inside
/// FerryCore, where `LoopPipeline.flush` gets a specialized copy; the
/// `udp://` ingest benchmark measures that one. `reserveAll` is not generic.
func registerCapacityBenchmarks() {
    Benchmark("BufferCapacity.reservePrefix + release, 32×200 B burst", configuration: ferryConfiguration(.kilo)) { benchmark in
        let capacity = BufferCapacity(logs: 100_000, bytes: 64 << 20)
        let receiveBuffer = ByteBuffer(repeating: UInt8(ascii: "x"), count: 32 * 200)
        let burst = (0..<32).map { receiveBuffer.getSlice(at: $0 * 200, length: 200)! }
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            let (count, bytes) = capacity.reservePrefix(of: burst) { $0.readableBytes }
            blackHole(count)
            capacity.release(count: count, bytes: bytes)
        }
        benchmark.stopMeasurement()
        precondition(capacity.usedLogs == 0 && capacity.usedBytes == 0)
    }

    Benchmark("BufferCapacity.reserveAll + release, 32 logs / 6,400 B", configuration: ferryConfiguration(.kilo)) { benchmark in
        let capacity = BufferCapacity(logs: 100_000, bytes: 64 << 20)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(capacity.reserveAll(count: 32, bytes: 32 * 200))
            capacity.release(count: 32, bytes: 32 * 200)
        }
        benchmark.stopMeasurement()
        precondition(capacity.usedLogs == 0 && capacity.usedBytes == 0)
    }
}
