import Logging
import NIOCore
import Prometheus
import Synchronization

/// One configured upstream as the whole process sees it: its URL, its place in
/// the failover order, whether any event loop can send to it, and its counters.
///
/// Each event loop drives its own ``UpstreamLane`` for this upstream; lanes
/// publish their availability here so the control plane can read it without
/// touching a loop.
public final class Upstream: Sendable {
    public let url: UpstreamURL
    /// Position in the failover order (0 is tried first).
    public let index: Int
    /// Logs and bytes this upstream accepted (written, sent, or acknowledged).
    let forwarded = AtomicCounter()
    let forwardedBytes = AtomicCounter()
    /// Send or write errors by reason.
    let sendErrors: [AtomicCounter] = SendErrorReason.allCases.map { _ in AtomicCounter() }
    /// Frames sent and not yet acknowledged, over all loops (`ferry://`).
    let inFlightFrames = AtomicCounter()
    /// Retransmissions sent.
    let retries = AtomicCounter()
    /// Failovers: batches or frames moved from this upstream to the next one or back to the buffer.
    let failovers = AtomicCounter()
    /// Outcomes of forward attempts (batches or frames), as the breaker saw them.
    let attemptsSucceeded = AtomicCounter()
    let attemptsFailed = AtomicCounter()
    /// Time from receipt to acknowledgement or write, one observation per batch or frame.
    private let latency: DurationHistogram?
    private let laneAvailable: [AtomicFlag]
    private let lastError = Mutex<String?>(nil)
    private let resilience: Mutex<Resilience>
    private let logger: Logger

    /// The breaker and retry budget every loop shares for this upstream.
    private struct Resilience {
        var breaker: CircuitBreaker
        var budget: RetryBudget
        var transitions: [CircuitBreaker.State: Int] = [:]
        var lastTransitionWallClock: String?
    }

    init(
        url: UpstreamURL, index: Int, lanes: Int, breaker: CircuitBreaker.Configuration = .init(),
        budget: RetryBudget.Configuration = .init(), latency: DurationHistogram? = nil, logger: Logger
    ) {
        self.latency = latency
        self.url = url
        self.index = index
        self.laneAvailable = (0..<lanes).map { _ in AtomicFlag(false) }
        self.resilience = Mutex(Resilience(breaker: CircuitBreaker(configuration: breaker), budget: RetryBudget(configuration: budget)))
        self.logger = logger
    }

    func setAvailable(_ available: Bool, lane: Int) {
        laneAvailable[lane].store(available)
    }

    func setAvailableOnAllLanes(_ available: Bool) {
        for lane in laneAvailable.indices { setAvailable(available, lane: lane) }
    }

    func recordError(_ reason: SendErrorReason, detail: String) {
        sendErrors[reason.rawValue].add(1)
        lastError.withLock { $0 = "\(reason): \(detail)" }
    }

    // MARK: - Breaker and budget (touched once per batch or frame, never per log)

    /// Whether traffic may go to this upstream now (closed, or half-open with probes left).
    func allowsTraffic(now: NIODeadline = .now()) -> Bool {
        let (allowed, transition) = resilience.withLock { $0.breaker.allowsTraffic(now: now) }
        if let transition { report(transition, traceID: nil) }
        return allowed
    }

    /// Takes permission for one batch or frame (a probe permit when half-open).
    func acquire(now: NIODeadline = .now()) -> Bool {
        let (allowed, transition) = resilience.withLock { $0.breaker.acquire(now: now) }
        if let transition { report(transition, traceID: nil) }
        return allowed
    }

    /// Records the outcome of one batch or frame.
    func record(success: Bool, now: NIODeadline = .now(), traceID: TraceID? = nil) {
        (success ? attemptsSucceeded : attemptsFailed).add(1)
        let transition = resilience.withLock { $0.breaker.record(success: success, now: now) }
        if let transition { report(transition, traceID: traceID) }
    }

    /// Records how long a batch or frame took from receipt to acknowledgement or write.
    func observeLatency(since receivedAt: NIODeadline, now: NIODeadline = .now()) {
        latency?.recordNanoseconds((now - receivedAt).nanoseconds)
    }

