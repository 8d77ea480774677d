import NIOCore

/// Whether one upstream can take traffic, and where it sends: its circuit
/// breaker, its retry budget and the addresses its name resolves to, as one
/// pure state machine over an injected clock.
///
/// Events go in (an outcome, a refused send, a resolution result, the passing
/// of time); actions come out (``Action``), which the caller carries out after
/// releasing whatever lock guards this value: log a breaker transition, point
/// every lane at a new address, resolve the name again soon. So the rules below
/// are tested without sockets, sleeps or locks (`UpstreamHealthTests`).
///
/// The rules of moving on, in order:
/// 1. A breaker trip while the name has an address not tried since the
///    upstream last worked moves to that address and gives it a closed breaker,
///    in one step: no batch ever sees the breaker open while another address
///    is untried.
/// 2. A refused send (ICMP port unreachable) does the same at once, without
///    waiting for the breaker to count failures.
/// 3. Only when every address was tried does the breaker stay open: traffic
///    fails over to the next upstream, and a fresh resolution is asked for.
/// 4. A success from the current address makes every address untried again.
/// 5. An outcome from an address already left (a late timeout of a frame sent
///    there) is not held against the new address's breaker.
/// 6. A fresh resolution that no longer contains the current address moves to
///    its first address; a name that stops resolving keeps its last good address.
public struct UpstreamHealth: Sendable {
    /// What the caller must do after an event.
    public enum Action: Sendable, Equatable {
        /// The breaker changed state (log it, count it).
        case transition(CircuitBreaker.Transition)
        /// Every lane must send to `new` from now on.
        case repoint(old: SocketAddress?, new: SocketAddress, reason: Reason)
        /// The name stopped resolving; `kept` is the address still used (nil: none yet).
        case resolutionFailing(error: String, kept: SocketAddress?)
        /// The name resolves again after failing.
        case resolutionRecovered
    }

    /// Why lanes are repointed.
    public enum Reason: String, Sendable, Equatable {
        case breakerOpened = "breaker opened; trying the name's next address before the next upstream"
        case refused = "send refused (port unreachable); trying the name's next address before the next upstream"
        case resolvedElsewhere = "the name resolves to other addresses now"
    }

    public private(set) var breaker: CircuitBreaker
    public private(set) var budget: RetryBudget
    /// The host name re-resolved; nil for an IP literal or a file.
    public let host: String?
    /// Every address the name resolved to last time.
    public private(set) var addresses: [SocketAddress] = []
    /// The address lanes send to now.
    public private(set) var current: SocketAddress?
    /// Changes whenever ``current`` does.
    public private(set) var addressGeneration = 0
    /// Set while the name does not resolve, saying what is done about it.
    public private(set) var resolutionNote: String?
    /// Addresses tried since the upstream last worked.
    private var rotations = 0
    private var lastResolved = NIODeadline.uptimeNanoseconds(0)
    private var resolveRequested = false
    private var resolutionFailing = false

    public init(breaker: CircuitBreaker.Configuration = .init(), budget: RetryBudget.Configuration = .init(), host: String? = nil) {
        self.breaker = CircuitBreaker(configuration: breaker)
        self.budget = RetryBudget(configuration: budget)
        self.host = host
    }

    // MARK: - Traffic

    /// Whether traffic may go out now (closed, or half-open with probes left).
    public mutating func allowsTraffic(now: NIODeadline) -> (allowed: Bool, actions: [Action]) {
        let (allowed, transition) = breaker.allowsTraffic(now: now)
        return (allowed, opened(transition))
    }

    /// Takes permission for one batch or frame (a probe permit when half-open).
    public mutating func acquire(now: NIODeadline) -> (allowed: Bool, actions: [Action]) {
        let (allowed, transition) = breaker.acquire(now: now)
        return (allowed, opened(transition))
    }

