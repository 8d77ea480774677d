/// Which position each listener has for `match.listener`: a bit in a route's
/// 64-bit listener mask, carried by every burst the listener reads.
///
/// A position belongs to a running listener for as long as it runs: a reload
/// keeps the positions of the listeners it keeps, and gives a new one the
/// lowest position no running listener holds (one a reload stopped earlier is
/// free again, since all its bursts were routed before it stopped). The HTTP
/// intake keeps the position it got at start.
package struct ListenerPositions: Sendable, Equatable {
    /// Positions a route's listener mask can hold.
    static let maskWidth = 64

    private(set) var byName: [String: Int]

    /// Positions in order: each of `listen`, then the HTTP intake.
    init(configuration: FerryConfiguration) {
        self.init(names: configuration.listenerNames)
    }

    /// Positions in the order of `names`.
    package init(names: [String]) {
        byName = Dictionary(names.enumerated().map { ($0.element, $0.offset) }, uniquingKeysWith: { first, _ in first })
    }

    /// The position of `name` (nil: not a listener).
    subscript(name: String) -> Int? { byName[name] }

    /// Positions for `configuration`'s listeners while the current ones still
    /// run: kept listeners keep theirs, new ones take the lowest free.
    func adding(_ configuration: FerryConfiguration) -> ListenerPositions {
        var result = self
        var taken = Set(byName.values)
        for name in configuration.listenerNames where result.byName[name] == nil {
            var position = 0
            while taken.contains(position) { position += 1 }
            result.byName[name] = position
            taken.insert(position)
        }
        return result
    }

    /// Only the positions of `configuration`'s listeners (after the others stopped).
    func keeping(_ configuration: FerryConfiguration) -> ListenerPositions {
        var result = self
        let names = Set(configuration.listenerNames)
        result.byName = byName.filter { names.contains($0.key) }
        return result
    }
}
