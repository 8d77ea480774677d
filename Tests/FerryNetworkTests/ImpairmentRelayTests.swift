import FerryTestSupport
import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The UDP impairment relay on loopback, against an echo server: it forwards
/// both ways per client flow, does what its settings say (counted), replays
/// from its seed, and keeps up with more than the fault tests offer.
@Suite("Impairment relay (UDP)", .serialized, .timeLimit(.minutes(2)))
struct ImpairmentRelayTests {
    private let loopback = IPv4Endpoint(host: "127.0.0.1", port: 0)

    /// Datagrams from two client sockets come back to the socket that sent them, as two flows.
    @Test func forwardsBothWaysPerClientPort() async throws {
        let echo = try EchoServer()
        defer { echo.stop() }
        let relay = try ImpairmentRelay(listen: loopback, to: echo.endpoint, seed: 1)
        defer { relay.stop() }
        let one = try UDPTestSocket()
        let two = try UDPTestSocket()
        for index in 0..<100 {
            one.send(Array("one-\(index)".utf8), to: relay.endpoint.port)
            two.send(Array("two-\(index)".utf8), to: relay.endpoint.port)
        }
        let backOne = await one.collect(count: 100, idleMilliseconds: 1_000).map { String(decoding: $0, as: UTF8.self) }
        let backTwo = await two.collect(count: 100, idleMilliseconds: 1_000).map { String(decoding: $0, as: UTF8.self) }
        #expect(backOne == (0..<100).map { "one-\($0)" }, "\(relay)")
        #expect(backTwo == (0..<100).map { "two-\($0)" }, "\(relay)")
        #expect(relay.flows == 2)
        #expect(relay.counters(.data).forwarded == 200 && relay.counters(.acks).forwarded == 200, "\(relay)")
    }

    /// Loss and duplication near their settings; the same seed makes the same choices.
    @Test func lossAndDuplicationFollowTheSeed() async throws {
        func run(seed: UInt64) async throws -> (ImpairmentCounters, [String]) {
            let sink = try UDPTestSocket()
            let relay = try ImpairmentRelay(
                listen: loopback, to: IPv4Endpoint(host: "127.0.0.1", port: sink.port), data: Impairment(loss: 0.2, duplication: 0.1),
                seed: seed)
            defer { relay.stop() }
            let client = try UDPTestSocket()
            let receiving = sink.startReceiving(count: 20_000, idleMilliseconds: 500)
            for index in 0..<10_000 {
                client.send(Array("d-\(index)".utf8), to: relay.endpoint.port)
                if index % 100 == 99 { usleep(1_000) }
            }
            let received = await receiving.value.map { String(decoding: $0, as: UTF8.self) }
            return (relay.counters(.data), received)
        }
        let (first, firstReceived) = try await run(seed: 42)
        let (again, againReceived) = try await run(seed: 42)
        let (other, _) = try await run(seed: 43)
        #expect(first.received == 10_000)
        #expect((1_800...2_200).contains(first.lost), "\(first)")
        #expect((600...1_000).contains(first.duplicated), "\(first)")
        #expect(firstReceived.count == first.forwarded && first.forwarded == 10_000 - first.lost + first.duplicated, "\(first)")
        #expect(first == again && firstReceived == againReceived, "seed 42 twice: \(first) / \(again)")
        #expect(first != other)
    }

    /// Flipped datagrams differ from what was sent in 1 to 3 bits, and as many as counted.
    @Test func flipsOneToThreeBits() async throws {
        let sink = try UDPTestSocket()
        let relay = try ImpairmentRelay(
            listen: loopback, to: IPv4Endpoint(host: "127.0.0.1", port: sink.port), data: Impairment(bitFlip: 0.1), seed: 7)
        defer { relay.stop() }
        let client = try UDPTestSocket()
        let receiving = sink.startReceiving(count: 2_000, idleMilliseconds: 500)
        let payload = [UInt8](repeating: 0, count: 200)
        for _ in 0..<2_000 { client.send(payload, to: relay.endpoint.port) }
        let received = await receiving.value
        let flippedBits = received.map { $0.reduce(0) { $0 + $1.nonzeroBitCount } }
        #expect(received.count == 2_000)
        #expect(flippedBits.filter { $0 > 0 }.count == relay.counters(.data).flipped, "\(relay)")
        #expect(flippedBits.allSatisfy { $0 <= 3 })
        #expect((120...280).contains(relay.counters(.data).flipped), "\(relay)")
    }

