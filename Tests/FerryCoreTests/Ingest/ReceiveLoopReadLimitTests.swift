import Logging
import NIOCore
import Testing

@testable import FerryCore

#if canImport(Glibc)
    import Glibc
#endif

/// How many datagrams a receive thread asks `recvmmsg` for: the whole
/// `receive.batch` for syslog datagrams, about 512 KiB of slots while `ferry://`
/// frames arrive, since a frame fills its 65,507-byte slot and 64 of them
/// would make 32 MiB of the slabs resident per socket. A real socket on
/// loopback, read by the loop without its thread.
@Suite struct ReceiveLoopReadLimitTests {
    final class Bursts {
        var frames: [Int] = []
    }

    @Test func readsOfFramesTakeAbout512KiBOfSlotsAndSyslogReadsTheWholeBatch() throws {
        let socket = try ReceiveSocket.bind(
            to: try SocketAddress(ipAddress: "127.0.0.1", port: 0), receiveBufferBytes: 4 << 20, wakeInterval: .milliseconds(100))
        defer { socket.close() }
        let bursts = Bursts()
        let loop = ReceiveLoop(
            socket: socket, batch: 64, maxDatagramBytes: 65_507, slabs: 2,
            forwarding: .init(loopIndex: 0, upstreams: [], route: DirectRoute(), counters: PipelineCounters(), sampleRate: 0),
            logger: Logger(label: "test")
        ) { burst in bursts.frames.append(burst.frames.count) }
        defer { loop.close() }
        #expect(loop.frameReadLimit == 8)

        let sender = Glibc.socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { Glibc.close(sender) }
        _ = socket.localAddress.withSockAddr { Glibc.connect(sender, $0, socklen_t($1)) }
        func send(_ count: Int, frames: Bool) {
            // Frame magic first (what the receiver sorts by); the rest does not matter here.
            let datagram: [UInt8] = frames ? [0xFE, 0x46, 0x52, 0x59] + [UInt8](repeating: 0, count: 196) : Array("<14>syslog line".utf8)
            for _ in 0..<count { _ = datagram.withUnsafeBytes { Glibc.send(sender, $0.baseAddress, $0.count, 0) } }
        }

        send(100, frames: true)
        #expect(loop.step(wait: false))
        #expect(loop.lastReceived == 8, "the first read cannot know what comes: the frames' limit")
        #expect(loop.step(wait: false))
        #expect(loop.lastReceived == 8, "after a read of frames: about 512 KiB of slots")
        #expect(bursts.frames == [8, 8])
        while loop.step(wait: false) {}  // the frames left

        send(100, frames: false)
        #expect(loop.step(wait: false))
        #expect(loop.lastReceived == 8, "still the frames' limit, set by the last read")
        #expect(loop.step(wait: false))
        #expect(loop.lastReceived == 64, "after a read of syslog datagrams: the whole batch again")
    }
}