    func recordFirstAttempts(_ count: Int, now: NIODeadline = .now()) {
        resilience.withLock { $0.budget.recordFirstAttempts(count, now: now) }
    }

    /// Takes a retry token; false when the retry budget is spent.
    func tryRetry(now: NIODeadline = .now()) -> Bool {
        resilience.withLock { $0.budget.tryRetry(now: now) }
    }

    public var breakerState: CircuitBreaker.State {
        resilience.withLock { $0.breaker.state }
    }

    private func report(_ transition: CircuitBreaker.Transition, traceID: TraceID?) {
        let wallClock = LogTimestamp.now()
        resilience.withLock {
            $0.transitions[transition.to, default: 0] += 1
            $0.lastTransitionWallClock = wallClock
        }
        var metadata: Logger.Metadata = [
            "upstream": "\(url)",
            "breaker.from": "\(transition.from.rawValue)",
            "breaker.to": "\(transition.to.rawValue)",
            "breaker.reason": "\(transition.reason)",
        ]
        if let traceID { metadata["trace_id"] = "\(traceID)" }
        if transition.to == .open {
            logger.warning("breaker transition", metadata: metadata)
        } else {
            logger.notice("breaker transition", metadata: metadata)
        }
    }

    /// True when at least one event loop can send to this upstream now.
    public var isAvailable: Bool {
        breakerState != .open && laneAvailable.contains { $0.load }
    }

    /// A point-in-time view for `/v1/status` and `/metrics`.
    public var snapshot: UpstreamSnapshot {
        let now = NIODeadline.now()
        let (breaker, budget, transitions, lastTransition) = resilience.withLock { state in
            (state.breaker, state.budget, state.transitions, state.lastTransitionWallClock)
        }
        var budgetNow = budget
        return UpstreamSnapshot(
            url: url.description,
            index: index,
            state: isAvailable ? "available" : "unavailable",
            breaker: .init(
                state: breaker.state.rawValue,
                failureRate: breaker.failureRate,
                trips: breaker.trips,
                transitions: Dictionary(uniqueKeysWithValues: CircuitBreaker.State.allCases.map { ($0.rawValue, transitions[$0, default: 0]) }),
                lastTransition: lastTransition),
            retryBudget: .init(
                tokens: budgetNow.available(now: now), retries: budget.retries, exhausted: budget.exhausted, firstAttempts: budget.firstAttempts),
            inFlightFrames: inFlightFrames.load,
            retries: retries.load,
            failovers: failovers.load,
            forwarded: forwarded.load,
            forwardedBytes: forwardedBytes.load,
            sendErrors: Dictionary(uniqueKeysWithValues: SendErrorReason.allCases.map { ($0.description, sendErrors[$0.rawValue].load) }),
            lastError: lastError.withLock { $0 })
    }
}

/// What `/v1/status` shows of one upstream.
public struct UpstreamSnapshot: Sendable, Codable, Equatable {
    public struct Breaker: Sendable, Codable, Equatable {
        public var state: String
        public var failureRate: Double
        public var trips: Int
        public var transitions: [String: Int]
        public var lastTransition: String?
    }

    public struct Budget: Sendable, Codable, Equatable {
        public var tokens: Double
        public var retries: Int
        public var exhausted: Int
        public var firstAttempts: Int
    }

    public var url: String
    public var index: Int
    public var state: String
    public var breaker: Breaker
    public var retryBudget: Budget
    public var inFlightFrames: Int
    public var retries: Int
    public var failovers: Int
    public var forwarded: Int
    public var forwardedBytes: Int
    public var sendErrors: [String: Int]
    public var lastError: String?
}

/// Why a send to an upstream failed, as counted per upstream.
public enum SendErrorReason: Int, CaseIterable, Sendable, CustomStringConvertible {
    case wouldBlock, noBufferSpace, refused, unreachable, other

    public var description: String {
        switch self {
        case .wouldBlock: return "would_block"
        case .noBufferSpace: return "no_buffer_space"
        case .refused: return "refused"
        case .unreachable: return "unreachable"
        case .other: return "other"
        }
    }
}
