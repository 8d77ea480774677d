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
    /// count copies, per route). With a spool per route, see ``routeThroughSpools(_:bytes:receivedAt:sources:listener:)``.
    ///
    /// - Returns: where in the routes' spools the logs went, for answers that
    ///   wait for a sync (a spool per route under `spool.fsync: always`; else empty).
    @discardableResult
    func route(
        _ records: [ByteBuffer], bytes: Int, receivedAt: NIODeadline, spans: SpoolSpans, sources: [SourceKey?], listener: Int
    ) -> [SpoolMark] {
        guard !records.isEmpty else { return [] }
        if table.spoolsPerRoute { return routeThroughSpools(records, bytes: bytes, receivedAt: receivedAt, sources: sources, listener: listener) }
        if routes.count == 1, routes[0].route.match.takesEverything {
            routes[0].stats.routed.add(records.count)
            routes[0].dispatch(records, bytes: bytes, receivedAt: receivedAt, spans: spans, sources: sources)
            return []
        }
        let masks = routeMasks(records, sources: sources, listener: listener)
        if routes.count == 1 {
            routeToOne(records, masks: masks, bytes: bytes, receivedAt: receivedAt, spans: spans, sources: sources)
            return []
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
        return []
    }

    /// With a spool per route (``SpoolRegistry``): each route's logs are
    /// appended to its own spool first — holding room in memory while the route
    /// is within its share of the buffer and the buffer has room, on disk only
    /// otherwise, read back in order — then sent or queued. A route past its
    /// cap on disk drops its oldest logs waiting there (`route_overflow`), so a
    /// dead destination never takes another route's place. The intake reserved
    /// no room for these logs.
    private func routeThroughSpools(
        _ records: [ByteBuffer], bytes: Int, receivedAt: NIODeadline, sources: [SourceKey?], listener: Int
    ) -> [SpoolMark] {
        let everything = routes.count == 1 && routes[0].route.match.takesEverything
        let masks = everything ? [] : routeMasks(records, sources: sources, listener: listener)
        if !everything {
            let unrouted = masks.reduce(0) { $0 + ($1 == 0 ? 1 : 0) }
            if unrouted > 0 { drops.drop(.noRoute, logs: unrouted, detail: routes.count) }
        }
        var marks: [SpoolMark] = []
        for (position, queue) in routes.enumerated() {
            guard let shard = queue.spoolShard, let spool = queue.spool else { continue }
            var subset = records
            var subsetSources = sources
            var subsetBytes = bytes
            if !everything {
                let bit = UInt32(1) << UInt32(position)
                var matched = 0
                for mask in masks where mask & bit != 0 { matched += 1 }
                guard matched > 0 else { continue }
                if matched < records.count {
                    subset = []
                    subset.reserveCapacity(matched)
                    subsetSources = []
                    subsetBytes = 0
                    for index in records.indices where masks[index] & bit != 0 {
                        subset.append(records[index])
                        subsetBytes += records[index].readableBytes
                        if index < sources.count { subsetSources.append(sources[index]) }
                    }
                }
            }
            let admission = shard.admit(subset, bytes: subsetBytes, capacity: capacity, allOrNothing: false, memory: queue.hasMemoryRoom)
            if admission.evicted > 0 {
                queue.stats.overflowed.add(admission.evicted)
                drops.drop(.routeOverflow, logs: admission.evicted, detail: spool.settings.maxBytes, route: queue.route.name)
            }
            drops.dropRefused(admission, by: shard, route: queue.route.name)
            guard let run = admission.run else { continue }
            queue.stats.routed.add(run.count)
            if spool.settings.sync == .always { marks.append(SpoolMark(spool: spool, shard: shard.index, through: run.end)) }
            guard admission.inMemory else {
                queue.scheduleRetry()  // on disk only: read back once the route has room
                continue
            }
            if run.count < subset.count {
                subset.removeLast(subset.count - run.count)
                subsetBytes = subset.reduce(0) { $0 + $1.readableBytes }
                if subsetSources.count > run.count { subsetSources.removeLast(subsetSources.count - run.count) }
            }
            queue.dispatch(subset, bytes: subsetBytes, receivedAt: receivedAt, spans: SpoolSpans(run), sources: subsetSources)
        }
        return marks
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
