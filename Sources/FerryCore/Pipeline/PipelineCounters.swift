import NIOCore

/// What one event loop's pipeline has received and dropped.
///
/// One instance per loop, so increments from different loops never share a
/// cache line; readers sum all of them (``PipelineTotals``).
public final class PipelineCounters: Sendable {
    let received: [AtomicCounter] = Transport.allCases.map { _ in AtomicCounter() }
    let receivedBytes: [AtomicCounter] = Transport.allCases.map { _ in AtomicCounter() }
    let dropped: [AtomicCounter] = DropReason.allCases.map { _ in AtomicCounter() }
    let frames: [AtomicCounter] = FrameOutcome.allCases.map { _ in AtomicCounter() }
    /// `ferry://` senders whose dedupe window was evicted to make room for another.
    let senderEvictions = AtomicCounter()
    /// `ferry://` frames dropped as not authenticated, by reason.
    let unauthenticated: [AtomicCounter] = FrameAuthFailure.allCases.map { _ in AtomicCounter() }
    /// Logs refused at the door (allowlist, rate limit): never received.
    let refused: [AtomicCounter] = RefusalReason.allCases.map { _ in AtomicCounter() }

    /// Logs received by syslog severity (0–7, then 8: no valid PRI) and facility (0–23).
    let severities: [AtomicCounter] = (0...8).map { _ in AtomicCounter() }
    let facilities: [AtomicCounter] = (0..<24).map { _ in AtomicCounter() }

    public init() {}

    /// Counts `records` by the severity and facility of their PRI: one PRI read
    /// per log, tallied on the stack and added once per burst.
    @inline(__always)
    func countPriorities<Records: Collection<ByteBuffer>>(_ records: Records) {
        guard !records.isEmpty else { return }
        var severity = InlineArray<9, Int>(repeating: 0)
        var facility = InlineArray<24, Int>(repeating: 0)
        for record in records {
            if let priority = SyslogPriority(of: record) {
                severity[priority.value & 7] += 1
                facility[priority.facility] += 1
            } else {
                severity[8] += 1
            }
        }
        for index in 0..<9 where severity[index] > 0 { severities[index].add(severity[index]) }
        for index in 0..<24 where facility[index] > 0 { facilities[index].add(facility[index]) }
    }

    @inline(__always)
    func countReceived(_ transport: Transport, logs: Int, bytes: Int) {
        received[transport.rawValue].add(logs)
        receivedBytes[transport.rawValue].add(bytes)
    }

    func countFrame(_ outcome: FrameOutcome) {
        frames[outcome.rawValue].add(1)
    }

    @inline(__always)
    func countDropped(_ reason: DropReason, logs: Int) {
        dropped[reason.rawValue].add(logs)
    }
}

/// Sums of every loop's ``PipelineCounters`` at one moment.
public struct PipelineTotals: Sendable, Equatable {
    public var received: [Transport: Int] = [:]
    public var receivedBytes: [Transport: Int] = [:]
    public var dropped: [DropReason: Int] = [:]
    public var frames: [FrameOutcome: Int] = [:]
    public var senderEvictions = 0
    public var unauthenticated: [FrameAuthFailure: Int] = [:]
    public var refused: [RefusalReason: Int] = [:]
    /// Logs by severity name (`none`: no valid PRI) and by facility name.
    public var bySeverity: [String: Int] = [:]
    public var byFacility: [String: Int] = [:]

    public init(summing counters: [PipelineCounters]) {
        for severity in SyslogSeverity.allCases {
            bySeverity[severity.description] = counters.reduce(0) { $0 + $1.severities[severity.rawValue].load }
        }
        bySeverity["none"] = counters.reduce(0) { $0 + $1.severities[8].load }
        for (code, name) in SyslogFacility.names.enumerated() {
            byFacility[name] = counters.reduce(0) { $0 + $1.facilities[code].load }
        }
        senderEvictions = counters.reduce(0) { $0 + $1.senderEvictions.load }
        for reason in FrameAuthFailure.allCases {
            unauthenticated[reason] = counters.reduce(0) { $0 + $1.unauthenticated[reason.rawValue].load }
        }
        for reason in RefusalReason.allCases {
            refused[reason] = counters.reduce(0) { $0 + $1.refused[reason.rawValue].load }
        }
        for transport in Transport.allCases {
            received[transport] = counters.reduce(0) { $0 + $1.received[transport.rawValue].load }
            receivedBytes[transport] = counters.reduce(0) { $0 + $1.receivedBytes[transport.rawValue].load }
        }
        for outcome in FrameOutcome.allCases {
            frames[outcome] = counters.reduce(0) { $0 + $1.frames[outcome.rawValue].load }
        }
        for reason in DropReason.allCases {
            dropped[reason] = counters.reduce(0) { $0 + $1.dropped[reason.rawValue].load }
        }
    }

    public var receivedTotal: Int { received.values.reduce(0, +) }
    public var droppedTotal: Int { dropped.values.reduce(0, +) }
    public var refusedTotal: Int { refused.values.reduce(0, +) }
}

/// What became of a `ferry://` frame this Ferry received.
public enum FrameOutcome: Int, CaseIterable, Sendable, CustomStringConvertible {
    /// Valid and new: its logs were taken and it was acknowledged.
    case accepted
    /// A retransmission of a frame already taken: acknowledged again, not delivered again.
    case duplicate
    /// Older than the dedupe window: not delivered, not acknowledged.
    case stale
    /// Older than its time-to-live: the sender has sent its logs elsewhere.
    case expired
    /// No room in the buffer: not acknowledged, so the sender keeps and retries it.
    case rejectedFull
    /// Failed validation; counted as one log dropped `malformed`.
    case malformed
    /// Not signed by a key this Ferry holds; counted as one log dropped `unauthenticated`.
    case unauthenticated

    public var description: String {
        switch self {
        case .accepted: return "accepted"
        case .duplicate: return "duplicate"
        case .stale: return "stale"
        case .expired: return "expired"
        case .rejectedFull: return "rejected_full"
        case .malformed: return "malformed"
        case .unauthenticated: return "unauthenticated"
        }
    }
}
