import Benchmark
import FerryCore
import Logging
import NIOCore
import NIOEmbedded
import Prometheus

/// The udp:// data path of one event loop, driven through NIO's
/// `EmbeddedEventLoop`: a read burst enters the real `LoopPipeline` as the
/// receive thread hands it over (a `ReceivedBurst` of slices of one receive
/// buffer), the pipeline reserves it in a `BufferCapacity` and hands it to its
/// one lane, which writes every datagram to an `EmbeddedChannel` and flushes once.
///
/// The lane is benchmark-local (`EmbeddedUDPLane`): the real `UDPUpstreamLane`
/// opens its connected socket with `DatagramBootstrap`, which cannot run on an
/// `EmbeddedEventLoop`. It does what `UDPUpstreamLane.send` does per batch on
/// success: breaker `acquire`, one promise for the last write, one flush, and
/// on completion release of the reservation, the latency histogram, and
/// `record(success:)`.
///
/// Not covered: the socket system calls and the receive thread's hop onto the
/// loop (one closure per burst); here the burst is built once and reused.
func registerIngestPathBenchmarks() {
    let burstSize = 32
    let datagramBytes = 200

    Benchmark(
        "udp:// ingest→forward, EmbeddedChannel, one 32×200 B burst",
        configuration: ferryConfiguration(.kilo)
    ) { benchmark in
        let rig = IngestRig(burstSize: burstSize, datagramBytes: datagramBytes)
        // Steady state: the first bursts grow the pipeline's and the sink's arrays.
        for _ in 0..<64 { rig.burst() }
        let before = rig.sink.datagrams
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            rig.burst()
        }
        benchmark.stopMeasurement()
        let sent = rig.sink.datagrams - before
        if sent != benchmark.scaledIterations.count * burstSize || rig.capacity.usedLogs != 0 || rig.lane.forwarded != rig.sink.datagrams {
            benchmark.error("datagrams lost: sent \(sent), still reserved \(rig.capacity.usedLogs)")
        }
        rig.close()
    }
}

/// One event loop's worth of Ferry wiring on an `EmbeddedEventLoop`.
final class IngestRig {
    let loop = EmbeddedEventLoop()
    let capacity = BufferCapacity(logs: 100_000, bytes: 64 << 20)
    let pipeline: LoopPipeline
    let lane: EmbeddedUDPLane
    let sink = DatagramSink()
    let upstreamChannel: EmbeddedChannel
    private let received: ReceivedBurst

    init(burstSize: Int, datagramBytes: Int) {
        let logger = Logger(label: "ferry-benchmark", factory: { _ in SwiftLogNoOpLogHandler() })
        let registry = PrometheusCollectorRegistry()
        let url = UpstreamURL.udp(HostAndPort(host: "127.0.0.1", port: 5515))
        let latency = registry.makeDurationHistogram(
            name: "ferry_forward_latency_seconds", labels: [("upstream", url.description)], buckets: Relay.latencyBuckets)
        let upstream = Upstream(url: url, index: 0, lanes: 1, latency: latency, logger: logger)
        pipeline = LoopPipeline(
            index: 0, eventLoop: loop, capacity: capacity, maxRecordBytes: 65_507, logger: logger)
        upstreamChannel = EmbeddedChannel(handler: sink, loop: loop)
        lane = EmbeddedUDPLane(upstream: upstream, channel: upstreamChannel, eventLoop: loop, capacity: capacity)
        pipeline.setLanes([lane])

        // One receive buffer, datagrams as slices of it, as the receive thread hands them over.
        var receiveBuffer = ByteBufferAllocator().buffer(capacity: burstSize * datagramBytes)
        let line = "<14>1 2025-01-01T00:00:00Z host app 1234 - - " + String(repeating: "l", count: 200)
        for _ in 0..<burstSize {
            receiveBuffer.writeString(String(line.prefix(datagramBytes)))
        }
        received = ReceivedBurst(
            records: (0..<burstSize).map { receiveBuffer.getSlice(at: $0 * datagramBytes, length: datagramBytes)! })
    }

    /// One read burst, as the receive thread hands it to the loop.
    @inline(__always)
    func burst() {
        pipeline.receive(received)
    }

    func close() {
        _ = try? upstreamChannel.finish()
        try? loop.syncShutdownGracefully()
    }
}

/// Stands in for the connected UDP socket: counts what is written and, like a
/// socket, completes the write promises when the writes are flushed.
final class DatagramSink: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private(set) var datagrams = 0
    private(set) var bytes = 0
    private var pending: [EventLoopPromise<Void>] = []

    init() {
        pending.reserveCapacity(64)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let datagram = unwrapOutboundIn(data)
        datagrams += 1
        bytes += datagram.readableBytes
        if let promise { pending.append(promise) }
    }

    func flush(context: ChannelHandlerContext) {
        var index = 0
        while index < pending.count {
            pending[index].succeed(())
            index += 1
        }
        pending.removeAll(keepingCapacity: true)
    }
}

/// A benchmark-local `UpstreamLane` over an `EmbeddedChannel`, doing per batch
/// what `UDPUpstreamLane.send` does on its success path.
final class EmbeddedUDPLane: UpstreamLane {
    let upstream: Upstream
    private let channel: any Channel
    private let eventLoop: any EventLoop
    private let capacity: BufferCapacity
    private(set) var forwarded = 0
    private(set) var forwardedBytes = 0

    init(upstream: Upstream, channel: any Channel, eventLoop: any EventLoop, capacity: BufferCapacity) {
        self.upstream = upstream
        self.channel = channel
        self.eventLoop = eventLoop
        self.capacity = capacity
    }

    var canAccept: Bool { upstream.allowsTraffic() }

    func send(_ records: [ByteBuffer], bytes: Int, receivedAt: NIODeadline) {
        let count = records.count
        guard count > 0, upstream.acquire() else {
            capacity.release(count: count, bytes: bytes)
            return
        }
        let probing = upstream.breakerState == .halfOpen
        let promise = eventLoop.makePromise(of: Void.self)
        for index in records.indices {
            channel.write(records[index], promise: index == records.count - 1 ? promise : nil)
        }
        channel.flush()
        let upstream = self.upstream
        let capacity = self.capacity
        promise.futureResult.assumeIsolated().whenComplete { result in
            capacity.release(count: count, bytes: bytes)
            switch result {
            case .success:
                self.forwarded += count
                self.forwardedBytes += bytes
                upstream.observeLatency(since: receivedAt)
                if !probing { upstream.record(success: true) }
            case .failure:
                upstream.record(success: false)
            }
        }
    }

    func start() -> EventLoopFuture<Void> { eventLoop.makeSucceededVoidFuture() }
    func stop() -> EventLoopFuture<Void> { eventLoop.makeSucceededVoidFuture() }
    func repoint(to address: SocketAddress) {}
}
