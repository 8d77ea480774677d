import NIOCore

/// Lets one warning per key through per interval and counts the rest, so a
/// flood of identical problems (one per dropped datagram, say) becomes one
/// log line with a count of what was suppressed.
struct WarningLimiter {
    let interval: TimeAmount
    private var windows: [Int: (since: NIODeadline, suppressed: Int)] = [:]

    init(interval: TimeAmount) {
        self.interval = interval
    }

    /// Returns the number of warnings suppressed since the last one if this one
    /// may be logged now, or `nil` if it must be suppressed (and is counted).
    mutating func shouldLog(key: Int, now: NIODeadline = .now()) -> Int? {
        if let window = windows[key], now - window.since < interval {
            windows[key] = (window.since, window.suppressed + 1)
            return nil
        }
        let suppressed = windows[key]?.suppressed ?? 0
        windows[key] = (now, 0)
        return suppressed
    }
}
