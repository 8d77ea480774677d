import NIOCore
import Testing

@testable import FerryCore

struct AckWindowTests {
    private let start = NIODeadline.uptimeNanoseconds(1_000_000_000_000)
    private let timing = AckWindow<String>.Timing(
        ackTimeout: .milliseconds(100), ttl: .seconds(5), margin: .milliseconds(500),
        policy: RetryPolicy(base: .milliseconds(50), cap: .milliseconds(200), maximumAttempts: 3), minimumRTO: .milliseconds(20),
        maximumAge: .seconds(12))

    /// Runs the window from `from` to `to` in 5 ms steps; returns what it asked for.
    private func run(
        _ window: inout AckWindow<String>, from: NIODeadline, to: NIODeadline, seed: UInt64 = 1, mayRetry: () -> Bool = { true },
        each: (inout AckWindow<String>, NIODeadline) -> Void = { _, _ in }
    ) -> (retransmit: [String], repairs: Int, renew: [String], givenUp: [String], stalls: Int, refused: Int) {
        var generator = SplitMix(seed: seed)
        var result: (retransmit: [String], repairs: Int, renew: [String], givenUp: [String], stalls: Int, refused: Int) = ([], 0, [], [], 0, 0)
        var now = from
        while now <= to {
            each(&window, now)
            let step = window.advance(now: now, generator: &generator, mayRetry: { _ in mayRetry() })
            result.retransmit += step.retransmit.compactMap { window.entry($0)?.payload }
            result.repairs += step.repairs
            result.renew += step.renew.compactMap { window.entry($0)?.payload }
            result.givenUp += step.givenUp.map(\.payload)
            result.stalls += step.stalls
            result.refused += step.retriesRefused
            now = now + .milliseconds(5)
        }
        return result
    }

    /// For ``run``: every 500 ms another frame is sent and answered at once.
    private func answerEvery500Milliseconds() -> (inout AckWindow<String>, NIODeadline) -> Void {
        var answered = 0
        let start = self.start
        return { window, now in
            if now >= start + .milliseconds(Int64(answered) * 500) {
                let sequence = window.open("ok\(answered)", now: now)
                _ = window.acknowledge(sequence, now: now)
                answered += 1
            }
        }
    }

    @Test func ackRemovesTheFrameOnce() {
        var window = AckWindow<String>(capacity: 4, timing: timing, firstSequence: 7)
        let sequence = window.open("a", now: start)
        #expect(sequence == 7)
        #expect(window.acknowledge(sequence, now: start)?.payload == "a")
        #expect(window.acknowledge(sequence, now: start) == nil)
        #expect(window.isEmpty)
    }

    @Test func boundedInFramesAndInSequenceSpan() {
        var window = AckWindow<String>(capacity: 2, maximumSpan: 4, timing: timing)
        _ = window.open("a", now: start)
        _ = window.open("b", now: start)
        #expect(!window.hasRoom)
        _ = window.acknowledge(1, now: start)
        #expect(window.hasRoom)
        _ = window.open("c", now: start)  // sequence 2
        _ = window.acknowledge(2, now: start)
        _ = window.open("d", now: start)  // 3
        #expect(!window.hasRoom)  // 2 in flight
        _ = window.acknowledge(3, now: start)
        #expect(!window.hasRoom)  // frame 0 still unacked and next is 4: span 4 reached
    }

    @Test func roomCountsFramesThatMayOpenOneAfterAnother() {
        var window = AckWindow<String>(capacity: 10, maximumSpan: 6, timing: timing)
        #expect(window.room == 6)  // the span, not the capacity, is the limit
        _ = window.open("a", now: start)  // 0
        _ = window.open("b", now: start)  // 1
        #expect(window.room == 4)
        _ = window.acknowledge(1, now: start)
        #expect(window.room == 4)  // frame 0 still holds the span's start
        _ = window.acknowledge(0, now: start)
        #expect(window.room == 6)  // empty again: a full span ahead
    }

    /// Rule 1: the RTO follows the measured round trip; a retransmitted frame's ack gives no sample (Karn).
    @Test func theRetransmissionTimeoutFollowsTheRoundTripOfFramesSentOnce() {
        var window = AckWindow<String>(capacity: 8, timing: timing)
        #expect(window.retransmissionTimeout == .milliseconds(100))  // no sample yet: the ack timeout
        for index in 0..<20 {
            let sent = start + .milliseconds(Int64(index) * 10)
            let sequence = window.open("f\(index)", now: sent)
            _ = window.acknowledge(sequence, now: sent + .milliseconds(4))
        }
        #expect(window.roundTrip.smoothed! < .milliseconds(5))
        #expect(window.retransmissionTimeout == .milliseconds(20))  // the minimum
        let before = window.roundTrip
        let late = window.open("late", now: start + .seconds(1))
        window.update(late) { $0.attempts = 2 }
        _ = window.acknowledge(late, now: start + .seconds(2))
        #expect(window.roundTrip == before)
    }

