import FerryTestSupport
import Foundation
import NIOCore
import Testing

@testable import FerryCore

/// The data plane end to end on real loopback sockets: a sender, a running
/// relay, and a real UDP socket or file as the upstream.
@Suite(.timeLimit(.minutes(2)))
struct RelayEndToEndTests {
    static let sizes = [0, 1, 200, 1_400, 9_000, 65_507]

    @Test func datagramsOfEverySizeArriveByteIdenticalAndInOrderAtAUDPUpstream() async throws {
        let upstream = try UDPTestSocket()
        let (relay, port) = try await TestRelay.start(
            TestRelay.configuration(upstreams: [.udp(HostAndPort(host: "127.0.0.1", port: upstream.port))]))
        let sender = try UDPTestSocket()
        var sent: [[UInt8]] = []
        for round in 0..<3 {
            for size in Self.sizes {
                let payload = TestRelay.binaryPayload(size: size, seed: round * 100_000 + size)
                sent.append(payload)
                sender.send(payload, to: port)
            }
        }
        let received = upstream.receive(count: sent.count)
        #expect(received.count == sent.count)
        #expect(received == sent)  // byte-identical, in order per sender
        #expect(await eventually(seconds: 5) { relay.upstreams[0].forwarded.load == sent.count })
        // In steady state the receive thread that got them sends by itself (no hop to its loop).
        #expect(relay.listeners.contains { $0.directRoute == "udp://127.0.0.1:\(upstream.port)" })
        await relay.shutdown()
        #expect(relay.totals.received[.udp] == sent.count)
        #expect(relay.totals.droppedTotal == 0)
    }

    @Test func datagramsOfEverySizeArriveAsLinesInTheFileSink() async throws {
        let path = TestRelay.temporaryFile("forwarded.log")
        let (relay, port) = try await TestRelay.start(TestRelay.configuration(upstreams: [.file(path: path)]))
        let sender = try UDPTestSocket()
        var expected: [String] = []
        for size in Self.sizes {
            let payload = TestRelay.payload(size: size, seed: size)
            expected.append(String(decoding: payload, as: UTF8.self))
            sender.send(payload, to: port)
        }
        sender.send(Array("ends with newline\n".utf8), to: port)
        expected.append("ends with newline")
        #expect(await eventually(seconds: 5) { relay.upstreams[0].forwarded.load == expected.count })
        await relay.shutdown()
        let contents = try String(contentsOfFile: path, encoding: .utf8)
        #expect(contents.hasSuffix("\n"))
        let lines = contents.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
        #expect(lines == expected)
    }

