import FerryTestSupport
import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The durable spool with real processes, files and signals: logs accepted by
/// an edge survive SIGKILLs of the edge and of its aggregator, an outage far
/// longer than the memory buffer, damaged spool files, and a full disk.
@Suite(.serialized)
struct DurableSpoolTests {

    private func stop(_ processes: FerryProcess...) async {
        for process in processes {
            process.signal(SIGCONT)
            process.signal(SIGTERM)
            _ = await process.waitForExit(timeout: 15)
        }
    }

    /// Waits until a process started with a fixed HTTP port answers.
    private func started(_ process: FerryProcess) async -> Bool {
        await process.waitForLine(message: "http listening", timeout: 15) != nil
    }

    /// Lines POSTed to an edge for ~25 s while it is SIGKILLed and restarted
    /// 22 times and its aggregator is frozen once and SIGKILLed 5 times: every
    /// line answered 202 reaches the aggregator's file; duplicates at most 1%.
    @Test func everyAcceptedLineSurvivesRepeatedKillsOfEdgeAndAggregator() async throws {
        let dir = try scratchDirectory("spool-kills")
        let out = dir + "/out.log"
        let aggregatorPort = freePort(Int32(SOCK_DGRAM.rawValue))
        let edgeHTTP = freePort(Int32(SOCK_STREAM.rawValue))
        func aggregator() async throws -> FerryProcess {
            try await FerryProcess.serve(
                ["--upstream", "file:\(out)", "--spool-dir", dir + "/aggregator", "--receive-sockets", "1"],
                listen: "127.0.0.1:\(aggregatorPort)"
            ).0
        }
        func edge() throws -> FerryProcess {
            try FerryProcess([
                "serve", "--listen", "127.0.0.1:0", "--http", "127.0.0.1:\(edgeHTTP)", "--upstream", "ferry://127.0.0.1:\(aggregatorPort)",
                "--spool-dir", dir + "/edge", "--receive-sockets", "1",
            ])
        }
        var aggregatorProcess = try await aggregator()
        var edgeProcess = try edge()
        #expect(await started(edgeProcess))

        let accepted = Mutex<[String]>([])
        let stopping = Atomic<Bool>(false)
        let poster = Thread {
            var next = 0
            while !stopping.load(ordering: .relaxed) {
                let batch = (next..<(next + 40)).map { "kill-line-\($0)" }
                next += 40
                let body = Array((batch.joined(separator: "\n") + "\n").utf8)
                if let reply = try? HTTPTestClient.request("POST", port: edgeHTTP, path: "/v1/logs", body: body), reply.status == 202 {
                    accepted.withLock { $0 += batch }
                }
                usleep(8_000)
            }
        }
        poster.start()
        for kill in 1...22 {
            try await Task.sleep(for: .milliseconds(Int.random(in: 700...1_300)))
            edgeProcess.signal(SIGKILL)
            _ = await edgeProcess.waitForExit(timeout: 5)
            if kill == 3 {
                aggregatorProcess.signal(SIGSTOP)  // frozen: frames wait, retransmitted, deduplicated
                try await Task.sleep(for: .milliseconds(1_500))
                aggregatorProcess.signal(SIGCONT)
            }
            if kill % 4 == 0 {
                aggregatorProcess.signal(SIGKILL)
                _ = await aggregatorProcess.waitForExit(timeout: 5)
                aggregatorProcess = try await aggregator()
            }
            edgeProcess = try edge()
            #expect(await started(edgeProcess))
        }
        stopping.store(true, ordering: .relaxed)
        while !poster.isFinished { try await Task.sleep(for: .milliseconds(20)) }

        let expected = accepted.withLock { $0 }
        #expect(expected.count > 10_000)
        // Polled slowly: the file holds tens of thousands of lines, and other suites run beside this one.
        var arrived = false
        let deadline = ContinuousClock.now + .seconds(40)
        while !arrived, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(500))
            let present = fileLines(out)
            guard present.count >= expected.count else { continue }
            let set = Set(present.map(String.init))
            arrived = expected.allSatisfy { set.contains($0) }
        }
        let counts = Dictionary(fileLines(out).map { (String($0), 1) }, uniquingKeysWith: +)
        let missing = expected.filter { counts[$0] == nil }
        let duplicates = counts.values.reduce(0) { $0 + max(0, $1 - 1) }
        #expect(arrived && missing.isEmpty, "\(missing.count) of \(expected.count) accepted lines missing, e.g. \(missing.prefix(3))")
        #expect(Double(duplicates) <= Double(expected.count) * 0.01, "\(duplicates) duplicates of \(expected.count)")
        await stop(edgeProcess, aggregatorProcess)
    }

    /// An aggregator away while 20× the memory buffer arrives: the edge keeps
    /// it all on disk (0 dropped) and delivers all of it, once, when it returns.
    @Test func anOutageLongerThanTheMemoryBufferLosesNothing() async throws {
        let dir = try scratchDirectory("spool-outage")
        let out = dir + "/out.log"
        let aggregatorPort = freePort(Int32(SOCK_DGRAM.rawValue))
        let (edge, edgePort, edgeHTTP) = try await FerryProcess.serve([
            "--upstream", "ferry://127.0.0.1:\(aggregatorPort)", "--spool-dir", dir + "/edge", "--queue-capacity-logs", "500",
            "--receive-sockets", "1", "--ack-timeout", "200ms", "--frame-ttl", "2s", "--breaker-open-max", "1s",
        ])
        try await PacedSender.send(prefix: "outage", count: 10_000, rate: 5_000, to: edgePort)
        let status = StatusReader(port: edgeHTTP)
        #expect(await eventually(seconds: 10) { (status.counters()["received"] as? Int) == 10_000 })
        let spool = status.status()?["spool"] as? [String: Any]
        #expect((spool?["logs"] as? Int) == 10_000 && (spool?["spilling_shards"] as? Int) == 1)
        #expect((status.counters()["dropped"] as? Int) == 0)

        let (aggregator, _, _) = try await FerryProcess.serve(
            ["--upstream", "file:\(out)", "--receive-sockets", "1"], listen: "127.0.0.1:\(aggregatorPort)")
        #expect(
            await eventually(seconds: 60, every: .milliseconds(250)) {
                PacedSender.tally(prefix: "outage", count: 10_000, in: fileLines(out)).missing == 0
            })
        #expect(PacedSender.tally(prefix: "outage", count: 10_000, in: fileLines(out)) == (0, 0, 0))
        #expect(await eventually(seconds: 5) { (status.status()?["spool"] as? [String: Any])?["logs"] as? Int == 0 })
        #expect((status.counters()["dropped"] as? Int) == 0)
        await stop(edge, aggregator)
    }

    /// A spool left by a SIGKILL, then damaged in several places (flipped
    /// bits, a zeroed stretch, a torn tail, a garbage progress file, a foreign
    /// file): Ferry is up within seconds, counts what it skipped, and delivers
    /// the rest intact, at least 90%, nothing corrupt, nothing twice.
    @Test func aDamagedSpoolStartsCountsAndDeliversTheRest() async throws {
        let dir = try scratchDirectory("spool-damage")
        let out = dir + "/out.log"
        let aggregatorPort = freePort(Int32(SOCK_DGRAM.rawValue))
        let arguments = [
            "--upstream", "ferry://127.0.0.1:\(aggregatorPort)", "--spool-dir", dir + "/edge", "--spool-segment-bytes", "64KiB",
            "--receive-sockets", "1",
        ]
        let (first, firstPort, firstHTTP) = try await FerryProcess.serve(arguments)
        try await PacedSender.send(prefix: "damage", count: 8_000, rate: 8_000, to: firstPort)
        // All 8,000 in the spool (appended, the point where a log counts as accepted), then killed.
        #expect(await eventually(seconds: 10) { (StatusReader(port: firstHTTP).status()?["spool"] as? [String: Any])?["logs"] as? Int == 8_000 })
        first.signal(SIGKILL)
        _ = await first.waitForExit(timeout: 5)

        let shard = dir + "/edge/shard-0"
        let segments = try FileManager.default.contentsOfDirectory(atPath: shard).filter { $0.hasSuffix(".seg") }.sorted()
        #expect(segments.count >= 3)
        func damage(_ name: String, _ change: (inout [UInt8]) -> Void) throws {
            var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: shard + "/" + name)))
            change(&bytes)
            try Data(bytes).write(to: URL(fileURLWithPath: shard + "/" + name))
        }
        try damage(segments[0]) { bytes in for offset in stride(from: 500, to: min(bytes.count, 40_000), by: 4_000) { bytes[offset] ^= 0xFF } }
        try damage(segments[1]) { bytes in for offset in 1_000..<min(bytes.count, 5_000) { bytes[offset] = 0 } }
        try damage(segments[segments.count - 1]) { bytes in bytes += [0xDE, 0xAD, 0xBE] }
        try Data(repeating: 0x41, count: 64).write(to: URL(fileURLWithPath: shard + "/progress-default"))
        try Data("an operator's note".utf8).write(to: URL(fileURLWithPath: shard + "/README.txt"))

        let (aggregator, _, _) = try await FerryProcess.serve(
            ["--upstream", "file:\(out)", "--receive-sockets", "1"], listen: "127.0.0.1:\(aggregatorPort)")
        let began = ContinuousClock.now
        let (second, _, secondHTTP) = try await FerryProcess.serve(arguments)
        #expect(ContinuousClock.now - began < .seconds(5))
        let status = StatusReader(port: secondHTTP)
        let spool = status.status()?["spool"] as? [String: Any]
        #expect((spool?["damaged_records_at_start"] as? Int ?? 0) > 0)
        #expect((spool?["foreign_files"] as? [String]) == ["README.txt"])
        #expect(await eventually(seconds: 30) { (status.status()?["spool"] as? [String: Any])?["logs"] as? Int == 0 })
        // Acknowledged by the aggregator is not yet in its file: wait until every log not counted lost is there.
        _ = await eventually(seconds: 10, every: .milliseconds(250)) {
            let corrupt = (status.counters()["dropped_by_reason"] as? [String: Int])?["spool_corrupt"] ?? 0
            return PacedSender.tally(prefix: "damage", count: 8_000, in: fileLines(out)).missing <= corrupt
        }
        let tally = PacedSender.tally(prefix: "damage", count: 8_000, in: fileLines(out))
        #expect(tally.unexpected == 0 && tally.duplicated == 0)  // nothing corrupt, nothing twice
        #expect(tally.missing <= 800, "\(tally.missing) of 8000 lost to the damage")
        let dropped = (status.counters()["dropped_by_reason"] as? [String: Int])?["spool_corrupt"] ?? 0
        #expect(dropped == tally.missing)  // every loss counted
        // Accounting across the restart: received + recovered = forwarded + dropped + queued.
        let counters = status.counters()
        let left = (counters["received"] as? Int ?? -1) + (counters["recovered"] as? Int ?? -1)
        let right = (counters["forwarded"] as? Int ?? -1) + (counters["dropped"] as? Int ?? -1) + (counters["queued"] as? Int ?? -1)
        #expect(left == right && (counters["recovered"] as? Int ?? 0) > 7_000, "\(counters)")
        #expect(FileManager.default.fileExists(atPath: shard + "/README.txt"))
        await stop(second, aggregator)
    }

    /// The spool's disk fills (a 1 MiB tmpfs in a mount namespace of its own):
    /// logs are dropped as `spool_write_failed`, counted, the process stays up,
    /// and once delivery frees segments, new logs are taken again.
    @Test(.enabled(if: ExternalTool.path("unshare") != nil && getuid() == 0))
    func aFullDiskDropsCountedAndRecoversWhenSpaceReturns() async throws {
        let dir = try scratchDirectory("spool-disk")
        let out = dir + "/out.log"
        let spoolDir = dir + "/tmpfs"
        try FileManager.default.createDirectory(atPath: spoolDir, withIntermediateDirectories: true)
        let aggregatorPort = freePort(Int32(SOCK_DGRAM.rawValue))
        let wrapper = ["/usr/bin/unshare", "--mount", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs '\(spoolDir)' && exec \"$0\" \"$@\""]
        let (edge, edgePort, edgeHTTP) = try await FerryProcess.serve(
            [
                "--upstream", "ferry://127.0.0.1:\(aggregatorPort)", "--spool-dir", spoolDir + "/spool", "--spool-segment-bytes", "64KiB",
                "--receive-sockets", "1", "--ack-timeout", "200ms", "--frame-ttl", "2s", "--breaker-open-max", "1s",
            ], wrapper: wrapper)
        try await PacedSender.send(prefix: "full", count: 40_000, rate: 10_000, to: edgePort)
        let status = StatusReader(port: edgeHTTP)
        #expect(await eventually(seconds: 10) { (status.counters()["received"] as? Int) == 40_000 })
        let dropped = (status.counters()["dropped_by_reason"] as? [String: Int])?["spool_write_failed"] ?? 0
        #expect(dropped > 0 && dropped < 40_000)
        let kept = 40_000 - dropped
        #expect(edge.process.isRunning)

        let (aggregator, _, _) = try await FerryProcess.serve(
            ["--upstream", "file:\(out)", "--receive-sockets", "1"], listen: "127.0.0.1:\(aggregatorPort)")
        #expect(await eventually(seconds: 60, every: .milliseconds(250)) { fileLines(out).count >= kept })
        #expect(await eventually(seconds: 10) { (status.status()?["spool"] as? [String: Any])?["logs"] as? Int == 0 })
        // Delivered segments are deleted once a sync covers their delivery (spool.fsync-interval).
        #expect(await eventually(seconds: 10) { ((status.status()?["spool"] as? [String: Any])?["bytes"] as? Int ?? .max) < 256 << 10 })
        // Space is back: new logs are taken and delivered.
        try await PacedSender.send(prefix: "after", count: 1_000, rate: 5_000, to: edgePort)
        #expect(
            await eventually(seconds: 20, every: .milliseconds(250)) {
                PacedSender.tally(prefix: "after", count: 1_000, in: fileLines(out)).missing == 0
            })
        #expect((status.counters()["dropped_by_reason"] as? [String: Int])?["spool_write_failed"] == dropped)
        #expect(PacedSender.tally(prefix: "full", count: 40_000, in: fileLines(out)).duplicated == 0)
        await stop(edge, aggregator)
    }
}

