/// One route (`routes.NAME`): which logs it takes and the chain of upstreams they go to.
///
/// A log goes to every route it matches (fan-out). Without `routes`, the
/// `upstreams` list is one route named `default` that takes everything.
public struct RouteSettings: Sendable, Equatable {
    /// How a route uses its upstreams.
    public enum Mode: String, Sendable, CaseIterable {
        /// The first upstream whose breaker lets traffic through takes everything (today's behaviour).
        case failover
        /// Rendezvous hashing by source address over the upstreams whose breaker lets traffic through:
        /// one source stays on one member while it is healthy, and moves when it is not.
        case balance
    }

    public var name: String
    public var mode: Mode
    public var upstreams: [UpstreamURL]
    public var match: RouteMatch
    /// Most payload bytes this route may keep waiting (its share of the buffer);
    /// past it the route drops its oldest logs as `route_overflow`. Nil: an equal share of `queue.capacity-bytes`.
    public var maxBacklogBytes: Int?

    public init(name: String, mode: Mode = .failover, upstreams: [UpstreamURL], match: RouteMatch = RouteMatch(), maxBacklogBytes: Int? = nil) {
        self.name = name
        self.mode = mode
        self.upstreams = upstreams
        self.match = match
        self.maxBacklogBytes = maxBacklogBytes
    }

    /// The name of the one route `upstreams` makes.
    public static let defaultName = "default"
    /// Most routes one configuration may have.
    public static let maxRoutes = 32
    /// The keys under `routes.NAME`.
    static let keys = ["mode", "upstreams", "max-backlog-bytes", "match.severity", "match.facility", "match.source", "match.listener"]

    /// Whether `name` may name a route: 1 to 64 of `a-z`, `0-9`, `_`, `-` (it becomes a metric label and a file name).
    static func isValidName(_ name: String) -> Bool {
        (1...64).contains(name.utf8.count)
            && name.utf8.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 95 || $0 == 45 }
    }
}
