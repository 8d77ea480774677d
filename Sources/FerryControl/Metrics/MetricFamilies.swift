import FerryCore
import Prometheus

/// Shorthands for registering Ferry's metric families with help texts, so that
/// every family is registered in one place with one set of labels (the
/// registry traps on a name registered twice with different shapes).
extension PrometheusCollectorRegistry {
    func ferryCounter(_ name: String, _ help: String, _ labels: [(String, String)] = []) -> Counter {
        makeCounter(descriptor: .ferry(name, unit: "total", help: help), labels: labels)
    }

    func ferryGauge(_ name: String, unit: String = "", _ help: String, _ labels: [(String, String)] = []) -> Gauge {
        makeGauge(descriptor: .ferry(name, unit: unit, help: help), labels: labels)
    }
}

extension MetricNameDescriptor {
    static func ferry(_ name: String, unit: String, help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "ferry", metricName: name, unitName: unit, helpText: help)
    }
}

/// A counter fed from a running total at scrape time: it adds what the total
/// grew by since the last scrape, so the data path keeps only cheap atomics.
struct TotalCounter {
    let counter: Counter
    private(set) var exported = 0

    init(_ counter: Counter) {
        self.counter = counter
    }

    /// A total below the last one exported started again (a route a reload
    /// changed has new counts, a re-made socket new kernel counters): what it
    /// counts now is added on top, so the counter never goes down.
    mutating func update(to total: Int) {
        if total < exported { exported = 0 }
        if total > exported {
            counter.increment(by: Int64(total - exported))
            exported = total
        }
    }
}

extension PrometheusCollectorRegistry {
    /// Removes families of something that is gone (an upstream, route or
    /// listener a reload removed), so `/metrics` stops showing their last values.
    func unregister(counters: [TotalCounter] = [], gauges: [Gauge] = []) {
        for counter in counters { unregisterCounter(counter.counter) }
        for gauge in gauges { unregisterGauge(gauge) }
    }
}
