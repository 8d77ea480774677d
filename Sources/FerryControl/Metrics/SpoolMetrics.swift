import FerryCore
import Prometheus

/// The spool's families (`ferry_spool_*`), registered only when `spool.dir`
/// is set. Logs the spool refused or could not read back are counted in
/// `ferry_dropped_total` under `spool_full`, `spool_write_failed` and
/// `spool_corrupt`.
struct SpoolMetrics: Sendable {
    private let bytes: Gauge
    private let maxBytes: Gauge
    private let logs: Gauge
    private let segments: Gauge
    private let oldestAge: Gauge
    private let spilling: Gauge
    private let recovered: Gauge
    private let damagedAtStart: Gauge
    private let writeFailing: Gauge

    /// Buckets of the sync histogram: 50 µs to 5 s.
    static let syncBuckets: [Duration] = [
        .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .microseconds(2500),
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
        .milliseconds(500), .seconds(1), .seconds(5),
    ]

    init(registry: PrometheusCollectorRegistry, relay: Relay) {
        bytes = registry.ferryGauge("spool", unit: "bytes", "Bytes the spool's segment files take.")
        maxBytes = registry.ferryGauge("spool_capacity", unit: "bytes", "Largest size of the spool (spool.max-bytes).")
        logs = registry.ferryGauge("spool_logs", "Logs in the spool not yet delivered (in memory or on disk only).")
        segments = registry.ferryGauge("spool_segments", "Segment files in the spool.")
        oldestAge = registry.ferryGauge("spool_oldest_record_age", unit: "seconds", "Age of the oldest undelivered log in the spool.")
        spilling = registry.ferryGauge(
            "spool_spilling_shards", "Spool shards whose newest logs are on disk only (the memory buffer was full), read back in order.")
        recovered = registry.ferryGauge("spool_recovered_logs", "Undelivered logs found in the spool at start, sent before anything new.")
        damagedAtStart = registry.ferryGauge(
            "spool_damaged_records_at_start", "Records the start-up scan found damaged or missing (dropped as spool_corrupt when reached).")
        writeFailing = registry.ferryGauge("spool_write_failing", "1 while appends to the spool fail (a full disk, say), else 0.")
        let histogram = registry.makeDurationHistogram(
            descriptor: .ferry("spool_sync_duration", unit: "seconds", help: "Time one spool sync (fdatasync of every shard's new data) took."),
            labels: [], buckets: Self.syncBuckets)
        relay.observeSpoolSyncs {
            histogram.recordNanoseconds(Int64($0.components.seconds) * 1_000_000_000 + $0.components.attoseconds / 1_000_000_000)
        }
    }

    func collect(_ snapshot: SpoolSnapshot) {
        bytes.set(Int64(snapshot.bytes))
        maxBytes.set(Int64(snapshot.maxBytes))
        logs.set(Int64(snapshot.logs))
        segments.set(Int64(snapshot.segments))
        oldestAge.set(snapshot.oldestRecordAgeSeconds)
        spilling.set(Int64(snapshot.spillingShards))
        recovered.set(Int64(snapshot.recoveredAtStart))
        damagedAtStart.set(Int64(snapshot.damagedRecordsAtStart))
        writeFailing.set(Int64(snapshot.writeError == nil ? 0 : 1))
    }
}
