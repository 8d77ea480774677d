import CFerrySystem
import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// An address block (`10.0.0.0/8`, `2001:db8::/32`, or one address) as a
/// 128-bit network and mask. IPv4 blocks live in `::ffff:0:0/96`, so an IPv4
/// client of a dual-stack `[::]` socket (an IPv4-mapped address) matches them.
public struct CIDRBlock: Sendable, Hashable, CustomStringConvertible {
    let network: SourceKey
    let mask: SourceKey
    public let prefixLength: Int
    let isIPv4: Bool

    /// Parses `ADDRESS/PREFIX` or a single `ADDRESS`; nil for anything else
    /// (including bits set beyond the prefix, a common typo: `10.1.2.3/8`).
    public init?(parsing text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let address = SourceKey(parsing: String(parts[0])) else { return nil }
        isIPv4 = !parts[0].contains(":")
        let maximum = isIPv4 ? 32 : 128
        var length = maximum
        if parts.count == 2 {
            guard let given = Int(parts[1]), (0...maximum).contains(given), !parts[1].hasPrefix("+") else { return nil }
            length = given
        }
        prefixLength = length
        let bits = isIPv4 ? 96 + length : length
        mask = SourceKey(
            high: bits >= 64 ? .max : (bits == 0 ? 0 : ~UInt64(0) << (64 - bits)),
            low: bits <= 64 ? 0 : (bits >= 128 ? .max : ~UInt64(0) << (128 - bits)))
        guard address.high & ~mask.high == 0, address.low & ~mask.low == 0 else { return nil }
        network = address
    }

    @inline(__always)
    func contains(_ key: SourceKey) -> Bool {
        key.high & mask.high == network.high && key.low & mask.low == network.low
    }

    public var description: String { "\(network.addressText(asIPv4: isIPv4))/\(prefixLength)" }
}

/// The source blocks a listener takes traffic from (`allow`); every other
/// datagram or connection is refused before it is parsed, counted as `denied`.
public struct SourceAllowlist: Sendable, Hashable, CustomStringConvertible {
    public let blocks: [CIDRBlock]

    public init(_ blocks: [CIDRBlock]) {
        self.blocks = blocks
    }

    /// The forms `allow` takes, for error messages.
    public static let allowedForms = "IPv4 or IPv6 addresses or CIDR blocks (10.0.0.0/8, 192.0.2.7, 2001:db8::/32, ::1), host bits zero"

    @inline(__always)
    func allows(_ key: SourceKey) -> Bool {
        for block in blocks where block.contains(key) { return true }
        return false
    }

    public var description: String { blocks.map(\.description).joined(separator: ",") }
}

/// A source address as 128 bits (IPv4 as `::ffff:a.b.c.d`): the key of
/// allowlists and of the rate limiter's table, read from a `sockaddr` without allocating.
package struct SourceKey: Sendable, Hashable {
    var high: UInt64
    var low: UInt64

    package init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// From a `recvmmsg` sender address; nil for a family that is neither IPv4 nor IPv6.
    @inline(__always)
    init?(storage: UnsafePointer<sockaddr_storage>) {
        switch CInt(storage.pointee.ss_family) {
        case AF_INET:
            let address = UnsafeRawPointer(storage).load(fromByteOffset: 4, as: UInt32.self)  // sin_addr, network order
            self.init(high: 0, low: 0x0000_FFFF_0000_0000 | UInt64(UInt32(bigEndian: address)))
        case AF_INET6:
            let raw = UnsafeRawPointer(storage)
            self.init(
                high: UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)),
                low: UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self)))
        default:
            return nil
        }
    }

    init?(_ address: SocketAddress) {
        var storage = sockaddr_storage()
        let copied: Bool = address.withSockAddr { pointer, length in
            guard length <= MemoryLayout<sockaddr_storage>.size else { return false }
            withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: UnsafeRawBufferPointer(start: pointer, count: length)) }
            return true
        }
        guard copied else { return nil }
        self.init(storage: &storage)
    }

    /// Parses an IPv4 or IPv6 address (no port, no brackets).
    init?(parsing text: String) {
        if text.contains(":") {
            var address = in6_addr()
            guard inet_pton(AF_INET6, text, &address) == 1 else { return nil }
            let bytes = withUnsafeBytes(of: &address) { Array($0) }
            self.init(
                high: bytes[0..<8].reduce(0) { $0 << 8 | UInt64($1) }, low: bytes[8..<16].reduce(0) { $0 << 8 | UInt64($1) })
        } else {
            var address = in_addr()
            guard inet_pton(AF_INET, text, &address) == 1 else { return nil }
            self.init(high: 0, low: 0x0000_FFFF_0000_0000 | UInt64(UInt32(bigEndian: address.s_addr)))
        }
    }

    /// Whether this is an IPv4 (or IPv4-mapped) address.
    var isIPv4: Bool { high == 0 && low >> 32 == 0xFFFF }

    /// The address as text, for status and warnings.
    var description: String { addressText(asIPv4: isIPv4) }

    func addressText(asIPv4: Bool) -> String {
        if asIPv4 {
            let value = UInt32(truncatingIfNeeded: low)
            return "\(value >> 24).\(value >> 16 & 0xFF).\(value >> 8 & 0xFF).\(value & 0xFF)"
        }
        var address = in6_addr()
        withUnsafeMutableBytes(of: &address) { bytes in
            for index in 0..<8 {
                bytes[index] = UInt8(truncatingIfNeeded: high >> (56 - 8 * index))
                bytes[8 + index] = UInt8(truncatingIfNeeded: low >> (56 - 8 * index))
            }
        }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        guard inet_ntop(AF_INET6, &address, &text, socklen_t(text.count)) != nil else { return "?" }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
