import FerryCore
import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// A plain blocking UDP socket for the load tool: connected for sending, bound for receiving.
final class BenchSocket: Sendable {
    let fd: CInt

    private init(fd: CInt) {
        self.fd = fd
    }

    deinit {
        close(fd)
    }

    static func connected(to target: HostAndPort) throws -> BenchSocket {
        let address = try resolve(target)
        let socket = try open(family: address.protocol.rawValue, buffer: SO_SNDBUF)
        let result = address.withSockAddr { connect(socket.fd, $0, socklen_t($1)) }
        guard result == 0 else { throw BenchError.socket("connect to \(target)", errno) }
        return socket
    }

    static func bound(to sink: HostAndPort) throws -> BenchSocket {
        let address = try resolve(sink)
        let socket = try open(family: address.protocol.rawValue, buffer: SO_RCVBUFFORCE)
        let result = address.withSockAddr { bind(socket.fd, $0, socklen_t($1)) }
        guard result == 0 else { throw BenchError.socket("bind \(sink)", errno) }
        return socket
    }

    private static func resolve(_ address: HostAndPort) throws -> SocketAddress {
        do {
            return try SocketAddress.makeAddressResolvingHost(address.host, port: address.port)
        } catch {
            throw BenchError.socket("resolve \(address)", EINVAL)
        }
    }

    private static func open(family: CInt, buffer option: CInt) throws -> BenchSocket {
        let fd = socket(family, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw BenchError.socket("socket", errno) }
        var size: CInt = 32 << 20
        if setsockopt(fd, SOL_SOCKET, option, &size, socklen_t(MemoryLayout<CInt>.size)) != 0 {
            _ = setsockopt(fd, SOL_SOCKET, option == SO_RCVBUFFORCE ? SO_RCVBUF : SO_SNDBUF, &size, socklen_t(MemoryLayout<CInt>.size))
        }
        return BenchSocket(fd: fd)
    }
}

/// Why the load tool could not run.
enum BenchError: Error, CustomStringConvertible {
    case socket(String, CInt)

    var description: String {
        switch self {
        case .socket(let what, let code): return "bench: \(what) failed: \(String(cString: strerror(code)))"
        }
    }
}
