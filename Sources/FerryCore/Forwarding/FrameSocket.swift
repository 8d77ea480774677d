import CFerrySystem
import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#endif

/// The socket a `ferry://` lane sends frames through and hears acks on:
/// opened and connected by Ferry, read by NIO (one `recvmmsg` per burst of
/// acks, into the lane's handler), and written by the lane itself with
/// `sendmmsg`: all of a burst's frames in one system call, without NIO's
/// pending-writes bookkeeping and its promise per write, which a two-hop
/// profile showed at about a tenth of the edge's CPU.
///
/// Confined to the lane's event loop, as the channel is: it writes only while
/// the channel is active, so never to a descriptor NIO has closed (and the
/// kernel may have given to another file).
final class FrameSocket {
    let channel: any Channel
    private let descriptor: CInt
    private let family: CInt
    private let headers: MessageHeaders
    /// The largest datagram the path takes whole: the connected route's MTU
    /// (`IP_MTU`/`IPV6_MTU`, which path MTU discovery lowers) less the IP and
    /// UDP headers: 1,472 bytes over Ethernet, 65,507 on loopback; nil if the
    /// kernel does not say. Frames are cut to it, so none is fragmented.
    private(set) var pathDatagramBytes: Int?

    /// Most frames one `sendmmsg` takes; more go in further calls.
    static let batch = 64

    private init(channel: any Channel, descriptor: CInt, family: CInt) {
        self.channel = channel
        self.descriptor = descriptor
        self.family = family
        self.headers = MessageHeaders(capacity: Self.batch, addresses: false)
        refreshPathMTU()
    }

    /// Reads the path MTU again (after `EMSGSIZE`: the kernel learnt a smaller one).
    func refreshPathMTU() {
        guard channel.isActive else { return }
        let mtu = Int(cferry_path_mtu(descriptor, family))
        let headerBytes = family == AF_INET6 ? 48 : 28
        pathDatagramBytes = mtu > headerBytes ? min(mtu - headerBytes, 65_507) : nil
    }

    /// Opens a datagram socket connected to `address` (only a connected socket
    /// hears ICMP port unreachable, and acks arrive on it) and hands it to NIO
    /// on `eventLoop`, with the handler `makeHandler` builds.
    static func open(
        to address: SocketAddress, on eventLoop: any EventLoop, receiveBufferBytes: Int, replies: (perRead: Int, maximumBytes: Int),
        makeHandler: NIOLoopBound<() -> any ChannelHandler>
    ) -> EventLoopFuture<FrameSocket> {
        let family: CInt
        switch address {
        case .v4: family = AF_INET
        case .v6: family = AF_INET6
        default: return eventLoop.makeFailedFuture(IOError(errnoCode: EAFNOSUPPORT, reason: "socket"))
        }
        let descriptor = cferry_udp_socket(family)  // close-on-exec
        guard descriptor >= 0 else { return eventLoop.makeFailedFuture(IOError(errnoCode: errno, reason: "socket")) }
        _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
        var sendBuffer: CInt = 4 << 20
        var receiveBuffer = CInt(receiveBufferBytes)
        _ = setsockopt(descriptor, SOL_SOCKET, SO_SNDBUF, &sendBuffer, socklen_t(MemoryLayout<CInt>.size))
        _ = setsockopt(descriptor, SOL_SOCKET, SO_RCVBUF, &receiveBuffer, socklen_t(MemoryLayout<CInt>.size))
        let connected = address.withSockAddr { pointer, length in Glibc.connect(descriptor, pointer, socklen_t(length)) }
        guard connected == 0 else {
            let code = errno
            Glibc.close(descriptor)
            return eventLoop.makeFailedFuture(IOError(errnoCode: code, reason: "connect"))
        }
        return DatagramBootstrap(group: eventLoop)
            // One recvmmsg for a burst of acks instead of one read each.
            .channelOption(.datagramVectorReadMessageCount, value: replies.perRead)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: replies.perRead * replies.maximumBytes))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(makeHandler.value())
                }
            }
            .withBoundSocket(descriptor)
            .map { channel in FrameSocket(channel: channel, descriptor: descriptor, family: family) }
    }

    /// Sends `frames` in order and returns how many went out, and the errno
    /// that stopped the rest (a refusal, a full send buffer).
    func send(_ frames: [ByteBuffer]) -> (sent: Int, error: CInt?) {
        guard channel.isActive else { return (0, EBADF) }
        var sent = 0
        var failure: CInt?
        withExtendedLifetime(frames) {
            while sent < frames.count, failure == nil {
                let count = min(Self.batch, frames.count - sent)
                for index in 0..<count {
                    frames[sent + index].withUnsafeReadableBytes { bytes in
                        headers.vectors[index] = iovec(iov_base: UnsafeMutableRawPointer(mutating: bytes.baseAddress), iov_len: bytes.count)
                    }
                    headers.prepare(index, vectorsFrom: index, count: 1)
                }
                var done = 0
                while done < count {
                    let result = cferry_sendmmsg(descriptor, headers.messages + done, UInt32(count - done), 0)
                    if result > 0 {
                        done += Int(result)
                        continue
                    }
                    if errno == EINTR { continue }
                    failure = errno
                    break
                }
                sent += done
            }
        }
        return (sent, failure)
    }
}
