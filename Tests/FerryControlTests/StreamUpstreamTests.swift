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

    /// A plain TCP receiver: each connection's bytes go to a file of their own as they are read, 4 KiB at a time.
    private static let receiver = """
        import os, socket, sys, threading
        server = socket.socket(); server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", int(sys.argv[1]))); server.listen(16)
        count = 0
        def serve(connection, path):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
            while True:
                data = connection.recv(4096)
                if not data: break
                os.write(fd, data)
        while True:
            connection, _ = server.accept(); count += 1
            threading.Thread(target=serve, args=(connection, f"{sys.argv[2]}-{count}.bin"), daemon=True).start()
        """

    /// The messages of octet-counted files (a file cut mid-frame ends there).
    private static func framedMessages(inFilesWithPrefix prefix: String, in directory: String) -> [Substring] {
        var messages: [Substring] = []
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where name.hasPrefix(prefix) {
            let text = (try? String(contentsOfFile: "\(directory)/\(name)", encoding: .utf8)) ?? ""
            var rest = Substring(text)
            while let space = rest.firstIndex(of: " "), let length = Int(rest[..<space]) {
                let body = rest[rest.index(after: space)...]
                guard body.utf8.count >= length else { break }
                let end = body.utf8.index(body.startIndex, offsetBy: length)
                messages.append(body[..<end])
                rest = body[end...]
            }
        }
        return messages
    }

    @Test func aFrozenThenKilledReceiverLosesNoMoreThanItsSocketBuffer() async throws {
        try await LoadGate.shared.heavy {
            let directory = try scratchDirectory("tcp-kill")
            let port = freeTCPPort()
            func receiver(_ name: String) throws -> Process {
                let process = Process()
                process.executableURL = URL(fileURLWithPath: ExternalTool.path("python3") ?? "/usr/bin/python3")
                process.arguments = ["-c", Self.receiver, "\(port)", "\(directory)/\(name)"]
                try process.run()
                return process
            }
            let first = try receiver("first")
            #expect(await waitForTCPListener(port: port))
            let (edge, udpPort, edgeHTTP) = try await FerryProcess.serve(["--upstream", "tcp://127.0.0.1:\(port)"])
            defer { edge.signal(SIGKILL) }
            let count = 30_000
            // Before the freeze, during it (then nothing moves: what the receiver's kernel took sits in its
            // socket, measured once it is still), and after a new receiver took the port.
            try await PacedSender.send(prefix: "kill", count: 10_000, rate: 5_000, to: udpPort)
            kill(first.processIdentifier, SIGSTOP)
            try await PacedSender.send(prefix: "kill", count: 5_000, rate: 5_000, to: udpPort, first: 10_000)
            var heldBySocket = -1
            _ = await eventually(seconds: 5, every: .milliseconds(300)) {
                let now = Self.receiveQueueBytes(port: port)
                defer { heldBySocket = now }
                return now == heldBySocket
            }
            kill(first.processIdentifier, SIGKILL)
            first.waitUntilExit()
            let second = try receiver("second")
            defer { kill(second.processIdentifier, SIGKILL) }
            #expect(await waitForTCPListener(port: port))
            try await PacedSender.send(prefix: "kill", count: 15_000, rate: 5_000, to: udpPort, first: 15_000)
            let status = StatusReader(port: edgeHTTP)
            let delivered = await eventually(seconds: 30, every: .milliseconds(250)) { status.upstream(0)["forwarded"] as? Int ?? 0 >= count }
            #expect(delivered, "upstream: \(status.upstream(0)); edge log: \(edge.logText.suffix(3000))")
            try await Task.sleep(for: .seconds(1))
            let messages =
                Self.framedMessages(inFilesWithPrefix: "first", in: directory) + Self.framedMessages(inFilesWithPrefix: "second", in: directory)
            let tally = PacedSender.tally(prefix: "kill", count: count, in: messages)
            // What the killed receiver's kernel had acknowledged and it never read (its socket buffer, and
            // the one 4 KiB read it may have been frozen in) is all that may be missing.
            let line = PacedSender.line("kill", 0).utf8.count
            let framedBytes = line + String(line).count + 1  // "LEN SP MSG"
            // Datagrams the edge's kernel dropped before Ferry read them (a loaded machine) never entered Ferry.
            let kernelDrops = (status.status()?["listeners"] as? [[String: Any]] ?? []).reduce(0) { $0 + ($1["kernel_receive_drops"] as? Int ?? 0) }
            let bound = (heldBySocket + 4096) / framedBytes + 2 + kernelDrops
            #expect(
                tally.missing <= bound,
                "missing \(tally.missing), the receiver's socket held \(heldBySocket) bytes, the edge's kernel dropped \(kernelDrops) (≤ \(bound) logs)"
            )
            #expect(tally.unexpected == 0)
            #expect(status.counters()["dropped"] as? Int == 0)
            let resent = status.upstream(0)["resent"] as? Int ?? 0
            #expect(tally.duplicated <= resent, "duplicates \(tally.duplicated) beyond the \(resent) counted as resent")
        }
    }

    @Test func aReceiverThatStopsReadingHoldsTCPSendersBackInsteadOfDropping() async throws {
        try await LoadGate.shared.heavy {
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
}
