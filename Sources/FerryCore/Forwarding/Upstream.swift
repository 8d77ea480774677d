import Logging
import NIOCore
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
    /// Whether `udp://` senders may send runs of equal-length datagrams as one
    /// segmented message (`forward.udp-segmentation`).
    let udpSegmentation: Bool
    /// Logs and bytes this upstream accepted (written, sent, or acknowledged).
    let forwarded = AtomicCounter()
    let forwardedBytes = AtomicCounter()
    /// Send or write errors by reason.
    let sendErrors: [AtomicCounter] = SendErrorReason.allCases.map { _ in AtomicCounter() }
    /// Frames sent and not yet acknowledged, over all loops (`ferry://`).
    let inFlightFrames = AtomicCounter()
    /// Retransmissions sent.
    let retries = AtomicCounter()
    /// `ferry://`: frames sent (first sends), retransmitted after a loss on a path
    /// that answers, renewed at their TTL, and moves to a new source port.
    let framesSent = AtomicCounter()
    let lossRepairs = AtomicCounter()
    let renewals = AtomicCounter()
    let pathChanges = AtomicCounter()
    /// `ferry://`: the smoothed round-trip time of the last lane that measured one.
    let roundTrip = RoundTripGauge()
    /// Failovers: batches or frames moved from this upstream to the next one or back to the buffer.
    let failovers = AtomicCounter()
    /// Outcomes of forward attempts (batches or frames), as the breaker saw them.
    public let attemptsSucceeded = AtomicCounter()
    public let attemptsFailed = AtomicCounter()
    /// `file:` only: partial last lines (a crash mid-write) ended with a newline on open.
    let fileFragmentsEnded = AtomicCounter()
    /// `tcp://`, `tls://`: logs written again on a new connection because the
    /// peer's TCP had not acknowledged their bytes when the old one dropped.
    let resent = AtomicCounter()
    /// `tcp://`, `tls://`: logs written whose bytes the peer has not acknowledged yet.
    let unacknowledged = AtomicCounter()
    /// `tls://`: handshakes that failed, by reason.
    let tlsFailures: [AtomicCounter] = TLSFailureReason.allCases.map { _ in AtomicCounter() }
    /// `tls://` with `upstream-tls.insecure`: the server is not verified.
    let tlsInsecure = AtomicFlag(false)
    /// `ferry://` with `auth.key-file`: acks ignored because they were not signed by a key this Ferry holds, by reason.
    let unauthenticatedAcks: [AtomicCounter] = FrameAuthFailure.allCases.map { _ in AtomicCounter() }
    /// Time from receipt to acknowledgement or write, one observation per batch or frame.
    private let latency: (any LatencyRecorder)?
    private let laneAvailable: [AtomicFlag]
    private let lastError = Mutex<String?>(nil)
    /// Breaker, retry budget and addresses: one state machine behind one lock.
    private let health: Mutex<HealthState>
    /// The breaker's state as of its last change, readable without the lock (per burst, on the data path).
    private let breakerClosed = Atomic<Bool>(true)
    /// Grows whenever the current address changes, so senders notice without the lock.
    private let addressGeneration = Atomic<Int>(0)
    /// Carries a change of address to every loop's lane (set by the relay).
    private let repointLanes = Mutex<(@Sendable (SocketAddress) -> Void)?>(nil)
    private let logger: Logger

    /// A round-trip time written by one lane and read by the control plane.
    final class RoundTripGauge: Sendable {
        private let nanoseconds = Atomic<Int64>(-1)

        func store(_ value: TimeAmount) { nanoseconds.store(value.nanoseconds, ordering: .relaxed) }

        /// Milliseconds; nil before the first measurement.
        var milliseconds: Double? {
            let value = nanoseconds.load(ordering: .relaxed)
            return value < 0 ? nil : Double(value) / 1e6
        }
    }

    /// The state machine and what the snapshot shows of its past.
    private struct HealthState {
        var machine: UpstreamHealth
        var transitions: [CircuitBreaker.State: Int] = [:]
        var lastTransitionWallClock: String?
    }

    package init(
        url: UpstreamURL, index: Int, lanes: Int, breaker: CircuitBreaker.Configuration = .init(),
        budget: RetryBudget.Configuration = .init(), latency: (any LatencyRecorder)? = nil, udpSegmentation: Bool = true, logger: Logger
    ) {
        self.latency = latency
        self.udpSegmentation = udpSegmentation
        self.url = url
        self.index = index
        self.laneAvailable = (0..<lanes).map { _ in AtomicFlag(false) }
        var host: String?
        if let address = url.networkAddress, !NameResolver.isLiteral(address.host) { host = address.host }
        self.health = Mutex(HealthState(machine: UpstreamHealth(breaker: breaker, budget: budget, host: host)))
        self.logger = logger
    }

    package func setAvailable(_ available: Bool, lane: Int) {
        laneAvailable[lane].store(available)
    }

    func setAvailableOnAllLanes(_ available: Bool) {
        for lane in laneAvailable.indices { setAvailable(available, lane: lane) }
    }

    func recordError(_ reason: SendErrorReason, detail: String) {
        sendErrors[reason.rawValue].add(1)
        lastError.withLock { $0 = "\(reason): \(detail)" }
    }

    // MARK: - Health (touched once per batch or frame, never per log)

    /// Whether traffic may go to this upstream now (closed, or half-open with probes left).
    package func allowsTraffic(now: NIODeadline = .now()) -> Bool {
        let (allowed, actions) = withHealth { $0.allowsTraffic(now: now) }
        perform(actions)
        return allowed
    }

    /// Takes permission for one batch or frame (a probe permit when half-open).
    package func acquire(now: NIODeadline = .now()) -> Bool {
        let (allowed, actions) = withHealth { $0.acquire(now: now) }
        perform(actions)
        return allowed
    }

    /// Records the outcome of one batch or frame (see ``UpstreamHealth`` for what follows from it).
    package func record(success: Bool, now: NIODeadline = .now(), traceID: TraceID? = nil, fromCurrentAddress: Bool = true) {
        (success ? attemptsSucceeded : attemptsFailed).add(1)
        perform(withHealth { $0.record(success: success, fromCurrentAddress: fromCurrentAddress, now: now) }, traceID: traceID)
    }

    /// Gives back a half-open probe permit whose frame was given up without an answer.
    func releaseProbe() {
        withHealth { $0.releaseProbe() }
    }

    /// A lane moved to a new source port: an open breaker probes the new path soon (``CircuitBreaker``).
    func newPath(now: NIODeadline = .now()) {
        withHealth { $0.newPath(now: now) }
    }

    /// A send to the current address was refused (ICMP port unreachable).
    /// Returns true if the upstream moved to another address of its name.
    @discardableResult
    func addressRefused(now: NIODeadline = .now()) -> Bool {
        let actions = withHealth { $0.addressRefused(now: now) }
        perform(actions)
        return !actions.isEmpty
    }

    /// Records how long a batch or frame took from receipt to acknowledgement or write.
    package func observeLatency(since receivedAt: NIODeadline, now: NIODeadline = .now()) {
        latency?.recordNanoseconds((now - receivedAt).nanoseconds)
    }

    func recordFirstAttempts(_ count: Int, now: NIODeadline = .now()) {
        withHealth { $0.recordFirstAttempts(count, now: now) }
    }

    /// Takes a retry token; false when the retry budget is spent.
    func tryRetry(now: NIODeadline = .now()) -> Bool {
        withHealth { $0.tryRetry(now: now) }
    }

    public var breakerState: CircuitBreaker.State {
        health.withLock { $0.machine.breaker.state }
    }

    /// Whether the breaker is closed, without taking its lock (may lag a change in progress by one call).
    var isBreakerClosed: Bool { breakerClosed.load(ordering: .relaxed) }

    /// Changes when ``currentAddress`` does; compare before reading the address.
    var currentAddressGeneration: Int { addressGeneration.load(ordering: .acquiring) }

    /// Runs `body` on the state machine and publishes what lock-free readers see.
    private func withHealth<Result: Sendable>(_ body: (inout UpstreamHealth) -> Result) -> Result {
        health.withLock { state in
            let result = body(&state.machine)
            breakerClosed.store(state.machine.breaker.state == .closed, ordering: .relaxed)
            if addressGeneration.load(ordering: .relaxed) != state.machine.addressGeneration {
                addressGeneration.store(state.machine.addressGeneration, ordering: .releasing)
            }
            return result
        }
    }

    /// Carries out what the state machine decided, outside its lock.
    private func perform(_ actions: [UpstreamHealth.Action], traceID: TraceID? = nil) {
        for action in actions {
            switch action {
            case .transition(let transition):
                report(transition, traceID: traceID)
            case .repoint(let old, let new, let reason):
                logger.notice(
                    "upstream address changed",
                    metadata: [
                        "upstream": "\(url)", "upstream.address.old": "\(old?.hostAndPort ?? "none")",
                        "upstream.address.new": "\(new.hostAndPort)", "reason": "\(reason.rawValue)",
                    ])
                repointLanes.withLock { $0 }?(new)
            case .resolutionFailing(let error, let kept):
                if let kept {
                    logger.warning(
                        "upstream name did not resolve, keeping the last good address",
                        metadata: ["upstream": "\(url)", "error": "\(error)", "upstream.address": "\(kept.hostAndPort)"])
                } else {
                    logger.warning("upstream name does not resolve yet, retrying", metadata: ["upstream": "\(url)", "error": "\(error)"])
                }
            case .resolutionRecovered:
                logger.notice("upstream name resolves again", metadata: ["upstream": "\(url)"])
            }
        }
    }

    private func report(_ transition: CircuitBreaker.Transition, traceID: TraceID?) {
        let wallClock = LogTimestamp.now()
        health.withLock {
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

    // MARK: - Addresses

    /// The address lanes send to now (nil for `file:`).
    public var currentAddress: SocketAddress? { health.withLock { $0.machine.current } }

    /// The host name to re-resolve, or nil for an IP literal or a file.
    var hostName: String? { health.withLock { $0.machine.host } }

    func setRepointHandler(_ handler: @escaping @Sendable (SocketAddress) -> Void) {
        repointLanes.withLock { $0 = handler }
    }

    /// Records the first resolution, made before any lane exists.
    package func setInitialAddresses(_ addresses: [SocketAddress]) {
        withHealth { $0.setInitialAddresses(addresses, now: .now()) }
    }

    /// Whether the name is due for resolution (interval passed, or the breaker opened).
    func needsResolution(interval: TimeAmount, now: NIODeadline = .now()) -> Bool {
        health.withLock { $0.machine.needsResolution(interval: interval, now: now) }
    }

    /// Takes a fresh resolution of the name: a changed address is logged once
    /// and every lane moves to it; a name that stopped resolving keeps its last
    /// good address, and says so.
    func applyResolution(_ result: Result<[SocketAddress], any Error>, now: NIODeadline = .now()) {
        let actions = withHealth { machine -> [UpstreamHealth.Action] in
            switch result {
            case .success(let addresses): return machine.apply(resolved: addresses, now: now)
            case .failure(let error): return machine.apply(resolved: nil, error: "\(error)", now: now)
            }
        }
        perform(actions)
    }

    /// True when the upstream is known to work: its breaker is closed (not
    /// merely probing) and at least one event loop has a socket or file for it.
    /// Readiness uses this, so a half-open probe does not make /readyz flap.
    public var isAvailable: Bool {
        breakerState == .closed && laneAvailable.contains { $0.load }
    }

    /// A point-in-time view for `/v1/status` and `/metrics`.
    public var snapshot: UpstreamSnapshot {
        let now = NIODeadline.now()
        let (machine, transitions, lastTransition) = health.withLock { state in
            (state.machine, state.transitions, state.lastTransitionWallClock)
        }
        let breaker = machine.breaker
        let budget = machine.budget
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
            frames: isFerry
                ? .init(
                    sent: framesSent.load, lossRepairs: lossRepairs.load, renewals: renewals.load, pathChanges: pathChanges.load,
                    roundTripMilliseconds: roundTrip.milliseconds)
                : nil,
            failovers: failovers.load,
            forwarded: forwarded.load,
            forwardedBytes: forwardedBytes.load,
            fileFragmentsEnded: fileFragmentsEnded.load,
            resent: resent.load,
            unacknowledged: unacknowledged.load,
            tlsFailures: Dictionary(uniqueKeysWithValues: TLSFailureReason.allCases.map { ($0.description, tlsFailures[$0.rawValue].load) }),
            tlsInsecure: tlsInsecure.load,
            unauthenticatedAcks: Dictionary(
                uniqueKeysWithValues: FrameAuthFailure.allCases.map { ($0.description, unauthenticatedAcks[$0.rawValue].load) }),
            sendErrors: Dictionary(uniqueKeysWithValues: SendErrorReason.allCases.map { ($0.description, sendErrors[$0.rawValue].load) }),
            lastError: lastError.withLock { $0 },
            address: machine.current?.hostAndPort,
            addresses: machine.addresses.map(\.hostAndPort),
            resolution: machine.resolutionNote)
    }
}

extension Upstream {
    var isFerry: Bool {
        if case .ferry = url { return true }
        return false
    }

    /// Whether the lane of event loop `lane` has a connected socket to this upstream.
    func isLaneAvailable(_ lane: Int) -> Bool {
        laneAvailable[lane].load
    }
}
