import FerryTestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Routes end to end: the real binary, real sockets from many loopback
/// source addresses, real files and real aggregator processes.
struct RoutesTests {
    /// A syslog line from source `source`, number `index`, with PRI `pri` (nil: no PRI at all).
    private func line(source: Int, index: Int, pri: Int?) -> String {
        let body = "1 2026-12-02T10:00:00Z host app - - - src=\(source) seq=\(index)"
        return pri.map { "<\($0)>" + body } ?? "no pri src=\(source) seq=\(index)"
    }

    private func key(_ line: Substring) -> String? {
        guard let range = line.range(of: "src=") else { return nil }
        return String(line[range.lowerBound...])
    }

    @Test func threeRoutesFanOutFilterBySeverityAndBalanceBySource() async throws {
        try await LoadGate.shared.heavy {
            let directory = try scratchDirectory("routes")
            let path = try writeConfigFile(
                """
                routes:
                  archive: { upstreams: ["file:\(directory)/all.log"] }
                  alerts: { match: { severity: warning }, upstreams: ["file:\(directory)/alerts.log"] }
                  pair: { mode: balance, upstreams: ["file:\(directory)/a.log", "file:\(directory)/b.log"] }
                """, in: directory)
            let (ferry, port, http) = try await FerryProcess.serve(["--config", path])
            defer { ferry.signal(SIGTERM) }

            // Sixteen sources, each sending lines of every PRI in turn (and some without one).
            let sources = 16
            let perSource = 150
            var expected: [String: Int?] = [:]
            var severities: [String: Int] = [:]
            let names = ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"]
            for source in 1...sources {
                let socket = try UDPTestSocket(host: "127.0.0.\(source)")
                for index in 0..<perSource {
                    let pri: Int? = index % 10 == 9 ? nil : (index * 37 + source * 11) % 192
                    let text = line(source: source, index: index, pri: pri)
                    expected[String(text[text.range(of: "src=")!.lowerBound...])] = pri
                    severities[pri.map { names[$0 & 7] } ?? "none", default: 0] += 1
                    socket.send(Array(text.utf8), to: port)
                    if index % 50 == 49 { usleep(2_000) }
                }
            }
            let total = sources * perSource
            let arrived = await eventually(seconds: 15) { fileLines(directory + "/all.log").count >= total }
            #expect(arrived, "archive has \(fileLines(directory + "/all.log").count) of \(total)")
            try await Task.sleep(for: .milliseconds(300))

            // The archive: every log once, bytes unchanged.
            let archive = fileLines(directory + "/all.log").compactMap(key)
            #expect(archive.count == total)
            #expect(Set(archive).count == total)
            #expect(Set(archive) == Set(expected.keys))
            // The filtered route: exactly warning and worse; a log without a PRI is not one.
            let alerts = fileLines(directory + "/alerts.log").compactMap(key)
            let wanted = Set(expected.filter { entry in entry.value.map { $0 & 7 <= 4 } ?? false }.keys)
            #expect(alerts.count == wanted.count)
            #expect(Set(alerts) == wanted)
            // The pair: every log once over both, each source on one member only.
            let a = fileLines(directory + "/a.log").compactMap(key)
            let b = fileLines(directory + "/b.log").compactMap(key)
            #expect(a.count + b.count == total)
            #expect(Set(a + b) == Set(expected.keys))
            let sourceOf = { (key: String) in key.split(separator: " ")[0] }
            let onA = Set(a.map(sourceOf))
            let onB = Set(b.map(sourceOf))
            #expect(onA.isDisjoint(with: onB), "sources on both members: \(onA.intersection(onB))")
            #expect(!onA.isEmpty && !onB.isEmpty, "one member took every source: a \(onA.count), b \(onB.count)")

            // Counted by severity, and per route.
            let status = StatusReader(port: http).status() ?? [:]
            let counted = (status["counters"] as? [String: Any])?["received_by_severity"] as? [String: Int] ?? [:]
            for (name, count) in severities { #expect(counted[name] == count, "\(name)") }
            let routes = status["routes"] as? [[String: Any]] ?? []
            let routed = Dictionary(uniqueKeysWithValues: routes.map { ($0["name"] as? String ?? "", $0["routed"] as? Int ?? -1) })
            #expect(routed == ["archive": total, "alerts": wanted.count, "pair": total])
            let metrics = try HTTPTestClient.request("GET", port: http, path: "/metrics").body
            #expect(metrics.contains("ferry_logs_by_severity_total{severity=\"warning\"} \(severities["warning"]!)"))
            #expect(metrics.contains("ferry_route_logs_total{route=\"alerts\"} \(wanted.count)"))
        }
    }

    @Test func aDeadDestinationCostsOnlyItsOwnRouteItsOldestLogs() async throws {
        try await LoadGate.shared.heavy {
            let directory = try scratchDirectory("routes-dead")
            // A ferry:// destination that never answers: a socket nobody reads.
            let frozen = try UDPTestSocket()
            let path = try writeConfigFile(
                """
                routes:
                  archive: { upstreams: ["file:\(directory)/all.log"] }
                  dead: { upstreams: ["ferry://127.0.0.1:\(frozen.port)"], max-backlog-bytes: 32KiB }
                """, in: directory)
            // The dead route's frames come back after their TTL: the archive must have everything well before that,
            // so a TTL far above any scheduling delay tells "held back by the dead route" from "slow machine".
            let (ferry, port, http) = try await FerryProcess.serve(["--config", path, "--ack-timeout", "100ms", "--frame-ttl", "6s"])
            defer { ferry.signal(SIGTERM) }
            let count = 4_000
            try await PacedSender.send(prefix: "dead", count: count, rate: 2_000, to: port)
            let sentAt = ContinuousClock.now
            let arrived = await eventually(seconds: 10) { fileLines(directory + "/all.log").count >= count }
            let lag = ContinuousClock.now - sentAt
            let tally = PacedSender.tally(prefix: "dead", count: count, in: fileLines(directory + "/all.log"))
            #expect(arrived)
            #expect(tally.missing == 0 && tally.duplicated == 0, "\(tally)")
            #expect(lag < .seconds(6), "the archive was \(lag) behind with the other route dead: held back until its frames' TTL")

            // The dead route's frames wait in flight until their TTL gives them back, then its queue overflows:
            // when depends on the machine's pace, so wait for it rather than read it once.
            let deadRoute = {
                (StatusReader(port: http).status()?["routes"] as? [[String: Any]] ?? []).first { $0["name"] as? String == "dead" } ?? [:]
            }
            #expect(await eventually(seconds: 20) { (deadRoute()["route_overflow"] as? Int ?? 0) > 0 }, "\(deadRoute())")
            let dead = deadRoute()
            #expect(dead["routed"] as? Int == count)
            #expect((dead["waiting_bytes"] as? Int ?? .max) <= 32 << 10)
            // Never over its cap, not even between queueing a batch and trimming for it (one sender: one loop).
            #expect((dead["peak_waiting_bytes"] as? Int ?? .max) <= 32 << 10, "\(dead)")
            #expect((dead["peak_waiting_bytes"] as? Int ?? 0) > 16 << 10, "the cap was never approached: \(dead)")
            // The route's count and the relay's drop counter name the same logs (two reads: frames given back
            // after their TTL may overflow between them, so wait until the two agree).
            var overflow = 0
            var dropped: [String: Int] = [:]
            let agree = await eventually(seconds: 10) {
                overflow = deadRoute()["route_overflow"] as? Int ?? 0
                dropped = StatusReader(port: http).counters()["dropped_by_reason"] as? [String: Int] ?? [:]
                return dropped["route_overflow"] == overflow
            }
            #expect(agree, "route_overflow: route \(overflow), drops \(dropped)")
            #expect(dropped["queue_full"] == 0)
        }
    }

    @Test func aBalancedMemberWhoseBreakerOpensHandsItsSourcesToTheOtherAndLosesNone() async throws {
        try await LoadGate.shared.heavy {
            let directory = try scratchDirectory("routes-balance")
            let (aggregatorA, portA, _) = try await FerryProcess.serve(["--upstream", "file:\(directory)/a.log"])
            let (aggregatorB, portB, _) = try await FerryProcess.serve(["--upstream", "file:\(directory)/b.log"])
            defer {
                aggregatorA.signal(SIGTERM)
                aggregatorB.signal(SIGKILL)
            }
            let path = try writeConfigFile(
                """
                routes:
                  pool: { mode: balance, upstreams: ["ferry://127.0.0.1:\(portA)", "ferry://127.0.0.1:\(portB)"] }
                """, in: directory)
            let (edge, port, http) = try await FerryProcess.serve([
                "--config", path, "--ack-timeout", "100ms", "--frame-ttl", "3s", "--breaker-open-max", "1s",
            ])
            defer { edge.signal(SIGTERM) }

            // Twelve sources at 100 logs/s each; B freezes halfway (its frames go unacknowledged).
            // Halfway by what was delivered, not by the clock: senders a busy machine holds back
            // would otherwise send everything before the freeze (seen in CI).
            let sources = 12
            let perSource = 300
            let half = perSource / 2
            let frozenPID = aggregatorB.process.processIdentifier
            func sendAll(from first: Int) async throws {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for source in 1...sources {
                        group.addTask {
                            try await PacedSender.send(
                                prefix: "s\(source)", count: half, rate: 100, to: port, first: first, from: "127.0.0.\(source)")
                        }
                    }
                    try await group.waitForAll()
                }
            }
            try await sendAll(from: 0)
            let firstHalf = await eventually(seconds: 10) {
                fileLines(directory + "/a.log").count + fileLines(directory + "/b.log").count == sources * half
            }
            #expect(firstHalf, "before the freeze: \(StatusReader(port: http).counters())")
            kill(frozenPID, SIGSTOP)
            try await sendAll(from: half)
            let total = sources * perSource
            // Nothing waits at the edge once A took what B could not.
            let settled = await eventually(seconds: 15) { StatusReader(port: http).counters()["queued"] as? Int == 0 }
            #expect(settled, "edge: \(StatusReader(port: http).counters())")
            let upstreams = StatusReader(port: http).status()?["upstreams"] as? [[String: Any]] ?? []
            let breaker = (upstreams.last?["breaker"] as? [String: Any])?["state"] as? String
            #expect(breaker != "closed", "B's breaker: \(breaker ?? "?")")
            // B acknowledged some logs before it froze and holds them in its buffer: let it write them.
            kill(frozenPID, SIGCONT)
            let lines = { fileLines(directory + "/a.log") + fileLines(directory + "/b.log") }
            let arrived = await eventually(seconds: 15) {
                (1...sources).allSatisfy { PacedSender.tally(prefix: "s\($0)", count: perSource, in: lines()).missing == 0 }
            }
            #expect(
                arrived,
                "\(lines().count) of \(total) delivered; edge: \(StatusReader(port: http).counters()), \(StatusReader(port: http).status()?["routes"] ?? "")"
            )
            for source in 1...sources {
                let tally = PacedSender.tally(prefix: "s\(source)", count: perSource, in: lines())
                #expect(tally.missing == 0, "source \(source): \(tally)")
            }
            // Before the freeze each source was on one member; after it, B's sources are on A.
            let onB = Set(fileLines(directory + "/b.log").map { $0.split(separator: "-")[0] })
            let onA = Set(fileLines(directory + "/a.log").map { $0.split(separator: "-")[0] })
            #expect(!onB.isEmpty, "no source was on B before it froze")
            #expect(onB.isSubset(of: onA), "B's sources did not move to A: \(onB.subtracting(onA))")
        }
    }

    @Test func aSeverityRouteTakesWhatLoggerSendsAsWarningOrWorse() async throws {
        let directory = try scratchDirectory("routes-logger")
        let path = try writeConfigFile(
            """
            routes:
              archive: { upstreams: ["file:\(directory)/all.log"] }
              pager: { match: { severity: err, facility: [local3, daemon] }, upstreams: ["file:\(directory)/pager.log"] }
            """, in: directory)
        let (ferry, port, _) = try await FerryProcess.serve(["--config", path])
        defer { ferry.signal(SIGTERM) }
        let cases: [(String, Bool)] = [
            ("local3.err", true), ("local3.crit", true), ("daemon.emerg", true), ("local3.warning", false), ("local3.info", false),
            ("user.err", false), ("daemon.debug", false), ("local4.alert", false),
        ]
        for (index, (priority, _)) in cases.enumerated() {
            for format in ["--rfc5424", "--rfc3164"] {
                let result = try ExternalTool.run(
                    "logger", ["-n", "127.0.0.1", "-P", "\(port)", "-d", format, "-p", priority, "case-\(index) \(priority) \(format)"])
                #expect(result.status == 0, "\(result)")
            }
        }
        let arrived = await eventually(seconds: 10) { fileLines(directory + "/all.log").count >= cases.count * 2 }
        #expect(arrived)
        try await Task.sleep(for: .milliseconds(200))
        let pager = fileLines(directory + "/pager.log")
        for (index, (priority, wanted)) in cases.enumerated() {
            let found = pager.filter { $0.contains("case-\(index) ") }.count
            #expect(found == (wanted ? 2 : 0), "\(priority): \(found) in the pager route")
        }
        #expect(pager.allSatisfy { $0.hasPrefix("<") }, "bytes were changed: \(pager)")
    }

    /// `POST /v1/logs` lines have their client's address as source: a
    /// `source` route takes one client's lines and not another's.
    @Test func httpLinesAreRoutedByTheClientsAddress() async throws {
        let directory = try scratchDirectory("routes-http")
        let path = try writeConfigFile(
            """
            routes:
              archive: { upstreams: ["file:\(directory)/all.log"] }
              three: { match: { source: ["127.0.0.3/32"] }, upstreams: ["file:\(directory)/three.log"] }
            """, in: directory)
        let (ferry, _, http) = try await FerryProcess.serve(["--config", path])
        defer { ferry.signal(SIGTERM) }
        for source in ["127.0.0.2", "127.0.0.3"] {
            let body = (0..<50).map { "from \(source) #\($0)" }.joined(separator: "\n") + "\n"
            let reply = try HTTPTestClient.request("POST", port: http, path: "/v1/logs", body: Array(body.utf8), from: source)
            #expect(reply.status == 202, "\(reply.body)")
        }
        #expect(await eventually(seconds: 5) { fileLines(directory + "/all.log").count == 100 })
        #expect(await eventually(seconds: 5) { fileLines(directory + "/three.log").count >= 50 })
        let three = fileLines(directory + "/three.log")
        #expect(three.count == 50 && three.allSatisfy { $0.hasPrefix("from 127.0.0.3 #") }, "\(three.prefix(3)) (\(three.count))")
    }
}