    @Test func aFileMovedAwayByLogrotateIsReopened() async throws {
        let path = TestRelay.temporaryFile("rotated.log")
        let (relay, port) = try await TestRelay.start(TestRelay.configuration(upstreams: [.file(path: path)], sockets: 1))
        let sender = try UDPTestSocket()
        for index in 0..<3 { sender.send(Array("before \(index)".utf8), to: port) }
        #expect(await eventually(seconds: 5) { relay.upstreams[0].forwarded.load == 3 })
        try FileManager.default.moveItem(atPath: path, toPath: path + ".1")  // what logrotate does
        try await Task.sleep(for: .milliseconds(1_100))
        for index in 0..<3 { sender.send(Array("after \(index)".utf8), to: port) }
        #expect(await eventually(seconds: 5) { relay.upstreams[0].forwarded.load == 6 })
        await relay.shutdown()
        #expect(try String(contentsOfFile: path + ".1", encoding: .utf8) == "before 0\nbefore 1\nbefore 2\n")
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "after 0\nafter 1\nafter 2\n")
    }

    @Test func oversizeDatagramsAreDroppedAndCountedNeverForwardedCut() async throws {
        let upstream = try UDPTestSocket()
        var configuration = TestRelay.configuration(upstreams: [.udp(HostAndPort(host: "127.0.0.1", port: upstream.port))], sockets: 1)
        configuration.maxDatagramBytes = 1_000
        let (relay, port) = try await TestRelay.start(configuration)
        let sender = try UDPTestSocket()
        sender.send(TestRelay.payload(size: 1_001, seed: 1), to: port)
        sender.send(TestRelay.payload(size: 5_000, seed: 2), to: port)
        let fits = TestRelay.payload(size: 1_000, seed: 3)
        sender.send(fits, to: port)
        #expect(upstream.receive() == fits)
        #expect(upstream.receive(timeoutMilliseconds: 300) == nil)  // nothing cut was forwarded
        #expect(relay.totals.dropped[.oversize] == 2)
        #expect(relay.totals.received[.udp] == 3)
        await relay.shutdown()
    }

    @Test func aFullBufferDropsTheNewestAsQueueFull() async throws {
        // The only upstream refuses (nothing listens there), so logs wait in the buffer.
        let closedPort = try UDPTestSocket().port  // bound and released: nothing listens now
        var configuration = TestRelay.configuration(upstreams: [.udp(HostAndPort(host: "127.0.0.1", port: closedPort))], sockets: 1)
        configuration.queueCapacityLogs = 10
        configuration.drainTimeout = .milliseconds(200)
        configuration.breaker.openDuration = .seconds(30)
        let (relay, port) = try await TestRelay.start(configuration)
        let sender = try UDPTestSocket()
        // Sends are refused by ICMP until the breaker opens and holds traffic back.
        let probes = await Self.sendUntilBreakerOpens(relay, sender: sender, port: port)
        #expect(!relay.upstreams[0].isAvailable)
        #expect(relay.upstreams[0].snapshot.breaker.state == "open")
        #expect(relay.listeners[0].directRoute == nil)  // nothing to send to: bursts go to the loop and wait
        // Probes refused while the breaker was closed wait in the buffer too (kept, not dropped).
        #expect(await eventually(seconds: 5) { relay.totals.received[.udp] == probes })
        try await Task.sleep(for: .milliseconds(200))  // the last probe reaches the buffer (or is dropped, it being full)
        let waiting = relay.capacity.usedLogs
        let droppedWhileProbing = relay.totals.dropped[.queueFull, default: 0]
        for index in 0..<50 { sender.send(Array("log \(index)".utf8), to: port) }
        #expect(await eventually(seconds: 5) { relay.totals.received[.udp] == probes + 50 })
        #expect(relay.capacity.usedLogs == 10)
        #expect(relay.totals.dropped[.queueFull, default: 0] - droppedWhileProbing == 40 + waiting)
        let undrained = await relay.shutdown()
        // Every log is accounted for: forwarded + dropped + undrained = received.
        let forwarded = relay.upstreams[0].forwarded.load
        #expect(forwarded + relay.totals.droppedTotal + undrained == probes + 50)
    }

    /// Sends one datagram at a time to a relay whose only upstream refuses, until its breaker opens.
    static func sendUntilBreakerOpens(_ relay: Relay, sender: UDPTestSocket, port: Int) async -> Int {
        var sent = 0
        while relay.upstreams[0].breakerState != .open, sent < 100 {
            sender.send(Array("probe \(sent)".utf8), to: port)
            sent += 1
            try? await Task.sleep(for: .milliseconds(20))
        }
        return sent
    }

    @Test func failsOverToTheNextUpstreamWhenTheFirstCannotTakeTraffic() async throws {
        let closedPort = try UDPTestSocket().port
        let second = try UDPTestSocket()
        let (relay, port) = try await TestRelay.start(
            TestRelay.configuration(
                upstreams: [
                    .udp(HostAndPort(host: "127.0.0.1", port: closedPort)),
                    .udp(HostAndPort(host: "127.0.0.1", port: second.port)),
                ], sockets: 1))
        let sender = try UDPTestSocket()
        _ = await Self.sendUntilBreakerOpens(relay, sender: sender, port: port)
        #expect(relay.upstreams[0].snapshot.sendErrors["refused", default: 0] >= 5)
        while second.receive(timeoutMilliseconds: 100) != nil {}  // probes sent while the breaker was still closed
        sender.send(Array("after failover".utf8), to: port)
        #expect(second.receive() == Array("after failover".utf8))
        // The direct route follows the pipeline's failover to the second upstream.
        #expect(await eventually(seconds: 5) { relay.listeners[0].directRoute == "udp://127.0.0.1:\(second.port)" })
        sender.send(Array("direct".utf8), to: port)
        #expect(second.receive() == Array("direct".utf8))
        await relay.shutdown()
    }

    /// Shutdown is one state change: calls from several places drain once and
    /// agree on what was left; the phase ends `stopped`.
    @Test func shutdownIsIdempotent() async throws {
        let upstream = try UDPTestSocket()
        let (relay, _) = try await TestRelay.start(TestRelay.configuration(upstreams: [.udp(HostAndPort(host: "127.0.0.1", port: upstream.port))]))
        async let first = relay.shutdown()
        async let second = relay.shutdown()
        let counts = await [first, second]
        #expect(counts == [0, 0])
        #expect(relay.phase == .stopped)
        #expect(await relay.shutdown() == 0)  // after it stopped: at once, same answer
    }
}
