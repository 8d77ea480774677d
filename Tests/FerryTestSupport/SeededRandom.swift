import Foundation

/// SplitMix64 (Steele, Lea and Flood): a tiny, fast generator whose whole
/// sequence follows from its seed, so an impaired run can be replayed.
///
/// Not for secrets. `SystemRandomNumberGenerator` cannot be seeded, which is
/// why the test bed has its own.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    /// A generator of its own for one use of a run's seed (one direction of a
    /// relay, say), so the choices of one do not shift those of another.
    public init(seed: UInt64, stream: UInt64) {
        var mixer = SeededRandom(seed: seed ^ (stream &* 0x9E37_79B9_7F4A_7C15))
        state = mixer.next()
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// True with probability `p` (0 … 1); draws nothing when `p` is 0, so a
    /// setting that is off does not change the choices of the others.
    public mutating func chance(_ p: Double) -> Bool {
        guard p > 0 else { return false }
        return Double(next() >> 11) * 0x1.0p-53 < p
    }

    /// The seed of a run: `FERRY_TEST_SEED` when set (to replay a failure),
    /// else `fallback`.
    public static func seed(fallback: UInt64) -> UInt64 {
        if let text = ProcessInfo.processInfo.environment["FERRY_TEST_SEED"] {
            if let value = UInt64(text) { return value }
            if text.hasPrefix("0x"), let value = UInt64(text.dropFirst(2), radix: 16) { return value }
        }
        return fallback
    }
}
