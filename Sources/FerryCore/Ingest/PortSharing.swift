import NIOCore

/// Finds the UDP sockets that would share a listener's datagrams with Ferry.
///
/// Ferry's receive sockets use `SO_REUSEPORT`, so any other socket of the same
/// user that binds the same port with it set (a second Ferry, a stray test
/// tool) joins the port's group silently, and the kernel hands it part of the
/// traffic. The kernel's socket tables (/proc/net/udp, udp6) list every UDP
/// socket with its inode; any on the listener's port whose address overlaps
/// and whose inode is not one of Ferry's own is such a foreign receiver.
public enum PortSharing {
    /// Sockets in `table` that receive datagrams sent to `address` and are not in `own`.
    ///
    /// Counted: unconnected sockets on the same port whose address is the same,
    /// or where either side is a wildcard (`0.0.0.0`, `::`); an IPv6 wildcard
    /// also overlaps IPv4 addresses (dual stack).
    public static func foreignReceivers(
        of address: SocketAddress, own: Set<UInt64>, table: [KernelUDPStats.SocketLine]
    ) -> [KernelUDPStats.SocketLine] {
        guard let port = address.port, port != 0, let ours = tableForm(of: address) else { return [] }
        return table.filter { line in
            guard line.localPort == port, !own.contains(line.inode), line.remotePort == 0, isZero(line.remoteAddress) else { return false }
            return overlaps(line.localAddress, ours)
        }
    }

    /// Every socket of the kernel's tables (IPv4 and IPv6).
    public static func kernelTable() -> [KernelUDPStats.SocketLine] {
        KernelUDPStats.tables.flatMap { KernelUDPStats.readFile($0).map(KernelUDPStats.parseSocketTable) ?? [] }
    }

    static func overlaps(_ theirs: String, _ ours: String) -> Bool {
        if theirs == ours || isZero(theirs) || isZero(ours) {
            // Across families only a wildcard IPv6 socket (dual stack) overlaps.
            if theirs.count == ours.count { return true }
            let v6 = theirs.count == 32 ? theirs : ours
            return isZero(v6)
        }
        return false
    }

    private static func isZero(_ hex: String) -> Bool {
        hex.allSatisfy { $0 == "0" }
    }

    /// An address as /proc/net/udp prints it: each 32-bit word of the address
    /// in memory order, read as a native (little-endian here) integer, in hex.
    static func tableForm(of address: SocketAddress) -> String? {
        var bytes: [UInt8]
        switch address {
        case .v4(let v4):
            bytes = withUnsafeBytes(of: v4.address.sin_addr) { Array($0) }
        case .v6(let v6):
            bytes = withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
        default:
            return nil
        }
        var text = ""
        while bytes.count >= 4 {
            let word = UInt32(bytes[0]) | UInt32(bytes[1]) << 8 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 24
            let hex = String(word, radix: 16, uppercase: true)
            text += String(repeating: "0", count: 8 - hex.count) + hex
            bytes.removeFirst(4)
        }
        return text
    }
}
