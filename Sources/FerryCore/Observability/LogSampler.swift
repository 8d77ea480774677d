import Logging
import NIOCore

/// Writes a `log sampled` line for a configured fraction of received logs
/// (`trace.sample-rate`), with the trace id the log carries itself, if any.
struct LogSampler {
    /// The fraction as a threshold on a 64-bit random draw (0: off).
    private let threshold: UInt64
    private var random = FastRandom()
    private let logger: Logger
    private let loopIndex: Int

    init(rate: Double, logger: Logger, loopIndex: Int) {
        self.threshold = rate >= 1 ? .max : UInt64(max(0, rate) * Double(UInt64.max))
        self.logger = logger
        self.loopIndex = loopIndex
    }

    var isEnabled: Bool { threshold > 0 }

    /// Considers each of `records` for a sample line.
    mutating func consider(_ records: some Sequence<ByteBuffer>, transport: Transport) {
        guard threshold > 0 else { return }
        for record in records where random.next() <= threshold {
            var metadata: Logger.Metadata = [
                "record.bytes": "\(record.readableBytes)", "record.transport": "\(transport)", "loop": "\(loopIndex)",
            ]
            if let traceID = RecordTraceID.extract(from: record) { metadata["record.trace_id"] = "\(traceID)" }
            logger.info("log sampled", metadata: metadata)
        }
    }
}
