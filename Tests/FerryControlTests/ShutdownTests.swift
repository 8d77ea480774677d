import FerryTestSupport
import Foundation
import Testing

/// Graceful shutdown of the real binary: stop intake, drain, account for every log, exit 0.
@Suite(.timeLimit(.minutes(2)))
struct ShutdownTests {
    @Test func sigtermMidStreamDrainsAndAccountsForEveryDatagram() async throws {
        let upstream = try UDPTestSocket(receiveBuffer: 64 << 20)
        let (ferry, udpPort, _) = try await FerryProcess.serve(["--upstream", "udp://127.0.0.1:\(upstream.port)", "--drain-timeout", "2s"])
        let total = 200_000
        // The first datagram may take a while: under a full parallel test run the
        // sending task can wait seconds for a thread of the cooperative pool.
        let counting = upstream.startReceiving(count: total, idleMilliseconds: 1500, firstMilliseconds: 15_000)
        let sending = Task.detached {
            let sender = try UDPTestSocket()
            let payload = [UInt8](repeating: 120, count: 200)
            for _ in 0..<total { sender.send(payload, to: udpPort) }
        }
        try await Task.sleep(for: .milliseconds(300))
        // Timed on a thread of its own, so a busy cooperative pool does not add to it.
        let (exit, elapsed) = try await onOwnThread { () -> (Int32?, Duration) in
            let signalled = ContinuousClock.now
            ferry.signal(SIGTERM)
            return (ferry.blockingWaitForExit(timeout: 10), ContinuousClock.now - signalled)
        }
        try await sending.value
        let arrived = await counting.value.count

        #expect(exit == 0)
        // The drain deadline plus 1.5 s for the process to stop: a drain that ignored
        // its deadline would not end at all. (Under a loaded 2-core CI, stopping took 1.0 s.)
        #expect(elapsed < .milliseconds(3500))
        let summary = try #require(
            ferry.logLines.first { $0["message"] as? String == "drained" || ($0["message"] as? String)?.hasPrefix("drain incomplete") == true })
        let received = Int(summary["logs.received"] as? String ?? "") ?? -1
        let forwarded = Int(summary["logs.forwarded"] as? String ?? "") ?? -1
        let dropped = Int(summary["logs.dropped"] as? String ?? "") ?? -1
        let undrained = Int(summary["logs.undrained"] as? String ?? "") ?? -1
        #expect(received > 0)
        #expect(received == forwarded + dropped + undrained)
        #expect(arrived == forwarded, "Ferry said: \(ferry.logLines.filter { ($0["level"] as? String) != "info" }.prefix(6)); summary \(summary)")
    }

    @Test func logsThatCannotBeDrainedAreCountedAndReadinessSaysDraining() async throws {
        try await LoadGate.shared.timed {
            // The upstream is a full disk (/dev/full fails every write with ENOSPC):
            // the sink keeps retrying, reports itself unavailable, and logs wait in the buffer.
            let (ferry, udpPort, httpPort) = try await FerryProcess.serve(["--upstream", "file:/dev/full", "--drain-timeout", "1500ms"])
            let sender = try UDPTestSocket()
            sender.send(Array("first".utf8), to: udpPort)
            var notReady: [String: Any]?
            for _ in 0..<100 {
                let reply = try HTTPTestClient.request("GET", port: httpPort, path: "/readyz")
                if reply.status == 503 {
                    notReady = reply.json
                    break
                }
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(notReady?["reason"] as? String == "no_upstream_available")
            for index in 0..<20 { sender.send(Array("waiting \(index)".utf8), to: udpPort) }
            try await Task.sleep(for: .milliseconds(100))

            // Signal, poll and time on a thread of its own: under a full parallel run the
            // cooperative pool can be held for seconds by other tests (seen on CI: 9 s).
            let (draining, exit, elapsed) = try await onOwnThread { () -> ([String: Any]?, Int32?, Duration) in
                let signalled = ContinuousClock.now
                ferry.signal(SIGTERM)
                var draining: [String: Any]?
                for _ in 0..<150 {
                    if let reply = try? HTTPTestClient.request("GET", port: httpPort, path: "/readyz"), reply.json?["reason"] as? String == "draining"
                    {
                        draining = reply.json
                        break
                    }
                    usleep(10_000)
                }
                let exit = ferry.blockingWaitForExit(timeout: 10)
                return (draining, exit, ContinuousClock.now - signalled)
            }
            #expect(draining?["status"] as? String == "not_ready", "Ferry said: \(ferry.logText.suffix(3000))")
            #expect(exit == 0)
            // Deadline (1.5 s) plus 1.5 s to stop; without the deadline /dev/full would keep it draining forever.
            #expect(elapsed < .milliseconds(3000), "Ferry said: \(ferry.logText.suffix(3000))")
            let summary = try #require(ferry.logLines.first { $0["message"] as? String == "drain incomplete, logs left undrained" })
            let received = Int(summary["logs.received"] as? String ?? "") ?? -1
            let forwarded = Int(summary["logs.forwarded"] as? String ?? "") ?? -1
            let dropped = Int(summary["logs.dropped"] as? String ?? "") ?? -1
            let undrained = Int(summary["logs.undrained"] as? String ?? "") ?? -1
            #expect(received == 21)
            #expect(undrained > 0)
            #expect(received == forwarded + dropped + undrained)
        }
    }
}
