import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Hosts of a test's own, each a network namespace, joined by veth pairs.
///
/// Everything it makes has a name starting with ``prefix`` and is removed by
/// ``remove()`` (or, if a run was killed, by the first network of a later
/// process with the same id). Addresses come from `10.(100 + pid % 100).N.0/24`,
/// one /24 per link (up to 250 per process), so two tests never share one. Needs root and iproute2: see ``isAvailable``.
public final class TestNetwork: @unchecked Sendable {
    /// One host: a namespace, or the test process's own (root) namespace.
    public struct Host: Sendable, Hashable {
        /// The namespace's name; nil for the root namespace.
        public let namespace: String?
        public let name: String

        /// Prefix for a command run on this host (`ip netns exec NAME`); empty for root.
        public var wrapper: [String] {
            namespace.map { ["/usr/sbin/ip", "netns", "exec", $0] } ?? []
        }
    }

    /// The two ends of a link made by ``link(_:_:)``.
    public struct Link: Sendable {
        public let a: Host
        public let b: Host
        /// `a`'s address on the link (`10.x.N.1`).
        public let addressA: String
        /// `b`'s address on the link (`10.x.N.2`).
        public let addressB: String
        public let interfaceA: String
        public let interfaceB: String
        /// The link's network, as `10.x.N.0/24`.
        public let subnet: String
    }

    /// The test process's own namespace.
    public static let root = Host(namespace: nil, name: "root")

    /// Whether namespaces can be made here (root, iproute2). CI runs as root;
    /// elsewhere tests that need them are skipped.
    public static var isAvailable: Bool {
        geteuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip")
    }

    public let prefix: String
    private let secondOctet: Int
    private let state = Mutex<(hosts: [Host], links: Int)>(([], 0))
    private static let nextNetwork = Atomic<Int>(0)
    private static let nextLink = Atomic<Int>(0)

    /// - Parameter label: a short word for the test (up to 4 characters are used).
    public init(_ label: String) throws {
        let pid = Int(getpid())
        let index = Self.nextNetwork.add(1, ordering: .relaxed).newValue
        prefix = "fy\(pid)\(String(label.prefix(4)))\(index)-"
        secondOctet = 100 + pid % 100
        Self.removeStale(prefix: "fy\(pid)")
    }

    deinit { remove() }

    /// Makes host `name` (a namespace with loopback up).
    public func addHost(_ name: String) throws -> Host {
        let namespace = prefix + name
        try Self.ip(["netns", "add", namespace])
        let host = Host(namespace: namespace, name: name)
        state.withLock { $0.hosts.append(host) }
        try run(on: host, ["/usr/sbin/ip", "link", "set", "lo", "up"])
        return host
    }

    /// Joins `a` and `b` by a veth pair on a /24 of its own: `a` gets `.1`, `b` gets `.2`.
    @discardableResult
    public func link(_ a: Host, _ b: Host, mtu: Int = 1500) throws -> Link {
        let index = Self.nextLink.add(1, ordering: .relaxed).newValue
        state.withLock { $0.links += 1 }
        let network = index % 250
        // Unique in the root namespace (where both ends are made) and at most 15 characters.
        let interfaceA = "fy\(getpid())i\(index)a"
        let interfaceB = "fy\(getpid())i\(index)b"
        let base = "10.\(secondOctet).\(network)"
        try Self.ip(["link", "add", interfaceA, "mtu", "\(mtu)", "type", "veth", "peer", "name", interfaceB, "mtu", "\(mtu)"])
        for (host, interface, address) in [(a, interfaceA, "\(base).1"), (b, interfaceB, "\(base).2")] {
            if let namespace = host.namespace { try Self.ip(["link", "set", interface, "netns", namespace]) }
            try run(on: host, ["/usr/sbin/ip", "address", "add", "\(address)/24", "dev", interface])
            try run(on: host, ["/usr/sbin/ip", "link", "set", interface, "up"])
        }
        return Link(
            a: a, b: b, addressA: "\(base).1", addressB: "\(base).2", interfaceA: interfaceA, interfaceB: interfaceB, subnet: "\(base).0/24")
    }

    /// Routes `destination` (a CIDR or `default`) from `host` through `gateway`.
    public func route(on host: Host, to destination: String, via gateway: String) throws {
        try run(on: host, ["/usr/sbin/ip", "route", "replace", destination, "via", gateway])
    }

    /// Lets `host` forward packets between its links (a router; never the root namespace).
    public func enableForwarding(on host: Host) throws {
        precondition(host.namespace != nil, "forwarding is only switched on inside a test namespace")
        try run(on: host, ["/usr/sbin/sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
    }

    /// Runs `command` on `host` and returns its output; throws if it fails.
    @discardableResult
    public func run(on host: Host, _ command: [String], input: String = "") throws -> String {
        let full = host.wrapper + command
        let (status, output) = try Self.execute(full, input: input)
        guard status == 0 else { throw TestNetworkError.commandFailed(full.joined(separator: " "), output) }
        return output
    }

    /// Removes every namespace this network made (their veth pairs go with them).
    public func remove() {
        let hosts = state.withLock { state -> [Host] in
            defer { state.hosts = [] }
            return state.hosts
        }
        for host in hosts {
            if let namespace = host.namespace { _ = try? Self.execute(["/usr/sbin/ip", "netns", "delete", namespace]) }
        }
    }

    /// Deletes namespaces left by an earlier, killed process with the same id (once per process).
    private static func removeStale(prefix: String) {
        guard staleRemoved.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged,
            let names = try? FileManager.default.contentsOfDirectory(atPath: "/run/netns")
        else { return }
        for name in names where name.hasPrefix(prefix) {
            _ = try? execute(["/usr/sbin/ip", "netns", "delete", name])
        }
    }

    private static let staleRemoved = Atomic<Bool>(false)

    private static func ip(_ arguments: [String]) throws {
        let (status, output) = try execute(["/usr/sbin/ip"] + arguments)
        guard status == 0 else { throw TestNetworkError.commandFailed("ip " + arguments.joined(separator: " "), output) }
    }

    static func execute(_ command: [String], input: String = "") throws -> (Int32, String) {
        try ExternalTool.run(executable: command[0], Array(command.dropFirst()), input: input)
    }
}

public enum TestNetworkError: Error, CustomStringConvertible {
    case commandFailed(String, String)

    public var description: String {
        switch self {
        case .commandFailed(let command, let output): return "'\(command)' failed: \(output)"
        }
    }
}
