import DequeModule
import NIOCore

/// The sender's window of frames sent to one upstream and not yet acknowledged.
///
/// A pure state machine over an injected clock that tells a lost datagram
/// from a dead upstream the way TCP and QUIC do: by whether the receiver still
/// answers. Frames go out on a *path* (one socket, so one receiver); its
/// answers are the evidence. The rules, in order:
/// 1. An ack settles its frame and is an *answer* on the frame's path. A frame
///    acknowledged after one send gives a round-trip sample (Karn's rule); the
///    retransmission timeout (RTO) follows from them (``RoundTripEstimator``,
///    at least `minimumRTO`, at most `ackTimeout`).
/// 2. A frame unacknowledged one RTO after its last send, on a path that has
///    answered since that send, was lost: it is sent again at once,
///    byte-identical, without a retry token. Its RTO doubles with each loss in
///    a row, up to `ackTimeout`.
/// 3. On a path that has not answered since, frames wait: only the path's
///    oldest is sent again, as a probe, after a jittered ``RetryPolicy`` delay
///    that grows with each unanswered probe up to `ackTimeout`, and only if
///    `mayRetry` (breaker, retry budget; told if it is the current path) agrees.
///    When the path answers, rule 2 sends the rest.
/// 4. The upstream *stalls* after `ackTimeout` with frames in flight to its
///    current address and no answer on any path there: each `ackTimeout` of
///    silence is one stall (one failure for the breaker), never one per frame
///    — a lost batched ack is one loss. Frames left at an earlier address
///    count for nothing.
/// 5. At the end of its TTL, a frame the receiver may hold is renewed: same
///    identity, TTL extended (the caller signs it again), since its logs must
///    never get a second identity. It may hold it when the frame's path
///    answered within the last TTL, or when the upstream did (on any path)
///    within the last two TTLs and this path's probes were not left
///    unanswered ``maximumUnansweredProbes`` times while another path was
///    answered (a partition silences every path; a path to another receiver,
///    such as a dead pod behind a Service, is probed in vain beside a live one
///    and let go). Renewal stops at `maximumAge`.
/// 6. Otherwise it is given up at the end of its TTL plus `margin` (receivers
///    discard it by then): its logs may go elsewhere without being doubled.
///
/// The window is bounded in frames (`capacity`) and in sequence span
/// (`maximumSpan`, below the receiver's dedupe window), so a receiver can
/// always tell a retransmission from a new frame.
public struct AckWindow<Payload> {
    public struct Timing: Sendable, Equatable {
        /// The largest RTO, the RTO before any sample, and the silence that makes a stall.
        public var ackTimeout: TimeAmount
        public var ttl: TimeAmount
        public var margin: TimeAmount
        /// Delays between probes of a silent path (rule 3).
        public var policy: RetryPolicy
        public var minimumRTO: TimeAmount
        /// The oldest a frame may be renewed to (a receiver's largest TTL).
        public var maximumAge: TimeAmount

        public init(
            ackTimeout: TimeAmount, ttl: TimeAmount, margin: TimeAmount = .seconds(1), policy: RetryPolicy,
            minimumRTO: TimeAmount = .milliseconds(50), maximumAge: TimeAmount = .hours(1)
        ) {
            self.ackTimeout = ackTimeout
            self.ttl = ttl
            self.margin = margin
            self.policy = policy
            self.minimumRTO = minimumRTO
            self.maximumAge = maximumAge
        }
    }

    public enum Phase: Sendable, Equatable {
        /// Sent; waiting for its ack until its deadline.
        case awaitingAck
        /// Its RTO passed on a silent path: waiting for the path to answer (rule 3).
        case unanswered
        /// Past its TTL on a silent path: given up at its deadline (rule 6).
        case expiring
    }

    public struct Entry {
        public let sequence: UInt32
        public var payload: Payload
        public let firstSent: NIODeadline
        public var lastSent: NIODeadline
        /// The end of its TTL (moved by each renewal).
        public var expiry: NIODeadline
        /// Sends so far, the first included.
        public var attempts: Int
        /// RTOs passed in a row on an answering path (rule 2's doubling).
        public var losses: Int
        public var deadline: NIODeadline
        public var phase: Phase
        public var path: Int
    }

