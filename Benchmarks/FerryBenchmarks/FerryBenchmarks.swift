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
}

/// Metrics every benchmark reports; malloc counts come from the MallocInterposer trait.
let ferryMetrics: [BenchmarkMetric] = [.throughput, .wallClock, .mallocCountTotal]

func ferryConfiguration(_ scaling: BenchmarkScalingFactor) -> Benchmark.Configuration {
    .init(metrics: ferryMetrics, warmupIterations: 3, scalingFactor: scaling, maxDuration: .seconds(2), maxIterations: 2_000)
}

/// SplitMix64, the same generator Ferry draws jitter from on its loops
/// (FerryCore's `FastRandom` is internal); fixed seed for repeatable runs.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
