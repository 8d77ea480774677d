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
    /// Failovers: batches or frames moved from this upstream to the next one or back to the buffer.
    let failovers = AtomicCounter()
    /// Outcomes of forward attempts (batches or frames), as the breaker saw them.
    let attemptsSucceeded = AtomicCounter()
    let attemptsFailed = AtomicCounter()
    /// `file:` only: partial last lines (a crash mid-write) ended with a newline on open.
    let fileFragmentsEnded = AtomicCounter()
    /// Time from receipt to acknowledgement or write, one observation per batch or frame.
    private let latency: DurationHistogram?
    private let laneAvailable: [AtomicFlag]
    private let lastError = Mutex<String?>(nil)
    private let resilience: Mutex<Resilience>
    /// The breaker's state as of its last change, readable without the lock (per burst, on the data path).
    private let breakerClosed = Atomic<Bool>(true)
    /// Grows whenever the current address changes, so senders notice without the lock.
    private let addressGeneration = Atomic<Int>(0)
    private let endpoint: Mutex<Endpoint>
    /// Carries a change of address to every loop's lane (set by the relay).
    private let repointLanes = Mutex<(@Sendable (SocketAddress) -> Void)?>(nil)
    private let logger: Logger

    /// Where a `udp://` or `ferry://` upstream sends, and what its name resolved to.
    private struct Endpoint {
        var host: String?
        var port = 0
        var addresses: [SocketAddress] = []
        var current: SocketAddress?
        /// Addresses tried since the upstream last worked (breaker closed after probes).
        var rotations = 0
        var lastResolved = NIODeadline.uptimeNanoseconds(0)
        var resolveRequested = false
        var resolutionFailing = false
        var note: String?
    }

    /// The breaker and retry budget every loop shares for this upstream.
    private struct Resilience {
        var breaker: CircuitBreaker
        var budget: RetryBudget
        var transitions: [CircuitBreaker.State: Int] = [:]
        var lastTransitionWallClock: String?
    }

    package init(
        url: UpstreamURL, index: Int, lanes: Int, breaker: CircuitBreaker.Configuration = .init(),
        budget: RetryBudget.Configuration = .init(), latency: DurationHistogram? = nil, udpSegmentation: Bool = true, logger: Logger
    ) {
        self.latency = latency
        self.udpSegmentation = udpSegmentation
        self.url = url
        self.index = index
        self.laneAvailable = (0..<lanes).map { _ in AtomicFlag(false) }
        self.resilience = Mutex(Resilience(breaker: CircuitBreaker(configuration: breaker), budget: RetryBudget(configuration: budget)))
        var endpoint = Endpoint()
        switch url {
        case .udp(let address), .ferry(let address):
            endpoint.host = NameResolver.isLiteral(address.host) ? nil : address.host
            endpoint.port = address.port
        case .file:
            break
        }
        self.endpoint = Mutex(endpoint)
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

    // MARK: - Breaker and budget (touched once per batch or frame, never per log)

    /// Whether traffic may go to this upstream now (closed, or half-open with probes left).
    package func allowsTraffic(now: NIODeadline = .now()) -> Bool {
        let (allowed, transition) = withResilience { $0.breaker.allowsTraffic(now: now) }
        if let transition { report(transition, traceID: nil) }
        return allowed
    }

    /// Takes permission for one batch or frame (a probe permit when half-open).
    package func acquire(now: NIODeadline = .now()) -> Bool {
        let (allowed, transition) = withResilience { $0.breaker.acquire(now: now) }
        if let transition { report(transition, traceID: nil) }
        return allowed
    }

    /// Records the outcome of one batch or frame.
    ///
    /// An outcome from an address the upstream has already moved away from
    /// (a late timeout of a frame sent there) is counted but not held against
    /// the breaker of the new address.
    package func record(success: Bool, now: NIODeadline = .now(), traceID: TraceID? = nil, fromCurrentAddress: Bool = true) {
        (success ? attemptsSucceeded : attemptsFailed).add(1)
        guard fromCurrentAddress else { return }
        if success { endpoint.withLock { $0.rotations = 0 } }
        // A trip and the move to the name's next address happen in one step,
        // so no batch sees the breaker open while another address is untried.
        let (transition, moved) = withResilience { state -> (CircuitBreaker.Transition?, AddressMove?) in
            guard let transition = state.breaker.record(success: success, now: now) else { return (nil, nil) }
            guard transition.to == .open else { return (transition, nil) }
            return (transition, moveToNextAddress(&state.breaker, now: now))
        }
        if let transition { report(transition, traceID: traceID) }
        if let moved { announce(moved, reason: "breaker opened; trying the name's next address before the next upstream") }
    }

    /// A send to the current address was refused (ICMP port unreachable):
    /// nothing listens there. If the name has an address not tried yet, move
    /// to it now, as a breaker trip would, instead of letting the lanes fail
    /// over to the next upstream while the breaker is still counting failures.
    /// Returns true if it moved.
    @discardableResult
    func addressRefused(now: NIODeadline = .now()) -> Bool {
        guard let moved = withResilience({ moveToNextAddress(&$0.breaker, now: now) }) else { return false }
        announce(moved, reason: "send refused (port unreachable); trying the name's next address before the next upstream")
        return true
    }

    /// A move to the name's next address, with the breaker reset that goes with it.
    private struct AddressMove: Sendable {
        let old: SocketAddress?
        let new: SocketAddress
        let reset: CircuitBreaker.Transition?
    }

    /// Moves to the next untried address and gives the new address a closed breaker
    /// (called under the resilience lock, so no batch sees the breaker in between).
    private func moveToNextAddress(_ breaker: inout CircuitBreaker, now: NIODeadline) -> AddressMove? {
        guard let (old, new) = nextAddress() else { return nil }
        return AddressMove(old: old, new: new, reset: breaker.reset(reason: "moved to address \(new.hostAndPort)", now: now))
    }

    /// Logs the move, points every lane at the new address, and reports the breaker reset.
    private func announce(_ move: AddressMove, reason: String) {
        logger.notice(
            "upstream address changed",
            metadata: [
                "upstream": "\(url)", "upstream.address.old": "\(move.old?.hostAndPort ?? "none")",
                "upstream.address.new": "\(move.new.hostAndPort)", "reason": "\(reason)",
            ])
        repointLanes.withLock { $0 }?(move.new)
        if let reset = move.reset { report(reset, traceID: nil) }
    }

    /// Moves to the name's next untried address, if there is one.
    private func nextAddress() -> (SocketAddress?, SocketAddress)? {
        endpoint.withLock { endpoint in
            guard endpoint.addresses.count > 1, endpoint.rotations < endpoint.addresses.count - 1,
                let current = endpoint.current, let index = endpoint.addresses.firstIndex(of: current)
            else { return nil }
            endpoint.rotations += 1
            let next = endpoint.addresses[(index + 1) % endpoint.addresses.count]
            endpoint.current = next
            addressGeneration.add(1, ordering: .releasing)
            return (current, next)
        }
    }

    /// Records how long a batch or frame took from receipt to acknowledgement or write.
    package func observeLatency(since receivedAt: NIODeadline, now: NIODeadline = .now()) {
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

    /// Whether the breaker is closed, without taking its lock (may lag a change in progress by one call).
    var isBreakerClosed: Bool { breakerClosed.load(ordering: .relaxed) }

    /// Changes when ``currentAddress`` does; compare before reading the address.
    var currentAddressGeneration: Int { addressGeneration.load(ordering: .acquiring) }

    /// Runs `body` on the breaker and budget, and publishes the breaker's state.
    private func withResilience<Result: Sendable>(_ body: (inout Resilience) -> Result) -> Result {
        resilience.withLock { state in
            let result = body(&state)
            breakerClosed.store(state.breaker.state == .closed, ordering: .relaxed)
            return result
        }
    }

    // MARK: - Addresses

    /// The address lanes send to now (nil for `file:`).
    public var currentAddress: SocketAddress? { endpoint.withLock { $0.current } }

    /// The host name to re-resolve, or nil for an IP literal or a file.
    var hostName: String? { endpoint.withLock { $0.host } }

    func setRepointHandler(_ handler: @escaping @Sendable (SocketAddress) -> Void) {
        repointLanes.withLock { $0 = handler }
    }

    /// Records the first resolution, made before any lane exists.
    package func setInitialAddresses(_ addresses: [SocketAddress]) {
        endpoint.withLock {
            $0.addresses = addresses
            $0.current = addresses.first
            addressGeneration.add(1, ordering: .releasing)
            $0.lastResolved = .now()
        }
    }

    /// Whether the name is due for resolution (interval passed, or the breaker opened).
    func needsResolution(interval: TimeAmount, now: NIODeadline = .now()) -> Bool {
        endpoint.withLock { endpoint in
            guard endpoint.host != nil else { return false }
            let unresolved = endpoint.current == nil && now - endpoint.lastResolved >= .seconds(1)
            return endpoint.resolveRequested || unresolved || now - endpoint.lastResolved >= interval
        }
    }

    /// Takes a fresh resolution of the name. A changed address is logged once
    /// and every lane moves to it; a name that stopped resolving keeps its last
    /// good address, and says so.
    func applyResolution(_ result: Result<[SocketAddress], any Error>, now: NIODeadline = .now()) {
        enum Outcome { case none, changed(SocketAddress?, SocketAddress), failing(String, SocketAddress?), recovered }
        let outcome: Outcome = endpoint.withLock { endpoint in
            endpoint.lastResolved = now
            endpoint.resolveRequested = false
            switch result {
            case .failure(let error):
                endpoint.note = endpoint.current == nil
                    ? "name does not resolve (\(error)); no address yet, retrying every second"
                    : "name did not resolve (\(error)); keeping the last good address"
                defer { endpoint.resolutionFailing = true }
                return endpoint.resolutionFailing ? .none : .failing("\(error)", endpoint.current)
            case .success(let addresses):
                let wasFailing = endpoint.resolutionFailing
                endpoint.resolutionFailing = false
                endpoint.note = nil
                endpoint.addresses = addresses
                if let current = endpoint.current, addresses.contains(current) {
                    return wasFailing ? .recovered : .none
                }
                let old = endpoint.current
                endpoint.current = addresses[0]
                addressGeneration.add(1, ordering: .releasing)
                endpoint.rotations = 0
                return .changed(old, addresses[0])
            }
        }
        switch outcome {
        case .none:
            break
        case .recovered:
            logger.notice("upstream name resolves again", metadata: ["upstream": "\(url)"])
        case .failing(let error, let kept):
            if let kept {
                logger.warning(
                    "upstream name did not resolve, keeping the last good address",
                    metadata: ["upstream": "\(url)", "error": "\(error)", "upstream.address": "\(kept.hostAndPort)"])
            } else {
                logger.warning(
                    "upstream name does not resolve yet, retrying",
                    metadata: ["upstream": "\(url)", "error": "\(error)"])
            }
        case .changed(let old, let new):
            logger.notice(
                "upstream address changed",
                metadata: [
                    "upstream": "\(url)", "upstream.address.old": "\(old?.hostAndPort ?? "none")",
                    "upstream.address.new": "\(new.hostAndPort)", "reason": "the name resolves to other addresses now",
                ])
            repointLanes.withLock { $0 }?(new)
        }
    }

    /// After the breaker opened: ask for a fresh resolution of the name.
    private func breakerOpened() {
        endpoint.withLock { $0.resolveRequested = $0.host != nil }
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
            breakerOpened()
        } else {
            logger.notice("breaker transition", metadata: metadata)

        }
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
            fileFragmentsEnded: fileFragmentsEnded.load,
            sendErrors: Dictionary(uniqueKeysWithValues: SendErrorReason.allCases.map { ($0.description, sendErrors[$0.rawValue].load) }),
            lastError: lastError.withLock { $0 },
            address: currentAddress?.hostAndPort,
            addresses: endpoint.withLock { $0.addresses.map(\.hostAndPort) },
            resolution: endpoint.withLock { $0.note })
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
    /// `file:` only: partial last lines found on open and ended with a newline.
    public var fileFragmentsEnded: Int
    public var sendErrors: [String: Int]
    public var lastError: String?
    /// The address traffic goes to now (`udp://`, `ferry://`).
    public var address: String?
    /// Every address the upstream's name resolved to last time.
    public var addresses: [String]
    /// Set while the name does not resolve (the last good address is kept).
    public var resolution: String?
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

extension Upstream {
    /// Whether the lane of event loop `lane` has a connected socket to this upstream.
    func isLaneAvailable(_ lane: Int) -> Bool {
        laneAvailable[lane].load
    }
}
