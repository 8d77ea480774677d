/// The configuration's routes compiled for the data path: immutable, one per
/// configuration, shared by every loop.
///
/// A route names its upstreams by their position in the relay's one upstream
/// list (every route's upstreams, in route order), which is also the position
/// of each loop's lane for them.
package struct RoutingTable: Sendable {
    package struct Route: Sendable {
        /// The route as configured (a reload keeps a route's queue when these and its upstream ids are unchanged).
        let settings: RouteSettings
        package var name: String { settings.name }
        var mode: RouteSettings.Mode { settings.mode }
        /// Ids of its upstreams (their lanes' keys on every loop), in this route's failover order.
        let upstreams: [Int]
        /// Each upstream's stable id for ``RendezvousHash`` (`balance`).
        let memberIDs: [UInt64]
        let match: CompiledRouteMatch
        /// Most logs and payload bytes the route keeps waiting; past them its oldest are dropped as `route_overflow`.
        let maxBacklogLogs: Int
        let maxBacklogBytes: Int
    }

    package let routes: [Route]
    /// One route that takes every log, in failover order: the path without
    /// routes, which keeps the receive thread's direct route and decides nothing per log.
    let isSingleFailover: Bool
    /// Whether any route reads a log's PRI (severity, facility).
    let readsPriority: Bool
    /// Whether any route needs each log's source address (a `source` match, or `balance`).
    package let readsSource: Bool

    /// The listener position the HTTP intake has (after every configured listener).
    let httpListener: Int

    /// Whether the receive threads may send themselves: one route that takes
    /// everything, over the upstreams they were started with (ids 0, 1, …),
    /// and no spool per route (each log must reach its route's spool first).
    let allowsDirectRoute: Bool
    /// Each route keeps its own spool (``SpoolRegistry``): the loop admits each route's logs to it.
    package let spoolsPerRoute: Bool

    /// - Parameters:
    ///   - slots: each upstream's id (nil: in order from 0, as at start).
    ///   - listeners: each listener's position (nil: in `listen` order, then the HTTP intake, as at start).
    ///   - spoolsPerRoute: whether the running relay keeps a spool per route (nil: as `configuration` says; a reload
    ///     passes what runs, since the spool's layout changes only with a restart).
    package init(
        configuration: FerryConfiguration, slots: [UpstreamURL: Int]? = nil, listeners: ListenerPositions? = nil, spoolsPerRoute: Bool? = nil
    ) {
        let perRoute = spoolsPerRoute ?? configuration.spoolsPerRoute
        let positions = listeners ?? ListenerPositions(configuration: configuration)
        httpListener = positions[FerryConfiguration.httpListenerName] ?? configuration.listeners.count
        let settings = configuration.effectiveRoutes
        var position = 0
        var routes: [Route] = []
        for route in settings {
            let ids = route.upstreams.enumerated().map { offset, url in slots?[url] ?? (position + offset) }
            let share = settings.count == 1 ? configuration.queueCapacityBytes : max(1, configuration.queueCapacityBytes / settings.count)
            let logs = settings.count == 1 ? configuration.queueCapacityLogs : max(1, configuration.queueCapacityLogs / settings.count)
            routes.append(
                Route(
                    settings: route, upstreams: ids,
                    memberIDs: route.upstreams.map { RendezvousHash.memberID($0.description) },
                    match: route.match.compiled(listeners: positions), maxBacklogLogs: logs,
                    // With a spool per route, max-backlog-bytes caps the route's spool; in memory it keeps its share.
                    maxBacklogBytes: perRoute
                        ? share : min(route.maxBacklogBytes ?? share, configuration.queueCapacityBytes)))
            position += route.upstreams.count
        }
        self.routes = routes
        isSingleFailover = settings.count == 1 && settings[0].mode == .failover && settings[0].match.takesEverything
        readsPriority = routes.contains { $0.match.readsPriority }
        readsSource = routes.contains { $0.match.readsSource || $0.mode == .balance }
        self.spoolsPerRoute = perRoute
        allowsDirectRoute = isSingleFailover && !perRoute && routes[0].upstreams == Array(0..<routes[0].upstreams.count)
    }
}