extension DurableSpoolTests {
    /// An edge SIGKILLed while its frames wait for a frozen aggregator: once
    /// restarted, it sends those frames again with the same sender id and
    /// sequence numbers (its spool's frame journal), so the aggregator, which
    /// took the originals when it woke, acknowledges them as duplicates and
    /// writes every line once. (A new sender id would write them twice.)
    @Test func anEdgeRestartedAfterKillResendsItsFramesUnderTheSameIdentity() async throws {
        let dir = try scratchDirectory("spool-journal")
        let out = dir + "/out.log"
        let aggregatorPort = freePort(Int32(SOCK_DGRAM.rawValue))
        let (aggregator, _, aggregatorHTTP) = try await FerryProcess.serve(
            ["--upstream", "file:\(out)", "--receive-sockets", "1"], listen: "127.0.0.1:\(aggregatorPort)")
        let edgeArguments = ["--upstream", "ferry://127.0.0.1:\(aggregatorPort)", "--spool-dir", dir + "/edge", "--receive-sockets", "1"]
        let (edge, edgePort, _) = try await FerryProcess.serve(edgeArguments)
        aggregator.signal(SIGSTOP)
        try await PacedSender.send(prefix: "journal", count: 2_000, rate: 10_000, to: edgePort)
        try await Task.sleep(for: .milliseconds(300))  // the journal is written every few milliseconds
        edge.signal(SIGKILL)
        _ = await edge.waitForExit(timeout: 5)
        aggregator.signal(SIGCONT)
        #expect(
            await eventually(seconds: 10, every: .milliseconds(250)) {
                PacedSender.tally(prefix: "journal", count: 2_000, in: fileLines(out)).missing == 0
            })

