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
}
