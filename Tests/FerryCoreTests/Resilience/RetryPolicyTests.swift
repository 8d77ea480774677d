import NIOCore
import Testing

@testable import FerryCore

struct RetryPolicyTests {
    @Test func fullJitterStaysWithinTheExponentialCeilingOverManyDraws() {
        let policy = RetryPolicy(base: .milliseconds(100), cap: .seconds(2), maximumAttempts: 8)
        var generator = SplitMix(seed: 42)
        for retry in 1...8 {
            let ceiling = policy.ceiling(forRetry: retry)
            #expect(ceiling == min(.milliseconds(100 << (retry - 1)), .seconds(2)))
            var total: Int64 = 0
            var maximum = TimeAmount.zero
            for _ in 0..<5_000 {
                let delay = policy.delay(forRetry: retry, using: &generator)
                #expect(delay >= .zero && delay <= ceiling)
                total += delay.nanoseconds
                maximum = max(maximum, delay)
            }
            // Full jitter is uniform: the mean is about half the ceiling and draws reach near it.
            let mean = Double(total) / 5_000
            #expect(abs(mean / Double(ceiling.nanoseconds) - 0.5) < 0.05)
            #expect(Double(maximum.nanoseconds) > 0.95 * Double(ceiling.nanoseconds))
        }
    }

    @Test func attemptsAreBounded() {
        let policy = RetryPolicy(maximumAttempts: 3)
        #expect(policy.allowsRetry(afterAttempts: 2))
        #expect(!policy.allowsRetry(afterAttempts: 3))
    }

    @Test func hugeRetryNumbersDoNotOverflow() {
        let policy = RetryPolicy(base: .seconds(1), cap: .seconds(30), maximumAttempts: 1_000)
        #expect(policy.ceiling(forRetry: 900) == .seconds(30))
    }
}

struct RetryBudgetTests {
    private let start = NIODeadline.uptimeNanoseconds(1_000_000_000_000)

    @Test func aSustainedOutageStaysWithinRatioPlusFloor() {
        let configuration = RetryBudget.Configuration(ratio: 0.2, floorPerSecond: 5, burst: 10)
        var budget = RetryBudget(configuration: configuration)
        // 60 s of outage: 100 first attempts per second, and a retry wanted for every one of them.
        var allowed = 0
        for millisecond in stride(from: 0, to: 60_000, by: 10) {
            let now = start + .milliseconds(Int64(millisecond))
            budget.recordFirstAttempts(1, now: now)
            if budget.tryRetry(now: now) { allowed += 1 }
        }
        let bound = 10 + 0.2 * 6_000 + 5 * 60
        #expect(Double(allowed) <= bound)
        #expect(Double(allowed) > bound * 0.9)  // and the budget is actually usable
        #expect(budget.exhausted == 6_000 - allowed)
    }

    @Test func withoutTrafficOnlyTheFloorRefills() {
        var budget = RetryBudget(configuration: .init(ratio: 0.2, floorPerSecond: 2, burst: 3))
        var allowed = 0
        for _ in 0..<10 where budget.tryRetry(now: start) { allowed += 1 }
        #expect(allowed == 3)  // the burst
        let early = budget.tryRetry(now: start + .milliseconds(400))
        #expect(!early)
        let refilled = budget.tryRetry(now: start + .milliseconds(500))
        #expect(refilled)  // 2/s → one token after 0.5 s
    }
}
