import FerryTestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Allowlists and per-source rate limits on real sockets: senders on other
/// loopback addresses (127.0.0.2, 127.0.0.3) play the allowed and the refused
/// source, the loud and the quiet one.
@Suite(.timeLimit(.minutes(2)))
struct SourceLimitsTests {
    private func refused(_ status: StatusReader) -> [String: Int] {
        status.counters()["refused_by_reason"] as? [String: Int] ?? [:]
    }

    private func kernelDrops(_ status: StatusReader) -> Int {
        (status.status()?["listeners"] as? [[String: Any]] ?? []).reduce(0) { $0 + ($1["kernel_receive_drops"] as? Int ?? 0) }
    }

    @Test func anAllowlistAdmitsOneAddressAndRefusesAnotherCounted() async throws {
        let dir = try scratchDirectory("allow")
        let out = dir + "/out.log"
        let (ferry, ports, httpPort) = try await FerryProcess.serve(
            listeners: ["udp://127.0.0.1:0", "tcp://127.0.0.1:0?allow=127.0.0.2"], ["--upstream", "file:\(out)", "--allow", "127.0.0.2/32"])
        let (udpPort, tcpPort) = (ports[0], ports[1])
        try await PacedSender.send(prefix: "allowed", count: 600, rate: 3_000, to: udpPort, from: "127.0.0.2")
        try await PacedSender.send(prefix: "denied", count: 900, rate: 3_000, to: udpPort, from: "127.0.0.3")
        let status = StatusReader(port: httpPort)
        #expect(await eventually(seconds: 10) { (status.counters()["forwarded"] as? Int) == 600 })
        #expect(await eventually(seconds: 5) { refused(status)["denied"] == 900 - kernelDrops(status) })
        let counters = status.counters()
        #expect((counters["received"] as? Int ?? 0) + (refused(status)["denied"] ?? 0) + kernelDrops(status) == 1_500)
        #expect(PacedSender.tally(prefix: "allowed", count: 600, in: fileLines(out)) == (0, 0, 0))

        // TCP: the refused address is closed before a byte is read; the allowed one is taken.
        let refusedConnection = try TCPTestConnection(port: tcpPort, from: "127.0.0.3")
        _ = refusedConnection.send("<13>not allowed\n")
        #expect(refusedConnection.isClosedByPeer(timeoutMilliseconds: 3_000), "closed by Ferry")
        let allowed = try TCPTestConnection(port: tcpPort, from: "127.0.0.2")
        _ = allowed.send("<13>allowed over tcp\n")
        #expect(await eventually(seconds: 5) { fileLines(out).contains("<13>allowed over tcp") })
        #expect(!fileLines(out).contains("<13>not allowed"))
        let stream = (status.status()?["stream_listeners"] as? [[String: Any]])?.first
        #expect((stream?["refused"] as? [String: Int])?["denied"] == 1, "\(stream ?? [:])")
        #expect(ferry.logLines.contains { $0["message"] as? String == "logs refused: source not allowed" && $0["source"] as? String == "127.0.0.3" })
        let limits = status.status()?["source_limits"] as? [[String: Any]] ?? []
        #expect(limits.contains { $0["allow"] as? String == "127.0.0.2/32" })
        ferry.signal(SIGTERM)
        _ = await ferry.waitForExit(timeout: 10)
    }

