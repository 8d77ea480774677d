#if canImport(Glibc)
    import Glibc
#endif

/// Wall-clock time for frame timestamps (ages across hosts need a shared clock).
enum WallClock {
    static func milliseconds() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return UInt64(spec.tv_sec) * 1000 + UInt64(spec.tv_nsec) / 1_000_000
    }

    /// Seconds since the epoch (spool record ages, which outlive the process).
    static func seconds() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }
}
