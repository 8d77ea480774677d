import FerryTestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Live reload end to end: the real binary, SIGHUP and POST /v1/reload, real files.
struct ReloadTests {
    private func write(_ yaml: String, to path: String) throws {
        // Written whole and renamed into place, as an operator's editor or config management does.
        try yaml.write(toFile: path + ".new", atomically: false, encoding: .utf8)
        rename(path + ".new", path)
    }

    private func reloads(_ http: Int) -> [String: Any] {
        StatusReader(port: http).status()?["reloads"] as? [String: Any] ?? [:]
    }

    /// With a spool too: then each route has its own, and the removed route's goes once it retired.
    @Test(arguments: [false, true])
    func tenReloadsUnderLoadAddAndRemoveARouteWhileTheArchiveLosesNothing(spooled: Bool) async throws {
        try await LoadGate.shared.heavy {
            let directory = try scratchDirectory("reload-load")
            let path = directory + "/ferry.yaml"
            let spool = spooled ? "spool: { dir: \"\(directory)/spool\" }\ndrain: { timeout: 1s }\n" : ""
            let base = spool + "routes:\n  archive: { upstreams: [\"file:\(directory)/all.log\"] }\n"
            let withExtra = base + "  extra: { match: { severity: warning }, upstreams: [\"file:\(directory)/extra.log\"] }\n"
            try write(base, to: path)
            let (ferry, port, http) = try await FerryProcess.serve(["--config", path])
            defer { ferry.signal(SIGTERM) }
            let pid = ferry.process.processIdentifier

            let count = 12_000
            async let sending: Void = PacedSender.send(prefix: "<12>reload", count: count, rate: 3_000, to: port)
            // Ten reloads while the logs flow: the extra route comes and goes, the archive stays.
            for round in 1...10 {
                try await Task.sleep(for: .milliseconds(300))
                try write(round % 2 == 1 ? withExtra : base, to: path)
                kill(pid, SIGHUP)
                let applied = await eventually(seconds: 5) { (reloads(http)["succeeded"] as? Int ?? 0) >= round }
                #expect(applied, "reload \(round) not applied: \(reloads(http))")
            }
            try await sending
            let arrived = await eventually(seconds: 10) {
                PacedSender.tally(prefix: "<12>reload", count: count, in: fileLines(directory + "/all.log")).missing == 0
            }
            #expect(arrived)
            let tally = PacedSender.tally(prefix: "<12>reload", count: count, in: fileLines(directory + "/all.log"))
            #expect(tally.missing == 0 && tally.duplicated == 0 && tally.unexpected == 0, "archive: \(tally)")
            // <12> is user.warning: the extra route took logs while it existed, none twice.
            let extra = PacedSender.tally(prefix: "<12>reload", count: count, in: fileLines(directory + "/extra.log"))
            #expect(count - extra.missing > 500, "the added route took \(count - extra.missing) logs")
            #expect(extra.duplicated == 0 && extra.unexpected == 0, "extra: \(extra)")
            let status = reloads(http)
            #expect(status["succeeded"] as? Int == 10)
            #expect(status["failed"] as? Int == 0)
            let dropped = StatusReader(port: http).counters()["dropped_by_reason"] as? [String: Int] ?? [:]
            #expect(dropped.values.reduce(0, +) == dropped["route_removed"] ?? 0, "\(dropped)")
            if spooled {
                // The archive's spool delivered everything; the extra route's was deleted once it retired.
                #expect(FileManager.default.fileExists(atPath: directory + "/spool/routes/archive"))
                let gone = await eventually(seconds: 10) { !FileManager.default.fileExists(atPath: directory + "/spool/routes/extra") }
                #expect(gone, "routes/extra still there: \(ferry.logText.suffix(1_500))")
                let spoolStatus = StatusReader(port: http).status()?["spool"] as? [String: Any] ?? [:]
                #expect(spoolStatus["logs"] as? Int == 0, "\(spoolStatus)")
                #expect((spoolStatus["routes"] as? [[String: Any]])?.compactMap { $0["route"] as? String } == ["archive"], "\(spoolStatus)")
            }
        }
    }