    /// Records the outcome of one batch or frame (rules 1, 3, 4, 5).
    public mutating func record(success: Bool, fromCurrentAddress: Bool = true, now: NIODeadline) -> [Action] {
        guard fromCurrentAddress else { return [] }
        if success { rotations = 0 }
        guard let transition = breaker.record(success: success, now: now) else { return [] }
        guard transition.to == .open, let move = moveToNextAddress(reason: .breakerOpened, now: now) else {
            return opened(transition)
        }
        return opened(transition) + move
    }

    /// A lane moved to a new path (source port) to the current address: an open breaker probes it soon.
    public mutating func newPath(now: NIODeadline) {
        breaker.newPath(now: now)
    }

    /// A half-open probe permit whose call ended without an outcome.
    public mutating func releaseProbe() {
        breaker.releaseProbe()
    }

    /// A send to the current address was refused (rule 2). Empty when there is no untried address.
    public mutating func addressRefused(now: NIODeadline) -> [Action] {
        moveToNextAddress(reason: .refused, now: now) ?? []
    }

    /// Takes a retry token; false when the retry budget is spent.
    public mutating func tryRetry(now: NIODeadline) -> Bool {
        budget.tryRetry(now: now)
    }

    public mutating func recordFirstAttempts(_ count: Int, now: NIODeadline) {
        budget.recordFirstAttempts(count, now: now)
    }

    // MARK: - Name resolution

    /// The first resolution, before any lane exists.
    public mutating func setInitialAddresses(_ resolved: [SocketAddress], now: NIODeadline) {
        addresses = resolved
        current = resolved.first
        addressGeneration += 1
        lastResolved = now
    }

    /// Whether the name is due for resolution: the interval passed, the breaker
    /// opened since, or it has no address yet (then every second).
    public func needsResolution(interval: TimeAmount, now: NIODeadline) -> Bool {
        guard host != nil else { return false }
        let unresolved = current == nil && now - lastResolved >= .seconds(1)
        return resolveRequested || unresolved || now - lastResolved >= interval
    }

    /// Takes a fresh resolution (rule 6): `resolved` addresses, or the `error` that stopped it.
    public mutating func apply(resolved: [SocketAddress]?, error: String = "", now: NIODeadline) -> [Action] {
        lastResolved = now
        resolveRequested = false
        guard let resolved, !resolved.isEmpty else {
            resolutionNote =
                current == nil
                ? "name does not resolve (\(error)); no address yet, retrying every second"
                : "name did not resolve (\(error)); keeping the last good address"
            defer { resolutionFailing = true }
            return resolutionFailing ? [] : [.resolutionFailing(error: error, kept: current)]
        }
        let wasFailing = resolutionFailing
        resolutionFailing = false
        resolutionNote = nil
        addresses = resolved
        if let current, resolved.contains(current) {
            return wasFailing ? [.resolutionRecovered] : []
        }
        let old = current
        current = resolved[0]
        addressGeneration += 1
        rotations = 0
        return [.repoint(old: old, new: resolved[0], reason: .resolvedElsewhere)]
    }

    // MARK: - Rules

    /// A transition, and the fresh resolution asked for when it opened the breaker (rule 3).
    private mutating func opened(_ transition: CircuitBreaker.Transition?) -> [Action] {
        guard let transition else { return [] }
        if transition.to == .open, host != nil { resolveRequested = true }
        return [.transition(transition)]
    }

    /// Moves to the next address not tried since the upstream last worked, with
    /// a closed breaker for it; nil when there is none.
    private mutating func moveToNextAddress(reason: Reason, now: NIODeadline) -> [Action]? {
        guard addresses.count > 1, rotations < addresses.count - 1, let old = current,
            let index = addresses.firstIndex(of: old)
        else { return nil }
        rotations += 1
        let next = addresses[(index + 1) % addresses.count]
        current = next
        addressGeneration += 1
        var actions: [Action] = [.repoint(old: old, new: next, reason: reason)]
        if let reset = breaker.reset(reason: "moved to address \(next.hostAndPort)", now: now) {
            actions.append(.transition(reset))
        }
        return actions
    }
}
