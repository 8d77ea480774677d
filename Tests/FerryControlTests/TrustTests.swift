import FerryCore
import FerryTestSupport
import Foundation
import NIOCore
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Keyed `ferry://` between real processes, tried as an attacker on the same
/// host would: forged frames in a live edge's name, acks forged from a frozen
/// aggregator's address, a wrong key, and a key rotation under load.
@Suite(.timeLimit(.minutes(3)))
struct TrustTests {
    private func stop(_ processes: FerryProcess...) async {
        for process in processes {
            process.signal(SIGCONT)
            process.signal(SIGTERM)
            _ = await process.waitForExit(timeout: 10)
        }
    }

    /// A new random key as 64 hex characters.
    private func newKey() -> String {
        var random = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &random)) }.joined()
    }

    /// Writes `keys` (one per line) to `path` as a key tool would: a new file, mode 600, renamed over the old one.
    private func writeKeys(_ keys: [String], to path: String) throws {
        let temporary = path + ".new"
        try Data((keys.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: temporary))
        chmod(temporary, 0o600)
        rename(temporary, path)
    }

    private func unauthenticated(_ status: StatusReader) -> [String: Int] {
        status.counters()["frames_unauthenticated"] as? [String: Int] ?? [:]
    }

    /// The sender ids and highest sequence numbers an aggregator's debug log shows (as an attacker reading it would).
    private func sniffedSenders(_ aggregator: FerryProcess) -> [UInt64: UInt32] {
        var senders: [UInt64: UInt32] = [:]
        for line in aggregator.logLines where line["message"] as? String == "frame received" {
            guard let sender = (line["frame.sender"] as? String).flatMap({ UInt64($0, radix: 16) }),
                let sequence = (line["frame.sequence"] as? String).flatMap({ UInt32($0) })
            else { continue }
            senders[sender] = max(senders[sender] ?? 0, sequence)
        }
        return senders
    }

    /// Dedupe poisoning and injection: frames in a keyed edge's name with its
    /// next sequence numbers, unkeyed or signed by another key, and frames of
    /// made-up senders, are refused and counted before they mark anything, so
    /// every log the edge forwards after them arrives, once.
    @Test func forgedFramesInAKeyedEdgesNameAreRefusedAndItsLogsAllArrive() async throws {
        let dir = try scratchDirectory("trust")
        let out = dir + "/out.log"
        let keyFile = dir + "/ferry.key"
        try writeKeys([newKey()], to: keyFile)
        let (aggregator, aggregatorPort, aggregatorHTTP) = try await FerryProcess.serve([
            "--upstream", "file:\(out)", "--receive-sockets", "1", "--auth-key-file", keyFile, "--log-level", "debug",
        ])
        let (edge, edgePort, edgeHTTP) = try await FerryProcess.serve([
            "--upstream", "ferry://127.0.0.1:\(aggregatorPort)", "--receive-sockets", "1", "--auth-key-file", keyFile,
        ])
        try await PacedSender.send(prefix: "before", count: 120, rate: 2_000, to: edgePort)
        #expect(await eventually(seconds: 10) { PacedSender.tally(prefix: "before", count: 120, in: fileLines(out)).missing == 0 })
        let senders = sniffedSenders(aggregator)
        try #require(!senders.isEmpty, "the aggregator's debug log names the edge's sender id")

        let attacker = try UDPTestSocket()
        let wrongKey = FrameKey(secret: (0..<32).map { _ in UInt8.random(in: 0...255) })
        let forgedPerSender = 400
        var sent = 0
        for (sender, last) in senders {
            for offset in 1...UInt32(forgedPerSender) {
                attacker.send(dataFrame(sender: sender, sequence: last &+ offset, records: ["forged-\(offset)"], ttl: 60_000), to: aggregatorPort)
                attacker.send(
                    dataFrame(sender: sender, sequence: last &+ offset, records: ["wrong-key-\(offset)"], ttl: 60_000, key: wrongKey),
                    to: aggregatorPort)
                sent += 2
                if offset % 100 == 0 { try await Task.sleep(for: .milliseconds(5)) }
            }
        }
        for index in 0..<50 {
            attacker.send(
                dataFrame(sender: UInt64.random(in: 1...UInt64.max), sequence: UInt32(index), records: ["injected-\(index)"], ttl: 60_000),
                to: aggregatorPort)
        }
        sent += 50
        let aggregatorStatus = StatusReader(port: aggregatorHTTP)
        #expect(
            await eventually(seconds: 10) { unauthenticated(aggregatorStatus).values.reduce(0, +) == sent }, "\(unauthenticated(aggregatorStatus))")

        try await PacedSender.send(prefix: "after", count: 300, rate: 2_000, to: edgePort)
        #expect(await eventually(seconds: 10) { PacedSender.tally(prefix: "after", count: 300, in: fileLines(out)).missing == 0 })
        let lines = fileLines(out)
        #expect(PacedSender.tally(prefix: "before", count: 120, in: lines.filter { $0.hasPrefix("before") }) == (0, 0, 0))
        #expect(PacedSender.tally(prefix: "after", count: 300, in: lines.filter { $0.hasPrefix("after") }) == (0, 0, 0))
        #expect(
            lines.count == 420, "only the edge's logs are written: \(lines.filter { !$0.hasPrefix("before") && !$0.hasPrefix("after") }.prefix(3))")
        let counts = unauthenticated(aggregatorStatus)
        #expect(counts["unkeyed"] == forgedPerSender * senders.count + 50)
        #expect(counts["unknown_key"] == forgedPerSender * senders.count)
        let frames = aggregatorStatus.counters()["frames_received_by_outcome"] as? [String: Int] ?? [:]
        #expect(frames["duplicate"] ?? 0 == 0, "no real frame was taken for a retransmission: \(frames)")
        #expect((StatusReader(port: edgeHTTP).upstream(0)["forwarded"] as? Int) == 420)
        #expect(aggregator.logLines.contains { $0["message"] as? String == "logs dropped" && $0["drop.reason"] as? String == "unauthenticated" })
        await stop(edge, aggregator)
    }

    /// Forged acknowledgements: with the aggregator frozen, acks for every
    /// frame come from its own address and port (a socket that joined its port
    /// group). The keyed edge ignores them all, counts them, keeps its logs;
    /// once the aggregator is killed and started again, every log arrives.
    @Test func acksForgedFromAFrozenAggregatorsAddressAreIgnoredAndEveryLogArrives() async throws {
        let dir = try scratchDirectory("trust")
        let out = dir + "/out.log"
        let keyFile = dir + "/ferry.key"
        try writeKeys([newKey()], to: keyFile)
        let aggregatorArguments = ["--upstream", "file:\(out)", "--receive-sockets", "1", "--auth-key-file", keyFile, "--log-level", "debug"]
        let (aggregator, aggregatorPort, _) = try await FerryProcess.serve(aggregatorArguments)
        let (edge, edgePort, edgeHTTP) = try await FerryProcess.serve([
            "--upstream", "ferry://127.0.0.1:\(aggregatorPort)", "--receive-sockets", "1", "--auth-key-file", keyFile,
            "--ack-timeout", "200ms", "--frame-ttl", "3s",
        ])
        let edgeStatus = StatusReader(port: edgeHTTP)
        try await PacedSender.send(prefix: "warm", count: 50, rate: 1_000, to: edgePort)
        #expect(await eventually(seconds: 10) { (edgeStatus.upstream(0)["forwarded"] as? Int) == 50 })
        let senders = sniffedSenders(aggregator)
        try #require(!senders.isEmpty)
        let edgePorts = connectedPorts(to: aggregatorPort)
        try #require(!edgePorts.isEmpty, "the edge's socket to the aggregator is in /proc/net/udp")

        aggregator.signal(SIGSTOP)
        var forger: UDPTestSocket? = try UDPTestSocket(port: aggregatorPort, reusePort: true)
        let wrongKey = FrameKey(secret: (0..<32).map { _ in UInt8.random(in: 0...255) })
        let total = 1_500
        let sending = Task { try await PacedSender.send(prefix: "held", count: total, rate: 1_000, to: edgePort) }
        var forged = 0
        for round in 0..<15 {
            for (sender, last) in senders {
                for sequence in (last &+ 1)...(last &+ 400) {
                    for port in edgePorts {
                        var ack = ByteBuffer()
                        let forgedAck = FrameCodec.Ack(senderID: sender, sequence: sequence, traceID: TraceID(high: 0, low: 0))
                        FrameCodec.encodeAck(forgedAck, into: &ack, key: round % 2 == 0 ? nil : wrongKey)
                        forger?.send(Array(ack.readableBytesView), to: port)
                        forged += 1
                    }
                }
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        try await sending.value
        let upstream = edgeStatus.upstream(0)
        #expect((upstream["forwarded"] as? Int) == 50, "forged acks counted as delivered: \(upstream)")
        let ignored = (upstream["unauthenticated_acks"] as? [String: Int] ?? [:]).values.reduce(0, +)
        #expect(ignored > forged / 2, "ignored \(ignored) of \(forged) forged acks")
        #expect(((upstream["breaker"] as? [String: Any])?["trips"] as? Int ?? 0) > 0, "no acks: the breaker opened")

        aggregator.signal(SIGKILL)
        _ = await aggregator.waitForExit(timeout: 5)
        forger = nil  // closes it: the port is the restarted aggregator's alone
        let (restarted, _, _) = try await FerryProcess.serve(aggregatorArguments, listen: "127.0.0.1:\(aggregatorPort)")
        #expect(await eventually(seconds: 40) { PacedSender.tally(prefix: "held", count: total, in: fileLines(out)).missing == 0 })
        #expect(PacedSender.tally(prefix: "held", count: total, in: fileLines(out).filter { $0.hasPrefix("held") }) == (0, 0, 0))
        await stop(edge, restarted)
    }

    /// An edge with another key than its aggregator delivers nothing: the
    /// aggregator counts every frame as `unknown_key`, the edge gets no ack it
    /// trusts, its breaker opens and its logs wait in its buffer.
    @Test func anEdgeWithTheWrongKeyDeliversNothingAndItsLogsWait() async throws {
        let dir = try scratchDirectory("trust")
        let out = dir + "/out.log"
        try writeKeys([newKey()], to: dir + "/aggregator.key")
        try writeKeys([newKey()], to: dir + "/edge.key")
        let (aggregator, aggregatorPort, aggregatorHTTP) = try await FerryProcess.serve([
            "--upstream", "file:\(out)", "--auth-key-file", dir + "/aggregator.key",
        ])
        let (edge, edgePort, edgeHTTP) = try await FerryProcess.serve([
            "--upstream", "ferry://127.0.0.1:\(aggregatorPort)", "--auth-key-file", dir + "/edge.key", "--ack-timeout", "200ms",
        ])
        try await PacedSender.send(prefix: "w", count: 400, rate: 2_000, to: edgePort)
        let edgeStatus = StatusReader(port: edgeHTTP)
        let aggregatorStatus = StatusReader(port: aggregatorHTTP)
        #expect(await eventually(seconds: 10) { ((edgeStatus.upstream(0)["breaker"] as? [String: Any])?["trips"] as? Int ?? 0) > 0 })
        #expect(await eventually(seconds: 5) { (unauthenticated(aggregatorStatus)["unknown_key"] ?? 0) > 0 })
        try await Task.sleep(for: .milliseconds(500))
        #expect(fileLines(out).isEmpty)
        #expect((edgeStatus.upstream(0)["forwarded"] as? Int) == 0)
        #expect(edgeStatus.queueDepth() == 400, "the logs wait in the edge's buffer")
        #expect((aggregatorStatus.counters()["frames_received_by_outcome"] as? [String: Int])?["accepted"] == 0)
        await stop(edge, aggregator)
    }

    /// The three-step rotation of the README, under load: both sides read
    /// their key files again when they change, and no log is lost or doubled.
    @Test func keysRotateUnderLoadWithoutALostLog() async throws {
        let dir = try scratchDirectory("trust")
        let out = dir + "/out.log"
        let (old, new) = (newKey(), newKey())
        let aggregatorKeys = dir + "/aggregator.key"
        let edgeKeys = dir + "/edge.key"
        try writeKeys([old], to: aggregatorKeys)
        try writeKeys([old], to: edgeKeys)
        let (aggregator, aggregatorPort, _) = try await FerryProcess.serve(["--upstream", "file:\(out)", "--auth-key-file", aggregatorKeys])
        let (edge, edgePort, edgeHTTP) = try await FerryProcess.serve([
            "--upstream", "ferry://127.0.0.1:\(aggregatorPort)", "--auth-key-file", edgeKeys,
        ])
        let total = 16_000
        let sending = Task { try await PacedSender.send(prefix: "r", count: total, rate: 2_000, to: edgePort) }
        func reloaded(_ process: FerryProcess, times: Int) async -> Bool {
            await eventually(seconds: 8) { process.logLines.filter { $0["message"] as? String == "auth keys reloaded" }.count >= times }
        }
        try await Task.sleep(for: .seconds(1))
        try writeKeys([old, new], to: aggregatorKeys)  // 1. the receiver accepts both
        #expect(await reloaded(aggregator, times: 1))
        try writeKeys([new, old], to: edgeKeys)  // 2. the sender signs with the new one
        #expect(await reloaded(edge, times: 1))
        try writeKeys([new], to: aggregatorKeys)  // 3. the old one goes
        #expect(await reloaded(aggregator, times: 2))
        try writeKeys([new], to: edgeKeys)
        #expect(await reloaded(edge, times: 2))
        try await sending.value
        #expect(await eventually(seconds: 20) { PacedSender.tally(prefix: "r", count: total, in: fileLines(out)).missing == 0 })
        #expect(PacedSender.tally(prefix: "r", count: total, in: fileLines(out)) == (0, 0, 0))
        #expect((StatusReader(port: edgeHTTP).upstream(0)["unauthenticated_acks"] as? [String: Int] ?? [:]).values.reduce(0, +) == 0)
        await stop(edge, aggregator)
    }

    /// A key file group or others can read stops `check-config` and `serve` with the fix; so does a bad key.
    @Test func aKeyFileOthersCanReadIsRefusedNamingTheFix() async throws {
        let dir = try scratchDirectory("trust")
        let path = dir + "/ferry.key"
        try writeKeys([newKey()], to: path)
        chmod(path, 0o644)
        let check = try FerryProcess(["check-config", "--auth-key-file", path])
        #expect(await check.waitForExit(timeout: 10) == 2)
        #expect(check.logText.contains("auth.key-file") && check.logText.contains("chmod 600"), "\(check.logText)")
        try writeKeys(["abc123"], to: path)
        let serve = try FerryProcess(["serve", "--auth-key-file", path, "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"])
        #expect(await serve.waitForExit(timeout: 10) == 2)
        #expect(serve.logText.contains("line 1") && !serve.logText.contains("abc123"), "\(serve.logText)")
    }

    /// Local ports of UDP sockets connected to `port` on loopback (the edge's sockets to its aggregator).
    private func connectedPorts(to port: Int) -> [Int] {
        let text = readProcFile("/proc/net/udp")  // Foundation may stop at the first page of a /proc file
        let remote = String(format: "0100007F:%04X", port)
        return text.split(separator: "\n").dropFirst().compactMap { line in
            let fields = line.split(separator: " ")
            guard fields.count > 3, fields[2] == remote else { return nil }
            return Int(fields[1].split(separator: ":").last ?? "", radix: 16)
        }
    }
}

/// The admin token: state-changing endpoints are off without one, refuse a
/// missing or wrong bearer token, and act on the right one.
@Suite(.timeLimit(.minutes(1)))
struct AdminTokenTests {
    @Test func reopenIsOffWithoutATokenAndNeedsTheRightBearerWithOne() async throws {
        let dir = try scratchDirectory("admin")
        let (open, _, openHTTP) = try await FerryProcess.serve(["--upstream", "file:\(dir)/a.log"])
        let off = try HTTPTestClient.request("POST", port: openHTTP, path: "/v1/reopen")
        #expect(off.status == 403 && (off.json?["reason"] as? String)?.contains("admin.token-file") == true)
        open.signal(SIGTERM)
        _ = await open.waitForExit(timeout: 10)

        let token = String(repeating: "s3cret-", count: 6)
        let tokenFile = dir + "/admin.token"
        try Data((token + "\n").utf8).write(to: URL(fileURLWithPath: tokenFile))
        chmod(tokenFile, 0o600)
        let (ferry, udpPort, httpPort) = try await FerryProcess.serve([
            "--upstream", "file:\(dir)/out.log", "--admin-token-file", tokenFile, "--log-file", dir + "/ferry.log",
        ])
        #expect(try HTTPTestClient.request("POST", port: httpPort, path: "/v1/reopen").status == 401)
        let wrong = try HTTPTestClient.request("POST", port: httpPort, path: "/v1/reopen", headers: ["Authorization": "Bearer " + token + "x"])
        #expect(wrong.status == 401)
        #expect(try HTTPTestClient.request("POST", port: httpPort, path: "/v1/reopen", headers: ["Authorization": token]).status == 401)
        // What logrotate does, then the authorized request: the next log goes to a new file at the path.
        try FileManager.default.moveItem(atPath: dir + "/out.log", toPath: dir + "/out.log.1")
        let right = try HTTPTestClient.request("POST", port: httpPort, path: "/v1/reopen", headers: ["Authorization": "Bearer " + token])
        #expect(right.status == 200, "\(right.json ?? [:])")
        #expect((right.json?["reopened"] as? [String])?.contains(dir + "/out.log") == true, "\(right.json ?? [:])")
        try UDPTestSocket().send(Array("after reopen".utf8), to: udpPort)
        #expect(await eventually(seconds: 5) { fileLines(dir + "/out.log").contains("after reopen") })
        #expect(try HTTPTestClient.request("GET", port: httpPort, path: "/v1/status").status == 200)  // read-only stays open
        let log = (try? String(contentsOfFile: dir + "/ferry.log", encoding: .utf8)) ?? ""
        #expect(!log.contains(token), "the token is never logged")
        #expect(log.contains("admin request refused"))
        ferry.signal(SIGTERM)
        _ = await ferry.waitForExit(timeout: 10)

        chmod(tokenFile, 0o640)
        let refused = try FerryProcess(["check-config", "--admin-token-file", tokenFile])
        #expect(await refused.waitForExit(timeout: 10) == 2)
        #expect(refused.logText.contains("admin.token-file") && refused.logText.contains("chmod 600"))
    }
}
