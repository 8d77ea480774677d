import Foundation
/// What a reload changes, worked out from the configuration in force and the
/// new one before anything is touched: a pure function, tested without sockets.
///
/// Routes, their upstreams and the listeners of `listen` change live (a
/// listener is kept while its URL stays; one whose URL changed is a new one,
/// bound before the old one closes); everything else (the HTTP address,
/// buffer sizes, the spool, keys' paths, a kept listener's allowlist, …) is
/// read at start only: a change to it is reported as needing a restart, and
/// not applied.
public struct ReloadPlan: Sendable, Equatable, Codable {
    public var routesKept: [String] = []
    public var routesAdded: [String] = []
    public var routesRemoved: [String] = []
    public var routesChanged: [String] = []
    public var upstreamsAdded: [String] = []
    public var upstreamsRemoved: [String] = []
    public var listenersAdded: [String] = []
    public var listenersRemoved: [String] = []
    /// Keys whose new value takes effect only after a restart.
    public var restartRequired: [String] = []

    public init(from old: FerryConfiguration, to new: FerryConfiguration) {
        let before = Dictionary(uniqueKeysWithValues: old.effectiveRoutes.map { ($0.name, $0) })
        let after = Dictionary(uniqueKeysWithValues: new.effectiveRoutes.map { ($0.name, $0) })
        for (name, route) in after.sorted(by: { $0.key < $1.key }) {
            switch before[name] {
            case nil: routesAdded.append(name)
            case route: routesKept.append(name)
            default: routesChanged.append(name)
            }
        }
        routesRemoved = before.keys.filter { after[$0] == nil }.sorted()
        let oldUpstreams = Set(old.allUpstreams)
        let newUpstreams = Set(new.allUpstreams)
        upstreamsAdded = new.allUpstreams.filter { !oldUpstreams.contains($0) }.map(\.description)
        upstreamsRemoved = old.allUpstreams.filter { !newUpstreams.contains($0) }.map(\.description)
        let oldListeners = Set(old.listeners)
        let newListeners = Set(new.listeners)
        listenersAdded = new.listeners.filter { !oldListeners.contains($0) }.map(\.description)
        listenersRemoved = old.listeners.filter { !newListeners.contains($0) }.map(\.description)
        restartRequired = Self.startOnlyChanges(old, new)
        // A listener that stays keeps its socket, and with it its allowlist.
        if old.listeners.contains(where: { newListeners.contains($0) && old.listenerAllow[$0] != new.listenerAllow[$0] }) {
            restartRequired = (restartRequired + ["listen"]).sorted()
        }
    }

    /// Keys other than routes and upstreams whose value differs.
    static func startOnlyChanges(_ old: FerryConfiguration, _ new: FerryConfiguration) -> [String] {
        func values(_ configuration: FerryConfiguration) -> [String: String] {
            var result: [String: String] = [:]
            for line in configuration.renderedLines {
                guard let separator = line.range(of: " = ") else { continue }
                let key = String(line[..<separator.lowerBound])
                if key == "upstreams" || key == "listen" || key.hasPrefix("routes.") || key == "instance" { continue }
                result[key] = String(line[separator.upperBound...])
            }
            return result
        }
        let before = values(old)
        let after = values(new)
        return Set(before.keys).union(after.keys).filter { before[$0] != after[$0] }.sorted()
    }

    /// Whether the routes, upstreams and listeners stay as they are.
    public var changesNothingLive: Bool {
        routesAdded.isEmpty && routesRemoved.isEmpty && routesChanged.isEmpty && upstreamsAdded.isEmpty && upstreamsRemoved.isEmpty
            && listenersAdded.isEmpty && listenersRemoved.isEmpty
    }
}