        let (restarted, _, restartedHTTP) = try await FerryProcess.serve(edgeArguments)
        #expect(await restarted.waitForLine(message: "frames of the previous run sent again") != nil)
        #expect(await eventually(seconds: 10) { (StatusReader(port: restartedHTTP).status()?["spool"] as? [String: Any])?["logs"] as? Int == 0 })
        try await Task.sleep(for: .milliseconds(500))
        #expect(PacedSender.tally(prefix: "journal", count: 2_000, in: fileLines(out)) == (0, 0, 0))
        let outcomes = StatusReader(port: aggregatorHTTP).counters()["frames_received_by_outcome"] as? [String: Int] ?? [:]
        #expect((outcomes["duplicate"] ?? 0) > 0, "\(outcomes)")
        await stop(restarted, aggregator)
    }
}

extension DurableSpoolTests {
    /// `spool.fsync: always`: an HTTP request is answered 202 only after a
    /// sync covers its lines, so ten requests one after another take at least
    /// ten syncs (under the default `interval` they would take about none in
    /// this time).
    @Test func alwaysAnswersOnlyAfterASync() async throws {
        let dir = try scratchDirectory("spool-always")
        let (ferry, _, httpPort) = try await FerryProcess.serve([
            "--upstream", "file:\(dir)/out.log", "--spool-dir", dir + "/spool", "--spool-fsync", "always", "--receive-sockets", "1",
        ])
        let status = StatusReader(port: httpPort)
        let before = (status.status()?["spool"] as? [String: Any])?["syncs"] as? Int ?? 0
        for request in 0..<10 {
            let reply = try HTTPTestClient.request("POST", port: httpPort, path: "/v1/logs", body: Array("always-\(request)\n".utf8))
            #expect(reply.status == 202)
        }
        let after = (status.status()?["spool"] as? [String: Any])?["syncs"] as? Int ?? 0
        #expect(after - before >= 10, "\(after - before) syncs for 10 requests")
        #expect(await eventually(seconds: 5) { fileLines(dir + "/out.log").count == 10 })
        await stop(ferry)
    }

