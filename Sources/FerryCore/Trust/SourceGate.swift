import NIOCore
import Synchronization

/// What a listener lets in, decided per source address before anything is
/// parsed: its allowlist (`allow`) and the per-source rate limit
/// (`rate-limit.*`). One per listener, shared by its receive threads and
/// connections; the rate table's lock is taken once per burst, not per log.
final class SourceGate: Sendable {
    enum Verdict {
        case admitted
        case denied
        case rateLimited
    }

    let allowlist: SourceAllowlist?
    /// Whether `rate-limit.*` is set (else the table stays empty and is never locked).
    let isRateLimited: Bool
    private let table: Mutex<SourceRateTable>

    init(allowlist: SourceAllowlist?, rateLimit: RateLimitSettings?) {
        self.allowlist = allowlist
        self.isRateLimited = rateLimit != nil
        let settings = rateLimit ?? RateLimitSettings(logsPerSecond: 0, burst: 0, maxSources: 0)
        self.table = Mutex(SourceRateTable(rate: settings.logsPerSecond, burst: settings.burst, capacity: settings.maxSources))
    }

    /// Nil when neither an allowlist nor a rate limit is configured (nothing to check).
    static func make(allowlist: SourceAllowlist?, rateLimit: RateLimitSettings?) -> SourceGate? {
        allowlist == nil && rateLimit == nil ? nil : SourceGate(allowlist: allowlist, rateLimit: rateLimit)
    }

    /// Runs `body` with a decision function for one log's source (`frame`: a
    /// `ferry://` frame, held to the allowlist only: its sender is trusted by
    /// key and backs off by itself). The rate table is locked once around it.
    func deciding<T>(_ body: (_ decide: (SourceKey, _ frame: Bool) -> Verdict) -> T) -> T {
        let allowlist = self.allowlist
        guard isRateLimited else {
            return body { key, _ in allowlist.map { $0.allows(key) } == false ? .denied : .admitted }
        }
        let now = NIODeadline.now().uptimeNanoseconds
        return table.withLock { table in
            body { key, frame in
                if let allowlist, !allowlist.allows(key) { return .denied }
                if frame { return .admitted }
                return table.take(key, now: now) == 1 ? .admitted : .rateLimited
            }
        }
    }

    /// How many of `count` logs from `key` the rate limit lets through now (all, without one).
    ///
    /// - Parameter allOrNothing: all `count` or none (an HTTP request is taken whole).
    func admit(_ count: Int, from key: SourceKey, allOrNothing: Bool = false) -> Int {
        guard isRateLimited else { return count }
        let now = NIODeadline.now().uptimeNanoseconds
        return table.withLock { $0.take(key, count: count, now: now, allOrNothing: allOrNothing) }
    }

    /// Sources evicted from the rate table, and the loudest sources, for status.
    var snapshot: SourceGateSnapshot? {
        guard isRateLimited else { return nil }
        return table.withLock { table in
            SourceGateSnapshot(
                sourcesTracked: table.count, sourcesEvicted: table.evictions,
                topRateLimited: table.topDropped(10).map { .init(source: $0.source.description, rateLimited: $0.dropped, admitted: $0.admitted) })
        }
    }
}

/// What `/v1/status` shows of a listener's rate limit (addresses here, never in metric labels).
public struct SourceGateSnapshot: Sendable, Codable, Equatable {
    public struct Source: Sendable, Codable, Equatable {
        public var source: String
        public var rateLimited: Int
        public var admitted: Int
    }

    public var sourcesTracked: Int
    public var sourcesEvicted: Int
    /// Up to ten sources with the most logs refused as `rate_limited`, most first.
    public var topRateLimited: [Source]
}

/// Why logs were refused at the door: they never entered Ferry, so they are
/// not in `received`, and `sent = received + refused + kernel drops`.
public enum RefusalReason: Int, CaseIterable, Sendable, CustomStringConvertible {
    /// From an address no block of the listener's `allow` covers.
    case denied
    /// Over the source's `rate-limit.logs-per-second` (and its burst).
    case rateLimited

    public var description: String {
        switch self {
        case .denied: return "denied"
        case .rateLimited: return "rate_limited"
        }
    }
}
