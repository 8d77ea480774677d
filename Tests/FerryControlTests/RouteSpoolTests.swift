import FerryTestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Routes with a spool, end to end: each route's own spool (its position, its
/// cap) through a SIGKILL and a restart, with the real binary, real sockets,
/// real files and a real aggregator process.
struct RouteSpoolTests {
    /// Sends `count` lines at `rate` per second: every third a warning (`<12>warn-N`),
    /// the others info (`<14>info-N`), numbered apart. Returns how many warnings.
    private func sendMixed(count: Int, rate: Int, to port: Int) async throws -> Int {
        let socket = try UDPTestSocket()
        let start = ContinuousClock.now
        var warnings = 0
        for index in 0..<count {
            if index % 3 == 0 {
                socket.send(Array(("<12>" + PacedSender.line("warn", warnings)).utf8), to: port)
                warnings += 1
            } else {
                socket.send(Array(("<14>" + PacedSender.line("info", index - warnings)).utf8), to: port)
            }
            if index % max(1, rate / 100) == 0 {
                let due = start + .milliseconds(index * 1000 / rate)
                if due > ContinuousClock.now { try await Task.sleep(until: due, clock: .continuous) }
            }
        }
        return warnings
    }

    /// The lines of `path` without their PRI.
    private func bodies(_ path: String) -> [Substring] {
        fileLines(path).map { line in line.firstIndex(of: ">").map { line[line.index(after: $0)...] } ?? line }
    }

    private func routeSpool(_ http: Int, _ name: String) -> [String: Any] {
        let spool = StatusReader(port: http).status()?["spool"] as? [String: Any]
        return (spool?["routes"] as? [[String: Any]] ?? []).first { $0["route"] as? String == name } ?? [:]
    }

    @Test func eachRouteKeepsItsOwnPlaceInTheSpoolThroughAKill() async throws {
        try await LoadGate.shared.heavy {
            let directory = try scratchDirectory("route-spool-kill")
            // The siem route's destination is down at first: a ferry:// socket nobody reads.
            let frozen = try UDPTestSocket()
            func config(siem: String) throws -> String {
                try writeConfigFile(
                    """
                    spool: { dir: "\(directory)/spool" }
                    routes:
                      archive: { upstreams: ["file:\(directory)/all.log"] }
                      siem: { match: { severity: warning }, upstreams: ["\(siem)"] }
                    """, in: directory)
            }
            let first = try config(siem: "ferry://127.0.0.1:\(frozen.port)")
            let (ferry, port, http) = try await FerryProcess.serve(["--config", first, "--ack-timeout", "100ms", "--frame-ttl", "2s"])
            var killed = false
            defer { if !killed { ferry.signal(SIGKILL) } }
            let count = 3_000
            let warnings = try await sendMixed(count: count, rate: 3_000, to: port)
            #expect(await eventually(seconds: 15) { fileLines(directory + "/all.log").count >= count })
            // The archive has delivered everything (its place in its spool is past it); the siem holds its warnings.
            #expect(await eventually(seconds: 10) { routeSpool(http, "archive")["logs"] as? Int == 0 }, "\(routeSpool(http, "archive"))")
            #expect(routeSpool(http, "siem")["logs"] as? Int == warnings, "\(routeSpool(http, "siem"))")
            try await Task.sleep(for: .milliseconds(300))  // the archive's progress is checkpointed within milliseconds
            ferry.signal(SIGKILL)
            killed = true
            _ = await ferry.waitForExit(timeout: 10)

            // Restarted with the siem's destination up: its warnings arrive there once; the archive sends nothing again.
            // The aggregator keeps a spool per route too: the frames are acknowledged once its route's spool has their logs.
            let aggregatorDirectory = try scratchDirectory("route-spool-aggregator")
            let aggregatorConfig = aggregatorDirectory + "/ferry.yaml"
            try """
            spool: { dir: "\(aggregatorDirectory)/spool", fsync: always }
            routes:
              siem: { upstreams: ["file:\(directory)/siem.log"] }
            """.write(toFile: aggregatorConfig, atomically: true, encoding: .utf8)
            let (aggregator, aggregatorPort, _) = try await FerryProcess.serve(["--config", aggregatorConfig])
            defer { aggregator.signal(SIGTERM) }
            let second = try config(siem: "ferry://127.0.0.1:\(aggregatorPort)")
            let (again, _, http2) = try await FerryProcess.serve(["--config", second, "--ack-timeout", "200ms"])
            defer { again.signal(SIGTERM) }
            let status = StatusReader(port: http2).status()?["spool"] as? [String: Any] ?? [:]
            #expect(status["recovered_at_start"] as? Int == warnings, "\(status)")
            #expect(await eventually(seconds: 20) { fileLines(directory + "/siem.log").count >= warnings })
            try await Task.sleep(for: .milliseconds(500))
            let siem = PacedSender.tally(prefix: "warn", count: warnings, in: bodies(directory + "/siem.log"))
            #expect(siem.missing == 0 && siem.duplicated == 0 && siem.unexpected == 0, "siem: \(siem)")
            let archived = bodies(directory + "/all.log")
            let archiveWarnings = PacedSender.tally(prefix: "warn", count: warnings, in: archived.filter { $0.hasPrefix("warn-") })
            let archiveInfos = PacedSender.tally(prefix: "info", count: count - warnings, in: archived.filter { $0.hasPrefix("info-") })
            #expect(archived.count == count && archiveWarnings.missing == 0 && archiveInfos.missing == 0, "\(archiveWarnings) \(archiveInfos)")
            #expect(await eventually(seconds: 5) { routeSpool(http2, "siem")["logs"] as? Int == 0 }, "\(routeSpool(http2, "siem"))")
        }
    }

