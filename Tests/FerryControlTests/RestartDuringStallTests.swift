import FerryTestSupport
import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// An edge SIGKILLed and restarted again and again while its `ferry://`
/// aggregator is frozen: each run sends the frames earlier runs left in flight
/// again under their first identity (sender id and sequence), so once the
/// aggregator wakes it delivers every accepted line and drops the re-sends as
/// duplicates, however many restarts the stall saw.
@Suite(.serialized)
struct RestartDuringStallTests {
    /// What a run of the scenario counted: lines answered 202, missing at the end, and extra copies.
    struct Outcome {
        var accepted: Int
        var missing: Int
        var duplicates: Int
    }

    /// Lines POSTed to the edge at ~3,000/s; after `warmUp` the aggregator is
    /// frozen for `freeze`, and the edge is SIGKILLed and restarted `restarts`
    /// times, `every` apart, inside the freeze.
    /// Each killed edge stays down for `down` before it starts again. With
    /// `thawOnTime`, the aggregator wakes `freeze` after it froze whether the
    /// restarts are done or not; otherwise once they are and `freeze` has passed.
    /// With `killAggregatorAt`, the frozen aggregator is SIGKILLed at that
    /// restart too, started again on its spool and frozen again at once. With
    /// `killBothAtWakeUp`, the edge is SIGKILLed as the aggregator wakes, and
    /// the aggregator once it has taken what its socket held (their acks went
    /// nowhere); both start again.
    private func run(
        prefix: String, freeze: Duration, restarts: Int, every: Duration, down: Duration = .zero, thawOnTime: Bool = false,
        killAggregatorAt: Int? = nil, killBothAtWakeUp: Bool = false, edgeOptions: [String] = []
    ) async throws -> Outcome {
        let dir = try scratchDirectory(prefix)
        let out = dir + "/out.log"
        let aggregatorPort = freePort(Int32(SOCK_DGRAM.rawValue))
        let edgeHTTP = freePort(Int32(SOCK_STREAM.rawValue))
        let aggregatorOptions = ["--upstream", "file:\(out)", "--spool-dir", dir + "/aggregator", "--receive-sockets", "1"]
        var (aggregator, _, aggregatorHTTP) = try await FerryProcess.serve(aggregatorOptions, listen: "127.0.0.1:\(aggregatorPort)")
        func edge() async throws -> FerryProcess {
            let process = try FerryProcess(
                [
                    "serve", "--listen", "127.0.0.1:0", "--http", "127.0.0.1:\(edgeHTTP)", "--upstream", "ferry://127.0.0.1:\(aggregatorPort)",
                    "--spool-dir", dir + "/edge", "--receive-sockets", "1",
                ] + edgeOptions)
            #expect(await process.waitForLine(message: "http listening", timeout: 15) != nil)
            return process
        }
        var edgeProcess = try await edge()
        var earlierEdges: [FerryProcess] = []

        let acceptedBatches = Mutex<[Int]>([])
        let stopping = Atomic<Bool>(false)
        let poster = Thread {
            var next = 0
            while !stopping.load(ordering: .relaxed) {
                let body = Array((next..<(next + 30)).map { "\(prefix)-\($0)\n" }.joined().utf8)
                if let reply = try? HTTPTestClient.request("POST", port: edgeHTTP, path: "/v1/logs", body: body), reply.status == 202 {
                    // Numbered in order: a batch refused (edge down) leaves a gap, so only answered batches are expected.
                    acceptedBatches.withLock { $0.append(next) }
                }
                next += 30
                usleep(10_000)
            }
        }
        poster.start()
        try await Task.sleep(for: .seconds(1))
        aggregator.signal(SIGSTOP)
        let frozenAt = ContinuousClock.now
        let aggregatorPID = aggregator.processID
        let thaw = Task {
            try? await Task.sleep(until: frozenAt + freeze)
            if thawOnTime { kill(aggregatorPID, SIGCONT) }
        }
        for restart in 0..<restarts {
            try await Task.sleep(for: every)
            if restart == killAggregatorAt {
                aggregator.signal(SIGKILL)  // frozen: what its socket held is lost, its spool is not
                _ = await aggregator.waitForExit(timeout: 5)
                (aggregator, _, aggregatorHTTP) = try await FerryProcess.serve(aggregatorOptions, listen: "127.0.0.1:\(aggregatorPort)")
                aggregator.signal(SIGSTOP)
            }
            edgeProcess.signal(SIGKILL)
            _ = await edgeProcess.waitForExit(timeout: 5)
            earlierEdges.append(edgeProcess)
            try await Task.sleep(for: down)
            edgeProcess = try await edge()
        }
        await thaw.value
        if killBothAtWakeUp {
            edgeProcess.signal(SIGKILL)
            _ = await edgeProcess.waitForExit(timeout: 5)
            earlierEdges.append(edgeProcess)
            aggregator.signal(SIGCONT)
            // It has taken its socket's backlog once its file stops growing.
            var lines = -1
            _ = await eventually(seconds: 30, every: .milliseconds(500)) {
                defer { lines = fileLines(out).count }
                return lines == fileLines(out).count && lines > 0
            }
            aggregator.signal(SIGKILL)
            _ = await aggregator.waitForExit(timeout: 5)
            (aggregator, _, aggregatorHTTP) = try await FerryProcess.serve(aggregatorOptions, listen: "127.0.0.1:\(aggregatorPort)")
            edgeProcess = try await edge()
        }
        aggregator.signal(SIGCONT)
        try await Task.sleep(for: .seconds(1))
        stopping.store(true, ordering: .relaxed)
        while !poster.isFinished { try await Task.sleep(for: .milliseconds(20)) }

        let expected = Set(acceptedBatches.withLock { $0 }.flatMap { first in (first..<(first + 30)).map { "\(prefix)-\($0)" } })
        // Done when the edge's spool holds nothing (every frame acknowledged) and every accepted line is in the file.
        let edgeStatus = StatusReader(port: edgeHTTP)
        _ = await eventually(seconds: 60, every: .milliseconds(500)) {
            guard (edgeStatus.status()?["spool"] as? [String: Any])?["logs"] as? Int == 0 else { return false }
            return Set(fileLines(out).map(String.init)).isSuperset(of: expected)
        }
        let counts = Dictionary(fileLines(out).map { (String($0), 1) }, uniquingKeysWith: +)
        let doubled = counts.filter { $0.value > 1 }.keys.compactMap { Int($0.split(separator: "-").last ?? "") }.sorted()
        if !doubled.isEmpty {
            let frames = StatusReader(port: aggregatorHTTP).counters()["frames_received_by_outcome"] ?? [:]
            print("doubled (first 40): \(doubled.prefix(40)); aggregator frames: \(frames)")
            print("aggregator counters: \(StatusReader(port: aggregatorHTTP).counters())")
            print("aggregator upstream: \(StatusReader(port: aggregatorHTTP).upstream(0))")
            print("dir: \(dir)")
            for (run, process) in (earlierEdges + [edgeProcess]).enumerated() {
                let notable = process.logLines.filter {
                    ($0["level"] as? String).map { $0 != "debug" && $0 != "info" } ?? true
                        || ($0["message"] as? String ?? "").contains("previous run")
                }
                print("edge run \(run): \(notable.map { "\($0)" }.joined(separator: "\n  "))")
            }
            print("dir: \(dir)")
        }
        edgeProcess.signal(SIGTERM)
        aggregator.signal(SIGTERM)
        _ = await edgeProcess.waitForExit(timeout: 15)
        _ = await aggregator.waitForExit(timeout: 15)
        let outcome = Outcome(
            accepted: expected.count, missing: expected.filter { counts[$0] == nil }.count,
            duplicates: counts.values.reduce(0) { $0 + max(0, $1 - 1) })
        print("\(prefix): \(restarts) restarts in a \(freeze) freeze: \(outcome)")
        return outcome
    }

