import NIOCore
import Testing

@testable import FerryCore

struct AckWindowTests {
    private let start = NIODeadline.uptimeNanoseconds(1_000_000_000_000)
    private let timing = AckWindow<String>.Timing(
        ackTimeout: .milliseconds(100), ttl: .seconds(5), margin: .milliseconds(500),
        policy: RetryPolicy(base: .milliseconds(50), cap: .milliseconds(200), maximumAttempts: 3))

    @Test func ackRemovesTheFrameOnce() {
        var window = AckWindow<String>(capacity: 4, timing: timing, firstSequence: 7)
        let sequence = window.open("a", now: start)
        #expect(sequence == 7)
        #expect(window.acknowledge(sequence)?.payload == "a")
        #expect(window.acknowledge(sequence) == nil)
        #expect(window.isEmpty)
    }

    @Test func boundedInFramesAndInSequenceSpan() {
        var window = AckWindow<String>(capacity: 2, maximumSpan: 4, timing: timing)
        _ = window.open("a", now: start)
        _ = window.open("b", now: start)
        #expect(!window.hasRoom)
        _ = window.acknowledge(1)
        #expect(window.hasRoom)
        _ = window.open("c", now: start)  // sequence 2
        _ = window.acknowledge(2)
        _ = window.open("d", now: start)  // 3
        #expect(!window.hasRoom)  // 2 in flight
        _ = window.acknowledge(3)
        #expect(!window.hasRoom)  // frame 0 still unacked and next is 4: span 4 reached
    }

    @Test func roomCountsFramesThatMayOpenOneAfterAnother() {
        var window = AckWindow<String>(capacity: 10, maximumSpan: 6, timing: timing)
        #expect(window.room == 6)  // the span, not the capacity, is the limit
        _ = window.open("a", now: start)  // 0
        _ = window.open("b", now: start)  // 1
        #expect(window.room == 4)
        _ = window.acknowledge(1)
        #expect(window.room == 4)  // frame 0 still holds the span's start
        _ = window.acknowledge(0)
        #expect(window.room == 6)  // empty again: a full span ahead
        var small = AckWindow<String>(capacity: 2, timing: timing)
        _ = small.open("x", now: start)
        #expect(small.room == 1)
        _ = small.open("y", now: start)
        #expect(small.room == 0 && !small.hasRoom)
    }

    @Test func timeoutBackoffRetransmitThenGiveUpAfterTheTimeToLive() {
        var window = AckWindow<String>(capacity: 4, timing: timing)
        var generator = SplitMix(seed: 1)
        let sequence = window.open("a", now: start)
        var now = start + .milliseconds(99)
        #expect(window.advance(now: now, generator: &generator, mayRetry: { true }).timeouts.isEmpty)
        now = start + .milliseconds(100)
        let first = window.advance(now: now, generator: &generator, mayRetry: { true })
        #expect(first.timeouts == [sequence])
        #expect(window.entry(sequence)?.phase == .backingOff)
        #expect(window.entry(sequence)!.deadline <= now + .milliseconds(50))  // retry 1: ceiling 50 ms

        var retransmits = 0
        var givenUp: [AckWindow<String>.Entry] = []
        while givenUp.isEmpty, now < start + .seconds(10) {
            now = now + .milliseconds(10)
            let step = window.advance(now: now, generator: &generator, mayRetry: { true })
            retransmits += step.retransmit.count
            givenUp += step.givenUp
        }
        #expect(retransmits == 2)  // three attempts in all
        #expect(givenUp.map(\.payload) == ["a"])
        // Not before the time-to-live plus the margin: receivers would still take it.
        #expect(now >= start + .seconds(5) + .milliseconds(500))
        #expect(window.isEmpty)
    }

    @Test func refusedRetriesWaitAndAreCounted() {
        var window = AckWindow<String>(capacity: 4, timing: timing)
        var generator = SplitMix(seed: 2)
        let sequence = window.open("a", now: start)
        var now = start + .milliseconds(100)
        _ = window.advance(now: now, generator: &generator, mayRetry: { false })
        var refused = 0
        for _ in 0..<20 {
            now = now + .milliseconds(60)
            let step = window.advance(now: now, generator: &generator, mayRetry: { false })
            refused += step.retriesRefused
            #expect(step.retransmit.isEmpty)
        }
        #expect(refused > 0)
        #expect(window.entry(sequence)?.attempts == 1)
    }
}
