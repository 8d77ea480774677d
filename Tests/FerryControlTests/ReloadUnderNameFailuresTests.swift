import FerryTestSupport
import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Reloads under name failures, in a loop: once a CI run saw Ferry crash in a
/// SIGHUP reload that added a `udp://` failover while the first upstream's name
/// did not resolve. Here names flap (a private hosts file rewritten every
/// 150 ms), some never resolve, upstreams of every kind are added and removed,
/// and a reload comes every 200 ms while logs flow. Ferry must stay up, answer
/// every reload (applied or refused with a reason), and its archive route lose
/// nothing.
@Suite(.serialized)
struct ReloadUnderNameFailuresTests {
    @Test func reloadsEvery200msWhileNamesFlapNeverTakeFerryDown() async throws {
        guard getuid() == 0 else { return }  // the private hosts file needs a mount namespace (CI runs as root)
        try await LoadGate.shared.heavy {
            let directory = try scratchDirectory("reload-names")
            let names = try PrivateNames(hosts: "127.0.0.1 flap-a.test\n127.0.0.1 flap-b.test\n")
            let udpSink = try UDPTestSocket()
            let deadFerry = try UDPTestSocket()  // a ferry:// peer that never answers
            let closedTCP = freePort(Int32(SOCK_STREAM.rawValue))
            let variants: [String] = [
                "[\"udp://flap-a.test:\(udpSink.port)\", \"udp://flap-b.test:\(udpSink.port)\"]",
                "[\"udp://gone.invalid:\(udpSink.port)\", \"udp://flap-a.test:\(udpSink.port)\"]",
                "[\"ferry://flap-b.test:\(deadFerry.port)\", \"udp://gone.invalid:\(udpSink.port)\"]",
                "",
                "[\"tcp://flap-a.test:\(closedTCP)\", \"udp://flap-b.test:\(udpSink.port)\"]",
                "[\"udp://gone.invalid:\(udpSink.port)\"]",
            ]
            let path = directory + "/ferry.yaml"
            func write(_ round: Int) throws {
                var yaml = "routes:\n  archive: { upstreams: [\"file:\(directory)/all.log\"] }\n"
                let flaky = variants[round % variants.count]
                if !flaky.isEmpty { yaml += "  flaky: { upstreams: \(flaky) }\n" }
                try yaml.write(toFile: path + ".new", atomically: false, encoding: .utf8)
                rename(path + ".new", path)
            }
            try write(0)
            let (ferry, port, http) = try await FerryProcess.serve(
                ["--config", path, "--resolve-interval", "1", "--ack-timeout", "100ms", "--frame-ttl", "2s"], wrapper: names.wrapper)
            defer { ferry.signal(SIGTERM) }
            let status = StatusReader(port: http)
            func reloads() -> Int {
                let figures = status.status()?["reloads"] as? [String: Any] ?? [:]
                return (figures["succeeded"] as? Int ?? 0) + (figures["failed"] as? Int ?? 0)
            }

            let flapping = Atomic<Bool>(true)
            let flapper = Thread {
                var present = false
                while flapping.load(ordering: .relaxed) {
                    present.toggle()
                    try? names.rewrite(present ? "127.0.0.1 flap-a.test\n127.0.0.1 flap-b.test\n" : "127.0.0.1 flap-b.test\n")
                    usleep(150_000)
                }
            }
            flapper.start()
            let count = 24_000
            let sending = Task { try await PacedSender.send(prefix: "names", count: count, rate: 2_000, to: port) }
            let rounds = 40
            var answered = 0
            for round in 1...rounds {
                let started = ContinuousClock.now
                try write(round)
                ferry.signal(SIGHUP)
                if await eventually(seconds: 10, { reloads() >= round }) { answered += 1 }
                #expect(ferry.process.isRunning, "Ferry exited during reload \(round): \(ferry.logText.suffix(2_000))")
                guard ferry.process.isRunning else { break }
                try await Task.sleep(until: started + .milliseconds(200))
            }
            flapping.store(false, ordering: .relaxed)
            try await sending.value
            #expect(answered == rounds, "\(rounds - answered) reloads never answered")
            #expect(await eventually(seconds: 15, every: .milliseconds(250)) { fileLines(directory + "/all.log").count >= count })
            let tally = PacedSender.tally(prefix: "names", count: count, in: fileLines(directory + "/all.log"))
            #expect(tally.missing == 0 && tally.duplicated == 0, "archive: \(tally)")
            #expect(ferry.process.isRunning && status.status() != nil)
            // The conditions were met: reloads added upstreams whose names did not resolve, and names flapped.
            let messages = ferry.logLines.compactMap { $0["message"] as? String }
            #expect(messages.contains("upstream name does not resolve yet, retrying"), "no reload met an unresolvable name")
            #expect(messages.contains("upstream name resolves again") || messages.contains("upstream address changed"), "no name flapped")
            let figures = status.status()?["reloads"] as? [String: Any] ?? [:]
            print("reloads under flapping names: \(figures["succeeded"] ?? "?") applied, \(figures["failed"] ?? "?") refused")
            while !flapper.isFinished { try await Task.sleep(for: .milliseconds(20)) }
        }
    }
}
