/// Where an upstream records how long each batch or frame took from receipt
/// to acknowledgement, send or write.
///
/// FerryCore only counts; the metrics backend (a Prometheus histogram, wired in
/// FerryControl) conforms to this, so the core has no metrics types of its own.
public protocol LatencyRecorder: Sendable {
    func recordNanoseconds(_ duration: Int64)
}

/// Makes the latency recorder of each upstream (nil: none), given its URL.
public typealias LatencyRecorders = @Sendable (UpstreamURL) -> (any LatencyRecorder)?
