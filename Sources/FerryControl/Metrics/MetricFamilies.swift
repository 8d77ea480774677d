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

    mutating func update(to total: Int) {
        if total > exported {
            counter.increment(by: Int64(total - exported))
            exported = total
        }
    }
}