    @Test func aReloadFromOneSpooledRouteToRoutesIsRefusedAndTheOldOneKeepsRunning() async throws {
        let directory = try scratchDirectory("route-spool-reload")
        let path = try writeConfigFile("spool: { dir: \"\(directory)/spool\" }\nupstreams: [\"file:\(directory)/all.log\"]\n", in: directory)
        let (ferry, port, http) = try await FerryProcess.serve(["--config", path])
        defer { ferry.signal(SIGTERM) }
        _ = try writeConfigFile(
            "spool: { dir: \"\(directory)/spool\" }\nroutes:\n  archive: { upstreams: [\"file:\(directory)/other.log\"] }\n", in: directory)
        ferry.signal(SIGHUP)
        let reloads = { StatusReader(port: http).status()?["reloads"] as? [String: Any] ?? [:] }
        #expect(await eventually(seconds: 5) { reloads()["failed"] as? Int == 1 }, "\(reloads())")
        let error = (reloads()["last"] as? [String: Any])?["error"] as? String ?? "\(reloads())"
        #expect(error.contains("restart Ferry to apply routes"), "\(error)")
        try await PacedSender.send(prefix: "kept", count: 200, rate: 2_000, to: port)
        #expect(await eventually(seconds: 5) { fileLines(directory + "/all.log").count == 200 })
    }

    @Test func aStalledDestinationGetsEveryLogItsRouteSpoolKeptOnceItResumes() async throws {
        try await LoadGate.shared.heavy {
            let directory = try scratchDirectory("route-spool-stall")
            let aggregatorConfig = try writeConfigFile("upstreams: [\"file:\(directory)/siem.log\"]\n", in: directory)
            let (aggregator, aggregatorPort, _) = try await FerryProcess.serve(["--config", aggregatorConfig])
            defer { aggregator.signal(SIGKILL) }
            // Stopped, it reads nothing and acknowledges nothing: the edge's frames come back after their TTL.
            aggregator.signal(SIGSTOP)
            let edgeDirectory = try scratchDirectory("route-spool-stall-edge")
            let path = try writeConfigFile(
                """
                spool: { dir: "\(edgeDirectory)/spool" }
                queue: { capacity-logs: 2000 }
                routes:
                  archive: { upstreams: ["file:\(edgeDirectory)/all.log"] }
                  siem: { upstreams: ["ferry://127.0.0.1:\(aggregatorPort)"] }
                """, in: edgeDirectory)
            let (edge, port, http) = try await FerryProcess.serve(["--config", path, "--ack-timeout", "100ms", "--frame-ttl", "1s"])
            defer { edge.signal(SIGTERM) }
            let count = 6_000
            try await PacedSender.send(prefix: "stall", count: count, rate: 3_000, to: port)
            #expect(await eventually(seconds: 20) { fileLines(edgeDirectory + "/all.log").count >= count })
            try await Task.sleep(for: .seconds(3))  // a few TTLs: frames come back, more than the route's share of memory
            let siem = {
                (StatusReader(port: http).status()?["routes"] as? [[String: Any]] ?? []).first { $0["name"] as? String == "siem" } ?? [:]
            }
            let stalled = siem()
            #expect(stalled["route_overflow"] as? Int == 0, "\(stalled)")
            let givenBack = stalled["given_back_to_disk"] as? Int ?? -1
            let metrics = try HTTPTestClient.request("GET", port: http, path: "/metrics").body
            #expect(metrics.contains("ferry_route_given_back_to_disk_total{route=\"siem\"} \(givenBack)"), "\(givenBack)")
            aggregator.signal(SIGCONT)
            // Every log the route's spool kept arrives, those given back to the disk included.
            #expect(await eventually(seconds: 30) { Set(fileLines(directory + "/siem.log")).count >= count })
            let tally = PacedSender.tally(prefix: "stall", count: count, in: fileLines(directory + "/siem.log"))
            #expect(tally.missing == 0 && tally.unexpected == 0, "siem: \(tally), route while stalled: \(stalled), now: \(siem())")
            #expect(await eventually(seconds: 10) { routeSpool(http, "siem")["logs"] as? Int == 0 }, "\(routeSpool(http, "siem"))")
            let dropped = StatusReader(port: http).counters()["dropped_by_reason"] as? [String: Int] ?? [:]
            #expect(dropped.values.reduce(0, +) == 0, "\(dropped)")
            print("stalled route: given back to the disk \(stalled["given_back_to_disk"] ?? "?"), duplicates after resuming \(tally.duplicated)")
        }
    }

