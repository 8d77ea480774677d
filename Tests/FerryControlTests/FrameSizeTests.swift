import FerryCore
import FerryTestSupport
import Foundation
import NIOCore
import Testing

/// `ferry://` frames fill the path MTU of the lane's socket (65,536 on
/// loopback), capped by `forward.frame-max-bytes`: a burst of small logs
/// travels in one frame instead of one per 1,400 bytes, which halved the CPU
/// per log of the two-hop chain flat out.
// Its heavy tests wait for the load gate (a soak or a long timed test may hold it for minutes): the limit covers that wait.
@Suite(.timeLimit(.minutes(6)))
struct FrameSizeTests {
    /// The "aggregator" is a socket that hears frames and never acknowledges
    /// them, so the test sees each frame the edge sends as it sent it.
    @Test(arguments: [nil, 1_400] as [Int?])
    func framesFillThePathMTUUpToTheConfiguredMaximum(limit: Int?) async throws {
        let aggregator = try UDPTestSocket()
        var options = ["--upstream", "ferry://127.0.0.1:\(aggregator.port)"]
        if let limit { options += ["--frame-max-bytes", String(limit)] }
        let (edge, port, _) = try await FerryProcess.serve(options)
        defer { edge.signal(SIGTERM) }
        let sender = try UDPTestSocket()
        let line = [UInt8]("<14>frame-size ".utf8) + [UInt8](repeating: UInt8(ascii: "x"), count: 285)
        // Sent in a tight loop: the edge's reads take many at once.
        for _ in 0..<500 { sender.send(line, to: port) }
        let frames = aggregator.receive(count: 64, idleMilliseconds: 1_000, firstMilliseconds: 5_000)
        let largest = frames.map(\.count).max() ?? 0
        #expect(!frames.isEmpty)
        if let limit {
            #expect(largest <= limit, "largest frame \(largest) B over --frame-max-bytes \(limit)")
        } else {
            // Over what a 1,500-byte MTU takes: more logs in a frame than any Ethernet-sized frame holds.
            #expect(largest > 1_472, "largest frame \(largest) B of \(frames.count)")
        }
    }

    /// A lane takes no new batch once `forward.window-logs` logs are in flight:
    /// frames of the path MTU hold thousands of short lines, and without this
    /// cap 64 of them (a whole backlog after an outage) went out at once, so a
    /// slow receiver, which acks a burst of frames once all their logs hold a
    /// place, acked after `forward.ack-timeout` and the breaker opened again.
    /// The aggregator here never acks: what the edge sends before its first
    /// retransmission is what its window lets out.
    @Test func logsInFlightStopAtTheWindow() async throws {
        let aggregator = try UDPTestSocket()
        let window = 300
        let (edge, port, _) = try await FerryProcess.serve([
            "--upstream", "ferry://127.0.0.1:\(aggregator.port)", "--window-logs", "\(window)", "--ack-timeout", "5s",
            "--frame-ttl", "30s",
        ])
        defer { edge.signal(SIGTERM) }
        let sender = try UDPTestSocket()
        for index in 0..<5_000 { sender.send(Array("<14>w-\(index)".utf8), to: port) }
        let frames = aggregator.receive(count: 10_000, idleMilliseconds: 1_000, firstMilliseconds: 5_000)
        var sequences = Set<UInt32>()
        var logs = 0
        for datagram in frames {
            let (header, records) = try FrameCodec.decodeData(ByteBuffer(bytes: datagram))
            if sequences.insert(header.sequence).inserted { logs += records.count }
        }
        #expect(logs >= window, "\(logs) logs in \(sequences.count) frames")
        // Soft: the last batch a lane took may pass the cap (a batch is at most 1,024 logs; one per event loop).
        #expect(logs <= 2 * (window + 1_024), "\(logs) logs in \(sequences.count) frames for a window of \(window)")
    }

    /// `forward.frame-linger`: the last frame of a burst, not yet full, waits
    /// for the next bursts, so logs that trickle in share frames (and acks)
    /// instead of each read costing one. With it off, every burst is a frame.
    @Test(arguments: ["100ms", "0"])
    func framesAreFilledAcrossBurstsWithinTheLinger(linger: String) async throws {
        try await LoadGate.shared.heavy {
            let aggregator = try UDPTestSocket()  // hears frames, never acknowledges them
            let (edge, port, _) = try await FerryProcess.serve([
                "--upstream", "ferry://127.0.0.1:\(aggregator.port)", "--frame-linger", linger, "--ack-timeout", "10s", "--frame-ttl", "20s",
            ])
            defer { edge.signal(SIGTERM) }
            let sender = try UDPTestSocket()
            let count = 20
            // 10 ms apart: each its own read burst at the edge.
            for index in 0..<count {
                sender.send(Array("<14>linger \(index)".utf8), to: port)
                try await Task.sleep(for: .milliseconds(10))
            }
            var records: [UInt32: [String]] = [:]  // by frame sequence (a retransmission repeats one)
            for datagram in aggregator.receive(count: 1_000, idleMilliseconds: 500, firstMilliseconds: 5_000) {
                let frame = try FrameCodec.decodeData(ByteBuffer(bytes: datagram))
                records[frame.header.sequence] = frame.records.map { String(buffer: $0) }
            }
            let delivered = records.keys.sorted().flatMap { records[$0]! }
            #expect(delivered == (0..<count).map { "<14>linger \($0)" }, "every log once, in order")
            let largest = records.values.map(\.count).max() ?? 0
            if linger == "0" {
                #expect(records.count >= count / 2, "\(records.count) frames for \(count) bursts without a linger")
            } else {
                // ~10 bursts in each 100 ms; a frame never waits past the linger, so it cannot hold all 20.
                #expect(largest >= 4, "largest frame \(largest) logs of \(records.count) frames")
                #expect(records.count >= 2 && records.count <= count / 2, "\(records.count) frames")
            }
        }
    }

    /// A shutdown does not strand the open frame: its logs leave within the
    /// linger (at most 100 ms), which the drain waits for, and are acknowledged.
    @Test func aShutdownSendsTheOpenFrame() async throws {
        let directory = try scratchDirectory("linger-drain")
        let (aggregator, hop, _) = try await FerryProcess.serve(["--upstream", "file:\(directory)/out.log"])
        defer { aggregator.signal(SIGTERM) }
        let (edge, port, _) = try await FerryProcess.serve(["--upstream", "ferry://127.0.0.1:\(hop)", "--frame-linger", "100ms"])
        let sender = try UDPTestSocket()
        for index in 0..<5 { sender.send(Array("open \(index)".utf8), to: port) }
        try await Task.sleep(for: .milliseconds(20))  // read by the edge, well inside the linger
        edge.signal(SIGTERM)
        #expect(await edge.waitForExit(timeout: 10) == 0)
        #expect(edge.logText.contains("\"drained\""), "\(edge.logText)")
        #expect(await eventually(seconds: 5) { fileLines(directory + "/out.log") == (0..<5).map { "open \($0)" } })
    }
}
