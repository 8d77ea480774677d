import Logging
import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// Counts dropped logs by reason and says so in the log: at most one warning
/// per reason and ten seconds, with how many were suppressed since, and a trace
/// id for the dropped batch so its line can be followed like a frame's.
///
/// One per thread that drops (a loop's pipeline, a receive thread): it is a
/// value confined to its owner; the counters it adds to are shared atomics.
struct DropReporter {
    let counters: PipelineCounters
    let logger: Logger
    let loopIndex: Int
    private var warnings = WarningLimiter(interval: .seconds(10))
    private var random = FastRandom()

    init(counters: PipelineCounters, logger: Logger, loopIndex: Int) {
        self.counters = counters
        self.logger = logger
        self.loopIndex = loopIndex
    }

    /// Counts `logs` dropped for `reason`; `detail` is the size or fill level that decided it.
    mutating func drop(_ reason: DropReason, logs: Int, detail: Int, error: String? = nil, source: SocketAddress? = nil, route: String? = nil) {
        counters.countDropped(reason, logs: logs)
        guard let suppressed = warnings.shouldLog(key: reason.rawValue) else { return }
        var metadata: Logger.Metadata = [
            "drop.reason": "\(reason)",
            "drop.logs": "\(logs)",
            "drop.detail": "\(detail)",
            "loop": "\(loopIndex)",
            "warnings.suppressed": "\(suppressed)",
            "trace_id": "\(TraceID.random(using: &random))",
        ]
        if let error { metadata["error"] = "\(error)" }
        if let source { metadata["source"] = "\(source.hostAndPort)" }
        if let route { metadata["route"] = "\(route)" }
        logger.warning("logs dropped", metadata: metadata)
    }
}

extension DropReporter {
    /// Counts `logs` refused at the door (`denied`, `rate_limited`) and names
    /// the source in a warning (one per reason and ten seconds on this thread).
    mutating func refuse(_ reason: RefusalReason, logs: Int, source: SourceKey, listener: String) {
        counters.refused[reason.rawValue].add(logs)
        guard let suppressed = warnings.shouldLog(key: 1_000 + reason.rawValue) else { return }
        logger.warning(
            reason == .denied ? "logs refused: source not allowed" : "logs refused: source over its rate limit",
            metadata: [
                "refusal.reason": "\(reason)", "refusal.logs": "\(logs)", "source": "\(source.description)", "listener": "\(listener)",
                "loop": "\(loopIndex)", "warnings.suppressed": "\(suppressed)",
            ])
    }

    /// Counts the logs a spool admission did not take, under its reason: the
    /// byte limit (`spool_full`, detail: the spool's bytes) or a failed write
    /// (`spool_write_failed`, detail: errno).
    mutating func dropRefused(_ admission: SpoolShard.Admission, by shard: SpoolShard, route: String? = nil) {
        guard admission.refused > 0 else { return }
        switch admission.refusal {
        case .writeFailed(let code):
            drop(.spoolWriteFailed, logs: admission.refused, detail: Int(code), error: String(cString: strerror(code)), route: route)
        case .full, nil:
            drop(.spoolFull, logs: admission.refused, detail: shard.budget.bytes, route: route)
        }
    }
}