    /// What ``advance(now:generator:mayRetry:)`` asks the caller to do.
    public struct Advance {
        /// Frames to send again now, byte-identical (losses and probes).
        public var retransmit: [UInt32] = []
        /// How many of `retransmit` repair a loss on an answering path (rule 2).
        public var repairs = 0
        /// Frames to sign again with their TTL extended and send (rule 5).
        public var renew: [UInt32] = []
        /// Frames given up on: their logs may go to another upstream or back to the buffer.
        public var givenUp: [Entry] = []
        /// Stalls in this step (rule 4): one breaker failure each.
        public var stalls = 0
        /// Probes refused by `mayRetry` (budget exhausted or breaker open).
        public var retriesRefused = 0
    }

    public let capacity: Int
    public let maximumSpan: UInt32
    public var timing: Timing
    public private(set) var nextSequence: UInt32
    public private(set) var roundTrip = RoundTripEstimator()
    /// The path new frames go out on (``switchPath(movingOutstanding:newAddress:now:)``).
    public private(set) var currentPath = 0
    private var entries: [UInt32: Entry] = [:]
    private var order: Deque<UInt32> = []
    private var paths: [Int: Path] = [0: Path()]
    /// The address new frames go to, as a count of address changes.
    private var currentDestination = 0
    /// Since when frames have waited with no answer on any path to the current address (nil: none in flight there).
    private var waitingSince: NIODeadline?
    /// Stalls in the present silence (rule 4).
    public private(set) var stalls = 0
    /// The last answer on any path to the current address.
    private var lastAnswerHere: NIODeadline?
    /// The last send of any frame (first send, repair, probe or renewal).
    public private(set) var lastSend: NIODeadline?
    /// Unanswered probes after which a path's silence is its own, not the upstream's (rule 5).
    public static var maximumUnansweredProbes: Int { 3 }

    public init(capacity: Int, maximumSpan: UInt32 = 512, timing: Timing, firstSequence: UInt32 = 0) {
        self.capacity = capacity
        self.maximumSpan = maximumSpan
        self.timing = timing
        self.nextSequence = firstSequence
    }

    public var count: Int { entries.count }
    public var isEmpty: Bool { entries.isEmpty }

    /// Whether another frame may be opened now.
    public var hasRoom: Bool {
        guard entries.count < capacity else { return false }
        guard let oldest = order.first(where: { entries[$0] != nil }) else { return true }
        return nextSequence &- oldest < maximumSpan
    }

    /// How many frames may be opened now, one after another.
    public var room: Int {
        let free = capacity - entries.count
        guard free > 0 else { return 0 }
        guard let oldest = order.first(where: { entries[$0] != nil }) else { return min(free, Int(maximumSpan)) }
        let span = nextSequence &- oldest
        return span < maximumSpan ? min(free, Int(maximumSpan - span)) : 0
    }

    /// The retransmission timeout now (rule 1).
    public var retransmissionTimeout: TimeAmount {
        roundTrip.timeout(minimum: timing.minimumRTO, maximum: timing.ackTimeout)
    }

    /// Paths with frames in flight (the current one included).
    public var busyPaths: Int { paths.values.filter { $0.outstanding > 0 }.count }

    public func entry(_ sequence: UInt32) -> Entry? { entries[sequence] }

    /// The oldest frame in flight.
    public var oldest: Entry? { order.lazy.compactMap { entries[$0] }.first }

    /// Changes frame `sequence`'s payload (a renewed frame's new bytes).
    public mutating func update(_ sequence: UInt32, _ body: (inout Entry) -> Void) {
        guard var entry = entries[sequence] else { return }
        body(&entry)
        entries[sequence] = entry
    }

    /// Whether any frame in the window matches `predicate`.
    public func contains(where predicate: (Entry) -> Bool) -> Bool {
        entries.values.contains(where: predicate)
    }

    /// Opens a frame sent now on the current path; returns its sequence number.
    public mutating func open(_ payload: Payload, now: NIODeadline) -> UInt32 {
        let sequence = nextSequence
        nextSequence &+= 1
        lastSend = now
        entries[sequence] = Entry(
            sequence: sequence, payload: payload, firstSent: now, lastSent: now, expiry: now + timing.ttl, attempts: 1, losses: 0,
            deadline: now + retransmissionTimeout, phase: .awaitingAck, path: currentPath)
        order.append(sequence)
        paths[currentPath, default: Path()].outstanding += 1
        if waitingSince == nil { waitingSince = now }
        return sequence
    }