    /// Rule 2: a frame the receiver did not answer while it answered a later one is sent again at once,
    /// without asking for a retry token, and is not a stall.
    @Test func aLossOnAnAnsweringPathIsRepairedWithoutARetryToken() {
        var window = AckWindow<String>(capacity: 8, timing: timing)
        _ = window.open("lost", now: start)
        let answered = window.open("answered", now: start)
        _ = window.acknowledge(answered, now: start + .milliseconds(2))
        // Its deadline is the RTO at its send (the ack timeout: no sample yet).
        let steps = run(
            &window, from: start, to: start + .milliseconds(100),
            mayRetry: {
                Issue.record("no token is asked for")
                return false
            })
        #expect(steps.retransmit == ["lost"])
        #expect(steps.repairs == 1 && steps.stalls == 0 && steps.refused == 0)
        #expect(window.entry(0)?.attempts == 2)
    }

    /// Rule 3: on a silent path only the oldest frame is sent again, as a probe, on a growing backoff.
    @Test func aSilentPathIsProbedWithItsOldestFrameOnly() {
        var window = AckWindow<String>(capacity: 8, timing: timing)
        for name in ["a", "b", "c"] { _ = window.open(name, now: start) }
        let steps = run(&window, from: start, to: start + .seconds(2))
        #expect(!steps.retransmit.isEmpty)
        #expect(Set(steps.retransmit) == ["a"])
        #expect(steps.retransmit.count <= 2_000 / 50)  // at least the policy's base apart
        #expect(steps.repairs == 0)
    }

    /// Rule 3: probes ask the breaker and budget; a refusal is counted and nothing is sent.
    @Test func refusedProbesWaitAndAreCounted() {
        var window = AckWindow<String>(capacity: 8, timing: timing)
        _ = window.open("a", now: start)
        let steps = run(&window, from: start, to: start + .seconds(1), mayRetry: { false })
        #expect(steps.retransmit.isEmpty)
        #expect(steps.refused > 0)
        #expect(window.entry(0)?.attempts == 1)
    }

    /// Rules 2 and 3: when a silent path answers again, every frame waiting on it goes out at once.
    @Test func whenASilentPathAnswersAgainItsWaitingFramesAreSentAgain() {
        var window = AckWindow<String>(capacity: 8, timing: timing)
        for name in ["a", "b", "c", "d"] { _ = window.open(name, now: start) }
        _ = run(&window, from: start, to: start + .milliseconds(400), mayRetry: { false })
        _ = window.acknowledge(3, now: start + .milliseconds(401))  // "d" answered: the path lives
        let steps = run(&window, from: start + .milliseconds(405), to: start + .milliseconds(410), mayRetry: { false })
        #expect(steps.retransmit.sorted() == ["a", "b", "c"])
        #expect(steps.repairs == 3)
    }

    /// Rule 4: silence is one stall per ack timeout, however many frames wait.
    @Test func stallsAreCountedPerAckTimeoutOfSilenceNotPerFrame() {
        var window = AckWindow<String>(capacity: 64, timing: timing)
        for index in 0..<64 { _ = window.open("f\(index)", now: start) }
        let steps = run(&window, from: start, to: start + .milliseconds(350))
        #expect(steps.stalls == 3)
        #expect(window.stalls == 3)
        _ = window.acknowledge(63, now: start + .milliseconds(351))
        #expect(window.stalls == 0)
        let after = run(&window, from: start + .milliseconds(355), to: start + .milliseconds(440))
        #expect(after.stalls == 0)
    }

    /// Rule 5: a frame whose receiver answers (its own ack lost) keeps its identity at its TTL.
    @Test func aFrameWhoseReceiverAnswersIsRenewedAtItsTTL() {
        var window = AckWindow<String>(capacity: 8, timing: timing)
        _ = window.open("acks lost", now: start)
        // Another frame sent and answered every 500 ms: the path is alive, only this frame's acks are lost.
        let steps = run(&window, from: start, to: start + .milliseconds(9_500), each: answerEvery500Milliseconds())
        #expect(steps.givenUp.isEmpty)
        #expect(steps.renew == ["acks lost"])  // at 5 s
        #expect(window.entry(0)!.expiry == start + .seconds(10))
    }

    /// Rules 5 and 6: renewal stops at the largest age a receiver accepts.
    @Test func renewalStopsAtTheMaximumAge() {
        var window = AckWindow<String>(capacity: 8, timing: timing)
        _ = window.open("old", now: start)
        let steps = run(&window, from: start, to: start + .seconds(14), each: answerEvery500Milliseconds())
        #expect(steps.renew == ["old"])  // at 5 s; at 10 s another TTL would pass 12 s
        #expect(steps.givenUp == ["old"])
    }

