import FerryCore
import Prometheus

/// The routes' families and the counts by syslog severity and facility.
/// Labels stay bounded: 9 severities (`none`: no valid PRI), 24 facilities,
/// and at most 32 routes.
struct RouteMetrics {
    private var severity: [String: TotalCounter] = [:]
    private var facility: [String: TotalCounter] = [:]
    private var routed: [String: TotalCounter] = [:]
    private var overflow: [String: TotalCounter] = [:]
    private var queueFull: [String: TotalCounter] = [:]
    private var givenBack: [String: TotalCounter] = [:]
    private var waiting: [String: Gauge] = [:]
    private let registry: PrometheusCollectorRegistry

    init(registry: PrometheusCollectorRegistry, routes: [RouteSnapshot]) {
        self.registry = registry
        for name in SyslogSeverity.allCases.map(\.description) + ["none"] {
            severity[name] = TotalCounter(
                registry.ferryCounter(
                    "logs_by_severity", "Logs received, by syslog severity of their PRI (none: no valid PRI).", [("severity", name)]))
        }
        for name in SyslogFacility.names {
            facility[name] = TotalCounter(
                registry.ferryCounter("logs_by_facility", "Logs received with a valid PRI, by syslog facility.", [("facility", name)]))
        }
        for route in routes { register(route.name) }
    }

    private mutating func register(_ route: String) {
        let label = ("route", route)
        routed[route] = TotalCounter(registry.ferryCounter("route_logs", "Logs a route took (matched, with room for them), by route.", [label]))
        overflow[route] = TotalCounter(
            registry.ferryCounter(
                "route_dropped", "Copies a route dropped, by route and reason (route_overflow: past its backlog cap; queue_full: no room).",
                [label, ("reason", "route_overflow")]))
        queueFull[route] = TotalCounter(
            registry.ferryCounter(
                "route_dropped", "Copies a route dropped, by route and reason (route_overflow: past its backlog cap; queue_full: no room).",
                [label, ("reason", "queue_full")]))
        givenBack[route] = TotalCounter(
            registry.ferryCounter(
                "route_given_back_to_disk", "Logs of a route on disk that left memory past its share, to be read back from its spool.",
                [label]))
        waiting[route] = registry.ferryGauge("route_waiting_logs", "Logs waiting in a route's queues (not in flight), by route.", [label])
    }

    mutating func collect(totals: PipelineTotals, routes: [RouteSnapshot]) {
        for (name, count) in totals.bySeverity { severity[name]?.update(to: count) }
        for (name, count) in totals.byFacility { facility[name]?.update(to: count) }
        for route in routes {
            if routed[route.name] == nil { register(route.name) }
            routed[route.name]?.update(to: route.routed)
            overflow[route.name]?.update(to: route.routeOverflow)
            queueFull[route.name]?.update(to: route.queueFull)
            givenBack[route.name]?.update(to: route.givenBackToDisk)
            waiting[route.name]?.set(Int64(route.waitingLogs))
        }
        // Routes a reload removed: their series end.
        let names = Set(routes.map(\.name))
        for name in routed.keys where !names.contains(name) {
            registry.unregister(
                counters: [routed[name], overflow[name], queueFull[name], givenBack[name]].compactMap { $0 },
                gauges: [waiting[name]].compactMap { $0 })
            routed[name] = nil
            overflow[name] = nil
            queueFull[name] = nil
            givenBack[name] = nil
            waiting[name] = nil
        }
    }
}
