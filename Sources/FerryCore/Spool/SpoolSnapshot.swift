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
    /// With `routes`, each route's own spool (the figures above are their sums).
    public var routes: [RouteSpool]? = nil

    /// One route's spool.
    public struct RouteSpool: Sendable, Codable, Equatable {
        public var route: String
        public var directory: String
        public var logs: Int
        public var bytes: Int
        /// Its cap: `max-backlog-bytes`, or a share of `spool.max-bytes`; past it the route drops its oldest (`route_overflow`).
        public var maxBytes: Int
        public var oldestRecordAgeSeconds: Double
        public var spilling: Bool
    }
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

extension SpoolRegistry {
    /// Every route's spool summed, and each on its own.
    package var snapshot: SpoolSnapshot {
        let parts = spools.map { (route: $0.route, spool: $0.spool, snapshot: $0.spool.snapshot) }
        var total = SpoolSnapshot(
            directory: settings.directory, fsync: settings.sync.rawValue, bytes: 0, maxBytes: settings.maxBytes, logs: 0, segments: 0,
            oldestRecordAgeSeconds: 0, spillingShards: 0, recoveredAtStart: 0, damagedRecordsAtStart: 0, damagedBytesAtStart: 0,
            tornBytesAtStart: 0, foreignFiles: [], syncs: 0, syncSeconds: 0, writeError: nil, routes: [])
        for part in parts {
            let one = part.snapshot
            total.bytes += one.bytes
            total.logs += one.logs
            total.segments += one.segments
            total.oldestRecordAgeSeconds = max(total.oldestRecordAgeSeconds, one.oldestRecordAgeSeconds)
            total.spillingShards += one.spillingShards
            total.recoveredAtStart += one.recoveredAtStart
            total.damagedRecordsAtStart += one.damagedRecordsAtStart
            total.damagedBytesAtStart += one.damagedBytesAtStart
            total.tornBytesAtStart += one.tornBytesAtStart
            total.foreignFiles += one.foreignFiles.map { "\(part.route)/\($0)" }
            total.syncs += one.syncs
            total.syncSeconds += one.syncSeconds
            total.writeError = total.writeError ?? one.writeError
            total.routes?.append(
                SpoolSnapshot.RouteSpool(
                    route: part.route, directory: one.directory, logs: one.logs, bytes: one.bytes, maxBytes: one.maxBytes,
                    oldestRecordAgeSeconds: one.oldestRecordAgeSeconds, spilling: one.spillingShards > 0))
        }
        return total
    }
}

extension Relay {
    /// The spool's figures, or nil without one.
    public var spoolSnapshot: SpoolSnapshot? { spool?.snapshot ?? registry?.snapshot }

    /// Logs Ferry holds that are not yet delivered: the spool's undelivered
    /// logs with one, the memory buffer's without.
    public var queuedLogs: Int { spoolSnapshot?.logs ?? capacity.usedLogs }

    /// Undelivered logs an earlier run left in the spool (0 without one).
    public var recoveredLogs: Int { spoolSnapshot?.recoveredAtStart ?? 0 }

    /// Observes each spool sync's duration (the metrics backend's histogram).
    public func observeSpoolSyncs(_ observe: @escaping @Sendable (Duration) -> Void) {
        spool?.observeSyncs(observe)
        registry?.observeSyncs(observe)
    }
}
