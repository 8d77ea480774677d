/// The per-source rate limit of every listener (`rate-limit.*`).
public struct RateLimitSettings: Sendable, Equatable {
    /// Logs per second one source address may send (`rate-limit.logs-per-second`).
    public var logsPerSecond: Double
    /// Logs a source may send at once above its rate (`rate-limit.burst`; default: one second's worth).
    public var burst: Int
    /// Sources tracked per listener; the least recently seen is evicted beyond it (`rate-limit.max-sources`).
    public var maxSources: Int

    public init(logsPerSecond: Double, burst: Int, maxSources: Int = 65_536) {
        self.logsPerSecond = logsPerSecond
        self.burst = burst
        self.maxSources = maxSources
    }
}