    /// Removes an acknowledged frame (an answer on its path, rule 1); `nil` for an unknown or repeated ack.
    public mutating func acknowledge(_ sequence: UInt32, now: NIODeadline) -> Entry? {
        let destination = entries[sequence].flatMap { paths[$0.path]?.destination }
        guard let entry = remove(sequence) else { return nil }
        if entry.attempts == 1 { roundTrip.add(sample: now - entry.lastSent) }
        if destination == currentDestination {
            waitingSince = outstandingAtCurrentAddress > 0 ? now : nil
            stalls = 0
            lastAnswerHere = now
        }
        if destination == currentDestination { contradictSilentPaths(answeredOn: entry.path, now: now) }
        guard var path = paths[entry.path] else { return entry }  // a retired path with nothing left in flight
        path.lastAnswer = now
        path.probes = 0
        path.contradicted = 0
        path.nextProbe = nil
        paths[entry.path] = path
        return entry
    }

    /// Removes a frame without an answer (the caller gives it up); nil if unknown.
    public mutating func remove(_ sequence: UInt32) -> Entry? {
        guard let entry = entries.removeValue(forKey: sequence) else { return nil }
        trimOrder()
        paths[entry.path]?.outstanding -= 1
        if paths[entry.path]?.outstanding == 0, entry.path != currentPath { paths[entry.path] = nil }
        if outstandingAtCurrentAddress == 0 { waitingSince = nil }
        return entry
    }

    /// An answer on one path counts once against every other path to the same
    /// address whose last probe had an RTO to be answered and was not (rule 5).
    private mutating func contradictSilentPaths(answeredOn answering: Int, now: NIODeadline) {
        let rto = retransmissionTimeout
        for (id, path) in paths where id != answering && path.destination == currentDestination && path.outstanding > 0 {
            guard let probe = path.lastProbe, probe != path.countedProbe, now - probe >= rto else { continue }
            paths[id]?.contradicted += 1
            paths[id]?.countedProbe = probe
        }
    }

    /// Frames in flight on paths to the current address.
    private var outstandingAtCurrentAddress: Int {
        paths.values.reduce(0) { $0 + ($1.destination == currentDestination ? $1.outstanding : 0) }
    }

    /// Sends new frames on a new path from now on (a new socket). With
    /// `movingOutstanding`, the current path's frames move too (its socket is
    /// gone, so they go out on the new one); otherwise they stay on theirs.
    /// With `newAddress`, the path goes elsewhere: the silence of frames left
    /// at the old address is no longer a stall (rule 4).
    @discardableResult
    public mutating func switchPath(movingOutstanding: Bool, newAddress: Bool = false, now: NIODeadline) -> Int {
        let old = currentPath
        currentPath += 1
        if newAddress {
            currentDestination += 1
            stalls = 0
            waitingSince = nil
            lastAnswerHere = nil
        }
        var fresh = Path(destination: currentDestination)
        if movingOutstanding, let previous = paths[old] {
            fresh.outstanding = previous.outstanding
            for (sequence, entry) in entries where entry.path == old { entries[sequence]?.path = currentPath }
            paths[old] = nil
            if previous.outstanding > 0, waitingSince == nil { waitingSince = now }
        } else if paths[old]?.outstanding == 0 {
            paths[old] = nil
        }
        paths[currentPath] = fresh
        return currentPath
    }

    /// Removes every frame (shutdown); returns them oldest first.
    public mutating func removeAll() -> [Entry] {
        let all = order.compactMap { entries[$0] }
        entries.removeAll()
        order.removeAll()
        paths = [currentPath: Path()]
        waitingSince = nil
        stalls = 0
        return all
    }

