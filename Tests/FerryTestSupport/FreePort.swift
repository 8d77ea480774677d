import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A loopback port that was free a moment ago (`SOCK_DGRAM` or `SOCK_STREAM`),
/// for a process that must come back on the same port after a restart.
public func freePort(_ type: Int32) -> Int {
    let fd = socket(AF_INET, type, 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
            _ = bind(fd, pointer, length)
            return getsockname(fd, pointer, &length)
        }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}
