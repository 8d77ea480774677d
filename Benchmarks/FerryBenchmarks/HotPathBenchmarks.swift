import Benchmark
import FerryCore
import Foundation
import Logging
import NIOCore

/// The per-log pieces the later issues put on the data path: the PRI read,
/// the route decision, the rate-limit table, a frame held open for the
/// linger, a frame's MAC and the spool append. Each iteration is one burst of 64 logs (the receive batch), so
/// mallocs per iteration divided by 64 are mallocs per log.
func registerHotPathBenchmarks() {
    let burst = 64
    let lines: [ByteBuffer] = (0..<burst).map { index in
        // Real-looking lines of varied length and PRI: facilities user and local0, every severity.
        let priority = (index % 2 == 0 ? 1 : 16) * 8 + index % 8
        let body = String(repeating: "x", count: 40 + (index * 37) % 320)
        return ByteBuffer(string: "<\(priority)>1 2026-12-03T09:00:00Z host app \(index) - - \(body)")
    }

    Benchmark("SyslogPriority: the PRI of 64 varied lines", configuration: ferryConfiguration(.kilo)) { benchmark in
        for _ in benchmark.scaledIterations {
            var sum = 0
            for line in lines { sum &+= SyslogPriority(of: line)?.value ?? -1 }
            blackHole(sum)
        }
    }

    // Three routes as the README's bench has them: everything, warning and worse, local0 from 10.0.0.0/8.
    let positions = ListenerPositions(names: ["udp://127.0.0.1:5514", "http"])
    let matches = [
        RouteMatch(),
        RouteMatch(severity: .warning),
        RouteMatch(facilities: [16], source: SourceAllowlist([CIDRBlock(parsing: "10.0.0.0/8")!])),
    ].map { $0.compiled(listeners: positions) }
    let sources = (0..<burst).map { SourceKey(high: 0, low: 0xFFFF_0A00_0000 | UInt64($0)) }  // ::ffff:10.0.0.N
    Benchmark("Route decision: PRI + 3 routes for 64 logs", configuration: ferryConfiguration(.kilo)) { benchmark in
        for _ in benchmark.scaledIterations {
            var taken = 0
            for (line, source) in zip(lines, sources) {
                let priority = SyslogPriority(of: line)
                for match in matches where match.takes(priority: priority, source: source) { taken &+= 1 }
            }
            blackHole(taken)
        }
    }

    Benchmark("SourceRateTable: 64 logs from 64 sources of 1,024", configuration: ferryConfiguration(.kilo)) { benchmark in
        var table = SourceRateTable(rate: 1e9, burst: 1_000_000, capacity: 1_024)
        var now: UInt64 = 1
        let many = (0..<1_024).map { SourceKey(high: 0, low: 0xFFFF_0A00_0000 | UInt64($0)) }
        var next = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            var granted = 0
            for _ in 0..<burst {
                granted &+= table.take(many[next], now: now)
                next = (next + 1) & 1_023
            }
            now &+= 1_000
            blackHole(granted)
        }
    }

    // forward.frame-linger: a frame filled by four bursts of 16 and then read out to be sent, as
    // FerryUpstreamLane.send does while traffic is too light to fill frames by itself.
    let quarters = (0..<4).map { Array(lines[($0 * 16)..<($0 * 16 + 16)]) }
    Benchmark("OpenFrame: 64 logs held over 4 bursts of 16 (frame linger)", configuration: ferryConfiguration(.kilo)) { benchmark in
        var open = OpenFrame()
        var outgoing: [ByteBuffer] = []
        outgoing.reserveCapacity(burst)
        let now = NIODeadline.now()
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            for quarter in quarters { open.append(quarter, spans: SpoolSpans(), receivedAt: now, now: now) }
            open.appendRecords(to: &outgoing)
            blackHole(outgoing.count)
            outgoing.removeAll(keepingCapacity: true)
            open.removeAll()
        }
    }

    let key = FrameKey(secret: (0..<32).map { UInt8($0) })
    let frame = [UInt8](repeating: 0x5A, count: 1_450)
    Benchmark("FrameKey.mac of a 1,450 B frame (HMAC-SHA256)", configuration: ferryConfiguration(.kilo)) { benchmark in
        for _ in benchmark.scaledIterations {
            let mac = frame.withUnsafeBytes { key.mac($0) }
            blackHole(mac.0)
        }
    }

    // Each sample opens a fresh spool and appends 1,000 bursts (15 MB) to it, so its segments roll and are deleted as in use.
    Benchmark(
        "Spool append: a 64-log burst (pwrite, CRC-32C), settled",
        configuration: .init(metrics: ferryMetrics, warmupIterations: 3, scalingFactor: .kilo, maxDuration: .seconds(2), maxIterations: 30)
    ) { benchmark in
        let directory = NSTemporaryDirectory() + "ferry-bench-spool-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let settings = SpoolSettings(directory: directory, maxBytes: 4 << 30, segmentBytes: 8 << 20, sync: .interval, syncInterval: .seconds(1))
        let spool: Spool
        do {
            spool = try Spool.open(settings: settings, shardCount: 1, logger: Logger(label: "bench"))
        } catch {
            benchmark.error("spool: \(error)")
            return
        }
        defer { spool.close() }
        let shard = spool.shards[0]
        let capacity = BufferCapacity(logs: 1_000_000, bytes: 1 << 30)
        let bytes = lines.reduce(0) { $0 + $1.readableBytes }
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            let admission = shard.admit(lines, bytes: bytes, capacity: capacity, allOrNothing: false)
            guard let run = admission.run, admission.inMemory else {
                benchmark.error("spool refused the burst")
                return
            }
            capacity.release(count: run.count, bytes: bytes)
            shard.settle(CollectionOfOne(run))
        }
        benchmark.stopMeasurement()  // closing the spool and removing its files are not the append
    }
}
