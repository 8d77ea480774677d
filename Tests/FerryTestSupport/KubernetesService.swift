import Foundation
import Synchronization

/// A Kubernetes UDP Service simulated the way kube-proxy's nftables mode makes
/// one, in a ``TestNetwork``: a "node" namespace routes between an edge host
/// and aggregator "pods" and DNATs the Service's virtual IP:port to one of its
/// endpoints with `numgen random mod N`; conntrack then keeps each flow (edge
/// socket → VIP) on the pod it was first sent to, until the entry is deleted.
///
/// Pods route back through the node, so replies are un-NATed (their source is
/// the VIP again) and reach the edge's connected socket. Like kube-proxy, an
/// endpoint change rewrites the rules in one transaction and leaves conntrack
/// alone; deleting a removed endpoint's UDP entries is a separate step
/// (``flushConntrack(of:)``), which older kube-proxy releases sometimes missed.
/// Needs `nft` (Debian `nftables`) and `conntrack` (Debian `conntrack`).
public final class KubernetesService: @unchecked Sendable {
    /// An aggregator pod: a namespace linked to the node.
    public struct Pod: Sendable, Hashable {
        public let index: Int
        public let host: TestNetwork.Host
        /// The pod's address (its end of the link to the node).
        public let address: String
    }

    /// One conntrack entry of a flow to the Service: which edge socket, which pod.
    public struct Flow: Sendable, Equatable {
        public let sourcePort: Int
        /// The pod the entry DNATs to (its reply source).
        public let podAddress: String
    }

    public let network: TestNetwork
    public let node: TestNetwork.Host
    public let edge: TestNetwork.Host
    /// The edge's address on its link to the node: the source of its flows.
    public let edgeAddress: String
    /// The edge's address on its link to the test (root) namespace: where the test sends and reads status.
    public let edgeControlAddress: String
    public let virtualIP: String
    public let port: Int
    private let state = Mutex<(pods: [Pod], endpoints: [Int])>(([], []))

    /// Whether `nft`, `conntrack` and namespaces are available (as root).
    public static var isAvailable: Bool {
        TestNetwork.isAvailable && FileManager.default.isExecutableFile(atPath: "/usr/sbin/nft")
            && FileManager.default.isExecutableFile(atPath: "/usr/sbin/conntrack")
    }

    /// Makes the node, the edge (linked to the node and to the test's namespace)
    /// and `pods` pods; none is an endpoint yet (see ``setEndpoints(_:)``).
    /// - Parameter virtualIP: exists only inside this network (the edge routes it to the node).
    public init(_ label: String, pods: Int, virtualIP: String = "10.96.0.10", port: Int = 5514) throws {
        network = try TestNetwork(label)
        self.virtualIP = virtualIP
        self.port = port
        node = try network.addHost("node")
        edge = try network.addHost("edge")
        try network.enableForwarding(on: node)
        let edgeLink = try network.link(node, edge)
        edgeAddress = edgeLink.addressB
        edgeControlAddress = try network.link(TestNetwork.root, edge).addressB
        try network.route(on: edge, to: virtualIP + "/32", via: edgeLink.addressA)
        for _ in 0..<pods { _ = try addPod() }
        try applyRules()
    }

    deinit { remove() }

    public var pods: [Pod] { state.withLock { $0.pods } }

    /// The pods the Service currently sends new flows to.
    public var endpoints: [Pod] { state.withLock { state in state.endpoints.map { state.pods[$0] } } }

    /// Makes one more pod (a namespace linked to the node, default route via the node).
    @discardableResult
    public func addPod() throws -> Pod {
        let index = state.withLock { $0.pods.count }
        let host = try network.addHost("pod\(index)")
        let link = try network.link(node, host)
        try network.route(on: host, to: "default", via: link.addressA)
        let pod = Pod(index: index, host: host, address: link.addressB)
        state.withLock { $0.pods.append(pod) }
        return pod
    }

    /// Replaces the Service's endpoints (pods by index), as kube-proxy does when
    /// the EndpointSlice changes: one nft transaction; conntrack untouched.
    public func setEndpoints(_ indices: [Int]) throws {
        state.withLock { $0.endpoints = indices }
        try applyRules()
    }

    /// Adds `pod` to the endpoints (a pod that became ready; scale-up).
    public func addEndpoint(_ pod: Pod) throws {
        try setEndpoints(state.withLock { $0.endpoints.filter { $0 != pod.index } } + [pod.index])
    }

