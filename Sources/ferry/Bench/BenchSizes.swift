/// The lengths `ferry bench` sends: one size, or each log's drawn from
/// `minimum...maximum` (`--size 60-400`), as real log lines differ in length
/// (and equal lengths let the kernel batch datagrams in ways real traffic
/// does not).
struct BenchSizes: Equatable, Sendable {
    let minimum: Int
    let maximum: Int

    static let allowed = BenchPayload.minimumSize...65_507

    init(minimum: Int, maximum: Int) {
        self.minimum = minimum
        self.maximum = maximum
    }

    /// `BYTES` or `MIN-MAX`, each in ``allowed``, `MIN` at most `MAX`.
    init?(parsing text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let low = Int(parts[0]), let high = Int(parts[parts.count - 1]) else { return nil }
        guard Self.allowed.contains(low), Self.allowed.contains(high), low <= high else { return nil }
        self.init(minimum: low, maximum: high)
    }

    /// The lengths in sending order: uniform over the range, from a fixed
    /// seed (xorshift), so two runs send the same lengths.
    struct Lengths {
        private let sizes: BenchSizes
        private var state: UInt64 = 0x9E37_79B9_7F4A_7C15

        init(_ sizes: BenchSizes) {
            self.sizes = sizes
        }

        mutating func next() -> Int {
            guard sizes.maximum > sizes.minimum else { return sizes.minimum }
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return sizes.minimum + Int(state % UInt64(sizes.maximum - sizes.minimum + 1))
        }
    }
}
