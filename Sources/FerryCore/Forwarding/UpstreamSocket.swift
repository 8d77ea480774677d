import NIOCore
import NIOPosix

/// Opens the connected datagram socket a lane sends through.
///
/// Connected on purpose: only a connected UDP socket hears the ICMP errors
/// (port unreachable) that tell Ferry an upstream is gone, and acks from a
/// `ferry://` receiver arrive on it.
enum UpstreamSocket {
    /// Connects to `address` on `eventLoop`, with the handler `makeHandler`
    /// builds (on the loop) in the channel's pipeline.
    ///
    /// - Parameter replies: when the upstream talks back (`ferry://` acks): how
    ///   many replies one read takes and how large one may be.
    static func connect(
        to address: SocketAddress, on eventLoop: any EventLoop, receiveBufferBytes: Int? = nil,
        replies: (perRead: Int, maximumBytes: Int)? = nil,
        makeHandler: NIOLoopBound<() -> any ChannelHandler>
    ) -> EventLoopFuture<any Channel> {
        var bootstrap = DatagramBootstrap(group: eventLoop).channelOption(.socketOption(.so_sndbuf), value: 4 << 20)
        if let receiveBufferBytes {
            bootstrap = bootstrap.channelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(receiveBufferBytes))
        }
        if let replies {
            // One recvmmsg for a burst of replies instead of one read each.
            bootstrap =
                bootstrap
                .channelOption(.datagramVectorReadMessageCount, value: replies.perRead)
                .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: replies.perRead * replies.maximumBytes))
        }
        return
            bootstrap
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(makeHandler.value())
                }
            }
            .connect(to: address)
    }
}

/// The wait before reconnecting a closed upstream socket: a ceiling of
/// 100 ms doubling to 5 s, the wait drawn between half the ceiling and all of
/// it (jitter, so that lanes and Ferrys that lost one peer together do not
/// reconnect in step).
struct ReconnectBackoff {
    private var delay = TimeAmount.milliseconds(100)

    /// The wait for this attempt; the next one's ceiling is twice as high.
    mutating func next() -> TimeAmount {
        defer { delay = min(delay * 2, .seconds(5)) }
        return .nanoseconds(Int64.random(in: (delay.nanoseconds / 2)...delay.nanoseconds))
    }

    mutating func reset() {
        delay = .milliseconds(100)
    }
}
