/// Which logs a route takes (`routes.NAME.match`): every condition given must
/// hold (they are ANDed); a route without any takes every log.
public struct RouteMatch: Sendable, Equatable {
    /// This severity or a more severe one (`warning` takes warning, err, crit, alert, emerg).
    public var severity: SyslogSeverity?
    /// Facility codes (0–23), any of them.
    public var facilities: Set<Int>?
    /// Source address blocks, any of them.
    public var source: SourceAllowlist?
    /// Listener names as configured (`udp://0.0.0.0:514`, `tcp://…`, or `http`), any of them.
    public var listeners: [String]?

    public init(severity: SyslogSeverity? = nil, facilities: Set<Int>? = nil, source: SourceAllowlist? = nil, listeners: [String]? = nil) {
        self.severity = severity
        self.facilities = facilities
        self.source = source
        self.listeners = listeners
    }

    /// No condition: every log.
    public var takesEverything: Bool { severity == nil && facilities == nil && source == nil && listeners == nil }

    /// Whether deciding needs a log's PRI.
    var readsPriority: Bool { severity != nil || facilities != nil }

    /// The match compiled for the data path: a bit mask of PRI values and of listener positions.
    package func compiled(listeners positions: ListenerPositions) -> CompiledRouteMatch {
        var priorities: (UInt64, UInt64, UInt64)? = nil
        if readsPriority {
            var mask = (UInt64(0), UInt64(0), UInt64(0))
            for value in 0...191 {
                let priority = SyslogPriority(value: value)!
                if let severity, priority.severity > severity { continue }
                if let facilities, !facilities.contains(priority.facility) { continue }
                switch value >> 6 {
                case 0: mask.0 |= 1 << UInt64(value & 63)
                case 1: mask.1 |= 1 << UInt64(value & 63)
                default: mask.2 |= 1 << UInt64(value & 63)
                }
            }
            priorities = mask
        }
        var listenerMask: UInt64? = nil
        if let listeners {
            var mask = UInt64(0)
            for name in listeners {
                if let position = positions[name], position < ListenerPositions.maskWidth { mask |= 1 << UInt64(position) }
            }
            listenerMask = mask
        }
        return CompiledRouteMatch(priorities: priorities, source: source, listeners: listenerMask)
    }
}

/// A ``RouteMatch`` as the data path asks it: a PRI is one bit test, a listener another.
package struct CompiledRouteMatch: Sendable {
    /// PRI values (0–191) the route takes; nil: it does not ask (and a log without a PRI matches).
    let priorities: (UInt64, UInt64, UInt64)?
    let source: SourceAllowlist?
    /// Listener positions the route takes; nil: any.
    let listeners: UInt64?

    var readsPriority: Bool { priorities != nil }
    var readsSource: Bool { source != nil }
    var takesEverything: Bool { priorities == nil && source == nil && listeners == nil }

    /// Whether a burst from listener `position` can hold logs for this route at all.
    @inline(__always)
    func takes(listener position: Int) -> Bool {
        guard let listeners else { return true }
        return position >= 0 && position < 64 && listeners & (1 << UInt64(position)) != 0
    }

    /// Whether one log matches (the listener was checked per burst).
    @inline(__always)
    package func takes(priority: SyslogPriority?, source key: SourceKey?) -> Bool {
        if let priorities {
            // A log without a valid PRI has no severity or facility: it does not match a route that asks for one.
            guard let value = priority?.value else { return false }
            let word = value >> 6 == 0 ? priorities.0 : (value >> 6 == 1 ? priorities.1 : priorities.2)
            guard word & (1 << UInt64(value & 63)) != 0 else { return false }
        }
        if let source {
            guard let key, source.allows(key) else { return false }
        }
        return true
    }
}
