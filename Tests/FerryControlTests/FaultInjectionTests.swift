import FerryTestSupport
import Foundation
import Testing

/// The resilient forwarding path under faults, with real processes on loopback:
/// an edge `ferry serve` forwarding `ferry://` to one or two aggregators with
/// file sinks. Each scenario is bounded in time.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct FaultInjectionTests {
    private func breakerTransitions(_ upstream: [String: Any]) -> [String: Int] {
        (upstream["breaker"] as? [String: Any])?["transitions"] as? [String: Int] ?? [:]
    }

    /// (a) The aggregator stops for 5 s while 50,000 logs flow at 10,000/s, then
    /// restarts: every log arrives exactly once; the edge's breaker opened and closed.
    @Test func aggregatorRestartLosesAndDuplicatesNothing() async throws {
        let dir = try scratchDirectory("fault")
        let aggregatorFile = dir + "/aggregator.log"
        var (aggregator, aggregatorPort, _) = try await FerryProcess.serve(["--upstream", "file:\(aggregatorFile)"])
        let (edge, edgePort, edgeHTTP) = try await FerryProcess.serve(["--upstream", "ferry://127.0.0.1:\(aggregatorPort)"])
        let status = StatusReader(port: edgeHTTP)

        let total = 50_000
        let sending = Task { try await PacedSender.send(prefix: "a", count: total, rate: 10_000, to: edgePort) }
        try await Task.sleep(for: .seconds(1))
        aggregator.signal(SIGTERM)
        #expect(await aggregator.waitForExit(timeout: 10) == 0)
        try await Task.sleep(for: .seconds(5))
        (aggregator, _, _) = try await FerryProcess.serve(["--listen", "127.0.0.1:\(aggregatorPort)", "--upstream", "file:\(aggregatorFile)"])
        try await sending.value

        let delivered = await eventually(seconds: 40) {
            (status.counters()["forwarded"] as? Int) == total && status.queueDepth() == 0
        }
        #expect(delivered, "edge status: \(status.counters())")
        #expect(await eventually(seconds: 10) { fileLines(aggregatorFile).count >= total })
        let tally = PacedSender.tally(prefix: "a", count: total, in: fileLines(aggregatorFile))
        #expect(tally.missing == 0)
        #expect(tally.duplicated == 0)
        let transitions = breakerTransitions(status.upstream(0))
        #expect(transitions["open", default: 0] >= 1)
        #expect(transitions["closed", default: 0] >= 1)
        // An ack that came late on a loaded machine may have counted as a failure after the last frame left, and an
        // open breaker with nothing to send stays open, and a half-open one half-open, until traffic probes it
        // (three frames must succeed): a trickle of further logs, one frame each, does.
        var closed = false
        var trickled = 0
        let trickleDeadline = ContinuousClock.now + .seconds(25)
        while !closed, ContinuousClock.now < trickleDeadline {
            try await PacedSender.send(prefix: "after", count: 5, rate: 50, to: edgePort, first: trickled)
            trickled += 5
            closed = (status.upstream(0)["breaker"] as? [String: Any])?["state"] as? String == "closed"
        }
        #expect(
            closed,
            "breaker: \(status.upstream(0)["breaker"] ?? "none"); transitions logged: \(edge.logLines.filter { $0["message"] as? String == "breaker transition" })"
        )
        #expect(edge.logLines.contains { $0["message"] as? String == "breaker transition" && $0["breaker.to"] as? String == "open" })
        aggregator.signal(SIGTERM)
        edge.signal(SIGTERM)
        _ = await aggregator.waitForExit(timeout: 10)
        _ = await edge.waitForExit(timeout: 10)
    }

    /// (b) The aggregator is frozen (SIGSTOP: nothing is refused, acks just stop):
    /// ack timeouts open the breaker, traffic fails over to a second aggregator,
    /// and across both files every log appears exactly once, even after the
    /// frozen one resumes and reads the frames that waited in its socket.
    @Test func frozenAggregatorFailsOverWithoutDuplicates() async throws {
        let dir = try scratchDirectory("fault")
        let fileA = dir + "/a.log"
        let fileB = dir + "/b.log"
        let (aggregatorA, portA, _) = try await FerryProcess.serve(["--upstream", "file:\(fileA)"])
        let (aggregatorB, portB, _) = try await FerryProcess.serve(["--upstream", "file:\(fileB)"])
        let (edge, edgePort, edgeHTTP) = try await FerryProcess.serve([
            "--upstream", "ferry://127.0.0.1:\(portA)", "--upstream", "ferry://127.0.0.1:\(portB)", "--frame-ttl", "3s",
        ])
        let status = StatusReader(port: edgeHTTP)

        let total = 30_000
        let sending = Task { try await PacedSender.send(prefix: "b", count: total, rate: 10_000, to: edgePort) }
        try await Task.sleep(for: .seconds(1))
        aggregatorA.signal(SIGSTOP)
        try await sending.value

        let delivered = await eventually(seconds: 30) {
            (status.counters()["forwarded"] as? Int) == total && status.queueDepth() == 0
        }
        #expect(delivered, "edge status: \(status.counters())")
        let upstreamA = status.upstream(0)
        #expect(breakerTransitions(upstreamA)["open", default: 0] >= 1)
        #expect((upstreamA["failovers"] as? Int ?? 0) > 0)
        #expect((status.upstream(1)["forwarded"] as? Int ?? 0) > 0)
        #expect(edge.logLines.contains { $0["message"] as? String == "frame failed over" && $0["trace_id"] != nil })

        // Resume A: the frames it never read are past their time-to-live and must not be delivered.
        aggregatorA.signal(SIGCONT)
        try await Task.sleep(for: .seconds(2))
        let statusA = StatusReader(port: try #require(await httpPort(of: aggregatorA)))
        _ = await eventually(seconds: 5) { statusA.queueDepth() == 0 }
        let lines = fileLines(fileA) + fileLines(fileB)
        let tally = PacedSender.tally(prefix: "b", count: total, in: lines)
        #expect(tally.missing == 0)
        // Frames past their TTL are never delivered: without that check every frame A held (thousands) would
        // appear twice. What may appear twice is what A had already taken when it was frozen, its acks not yet
        // sent (the acks of a burst leave when the burst is done: one burst's frames): at-least-once, as any
        // acknowledged protocol. Every duplicate must be a log A took that the edge never saw acknowledged.
        let takenByA = statusA.counters()["received"] as? Int ?? 0
        let acknowledgedByA = status.upstream(0)["forwarded"] as? Int ?? 0
        #expect(tally.duplicated <= takenByA - acknowledgedByA, "\(tally.duplicated) duplicated; A took \(takenByA), acknowledged \(acknowledgedByA)")
        #expect(tally.duplicated <= 3_000, "\(tally.duplicated) duplicated: more than a burst's frames")
        for process in [aggregatorA, aggregatorB, edge] {
            process.signal(SIGTERM)
            _ = await process.waitForExit(timeout: 10)
        }
    }

    /// (c) An upstream down for the whole test: retries stay within the budget,
    /// drops start only when the buffer is full and are all `queue_full`, and
    /// memory stays bounded.
    @Test func permanentOutageRespectsTheRetryBudgetAndTheBuffer() async throws {
        let closedPort = try UDPTestSocket().port  // bound and released: nothing listens there
        let capacity = 2_000
        let (edge, edgePort, edgeHTTP) = try await FerryProcess.serve([
            "--upstream", "ferry://127.0.0.1:\(closedPort)", "--queue-capacity-logs", "\(capacity)",
        ])
        let status = StatusReader(port: edgeHTTP)
        let started = ContinuousClock.now
        let total = 12_000
        try await PacedSender.send(prefix: "c", count: 1_000, rate: 1_000, to: edgePort)
        let counters = status.counters()
        #expect((counters["dropped"] as? Int) == 0, "no drop before the buffer is full: \(counters)")
        let rssEarly = residentKiB(pid: edge.process.processIdentifier) ?? 0
        try await PacedSender.send(prefix: "c2", count: total - 1_000, rate: 2_000, to: edgePort)
        try await Task.sleep(for: .seconds(1))
        let elapsed = ContinuousClock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18

        let final = status.counters()
        let dropped = final["dropped_by_reason"] as? [String: Int] ?? [:]
        let received = final["received"] as? Int ?? -1
        let depth = status.queueDepth()
        #expect(received == total)
        #expect(dropped.filter { $0.key != "queue_full" }.values.allSatisfy { $0 == 0 })
        #expect(dropped["queue_full", default: 0] > 0)
        #expect(depth == capacity)  // full, and only then dropping
        #expect((final["forwarded"] as? Int) == 0)
        #expect(received == (final["dropped"] as? Int ?? 0) + depth)

        let upstream = status.upstream(0)
        let budget = upstream["retry_budget"] as? [String: Any] ?? [:]
        let retries = upstream["retries"] as? Int ?? -1
        let firstAttempts = budget["first_attempts"] as? Int ?? -1
        // Defaults: ratio 0.2, floor 5/s, burst 10 — per upstream, over the whole outage.
        let allowed = 10 + 0.2 * Double(firstAttempts) + 5 * seconds
        #expect(Double(retries) <= allowed, "retries \(retries) over \(seconds) s with \(firstAttempts) first attempts")
        #expect((upstream["breaker"] as? [String: Any])?["state"] as? String != "closed")

        let rssLate = residentKiB(pid: edge.process.processIdentifier) ?? 0
        #expect(rssLate < 150_000, "resident memory \(rssLate) KiB")
        #expect(rssLate - rssEarly < 20_000, "memory grew from \(rssEarly) to \(rssLate) KiB")
        edge.signal(SIGTERM)
        #expect(await edge.waitForExit(timeout: 10) == 0)
    }

    /// (d) A flapping upstream (up 1 s, frozen 1 s, for 10 s): nothing lost or
    /// duplicated, and no more breaker trips than the open waits allow.
    @Test func flappingUpstreamLosesNothing() async throws {
        let dir = try scratchDirectory("fault")
        let aggregatorFile = dir + "/aggregator.log"
        let (aggregator, aggregatorPort, _) = try await FerryProcess.serve(["--upstream", "file:\(aggregatorFile)"])
        let (edge, edgePort, edgeHTTP) = try await FerryProcess.serve(["--upstream", "ferry://127.0.0.1:\(aggregatorPort)"])
        let status = StatusReader(port: edgeHTTP)

        let total = 20_000
        let sending = Task { try await PacedSender.send(prefix: "d", count: total, rate: 2_000, to: edgePort) }
        for _ in 0..<5 {
            try await Task.sleep(for: .seconds(1))
            aggregator.signal(SIGSTOP)
            try await Task.sleep(for: .seconds(1))
            aggregator.signal(SIGCONT)
        }
        try await sending.value
        let delivered = await eventually(seconds: 40) {
            (status.counters()["forwarded"] as? Int) == total && status.queueDepth() == 0
        }
        #expect(delivered, "edge status: \(status.counters())")
        #expect(await eventually(seconds: 10) { fileLines(aggregatorFile).count >= total })
        let tally = PacedSender.tally(prefix: "d", count: total, in: fileLines(aggregatorFile))
        #expect(tally.missing == 0)
        #expect(tally.duplicated == 0)
        // Every trip is followed by an open wait of at least breaker.open-duration (1 s),
        // so over the ~12 s of the test there can be at most 12 trips.
        let opens = breakerTransitions(status.upstream(0))["open", default: 0]
        #expect(opens <= 12)
        aggregator.signal(SIGTERM)
        edge.signal(SIGTERM)
        _ = await aggregator.waitForExit(timeout: 10)
        _ = await edge.waitForExit(timeout: 10)
    }

    private func httpPort(of process: FerryProcess) async -> Int? {
        guard let line = await process.waitForLine(message: "http listening"), let address = line["http.address"] as? String else {
            return nil
        }
        return address.split(separator: ":").last.flatMap { Int($0) }
    }
}
