import CFerrySystem
import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// One bound `SO_REUSEPORT` receive socket, owned by Ferry rather than by NIO,
/// so that its ``DatagramReceiver`` can read it with `recvmmsg` directly.
///
/// The descriptor is closed only by ``close()``, after its receiver has
/// stopped and its loop has sent its last acknowledgement.
package final class ReceiveSocket: Sendable {
    /// Used only through thread-safe system calls; closed once, after the receiver thread has been joined.
    let descriptor: CInt
    /// The address the socket is bound to (the kernel's pick when port 0 was asked for).
    package let localAddress: SocketAddress
    /// Receive buffer the kernel granted, in usable bytes.
    let receiveBufferBytes: Int
    /// The socket's inode, to find its line in /proc/net/udp.
    let inode: UInt64

    private init(descriptor: CInt, localAddress: SocketAddress, receiveBufferBytes: Int, inode: UInt64) {
        self.descriptor = descriptor
        self.localAddress = localAddress
        self.receiveBufferBytes = receiveBufferBytes
        self.inode = inode
    }

    /// Opens and binds a socket that shares `address` with the other receive sockets.
    ///
    /// - Parameters:
    ///   - receiveBufferBytes: `SO_RCVBUF` to ask for, beyond `net.core.rmem_max` where the process may.
    ///   - wakeInterval: how long a blocked read may wait before it returns empty;
    ///     nil: until data arrives or ``shutdownReads()`` (no timer armed per wait, as in the C relay).
    /// A port no socket uses on `address`'s host, for listening on port 0.
    ///
    /// Asking the kernel for port 0 with `SO_REUSEPORT` set may give a port
    /// another `SO_REUSEPORT` socket of the same user already has (another
    /// Ferry), and the two would then share its datagrams. A plain socket gets
    /// a port nobody holds; the receive sockets then bind that port.
    package static func freePort(near address: SocketAddress) throws -> Int {
        let descriptor = cferry_udp_socket(CInt(address.protocol.rawValue))
        guard descriptor >= 0 else { throw ReceiveSocketError.systemCall("socket", errno) }
        defer { Glibc.close(descriptor) }
        let bound = address.withSockAddr { Glibc.bind(descriptor, $0, socklen_t($1)) }
        guard bound == 0 else { throw ReceiveSocketError.systemCall("bind", errno) }
        guard let port = try boundAddress(descriptor).port else { throw ReceiveSocketError.systemCall("getsockname", EINVAL) }
        return port
    }

    package static func bind(to address: SocketAddress, receiveBufferBytes: Int, wakeInterval: TimeAmount?) throws -> ReceiveSocket {
        let descriptor = cferry_udp_socket(CInt(address.protocol.rawValue))
        guard descriptor >= 0 else { throw ReceiveSocketError.systemCall("socket", errno) }
        do {
            try setOption(descriptor, SO_REUSEADDR, 1, "SO_REUSEADDR")
            try setOption(descriptor, SO_REUSEPORT, 1, "SO_REUSEPORT")
            let bound = address.withSockAddr { Glibc.bind(descriptor, $0, socklen_t($1)) }
            guard bound == 0 else { throw ReceiveSocketError.systemCall("bind", errno) }
            let granted = try grantReceiveBuffer(descriptor, wanted: receiveBufferBytes)
            if let wakeInterval {
                var timeout = timeval(
                    tv_sec: Int(wakeInterval.nanoseconds / 1_000_000_000), tv_usec: Int(wakeInterval.nanoseconds % 1_000_000_000 / 1_000))
                guard setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size)) == 0 else {
                    throw ReceiveSocketError.systemCall("setsockopt SO_RCVTIMEO", errno)
                }
            }
            var status = stat()
            guard fstat(descriptor, &status) == 0 else { throw ReceiveSocketError.systemCall("fstat", errno) }
            return ReceiveSocket(
                descriptor: descriptor, localAddress: try boundAddress(descriptor), receiveBufferBytes: granted,
                inode: UInt64(status.st_ino))
        } catch {
            Glibc.close(descriptor)
            throw error
        }
    }

    /// Wakes a receiver blocked in a read (it then sees that it should stop).
    func shutdownReads() {
        _ = Glibc.shutdown(descriptor, CInt(SHUT_RD))
    }

    package func close() {
        Glibc.close(descriptor)
    }

    private static func setOption(_ descriptor: CInt, _ option: CInt, _ value: CInt, _ name: String) throws {
        var value = value
        guard setsockopt(descriptor, SOL_SOCKET, option, &value, socklen_t(MemoryLayout<CInt>.size)) == 0 else {
            throw ReceiveSocketError.systemCall("setsockopt \(name)", errno)
        }
    }

    /// Asks for `wanted` bytes (`SO_RCVBUFFORCE` first, which passes `net.core.rmem_max`
    /// with CAP_NET_ADMIN) and returns what the kernel granted.
    static func grantReceiveBuffer(_ descriptor: CInt, wanted: Int) throws -> Int {
        var size = CInt(clamping: wanted)
        if setsockopt(descriptor, SOL_SOCKET, SO_RCVBUFFORCE, &size, socklen_t(MemoryLayout<CInt>.size)) != 0 {
            try setOption(descriptor, SO_RCVBUF, CInt(clamping: wanted), "SO_RCVBUF")
        }
        var reported: CInt = 0
        var length = socklen_t(MemoryLayout<CInt>.size)
        guard getsockopt(descriptor, SOL_SOCKET, SO_RCVBUF, &reported, &length) == 0 else {
            throw ReceiveSocketError.systemCall("getsockopt SO_RCVBUF", errno)
        }
        // Linux reports twice the usable size (it counts its own bookkeeping).
        return Int(reported) / 2
    }

    private static func boundAddress(_ descriptor: CInt) throws -> SocketAddress {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        guard result == 0, let address = SocketAddress(storage: storage) else {
            throw ReceiveSocketError.systemCall("getsockname", errno)
        }
        return address
    }
}

extension sockaddr_storage {
    /// How many of its bytes the address takes: an IPv6 `sockaddr_in6`, else an IPv4 `sockaddr_in`
    /// (what `sendmsg` wants as the name's length, and what to compare of two addresses).
    var addressLength: Int {
        CInt(ss_family) == AF_INET6 ? MemoryLayout<sockaddr_in6>.size : MemoryLayout<sockaddr_in>.size
    }
}

extension SocketAddress {
    /// The address in a `sockaddr_storage` filled by the kernel (IPv4 or IPv6; nil for other families).
    init?(storage: sockaddr_storage) {
        var storage = storage
        switch CInt(storage.ss_family) {
        case AF_INET:
            self = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { SocketAddress($0.pointee) } }
        case AF_INET6:
            self = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { SocketAddress($0.pointee) } }
        default:
            return nil
        }
    }
}

/// A system call on a receive socket failed.
enum ReceiveSocketError: Error, CustomStringConvertible {
    case systemCall(String, CInt)

    var description: String {
        switch self {
        case .systemCall(let call, let code): return "\(call) failed: \(String(cString: strerror(code))) (errno \(code))"
        }
    }
}