    /// A Ferry restarted on a spool that holds undelivered logs delivers them
    /// with no traffic at all (they waited until a ferry:// frame arrived; a
    /// pod restarted on its volume behind a Service may never get one).
    @Test func logsLeftInTheSpoolLeaveAfterARestartWithoutWaitingForTraffic() async throws {
        let dir = try scratchDirectory("spool-restart-idle")
        let (first, port, http) = try await FerryProcess.serve([
            "--upstream", "file:/dev/full", "--spool-dir", dir + "/spool", "--receive-sockets", "1",
        ])
        try await PacedSender.send(prefix: "idle", count: 100, rate: 1_000, to: port)
        let spooled = await eventually(seconds: 10) {
            (StatusReader(port: http).status()?["spool"] as? [String: Any])?["logs"] as? Int == 100
        }
        #expect(spooled, "\(StatusReader(port: http).status()?["spool"] ?? "-")")
        first.signal(SIGKILL)
        _ = await first.waitForExit(timeout: 10)
        let (second, _, _) = try await FerryProcess.serve([
            "--upstream", "file:\(dir)/out.log", "--spool-dir", dir + "/spool", "--receive-sockets", "1",
        ])
        #expect(await eventually(seconds: 15) { fileLines(dir + "/out.log").count >= 100 })
        #expect(PacedSender.tally(prefix: "idle", count: 100, in: fileLines(dir + "/out.log")) == (0, 0, 0))
        await stop(second)
    }
}
