import NIOCore

/// The smoothed round-trip time of one path and the retransmission timeout
/// that follows from it, as RFC 6298 computes them for TCP: SRTT and RTTVAR
/// with gains 1/8 and 1/4, and RTO = SRTT + 4 × RTTVAR, clamped.
///
/// Only frames acknowledged after a single send give samples (Karn's rule): an
/// ack for a retransmitted frame cannot say which send it answers.
public struct RoundTripEstimator: Sendable, Equatable {
    /// The smoothed round-trip time; nil before the first sample.
    public private(set) var smoothed: TimeAmount?
    public private(set) var variation: TimeAmount = .zero
    /// The most recent sample.
    public private(set) var latest: TimeAmount?

    public init() {}

    public mutating func add(sample: TimeAmount) {
        let sample = max(sample, .zero)
        latest = sample
        guard let smoothed else {
            self.smoothed = sample
            variation = .nanoseconds(sample.nanoseconds / 2)
            return
        }
        let deviation = abs(smoothed.nanoseconds - sample.nanoseconds)
        variation = .nanoseconds((3 * variation.nanoseconds + deviation) / 4)
        self.smoothed = .nanoseconds((7 * smoothed.nanoseconds + sample.nanoseconds) / 8)
    }

    /// SRTT + 4 × RTTVAR within `minimum...maximum`; `maximum` before any sample.
    public func timeout(minimum: TimeAmount, maximum: TimeAmount) -> TimeAmount {
        guard let smoothed else { return maximum }
        let (variance, overflow) = variation.nanoseconds.multipliedReportingOverflow(by: 4)
        let rto = overflow ? maximum : .nanoseconds(smoothed.nanoseconds &+ variance)
        return min(max(rto, minimum), maximum)
    }
}
