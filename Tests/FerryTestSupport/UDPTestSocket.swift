import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A plain blocking UDP socket on 127.0.0.1 for tests: a real socket, no NIO,
/// so the tests check Ferry against the same system calls any other program uses.
public final class UDPTestSocket: Sendable {
    public let fd: CInt
    public let port: Int

    /// Two sockets bound to the same port on two loopback addresses.
    public static func pair(first: String, second: String) throws -> (UDPTestSocket, UDPTestSocket) {
        for _ in 0..<20 {
            let one = try UDPTestSocket(host: first)
            if let two = try? UDPTestSocket(host: second, port: one.port) { return (one, two) }
        }
        throw TestSocketError.system("bind pair", EADDRINUSE)
    }

    /// - Parameter reusePort: set `SO_REUSEPORT` first, to join another socket's port (as a second relay would).
    public init(receiveBuffer: Int = 16 << 20, host: String = "127.0.0.1", port: Int = 0, reusePort: Bool = false) throws {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw TestSocketError.system("socket", errno) }
        if reusePort {
            var one: CInt = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, socklen_t(MemoryLayout<CInt>.size))
        }
        var size = CInt(receiveBuffer)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, socklen_t(MemoryLayout<CInt>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr(host)
        address.sin_port = UInt16(port).bigEndian
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else {
            close(fd)
            throw TestSocketError.system("bind", errno)
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        self.fd = fd
        self.port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit {
        close(fd)
    }

    /// Sends one datagram to `host`:`port` (loopback unless told).
    public func send(_ bytes: [UInt8], to port: Int, host: String = "127.0.0.1") {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr(host)
        address.sin_port = UInt16(port).bigEndian
        _ = bytes.withUnsafeBytes { buffer in
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, buffer.baseAddress, buffer.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
    }

    /// Receives one datagram, or `nil` when none arrives within `timeoutMilliseconds`.
    public func receive(timeoutMilliseconds: Int32 = 2000) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        return receive(timeoutMilliseconds: timeoutMilliseconds, into: &buffer)
    }

    /// One datagram read into `buffer` (reused, so that a test reading
    /// hundreds of thousands does not clear 64 KiB for each and starve the
    /// tests running beside it).
    ///
    /// A signal (SIGCHLD when any child process of the test run exits) interrupts
    /// `poll` with EINTR whatever the handler's flags; that is retried with the
    /// time left, not taken for "nothing arrived".
    private func receive(timeoutMilliseconds: Int32, into buffer: inout [UInt8]) -> [UInt8]? {
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(max(timeoutMilliseconds, 0)) * 1_000_000
        while true {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let now = DispatchTime.now().uptimeNanoseconds
            let left = now < deadline ? Int32((deadline - now) / 1_000_000) : 0
            let ready = poll(&poller, 1, left)
            if ready == 1 { break }
            if ready < 0, errno == EINTR, left > 0 { continue }
            return nil
        }
        var count = -1
        repeat {
            count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        } while count < 0 && errno == EINTR
        guard count >= 0 else { return nil }
        return Array(buffer.prefix(count))
    }

    /// Receives until `count` datagrams arrived or nothing arrives for `idleMilliseconds`
    /// (for the first datagram: `firstMilliseconds`, if given).
    public func receive(count: Int, idleMilliseconds: Int32 = 2000, firstMilliseconds: Int32? = nil) -> [[UInt8]] {
        var received: [[UInt8]] = []
        received.reserveCapacity(min(count, 1 << 20))
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while received.count < count,
            let datagram = receive(timeoutMilliseconds: received.isEmpty ? firstMilliseconds ?? idleMilliseconds : idleMilliseconds, into: &buffer)
        {
            received.append(datagram)
        }
        return received
    }
}

extension UDPTestSocket {
    /// Starts receiving at once on a thread of its own (so a blocking wait never
    /// holds one of Swift concurrency's few threads, and nothing piles up in the
    /// socket before the receiver runs); `value` waits for the result.
    public func startReceiving(count: Int, idleMilliseconds: Int32 = 2000, firstMilliseconds: Int32? = nil) -> BackgroundReceive {
        let result = BackgroundReceive()
        let thread = Thread {
            result.finish(self.receive(count: count, idleMilliseconds: idleMilliseconds, firstMilliseconds: firstMilliseconds))
        }
        thread.start()
        return result
    }

    /// Receives like ``receive(count:idleMilliseconds:)`` on a thread of its own.
    public func collect(count: Int, idleMilliseconds: Int32 = 2000) async -> [[UInt8]] {
        await startReceiving(count: count, idleMilliseconds: idleMilliseconds).value
    }
}

/// The datagrams a background receiver got, once it is done.
public final class BackgroundReceive: Sendable {
    private let done = DispatchSemaphore(value: 0)
    private let datagrams = Mutex<[[UInt8]]>([])

    func finish(_ received: [[UInt8]]) {
        datagrams.withLock { $0 = received }
        done.signal()
    }

    public var value: [[UInt8]] {
        get async {
            await withCheckedContinuation { continuation in
                let thread = Thread {
                    self.done.wait()
                    self.done.signal()
                    continuation.resume(returning: self.datagrams.withLock { $0 })
                }
                thread.start()
            }
        }
    }
}

enum TestSocketError: Error {
    case system(String, CInt)
}
