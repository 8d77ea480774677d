import NIOCore

/// When to retry a frame that was not acknowledged: exponential backoff with
/// full jitter (a uniformly random wait between 0 and `base × 2^(attempt−1)`,
/// capped), so that many senders retrying after one outage spread out instead
/// of arriving together.
public struct RetryPolicy: Sendable, Equatable {
    /// Upper bound of the first retry's wait.
    public var base: TimeAmount
    /// Largest upper bound any wait may have.
    public var cap: TimeAmount
    /// Sends of one frame to one upstream, the first included.
    public var maximumAttempts: Int

    public init(base: TimeAmount = .milliseconds(100), cap: TimeAmount = .seconds(5), maximumAttempts: Int = 6) {
        self.base = base
        self.cap = cap
        self.maximumAttempts = maximumAttempts
    }

    /// The upper bound of the wait before retry number `retry` (1 for the first retry).
    public func ceiling(forRetry retry: Int) -> TimeAmount {
        let doublings = min(max(retry - 1, 0), 30)
        let (nanos, overflow) = base.nanoseconds.multipliedReportingOverflow(by: Int64(1) << doublings)
        return overflow ? cap : min(.nanoseconds(nanos), cap)
    }

    /// A jittered wait before retry number `retry`, drawn from `generator`.
    public func delay(forRetry retry: Int, using generator: inout some RandomNumberGenerator) -> TimeAmount {
        let ceiling = ceiling(forRetry: retry).nanoseconds
        guard ceiling > 0 else { return .zero }
        return .nanoseconds(Int64.random(in: 0...ceiling, using: &generator))
    }

    /// Whether a frame sent `attempts` times may be sent again.
    public func allowsRetry(afterAttempts attempts: Int) -> Bool {
        attempts < maximumAttempts
    }
}