    /// Held datagrams are overtaken by later ones, and all arrive.
    @Test func reordersWithinTheWindow() async throws {
        let sink = try UDPTestSocket()
        let relay = try ImpairmentRelay(
            listen: loopback, to: IPv4Endpoint(host: "127.0.0.1", port: sink.port),
            data: Impairment(reorder: 0.3, reorderWindow: .milliseconds(50), delay: .milliseconds(5), jitter: .milliseconds(2)), seed: 9)
        defer { relay.stop() }
        let client = try UDPTestSocket()
        let receiving = sink.startReceiving(count: 1_000, idleMilliseconds: 500)
        for index in 0..<1_000 {
            client.send(Array(String(index).utf8), to: relay.endpoint.port)
            usleep(200)
        }
        let order = await receiving.value.compactMap { Int(String(decoding: $0, as: UTF8.self)) }
        #expect(Set(order) == Set(0..<1_000), "\(relay)")
        let overtaken = zip(order, order.dropFirst()).filter { $0 > $1 }.count
        #expect(overtaken > 50, "\(overtaken) inversions; \(relay)")
        #expect(relay.counters(.data).reordered > 200 && relay.counters(.data).delayed == 1_000, "\(relay)")
    }

    /// A partition drops everything in its direction for its time, scheduled or called.
    @Test func partitionsDropForTheirTime() async throws {
        let echo = try EchoServer()
        defer { echo.stop() }
        let relay = try ImpairmentRelay(
            listen: loopback, to: echo.endpoint, partitions: [ScheduledPartition(at: .zero, for: .milliseconds(300), .acks)], seed: 3)
        defer { relay.stop() }
        let client = try UDPTestSocket()
        client.send(Array("during".utf8), to: relay.endpoint.port)
        #expect(client.receive(timeoutMilliseconds: 200) == nil)
        #expect(relay.counters(.acks).partitioned == 1 && relay.counters(.data).forwarded == 1, "\(relay)")
        try await Task.sleep(for: .milliseconds(300))
        client.send(Array("after".utf8), to: relay.endpoint.port)
        #expect(client.receive(timeoutMilliseconds: 1_000).map { String(decoding: $0, as: UTF8.self) } == "after", "\(relay)")
        relay.partition(.data, for: .seconds(30))
        client.send(Array("cut".utf8), to: relay.endpoint.port)
        #expect(client.receive(timeoutMilliseconds: 200) == nil)
        #expect(relay.counters(.data).partitioned == 1, "\(relay)")
        relay.heal()
        client.send(Array("healed".utf8), to: relay.endpoint.port)
        #expect(client.receive(timeoutMilliseconds: 1_000).map { String(decoding: $0, as: UTF8.self) } == "healed", "\(relay)")
    }

    /// 10,000 datagrams/s each way (five times what the fault tests need), with
    /// delay and jitter on both: every one forwarded, none refused by the kernel.
    /// Well above what the network tests offer it (a few hundred frames a second): it must never be their bottleneck.
    @Test func keepsUpWithTwoThousandDatagramsASecondEachWay() async throws {
        let echo = try EchoServer()
        defer { echo.stop() }
        let delayed = Impairment(delay: .milliseconds(2), jitter: .milliseconds(3))
        let relay = try ImpairmentRelay(listen: loopback, to: echo.endpoint, data: delayed, acks: delayed, seed: 11)
        defer { relay.stop() }
        let client = try UDPTestSocket()
        let total = 10_000
        let receiving = client.startReceiving(count: total, idleMilliseconds: 2_000)
        let payload = [UInt8](repeating: 0x41, count: 1_400)
        let start = ContinuousClock.now
        try await onOwnThread {
            for index in 0..<total {
                client.send(payload, to: relay.endpoint.port)
                if index % 100 == 99 {
                    let due = start + .milliseconds((index + 1) / 2)
                    let left = due - ContinuousClock.now
                    if left > .zero { usleep(UInt32(left.components.attoseconds / 1_000_000_000_000)) }
                }
            }
        }
        let back = await receiving.value
        #expect(back.count == total, "\(relay)")
        #expect(relay.counters(.data).sendFailed == 0 && relay.counters(.acks).sendFailed == 0, "\(relay)")
    }
}

/// A UDP echo server on loopback, on a thread of its own: each datagram goes back to its sender.
final class EchoServer: Sendable {
    let endpoint: IPv4Endpoint
    private let socket: UDPTestSocket
    private let stopping = Atomic<Bool>(false)
    private let done = DispatchSemaphore(value: 0)

    init() throws {
        socket = try UDPTestSocket()
        endpoint = IPv4Endpoint(host: "127.0.0.1", port: socket.port)
        let fd = socket.fd
        Thread { [self] in
            var buffer = [UInt8](repeating: 0, count: 65_536)
            while !stopping.load(ordering: .relaxed) {
                var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                guard poll(&poller, 1, 20) > 0 else { continue }
                var address = sockaddr_storage()
                var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
                let count = buffer.withUnsafeMutableBytes { bytes in
                    withUnsafeMutablePointer(to: &address) {
                        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, bytes.baseAddress, bytes.count, 0, $0, &length) }
                    }
                }
                guard count >= 0 else { continue }
                _ = buffer.withUnsafeBytes { bytes in
                    withUnsafePointer(to: &address) {
                        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, bytes.baseAddress, count, 0, $0, length) }
                    }
                }
            }
            done.signal()
        }.start()
    }

    func stop() {
        guard !stopping.exchange(true, ordering: .relaxed) else { return }
        done.wait()
    }
}
