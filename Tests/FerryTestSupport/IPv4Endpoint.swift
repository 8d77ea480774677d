#if canImport(Glibc)
    import Glibc
#endif

/// An IPv4 address and port, convertible to and from `sockaddr_in`, for the
/// test bed's plain-socket relays.
public struct IPv4Endpoint: Sendable, Hashable, CustomStringConvertible {
    public let host: String
    public let port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    init(_ address: sockaddr_in) {
        var raw = address.sin_addr
        var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
        inet_ntop(AF_INET, &raw, &text, socklen_t(text.count))
        host = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    var socketAddress: sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr(host)
        address.sin_port = UInt16(port).bigEndian
        return address
    }

    public var description: String { "\(host):\(port)" }
}

/// Socket calls the relays share.
enum PlainSocket {
    /// A non-blocking socket of `type` bound to `endpoint` (port 0: any), with large buffers.
    static func bound(_ type: Int32, to endpoint: IPv4Endpoint, buffer: Int = 8 << 20) throws -> (CInt, IPv4Endpoint) {
        let fd = socket(AF_INET, type, 0)
        guard fd >= 0 else { throw TestSocketError.system("socket", errno) }
        var one: CInt = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<CInt>.size))
        var size = CInt(buffer)
        // FORCE works as root (the network tests run as root); otherwise the plain option, capped by the sysctl.
        if setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, socklen_t(MemoryLayout<CInt>.size)) != 0 {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<CInt>.size))
        }
        if setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, socklen_t(MemoryLayout<CInt>.size)) != 0 {
            setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<CInt>.size))
        }
        var address = endpoint.socketAddress
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else {
            let code = errno
            close(fd)
            throw TestSocketError.system("bind \(endpoint)", code)
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        setNonBlocking(fd)
        return (fd, IPv4Endpoint(address))
    }

    /// `connect(2)` to `endpoint`; returns 0 or errno (EINPROGRESS for a non-blocking TCP socket).
    static func connect(_ fd: CInt, to endpoint: IPv4Endpoint) -> CInt {
        var address = endpoint.socketAddress
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        return result == 0 ? 0 : errno
    }

    static func setNonBlocking(_ fd: CInt) {
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
    }

    /// A pipe whose read end a poll loop watches, so another thread can wake it.
    static func wakePipe() -> (read: CInt, write: CInt) {
        var ends: [CInt] = [0, 0]
        precondition(pipe(&ends) == 0, "pipe failed: \(errno)")
        setNonBlocking(ends[0])
        setNonBlocking(ends[1])
        return (ends[0], ends[1])
    }

    /// The monotonic clock in nanoseconds.
    static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }
}

extension Duration {
    /// Whole nanoseconds (negative durations count as zero).
    var nanoseconds: UInt64 {
        let (seconds, attoseconds) = components
        return seconds < 0 ? 0 : UInt64(seconds) * 1_000_000_000 + UInt64(attoseconds / 1_000_000_000)
    }
}
