import FerryTestSupport
import Foundation
import Testing

/// `ferry://` exactly once over a bad link: 20 % loss, 5 % duplication,
/// reordering within 50 ms and 1 % flipped bits each way, and two 5 s
/// partitions, at 3,000 logs/s, with and without keys and the spool.
///
/// Every log arrives once within 30 s after the last partition; every
/// datagram the relay corrupted is refused by the aggregator (`malformed`, or
/// `unauthenticated` when keyed); the edge's breaker opens during each
/// partition, never on loss alone, and is closed again at the end.
@Suite("ferry:// over a chaotic link", .serialized, .timeLimit(.minutes(3)))
struct ChaoticLinkTests {
    static let chaos = Impairment(loss: 0.2, duplication: 0.05, reorder: 0.3, reorderWindow: .milliseconds(50), bitFlip: 0.01)
    /// Relative to the first send: 45,000 logs at 3,000/s take 15 s.
    static let partitions = [ScheduledPartition(at: .seconds(3), for: .seconds(5)), ScheduledPartition(at: .seconds(9), for: .seconds(5))]

    @Test(.enabled(if: TestNetwork.isAvailable))
    func everyLogOnceWithoutKeysOrSpool() async throws {
        try await run("chaos", keys: false, spool: false, seed: SeededRandom.seed(fallback: 3_220))
    }

    @Test(.enabled(if: TestNetwork.isAvailable))
    func everyLogOnceWithKeysAndSpool() async throws {
        try await run("chaosks", keys: true, spool: true, seed: SeededRandom.seed(fallback: 3_221))
    }

    private func run(_ prefix: String, keys: Bool, spool: Bool, seed: UInt64) async throws {
        let count = 45_000
        let chain = try await RelayedChain(prefix, data: Self.chaos, acks: Self.chaos, seed: seed, keys: keys, spool: spool)
        defer { chain.network.remove() }
        let relay = try #require(chain.udpRelay)
        let start = Date()
        relay.schedule(Self.partitions)
        try await chain.offer(prefix: prefix, count: count, rate: 3_000)
        let lastPartitionEnd = Self.partitions.map { Double($0.end.components.seconds) }.max()!
        let left = max(1, lastPartitionEnd + 30 - Date().timeIntervalSince(start))
        let delivery = await chain.awaitDelivery(prefix: prefix, count: count, within: left)
        chain.report("\(prefix) \(count) logs at 3000/s, chaos, keys \(keys), spool \(spool)", delivery, since: start)
        let context = "\(delivery); \(chain.relayDescription)"
        #expect(chain.edgeStatus.counters()["received"] as? Int == count, "the edge took every offered log; \(context)")
        #expect(delivery.missing == 0, "every log within 30 s after the last partition; \(context)")
        #expect(delivery.duplicated == 0, "none twice; \(context)")
        #expect(delivery.unexpected == 0, "no corrupted datagram delivered as a log; \(context)")

        // Each corrupted copy the relay sent toward the aggregator is refused there, counted.
        let outcomes = chain.aggregatorStatus.counters()["frames_received_by_outcome"] as? [String: Int] ?? [:]
        let refused = outcomes["malformed", default: 0] + outcomes["unauthenticated", default: 0]
        #expect(refused == relay.counters(.data).flipped, "refused \(outcomes); \(context)")

        // The breaker: not closed during each partition (an upstream that makes no progress); never opened by
        // loss alone, that is before the first partition or once it closed after one; closed at the end. Right after a
        // partition, while it is still open or half-open, a probe lost to the 20 % loss may open it again: that is recovery.
        let transitions = chain.breakerTransitions(since: start)
        let windows = Self.partitions.map { (Double($0.start.components.seconds), Double($0.end.components.seconds) + 1) }
        func state(at time: Double) -> String { transitions.last { $0.at <= time }?.to ?? "closed" }
        for (from, to) in windows {
            let notClosed = state(at: from) != "closed" || transitions.contains { $0.to == "open" && (from...to).contains($0.at) }
            #expect(notClosed, "open in \(from)…\(to) s: \(transitions)")
        }
        let lossAlone = transitions.filter { transition in
            guard transition.to == "open", !windows.contains(where: { ($0.0...$0.1).contains(transition.at) }) else { return false }
            let partitionBefore = windows.last { $0.0 <= transition.at }
            guard let partitionBefore else { return true }  // before the first partition
            // Closed again after that partition, before this opening: loss alone opened it.
            return transitions.contains { $0.to == "closed" && $0.at > partitionBefore.1 && $0.at < transition.at }
        }
        #expect(lossAlone.isEmpty, "opened by loss alone: \(lossAlone); \(transitions); \(context)")
        #expect(transitions.last?.to == "closed", "closed at the end: \(transitions)")
        await chain.stop()
    }
}