    /// Applies the rules to every frame whose deadline has passed.
    public mutating func advance(
        now: NIODeadline, generator: inout some RandomNumberGenerator, mayRetry: (_ onCurrentPath: Bool) -> Bool
    ) -> Advance {
        var result = Advance()
        var oldestOnPath: [Int: UInt32] = [:]
        for sequence in order {
            guard var entry = entries[sequence] else { continue }
            if oldestOnPath[entry.path] == nil, entry.phase != .expiring { oldestOnPath[entry.path] = sequence }
            guard entry.deadline <= now || entry.expiry <= now else { continue }
            let path = paths[entry.path] ?? Path()
            if entry.phase == .expiring {
                if now >= entry.deadline, let removed = remove(sequence) { result.givenUp.append(removed) }
                continue
            }
            if now >= entry.expiry {
                // Rules 5 and 6.
                let pathAnswered = path.lastAnswer.map { now - $0 < timing.ttl } ?? false
                let upstreamAnswered =
                    path.destination == currentDestination && path.contradicted < Self.maximumUnansweredProbes
                    && (lastAnswerHere.map { now - $0 < timing.ttl * 2 } ?? false)
                if pathAnswered || upstreamAnswered, now - entry.firstSent + timing.ttl <= timing.maximumAge {
                    entry.expiry = now + timing.ttl
                    entry.phase = .awaitingAck
                    send(&entry, now: now)
                    result.renew.append(sequence)
                } else {
                    entry.phase = .expiring
                    entry.deadline = entry.expiry + timing.margin
                }
            } else if let answer = path.lastAnswer, answer > entry.lastSent {
                // Rule 2: lost on a path that answers.
                entry.losses += 1
                entry.phase = .awaitingAck
                send(&entry, now: now)
                result.retransmit.append(sequence)
                result.repairs += 1
            } else {
                // Rule 3: waits for its path's probe.
                entry.phase = .unanswered
            }
            entries[sequence] = entry
        }
        // Rule 3: a path's oldest frame is its probe, once its own RTO has passed unanswered.
        for (pathID, sequence) in oldestOnPath.sorted(by: { $0.key < $1.key }) where entries[sequence]?.phase == .unanswered {
            probe(path: pathID, sequence: sequence, now: now, generator: &generator, mayRetry: mayRetry, into: &result)
        }
        if let since = waitingSince, now - since >= timing.ackTimeout * Int64(stalls + 1) {
            // Rule 4: one stall per ackTimeout of silence.
            stalls += 1
            result.stalls += 1
        }
        trimOrder()
        return result
    }

    /// Rule 3: the oldest unanswered frame of a silent path, sent again when its probe is due.
    private mutating func probe(
        path pathID: Int, sequence: UInt32, now: NIODeadline, generator: inout some RandomNumberGenerator, mayRetry: (Bool) -> Bool,
        into result: inout Advance
    ) {
        guard var path = paths[pathID], var entry = entries[sequence] else { return }
        guard let due = path.nextProbe else {
            path.nextProbe = now + probeDelay(path.probes + 1, using: &generator)
            paths[pathID] = path
            return
        }
        guard now >= due else { return }
        if mayRetry(pathID == currentPath) {
            path.probes += 1
            path.lastProbe = now
            entry.phase = .awaitingAck
            send(&entry, now: now)
            entries[sequence] = entry
            result.retransmit.append(sequence)
        } else {
            result.retriesRefused += 1
        }
        path.nextProbe = now + probeDelay(path.probes + 1, using: &generator)
        paths[pathID] = path
    }

    /// The jittered wait before a silent path's next probe: the policy's, but
    /// never over `ackTimeout`, so that once the breaker lets traffic through
    /// again (half-open), a probe goes out before its silence fails it.
    private func probeDelay(_ retry: Int, using generator: inout some RandomNumberGenerator) -> TimeAmount {
        min(timing.policy.delay(forRetry: retry, using: &generator), timing.ackTimeout)
    }

    /// Counts a send of `entry` now and sets its next deadline (its RTO, doubled per loss in a row).
    private mutating func send(_ entry: inout Entry, now: NIODeadline) {
        lastSend = now
        entry.attempts += 1
        entry.lastSent = now
        let doublings = min(entry.losses, 10)
        let rto = retransmissionTimeout.nanoseconds.multipliedReportingOverflow(by: Int64(1) << doublings)
        entry.deadline = now + (rto.overflow ? timing.ackTimeout : min(.nanoseconds(rto.partialValue), timing.ackTimeout))
    }

    private mutating func trimOrder() {
        while let first = order.first, entries[first] == nil { order.removeFirst() }
        if order.count > capacity * 4 {
            order = Deque(order.filter { entries[$0] != nil })
        }
    }
}
