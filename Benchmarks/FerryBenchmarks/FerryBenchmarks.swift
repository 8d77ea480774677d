import Benchmark

/// Ferry's micro-benchmarks (package-benchmark). Run from the package root:
///
///     swift package --disable-sandbox benchmark
///
/// Every benchmark runs `scalingFactor` (1,000) inner iterations per sample;
/// the table shows figures per inner iteration (one encode, one breaker call,
/// one 32-datagram burst, …). `--scale` shows them per sample instead.
let benchmarks: @Sendable () -> Void = {
    registerCodecBenchmarks()
    registerResilienceBenchmarks()
    registerCapacityBenchmarks()
    registerIngestPathBenchmarks()
    registerDirectPathBenchmarks()
    registerHotPathBenchmarks()
    registerSyslogParserBenchmarks()
}

/// Metrics every benchmark reports; malloc counts come from the MallocInterposer trait.
let ferryMetrics: [BenchmarkMetric] = [.throughput, .wallClock, .mallocCountTotal]

func ferryConfiguration(_ scaling: BenchmarkScalingFactor) -> Benchmark.Configuration {
    .init(metrics: ferryMetrics, warmupIterations: 3, scalingFactor: scaling, maxDuration: .seconds(2), maxIterations: 2_000)
}
