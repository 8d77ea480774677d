import Logging
import NIOCore

/// Installing a routing table on this loop: at start, and on every reload,
/// between two bursts (it runs on the loop, so no burst is half routed).
extension LoopPipeline {
    /// Makes `table` this loop's routes. A route whose settings and upstreams
    /// are unchanged keeps its queue (its waiting logs are untouched); a changed
    /// one gets a new queue that adopts the old one's logs and lanes; an
    /// upstream new to this loop gets a lane made by its kind in `kinds`.
    /// Routes that left retire: they keep delivering with their own lanes
    /// until ``expireRetired()``.
    ///
    /// - Returns: the lanes made here (to start) and those no route uses any more (to abandon when retired routes expire).
    @discardableResult
    func install(_ table: RoutingTable, stats: [RouteStats], kinds: [Int: any UpstreamKind], logger: Logger) -> [any UpstreamLane] {
        var old = Dictionary(routes.map { ($0.route.name, $0) }, uniquingKeysWith: { first, _ in first })
        let used = Set(table.routes.flatMap(\.upstreams))
        var next: [RouteQueue] = []
        var made: [any UpstreamLane] = []
        for (route, stat) in zip(table.routes, stats) {
            if let kept = old[route.name], kept.route.settings == route.settings, kept.route.upstreams == route.upstreams, kept.stats === stat {
                kept.route = route  // its share of the buffer may have changed
                next.append(kept)
                old[route.name] = nil
                continue
            }
            let queue = RouteQueue(route: route, stats: stat, pipeline: self)
            var queueLanes: [any UpstreamLane] = []
            for id in route.upstreams {
                if let owner = owners[id], let lane = lanes[id] {
                    owner.queue = queue
                    queueLanes.append(lane)
                } else if let kind = kinds[id] {
                    let owner = LaneOwner(queue: queue)
                    let lane = kind.makeLane(LaneContext(owner: owner, upstream: id, logger: logger))
                    owners[id] = owner
                    lanes[id] = lane
                    made.append(lane)
                    queueLanes.append(lane)
                }
            }
            queue.setLanes(queueLanes)
            if let previous = old.removeValue(forKey: route.name) {
                previous.stopReadingBack()
                queue.adopt(previous)
                // Lanes of upstreams the route dropped stay with the old queue, which retires.
                previous.setLanes(previous.lanes.filter { !used.contains($0.upstream.index) })
                if !previous.lanes.isEmpty { retired.append(previous) }
            }
            next.append(queue)
        }
        for queue in old.values {
            // Its own lanes only: one whose upstream moved to another route belongs there now.
            queue.setLanes(queue.lanes.filter { !used.contains($0.upstream.index) })
            retired.append(queue)
            if queue.lanes.isEmpty { _ = queue.expire() } else { queue.drainShard() }
        }
        routes = next
        self.table = table
        publishDirectRoute()
        for queue in routes where queue.isWaiting { queue.scheduleRetry() }
        return made
    }

    /// Ends every retired route (its deadline passed): waiting logs leave as
    /// `route_removed`, and lanes no route uses are abandoned (what they held
    /// leaves the same way). Returns the ids of the lanes abandoned.
    func expireRetired() -> [Int] {
        for queue in retired { _ = queue.expire() }
        retired.removeAll()
        let used = Set(table.routes.flatMap(\.upstreams))
        var abandoned: [Int] = []
        for (id, lane) in lanes where !used.contains(id) {
            let held = lane.abandon()
            if held > 0 { drops.drop(.routeRemoved, logs: held, detail: 0, route: "(removed upstream \(lane.upstream.url))") }
            abandoned.append(id)
        }
        for id in abandoned {
            lanes[id] = nil
            owners[id] = nil
        }
        return abandoned
    }
}
