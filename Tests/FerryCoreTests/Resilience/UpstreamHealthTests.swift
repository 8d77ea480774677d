import NIOCore
import Testing

@testable import FerryCore

/// Every trip-and-move rule of ``UpstreamHealth``, over an injected clock.
struct UpstreamHealthTests {
    private let start = NIODeadline.uptimeNanoseconds(1_000_000_000_000)
    private let first = try! SocketAddress(ipAddress: "127.0.0.2", port: 5514)
    private let second = try! SocketAddress(ipAddress: "127.0.0.3", port: 5514)
    private let third = try! SocketAddress(ipAddress: "127.0.0.4", port: 5514)

    private func health(_ addresses: [SocketAddress], host: String? = "agg.test") -> UpstreamHealth {
        var breaker = CircuitBreaker.Configuration()
        breaker.consecutiveFailures = 3
        breaker.minimumCalls = 100
        breaker.openDuration = .seconds(1)
        breaker.halfOpenProbes = 1
        var health = UpstreamHealth(breaker: breaker, host: host)
        health.setInitialAddresses(addresses, now: start)
        return health
    }

    /// Fails until the breaker trips; returns the actions of the failure that tripped it.
    private func trip(_ health: inout UpstreamHealth, at now: NIODeadline, fromCurrentAddress: Bool = true) -> [UpstreamHealth.Action] {
        for _ in 0..<2 { #expect(health.record(success: false, fromCurrentAddress: fromCurrentAddress, now: now).isEmpty) }
        return health.record(success: false, fromCurrentAddress: fromCurrentAddress, now: now)
    }

    private func repoints(_ actions: [UpstreamHealth.Action]) -> [SocketAddress] {
        actions.compactMap { if case .repoint(_, let new, _) = $0 { return new } else { return nil } }
    }

    private func transitions(_ actions: [UpstreamHealth.Action]) -> [CircuitBreaker.State] {
        actions.compactMap { if case .transition(let transition) = $0 { return transition.to } else { return nil } }
    }

    /// Rule 1: a trip with an untried address moves to it and closes the breaker in the same step.
    @Test func aTripMovesToTheNextAddressWithAClosedBreaker() {
        var health = health([first, second])
        let actions = trip(&health, at: start)
        #expect(repoints(actions) == [second])
        #expect(transitions(actions) == [.open, .closed])
        #expect(health.breaker.state == .closed)
        #expect(health.current == second)
        #expect(health.addressGeneration == 2)
    }

    /// Rule 3: once every address was tried, the breaker stays open and a resolution is asked for.
    @Test func whenEveryAddressWasTriedTheBreakerStaysOpen() {
        var health = health([first, second, third])
        #expect(repoints(trip(&health, at: start)) == [second])
        #expect(repoints(trip(&health, at: start)) == [third])
        let last = trip(&health, at: start)
        #expect(repoints(last).isEmpty)
        #expect(transitions(last) == [.open])
        #expect(health.breaker.state == .open)
        #expect(health.current == third)
        #expect(health.needsResolution(interval: .hours(1), now: start))
        #expect(!health.allowsTraffic(now: start).allowed)
    }

    /// Rule 4: a success makes every address untried again.
    @Test func aSuccessMakesEveryAddressUntriedAgain() {
        var health = health([first, second])
        #expect(repoints(trip(&health, at: start)) == [second])
        #expect(health.record(success: true, now: start).isEmpty)
        #expect(repoints(trip(&health, at: start)) == [first])  // round again, not open
        #expect(health.breaker.state == .closed)
    }

    /// Rule 2: a refused send moves at once; with one address it does nothing.
    @Test func aRefusedSendMovesAtOnceIfThereIsAnotherAddress() {
        var health = health([first, second])
        let actions = health.addressRefused(now: start)
        #expect(repoints(actions) == [second])
        if case .repoint(_, _, let reason) = actions.first { #expect(reason == .refused) }
        #expect(health.addressRefused(now: start).isEmpty)  // the second was the last untried one
        var single = self.health([first])
        #expect(single.addressRefused(now: start).isEmpty)
        #expect(single.current == first)
    }

    /// Rule 5: outcomes from an address already left do not count against the new one.
    @Test func outcomesFromAnAddressAlreadyLeftAreNotHeldAgainstTheNewOne() {
        var health = health([first])
        #expect(trip(&health, at: start, fromCurrentAddress: false).isEmpty)
        #expect(health.breaker.state == .closed)
    }

    /// A single address: the trip opens the breaker; after the open wait a probe
    /// goes half-open, and its success closes it.
    @Test func aSingleAddressOpensThenProbesThenCloses() {
        var health = health([first])
        #expect(transitions(trip(&health, at: start)) == [.open])
        #expect(!health.acquire(now: start + .milliseconds(500)).allowed)
        let probe = health.acquire(now: start + .seconds(1))  // a mutating call, outside #expect
        #expect(probe.allowed && transitions(probe.actions) == [.halfOpen])
        #expect(transitions(health.record(success: true, now: start + .seconds(1))) == [.closed])
    }

    /// Rule 6: a resolution without the current address moves to its first one;
    /// one that still has it changes nothing; a failure keeps the last good address once.
    @Test func resolutionsMoveOnlyWhenTheCurrentAddressIsGone() {
        var health = health([first, second])
        #expect(health.apply(resolved: [second, first], now: start).isEmpty)
        #expect(health.current == first && health.addresses == [second, first])
        let moved = health.apply(resolved: [third], now: start)
        #expect(repoints(moved) == [third])
        if case .repoint(let old, _, let reason) = moved.first {
            #expect(old == first && reason == .resolvedElsewhere)
        }
        let failing = health.apply(resolved: nil, error: "no such host", now: start)
        #expect(failing == [.resolutionFailing(error: "no such host", kept: third)])
        #expect(health.apply(resolved: nil, error: "no such host", now: start).isEmpty)  // said once
        #expect(health.current == third)
        #expect(health.resolutionNote?.contains("keeping the last good address") == true)
        #expect(health.apply(resolved: [third], now: start) == [.resolutionRecovered])
        #expect(health.resolutionNote == nil)
    }

    /// A name that never resolved is retried every second; a resolved one at the interval.
    @Test func resolutionIsDueAtTheIntervalOrEverySecondWithoutAnAddress() {
        var unresolved = UpstreamHealth(host: "late.test")
        unresolved.setInitialAddresses([], now: start)
        #expect(!unresolved.needsResolution(interval: .seconds(30), now: start + .milliseconds(900)))
        #expect(unresolved.needsResolution(interval: .seconds(30), now: start + .seconds(1)))
        var resolved = health([first])
        #expect(!resolved.needsResolution(interval: .seconds(30), now: start + .seconds(29)))
        #expect(resolved.needsResolution(interval: .seconds(30), now: start + .seconds(30)))
        _ = resolved.apply(resolved: [first], now: start + .seconds(30))
        #expect(!resolved.needsResolution(interval: .seconds(30), now: start + .seconds(31)))
        let literal = health([first], host: nil)
        #expect(!literal.needsResolution(interval: .seconds(1), now: start + .hours(1)))
    }

    /// The budget is part of the same state: retries beyond it are refused.
    @Test func retriesAreBoundedByTheBudget() {
        var health = health([first])
        var allowed = 0
        for _ in 0..<100 where health.tryRetry(now: start) { allowed += 1 }
        #expect(allowed == Int(RetryBudget.Configuration().burst))
        health.recordFirstAttempts(50, now: start)
        let refilled = health.tryRetry(now: start)
        #expect(refilled)
    }
}
