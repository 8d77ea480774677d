import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The spools of a relay that has `routes` and `spool.dir`: one ``Spool`` per
/// route, each with its own shards, progress, cap and read-back, under
/// `spool.dir/routes/NAME` (the route `default` in `spool.dir` itself, where
/// the one route of a configuration without `routes` keeps its spool).
///
/// Why one per route, as Vector gives each sink its own disk buffer: a route's
/// position, its backlog cap (`max-backlog-bytes`, past which it drops its
/// oldest as `route_overflow`), its damage and its removal are its own, and a
/// dead destination can fill only its own part. The price: a log that k
/// routes match is written k times.
///
/// ```
/// spool.dir/
///   sender-id                 the ferry:// instance id, kept across restarts
///   routes/archive/LOCK, shard-0/…, shard-1/…
///   routes/siem/…
/// ```
package final class SpoolRegistry: Sendable {
    /// The whole spool's settings (`spool.*`).
    package let settings: SpoolSettings
    /// `spool.max-bytes`, over every route's spool.
    let budget: SpoolBudget
    let shardCount: Int
    package let senderInstance: UInt64
    private let logger: Logger
    private let state: Mutex<State>
    /// The routes whose spools must stay (the configuration a reload is applying,
    /// else the one in force). Opening and removing a spool both run under it,
    /// so a removal never races a reload that brings the route back: either
    /// the removal ends first and the reload opens a new spool, or the route is
    /// pinned first and its spool stays.
    private let pinned: Mutex<Set<String>>

    private struct State {
        /// By id (``SpoolRun/spool``); nil once removed. Ids are never reused.
        var slots: [Spool?] = []
        var byName: [String: Int] = [:]
        /// Observes each sync's duration, of every spool, those opened later too.
        var observeSync: (@Sendable (Duration) -> Void)?
    }

    /// Why a route's spool could not be opened.
    package struct OpenError: Error, CustomStringConvertible {
        package var route: String
        package var underlying: any Error
        package var description: String { "route '\(route)': \(underlying)" }
    }

    private init(settings: SpoolSettings, shardCount: Int, logger: Logger) {
        self.settings = settings
        self.budget = SpoolBudget(limit: settings.maxBytes)
        self.shardCount = shardCount
        self.logger = logger
        self.senderInstance = Spool.senderInstance(settings.directory)
        self.state = Mutex(State())
        self.pinned = Mutex([])
    }

    /// Opens (creating if needed) the spool of each of `routes`.
    package static func open(settings: SpoolSettings, routes: [RouteSettings], shardCount: Int, logger: Logger) throws -> SpoolRegistry {
        if let code = ParentDirectories.create(for: settings.directory + "/routes/x") {
            throw SpoolError.cannotCreate(path: settings.directory + "/routes", errno: code)
        }
        let registry = SpoolRegistry(settings: settings, shardCount: shardCount, logger: logger)
        registry.pin(routes.map(\.name))
        do {
            for route in routes { _ = try registry.open(route: route, routeCount: routes.count) }
        } catch {
            registry.close()
            throw error
        }
        return registry
    }

    /// The directory of route `name`'s spool.
    package static func directory(of name: String, in root: String) -> String {
        name == RouteSettings.defaultName ? root : "\(root)/routes/\(name)"
    }

    /// A route's cap on disk: its `max-backlog-bytes`, else an equal share of `spool.max-bytes`.
    static func cap(of route: RouteSettings, settings: SpoolSettings, routeCount: Int) -> Int {
        min(route.maxBacklogBytes ?? max(settings.segmentBytes * 2, settings.maxBytes / max(1, routeCount)), settings.maxBytes)
    }

    /// The spool of `route`, opened now unless it is open already (a reload
    /// that brings back a route whose removal has not ended keeps its spool).
    @discardableResult
    package func open(route: RouteSettings, routeCount: Int) throws -> Spool {
        try pinned.withLock { _ in try openLocked(route: route, routeCount: routeCount) }
    }

    /// Keeps the spools of `routes` from removal (``remove(route:)``) until the next pin:
    /// a reload pins its configuration's routes before it opens their spools.
    package func pin<Names: Sequence<String>>(_ routes: Names) {
        pinned.withLock { $0 = Set(routes) }
    }

    private func openLocked(route: RouteSettings, routeCount: Int) throws -> Spool {
        if let open = spool(forRoute: route.name) { return open }
        var routeSettings = settings
        routeSettings.directory = Self.directory(of: route.name, in: settings.directory)
        routeSettings.maxBytes = Self.cap(of: route, settings: settings, routeCount: routeCount)
        let id = state.withLock { $0.slots.count }
        let spool: Spool
        do {
            spool = try Spool.open(
                settings: routeSettings, shardCount: shardCount, id: id, evictsOldest: true, parent: budget, logger: logger)
        } catch {
            throw OpenError(route: route.name, underlying: error)
        }
        let observe = state.withLock { state in
            state.slots.append(spool)
            state.byName[route.name] = id
            return state.observeSync
        }
        if let observe { spool.observeSyncs(observe) }
        return spool
    }

    /// Sets what observes each sync's duration.
    package func observeSyncs(_ observe: @escaping @Sendable (Duration) -> Void) {
        let all = state.withLock { state in
            state.observeSync = observe
            return state.slots.compactMap { $0 }
        }
        for spool in all { spool.observeSyncs(observe) }
    }

    /// The open spool of the route named `name`.
    package func spool(forRoute name: String) -> Spool? {
        state.withLock { state in state.byName[name].flatMap { state.slots[$0] } }
    }

    /// The spool with id `id`.
    package func spool(id: Int) -> Spool? {
        state.withLock { state in id < state.slots.count ? state.slots[id] : nil }
    }

    /// Every open spool, by route name.
    package var spools: [(route: String, spool: Spool)] {
        state.withLock { state in
            state.byName.sorted { $0.key < $1.key }.compactMap { name, id in state.slots[id].map { (name, $0) } }
        }
    }

    /// Records that left Ferry, of any route's spool.
    package func settle(_ spans: SpoolSpans) {
        let runs = spans.runs
        guard let first = runs.first else { return }
        if runs.allSatisfy({ $0.spool == first.spool }) {
            spool(id: first.spool)?.settle(runs)
            return
        }
        for id in Set(runs.map(\.spool)) { spool(id: id)?.settle(runs.filter { $0.spool == id }) }
    }

    /// Ends a removed route's spool once its route has retired everywhere:
    /// closes it and deletes its files (what it still held was counted
    /// `route_removed`). The route `default` keeps its files in `spool.dir`
    /// (only its segments and progress go). A pinned route's spool stays
    /// (a reload brought it back): returns whether it was removed.
    @discardableResult
    package func remove(route name: String) -> Bool {
        pinned.withLock { pinned in
            guard !pinned.contains(name) else { return false }
            return removeLocked(route: name)
        }
    }

    private func removeLocked(route name: String) -> Bool {
        let removed = state.withLock { state -> Spool? in
            guard let id = state.byName.removeValue(forKey: name) else { return nil }
            defer { state.slots[id] = nil }
            return state.slots[id]
        }
        guard let removed else { return false }
        removed.close()
        removed.deleteFiles()
        if name != RouteSettings.defaultName {
            // Its own copy of the sender id (the relay's is in spool.dir), then the directory.
            _ = unlink(removed.settings.directory + "/sender-id")
            _ = rmdir(removed.settings.directory)
        }
        logger.notice("a removed route's spool was deleted", metadata: ["route": "\(name)", "spool.dir": "\(removed.settings.directory)"])
        return true
    }

    /// Closes every route's spool.
    package func close() {
        let all = state.withLock { state in state.slots.compactMap { $0 } }
        for spool in all { spool.close() }
    }
}

/// A place in a spool an answer waits for: everything shard `shard` of
/// `spool` appended before `through` (``Spool/whenDurable(shard:through:_:)``).
package struct SpoolMark: Sendable, Equatable {
    package let spool: Spool
    package let shard: Int
    package let through: UInt64

    package static func == (lhs: SpoolMark, rhs: SpoolMark) -> Bool {
        lhs.spool === rhs.spool && lhs.shard == rhs.shard && lhs.through == rhs.through
    }
}

/// Counts down the parts an answer waits for; the last one to finish says so.
final class Countdown: Sendable {
    private let left: Atomic<Int>

    init(_ count: Int) {
        left = Atomic(count)
    }

    /// One part finished: true for the last.
    func finishOne() -> Bool {
        left.subtract(1, ordering: .acquiringAndReleasing).newValue == 0
    }

    /// Awaits `marks` (all of them durable), in any order.
    static func awaitDurable(_ marks: [SpoolMark]) async {
        for mark in marks { await mark.spool.durable(shard: mark.shard, through: mark.through) }
    }
}
