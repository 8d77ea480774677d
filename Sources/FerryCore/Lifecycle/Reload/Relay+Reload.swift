import Logging
import NIOCore

/// Why a reload was refused (the configuration in force keeps running).
public enum ReloadError: Error, CustomStringConvertible, Sendable {
    case notRunning(phase: String)
    case cannotOpen(upstream: String, reason: String)
    case tooManyUpstreams(limit: Int)

    public var description: String {
        switch self {
        case .notRunning(let phase): return "reload refused: the relay is \(phase), not running"
        case .cannotOpen(let upstream, let reason): return "reload refused: cannot open upstream \(upstream): \(reason)"
        case .tooManyUpstreams(let limit):
            return "reload refused: more than \(limit) upstreams made since start (ids are not reused); restart Ferry to apply this configuration"
        }
    }
}

extension Relay {
    /// Most upstreams one run may make, start and reloads together (ids are never reused).
    static let maxUpstreamSlots = 1_024

    /// Carries a change of `upstream`'s address to its lane on every loop.
    func connectRepoint(_ upstream: Upstream) {
        let handles = self.handles
        upstream.setRepointHandler { address in
            for handle in handles {
                handle.eventLoop.execute { handle.pipeline.value.lanes[upstream.index]?.repoint(to: address) }
            }
        }
    }

    /// Applies `new`'s routes and upstreams without a restart: added upstreams
    /// are opened first (a name that does not resolve or a file that cannot be
    /// opened refuses the reload, changing nothing); then every loop installs
    /// the new routing table between two bursts. Unchanged routes keep their
    /// queues and lanes; removed ones deliver what they hold until
    /// `drain.timeout`, then count the rest as `route_removed`.
    ///
    /// - Returns: what changed, and which keys need a restart to take effect.
    public func apply(_ new: FerryConfiguration) async throws -> ReloadPlan {
        let current = phase
        guard current == .running else { throw ReloadError.notRunning(phase: current.rawValue) }
        // Every upstream still open, live or retiring: one a reload brings back keeps its id, lanes and file.
        let (old, slots, ids, oldRoutes) = routing.withLock { state in
            (
                state.configuration, state.slots,
                Dictionary(state.kinds.keys.sorted().map { (state.slots[$0].url, $0) }, uniquingKeysWith: { _, newer in newer }), state.routes
            )
        }
        let plan = ReloadPlan(from: old, to: new)
        var newSlots = slots
        let wanted = Set(new.allUpstreams)
        var newIDs = ids.filter { wanted.contains($0.key) }
        var opened: [Int: any UpstreamKind] = [:]
        let added = new.allUpstreams.filter { ids[$0] == nil }
        guard slots.count + added.count <= Self.maxUpstreamSlots else { throw ReloadError.tooManyUpstreams(limit: Self.maxUpstreamSlots) }
        for url in added {
            let id = newSlots.count
            let upstream = Upstream(
                url: url, index: id, lanes: handles.count, breaker: configuration.breaker, budget: configuration.retryBudget,
                latency: latency(url), udpSegmentation: configuration.udpSegmentation, logger: logger)
            do {
                opened[id] = try UpstreamKinds.open(upstream, context: kindContext)
            } catch {
                for kind in opened.values { await kind.close() }
                throw ReloadError.cannotOpen(upstream: url.description, reason: String(describing: error))
            }
            newSlots.append(upstream)
            newIDs[url] = id
        }
        let table = RoutingTable(configuration: new, slots: newIDs)
        let byName = Dictionary(oldRoutes.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let stats = table.routes.map { route in
            plan.routesKept.contains(route.name) ? (byName[route.name] ?? RouteStats(route: route)) : RouteStats(route: route)
        }
        let kinds = opened
        let logger = self.logger
        for handle in handles {
            try await handle.eventLoop.flatSubmit {
                let made = handle.pipeline.value.install(table, stats: stats, kinds: kinds, logger: logger)
                return EventLoopFuture.andAllSucceed(made.map { $0.start() }, on: handle.eventLoop)
            }.get()
        }
        for id in opened.keys { connectRepoint(newSlots[id]) }
        let finalIDs = newIDs
        routing.withLock { state in
            state.configuration = new
            state.slots = newSlots
            state.live = new.allUpstreams.compactMap { finalIDs[$0] }
            state.kinds.merge(kinds) { first, _ in first }
            state.routes = stats
        }
        if !plan.routesRemoved.isEmpty || !plan.routesChanged.isEmpty || !plan.upstreamsRemoved.isEmpty { scheduleRetirement() }
        logger.notice(
            "configuration reloaded",
            metadata: [
                "routes": "\(new.effectiveRoutes.map(\.name).joined(separator: ","))",
                "routes.added": "\(plan.routesAdded.joined(separator: ","))", "routes.removed": "\(plan.routesRemoved.joined(separator: ","))",
                "routes.changed": "\(plan.routesChanged.joined(separator: ","))",
                "upstreams.added": "\(plan.upstreamsAdded.joined(separator: ","))",
                "upstreams.removed": "\(plan.upstreamsRemoved.joined(separator: ","))",
                "restart_required": "\(plan.restartRequired.joined(separator: ","))",
            ])
        return plan
    }

    /// After `drain.timeout`, ends the routes reloads removed: what they still
    /// hold is counted `route_removed`, and upstreams no route uses are closed.
    private func scheduleRetirement() {
        let timeout = configuration.drainTimeout
        Task { [self] in
            try? await Task.sleep(for: timeout)
            guard phase == .running else { return }
            var abandoned = Set<Int>()
            for handle in handles {
                let ids = try? await handle.eventLoop.submit { handle.pipeline.value.expireRetired() }.get()
                abandoned.formUnion(ids ?? [])
            }
            let closing = routing.withLock { state -> [any UpstreamKind] in
                let live = Set(state.live)
                let gone = state.kinds.keys.filter { !live.contains($0) && abandoned.contains($0) }
                defer { for id in gone { state.kinds[id] = nil } }
                return gone.compactMap { state.kinds[$0] }
            }
            for kind in closing { await kind.close() }
        }
    }

    /// The configuration in force (the last one a reload applied).
    public var currentConfiguration: FerryConfiguration { routing.withLock { $0.configuration } }
}
