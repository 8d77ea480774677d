/// The fuzzer's bytes, read front to back: choices first, then data.
///
/// Reading past the end yields zeros, so every input means something and a
/// short one is still a valid (small) case.
public struct FuzzInput {
    public let bytes: [UInt8]
    public private(set) var position = 0

    public init(_ data: UnsafePointer<UInt8>?, _ size: Int) {
        bytes = size > 0 && data != nil ? Array(UnsafeBufferPointer(start: data, count: size)) : []
    }

    public init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    public var isEmpty: Bool { position >= bytes.count }
    public var remaining: Int { max(0, bytes.count - position) }

    public mutating func byte() -> UInt8 {
        guard position < bytes.count else { return 0 }
        defer { position += 1 }
        return bytes[position]
    }

    /// A big-endian integer of `count` bytes.
    public mutating func integer(bytes count: Int) -> UInt64 {
        var value: UInt64 = 0
        for _ in 0..<count { value = value << 8 | UInt64(byte()) }
        return value
    }

    /// Up to `count` bytes (fewer at the end).
    public mutating func take(_ count: Int) -> [UInt8] {
        let taken = Array(bytes[min(position, bytes.count)..<min(position + count, bytes.count)])
        position += taken.count
        return taken
    }

    /// Everything not read yet.
    public mutating func rest() -> [UInt8] { take(remaining) }
}
