import FerryTestSupport
import Foundation
import Testing

/// `udp://` and `tcp://` upstreams over the faults of the chaotic link: what
/// is lost is what the protocol cannot see, and Ferry adds no loss of its own.
@Suite("udp:// and tcp:// over bad links", .serialized, .timeLimit(.minutes(2)))
struct UnacknowledgedUpstreamTests {
    /// udp://: every log leaves the edge as one datagram, once; every datagram
    /// the relay sends arrives as one line. Loss, copies and flipped bits pass
    /// through unseen: delivered lines = offered − dropped by the relay + copies.
    @Test(.enabled(if: TestNetwork.isAvailable))
    func udpLosesExactlyWhatTheLinkLoses() async throws {
        let count = 30_000
        let seed = SeededRandom.seed(fallback: 3_230)
        let chain = try await RelayedChain("udp", scheme: .udp, data: ChaoticLinkTests.chaos, acks: ChaoticLinkTests.chaos, seed: seed)
        defer { chain.network.remove() }
        let relay = try #require(chain.udpRelay)
        let start = Date()
        relay.schedule([ScheduledPartition(at: .seconds(3), for: .seconds(2))])
        try await chain.offer(prefix: "udp", count: count, rate: 3_000)
        // The relay has read every datagram and sent every one it held back.
        #expect(await eventually(seconds: 5) { relay.counters(.data).received == count && relay.holding == 0 }, "\(chain.relayDescription)")
        let data = relay.counters(.data)
        let settled = await eventually(seconds: 10, every: .milliseconds(250)) { chain.outputLines.count >= data.forwarded }
        let delivery = await chain.awaitDelivery(prefix: "udp", count: count, within: 0, settle: .seconds(1))
        chain.report("udp \(count) logs at 3000/s, chaos", delivery, since: start)
        let edge = chain.edgeStatus.counters()
        let aggregator = chain.aggregatorStatus.counters().filter { ["received", "forwarded", "dropped_by_reason"].contains($0.key) }
        let context = "\(delivery); edge \(edge); aggregator \(aggregator); \(chain.relayDescription)"
        #expect(edge["received"] as? Int == count && edge["forwarded"] as? Int == count && edge["dropped"] as? Int == 0, "\(context)")
        #expect(data.received == count, "the edge sent each log once; \(context)")
        #expect(settled && chain.outputLines.count == data.forwarded, "each datagram sent became one line; \(context)")
        #expect(data.forwarded == count - data.dropped + data.duplicated, "\(context)")
        #expect(delivery.missing >= data.dropped, "what the link dropped is gone: \(context)")
    }

    /// tcp://: a stall loses nothing (TCP holds the bytes); a cut or a reset
    /// loses what the relay had acknowledged but not passed on, and a log
    /// written again after a cut may arrive twice. Lines are never garbled,
    /// the edge reconnects, and only logs offered around a cut or reset are
    /// missing or doubled.
    @Test(.enabled(if: TestNetwork.isAvailable))
    func tcpLosesOnlyAroundCutsAndResets() async throws {
        let count = 36_000
        let rate = 3_000
        let seed = SeededRandom.seed(fallback: 3_231)
        let chain = try await RelayedChain("tcp", scheme: .tcp, seed: seed)
        defer { chain.network.remove() }
        let relay = try #require(chain.tcpRelay)
        let faults: [(at: Duration, TCPFault)] = [(.seconds(2), .stall(.seconds(3))), (.seconds(7), .cut), (.seconds(10), .reset)]
        let start = Date()
        relay.schedule(faults)
        try await chain.offer(prefix: "tcp", count: count, rate: rate)
        let delivery = await chain.awaitDelivery(prefix: "tcp", count: count, within: 10)
        chain.report("tcp \(count) logs at \(rate)/s, stall 3 s at 2 s, cut at 7 s, reset at 10 s", delivery, since: start)
        let (missing, doubled) = chain.missingAndDoubled(prefix: "tcp", count: count)
        let edge = chain.edgeStatus.counters()
        let context = "\(delivery); missing \(missing.prefix(20))…, doubled \(doubled.prefix(20))…; edge \(edge); \(chain.relayDescription)"
        #expect(edge["received"] as? Int == count && edge["dropped"] as? Int == 0, "\(context)")
        #expect(delivery.unexpected == 0, "no garbled line; \(context)")
        #expect(relay.counters.cut >= 1 && relay.counters.reset >= 1 && relay.counters.accepted >= 3, "reconnected; \(context)")
        // A log numbered n was offered at n / rate s; what was in flight at a fault is up to ~2 s of logs before it.
        let cutsAndResets = [7.0, 10.0]
        let nearAFault = { (number: Int) in cutsAndResets.contains { (($0 - 2)...($0 + 1)).contains(Double(number) / Double(rate)) } }
        #expect(missing.allSatisfy(nearAFault), "missing only around a cut or reset; \(context)")
        #expect(doubled.allSatisfy(nearAFault), "doubled only around a cut or reset; \(context)")
    }
}
