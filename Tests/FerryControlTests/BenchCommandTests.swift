import FerryTestSupport
import Foundation
import Testing

/// `ferry bench` against a real relay and a real sink.
@Suite(.timeLimit(.minutes(1)))
struct BenchCommandTests {
    private func report(_ process: FerryProcess) async throws -> [String: Any] {
        #expect(await process.waitForExit(timeout: 30) == 0)
        let line = try #require(process.logText.split(separator: "\n").last)
        return try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    }

    @Test func countsEverythingThroughARelay() async throws {
        let sinkPort = try UDPTestSocket().port  // released: the bench binds it
        let (relay, udpPort, _) = try await FerryProcess.serve(["--upstream", "udp://127.0.0.1:\(sinkPort)"])
        let bench = try FerryProcess([
            "bench", "--target", "127.0.0.1:\(udpPort)", "--sink", "127.0.0.1:\(sinkPort)", "--rate", "4000", "--count", "6000",
            "--size", "120", "--json",
        ])
        let result = try await report(bench)
        #expect(result["sent"] as? Int == 6_000)
        #expect(result["unique"] as? Int == 6_000)
        #expect(result["lost"] as? Int == 0)
        #expect(result["duplicated"] as? Int == 0)
        #expect((result["latency_p50_us"] as? Double ?? 0) > 0)
        #expect((result["latency_p999_us"] as? Double ?? 0) >= (result["latency_p50_us"] as? Double ?? 0))
        let rate = result["sent_per_second"] as? Int ?? 0
        #expect((3_000...5_000).contains(rate), "paced rate \(rate)")
        relay.signal(SIGTERM)
        _ = await relay.waitForExit(timeout: 10)
    }

    @Test func reportsWhatNeverArrivedAsLost() async throws {
        let sinkPort = try UDPTestSocket().port
        let nowhere = try UDPTestSocket()  // receives, but forwards nothing to the sink
        let bench = try FerryProcess([
            "bench", "--target", "127.0.0.1:\(nowhere.port)", "--sink", "127.0.0.1:\(sinkPort)", "--count", "500", "--idle", "0.5", "--json",
        ])
        let result = try await report(bench)
        #expect(result["sent"] as? Int == 500)
        #expect(result["lost"] as? Int == 500)
        #expect(result["loss_percent"] as? Double == 100)
    }

    /// `--size MIN-MAX`: each log's length drawn from the range, each still a
    /// whole numbered line the sink counts.
    @Test func variedLengthsStayInTheirRangeAndAreAllCounted() async throws {
        let target = try UDPTestSocket()
        let receiving = target.startReceiving(count: 2_000, idleMilliseconds: 3_000, firstMilliseconds: 20_000)
        let bench = try FerryProcess([
            "bench", "--target", "127.0.0.1:\(target.port)", "--rate", "20000", "--count", "2000", "--size", "60-400", "--json",
        ])
        #expect(await bench.waitForExit(timeout: 30) == 0)
        let datagrams = await receiving.value
        #expect(datagrams.count == 2_000)
        let lengths = datagrams.map(\.count)
        #expect(lengths.allSatisfy { (60...400).contains($0) }, "\(lengths.min() ?? 0)...\(lengths.max() ?? 0)")
        #expect(Set(lengths).count > 200, "only \(Set(lengths).count) distinct lengths")
        #expect(datagrams.allSatisfy { $0.first == UInt8(ascii: "<") && $0.last == UInt8(ascii: "\n") })
        #expect(datagrams.allSatisfy { !$0.dropLast().contains(UInt8(ascii: "\n")) }, "a line carries another's newline")

        let sinkPort = try UDPTestSocket().port
        let (relay, udpPort, _) = try await FerryProcess.serve(["--upstream", "udp://127.0.0.1:\(sinkPort)"])
        defer { relay.signal(SIGTERM) }
        let through = try FerryProcess([
            "bench", "--target", "127.0.0.1:\(udpPort)", "--sink", "127.0.0.1:\(sinkPort)", "--rate", "4000", "--count", "3000",
            "--size", "60-400", "--json",
        ])
        let result = try await report(through)
        #expect(result["unique"] as? Int == 3_000 && result["lost"] as? Int == 0, "\(result)")
    }

    @Test func badOptionsAreUsageErrors() async throws {
        let bench = try FerryProcess(["bench", "--target", "nowhere", "--json"])
        #expect(await bench.waitForExit(timeout: 10) == 2)
        #expect(bench.logText.contains("--target"))
        for size in ["400-60", "10-400", "60-", "abc"] {
            let bad = try FerryProcess(["bench", "--target", "127.0.0.1:9", "--size", size, "--json"])
            #expect(await bad.waitForExit(timeout: 10) == 2)
            #expect(bad.logText.contains("--size '\(size)'"), "\(bad.logText)")
        }
    }
}
