import Benchmark
import FerryCore
import NIOCore

/// The pure state machines of `Resilience/`, over a fake clock.
func registerResilienceBenchmarks() {
    Benchmark("CircuitBreaker closed: allowsTraffic + record(success)", configuration: ferryConfiguration(.kilo)) { benchmark in
        var breaker = CircuitBreaker()
        var now = NIODeadline.uptimeNanoseconds(1_000_000_000)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            now = now + .microseconds(10)
            blackHole(breaker.allowsTraffic(now: now).allowed)
            blackHole(breaker.record(success: true, now: now))
        }
        benchmark.stopMeasurement()
        precondition(breaker.state == .closed)
    }

    Benchmark("CircuitBreaker closed: record, 1 failure in 10", configuration: ferryConfiguration(.kilo)) { benchmark in
        // Failure rate stays below the threshold and never 5 in a row: the breaker stays closed.
        var breaker = CircuitBreaker()
        var now = NIODeadline.uptimeNanoseconds(1_000_000_000)
        var call = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            now = now + .microseconds(10)
            call += 1
            blackHole(breaker.allowsTraffic(now: now).allowed)
            blackHole(breaker.record(success: call % 10 != 0, now: now))
        }
        benchmark.stopMeasurement()
        precondition(breaker.state == .closed)
    }

    Benchmark("CircuitBreaker full cycle: trip, wait, 3 probes, close", configuration: ferryConfiguration(.kilo)) { benchmark in
        // One inner iteration = 5 failures (trip to open), the open wait, 3
        // successful probes (half-open, then closed): 3 transitions, whose
        // reasons are interpolated strings.
        var breaker = CircuitBreaker()
        var now = NIODeadline.uptimeNanoseconds(1_000_000_000)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            for _ in 0..<5 {
                now = now + .milliseconds(1)
                blackHole(breaker.record(success: false, now: now))
            }
            now = now + .seconds(31)  // past the longest open wait
            blackHole(breaker.acquire(now: now))
            for _ in 0..<3 {
                _ = breaker.acquire(now: now)
                blackHole(breaker.record(success: true, now: now))
            }
        }
        benchmark.stopMeasurement()
        precondition(breaker.state == .closed)
    }

    Benchmark("RetryPolicy.delay (full jitter, retries 1…6)", configuration: ferryConfiguration(.kilo)) { benchmark in
        let policy = RetryPolicy()
        var random = FastRandom(seed: 0x5EED)
        var retry = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            retry = retry % 6 + 1
            blackHole(policy.delay(forRetry: retry, using: &random))
        }
    }

    Benchmark("RetryBudget: recordFirstAttempts + tryRetry", configuration: ferryConfiguration(.kilo)) { benchmark in
        var budget = RetryBudget()
        var now = NIODeadline.uptimeNanoseconds(1_000_000_000)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            now = now + .milliseconds(1)
            budget.recordFirstAttempts(1, now: now)
            blackHole(budget.tryRetry(now: now))
        }
        benchmark.stopMeasurement()
        precondition(budget.retries > 0 && budget.exhausted > 0)
    }
}
