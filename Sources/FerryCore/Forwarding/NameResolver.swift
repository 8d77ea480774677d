import Logging
import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// Resolves an upstream's host name to all its addresses (`getaddrinfo`, which
/// reads /etc/hosts and DNS anew on every call), so Ferry can follow a record
/// that changes and try every address of a name before failing over.
public enum NameResolver {
    public enum Error: Swift.Error, CustomStringConvertible {
        case failed(host: String, reason: String)

        public var description: String {
            switch self {
            case .failed(let host, let reason): return "cannot resolve '\(host)': \(reason)"
            }
        }
    }

    /// Every distinct address of `host` for UDP, in the resolver's order.
    public static func resolveAll(host: String, port: Int) throws -> [SocketAddress] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_DGRAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let first = list else {
            throw Error.failed(host: host, reason: String(cString: gai_strerror(status)))
        }
        defer { freeaddrinfo(first) }
        var addresses: [SocketAddress] = []
        var node: UnsafeMutablePointer<addrinfo>? = first
        while let current = node {
            if let raw = current.pointee.ai_addr {
                let address: SocketAddress?
                switch current.pointee.ai_family {
                case AF_INET:
                    address = raw.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { SocketAddress($0.pointee, host: host) }
                case AF_INET6:
                    address = raw.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { SocketAddress($0.pointee, host: host) }
                default:
                    address = nil
                }
                if let address, !addresses.contains(address) { addresses.append(address) }
            }
            node = current.pointee.ai_next
        }
        guard !addresses.isEmpty else { throw Error.failed(host: host, reason: "no address") }
        return addresses
    }

    /// Whether `host` is an IP literal (nothing to re-resolve).
    public static func isLiteral(_ host: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }
}

extension NameResolver {
    /// Resolves an upstream before start. A host name that does not resolve
    /// yet (a peer that starts later, DNS not ready) does not stop Ferry: the
    /// upstream starts without an address, logs wait or fail over, and the
    /// resolver keeps trying. An address that cannot be used at all fails start-up.
    static func resolveAtStart(_ address: HostAndPort, for upstream: Upstream, logger: Logger) throws {
        do {
            upstream.setInitialAddresses(try resolve(address, for: upstream))
        } catch {
            guard !isLiteral(address.host) else { throw error }
            upstream.setInitialAddresses([])
            upstream.applyResolution(.failure(error))
        }
    }

    private static func resolve(_ address: HostAndPort, for upstream: Upstream) throws -> [SocketAddress] {
        do {
            return try resolveAll(host: address.host, port: address.port)
        } catch {
            throw ForwardingError.cannotResolve(upstream: upstream.url.description, reason: String(describing: error))
        }
    }
}
