import FerryCore
import Logging
import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// A bound loopback UDP socket standing in for a `udp://` upstream, drained
/// with a preallocated buffer so that it adds no mallocs to a benchmark.
final class LoopbackSink {
    let address: SocketAddress
    /// A `udp://` upstream pointing here, with its latency histogram, as `Relay` builds it.
    let upstream: Upstream
    private let descriptor: CInt
    private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65_536, alignment: 8)

    init(logger: Logger) throws {
        descriptor = Glibc.socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        var size: CInt = 8 << 20
        _ = setsockopt(descriptor, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<CInt>.size))
        let descriptor = self.descriptor
        _ = try SocketAddress(ipAddress: "127.0.0.1", port: 0).withSockAddr { Glibc.bind(descriptor, $0, socklen_t($1)) }
        var storage = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        address = SocketAddress(storage)
        let url = UpstreamURL.udp(HostAndPort(host: "127.0.0.1", port: address.port!))
        upstream = Upstream(url: url, index: 0, lanes: 1, latency: CountingLatency(), logger: logger)
        upstream.setInitialAddresses([address])
    }

    /// Reads everything that arrived.
    @inline(__always)
    func drain() {
        while Glibc.recv(descriptor, buffer.baseAddress, buffer.count, CInt(MSG_DONTWAIT)) > 0 {}
    }

    func close() {
        Glibc.close(descriptor)
        buffer.deallocate()
    }
}

/// The benchmarks' logger: discards everything.
let benchmarkLogger = Logger(label: "ferry-benchmark", factory: { _ in SwiftLogNoOpLogHandler() })

/// Stands in for the metrics backend's histogram: the cost of an atomic add per observation.
final class CountingLatency: LatencyRecorder {
    private let total = AtomicCounter()

    func recordNanoseconds(_ duration: Int64) {
        total.add(Int(duration))
    }
}
