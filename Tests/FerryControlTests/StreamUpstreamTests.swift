import FerryTestSupport
import Foundation
import Testing

/// `tcp://` upstreams: logs are kept until the peer's TCP acknowledged them,
/// so a receiver that freezes and dies loses no more than its own socket
/// buffer held; a receiver that stops reading holds Ferry back (and Ferry
/// holds its TCP senders back) instead of anything being dropped.
@Suite(.serialized, .timeLimit(.minutes(4)))
struct StreamUpstreamTests {
    /// Bytes waiting in the receive queues of established TCP sockets on local `port` (/proc/net/tcp).
    private static func receiveQueueBytes(port: Int) -> Int {
        var total = 0
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            for line in readProcFile(table).split(separator: "\n").dropFirst() {
                let fields = line.split(separator: " ")
                guard fields.count > 4, let local = fields[1].split(separator: ":").last, Int(local, radix: 16) == port, fields[3] == "01"
                else { continue }
                let queues = fields[4].split(separator: ":")
                total += Int(queues.last ?? "", radix: 16) ?? 0
            }
        }
        return total
    }

    private static func fileBytes(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? 0
    }

    @Test func aFrozenThenKilledReceiverLosesNoMoreThanItsSocketBuffer() async throws {
        let directory = try scratchDirectory("tcp-kill")
        let port = freeTCPPort()
        let spool = "\(directory)/agg-spool"
        let receiver = ["--listen", "tcp://127.0.0.1:\(port)", "--spool-dir", spool, "--http", "127.0.0.1:0"]
        let first = try FerryProcess(["serve"] + receiver + ["--upstream", "file:\(directory)/first.log"])
        #expect(await first.waitForLine(message: "listening") != nil)
        let (edge, udpPort, edgeHTTP) = try await FerryProcess.serve(["--upstream", "tcp://127.0.0.1:\(port)"])
        defer { edge.signal(SIGKILL) }
        let count = 30_000
        let sending = Task.detached { try await PacedSender.send(prefix: "kill", count: count, rate: 5_000, to: udpPort) }
        try await Task.sleep(for: .seconds(2))
        first.signal(SIGSTOP)
        try await Task.sleep(for: .seconds(1.5))
        let heldBySocket = Self.receiveQueueBytes(port: port)
        first.signal(SIGKILL)
        _ = await first.waitForExit(timeout: 10)
        let second = try FerryProcess(["serve"] + receiver + ["--upstream", "file:\(directory)/second.log"])
        defer { second.signal(SIGKILL) }
        #expect(await second.waitForLine(message: "listening") != nil)
        try await sending.value
        let status = StatusReader(port: edgeHTTP)
        let delivered = await eventually(seconds: 30, every: .milliseconds(250)) { status.upstream(0)["forwarded"] as? Int ?? 0 >= count }
        #expect(delivered, "upstream: \(status.upstream(0)); edge log: \(edge.logText.suffix(3000)); receiver: \(second.logText.suffix(2000))")
        try await Task.sleep(for: .seconds(1))
        let lines = fileLines("\(directory)/first.log") + fileLines("\(directory)/second.log")
        let tally = PacedSender.tally(prefix: "kill", count: count, in: lines)
        // What the killed receiver's kernel had acknowledged and it never read is all that may be missing.
        let line = PacedSender.line("kill", 0).utf8.count
        let framedBytes = line + String(line).count + 1  // "LEN SP MSG"
        let bound = heldBySocket / framedBytes + 1
        #expect(tally.missing <= bound, "missing \(tally.missing), the receiver's socket held \(heldBySocket) bytes (≤ \(bound) logs)")
        #expect(tally.unexpected == 0)
        #expect(status.counters()["dropped"] as? Int == 0)
        let resent = status.upstream(0)["resent"] as? Int ?? 0
        #expect(tally.duplicated <= resent, "duplicates \(tally.duplicated) beyond the \(resent) counted as resent")
    }

    @Test func aReceiverThatStopsReadingHoldsTCPSendersBackInsteadOfDropping() async throws {
        let directory = try scratchDirectory("tcp-backpressure")
        let output = "\(directory)/out.log"
        let (aggregator, aggregatorPorts, _) = try await FerryProcess.serve(listeners: ["tcp://127.0.0.1:0"], ["--upstream", "file:\(output)"])
        defer { aggregator.signal(SIGKILL) }
        let (edge, edgePorts, edgeHTTP) = try await FerryProcess.serve(
            listeners: ["tcp://127.0.0.1:0"], ["--upstream", "tcp://127.0.0.1:\(aggregatorPorts[0])", "--queue-capacity-logs", "2000"])
        defer { edge.signal(SIGKILL) }
        aggregator.signal(SIGSTOP)
        let count = 200_000
        let script = """
            import socket, sys
            s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
            chunk = []
            for i in range(int(sys.argv[2])):
                m = f"<13>held-{i:07d} " + "p" * 80
                chunk.append(f"{len(m)} {m}")
                if len(chunk) == 1000: s.sendall("".join(chunk).encode()); chunk = []
            s.sendall("".join(chunk).encode()); s.close()
            """
        let sending = Task.detached { try python(script, ["\(edgePorts[0])", "\(count)"]) }
        let status = StatusReader(port: edgeHTTP)
        #expect(await eventually(seconds: 30, every: .milliseconds(100)) { status.streamListener()["paused_now"] as? Int ?? 0 >= 1 })
        try await Task.sleep(for: .seconds(1))
        #expect(status.counters()["dropped"] as? Int == 0)
        aggregator.signal(SIGCONT)
        try await sending.value
        let expectedBytes = count * ("<13>held-0000000 ".utf8.count + 80 + 1)
        #expect(await eventually(seconds: 60, every: .milliseconds(250)) { Self.fileBytes(output) >= expectedBytes })
        let lines = fileLines(output)
        #expect(lines.count == count)
        #expect(Set(lines).count == count)
        #expect(status.counters()["dropped"] as? Int == 0)
        #expect(status.streamListener()["paused_seconds"] as? Double ?? 0 > 0.5)
    }
}
