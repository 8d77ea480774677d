import NIOCore

/// The route decision: which of the routes each log of a burst goes to.
extension LoopPipeline {
    /// Hands logs that hold room in the buffer (one copy each) to every route
    /// they match. One PRI read per log, and only when a route asks for
    /// severity or facility; the bytes are never changed.
    ///
    /// With one route, a log keeps the room it holds and one that route does
    /// not match leaves now (`no_route`). With several, the intake's one copy
    /// is given back and each route reserves room for its own copies, so a
    /// route's queue is bounded on its own (`queue_full` and `route_overflow`
    /// count copies, per route).
    func route(_ records: [ByteBuffer], bytes: Int, receivedAt: NIODeadline, spans: SpoolSpans, sources: [SourceKey?], listener: Int) {
        guard !records.isEmpty else { return }
        if routes.count == 1, routes[0].route.match.takesEverything {
            routes[0].stats.routed.add(records.count)
            routes[0].dispatch(records, bytes: bytes, receivedAt: receivedAt, spans: spans, sources: sources)
            return
        }
        let masks = routeMasks(records, sources: sources, listener: listener)
        if routes.count == 1 {
            routeToOne(records, masks: masks, bytes: bytes, receivedAt: receivedAt, spans: spans, sources: sources)
            return
        }
        capacity.release(count: records.count, bytes: bytes)
        let unrouted = masks.reduce(0) { $0 + ($1 == 0 ? 1 : 0) }
        if unrouted > 0 { drops.drop(.noRoute, logs: unrouted, detail: routes.count) }
        for (position, queue) in routes.enumerated() {
            let bit = UInt32(1) << UInt32(position)
            var matched = 0
            for mask in masks where mask & bit != 0 { matched += 1 }
            guard matched > 0 else { continue }
            var subset: [ByteBuffer]
            var subsetSources: [SourceKey?] = []
            if matched == records.count {
                subset = records
                subsetSources = sources
            } else {
                subset = []
                subset.reserveCapacity(matched)
                for index in records.indices where masks[index] & bit != 0 {
                    subset.append(records[index])
                    if index < sources.count { subsetSources.append(sources[index]) }
                }
            }
            let (count, taken) = capacity.reservePrefix(of: subset) { $0.readableBytes }
            if count < subset.count {
                queue.stats.queueFull.add(subset.count - count)
                drops.drop(.queueFull, logs: subset.count - count, detail: capacity.usedLogs, route: queue.route.name)
                subset.removeLast(subset.count - count)
                if subsetSources.count > count { subsetSources.removeLast(subsetSources.count - count) }
            }
            guard count > 0 else { continue }
            queue.stats.routed.add(count)
            queue.dispatch(subset, bytes: taken, receivedAt: receivedAt, spans: SpoolSpans(), sources: subsetSources)
        }
    }

    /// One route with a match: the logs it takes keep their room (and spool
    /// place); the others leave now, settled and counted `no_route`.
    private func routeToOne(
        _ records: [ByteBuffer], masks: [UInt32], bytes: Int, receivedAt: NIODeadline, spans: SpoolSpans, sources: [SourceKey?]
    ) {
        let queue = routes[0]
        var taken: [ByteBuffer] = []
        var takenSources: [SourceKey?] = []
        var takenBytes = 0
        var takenSpans = SpoolSpans()
        var left = 0
        var leftBytes = 0
        var leftSpans = SpoolSpans()
        for index in records.indices {
            let length = records[index].readableBytes
            let span = spans.isEmpty ? SpoolSpans() : spans.slice(from: index, count: 1)
            if masks[index] != 0 {
                taken.append(records[index])
                if index < sources.count { takenSources.append(sources[index]) }
                takenBytes += length
                takenSpans.append(contentsOf: span)
            } else {
                left += 1
                leftBytes += length
                leftSpans.append(contentsOf: span)
            }
        }
        if left > 0 {
            settlement.settle(count: left, bytes: leftBytes, spans: leftSpans)
            drops.drop(.noRoute, logs: left, detail: 1)
        }
        guard !taken.isEmpty else { return }
        queue.stats.routed.add(taken.count)
        queue.dispatch(taken, bytes: takenBytes, receivedAt: receivedAt, spans: takenSpans, sources: takenSources)
    }

    /// For each log, one bit per route it matches.
    private func routeMasks(_ records: [ByteBuffer], sources: [SourceKey?], listener: Int) -> [UInt32] {
        var open: UInt32 = 0
        for (position, queue) in routes.enumerated() where queue.route.match.takes(listener: listener) { open |= 1 << UInt32(position) }
        let readsPriority = table.readsPriority
        var masks: [UInt32] = []
        masks.reserveCapacity(records.count)
        for index in records.indices {
            let priority = readsPriority ? SyslogPriority(of: records[index]) : nil
            let source = index < sources.count ? sources[index] : nil
            var mask: UInt32 = 0
            for position in routes.indices where open & (1 << UInt32(position)) != 0 {
                if routes[position].route.match.takes(priority: priority, source: source) { mask |= 1 << UInt32(position) }
            }
            masks.append(mask)
        }
        return masks
    }
}
