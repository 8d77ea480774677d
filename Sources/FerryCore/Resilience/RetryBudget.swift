import NIOCore

/// Caps retries to a fraction of first attempts, so an outage cannot turn
/// into a retry storm.
///
/// A token bucket: every first attempt deposits `ratio` tokens, time deposits
/// `floorPerSecond` tokens per second (so a quiet sender can still retry), and
/// every retry takes one token. The bucket holds at most `burst` tokens. Over
/// any period T, retries ≤ burst + ratio × first attempts + floorPerSecond × T.
public struct RetryBudget: Sendable {
    public struct Configuration: Sendable, Equatable {
        public var ratio = 0.2
        public var floorPerSecond = 5.0
        public var burst = 10.0

        public init(ratio: Double = 0.2, floorPerSecond: Double = 5.0, burst: Double = 10.0) {
            self.ratio = ratio
            self.floorPerSecond = floorPerSecond
            self.burst = burst
        }
    }

    public let configuration: Configuration
    private var tokens: Double
    private var lastRefill: NIODeadline?
    /// Retries refused because the budget was empty.
    public private(set) var exhausted = 0
    /// Retries the budget allowed.
    public private(set) var retries = 0
    /// First attempts seen.
    public private(set) var firstAttempts = 0

    public init(configuration: Configuration = .init()) {
        self.configuration = configuration
        self.tokens = configuration.burst
    }

    /// Tokens available now (for status).
    public mutating func available(now: NIODeadline) -> Double {
        refill(now: now)
        return tokens
    }

    public mutating func recordFirstAttempts(_ count: Int = 1, now: NIODeadline) {
        refill(now: now)
        firstAttempts += count
        tokens = min(configuration.burst, tokens + configuration.ratio * Double(count))
    }

    /// Takes a token for one retry if there is one.
    public mutating func tryRetry(now: NIODeadline) -> Bool {
        refill(now: now)
        guard tokens >= 1 else {
            exhausted += 1
            return false
        }
        tokens -= 1
        retries += 1
        return true
    }

    private mutating func refill(now: NIODeadline) {
        defer { lastRefill = now }
        guard let last = lastRefill, now > last else { return }
        let seconds = Double((now - last).nanoseconds) / 1e9
        tokens = min(configuration.burst, tokens + configuration.floorPerSecond * seconds)
    }
}
