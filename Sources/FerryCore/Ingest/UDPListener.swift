import Logging
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// Binds the receive sockets: one `SO_REUSEPORT` datagram channel per event
/// loop on the same address, so the kernel spreads senders across cores.
struct UDPListener {
    /// One bound receive socket.
    struct Socket: Sendable {
        let channel: any Channel
        let loopIndex: Int
        let receiveBufferBytes: Int
        /// The socket's inode, to find its line in /proc/net/udp (nil if it could not be told apart).
        let inode: UInt64?
    }

    let configuration: FerryConfiguration
    let logger: Logger

    func bind(handles: [Relay.PipelineHandle]) async throws -> [Socket] {
        var sockets: [Socket] = []
        var port = configuration.listen.port
        do {
            for handle in handles {
                let before = KernelUDPStats.ownSocketInodes()
                let channel = try await bindOne(handle: handle, port: port)
                if port == 0, let bound = channel.localAddress?.port {
                    port = bound  // the others join the port the kernel picked
                }
                let granted = try await grantReceiveBuffer(channel)
                // The one new socket of this process on the listen port is this channel's.
                let new = KernelUDPStats.ownSocketInodes().subtracting(before)
                let table = KernelUDPStats.sockets()
                let candidates = new.filter { table[$0]?.localPort == port }
                sockets.append(
                    Socket(
                        channel: channel, loopIndex: handle.index, receiveBufferBytes: granted,
                        inode: candidates.count == 1 ? candidates.first : nil))
            }
        } catch {
            for socket in sockets { try? await socket.channel.close() }
            throw IngestError.cannotBind(address: HostAndPort(host: configuration.listen.host, port: port).description, reason: String(describing: error))
        }
        return sockets
    }

    private func bindOne(handle: Relay.PipelineHandle, port: Int) async throws -> any Channel {
        let slot = configuration.maxDatagramBytes + 1  // a datagram filling its slot was cut: count it as oversize
        let batch = configuration.receiveBatch
        let bound = handle.pipeline
        return try await DatagramBootstrap(group: handle.eventLoop)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(.socketOption(.init(rawValue: SO_REUSEPORT)), value: 1)
            .channelOption(.datagramVectorReadMessageCount, value: batch)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: batch * slot))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(UDPIngestHandler(pipeline: bound.value))
                }
            }
            .bind(host: configuration.listen.host, port: port)
            .get()
    }

    /// Asks for `receive.buffer-bytes`, beyond `net.core.rmem_max` where the
    /// process may (`SO_RCVBUFFORCE`), and returns what the kernel granted.
    private func grantReceiveBuffer(_ channel: any Channel) async throws -> Int {
        let wanted = configuration.receiveBufferBytes
        do {
            try await channel.setOption(.socketOption(.init(rawValue: SO_RCVBUFFORCE)), value: SocketOptionValue(wanted)).get()
        } catch {
            try await channel.setOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(wanted)).get()
        }
        // Linux reports twice the usable size (it counts its own bookkeeping).
        let reported = Int(try await channel.getOption(.socketOption(.so_rcvbuf)).get())
        return reported / 2
    }
}

/// Why the receive sockets could not be set up.
public enum IngestError: Error, CustomStringConvertible {
    case cannotBind(address: String, reason: String)

    public var description: String {
        switch self {
        case .cannotBind(let address, let reason):
            return "cannot bind UDP listener on \(address): \(reason)"
        }
    }
}
