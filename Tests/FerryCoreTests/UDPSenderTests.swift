import Logging
import NIOCore
import Testing

@testable import FerryCore

#if canImport(Glibc)
    import Glibc
#endif

/// The `udp://` sender against a real loopback socket: however it groups
/// datagrams for the kernel (one segmented message per run of equal lengths,
/// or one message each), the receiver gets exactly the datagrams sent, in order.
struct UDPSenderTests {
    /// A bound loopback socket that reads datagrams one by one.
    final class Receiver {
        let descriptor: CInt
        let address: SocketAddress

        init(host: String = "127.0.0.1") throws {
            let bindAddress = try SocketAddress(ipAddress: host, port: 0)
            descriptor = socket(bindAddress.protocol.rawValue, Int32(SOCK_DGRAM.rawValue), 0)
            var size: CInt = 4 << 20
            if setsockopt(descriptor, SOL_SOCKET, SO_RCVBUFFORCE, &size, socklen_t(MemoryLayout<CInt>.size)) != 0 {
                _ = setsockopt(descriptor, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<CInt>.size))
            }
            var timeout = timeval(tv_sec: 2, tv_usec: 0)
            _ = setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            let descriptor = self.descriptor
            let bound = bindAddress.withSockAddr { bind(descriptor, $0, socklen_t($1)) }
            guard bound == 0 else {
                close(descriptor)
                throw IOError(errnoCode: errno, reason: "bind \(host)")
            }
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            _ = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
            }
            address = try #require(SocketAddress(storage: storage))
        }

        /// Up to `count` datagrams, stopping early when none comes for two seconds.
        func read(_ count: Int) -> [[UInt8]] {
            var datagrams: [[UInt8]] = []
            var buffer = [UInt8](repeating: 0, count: 65_536)
            while datagrams.count < count {
                let length = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
                guard length >= 0 else { break }
                datagrams.append(Array(buffer[0..<length]))
            }
            return datagrams
        }

        deinit { close(descriptor) }
    }

    /// Whether this machine has an IPv6 loopback to test on (some containers do not).
    static let hasIPv6Loopback = (try? Receiver(host: "::1")) != nil

    private func makeSender(to receiver: Receiver, segmentation: Bool) -> UDPSender {
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        let url = UpstreamURL.udp(HostAndPort(host: receiver.address.ipAddress!, port: receiver.address.port!))
        let upstream = Upstream(url: url, index: 0, lanes: 1, udpSegmentation: segmentation, logger: logger)
        upstream.setInitialAddresses([receiver.address])
        return UDPSender(upstream: upstream, batch: 64, logger: logger)
    }

    /// Datagrams whose bytes say which one they are, so a loss, a merge, a
    /// split at the wrong place or a reordering all show.
    private func datagrams(_ lengths: [Int], first: Int) -> [[UInt8]] {
        lengths.enumerated().map { offset, length in
            TestRelay.binaryPayload(size: length, seed: first + offset)
        }
    }

    @Test(arguments: [true, false])
    func deliversExactlyTheDatagramsSentInOrder(segmentation: Bool) throws {
        try checkDelivery(to: Receiver(), segmentation: segmentation)
    }

    /// IPv6 reads its path MTU with another option and has other header sizes.
    @Test(.enabled(if: hasIPv6Loopback, "no IPv6 loopback here"), arguments: [true, false])
    func deliversExactlyTheDatagramsSentInOrderOverIPv6(segmentation: Bool) throws {
        try checkDelivery(to: Receiver(host: "::1"), segmentation: segmentation)
    }

    private func checkDelivery(to receiver: Receiver, segmentation: Bool) throws {
        let sender = makeSender(to: receiver, segmentation: segmentation)
        defer { sender.close() }
        let groups: [[Int]] = [
            Array(repeating: 200, count: 64),  // one run: one segmented message
            [300, 300, 300, 120, 120, 0, 7, 7, 7, 1_400, 1_400, 1_400, 50, 64, 64, 1, 1],  // runs, shorter ends, empty
            Array(repeating: 8_000, count: 9),  // a run longer than one message may carry (65,507 bytes)
            Array(repeating: 100, count: 100) + [99],  // more than one chunk of 64 headers
            (0..<40).map { 10 + $0 % 3 },  // no two neighbours equal
        ]
        var seed = 0
        for lengths in groups {
            let payloads = datagrams(lengths, first: seed)
            seed += lengths.count
            let allocator = ByteBufferAllocator()
            let records = payloads.map { allocator.buffer(bytes: $0) }
            let bytes = lengths.reduce(0, +)
            let sent = sender.send(records, bytes: bytes, receivedAt: .now())
            #expect(sent.logs == records.count && sent.bytes == bytes, "lengths \(lengths)")
            let received = receiver.read(payloads.count)
            let firstDifference = payloads.indices.first { $0 >= received.count || received[$0] != payloads[$0] }
            #expect(
                received.count == payloads.count && firstDifference == nil,
                "sent lengths \(lengths); received \(received.map(\.count)); first difference at \(firstDifference.map(String.init) ?? "-")")
            _ = allocator
        }
        // Loopback takes UDP_SEGMENT on any kernel this runs on (4.18+), and the setting is obeyed.
        #expect(sender.segmenting == segmentation)
    }

    @Test func segmentationCanBeSwitchedOffInConfiguration() async throws {
        #expect(FerryConfiguration().udpSegmentation == true)
        let flag = try await ConfigurationLoader(flags: ["forward.udp-segmentation": "off"], upstreamFlags: [], environment: [:], filePath: nil)
            .load()
        #expect(flag.udpSegmentation == false)
        let environment = try await ConfigurationLoader(
            flags: [:], upstreamFlags: [], environment: ["FERRY_FORWARD_UDP_SEGMENTATION": "false"], filePath: nil
        ).load()
        #expect(environment.udpSegmentation == false)
        await #expect(throws: ConfigurationError.self) {
            try await ConfigurationLoader(flags: ["forward.udp-segmentation": "sometimes"], upstreamFlags: [], environment: [:], filePath: nil).load()
        }
    }
}

/// `last_error` and log lines name a failed system call plainly.
@Test func aSystemCallErrorIsDescribedWithoutNIOsStrayParenthesis() {
    let detail = SendErrorReason.detail(of: IOError(errnoCode: ECONNREFUSED, reason: "so_error"))
    #expect(detail == "so_error: Connection refused (errno 111)")
}