    @Test func aBrokenOrInvalidConfigurationIsRefusedWholeAndTheOldOneKeepsRunning() async throws {
        let directory = try scratchDirectory("reload-broken")
        let path = directory + "/ferry.yaml"
        let good = "routes:\n  archive: { upstreams: [\"file:\(directory)/all.log\"] }\n"
        try write(good, to: path)
        let (ferry, port, http) = try await FerryProcess.serve(["--config", path])
        defer { ferry.signal(SIGTERM) }
        let sender = try UDPTestSocket()

        // Unparseable, then parseable but invalid (a severity that does not exist), then a new port.
        let attempts: [(String, String)] = [
            (good + "  extra: { upstreams: [broken\n", "cannot read config file"),
            (good + "  pager: { match: { severity: loud }, upstreams: [\"file:\(directory)/pager.log\"] }\n", "routes.pager.match.severity"),
        ]
        for (index, (yaml, expected)) in attempts.enumerated() {
            try write(yaml, to: path)
            ferry.signal(SIGHUP)
            let refused = await eventually(seconds: 5) { (reloads(http)["failed"] as? Int ?? 0) == index + 1 }
            #expect(refused)
            let last = reloads(http)["last"] as? [String: Any] ?? [:]
            #expect(last["result"] as? String == "failure")
            #expect((last["error"] as? String ?? "").contains(expected), "\(last)")
            sender.send(Array("still running \(index)".utf8), to: port)
        }
        #expect(await eventually(seconds: 5) { fileLines(directory + "/all.log").count == 2 })
        let routes = (StatusReader(port: http).status()?["routes"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
        #expect(routes == ["archive"])
        let metrics = try HTTPTestClient.request("GET", port: http, path: "/metrics").body
        #expect(metrics.contains("ferry_config_reloads_total{result=\"failure\"} 2"))
        #expect(ferry.logLines.filter { $0["message"] as? String == "configuration reload refused" }.count == 2)

        // A buffer size is read at start only: reported, not applied; logs keep flowing.
        // (`listen` is too; here the flags' --listen wins over the file, so it does not change.)
        try write("queue: { capacity-logs: 5000 }\n" + good, to: path)
        ferry.signal(SIGHUP)
        #expect(await eventually(seconds: 5) { reloads(http)["succeeded"] as? Int == 1 })
        let changes = (reloads(http)["last"] as? [String: Any])?["changes"] as? [String: Any] ?? [:]
        #expect(changes["restart_required"] as? [String] == ["queue.capacity-logs"])
        let capacity = (StatusReader(port: http).status()?["queue"] as? [String: Any])?["capacity_logs"] as? Int
        #expect(capacity == 100_000, "the buffer was resized live: \(capacity ?? -1)")
        sender.send(Array("after the change".utf8), to: port)
        #expect(await eventually(seconds: 5) { fileLines(directory + "/all.log").count == 3 })
    }

    @Test func postReloadNeedsTheAdminTokenAndSaysWhatChanged() async throws {
        let directory = try scratchDirectory("reload-token")
        let path = directory + "/ferry.yaml"
        let tokenPath = directory + "/token"
        let token = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        try (token + "\n").write(toFile: tokenPath, atomically: true, encoding: .utf8)
        chmod(tokenPath, 0o600)
        let base = "admin: { token-file: \(tokenPath) }\nroutes:\n  archive: { upstreams: [\"file:\(directory)/all.log\"] }\n"
        try write(base, to: path)
        let (ferry, _, http) = try await FerryProcess.serve(["--config", path])
        defer { ferry.signal(SIGTERM) }
        try write(base + "  extra: { upstreams: [\"file:\(directory)/extra.log\"] }\n", to: path)

        let none = try HTTPTestClient.request("POST", port: http, path: "/v1/reload")
        #expect(none.status == 401)
        let wrong = try HTTPTestClient.request("POST", port: http, path: "/v1/reload", headers: ["Authorization": "Bearer x" + token.dropFirst()])
        #expect(wrong.status == 401)
        #expect(reloads(http)["succeeded"] as? Int == 0, "a refused request reloaded")
        let right = try HTTPTestClient.request("POST", port: http, path: "/v1/reload", headers: ["Authorization": "Bearer " + token])
        #expect(right.status == 200, "\(right.body)")
        let changes = right.json?["changes"] as? [String: Any] ?? [:]
        #expect(changes["routes_added"] as? [String] == ["extra"])
        #expect(changes["routes_kept"] as? [String] == ["archive"])
        #expect(changes["upstreams_added"] as? [String] == ["file:\(directory)/extra.log"])

        // Without admin.token-file the endpoint is off.
        let (open, _, openHTTP) = try await FerryProcess.serve(["--upstream", "file:\(directory)/other.log"])
        defer { open.signal(SIGTERM) }
        #expect(try HTTPTestClient.request("POST", port: openHTTP, path: "/v1/reload").status == 403)
    }

    /// The receive threads send udp:// themselves only to the upstreams they
    /// started with: one a reload adds to the default route is reached through
    /// the loop (a direct route to it indexed past their senders and ended the process).
    @Test func aFailoverUpstreamAReloadAddsToTheDefaultRouteTakesTheTraffic() async throws {
        let directory = try scratchDirectory("reload-default")
        let path = directory + "/ferry.yaml"
        // The first upstream is a closed port on a loopback address no other test binds (a closed port on
        // 127.0.0.1 was bound by another test's Ferry meanwhile and got this test's logs): sends are refused.
        let closedPort = try UDPTestSocket(host: "127.0.0.77").port
        let missing = "udp://127.0.0.77:\(closedPort)"
        let sink = try UDPTestSocket()
        try write("upstreams: [\"\(missing)\"]\n", to: path)
        let (ferry, port, http) = try await FerryProcess.serve(["--config", path, "--breaker-open-max", "1s"])
        defer { ferry.signal(SIGTERM) }
        try write("upstreams: [\"\(missing)\", \"udp://127.0.0.1:\(sink.port)\"]\n", to: path)
        ferry.signal(SIGHUP)
        #expect(await eventually(seconds: 5) { reloads(http)["succeeded"] as? Int == 1 })

        let receiving = sink.startReceiving(count: 1_000, idleMilliseconds: 5_000, firstMilliseconds: 20_000)
        try await PacedSender.send(prefix: "failover", count: 1_000, rate: 1_000, to: port)
        let received = await receiving.value.map { String(decoding: $0, as: UTF8.self)[...] }
        let tally = PacedSender.tally(prefix: "failover", count: 1_000, in: received)
        #expect(ferry.process.isRunning, "ferry ended: \(ferry.logText.suffix(2_000))")
        // What the closed port swallowed before each refusal came back is the first upstream's (udp:// cannot
        // know): the books must balance, and the added upstream must have carried what it says it sent.
        let delivered = 1_000 - tally.missing
        let status = StatusReader(port: http).status() ?? [:]
        let upstreams = status["upstreams"] as? [[String: Any]] ?? []
        let forwarded = { (url: String) in upstreams.first { $0["url"] as? String == url }?["forwarded"] as? Int ?? -1 }
        let dropped = (status["counters"] as? [String: Any])?["dropped"] as? Int ?? -1
        #expect(tally.duplicated == 0)
        #expect(forwarded("udp://127.0.0.1:\(sink.port)") == delivered, "\(upstreams)")
        #expect(forwarded(missing) + delivered + dropped == 1_000, "\(upstreams) dropped \(dropped)")
        #expect(delivered >= 200, "the added upstream got \(delivered) of 1000: \(tally)")
    }

    /// `listen` changes live: an added listener is bound and read (and a route
    /// may match it), a removed one closes only after the reload is in force,
    /// and every log Ferry read on either is archived once.
    @Test func aReloadThatChangesTheListenPortBindsTheNewOneBeforeClosingTheOld() async throws {
        let directory = try scratchDirectory("reload-listen")
        let path = directory + "/ferry.yaml"
        let old = try UDPTestSocket().port  // free ports (closed again)
        let new = try UDPTestSocket().port
        func configuration(_ ports: [Int]) -> String {
            let listen = ports.map { "\"udp://127.0.0.1:\($0)\"" }.joined(separator: ", ")
            var yaml = "listen: [\(listen)]\nroutes:\n  archive: { upstreams: [\"file:\(directory)/all.log\"] }\n"
            if ports.contains(new) {
                yaml += "  second: { match: { listener: [\"udp://127.0.0.1:\(new)\"] }, upstreams: [\"file:\(directory)/second.log\"] }\n"
            }
            return yaml
        }
        try write(configuration([old]), to: path)
        let (ferry, _, http) = try await FerryProcess.serve(listeners: [], ["--config", path])
        defer { ferry.signal(SIGTERM) }
        try await PacedSender.send(prefix: "before", count: 300, rate: 2_000, to: old)

        // Both ports: the new one bound beside the old, and matched by its route.
        try write(configuration([old, new]), to: path)
        ferry.signal(SIGHUP)
        #expect(await eventually(seconds: 5) { reloads(http)["succeeded"] as? Int == 1 })
        var changes = (reloads(http)["last"] as? [String: Any])?["changes"] as? [String: Any] ?? [:]
        #expect(changes["listeners_added"] as? [String] == ["udp://127.0.0.1:\(new)"])
        #expect(changes["restart_required"] as? [String] == [], "\(changes)")
        try await PacedSender.send(prefix: "toold", count: 300, rate: 2_000, to: old)
        try await PacedSender.send(prefix: "tonew", count: 300, rate: 2_000, to: new)

        // The old port goes while a sender still sends to it.
        try write(configuration([new]), to: path)
        try await PacedSender.send(prefix: "during", count: 500, rate: 3_000, to: old)  // all sent before the reload begins
        let during = Task { try await PacedSender.send(prefix: "during", count: 1_000, rate: 3_000, to: old, first: 500) }
        ferry.signal(SIGHUP)
        #expect(await eventually(seconds: 5) { reloads(http)["succeeded"] as? Int == 2 })
        try await during.value
        changes = (reloads(http)["last"] as? [String: Any])?["changes"] as? [String: Any] ?? [:]
        #expect(changes["listeners_removed"] as? [String] == ["udp://127.0.0.1:\(old)"])
        #expect((try? UDPTestSocket(port: old)) != nil, "the old port is still held")
        try await PacedSender.send(prefix: "after", count: 300, rate: 2_000, to: new)

        let archive = directory + "/all.log"
        let received = { StatusReader(port: http).counters()["received"] as? Int ?? -1 }
        #expect(await eventually(seconds: 10) { fileLines(archive).count == received() && received() >= 1_200 })
        let lines = fileLines(archive)
        for prefix in ["before", "toold", "tonew", "after"] {
            let tally = PacedSender.tally(prefix: prefix, count: 300, in: lines.filter { $0.hasPrefix(prefix + "-") })
            #expect(tally.missing == 0 && tally.duplicated == 0, "\(prefix): \(tally)")
        }
        // Sent to the old port before the reload: all read (what the kernel still queued too) before it closed.
        let before = PacedSender.tally(prefix: "during", count: 500, in: lines.filter { $0.hasPrefix("during-") })
        #expect(before.missing == 0 && before.duplicated == 0, "\(before)")
        // Sent while it closed: every one Ferry read is archived once.
        let whileClosing = PacedSender.tally(prefix: "during", count: 1_500, in: lines.filter { $0.hasPrefix("during-") })
        #expect(whileClosing.duplicated == 0)
        #expect(lines.count == received(), "archived \(lines.count), received \(received())")
        // The route for the new listener took exactly what came to it.
        let second = fileLines(directory + "/second.log")
        #expect(second.count == 600 && second.allSatisfy { $0.hasPrefix("tonew-") || $0.hasPrefix("after-") }, "\(second.count) lines")
        let sockets = (StatusReader(port: http).status()?["listeners"] as? [[String: Any]] ?? []).compactMap { $0["port"] as? Int }
        #expect(!sockets.isEmpty && sockets.allSatisfy { $0 == new }, "sockets on \(sockets)")
    }

    /// A port a reload cannot bind refuses the reload as a whole: the old
    /// listeners and routes keep running.
    @Test func aListenPortThatCannotBeBoundRefusesTheReload() async throws {
        let directory = try scratchDirectory("reload-listen-taken")
        let path = directory + "/ferry.yaml"
        let old = try UDPTestSocket().port
        let taken = try UDPTestSocket()  // another process's socket, held
        try write("listen: [\"udp://127.0.0.1:\(old)\"]\nupstreams: [\"file:\(directory)/all.log\"]\n", to: path)
        let (ferry, _, http) = try await FerryProcess.serve(listeners: [], ["--config", path])
        defer { ferry.signal(SIGTERM) }
        try write(
            "listen: [\"udp://127.0.0.1:\(old)\", \"udp://127.0.0.1:\(taken.port)\"]\nupstreams: [\"file:\(directory)/all.log\", \"file:\(directory)/b.log\"]\n",
            to: path)
        ferry.signal(SIGHUP)
        #expect(await eventually(seconds: 5) { reloads(http)["failed"] as? Int == 1 })
        let error = (reloads(http)["last"] as? [String: Any])?["error"] as? String ?? ""
        #expect(error.contains("cannot bind listener udp://127.0.0.1:\(taken.port)"), "\(error)")
        try await PacedSender.send(prefix: "still", count: 200, rate: 2_000, to: old)
        #expect(await eventually(seconds: 5) { fileLines(directory + "/all.log").count == 200 })
        let upstreams = (StatusReader(port: http).status()?["upstreams"] as? [[String: Any]] ?? []).compactMap { $0["url"] as? String }
        #expect(upstreams == ["file:\(directory)/all.log"], "the refused reload changed the upstreams: \(upstreams)")
    }

    /// A route a reload adds that matches by source gets its sources' logs,
    /// though no route before it needed sources (the receive threads keep them from then on).
    @Test func aSourceRouteAReloadAddsGetsItsSources() async throws {
        let directory = try scratchDirectory("reload-source")
        let path = directory + "/ferry.yaml"
        let base = "routes:\n  archive: { upstreams: [\"file:\(directory)/all.log\"] }\n"
        try write(base, to: path)
        let (ferry, port, http) = try await FerryProcess.serve(["--config", path])
        defer { ferry.signal(SIGTERM) }
        try write(base + "  picked: { match: { source: [\"127.0.0.3/32\"] }, upstreams: [\"file:\(directory)/picked.log\"] }\n", to: path)
        ferry.signal(SIGHUP)
        #expect(await eventually(seconds: 5) { reloads(http)["succeeded"] as? Int == 1 })
        try await PacedSender.send(prefix: "two", count: 200, rate: 2_000, to: port, from: "127.0.0.2")
        try await PacedSender.send(prefix: "three", count: 200, rate: 2_000, to: port, from: "127.0.0.3")
        #expect(await eventually(seconds: 5) { fileLines(directory + "/all.log").count == 400 })
        #expect(await eventually(seconds: 5) { fileLines(directory + "/picked.log").count >= 200 })
        let picked = fileLines(directory + "/picked.log")
        let tally = PacedSender.tally(prefix: "three", count: 200, in: picked)
        #expect(tally.missing == 0 && tally.duplicated == 0 && tally.unexpected == 0, "\(tally)")
    }

    /// `/metrics` tells the truth across reloads: a removed route's and
    /// upstream's series end, a changed route's counter goes on from where it was.
    @Test func removedRoutesLeaveMetricsAndAChangedOneKeepsCounting() async throws {
        let directory = try scratchDirectory("reload-metrics")
        let path = directory + "/ferry.yaml"
        let archive = "  archive: { upstreams: [\"file:\(directory)/all.log\"] }\n"
        try write("routes:\n" + archive + "  extra: { upstreams: [\"file:\(directory)/extra.log\"] }\n", to: path)
        let (ferry, port, http) = try await FerryProcess.serve(["--config", path])
        defer { ferry.signal(SIGTERM) }
        let metrics = { (try? HTTPTestClient.request("GET", port: http, path: "/metrics").body) ?? "" }
        try await PacedSender.send(prefix: "one", count: 100, rate: 2_000, to: port)
        #expect(await eventually(seconds: 5) { metrics().contains("ferry_route_logs_total{route=\"archive\"} 100") })
        #expect(metrics().contains("route=\"extra\"") && metrics().contains("extra.log"))

        // extra goes; archive changes (a cap of its own): a new queue, new counts.
        try write("routes:\n  archive: { upstreams: [\"file:\(directory)/all.log\"], max-backlog-bytes: 1MiB }\n", to: path)
        ferry.signal(SIGHUP)
        #expect(await eventually(seconds: 5) { reloads(http)["succeeded"] as? Int == 1 })
        #expect((reloads(http)["last"] as? [String: Any]).flatMap { $0["changes"] as? [String: Any] }?["routes_changed"] as? [String] == ["archive"])
        try await PacedSender.send(prefix: "two", count: 50, rate: 2_000, to: port)
        #expect(await eventually(seconds: 5) { metrics().contains("ferry_route_logs_total{route=\"archive\"} 150") }, "\(metrics())")
        let text = metrics()
        #expect(!text.contains("route=\"extra\""), "the removed route's series are still there")
        #expect(!text.contains("extra.log"), "the removed upstream's series are still there")
    }

    /// The new user's check: scrape, count, change the route, reload, scrape:
    /// the route's counter and its status figure include what it took between
    /// the last scrape and the reload (it used to start again from 0 at the
    /// reload and `/metrics` kept the old figure, losing those), and the
    /// route's books still balance.
    @Test func aChangedRoutesCountsGoOnExactlyAcrossAReload() async throws {
        let directory = try scratchDirectory("reload-exact")
        let path = directory + "/ferry.yaml"
        func config(_ severity: String) -> String {
            "routes:\n  warnings: { match: { severity: \(severity) }, upstreams: [\"file:\(directory)/warnings.log\"] }\n"
        }
        try write(config("warning"), to: path)
        let (ferry, port, http) = try await FerryProcess.serve(["--config", path])
        defer { ferry.signal(SIGTERM) }
        let metrics = { (try? HTTPTestClient.request("GET", port: http, path: "/metrics").body) ?? "" }
        func route() -> [String: Any] { (StatusReader(port: http).status()?["routes"] as? [[String: Any]])?.first ?? [:] }
        try await PacedSender.send(prefix: "<12>warn", count: 5, rate: 1_000, to: port)
        #expect(await eventually(seconds: 5) { metrics().contains("ferry_route_logs_total{route=\"warnings\"} 5") }, "\(metrics())")
        try await PacedSender.send(prefix: "<10>crit", count: 3, rate: 1_000, to: port)
        #expect(await eventually(seconds: 5) { route()["forwarded"] as? Int == 8 }, "\(route())")
        try write(config("err"), to: path)
        ferry.signal(SIGHUP)
        #expect(await eventually(seconds: 5) { reloads(http)["succeeded"] as? Int == 1 })
        #expect(metrics().contains("ferry_route_logs_total{route=\"warnings\"} 8"), "\(metrics())")
        #expect(route()["routed"] as? Int == 8 && route()["forwarded"] as? Int == 8, "\(route())")
        try await PacedSender.send(prefix: "<10>crit-after", count: 2, rate: 1_000, to: port)
        #expect(await eventually(seconds: 5) { route()["forwarded"] as? Int == 10 }, "\(route())")
        #expect(metrics().contains("ferry_route_logs_total{route=\"warnings\"} 10"), "\(metrics())")
        #expect(route()["routed"] as? Int == 10, "\(route())")
    }
}
