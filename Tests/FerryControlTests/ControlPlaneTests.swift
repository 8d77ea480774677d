import FerryTestSupport
import Foundation
import Testing

/// The HTTP control plane of a real `ferry serve` child process.
@Suite(.timeLimit(.minutes(2)))
struct ControlPlaneTests {
    @Test func healthReadinessStatusAndLogIntake() async throws {
        let (ferry, udpPort, httpPort) = try await FerryProcess.serve(["--upstream", "file:out/forwarded.log", "--http-max-body-bytes", "1KiB"])

        let health = try HTTPTestClient.request("GET", port: httpPort, path: "/healthz")
        #expect(health.status == 200)
        let ready = try HTTPTestClient.request("GET", port: httpPort, path: "/readyz")
        #expect(ready.status == 200)
        #expect(ready.json?["status"] as? String == "ready")

        let posted = try HTTPTestClient.request("POST", port: httpPort, path: "/v1/logs", body: Array("first\nsecond\r\n\nthird".utf8))
        #expect(posted.status == 202)
        #expect(posted.json?["accepted"] as? Int == 3)

        let tooLarge = try HTTPTestClient.request("POST", port: httpPort, path: "/v1/logs", body: [UInt8](repeating: 65, count: 2048))
        #expect(tooLarge.status == 413)

        let sender = try UDPTestSocket()
        sender.send(Array("by udp".utf8), to: udpPort)

        let path = ferry.directory + "/out/forwarded.log"
        var lines: [String] = []
        for _ in 0..<200 {
            lines = ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
            if lines.count >= 4 { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(lines.prefix(3) == ["first", "second", "third"])
        #expect(lines.last == "by udp")

        let status = try #require(try HTTPTestClient.request("GET", port: httpPort, path: "/v1/status").json)
        #expect(status["version"] as? String != nil)
        #expect(status["phase"] as? String == "running")
        let counters = try #require(status["counters"] as? [String: Any])
        #expect(counters["received"] as? Int == 4)
        #expect((counters["received_by_transport"] as? [String: Int])?["http"] == 3)
        #expect(counters["forwarded"] as? Int == 4)
        let listeners = try #require(status["listeners"] as? [[String: Any]])
        #expect(!listeners.isEmpty)
        #expect(listeners.allSatisfy { ($0["receive_buffer_bytes"] as? Int ?? 0) > 0 })
        let upstreams = try #require(status["upstreams"] as? [[String: Any]])
        #expect(upstreams.first?["url"] as? String == "file:out/forwarded.log")
        #expect(upstreams.first?["state"] as? String == "available")
        let queue = try #require(status["queue"] as? [String: Any])
        #expect(queue["capacity_logs"] as? Int == 100_000)

        ferry.signal(SIGTERM)
        #expect(await ferry.waitForExit(timeout: 10) == 0)
    }

    @Test func aRequestLargerThanTheFreeBufferGets429AndIsCounted() async throws {
        let (ferry, _, httpPort) = try await FerryProcess.serve(["--upstream", "file:out.log", "--queue-capacity-logs", "5"])
        let rejected = try HTTPTestClient.request("POST", port: httpPort, path: "/v1/logs", body: Array("1\n2\n3\n4\n5\n6\n".utf8))
        #expect(rejected.status == 429)
        let accepted = try HTTPTestClient.request("POST", port: httpPort, path: "/v1/logs", body: Array("1\n2\n3\n4\n5\n".utf8))
        #expect(accepted.status == 202)
        let status = try #require(try HTTPTestClient.request("GET", port: httpPort, path: "/v1/status").json)
        let counters = try #require(status["counters"] as? [String: Any])
        #expect((counters["dropped_by_reason"] as? [String: Int])?["queue_full"] == 6)
        ferry.signal(SIGTERM)
        #expect(await ferry.waitForExit(timeout: 10) == 0)
    }

    /// `receive.sockets` 0 means one socket per core this process may use: a
    /// Ferry pinned to one core must not start a receive thread and event loop
    /// per core of the machine, all competing for that core.
    @Test(.enabled(if: ExternalTool.path("taskset") != nil && ProcessInfo.processInfo.activeProcessorCount > 1))
    func receiveSocketsFollowTheCPUAffinity() async throws {
        let (pinned, _, _) = try await FerryProcess.serve(
            ["--upstream", "file:out/pinned.log"], wrapper: [ExternalTool.path("taskset")!, "-c", "0"])
        let (free, _, _) = try await FerryProcess.serve(["--upstream", "file:out/free.log"])
        #expect(await pinned.waitForLine(message: "listening")?["udp.sockets"] as? String == "1")
        #expect(await free.waitForLine(message: "listening")?["udp.sockets"] as? String == "\(ProcessInfo.processInfo.activeProcessorCount)")
        for process in [pinned, free] {
            process.signal(SIGTERM)
            #expect(await process.waitForExit(timeout: 10) == 0)
        }
    }

    @Test func badConfigurationExitsTwoNamingTheKey() async throws {
        let ferry = try FerryProcess(["serve", "--queue-capacity-logs", "lots"])
        #expect(await ferry.waitForExit(timeout: 10) == 2)
        #expect(ferry.logText.contains("queue.capacity-logs"))
        #expect(ferry.logText.contains("lots"))

        let fromEnvironment = try FerryProcess(["check-config"], environment: ["FERRY_RECEIVE_BATCH": "0"])
        #expect(await fromEnvironment.waitForExit(timeout: 10) == 2)
        #expect(fromEnvironment.logText.contains("receive.batch"))

        let usage = try FerryProcess(["serve", "--no-such-flag"])
        #expect(await usage.waitForExit(timeout: 10) == 2)
    }

    @Test func anAddressInUseIsARuntimeFailure() async throws {
        let (first, _, httpPort) = try await FerryProcess.serve(["--upstream", "file:a.log"])
        defer { first.signal(SIGKILL) }
        let second = try FerryProcess(["serve", "--listen", "127.0.0.1:0", "--http", "127.0.0.1:\(httpPort)", "--upstream", "file:b.log"])
        #expect(await second.waitForExit(timeout: 15) == 1)
    }
}
