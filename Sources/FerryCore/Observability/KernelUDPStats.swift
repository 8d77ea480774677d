#if canImport(Glibc)
    import Glibc
#endif

/// What the kernel knows about UDP that Ferry's own counters cannot see:
/// datagrams dropped before Ferry could read them. Read from /proc at scrape
/// time and on a slow timer, never on the data path.
public enum KernelUDPStats {
    /// One UDP socket's line of /proc/net/udp or /proc/net/udp6.
    public struct SocketLine: Sendable, Equatable {
        public var localPort: Int
        public var receiveQueueBytes: Int
        public var drops: Int
        public var inode: UInt64
        /// The local address as the table prints it: 8 hex digits (IPv4) or 32 (IPv6).
        public var localAddress: String = ""
        /// The remote address likewise; all zeros for an unconnected socket.
        public var remoteAddress: String = ""
        /// The remote port; 0 for an unconnected socket.
        public var remotePort: Int = 0
    }

    /// The kernel's UDP socket tables, IPv4 and IPv6.
    public static let tables = ["/proc/net/udp", "/proc/net/udp6"]

    /// Parses the table format of /proc/net/udp:
    /// `sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ref pointer drops`.
    public static func parseSocketTable(_ text: String) -> [SocketLine] {
        text.split(separator: "\n").dropFirst().compactMap { line in
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            let local = fields.count > 2 ? fields[1].split(separator: ":") : []
            let remote = fields.count > 2 ? fields[2].split(separator: ":") : []
            guard fields.count >= 13, local.count == 2, remote.count == 2,
                let portText = local.last, let port = Int(portText, radix: 16), let remotePort = Int(remote[1], radix: 16),
                let queueText = fields[4].split(separator: ":").last, let queue = Int(queueText, radix: 16),
                let inode = UInt64(fields[9]), let drops = Int(fields[12])
            else { return nil }
            return SocketLine(
                localPort: port, receiveQueueBytes: queue, drops: drops, inode: inode, localAddress: String(local[0]),
                remoteAddress: String(remote[0]), remotePort: remotePort)
        }
    }

    /// The host-wide UDP error counters of /proc/net/snmp (`Udp:`) and /proc/net/snmp6 (`Udp6…`).
    public struct HostCounters: Sendable, Equatable, Codable {
        public var receiveBufferErrors = 0
        public var sendBufferErrors = 0
        public var inErrors = 0
        public var noPorts = 0
    }

    /// Reads the `Udp:` counters (IPv4) and the `Udp6` counters (IPv6).
    public static func hostCounters(snmp: String = "/proc/net/snmp", snmp6: String = "/proc/net/snmp6") -> (udp: HostCounters, udp6: HostCounters) {
        (parseSNMP(readFile(snmp) ?? ""), parseSNMP6(readFile(snmp6) ?? ""))
    }

    /// `Udp: InDatagrams NoPorts InErrors …` followed by `Udp: 1 2 3 …`.
    public static func parseSNMP(_ text: String) -> HostCounters {
        let lines = text.split(separator: "\n").filter { $0.hasPrefix("Udp: ") }
        guard lines.count >= 2 else { return HostCounters() }
        let names = lines[0].split(separator: " ").dropFirst().map(String.init)
        let values = lines[1].split(separator: " ").dropFirst().map { Int($0) ?? 0 }
        let table = Dictionary(zip(names, values), uniquingKeysWith: { first, _ in first })
        return HostCounters(
            receiveBufferErrors: table["RcvbufErrors"] ?? 0, sendBufferErrors: table["SndbufErrors"] ?? 0,
            inErrors: table["InErrors"] ?? 0, noPorts: table["NoPorts"] ?? 0)
    }

    /// `Udp6RcvbufErrors 0` lines.
    public static func parseSNMP6(_ text: String) -> HostCounters {
        var table: [Substring: Int] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("Udp6") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if fields.count == 2 { table[fields[0]] = Int(fields[1]) ?? 0 }
        }
        return HostCounters(
            receiveBufferErrors: table["Udp6RcvbufErrors"] ?? 0, sendBufferErrors: table["Udp6SndbufErrors"] ?? 0,
            inErrors: table["Udp6InErrors"] ?? 0, noPorts: table["Udp6NoPorts"] ?? 0)
    }

    static func readFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16_384)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count <= 0 { break }
            bytes += chunk.prefix(count)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Asks the kernel for a receive buffer the way the listener does, without
/// binding anything, so `ferry check-config` can warn before start-up.
public enum ReceiveBufferProbe {
    /// The usable receive buffer the kernel grants for `requested` bytes.
    public static func granted(requested: Int) -> Int? {
        let descriptor = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        return try? ReceiveSocket.grantReceiveBuffer(descriptor, wanted: requested)
    }
}
