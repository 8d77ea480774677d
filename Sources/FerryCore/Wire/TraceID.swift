/// A 128-bit W3C trace id, carried in every frame so that every hop logs the same id.
public struct TraceID: Sendable, Hashable, CustomStringConvertible {
    public var high: UInt64
    public var low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// A random, non-zero trace id.
    public static func random() -> TraceID {
        var generator = SystemRandomNumberGenerator()
        return random(using: &generator)
    }

    /// A random, non-zero trace id from `generator` (a fast per-loop one on the data path).
    public static func random(using generator: inout some RandomNumberGenerator) -> TraceID {
        TraceID(high: generator.next(), low: generator.next() | 1)
    }

    /// 32 lowercase hex digits, as in a W3C `traceparent`.
    public var description: String {
        Self.hex(high) + Self.hex(low)
    }

    private static func hex(_ value: UInt64) -> String {
        let text = String(value, radix: 16)
        return String(repeating: "0", count: 16 - text.count) + text
    }
}

/// A fast pseudo-random generator (SplitMix64) seeded from the system, for
/// trace ids on the data path, where a system call per frame would cost too much.
package struct FastRandom: RandomNumberGenerator {
    private var state: UInt64

    package init() {
        var system = SystemRandomNumberGenerator()
        state = system.next()
    }

    /// A repeatable sequence, for tests and benchmarks.
    package init(seed: UInt64) {
        state = seed
    }

    package mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