    /// A 4 s freeze with the edge killed every 1.5 s: nothing lost, at most 0.5 % twice.
    @Test func edgeRestartsDuringAStallAddNoCopies() async throws {
        let outcome = try await run(prefix: "stall-restarts", freeze: .seconds(4), restarts: 2, every: .milliseconds(1_500))
        #expect(outcome.accepted > 2_000)
        #expect(outcome.missing == 0, "\(outcome)")
        #expect(Double(outcome.duplicates) <= Double(outcome.accepted) * 0.005, "\(outcome)")
    }

    /// Ten restarts inside one 8 s freeze: the same bound.
    @Test func tenEdgeRestartsDuringOneStallAddNoCopies() async throws {
        let outcome = try await run(prefix: "stall-ten", freeze: .seconds(8), restarts: 10, every: .milliseconds(700))
        #expect(outcome.accepted > 2_000)
        #expect(outcome.missing == 0, "\(outcome)")
        #expect(Double(outcome.duplicates) <= Double(outcome.accepted) * 0.005, "\(outcome)")
    }

    /// The frozen aggregator is also SIGKILLed and restarted (and frozen
    /// again) halfway through six edge restarts: the same bound.
    @Test func edgeRestartsWhileTheFrozenAggregatorIsKilledAddNoCopies() async throws {
        let outcome = try await run(
            prefix: "stall-agg", freeze: .seconds(6), restarts: 6, every: .milliseconds(800), killAggregatorAt: 3)
        #expect(outcome.accepted > 2_000)
        #expect(outcome.missing == 0, "\(outcome)")
        #expect(Double(outcome.duplicates) <= Double(outcome.accepted) * 0.005, "\(outcome)")
    }

    /// The edge dies as the frozen aggregator wakes, and the aggregator once
    /// it has delivered the backlog its socket held (the acks went to the dead
    /// edge): the restarted aggregator still knows those frames (its dedupe
    /// windows are in its spool), so the restarted edge's re-sends are
    /// acknowledged, not delivered again. The same bound.
    @Test func anAggregatorKilledAfterDeliveringWhatADeadEdgeSentAddsNoCopies() async throws {
        let outcome = try await run(
            prefix: "stall-both", freeze: .seconds(4), restarts: 2, every: .milliseconds(1_500), killBothAtWakeUp: true)
        #expect(outcome.accepted > 2_000)
        #expect(outcome.missing == 0, "\(outcome)")
        #expect(Double(outcome.duplicates) <= Double(outcome.accepted) * 0.005, "\(outcome)")
    }

    /// The edge's frame TTL is 2 s and each killed edge stays down 2.5 s,
    /// across the aggregator's wake-up: frames the aggregator delivered as it
    /// woke (their acks lost with the run that sent them) are past their TTL
    /// when the next run starts, and frames that run sends again wait past
    /// theirs while the aggregator is frozen again. They go again under their
    /// identity with the TTL extended, never as new frames: the same bound.
    @Test func edgeRestartsAcrossAWakeUpLongerThanTheFrameTTLAddNoCopies() async throws {
        let outcome = try await run(
            prefix: "stall-ttl", freeze: .milliseconds(1_500), restarts: 2, every: .milliseconds(1_200), down: .milliseconds(2_500),
            thawOnTime: true, edgeOptions: ["--frame-ttl", "2s"])
        #expect(outcome.accepted > 2_000)
        #expect(outcome.missing == 0, "\(outcome)")
        #expect(Double(outcome.duplicates) <= Double(outcome.accepted) * 0.005, "\(outcome)")
    }
}
