/// Recognises retransmitted frames of one sender so each is delivered once.
///
/// Remembers the highest sequence number seen and which of the `size`
/// sequence numbers below it were seen (a bitmap, as in IPsec's anti-replay
/// window). Sequence numbers are 32-bit and compared in serial-number
/// arithmetic (RFC 1982), so wrapping from 2³²−1 to 0 is just "one ahead".
public struct DedupeWindow: Sendable {
    public enum Verdict: Sendable, Equatable {
        /// Not seen: deliver, then ``mark(_:)``.
        case new
        /// Seen before: acknowledge again, do not deliver.
        case duplicate
        /// Older than the window: cannot be told apart from a duplicate, so not delivered.
        case tooOld
    }

    public static let size = 1024
    private var highest: UInt32?
    private var bits = [UInt64](repeating: 0, count: DedupeWindow.size / 64)

    public init() {}

    public func check(_ sequence: UInt32) -> Verdict {
        guard let highest else { return .new }
        let distance = Int32(bitPattern: sequence &- highest)
        if distance > 0 { return .new }
        let behind = -Int(distance)
        guard behind < Self.size else { return .tooOld }
        return isSet(behind) ? .duplicate : .new
    }

    public mutating func mark(_ sequence: UInt32) {
        guard let current = highest else {
            highest = sequence
            set(0)
            return
        }
        let distance = Int32(bitPattern: sequence &- current)
        if distance > 0 {
            shift(by: Int(distance))
            highest = sequence
            set(0)
        } else if -Int(distance) < Self.size {
            set(-Int(distance))
        }
    }

    /// The window as saved (``SenderWindows/encode(generation:)``): the highest
    /// sequence seen, if any, and the bitmap below it.
    var saved: (highest: UInt32?, bits: [UInt64]) { (highest, bits) }

    /// A window saved by ``saved``; nil if `bits` is not a whole bitmap.
    init?(highest: UInt32?, bits: [UInt64]) {
        guard bits.count == Self.size / 64 else { return nil }
        self.highest = highest
        self.bits = highest == nil ? [UInt64](repeating: 0, count: Self.size / 64) : bits
    }

    /// Adds every sequence `other` has seen (two loops' windows of one sender, after a restart).
    mutating func merge(_ other: DedupeWindow) {
        guard let top = other.highest else { return }
        for offset in 0..<Self.size where other.isSet(offset) { mark(top &- UInt32(offset)) }
    }

    // Bit i stands for sequence number `highest − i`.
    private func isSet(_ offset: Int) -> Bool {
        bits[offset / 64] & (1 << UInt64(offset % 64)) != 0
    }

    private mutating func set(_ offset: Int) {
        bits[offset / 64] |= 1 << UInt64(offset % 64)
    }

    private mutating func shift(by count: Int) {
        guard count < Self.size else {
            for index in bits.indices { bits[index] = 0 }
            return
        }
        let words = count / 64
        let rest = UInt64(count % 64)
        for index in stride(from: bits.count - 1, through: 0, by: -1) {
            let source = index - words
            var value: UInt64 = 0
            if source >= 0 {
                value = bits[source] << rest
                if rest > 0, source - 1 >= 0 {
                    value |= bits[source - 1] >> (64 - rest)
                }
            }
            bits[index] = value
        }
    }
}
