import Logging
import NIOCore
import Synchronization

/// Why a reload was refused (the configuration in force keeps running).
public enum ReloadError: Error, CustomStringConvertible, Sendable {
    case notRunning(phase: String)
    case cannotOpen(upstream: String, reason: String)
    case tooManyUpstreams(limit: Int)
    case cannotBind(listener: String, reason: String)
    /// `match.listener` names a listener whose position does not fit a route's mask.
    case listenerPositionsExhausted(listener: String, limit: Int)
    /// The spool is laid out for one route (`upstreams`) and the new configuration has `routes`.
    case spoolLayout(directory: String)
    /// A route the reload adds could not open its spool.
    case cannotOpenSpool(route: String, reason: String)

    public var description: String {
        switch self {
        case .notRunning(let phase): return "reload refused: the relay is \(phase), not running"
        case .cannotOpen(let upstream, let reason): return "reload refused: cannot open upstream \(upstream): \(reason)"
        case .tooManyUpstreams(let limit):
            return "reload refused: more than \(limit) upstreams made since start (ids are not reused); restart Ferry to apply this configuration"
        case .cannotBind(let listener, let reason): return "reload refused: cannot bind listener \(listener): \(reason)"
        case .listenerPositionsExhausted(let listener, let limit):
            return "reload refused: a route matches listener \(listener), but more than \(limit) listeners would run at once "
                + "while the old ones close; apply the change in two reloads, or restart Ferry"
        case .spoolLayout(let directory):
            return "reload refused: the spool (\(directory)) holds every log once for the one route of 'upstreams'; "
                + "with 'routes' each route keeps its own spool: restart Ferry to apply routes"
        case .cannotOpenSpool(let route, let reason): return "reload refused: cannot open the spool of route '\(route)': \(reason)"
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

    /// Applies `new`'s routes, upstreams and listeners without a restart:
    /// added upstreams are opened and added listeners bound first (a name that
    /// does not resolve, a file that cannot be opened or a port that cannot be
    /// bound refuses the reload, changing nothing); then every loop installs
    /// the new routing table between two bursts, the new listeners start and
    /// the removed ones stop (so a changed port is bound before the old one
    /// closes, and what the old one read is routed). Unchanged routes keep
    /// their queues and lanes, unchanged listeners their sockets; removed
    /// routes deliver what they hold until `drain.timeout`, then count the
    /// rest as `route_removed`.
    ///
    /// - Returns: what changed, and which keys need a restart to take effect.
    public func apply(_ new: FerryConfiguration) async throws -> ReloadPlan {
        let current = phase
        guard current == .running else { throw ReloadError.notRunning(phase: current.rawValue) }
        // Every upstream still open, live or retiring: one a reload brings back keeps its id, lanes and file.
        let (old, slots, ids, oldRoutes, oldPositions) = routing.withLock { state in
            (
                state.configuration, state.slots,
                Dictionary(state.kinds.keys.sorted().map { (state.slots[$0].url, $0) }, uniquingKeysWith: { _, newer in newer }), state.routes,
                state.listeners
            )
        }
        let plan = ReloadPlan(from: old, to: new)
        if let spool, !new.routes.isEmpty { throw ReloadError.spoolLayout(directory: spool.settings.directory) }
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
        // While the old listeners still run, the new ones take positions beside theirs.
        let positions = oldPositions.adding(new)
        let bound: [BoundListener]
        do {
            bound = try await bindAddedListeners(plan, of: new, positions: positions, upstreams: newSlots)
        } catch {
            for kind in opened.values { await kind.close() }
            throw error
        }
        // Each route a reload adds gets its spool before any loop routes to it; pinned
        // first, so the retirement of an earlier removal cannot delete one it brings back.
        if let registry {
            registry.pin(new.effectiveRoutes.map(\.name))
            for route in new.effectiveRoutes where registry.spool(forRoute: route.name) == nil {
                do {
                    try registry.open(route: route, routeCount: new.effectiveRoutes.count)
                } catch {
                    registry.pin(old.effectiveRoutes.map(\.name))
                    for listener in bound { await listener.intake.stopIntake(handles: handles) }
                    for kind in opened.values { await kind.close() }
                    throw ReloadError.cannotOpenSpool(route: route.name, reason: String(describing: error))
                }
            }
        }
        let table = RoutingTable(configuration: new, slots: newIDs, listeners: positions, spoolsPerRoute: registry != nil)
        // Sources are kept before routes that need them are in force (never dropped while one runs).
        if table.readsSource { keepsSources.store(true) }
        let byName = Dictionary(oldRoutes.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let stats = table.routes.map { route in
            // A changed route gets new stats (its queue is new) that carry its totals on.
            plan.routesKept.contains(route.name)
                ? (byName[route.name] ?? RouteStats(route: route)) : RouteStats(route: route, continuing: byName[route.name])
        }
        let kinds = opened
        let logger = self.logger
        // From here on nothing refuses the reload: every loop installs the table
        // (a loop with the old one and another with the new would route apart). A
        // new lane that cannot start is logged and left to its breaker, as at run time.
        for handle in handles {
            let results = try? await handle.eventLoop.flatSubmit {
                let made = handle.pipeline.value.install(table, stats: stats, kinds: kinds, logger: logger)
                return EventLoopFuture.whenAllComplete(made.map { $0.start() }, on: handle.eventLoop)
            }.get()
            for case .failure(let error) in results ?? [] {
                logger.error("a lane a reload added could not start", metadata: ["loop": "\(handle.index)", "error": "\(error)"])
            }
        }
        for id in opened.keys { connectRepoint(newSlots[id]) }
        await switchListeners(plan, started: bound)
        keepsSources.store(table.readsSource)
        let finalIDs = newIDs
        routing.withLock { state in
            state.configuration = new
            state.slots = newSlots
            state.live = new.allUpstreams.compactMap { finalIDs[$0] }
            state.kinds.merge(kinds) { first, _ in first }
            state.listeners = positions.keeping(new)
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
                "listeners.added": "\(bound.map(\.intake.boundDescription).joined(separator: ","))",
                "listeners.removed": "\(plan.listenersRemoved.joined(separator: ","))",
                "restart_required": "\(plan.restartRequired.joined(separator: ","))",
            ])
        return plan
    }

    /// Binds the listeners `plan` adds (none reads yet); on a failure closes
    /// those it bound and throws, so the reload changes nothing.
    private func bindAddedListeners(
        _ plan: ReloadPlan, of new: FerryConfiguration, positions: ListenerPositions, upstreams: [Upstream]
    ) async throws -> [BoundListener] {
        for route in new.effectiveRoutes {
            for name in route.match.listeners ?? [] where (positions[name] ?? 0) >= ListenerPositions.maskWidth {
                throw ReloadError.listenerPositionsExhausted(listener: name, limit: ListenerPositions.maskWidth)
            }
        }
        let added = Set(plan.listenersAdded)
        let own = ownReceiveSockets
        var bound: [BoundListener] = []
        for url in new.listeners where added.contains(url.description) {
            do {
                bound.append(
                    try await Self.bindListener(
                        url, configuration: new, group: group, handles: handles, upstreams: upstreams, position: positions[url.description] ?? 0,
                        keepsSources: keepsSources, own: own, logger: logger))
            } catch {
                for listener in bound { await listener.intake.stopIntake(handles: handles) }
                throw ReloadError.cannotBind(listener: url.description, reason: String(describing: error))
            }
        }
        return bound
    }

    /// Starts the listeners a reload bound, then stops those it removed: their
    /// last bursts are routed by the table now in force.
    private func switchListeners(_ plan: ReloadPlan, started added: [BoundListener]) async {
        var bound: [BoundListener] = []
        for listener in added {
            do {
                try await listener.intake.start(handles: handles)
                bound.append(listener)
            } catch {
                logger.error("a listener a reload bound could not start", metadata: ["listener": "\(listener.intake.url)", "error": "\(error)"])
            }
        }
        let removed = Set(plan.listenersRemoved)
        let (stopping, running) = state.withLock { state -> ([any IntakeListener], Bool) in
            guard state.phase == .running else { return (bound.map(\.intake), false) }
            let stopping = state.listeners.filter { removed.contains($0.url.description) }
            state.listeners = state.listeners.filter { !removed.contains($0.url.description) } + bound.map(\.intake)
            state.gates =
                state.gates.filter { !removed.contains($0.listener) }
                + bound.compactMap { listener in listener.gate.map { (listener.intake.url.description, $0) } }
            return (stopping, true)
        }
        // A shutdown that began meanwhile stops the old ones itself; the new ones are this reload's to stop.
        if !running { logger.notice("a reload's listeners stopped: the relay is shutting down") }
        for listener in stopping { await listener.stopIntake(handles: handles) }
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
            await removeRetiredSpools()
        }
    }

    /// Deletes the spools of routes that reloads removed, once they retired on
    /// every loop: what they still hold (on disk only) is counted `route_removed`.
    private func removeRetiredSpools() async {
        guard let registry else { return }
        let live = Set(currentConfiguration.effectiveRoutes.map(\.name))
        for (name, spool) in registry.spools where !live.contains(name) {
            let left = spool.snapshot.logs
            // Not if a reload brought the route back meanwhile (pinned): its spool stays, and counts nothing.
            guard registry.remove(route: name) else { continue }
            if left > 0, let handle = handles.first {
                try? await handle.eventLoop.submit {
                    handle.pipeline.value.drops.drop(.routeRemoved, logs: left, detail: 0, route: name)
                }.get()
            }
        }
    }

    /// The configuration in force (the last one a reload applied).
    public var currentConfiguration: FerryConfiguration { routing.withLock { $0.configuration } }
}