    @Test func aDeadRoutesSpoolDropsItsOldestAtItsCapWhileTheOthersGetEverything() async throws {
        try await LoadGate.shared.heavy {
            let directory = try scratchDirectory("route-spool-cap")
            let frozen = try UDPTestSocket()
            let path = try writeConfigFile(
                """
                spool: { dir: "\(directory)/spool", segment-bytes: 64KiB }
                queue: { capacity-logs: 2000 }
                routes:
                  archive: { upstreams: ["file:\(directory)/all.log"] }
                  dead: { upstreams: ["ferry://127.0.0.1:\(frozen.port)"], max-backlog-bytes: 512KiB }
                """, in: directory)
            let (ferry, port, http) = try await FerryProcess.serve(["--config", path, "--ack-timeout", "100ms", "--frame-ttl", "2s"])
            defer { ferry.signal(SIGTERM) }
            let count = 30_000
            try await PacedSender.send(prefix: "cap", count: count, rate: 6_000, to: port)
            #expect(await eventually(seconds: 20) { fileLines(directory + "/all.log").count >= count })
            let tally = PacedSender.tally(prefix: "cap", count: count, in: fileLines(directory + "/all.log"))
            #expect(tally.missing == 0 && tally.duplicated == 0, "archive: \(tally)")

            let deadRoute = {
                (StatusReader(port: http).status()?["routes"] as? [[String: Any]] ?? []).first { $0["name"] as? String == "dead" } ?? [:]
            }
            // 30,000 records of 26 bytes on disk are 780,000 bytes: past 512 KiB, about a third must go.
            #expect(await eventually(seconds: 10) { (deadRoute()["route_overflow"] as? Int ?? 0) > count / 5 }, "\(deadRoute())")
            // The figures still move while frames the dead peer never acknowledged come back
            // (after the 2 s TTL) and drop at the cap: the three reads are taken together, once
            // the route's count equals the relay's and the books balance (what the dead route
            // holds plus what it dropped is what it took).
            var dead: [String: Any] = [:]
            var spool: [String: Any] = [:]
            var dropped: [String: Int] = [:]
            let balanced = await eventually(seconds: 15, every: .milliseconds(200)) {
                dead = deadRoute()
                spool = routeSpool(http, "dead")
                dropped = StatusReader(port: http).counters()["dropped_by_reason"] as? [String: Int] ?? [:]
                let overflow = dead["route_overflow"] as? Int ?? -1
                return dropped["route_overflow"] == overflow && (spool["logs"] as? Int ?? 0) + overflow == count
            }
            #expect(balanced, "relay \(dropped), route \(dead), spool \(spool)")
            #expect(dead["routed"] as? Int == count, "\(dead)")
            // Its spool stayed within its cap (one segment of slack while the newest is written).
            #expect((spool["bytes"] as? Int ?? .max) <= (512 + 64) << 10, "\(spool)")
            #expect(spool["max_bytes"] as? Int == 512 << 10, "\(spool)")
            #expect((dropped["spool_full"] ?? 0) == 0 && (dropped["queue_full"] ?? 0) == 0, "\(dropped)")
            // And it keeps what its spool has room for: frames coming back from the dead peer
            // (every 2 s TTL) or logs read back past the route's share of memory wait, they are
            // not dropped. Its 26-byte records fill the cap less one segment at least.
            try await Task.sleep(for: .seconds(5))
            let later = routeSpool(http, "dead")
            #expect(later["logs"] as? Int == spool["logs"] as? Int, "held \(spool) then \(later)")
            #expect((later["logs"] as? Int ?? 0) >= ((512 - 64) << 10) / 26, "\(later)")
        }
    }
}