    /// Rule 6: on a path silent for a whole TTL the frame is given up, but not before TTL plus margin.
    @Test func aFrameOnASilentPathIsGivenUpAfterItsTTLAndMargin() {
        var window = AckWindow<String>(capacity: 8, timing: timing)
        _ = window.open("a", now: start)
        let early = run(&window, from: start, to: start + .milliseconds(5_495))
        #expect(early.givenUp.isEmpty && early.renew.isEmpty)
        let late = run(&window, from: start + .milliseconds(5_500), to: start + .milliseconds(5_510))
        #expect(late.givenUp == ["a"])
        #expect(window.isEmpty)
    }

    /// New frames go out on a new path; the old path's frames stay on it, are
    /// probed, and are not "repaired" by the new path's answers (another receiver's).
    @Test func framesStayOnTheirPathAndAnotherPathsAnswersDoNotRepairThem() {
        var window = AckWindow<String>(capacity: 8, timing: timing)
        _ = window.open("old", now: start)
        let path = window.switchPath(movingOutstanding: false, now: start)
        #expect(window.entry(0)?.path == 0 && path == 1)
        #expect(window.busyPaths == 1)
        let silent = run(&window, from: start, to: start + .milliseconds(250))
        #expect(silent.stalls == 2)  // silence on every path: the upstream stalls
        let fresh = window.open("new", now: start + .milliseconds(250))
        _ = window.acknowledge(fresh, now: start + .milliseconds(251))  // the new path answers; the old one still does not
        #expect(window.stalls == 0)
        let later = run(&window, from: start + .milliseconds(255), to: start + .milliseconds(600))
        #expect(later.repairs == 0)  // only probed, never "repaired" by another path's answer
        #expect(window.busyPaths == 1)
        _ = window.switchPath(movingOutstanding: true, now: start + .milliseconds(600))
        #expect(window.entry(0)?.path == 0)  // an old path's frames are not moved; only the current path's are
    }

    /// Rule 4: frames left at an earlier address (a name's other address took over) are no stall of the new one.
    @Test func framesLeftAtAnEarlierAddressAreNoStall() {
        var window = AckWindow<String>(capacity: 8, timing: timing)
        _ = window.open("refused", now: start)
        _ = window.switchPath(movingOutstanding: false, newAddress: true, now: start)
        let fresh = window.open("answered", now: start)
        _ = window.acknowledge(fresh, now: start + .milliseconds(1))
        let steps = run(&window, from: start, to: start + .milliseconds(800))
        #expect(steps.stalls == 0)
        _ = window.open("silent", now: start + .milliseconds(800))
        let later = run(&window, from: start + .milliseconds(805), to: start + .milliseconds(1_000))
        #expect(later.stalls == 2)  // a frame to the new address that is not answered is: at 100 and 200 ms
    }

    /// Rule 5: a path whose probes were held back (a partition, an open breaker) keeps its frames' identity
    /// while the upstream answers on another path; a path probed in vain lets them go.
    @Test func aPathNeverProbedIsRenewedWhileOneProbedInVainIsLetGo() {
        for probesAllowed in [false, true] {
            var window = AckWindow<String>(capacity: 8, timing: timing)
            _ = window.open("held", now: start)
            _ = window.switchPath(movingOutstanding: false, now: start)
            var answered = 0
            let steps = run(
                &window, from: start, to: start + .milliseconds(5_600), mayRetry: { probesAllowed },
                each: { window, now in
                    if now >= start + .milliseconds(Int64(answered) * 500) {
                        let sequence = window.open("ok\(answered)", now: now)
                        _ = window.acknowledge(sequence, now: now)
                        answered += 1
                    }
                })
            if probesAllowed {
                #expect(steps.renew.isEmpty && steps.givenUp == ["held"])  // its path was probed and never answered
            } else {
                #expect(steps.renew == ["held"] && steps.givenUp.isEmpty)  // no probe went out: no evidence against it
            }
        }
    }

    /// Rule 3: `mayRetry` hears whether a probe is on the current path, so the
    /// caller can keep a left path's probes from using the half-open permits.
    @Test func aProbeSaysWhetherItIsOnTheCurrentPath() {
        var window = AckWindow<String>(capacity: 8, timing: timing)
        _ = window.open("left behind", now: start)
        _ = window.switchPath(movingOutstanding: false, now: start)
        _ = window.open("on the new path", now: start)
        var asked: [Bool] = []
        var generator = SplitMix(seed: 1)
        var now = start
        while now < start + .seconds(1) {
            let step = window.advance(now: now, generator: &generator) { onCurrentPath in
                asked.append(onCurrentPath)
                return !onCurrentPath  // only the left path's probes may go
            }
            #expect(!step.retransmit.contains(1), "the current path's probe was refused")
            now = now + .milliseconds(5)
        }
        #expect(asked.contains(false) && asked.contains(true))
        #expect(window.entry(0)!.attempts > 1 && window.entry(1)!.attempts == 1)
    }
}
