/// What one event loop's pipeline has received and dropped.
///
/// One instance per loop, so increments from different loops never share a
/// cache line; readers sum all of them (``PipelineTotals``).
public final class PipelineCounters: Sendable {
    let received: [AtomicCounter] = Transport.allCases.map { _ in AtomicCounter() }
    let receivedBytes: [AtomicCounter] = Transport.allCases.map { _ in AtomicCounter() }
    let dropped: [AtomicCounter] = DropReason.allCases.map { _ in AtomicCounter() }

    public init() {}

    @inline(__always)
    func countReceived(_ transport: Transport, logs: Int, bytes: Int) {
        received[transport.rawValue].add(logs)
        receivedBytes[transport.rawValue].add(bytes)
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

    public init(summing counters: [PipelineCounters]) {
        for transport in Transport.allCases {
            received[transport] = counters.reduce(0) { $0 + $1.received[transport.rawValue].load }
            receivedBytes[transport] = counters.reduce(0) { $0 + $1.receivedBytes[transport.rawValue].load }
        }
        for reason in DropReason.allCases {
            dropped[reason] = counters.reduce(0) { $0 + $1.dropped[reason.rawValue].load }
        }
    }

    public var receivedTotal: Int { received.values.reduce(0, +) }
    public var droppedTotal: Int { dropped.values.reduce(0, +) }
}
