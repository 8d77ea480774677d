import Benchmark
import FerryCore
import NIOCore
import NIOEmbedded

/// The udp:// path bursts take through an event loop (while the receive
/// thread's direct route is closed), on NIO's `EmbeddedEventLoop`: a burst
/// enters the real `LoopPipeline` as the receive thread hands it over (a
/// `ReceivedBurst` of slices of one receive buffer), the pipeline reserves it
/// in a `BufferCapacity` and hands it to the real `UDPUpstreamLane`, which sends
/// it with one `sendmmsg` to a loopback sink (drained each iteration) and
/// releases the reservation.
///
/// Not covered: the receive thread's hop onto the loop (one task per loop
/// wake-up); here the burst is built once and reused.
func registerIngestPathBenchmarks() {
    let burstSize = 32
    let datagramBytes = 200

    Benchmark(
        "udp:// through the event loop: pipeline + lane, one 32×200 B burst to a loopback sink",
        configuration: ferryConfiguration(.kilo)
    ) { benchmark in
        let rig: IngestRig
        do {
            rig = try IngestRig(burstSize: burstSize, datagramBytes: datagramBytes)
        } catch {
            benchmark.error("cannot set up loopback sockets: \(error)")
            return
        }
        defer { rig.close() }
        // Steady state: the first bursts grow the pipeline's arrays.
        for _ in 0..<64 { rig.burst() }
        let before = rig.upstream.snapshot.forwarded
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            rig.burst()
        }
        benchmark.stopMeasurement()
        let forwarded = rig.upstream.snapshot.forwarded - before
        if forwarded != benchmark.scaledIterations.count * burstSize || rig.capacity.usedLogs != 0 {
            benchmark.error("datagrams lost: forwarded \(forwarded), still reserved \(rig.capacity.usedLogs)")
        }
    }
}

/// One event loop's worth of Ferry wiring on an `EmbeddedEventLoop`, sending to a loopback sink.
final class IngestRig {
    let loop = EmbeddedEventLoop()
    let capacity = BufferCapacity(logs: 100_000, bytes: 64 << 20)
    let pipeline: LoopPipeline
    private let lane: UDPUpstreamLane
    private let sink: LoopbackSink
    private let received: ReceivedBurst

    var upstream: Upstream { sink.upstream }

    init(burstSize: Int, datagramBytes: Int) throws {
        sink = try LoopbackSink(logger: benchmarkLogger)
        pipeline = LoopPipeline(index: 0, eventLoop: loop, capacity: capacity, maxRecordBytes: 65_507, logger: benchmarkLogger)
        lane = UDPUpstreamLane(
            upstream: sink.upstream, eventLoop: loop, settlement: Settlement(capacity: capacity, spool: nil), laneIndex: 0, logger: benchmarkLogger)
        pipeline.setLanes([lane])
        _ = lane.start()
        loop.run()

        // One receive buffer, datagrams as slices of it, as the receive thread hands them over.
        var receiveBuffer = ByteBufferAllocator().buffer(capacity: burstSize * datagramBytes)
        let line = "<14>1 2025-01-01T00:00:00Z host app 1234 - - " + String(repeating: "l", count: 200)
        for _ in 0..<burstSize {
            receiveBuffer.writeString(String(line.prefix(datagramBytes)))
        }
        received = ReceivedBurst(
            records: (0..<burstSize).map { receiveBuffer.getSlice(at: $0 * datagramBytes, length: datagramBytes)! })
    }

    /// One read burst, as the receive thread hands it to the loop; then the sink is drained.
    @inline(__always)
    func burst() {
        pipeline.receive(received)
        sink.drain()
    }

    func close() {
        _ = lane.stop()
        sink.close()
        try? loop.syncShutdownGracefully()
    }
}
