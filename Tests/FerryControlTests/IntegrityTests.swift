import FerryCore
import FerryTestSupport
import Foundation
import NIOCore
import Testing

/// The ways found to lose, tear or double a log, or to wedge the process, each
/// tried with real processes: signals, a shared port, a held control plane,
/// full and removed files, a flooded dedupe table.
@Suite(.timeLimit(.minutes(3)))
struct IntegrityTests {
    private func stop(_ processes: FerryProcess...) async {
        for process in processes {
            process.signal(SIGCONT)
            process.signal(SIGTERM)
            _ = await process.waitForExit(timeout: 10)
        }
    }

    // MARK: - Signals

    /// SIGHUP (logrotate's postrotate) with thousands of logs buffered behind a
    /// frozen aggregator: the edge stays up, reopens its files, and every log
    /// arrives once the aggregator thaws.
    @Test func sighupReopensFilesAndLosesNothing() async throws {
        let dir = try scratchDirectory("integrity")
        let delivered = dir + "/delivered.log"
        let edgeLog = dir + "/edge.log"
        let (aggregator, aggregatorPort, _) = try await FerryProcess.serve(["--upstream", "file:\(delivered)"])
        let (edge, edgePort, edgeHTTP) = try await FerryProcess.serve([
            "--upstream", "ferry://127.0.0.1:\(aggregatorPort)", "--log-file", edgeLog, "--frame-ttl", "60s",
        ])
        aggregator.signal(SIGSTOP)
        let total = 4_000
        try await PacedSender.send(prefix: "h", count: total, rate: 4_000, to: edgePort)
        let status = StatusReader(port: edgeHTTP)
        #expect(await eventually(seconds: 5) { status.queueDepth() > 0 })
        try FileManager.default.moveItem(atPath: edgeLog, toPath: edgeLog + ".1")  // as logrotate would
        for _ in 0..<3 {
            edge.signal(SIGHUP)
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(edge.process.isRunning, "SIGHUP ended the edge: \(edge.logText.suffix(400))")
        #expect(await eventually(seconds: 5) { fileLines(edgeLog).contains { $0.contains("SIGHUP: files reopened") } })
        aggregator.signal(SIGCONT)
        #expect(await eventually(seconds: 30) { (status.counters()["forwarded"] as? Int) == total && status.queueDepth() == 0 })
        #expect(await eventually(seconds: 5) { fileLines(delivered).count >= total })
        let tally = PacedSender.tally(prefix: "h", count: total, in: fileLines(delivered))
        #expect(tally.missing == 0 && tally.duplicated == 0, "\(tally)")
        await stop(aggregator, edge)
    }

    /// SIGHUP reopens a `file:` upstream that logrotate moved away: lines sent
    /// after the signal land in the new file, none in the rotated one.
    @Test func sighupReopensAFileUpstream() async throws {
        let dir = try scratchDirectory("integrity")
        let out = dir + "/out.log"
        let (ferry, udpPort, httpPort) = try await FerryProcess.serve(["--upstream", "file:\(out)"])
        let status = StatusReader(port: httpPort)
        try await PacedSender.send(prefix: "before", count: 100, rate: 2_000, to: udpPort)
        #expect(await eventually(seconds: 5) { (status.counters()["forwarded"] as? Int) == 100 })
        // A rename keeps the inode and the link count: only SIGHUP tells Ferry.
        try FileManager.default.moveItem(atPath: out, toPath: out + ".1")
        try FileManager.default.createDirectory(atPath: dir + "/elsewhere", withIntermediateDirectories: true)
        try FileManager.default.moveItem(atPath: out + ".1", toPath: dir + "/elsewhere/out.log.1")
        ferry.signal(SIGHUP)
        #expect(await ferry.waitForLine(message: "file upstream reopened") != nil)
        try await PacedSender.send(prefix: "after", count: 100, rate: 2_000, to: udpPort)
        #expect(await eventually(seconds: 5) { (status.counters()["forwarded"] as? Int) == 200 })
        #expect(PacedSender.tally(prefix: "after", count: 100, in: fileLines(out)) == (0, 0, 0))
        #expect(PacedSender.tally(prefix: "before", count: 100, in: fileLines(dir + "/elsewhere/out.log.1")) == (0, 0, 0))
        await stop(ferry)
    }

    // MARK: - A UDP port that is taken

    /// A second Ferry on the first one's port exits 1 with "address already in
    /// use"; the first keeps all traffic. A socket that joins the port's group
    /// later is reported as a foreign receiver.
    @Test func aSecondFerryOnATakenPortFailsAndTheFirstKeepsAllTraffic() async throws {
        let dir = try scratchDirectory("integrity")
        let (first, port, httpPort) = try await FerryProcess.serve(["--upstream", "file:\(dir)/first.log", "--kernel-check-interval", "300ms"])
        let second = try FerryProcess(["serve", "--listen", "127.0.0.1:\(port)", "--http", "127.0.0.1:0", "--upstream", "file:\(dir)/second.log"])
        #expect(await second.waitForExit(timeout: 10) == 1)
        #expect(second.logText.contains("address already in use") && second.logText.contains("port \(port)"), "\(second.logText)")
        // The failed start shuts the other services down gracefully: no error of theirs hides the one that matters.
        #expect(!second.logText.contains("Waiting on child channel"), "\(second.logText)")
        let wildcard = try FerryProcess(["serve", "--listen", "0.0.0.0:\(port)", "--http", "127.0.0.1:0", "--upstream", "file:\(dir)/third.log"])
        #expect(await wildcard.waitForExit(timeout: 10) == 1)

        let status = StatusReader(port: httpPort)
        let total = 2_000
        try await PacedSender.send(prefix: "p", count: total, rate: 4_000, to: port)
        #expect(await eventually(seconds: 10) { (status.counters()["forwarded"] as? Int) == total })
        #expect(PacedSender.tally(prefix: "p", count: total, in: fileLines(dir + "/first.log")) == (0, 0, 0))
        #expect(!FileManager.default.fileExists(atPath: dir + "/second.log"))

        func foreign() -> [Int] { ((status.status()?["listeners"] as? [[String: Any]])?.first?["foreign_receivers"] as? [Int]) ?? [] }
        #expect(foreign().isEmpty)
        let intruder = try UDPTestSocket(port: port, reusePort: true)
        #expect(await eventually(seconds: 5) { foreign().count == 1 && (status.counters()["foreign_receivers_seen"] as? Int) == 1 })
        #expect(await first.waitForLine(message: "foreign receiver on the UDP port takes part of its traffic") != nil)
        let metrics = try HTTPTestClient.request("GET", port: httpPort, path: "/metrics").body
        #expect(metrics.contains("ferry_udp_foreign_receivers 1"))
        _ = intruder
        await stop(first)
    }

    // MARK: - The HTTP control plane

    /// Over a thousand connections that never finish their request head, under
    /// a 1,024-descriptor limit: they are capped and timed out, `/healthz` then
    /// answers, the process idles, and UDP forwarding went on throughout.
    @Test func stalledHTTPConnectionsCannotHoldTheControlPlane() async throws {
        raiseOwnDescriptorLimit()
        let dir = try scratchDirectory("integrity")
        let limited = ["/bin/sh", "-c", "ulimit -n 1024 && exec \"$0\" \"$@\""]
        let (ferry, udpPort, httpPort) = try await FerryProcess.serve(
            ["--upstream", "file:\(dir)/out.log", "--http-header-timeout", "3s"], wrapper: limited)
        let cap = try #require(await ferry.waitForLine(message: "http connection limit"))
        #expect(Int(cap["http.max_connections"] as? String ?? "") ?? 0 < 1_024 - 100)
        var stalled: [TCPTestConnection] = []
        for _ in 0..<1_100 { stalled.append(try TCPTestConnection(port: httpPort)) }
        try await Task.sleep(for: .milliseconds(300))
        for connection in stalled { connection.send("GET /healthz HTTP/1.1\r\nHost: x\r\n") }  // never finished
        let sending = Task { try await PacedSender.send(prefix: "u", count: 3_000, rate: 1_000, to: udpPort) }

        let asked = ContinuousClock.now
        var healthy = false
        while !healthy, ContinuousClock.now - asked < .seconds(12) {
            healthy = (try? HTTPTestClient.request("GET", port: httpPort, path: "/healthz"))?.status == 200
        }
        #expect(healthy, "no /healthz answer within 12 s")
        try await sending.value
        let status = StatusReader(port: httpPort)
        #expect(await eventually(seconds: 10) { (status.counters()["forwarded"] as? Int) == 3_000 })
        // Once the stalled connections are closed the process idles.
        try await Task.sleep(for: .seconds(4))
        let pid = ferry.process.processIdentifier
        let before = try #require(cpuSeconds(pid: pid))
        try await Task.sleep(for: .seconds(3))
        let used = try #require(cpuSeconds(pid: pid)) - before
        #expect(used < 0.3, "used \(used) s of CPU in 3 s while idle")
        // Closed by the server (header timeout), not left open.
        let closed = stalled.prefix(200).filter { $0.receive(timeoutMilliseconds: 0) == "" }.count
        #expect(closed > 150, "\(closed) of 200 stalled connections were closed")
        await stop(ferry)
    }

    /// A body larger than `http.max-body-bytes` is refused from its head: 413
    /// at once, with no byte of the body sent, and the connection closed.
    @Test func anOversizeContentLengthGets413AtOnce() async throws {
        // Timed (the 413 must come at once): never beside the tests that load the machine flat out.
        try await LoadGate.shared.timed {
            let dir = try scratchDirectory("integrity")
            let (ferry, _, httpPort) = try await FerryProcess.serve(["--upstream", "file:\(dir)/out.log"])
            let connection = try TCPTestConnection(port: httpPort)
            try await Task.sleep(for: .milliseconds(100))
            let started = ContinuousClock.now
            connection.send("POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000000\r\n\r\n")
            let reply = connection.receive(timeoutMilliseconds: 3_000) ?? ""
            #expect(reply.hasPrefix("HTTP/1.1 413"), "\(reply)")
            #expect(ContinuousClock.now - started < .seconds(2))
            connection.send(String(repeating: "x", count: 10_000))
            var closed = false
            for _ in 0..<20 where !closed {
                closed = connection.receive(timeoutMilliseconds: 100) == ""
            }
            #expect(closed, "the connection stayed open to read a body nobody wants")
            await stop(ferry)
        }
    }

    // MARK: - file: upstreams

    /// A small file system fills up mid-stream: partial writes continue where
    /// the kernel stopped, and once it stays full the rest fail over to the
    /// second `file:` upstream at a line boundary. 0 torn, 0 doubled, 0 lost.
    @Test(.enabled(if: ExternalTool.path("unshare") != nil))
    func aFullFileSystemTearsNothingAndFailsOverAtALineBoundary() async throws {
        let dir = try scratchDirectory("integrity")
        try FileManager.default.createDirectory(atPath: dir + "/small", withIntermediateDirectories: true)
        let wrapper = ["/usr/bin/unshare", "--mount", "sh", "-c", "mount -t tmpfs -o size=64k ferrytest \(dir)/small && exec \"$0\" \"$@\""]
        let (ferry, udpPort, httpPort) = try await FerryProcess.serve(
            ["--upstream", "file:\(dir)/small/a.log", "--upstream", "file:\(dir)/spare/b.log"], wrapper: wrapper)
        let total = 3_000
        let padding = String(repeating: "x", count: 93)
        let sender = try UDPTestSocket()
        for index in 0..<total {
            sender.send(Array((PacedSender.line("d", index) + " " + padding).utf8), to: udpPort)
            if index % 50 == 49 { try await Task.sleep(for: .milliseconds(10)) }
        }
        let status = StatusReader(port: httpPort)
        #expect(await eventually(seconds: 20) { (status.counters()["forwarded"] as? Int) == total && status.queueDepth() == 0 })
        // The tmpfs exists only in Ferry's mount namespace: read it through /proc.
        let inNamespace = "/proc/\(ferry.process.processIdentifier)/root\(dir)/small/a.log"
        let onSmall = fileLines(inNamespace)
        let onSpare = fileLines(dir + "/spare/b.log")
        #expect(!onSmall.isEmpty && !onSpare.isEmpty, "small \(onSmall.count), spare \(onSpare.count)")
        var seen = [Int](repeating: 0, count: total)
        var torn = 0
        for line in onSmall + onSpare {
            let parts = line.split(separator: " ")
            guard parts.count == 2, parts[1] == padding, parts[0].hasPrefix("d-"), let number = Int(parts[0].dropFirst(2)), number < total else {
                torn += 1
                continue
            }
            seen[number] += 1
        }
        #expect(torn == 0, "torn lines: \((onSmall + onSpare).filter { !$0.hasSuffix(padding) }.prefix(3))")
        #expect(seen.filter { $0 > 1 }.count == 0, "doubled")
        #expect(seen.filter { $0 == 0 }.count == 0, "lost")
        await stop(ferry)
    }

    /// A file that ends in a fragment (a crash mid-line) gets a newline first:
    /// the fragment stays on its own line, every new log starts a line, and it is counted.
    @Test func aFileEndingInAFragmentGetsANewlineFirst() async throws {
        let dir = try scratchDirectory("integrity")
        let out = dir + "/out.log"
        try "whole line\nhalf a li".write(toFile: out, atomically: false, encoding: .utf8)
        var (ferry, udpPort, httpPort) = try await FerryProcess.serve(["--upstream", "file:\(out)"])
        try await PacedSender.send(prefix: "f", count: 3, rate: 1_000, to: udpPort)
        var status = StatusReader(port: httpPort)
        #expect(await eventually(seconds: 5) { (status.counters()["forwarded"] as? Int) == 3 })
        #expect(status.upstream(0)["file_fragments_ended"] as? Int == 1)
        await stop(ferry)
        #expect(fileLines(out) == ["whole line", "half a li", "f-000000", "f-000001", "f-000002"])
        // A file that ends in a newline is left as it is.
        (ferry, udpPort, httpPort) = try await FerryProcess.serve(["--upstream", "file:\(out)"])
        status = StatusReader(port: httpPort)
        #expect(status.upstream(0)["file_fragments_ended"] as? Int == 0)
        await stop(ferry)
        #expect(try String(contentsOfFile: out, encoding: .utf8).hasSuffix("f-000002\n"))
    }

    /// An output file removed mid-stream: what is sent after the removal goes
    /// to a new file at the path, nothing into the removed one.
    @Test func aRemovedOutputFileIsNoticedAtTheNextBatch() async throws {
        let dir = try scratchDirectory("integrity")
        let out = dir + "/out.log"
        let (ferry, udpPort, httpPort) = try await FerryProcess.serve(["--upstream", "file:\(out)"])
        let status = StatusReader(port: httpPort)
        try await PacedSender.send(prefix: "old", count: 1_000, rate: 2_000, to: udpPort)
        #expect(await eventually(seconds: 5) { (status.counters()["forwarded"] as? Int) == 1_000 })
        let removed = try #require(FileHandle(forReadingAtPath: out))  // keeps the removed inode readable
        try await Task.sleep(for: .milliseconds(200))
        try FileManager.default.removeItem(atPath: out)
        try await PacedSender.send(prefix: "new", count: 1_000, rate: 5_000, to: udpPort)
        #expect(await eventually(seconds: 5) { (status.counters()["forwarded"] as? Int) == 2_000 })
        let inRemoved = String(decoding: removed.readDataToEndOfFile(), as: UTF8.self).split(separator: "\n")
        #expect(PacedSender.tally(prefix: "old", count: 1_000, in: inRemoved) == (0, 0, 0))
        #expect(PacedSender.tally(prefix: "new", count: 1_000, in: fileLines(out)) == (0, 0, 0))
        await stop(ferry)
    }

    // MARK: - ferry:// dedupe

    /// Tens of thousands of frames with random sender ids around a live
    /// sender: its frames are all delivered once, and its retransmission of an
    /// earlier frame is not delivered again. A frame that claims to come from
    /// the far future with the longest TTL is malformed.
    @Test func aFloodOfSenderIdsDoesNotMakeALiveSendersRetransmissionNew() async throws {
        let dir = try scratchDirectory("integrity")
        let out = dir + "/out.log"
        let (aggregator, port, httpPort) = try await FerryProcess.serve(["--upstream", "file:\(out)", "--receive-sockets", "1"])
        let socket = try UDPTestSocket()
        var random = SystemRandomNumberGenerator()
        let live: UInt64 = 0x5EED_0000_0000_0100
        let liveSentAt = epochMilliseconds()
        let liveFrames = 40
        let flood = 30_000
        for sequence in 0..<liveFrames {
            // A long TTL: on a loaded machine sending the flood takes far longer than the default 10 s,
            // and the live frames all carry the first-send time of the start.
            socket.send(
                dataFrame(sender: live, sequence: UInt32(sequence), records: ["live-\(sequence)"], sentAt: liveSentAt, ttl: 600_000), to: port)
            for junk in 0..<(flood / liveFrames) {
                socket.send(dataFrame(sender: random.next(), sequence: random.next(), records: [], sentAt: epochMilliseconds()), to: port)
                // Paced (~20,000 frames/s), so a loaded CI machine's receive buffer never overflows.
                if junk % 100 == 99 { try await Task.sleep(for: .milliseconds(4)) }
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        // The retransmission of an early frame (same header: same first-send time).
        socket.send(dataFrame(sender: live, sequence: 3, records: ["live-3"], sentAt: liveSentAt, ttl: 600_000), to: port)
        socket.send(
            dataFrame(sender: random.next(), sequence: 1, records: ["from-the-future"], sentAt: epochMilliseconds() + 1_000_000_000, ttl: .max),
            to: port)
        socket.send(dataFrame(sender: live, sequence: UInt32(liveFrames), records: ["live-\(liveFrames)"], sentAt: epochMilliseconds()), to: port)
        let status = StatusReader(port: httpPort)
        func frames() -> [String: Int] { status.counters()["frames_received_by_outcome"] as? [String: Int] ?? [:] }
        #expect(await eventually(seconds: 20) { frames().values.reduce(0, +) >= flood + liveFrames + 3 })
        #expect(await eventually(seconds: 5) { (status.counters()["forwarded"] as? Int) == liveFrames + 1 })
        let lines = fileLines(out)
        for sequence in 0...liveFrames {
            #expect(lines.filter { $0 == "live-\(sequence)" }.count == 1, "live-\(sequence)")
        }
        #expect(!lines.contains("from-the-future"))
        #expect(frames()["malformed"] == 1)
        #expect((status.counters()["frame_sender_evictions"] as? Int ?? 0) > 20_000)
        await stop(aggregator)
    }

    // MARK: - Smaller ones

    /// `ferry trace` reads a log file with a line that is not UTF-8: it skips
    /// and counts that line instead of refusing the file.
    @Test func ferryTraceSkipsLinesThatAreNotUTF8() async throws {
        let dir = try scratchDirectory("integrity")
        let log = dir + "/ferry.log"
        let traceID = "0123456789abcdef0123456789abcdef"
        var bytes = Array(
            #"{"time":"2026-12-01T10:00:00.000000Z","level":"debug","message":"frame sent","instance":"edge","trace_id":"\#(traceID)"}"#.utf8)
        bytes += [0x0A, 0xFF, 0xFE, 0x41, 0x0A]
        bytes += Array(
            #"{"time":"2026-12-01T10:00:00.100000Z","level":"debug","message":"frame acknowledged","instance":"edge","trace_id":"\#(traceID)"}"#.utf8)
        bytes += [0x0A]
        _ = FileManager.default.createFile(atPath: log, contents: Data(bytes))
        let trace = try FerryProcess(["trace", traceID, log])
        #expect(await trace.waitForExit(timeout: 10) == 0)
        #expect(trace.logText.contains("frame sent") && trace.logText.contains("frame acknowledged"), "\(trace.logText)")
        #expect(trace.logText.contains("skipped 1 line(s)"))
    }

    /// `--log-file` in a directory that does not exist is created, as a `file:` upstream's is.
    @Test func aLogFileInAMissingDirectoryIsCreated() async throws {
        let dir = try scratchDirectory("integrity")
        let log = dir + "/not/yet/there/ferry.log"
        let (ferry, _, _) = try await FerryProcess.serve(["--upstream", "file:\(dir)/also/missing/out.log", "--log-file", log])
        #expect(fileLines(log).contains { $0.contains("\"listening\"") })
        await stop(ferry)
    }
}
