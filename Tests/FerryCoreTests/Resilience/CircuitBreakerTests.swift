import NIOCore
import Testing

@testable import FerryCore

struct CircuitBreakerTests {
    private let start = NIODeadline.uptimeNanoseconds(1_000_000_000_000)

    private func configuration() -> CircuitBreaker.Configuration {
        var configuration = CircuitBreaker.Configuration()
        configuration.window = 10
        configuration.minimumCalls = 6
        configuration.consecutiveFailures = 4
        configuration.failureRateThreshold = 0.5
        configuration.openDuration = .seconds(1)
        configuration.maximumOpenDuration = .seconds(4)
        configuration.halfOpenProbes = 2
        configuration.stableAfter = .seconds(30)
        return configuration
    }

    @Test func opensAfterConsecutiveFailures() {
        var breaker = CircuitBreaker(configuration: configuration())
        for _ in 0..<3 { #expect(breaker.record(success: false, now: start) == nil) }
        let transition = breaker.record(success: false, now: start)
        #expect(transition?.to == .open)
        #expect(transition?.reason.contains("consecutive") == true)
        #expect(breaker.state == .open)
    }

    @Test func opensOnFailureRateOnlyOnceMinimumCallsAreSeen() {
        var breaker = CircuitBreaker(configuration: configuration())
        // success, failure alternating: never 4 in a row; rate 50% reached at call 6.
        var opened: CircuitBreaker.Transition?
        var calls = 0
        for index in 0..<10 where opened == nil {
            opened = breaker.record(success: index % 2 == 0, now: start)
            calls += 1
        }
        #expect(opened?.to == .open)
        #expect(calls == 6)
        #expect(opened?.reason.contains("failure rate 50%") == true)
    }

    @Test func belowTheThresholdStaysClosed() {
        var breaker = CircuitBreaker(configuration: configuration())
        for index in 0..<100 {
            #expect(breaker.record(success: index % 3 != 0, now: start) == nil)  // 33% failures
        }
        #expect(breaker.state == .closed)
    }

    @Test func openRefusesUntilTheWaitIsOverThenProbesLimited() {
        var breaker = CircuitBreaker(configuration: configuration())
        for _ in 0..<4 { _ = breaker.record(success: false, now: start) }
        #expect(breaker.acquire(now: start + .milliseconds(999)).allowed == false)
        let (allowed, transition) = breaker.acquire(now: start + .seconds(1))
        #expect(allowed)
        #expect(transition?.to == .halfOpen)
        #expect(breaker.acquire(now: start + .seconds(1)).allowed)  // second probe
        #expect(breaker.acquire(now: start + .seconds(1)).allowed == false)  // only two probes
        #expect(breaker.record(success: true, now: start + .seconds(1)) == nil)
        let closed = breaker.record(success: true, now: start + .seconds(1))
        #expect(closed?.to == .closed)
        #expect(breaker.acquire(now: start + .seconds(1)).allowed)
    }

    @Test func aFailedProbeReopensWithADoubledWaitUpToTheCap() {
        var breaker = CircuitBreaker(configuration: configuration())
        var now = start
        for _ in 0..<4 { _ = breaker.record(success: false, now: now) }
        var waits: [TimeAmount] = []
        for _ in 0..<5 {
            // Find when the breaker lets a probe through, in 100 ms steps.
            let openedAt = now
            while !breaker.acquire(now: now).allowed { now = now + .milliseconds(100) }
            waits.append(now - openedAt)
            #expect(breaker.record(success: false, now: now)?.to == .open)
        }
        #expect(waits == [.seconds(1), .seconds(2), .seconds(4), .seconds(4), .seconds(4)])
        #expect(breaker.trips == 6)
    }

    @Test func tripsResetAfterAStablePeriodClosed() {
        var breaker = CircuitBreaker(configuration: configuration())
        for _ in 0..<4 { _ = breaker.record(success: false, now: start) }
        _ = breaker.acquire(now: start + .seconds(1))
        _ = breaker.acquire(now: start + .seconds(1))
        _ = breaker.record(success: true, now: start + .seconds(1))
        #expect(breaker.record(success: true, now: start + .seconds(1))?.to == .closed)
        #expect(breaker.trips == 1)
        _ = breaker.record(success: true, now: start + .seconds(40))
        #expect(breaker.trips == 0)
        for _ in 0..<4 { _ = breaker.record(success: false, now: start + .seconds(40)) }
        #expect(breaker.acquire(now: start + .seconds(41)).allowed)  // back to the 1 s wait
    }

    @Test func lateOutcomesWhileOpenAreIgnored() {
        var breaker = CircuitBreaker(configuration: configuration())
        for _ in 0..<4 { _ = breaker.record(success: false, now: start) }
        #expect(breaker.record(success: true, now: start) == nil)
        #expect(breaker.state == .open)
    }

    /// A new path cuts a long open wait to the base wait, a bounded number of
    /// times between closings; after that the waits grow again.
    @Test func aNewPathIsProbedSoonButOnlyAFewTimesBetweenClosings() {
        var config = configuration()
        config.maximumOpenDuration = .seconds(30)
        config.freshPathProbes = 2
        var breaker = CircuitBreaker(configuration: config)
        var now = start
        for _ in 0..<4 { _ = breaker.record(success: false, now: now) }
        for trip in 2...4 {  // open waits of 2, 4, 8 s
            now = now + breaker.openDuration(trips: trip - 1)
            #expect(breaker.allowsTraffic(now: now).allowed)
            #expect(breaker.record(success: false, now: now)?.reason == "probe failed")
        }
        #expect(breaker.trips == 4 && !breaker.allowsTraffic(now: now + .seconds(7)).allowed)
        breaker.newPath(now: now)
        #expect(breaker.allowsTraffic(now: now + .seconds(1)).allowed)  // the base wait, not 8 s
        #expect(breaker.record(success: false, now: now + .seconds(1))?.to == .open)
        now = now + .seconds(1)
        breaker.newPath(now: now)
        #expect(breaker.allowsTraffic(now: now + .seconds(1)).allowed)
        #expect(breaker.record(success: false, now: now + .seconds(1))?.to == .open)
        now = now + .seconds(1)
        breaker.newPath(now: now)  // the third since the last closing: no longer shortened
        #expect(!breaker.allowsTraffic(now: now + .seconds(1)).allowed)
        #expect(breaker.allowsTraffic(now: now + .seconds(30)).allowed)
        for _ in 0..<config.halfOpenProbes { _ = breaker.record(success: true, now: now + .seconds(30)) }
        #expect(breaker.state == .closed)
        now = now + .seconds(30)
        for _ in 0..<4 { _ = breaker.record(success: false, now: now) }
        breaker.newPath(now: now)  // closed in between: new paths shorten again
        #expect(breaker.allowsTraffic(now: now + .seconds(1)).allowed)
    }

    /// A new path does nothing to a closed breaker.
    @Test func aNewPathLeavesAClosedBreakerAlone() {
        var breaker = CircuitBreaker(configuration: configuration())
        breaker.newPath(now: start)
        #expect(breaker.state == .closed)
        for _ in 0..<4 { _ = breaker.record(success: false, now: start) }
        #expect(!breaker.allowsTraffic(now: start + .milliseconds(999)).allowed)
    }
}
