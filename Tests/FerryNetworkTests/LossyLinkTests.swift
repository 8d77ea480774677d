import FerryTestSupport
import Foundation
import Testing

/// `ferry://` from an edge to an aggregator over a link that loses datagrams
/// (each way, nothing else): loss is not failure. Every log arrives once,
/// within 10 s of the last send, and the breaker never opens, because a lost
/// datagram is retransmitted inside the window, not taken for a dead upstream.
@Suite("ferry:// over a lossy link", .serialized, .timeLimit(.minutes(2)))
struct LossyLinkTests {
    /// No impairment: 60,000 logs at 3,000/s arrive exactly once (the bed itself loses nothing).
    @Test(.enabled(if: TestNetwork.isAvailable))
    func aCleanLinkDeliversEveryLogOnce() async throws {
        try await run("clean", loss: 0, count: 60_000, rate: 3_000, seed: SeededRandom.seed(fallback: 3_200))
    }

    /// 2 % loss each way, 100,000 logs at 20,000/s.
    @Test(.enabled(if: TestNetwork.isAvailable))
    func twoPercentLossEachWayKeepsUp() async throws {
        try await run("loss2", loss: 0.02, count: 100_000, rate: 20_000, seed: SeededRandom.seed(fallback: 3_202))
    }

    /// 2 % loss each way at 3,000/s, 60,000 logs: frames leave short (a read
    /// burst each), so there are many more of them, and more lost, per log.
    @Test(.enabled(if: TestNetwork.isAvailable))
    func twoPercentLossEachWayAtAFewThousandASecond() async throws {
        try await run("loss2s", loss: 0.02, count: 60_000, rate: 3_000, seed: SeededRandom.seed(fallback: 3_203))
    }

    /// 5 % loss each way, 100,000 logs at 20,000/s.
    @Test(.enabled(if: TestNetwork.isAvailable))
    func fivePercentLossEachWayKeepsUp() async throws {
        try await run("loss5", loss: 0.05, count: 100_000, rate: 20_000, seed: SeededRandom.seed(fallback: 3_205))
    }

    private func run(_ prefix: String, loss: Double, count: Int, rate: Int, seed: UInt64) async throws {
        let lossy = Impairment(loss: loss)
        let chain = try await RelayedChain(prefix, data: lossy, acks: lossy, seed: seed)
        defer { chain.network.remove() }
        let start = Date()
        try await chain.offer(prefix: prefix, count: count, rate: rate)
        let delivery = await chain.awaitDelivery(prefix: prefix, count: count, within: 10)
        chain.report("\(prefix) \(count) logs at \(rate)/s, loss \(loss) each way", delivery, since: start)
        let context = "\(delivery); \(chain.relayDescription)"
        #expect(chain.edgeStatus.counters()["received"] as? Int == count, "the edge took every offered log; \(context)")
        #expect(delivery.missing == 0 && delivery.completeAfter != nil, "all within 10 s of the last send; \(context)")
        #expect(delivery.duplicated == 0, "none twice; \(context)")
        #expect(delivery.unexpected == 0, "\(context)")
        let opens = chain.breakerTransitions(since: start).filter { $0.to == "open" }
        #expect(opens.isEmpty, "loss alone never opens the breaker: \(opens); \(context)")
        await chain.stop()
    }
}
