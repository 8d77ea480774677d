/// Why a log was not forwarded. Every drop is counted under exactly one reason.
public enum DropReason: Int, CaseIterable, Sendable, CustomStringConvertible {
    /// Larger than `datagram.max-bytes` (the kernel would have truncated it; never forwarded cut).
    case oversize
    /// The bounded buffer had no room; the newest logs are the ones dropped.
    case queueFull
    /// A frame (`ferry://`) that failed validation: bad checksum, truncated, unknown version.
    case malformed
    /// A frame used all its attempts and neither another upstream nor the buffer could take it back.
    case retriesExhausted
    /// The spool reached `spool.max-bytes`; the newest logs are the ones dropped.
    case spoolFull
    /// Appending to the spool failed (the disk is full, say); nothing half-written stays.
    case spoolWriteFailed
    /// A spooled log could not be read back: its record failed its checksum or its file is gone.
    case spoolCorrupt
    /// An octet-counted TCP/TLS message cut off by the end of its connection (the part received is not forwarded).
    case truncated
    /// A TCP/TLS stream that could not be framed further (a length that is not one, or no sender would write):
    /// counted once per connection, which is closed.
    case framingError
    /// A `ferry://` frame not signed by a key this Ferry holds (`auth.key-file`), or keyed while this Ferry has none:
    /// counted as one log, like `malformed`, since nothing in it can be trusted (reasons in `frames_unauthenticated`).
    case unauthenticated
    /// A route fell further behind than its backlog cap (`routes.NAME.max-backlog-bytes`, or its share of the
    /// buffer): its oldest waiting logs were dropped, for that route only (counted per route in status).
    case routeOverflow
    /// The log matched no route (every route has a `match` it does not meet).
    case noRoute
    /// A reload removed the log's route (or its upstream) and the log could not be delivered within `drain.timeout`.
    case routeRemoved

    /// The label value used in metrics, status and logs.
    public var description: String {
        switch self {
        case .oversize: return "oversize"
        case .queueFull: return "queue_full"
        case .malformed: return "malformed"
        case .retriesExhausted: return "retries_exhausted"
        case .spoolFull: return "spool_full"
        case .spoolWriteFailed: return "spool_write_failed"
        case .spoolCorrupt: return "spool_corrupt"
        case .truncated: return "truncated"
        case .framingError: return "framing_error"
        case .unauthenticated: return "unauthenticated"
        case .routeOverflow: return "route_overflow"
        case .noRoute: return "no_route"
        case .routeRemoved: return "route_removed"
        }
    }
}
