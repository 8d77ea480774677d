/// Reading `routes`: a map keyed by route name (swift-configuration reads no
/// arrays of objects, and a name is what metrics, status and reloads call a route by).
extension FerryConfiguration {
    /// The routes logs go to: `routes`, or the one route `default` that `upstreams` makes.
    public var effectiveRoutes: [RouteSettings] {
        routes.isEmpty ? [RouteSettings(name: RouteSettings.defaultName, upstreams: upstreams)] : routes
    }

    /// Whether each route keeps its own spool (`routes` with `spool.dir`; see
    /// ``SpoolRegistry``); without `routes`, the one route `default` keeps every log once in `spool.dir`.
    public var spoolsPerRoute: Bool { spool != nil && !routes.isEmpty }

    /// Every upstream of every route, in route order then failover order: the relay's upstream list.
    public var allUpstreams: [UpstreamURL] { effectiveRoutes.flatMap(\.upstreams) }

    /// The names listeners are matched by (`routes.NAME.match.listener`): each listener as configured, and `http`.
    public var listenerNames: [String] { listeners.map(\.description) + [Self.httpListenerName] }

    /// What `match.listener` calls the HTTP intake (`POST /v1/logs`).
    public static let httpListenerName = "http"

    /// Reads `routes.NAME.*` for each name the configuration file's `routes` map holds.
    mutating func readRoutes(_ values: ConfigValues, names: [String], upstreamsGiven: Bool) throws {
        guard !names.isEmpty else { return }
        if upstreamsGiven {
            throw ConfigurationError.conflict(
                .upstreams, value: upstreams.map(\.description).joined(separator: ","),
                reason: "routes are configured: put these upstreams in a route (without routes, upstreams is the one route 'default')")
        }
        guard names.count <= RouteSettings.maxRoutes else {
            throw ConfigurationError.invalidValue(key: "routes", value: "\(names.count) routes", allowed: "at most \(RouteSettings.maxRoutes) routes")
        }
        var owners: [UpstreamURL: String] = [:]
        var routes: [RouteSettings] = []
        for name in names.sorted() {
            guard RouteSettings.isValidName(name) else {
                throw ConfigurationError.invalidValue(
                    key: "routes", value: name, allowed: "route names of 1 to 64 characters from a-z, 0-9, '_' and '-'")
            }
            let key = "routes.\(name)"
            var route = RouteSettings(name: name, upstreams: [])
            for item in try values.list("\(key).upstreams") ?? [] {
                guard let upstream = UpstreamURL(parsing: item) else {
                    throw ConfigurationError.invalidValue(
                        key: "\(key).upstreams", value: item, allowed: ConfigurationKey.upstreams.allowed.description)
                }
                if let owner = owners[upstream] {
                    throw ConfigurationError.conflict(
                        key: "\(key).upstreams", value: item,
                        reason: owner == name ? "listed twice" : "already an upstream of route '\(owner)' (an upstream belongs to one route)")
                }
                owners[upstream] = name
                route.upstreams.append(upstream)
            }
            guard !route.upstreams.isEmpty else {
                throw ConfigurationError.invalidValue(key: "\(key).upstreams", value: "", allowed: "a list of at least one upstream URL")
            }
            if let mode = try values.parsed("\(key).mode", allowed: "failover, balance", { RouteSettings.Mode(rawValue: $0.lowercased()) }) {
                route.mode = mode
            }
            route.maxBacklogBytes = try values.byteSize("\(key).max-backlog-bytes", range: 1...BufferCapacity.maxBytes)
            route.match.severity = try values.parsed("\(key).match.severity", allowed: SyslogSeverity.allowedNames, SyslogSeverity.init(name:))
            if let items = try values.list("\(key).match.facility") {
                var codes = Set<Int>()
                for item in items {
                    guard let code = SyslogFacility.code(named: item) else {
                        throw ConfigurationError.invalidValue(key: "\(key).match.facility", value: item, allowed: SyslogFacility.allowedNames)
                    }
                    codes.insert(code)
                }
                route.match.facilities = codes
            }
            if let items = try values.list("\(key).match.source") {
                route.match.source = try Self.allowlist(items, key: "\(key).match.source")
            }
            if let items = try values.list("\(key).match.listener") {
                let known = listenerNames
                for item in items where !known.contains(item) {
                    throw ConfigurationError.invalidValue(
                        key: "\(key).match.listener", value: item, allowed: "a configured listener: \(known.joined(separator: ", "))")
                }
                route.match.listeners = items
            }
            routes.append(route)
        }
        self.routes = routes
    }

    /// `routes.NAME.*` as `key = value` lines (check-config), route by route.
    var routeLines: [String] {
        routes.flatMap { route -> [String] in
            let key = "routes.\(route.name)"
            var lines = ["\(key).mode = \(route.mode.rawValue)", "\(key).upstreams = \(route.upstreams.map(\.description).joined(separator: ","))"]
            lines.append(
                "\(key).max-backlog-bytes = \(route.maxBacklogBytes.map(String.init) ?? (spool == nil ? "(a share of queue.capacity-bytes)" : "(a share of spool.max-bytes)"))"
            )
            if let severity = route.match.severity { lines.append("\(key).match.severity = \(severity)") }
            if let facilities = route.match.facilities {
                lines.append("\(key).match.facility = \(facilities.sorted().map { SyslogFacility.names[$0] }.joined(separator: ","))")
            }
            if let source = route.match.source { lines.append("\(key).match.source = \(source)") }
            if let listeners = route.match.listeners { lines.append("\(key).match.listener = \(listeners.joined(separator: ","))") }
            return lines
        }
    }

    /// The route names a configuration file's `routes` map holds (its keys).
    static func routeNames(in root: [String: Any]) -> [String] {
        (root["routes"] as? [String: Any]).map { Array($0.keys) } ?? []
    }
}