    @Test func aLoudSourceIsHeldToItsRateWhileAQuietOneLosesNothing() async throws {
        let dir = try scratchDirectory("rate")
        let out = dir + "/out.log"
        let (ferry, udpPort, httpPort) = try await FerryProcess.serve([
            "--upstream", "file:\(out)", "--rate-limit", "500", "--rate-limit-burst", "100",
        ])
        let started = ContinuousClock.now
        async let loud: Void = PacedSender.send(prefix: "loud", count: 6_000, rate: 4_000, to: udpPort, from: "127.0.0.2")
        // The quiet source sends no more than the burst in all: even if a busy machine delays its sender
        // and it sends everything at once, it stays within its bucket.
        async let quiet: Void = PacedSender.send(prefix: "quiet", count: 100, rate: 100, to: udpPort, from: "127.0.0.3")
        _ = try await (loud, quiet)
        let elapsed = ContinuousClock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let status = StatusReader(port: httpPort)
        #expect(
            await eventually(seconds: 5) {
                (status.counters()["received"] as? Int ?? 0) + (refused(status)["rate_limited"] ?? 0) + kernelDrops(status) == 6_100
            })
        #expect(await eventually(seconds: 5) { (status.counters()["forwarded"] as? Int) == (status.counters()["received"] as? Int) })
        let lines = fileLines(out)
        #expect(PacedSender.tally(prefix: "quiet", count: 100, in: lines.filter { $0.hasPrefix("quiet") }) == (0, 0, 0))
        let loudTaken = lines.filter { $0.hasPrefix("loud") }.count
        // At least the burst, at most the burst and 500/s over the time it sent (a stalled sender sends in clumps, so no tighter floor).
        #expect(loudTaken >= 100 && loudTaken <= 100 + Int(500 * (seconds + 0.3)), "\(loudTaken) in \(seconds) s")
        #expect(refused(status)["rate_limited"] == 6_000 - loudTaken - kernelDrops(status))
        let limits = (status.status()?["source_limits"] as? [[String: Any]])?.first?["rate_limit"] as? [String: Any]
        let top = (limits?["top_rate_limited"] as? [[String: Any]])?.first
        #expect(top?["source"] as? String == "127.0.0.2" && top?["admitted"] as? Int == loudTaken, "\(limits ?? [:])")
        #expect(
            ferry.logLines.contains {
                $0["message"] as? String == "logs refused: source over its rate limit" && $0["source"] as? String == "127.0.0.2"
            })
        ferry.signal(SIGTERM)
        _ = await ferry.waitForExit(timeout: 10)
    }

    /// `POST /v1/logs` is held to `allow` and the rate limit by the client's
    /// address, a request whole: refused requests take nothing and are counted.
    @Test func httpIntakeIsHeldToTheAllowlistAndTheRateLimit() async throws {
        let dir = try scratchDirectory("allow-http")
        let out = dir + "/out.log"
        let (ferry, _, http) = try await FerryProcess.serve([
            "--upstream", "file:\(out)", "--allow", "127.0.0.2/32", "--rate-limit", "100", "--rate-limit-burst", "50",
        ])
        defer { ferry.signal(SIGTERM) }
        func post(_ prefix: String, _ count: Int, from source: String) throws -> Int {
            let body = (0..<count).map { PacedSender.line(prefix, $0) }.joined(separator: "\n") + "\n"
            return try HTTPTestClient.request("POST", port: http, path: "/v1/logs", body: Array(body.utf8), from: source).status
        }
        #expect(try post("stranger", 10, from: "127.0.0.3") == 403)
        #expect(try post("first", 40, from: "127.0.0.2") == 202)
        #expect(try post("toomany", 40, from: "127.0.0.2") == 429, "40 lines with about 10 tokens left")
        try await Task.sleep(for: .milliseconds(600))  // 100 per second: the bucket refills past 40
        #expect(try post("later", 40, from: "127.0.0.2") == 202)
        let status = StatusReader(port: http)
        #expect(await eventually(seconds: 5) { fileLines(out).count == 80 })
        #expect(PacedSender.tally(prefix: "first", count: 40, in: fileLines(out).filter { $0.hasPrefix("first-") }) == (0, 0, 0))
        #expect(PacedSender.tally(prefix: "later", count: 40, in: fileLines(out).filter { $0.hasPrefix("later-") }) == (0, 0, 0))
        #expect(refused(status) == ["denied": 10, "rate_limited": 40], "\(refused(status))")
        #expect(status.counters()["received"] as? Int == 80)
        let limits = status.status()?["source_limits"] as? [[String: Any]] ?? []
        #expect(limits.contains { $0["listener"] as? String == "http" && $0["allow"] as? String == "127.0.0.2/32" }, "\(limits)")
    }
}
