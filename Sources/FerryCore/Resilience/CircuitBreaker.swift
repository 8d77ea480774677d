import NIOCore

/// A circuit breaker for one upstream: closed, open or half-open.
///
/// A pure state machine over an injected clock: callers pass `now` and carry
/// out what it decides, so every rule is testable without sockets or sleeps.
///
/// - **Closed**: everything goes through. It opens when the failure rate over
///   the last `window` outcomes reaches `failureRateThreshold` (once at least
///   `minimumCalls` were seen), or after `consecutiveFailures` failures in a row.
/// - **Open**: nothing goes through for `openDuration(trips)`, which doubles
///   with each trip (up to `maximumOpenDuration`); trips reset after the
///   breaker has stayed closed for `stableAfter`.
/// - **Half-open**: up to `halfOpenProbes` calls go through; that many
///   successes close it, any failure opens it again.
/// - **A new path** (a sender moving to a new source port, which behind a
///   Service may reach another receiver) cuts a longer open wait to
///   `openDuration`, at most `freshPathProbes` times between closings: the
///   new path is probed soon, while a dead upstream's waits still grow.
public struct CircuitBreaker: Sendable {
    public struct Configuration: Sendable, Equatable {
        public var failureRateThreshold = 0.5
        public var window = 20
        public var minimumCalls = 10
        public var consecutiveFailures = 5
        public var openDuration = TimeAmount.seconds(1)
        public var maximumOpenDuration = TimeAmount.seconds(30)
        public var halfOpenProbes = 3
        public var stableAfter = TimeAmount.seconds(30)
        public var freshPathProbes = 8

        public init() {}
    }

    public enum State: String, Sendable, CaseIterable, Codable {
        case closed
        case open
        case halfOpen = "half_open"
    }

    /// A change of state, with the rule that caused it.
    public struct Transition: Sendable, Equatable {
        public var from: State
        public var to: State
        public var reason: String
    }

    public let configuration: Configuration
    public private(set) var state: State = .closed
    public private(set) var trips = 0
    private var outcomes: [Bool]  // ring of the last `window` outcomes; true = failure
    private var outcomeIndex = 0
    private var outcomeCount = 0
    private var failuresInWindow = 0
    private var consecutive = 0
    private var openUntil = NIODeadline.uptimeNanoseconds(0)
    private var probesInFlight = 0
    private var probeSuccesses = 0
    private var closedSince = NIODeadline.uptimeNanoseconds(0)
    private var freshPaths = 0

    public init(configuration: Configuration = .init()) {
        self.configuration = configuration
        self.outcomes = Array(repeating: false, count: max(configuration.window, 1))
    }

    /// Failure rate over the sliding window (0 when empty).
    public var failureRate: Double {
        outcomeCount == 0 ? 0 : Double(failuresInWindow) / Double(outcomeCount)
    }

    /// How long the breaker stays open after its `trips`-th trip.
    public func openDuration(trips: Int) -> TimeAmount {
        let doublings = min(max(trips - 1, 0), 20)
        let nanos = configuration.openDuration.nanoseconds.multipliedReportingOverflow(by: Int64(1) << doublings)
        return nanos.overflow ? configuration.maximumOpenDuration : min(.nanoseconds(nanos.partialValue), configuration.maximumOpenDuration)
    }

    /// Whether a call may go out now, without taking a probe permit. Moves an
    /// open breaker whose wait is over to half-open.
    public mutating func allowsTraffic(now: NIODeadline) -> (allowed: Bool, transition: Transition?) {
        switch state {
        case .closed:
            return (true, nil)
        case .open:
            guard now >= openUntil else { return (false, nil) }
            let transition = move(to: .halfOpen, reason: "open wait over, probing", now: now)
            return (true, transition)
        case .halfOpen:
            return (probesInFlight < configuration.halfOpenProbes, nil)
        }
    }

    /// Takes permission for one call; in half-open this uses a probe permit.
    public mutating func acquire(now: NIODeadline) -> (allowed: Bool, transition: Transition?) {
        let (allowed, transition) = allowsTraffic(now: now)
        if allowed, state == .halfOpen {
            probesInFlight += 1
        }
        return (allowed, transition)
    }

    /// Gives back a half-open probe permit whose call ended without an outcome
    /// (a frame given up after its TTL: the silence was already counted).
    public mutating func releaseProbe() {
        if state == .halfOpen { probesInFlight = max(probesInFlight - 1, 0) }
    }

    /// Closes the breaker at once, for a reason outside its own rules (the
    /// upstream moved to another address, which deserves a fresh start).
    public mutating func reset(reason: String, now: NIODeadline) -> Transition? {
        guard state != .closed else { return nil }
        return move(to: .closed, reason: reason, now: now)
    }

    /// A sender moved to a new path while the breaker is open: a longer open
    /// wait is cut to `openDuration`, at most `freshPathProbes` times between closings.
    public mutating func newPath(now: NIODeadline) {
        guard state == .open, freshPaths < configuration.freshPathProbes else { return }
        freshPaths += 1
        openUntil = min(openUntil, now + configuration.openDuration)
    }

    /// Records the outcome of one call.
    public mutating func record(success: Bool, now: NIODeadline) -> Transition? {
        switch state {
        case .closed:
            if trips > 0, now - closedSince >= configuration.stableAfter {
                trips = 0
            }
            push(failure: !success)
            consecutive = success ? 0 : consecutive + 1
            if !success, consecutive >= configuration.consecutiveFailures {
                return trip(reason: "\(consecutive) consecutive failures", now: now)
            }
            if !success, outcomeCount >= configuration.minimumCalls, failureRate >= configuration.failureRateThreshold {
                let percent = Int((failureRate * 100).rounded())
                return trip(reason: "failure rate \(percent)% over the last \(outcomeCount) calls", now: now)
            }
            return nil
        case .open:
            return nil  // a late outcome of a call sent before the trip
        case .halfOpen:
            probesInFlight = max(probesInFlight - 1, 0)
            if !success {
                return trip(reason: "probe failed", now: now)
            }
            probeSuccesses += 1
            if probeSuccesses >= configuration.halfOpenProbes {
                return move(to: .closed, reason: "\(probeSuccesses) probes succeeded", now: now)
            }
            return nil
        }
    }

    private mutating func push(failure: Bool) {
        if outcomeCount == outcomes.count {
            if outcomes[outcomeIndex] { failuresInWindow -= 1 }
        } else {
            outcomeCount += 1
        }
        outcomes[outcomeIndex] = failure
        if failure { failuresInWindow += 1 }
        outcomeIndex = (outcomeIndex + 1) % outcomes.count
    }

    private mutating func trip(reason: String, now: NIODeadline) -> Transition {
        trips += 1
        openUntil = now + openDuration(trips: trips)
        return move(to: .open, reason: reason, now: now)
    }

    private mutating func move(to next: State, reason: String, now: NIODeadline) -> Transition {
        let transition = Transition(from: state, to: next, reason: reason)
        state = next
        probesInFlight = 0
        probeSuccesses = 0
        if next == .closed {
            closedSince = now
            freshPaths = 0
            outcomeIndex = 0
            outcomeCount = 0
            failuresInWindow = 0
            consecutive = 0
        }
        return transition
    }
}
