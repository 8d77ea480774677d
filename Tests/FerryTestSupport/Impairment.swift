/// What an ``ImpairmentRelay`` does to the datagrams of one direction.
///
/// Each setting is applied to every datagram on its own, in this order:
/// partition, loss, bit flips, duplication, then delay, jitter and
/// reordering (each copy of a duplicate is delayed on its own, so copies may
/// arrive apart).
public struct Impairment: Sendable, Equatable {
    /// Probability that a datagram is dropped.
    public var loss: Double
    /// Probability that a datagram is sent twice.
    public var duplication: Double
    /// Probability that a datagram is held back by up to ``reorderWindow`` (uniformly), so later ones overtake it.
    public var reorder: Double
    public var reorderWindow: Duration
    /// Every datagram waits this long, plus a uniform draw from 0 … ``jitter``.
    public var delay: Duration
    public var jitter: Duration
    /// Probability that 1 to 3 random bits of the payload are flipped. The
    /// relay sends the changed payload, so the kernel computes a valid UDP
    /// checksum over it: only the receiver's own checks can see the damage.
    public var bitFlip: Double

    public init(
        loss: Double = 0, duplication: Double = 0, reorder: Double = 0, reorderWindow: Duration = .zero, delay: Duration = .zero,
        jitter: Duration = .zero, bitFlip: Double = 0
    ) {
        self.loss = loss
        self.duplication = duplication
        self.reorder = reorder
        self.reorderWindow = reorderWindow
        self.delay = delay
        self.jitter = jitter
        self.bitFlip = bitFlip
    }

    /// Nothing changed: every datagram forwarded at once.
    public static let none = Impairment()

    /// Whether any datagram may be held for later (delay, jitter or reordering).
    var holds: Bool { delay > .zero || jitter > .zero || (reorder > 0 && reorderWindow > .zero) }
}

/// A direction through a relay: `data` from clients to the server, `acks` back.
public enum RelayDirection: Int, Sendable, CaseIterable, CustomStringConvertible {
    case data = 0
    case acks = 1

    public var description: String { self == .data ? "data" : "acks" }
}

/// Which directions a partition cuts.
public enum PartitionScope: Sendable, Equatable {
    case data
    case acks
    case both

    func covers(_ direction: RelayDirection) -> Bool {
        switch self {
        case .both: return true
        case .data: return direction == .data
        case .acks: return direction == .acks
        }
    }
}

/// A partition scheduled at a time relative to the relay's start.
public struct ScheduledPartition: Sendable, Equatable {
    public var start: Duration
    public var length: Duration
    public var scope: PartitionScope

    public init(at start: Duration, for length: Duration, _ scope: PartitionScope = .both) {
        self.start = start
        self.length = length
        self.scope = scope
    }

    public var end: Duration { start + length }
}

/// What a relay did in one direction, by datagram.
public struct ImpairmentCounters: Sendable, Equatable, CustomStringConvertible {
    /// Datagrams read.
    public var received = 0
    /// Datagrams written (a duplicate counts twice).
    public var forwarded = 0
    /// Dropped by ``Impairment/loss``.
    public var lost = 0
    /// Extra copies sent.
    public var duplicated = 0
    /// Held back by the reordering setting.
    public var reordered = 0
    /// Held by delay or jitter.
    public var delayed = 0
    /// Sent with flipped bits (both copies of a flipped duplicate count: each reaches the receiver).
    public var flipped = 0
    /// Dropped because a partition was on.
    public var partitioned = 0
    /// Writes the kernel refused (a full buffer, an ICMP error reported on the socket): lost in the relay, not chosen.
    public var sendFailed = 0

    public init() {}

    /// Datagrams the relay chose to drop: lost or partitioned.
    public var dropped: Int { lost + partitioned }

    public var description: String {
        "received \(received), forwarded \(forwarded), lost \(lost), duplicated \(duplicated), reordered \(reordered), "
            + "delayed \(delayed), flipped \(flipped), partitioned \(partitioned), send failed \(sendFailed)"
    }
}
