import DequeModule
import NIOCore

/// The sender's window of frames sent to one upstream and not yet acknowledged.
///
/// A pure state machine over an injected clock. Each frame is, in turn:
/// - **awaiting its ack** until `ackTimeout` after its last send;
/// - **backing off** for a jittered ``RetryPolicy`` delay after a timeout, then
///   retransmitted if the caller's `mayRetry` (breaker and retry budget) agrees;
/// - **abandoned** once it has used its attempts: it is kept, unsent, until
///   `ttl` plus a safety margin after its first send. Receivers discard frames
///   older than their `ttl`, so once that time has passed the frame can no
///   longer be delivered by this upstream and its logs may safely go elsewhere
///   without being duplicated.
///
/// The window is bounded in frames (`capacity`) and in sequence span
/// (`maximumSpan`, below the receiver's dedupe window), so a receiver can
/// always tell a retransmission from a new frame.
public struct AckWindow<Payload> {
    public struct Timing: Sendable, Equatable {
        public var ackTimeout: TimeAmount
        public var ttl: TimeAmount
        public var margin: TimeAmount
        public var policy: RetryPolicy

        public init(ackTimeout: TimeAmount, ttl: TimeAmount, margin: TimeAmount = .seconds(1), policy: RetryPolicy) {
            self.ackTimeout = ackTimeout
            self.ttl = ttl
            self.margin = margin
            self.policy = policy
        }
    }

    public enum Phase: Sendable, Equatable {
        case awaitingAck, backingOff, abandoned
    }

    public struct Entry {
        public let sequence: UInt32
        public var payload: Payload
        public let firstSent: NIODeadline
        public var attempts: Int
        public var deadline: NIODeadline
        public var phase: Phase
    }

    /// What ``advance(now:generator:mayRetry:)`` asks the caller to do.
    public struct Advance {
        /// Frames whose ack did not arrive in time (each a failure for the breaker).
        public var timeouts: [UInt32] = []
        /// Frames to send again now, byte-identical.
        public var retransmit: [UInt32] = []
        /// Frames given up on: their logs may go to another upstream or back to the buffer.
        public var givenUp: [Entry] = []
        /// Retries refused by `mayRetry` (budget exhausted or breaker open).
        public var retriesRefused = 0
    }

    public let capacity: Int
    public let maximumSpan: UInt32
    public var timing: Timing
    public private(set) var nextSequence: UInt32
    private var entries: [UInt32: Entry] = [:]
    private var order: Deque<UInt32> = []

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

    public func entry(_ sequence: UInt32) -> Entry? { entries[sequence] }

    /// Whether any frame in the window matches `predicate`.
    public func contains(where predicate: (Entry) -> Bool) -> Bool {
        entries.values.contains(where: predicate)
    }

    /// Opens a frame sent now; returns its sequence number.
    public mutating func open(_ payload: Payload, now: NIODeadline) -> UInt32 {
        let sequence = nextSequence
        nextSequence &+= 1
        entries[sequence] = Entry(
            sequence: sequence, payload: payload, firstSent: now, attempts: 1, deadline: now + timing.ackTimeout, phase: .awaitingAck)
        order.append(sequence)
        return sequence
    }

    /// Removes an acknowledged frame; `nil` for an unknown or repeated ack.
    public mutating func acknowledge(_ sequence: UInt32) -> Entry? {
        guard let entry = entries.removeValue(forKey: sequence) else { return nil }
        trimOrder()
        return entry
    }

    /// Removes every frame (shutdown); returns them oldest first.
    public mutating func removeAll() -> [Entry] {
        let all = order.compactMap { entries[$0] }
        entries.removeAll()
        order.removeAll()
        return all
    }

    /// Moves every frame whose deadline has passed to its next phase.
    public mutating func advance(
        now: NIODeadline, generator: inout some RandomNumberGenerator, mayRetry: () -> Bool
    ) -> Advance {
        var result = Advance()
        for sequence in order {
            guard var entry = entries[sequence], entry.deadline <= now else { continue }
            let expiry = entry.firstSent + timing.ttl
            switch entry.phase {
            case .awaitingAck:
                result.timeouts.append(sequence)
                let wait = timing.policy.delay(forRetry: entry.attempts, using: &generator)
                if timing.policy.allowsRetry(afterAttempts: entry.attempts), now + wait + timing.ackTimeout < expiry {
                    entry.phase = .backingOff
                    entry.deadline = now + wait
                } else {
                    entry.phase = .abandoned
                    entry.deadline = expiry + timing.margin
                }
            case .backingOff:
                if now + timing.ackTimeout >= expiry {
                    entry.phase = .abandoned
                    entry.deadline = expiry + timing.margin
                } else if mayRetry() {
                    entry.attempts += 1
                    entry.phase = .awaitingAck
                    entry.deadline = now + timing.ackTimeout
                    result.retransmit.append(sequence)
                } else {
                    result.retriesRefused += 1
                    entry.deadline = now + timing.policy.delay(forRetry: entry.attempts, using: &generator)
                }
            case .abandoned:
                entries[sequence] = nil
                result.givenUp.append(entry)
                continue
            }
            entries[sequence] = entry
        }
        trimOrder()
        return result
    }

    private mutating func trimOrder() {
        while let first = order.first, entries[first] == nil { order.removeFirst() }
        if order.count > capacity * 4 {
            order = Deque(order.filter { entries[$0] != nil })
        }
    }
}
