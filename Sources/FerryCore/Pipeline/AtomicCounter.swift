import Synchronization

/// A monotonically growing count that any thread may add to and read, with
/// relaxed ordering: cheap enough for the data path, exact when summed.
public final class AtomicCounter: Sendable {
    private let value = Atomic<Int>(0)

    public init() {}

    @inline(__always)
    public func add(_ amount: Int) {
        value.wrappingAdd(amount, ordering: .relaxed)
    }

    public var load: Int { value.load(ordering: .relaxed) }
}

/// A boolean any thread may set and read, with relaxed ordering.
public final class AtomicFlag: Sendable {
    private let value: Atomic<Bool>

    public init(_ initial: Bool) {
        value = Atomic(initial)
    }

    public func store(_ newValue: Bool) {
        value.store(newValue, ordering: .relaxed)
    }

    public var load: Bool { value.load(ordering: .relaxed) }
}
