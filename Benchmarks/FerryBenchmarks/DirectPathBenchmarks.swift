import Benchmark
import FerryCore
import Logging
import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// The udp:// path as it runs in steady state, on real loopback sockets: a
/// receive thread's `ReceiveLoop` reads a burst with `recvmmsg` into its
/// reused slabs, counts it, and sends it on the direct route with `sendmmsg`
/// to a connected socket, reporting forwarded logs, latency and a breaker
/// success to the `Upstream`, as `ferry serve` does.
///
/// Each iteration also sends the burst to Ferry (64 `send` calls) and drains
/// the sink (`recv` until empty) with preallocated buffers, so the mallocs
/// counted are Ferry's. The system calls dominate the time: it is a cost per
/// burst on this machine, not Ferry's overhead.
func registerDirectPathBenchmarks() {
    Benchmark(
        "udp:// direct path, loopback: recvmmsg→sendmmsg of a 64×200 B burst",
        configuration: ferryConfiguration(.one)
    ) { benchmark in
        let rig: DirectPathRig
        do {
            rig = try DirectPathRig(burst: 64, datagramBytes: 200)
        } catch {
            benchmark.error("cannot set up loopback sockets: \(error)")
            return
        }
        defer { rig.close() }
        // Steady state: the first bursts size every slab's records array.
        for _ in 0..<32 { rig.iteration() }
        let before = rig.upstream.snapshot.forwarded
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            rig.iteration()
        }
        benchmark.stopMeasurement()
        let forwarded = rig.upstream.snapshot.forwarded - before
        if forwarded != benchmark.scaledIterations.count * 64 || rig.handedOver != 0 {
            benchmark.error("direct path not taken: forwarded \(forwarded), handed over \(rig.handedOver) bursts")
        }
    }
}

/// A receive socket, its `ReceiveLoop` with the direct route open, a sender
/// and a sink, all on loopback.
final class DirectPathRig {
    let handoff: HandoffCount
    private let sink: LoopbackSink
    private let socket: ReceiveSocket
    private let loop: ReceiveLoop
    private let sender: CInt
    private let burst: Int
    private let payload: UnsafeMutableRawBufferPointer

    var upstream: Upstream { sink.upstream }
    var handedOver: Int { handoff.count }

    /// Counts bursts the loop handed over instead of sending them itself.
    final class HandoffCount {
        var count = 0
    }

    init(burst: Int, datagramBytes: Int) throws {
        self.burst = burst
        handoff = HandoffCount()
        payload = .allocate(byteCount: datagramBytes, alignment: 8)
        payload.initializeMemory(as: UInt8.self, repeating: UInt8(ascii: "l"))
        sink = try LoopbackSink(logger: benchmarkLogger)
        let upstream = sink.upstream
        upstream.setAvailable(true, lane: 0)
        let route = DirectRoute()
        route.open(upstream: 0)

        socket = try ReceiveSocket.bind(
            to: try SocketAddress(ipAddress: "127.0.0.1", port: 0), receiveBufferBytes: 8 << 20, wakeInterval: .milliseconds(100))
        sender = Glibc.socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        let (sender, handoff) = (self.sender, self.handoff)
        _ = socket.localAddress.withSockAddr { Glibc.connect(sender, $0, socklen_t($1)) }
        loop = ReceiveLoop(
            socket: socket, batch: burst, maxDatagramBytes: 65_507, slabs: 8,
            forwarding: .init(loopIndex: 0, upstreams: [upstream], route: route, counters: PipelineCounters(), sampleRate: 0),
            logger: benchmarkLogger
        ) { _ in handoff.count += 1 }
    }

    /// Sends one burst to Ferry, lets Ferry read and forward it, drains the sink.
    @inline(__always)
    func iteration() {
        for _ in 0..<burst {
            _ = Glibc.send(sender, payload.baseAddress, payload.count, 0)
        }
        loop.step()
        sink.drain()
    }

    func close() {
        loop.close()
        socket.close()
        Glibc.close(sender)
        sink.close()
        payload.deallocate()
    }
}