    /// Removes `pod` from the endpoints (readiness failed, or scale-down); with
    /// `flushConntrack`, then deletes its UDP conntrack entries as kube-proxy
    /// does. Returns how many entries were deleted.
    @discardableResult
    public func removeEndpoint(_ pod: Pod, flushConntrack flush: Bool) throws -> Int {
        try setEndpoints(state.withLock { $0.endpoints.filter { $0 != pod.index } })
        return flush ? try flushConntrack(of: pod) : 0
    }

    /// `conntrack -D -p udp --orig-dst VIP --reply-src POD` on the node: what
    /// kube-proxy runs for a UDP endpoint that went away. Returns the count deleted.
    @discardableResult
    public func flushConntrack(of pod: Pod) throws -> Int {
        let command = node.wrapper + ["/usr/sbin/conntrack", "-D", "-p", "udp", "--orig-dst", virtualIP, "--reply-src", pod.address]
        // Exit status 1 with "0 flow entries have been deleted" is not an error.
        let (_, output) = try TestNetwork.execute(command)
        guard let match = output.firstMatch(of: /(\d+) flow entries have been deleted/) else {
            throw TestNetworkError.commandFailed(command.joined(separator: " "), output)
        }
        return Int(match.1) ?? 0
    }

    /// The node's conntrack entries to the Service (`conntrack -L`).
    public func flows() throws -> [Flow] {
        let output = try network.run(on: node, ["/usr/sbin/conntrack", "-L", "-p", "udp", "--orig-dst", virtualIP])
        return output.split(separator: "\n").compactMap { line -> Flow? in
            // udp 17 29 src=EDGE dst=VIP sport=P dport=5514 src=POD dst=EDGE sport=5514 dport=P ...
            let fields = line.split(separator: " ")
            let sources = fields.filter { $0.hasPrefix("src=") }.map { String($0.dropFirst(4)) }
            let ports = fields.filter { $0.hasPrefix("sport=") }.compactMap { Int($0.dropFirst(6)) }
            guard sources.count == 2, let sourcePort = ports.first else { return nil }
            return Flow(sourcePort: sourcePort, podAddress: sources[1])
        }
    }

    /// The pod carrying the edge's flows (the newest entry's), if any.
    public func podCarryingEdgeFlow() throws -> Pod? {
        let flows = try flows()
        return pods.first { pod in flows.contains { $0.podAddress == pod.address } }
    }

    /// Deletes the nft table and every namespace (kill processes in them first).
    public func remove() {
        _ = try? network.run(on: node, ["/usr/sbin/nft", "delete", "table", "ip", Self.table])
        network.remove()
    }

    // MARK: - Rules

    static let table = "ferry-kube-proxy"

    /// The whole table for the current endpoints, replaced atomically (one `nft -f`).
    /// Chain layout and names follow kube-proxy's nftables proxier: a
    /// `service-ips` verdict map from VIP . protocol . port to the service's
    /// chain, which picks an endpoint chain with `numgen random mod N`; a
    /// Service without endpoints rejects new flows (ICMP port unreachable) in the filter hooks.
    private func applyRules() throws {
        let (pods, endpoints) = state.withLock { ($0.pods, $0.endpoints) }
        let service = "service-ferry-udp"
        var chains = ""
        let pick: String
        if endpoints.isEmpty {
            pick = ""
        } else {
            let map = endpoints.enumerated().map { "\($0.offset) : goto endpoint-\($0.element)" }.joined(separator: ", ")
            pick = "numgen random mod \(endpoints.count) vmap { \(map) }"
        }
        for index in endpoints {
            chains += """
                  chain endpoint-\(index) {
                    meta l4proto udp dnat to \(pods[index].address):\(port)
                  }

                """
        }
        let reject = endpoints.isEmpty ? "ct state new ip daddr \(virtualIP) udp dport \(port) reject" : ""
        let rules = """
            table ip \(Self.table) {
            }
            delete table ip \(Self.table)
            table ip \(Self.table) {
              map service-ips {
                type ipv4_addr . inet_proto . inet_service : verdict
                elements = { \(virtualIP) . udp . \(port) : goto \(service) }
              }
              chain nat-prerouting {
                type nat hook prerouting priority dstnat; policy accept;
                ip daddr . meta l4proto . th dport vmap @service-ips
              }
              chain \(service) {
                \(pick)
              }
            \(chains)
              chain filter-forward {
                type filter hook forward priority filter; policy accept;
                \(reject)
              }
            }

            """
        try network.run(on: node, ["/usr/sbin/nft", "-f", "-"], input: rules)
    }
}
