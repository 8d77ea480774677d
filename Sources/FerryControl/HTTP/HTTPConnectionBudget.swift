#if canImport(Glibc)
    import Glibc
#endif

/// How many HTTP connections Ferry may hold open at once, derived from its
/// file-descriptor limit so that the control plane can never take the
/// descriptors that files, upstream sockets and log rotation need.
///
/// At start Ferry raises its soft `RLIMIT_NOFILE` to the hard limit (as most
/// servers do). The cap is the soft limit minus the descriptors already open
/// minus ``reserve``, at least ``minimum``; `http.max-connections` can only
/// lower it. Past the cap Hummingbird stops accepting (the kernel's backlog
/// holds new connections) until one closes; NIO's accept backoff handles
/// EMFILE/ENFILE from elsewhere without spinning.
public enum HTTPConnectionBudget {
    /// Descriptors kept free for files, sockets and log rotation.
    public static let reserve = 128
    /// The cap never goes below this.
    public static let minimum = 16

    /// Raises the soft descriptor limit to the hard one; returns the soft limit now in force.
    @discardableResult
    public static func raiseDescriptorLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = min(limit.rlim_max, 1 << 20)
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        return Int(clamping: limit.rlim_cur)
    }

    /// The connection cap for a soft limit, descriptors in use and an optional configured maximum (0 = none).
    public static func cap(softLimit: Int, open: Int, configured: Int) -> Int {
        let derived = max(minimum, softLimit - open - reserve)
        return configured > 0 ? min(configured, derived) : derived
    }
}
