#if canImport(Glibc)
    import Glibc
#endif

/// What `/v1/status` and `/metrics` show of the spool.
public struct SpoolSnapshot: Sendable, Codable, Equatable {
    public var directory: String
    public var fsync: String
    /// Bytes the segment files take, and the limit (`spool.max-bytes`).
    public var bytes: Int
    public var maxBytes: Int
    /// Logs in the spool not yet delivered (in memory or on disk only).
    public var logs: Int
    public var segments: Int
    /// Age of the oldest undelivered log (0 when none waits).
    public var oldestRecordAgeSeconds: Double
    /// Shards whose newest logs are on disk only (the memory window was full), to be read back in order.
    public var spillingShards: Int
    /// Undelivered logs found at start (an earlier run's), sent before anything new.
    public var recoveredAtStart: Int
    /// Of those, sequences with no good record (damage), found by the start-up scan.
    public var damagedRecordsAtStart: Int
    /// Bytes skipped as damage and cut as a torn tail at start.
    public var damagedBytesAtStart: Int
    public var tornBytesAtStart: Int
    /// Files in the spool directory that are not Ferry's (left alone).
    public var foreignFiles: [String]
    /// Syncs done and the time they took.
    public var syncs: Int
    public var syncSeconds: Double
    /// The last failed append (the disk is full, say), while it lasts.
    public var writeError: String?
}

extension Spool {
    package var snapshot: SpoolSnapshot {
        let figures = shards.map(\.figures)
        let (syncs, seconds) = syncFigures
        let error = figures.compactMap(\.lastWriteError).first
        return SpoolSnapshot(
            directory: settings.directory, fsync: settings.sync.rawValue, bytes: bytes, maxBytes: settings.maxBytes,
            logs: figures.reduce(0) { $0 + $1.undeliveredLogs }, segments: figures.reduce(0) { $0 + $1.segments },
            oldestRecordAgeSeconds: figures.map(\.oldestAgeSeconds).max() ?? 0, spillingShards: figures.filter(\.spilling).count,
            recoveredAtStart: recoveries.reduce(0) { $0 + $1.recovered },
            damagedRecordsAtStart: recoveries.reduce(0) { $0 + $1.damagedRecords },
            damagedBytesAtStart: recoveries.reduce(0) { $0 + $1.damagedBytes }, tornBytesAtStart: recoveries.reduce(0) { $0 + $1.tornBytes },
            foreignFiles: recoveries.flatMap(\.foreignFiles), syncs: syncs, syncSeconds: seconds,
            writeError: error.map { String(cString: strerror($0)) })
    }
}

extension Relay {
    /// The spool's figures, or nil without one.
    public var spoolSnapshot: SpoolSnapshot? { spool?.snapshot }

    /// Logs Ferry holds that are not yet delivered: the spool's undelivered
    /// logs with one, the memory buffer's without.
    public var queuedLogs: Int { spool?.snapshot.logs ?? capacity.usedLogs }

    /// Undelivered logs an earlier run left in the spool (0 without one).
    public var recoveredLogs: Int { spool?.recoveries.reduce(0) { $0 + $1.recovered } ?? 0 }

    /// Observes each spool sync's duration (the metrics backend's histogram).
    public func observeSpoolSyncs(_ observe: @escaping @Sendable (Duration) -> Void) {
        spool?.observeSyncs(observe)
    }
}
