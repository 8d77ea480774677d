import CFerrySystem
import Logging
import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// Binds the receive sockets: one `SO_REUSEPORT` socket per event loop on the
/// same address, so the kernel spreads senders across cores, each read by its
/// own ``DatagramReceiver`` and feeding that loop's pipeline.
struct UDPListener {
    /// One bound receive socket and the thread that reads it.
    struct Socket: Sendable {
        let socket: ReceiveSocket
        let receiver: DatagramReceiver
        let loopIndex: Int
    }

    let configuration: FerryConfiguration
    /// The address this listener binds (one `udp://` entry of `listen`).
    let address: HostAndPort
    /// Its allowlist and rate limit, shared by its sockets (nil: none).
    var gate: SourceGate? = nil
    let logger: Logger

    /// - Parameters:
    ///   - position: this listener's position for `match.listener` (see ``ListenerPositions``).
    ///   - keepsSources: whether each datagram's source goes with it (a route needs them).
    ///   - own: Ferry's own receive sockets (a reload may bind a port an old listener of its own holds).
    func bind(
        handles: [Relay.PipelineHandle], upstreams: [Upstream], position: Int = 0, keepsSources: AtomicFlag = AtomicFlag(false),
        own: Set<UInt64> = []
    ) throws -> UDPIntake {
        var sockets: [Socket] = []
        var port = address.port
        do {
            if port == 0 {
                port = try ReceiveSocket.freePort(near: SocketAddress.makeAddressResolvingHost(address.host, port: 0))
            }
            // Before binding: a socket already on the port would share its
            // traffic with ours (SO_REUSEPORT); not even briefly.
            let wanted = try SocketAddress.makeAddressResolvingHost(address.host, port: port)
            try Self.refuseShared(wanted, own: own)
            for handle in handles {
                let socketAddress = try SocketAddress.makeAddressResolvingHost(address.host, port: port)
                let socket = try ReceiveSocket.bind(
                    to: socketAddress, receiveBufferBytes: configuration.receiveBufferBytes, wakeInterval: nil)
                port = socket.localAddress.port ?? port  // the others join the port the kernel picked
                var forwarding = DatagramReceiver.Forwarding(
                    loopIndex: handle.index, upstreams: upstreams, route: handle.route, counters: handle.counters,
                    sampleRate: configuration.traceSampleRate, spool: handle.spoolShard, capacity: handle.capacity)
                forwarding.gate = gate
                forwarding.listener = "udp://\(address)"
                forwarding.listenerPosition = position
                forwarding.keepsSources = keepsSources
                let receiver = DatagramReceiver(
                    socket: socket, batch: configuration.receiveBatch, maxDatagramBytes: configuration.maxDatagramBytes,
                    coalesce: configuration.receiveCoalesce, forwarding: forwarding, logger: logger)
                sockets.append(Socket(socket: socket, receiver: receiver, loopIndex: handle.index))
            }
            // And after: one that bound in between (two Ferrys starting at once).
            if let first = sockets.first {
                try Self.refuseShared(first.socket.localAddress, own: own.union(sockets.map(\.socket.inode)))
                steerFramesBySender(first.socket, sockets: sockets.count)
            }
        } catch let error as IngestError {
            for socket in sockets { socket.socket.close() }
            throw error
        } catch {
            for socket in sockets { socket.socket.close() }
            throw IngestError.cannotBind(
                address: HostAndPort(host: address.host, port: port).description, reason: String(describing: error))
        }
        return UDPIntake(url: .udp(address), sockets: sockets)
    }

    /// Hands every `ferry://` frame of one sender to the same socket, so to the
    /// same loop and its dedupe window, whatever source port it comes from: a
    /// sender that moves to a new port (a silent upstream) or restarts and
    /// replays its frames is still recognised. Other datagrams are spread by
    /// the kernel's hash as before. Without it (an old kernel) frames are
    /// spread by source port, and a replay may reach a loop that delivers it again.
    private func steerFramesBySender(_ socket: ReceiveSocket, sockets: Int) {
        guard sockets > 1 else { return }
        if cferry_steer_frames_by_sender(socket.descriptor, FrameCodec.magic, UInt32(sockets)) != 0 {
            logger.warning(
                "ferry:// frames not steered by sender",
                metadata: [
                    "listener": "udp://\(address)", "error": "\(String(cString: strerror(errno)))",
                    "effect": "frames a sender sends again from another source port may reach another loop and be delivered twice",
                ])
        }
    }

    /// Fails if another socket already holds a configured UDP port; run first
    /// thing at start, before any file is opened or socket bound.
    static func refuseSharedPort(_ configuration: FerryConfiguration) throws {
        for case .udp(let listen) in configuration.listeners where listen.port != 0 {
            guard let address = try? SocketAddress.makeAddressResolvingHost(listen.host, port: listen.port) else { continue }
            try refuseShared(address, own: [])
        }
    }

    private static func refuseShared(_ address: SocketAddress, own: Set<UInt64>) throws {
        let foreign = PortSharing.foreignReceivers(of: address, own: own, table: PortSharing.kernelTable())
        guard foreign.isEmpty else {
            throw IngestError.portShared(address: address.hostAndPort, port: address.port ?? 0, inodes: foreign.map(\.inode))
        }
    }
}

/// Why the receive sockets could not be set up.
public enum IngestError: Error, CustomStringConvertible {
    case cannotBind(address: String, reason: String)
    /// Another socket is on the port (SO_REUSEPORT would let it share the traffic).
    case portShared(address: String, port: Int, inodes: [UInt64])
    /// A `tcp://` or `tls://` listener could not bind.
    case cannotBindStream(listener: String, reason: String)

    public var description: String {
        switch self {
        case .cannotBind(let address, let reason):
            return "cannot bind UDP listener on \(address): \(reason)"
        case .cannotBindStream(let listener, let reason):
            return "cannot bind listener \(listener): \(reason)"
        case .portShared(let address, let port, let inodes):
            return "cannot bind UDP listener on \(address): address already in use "
                + "(UDP port \(port) is held by \(inodes.count) other socket(s), inode \(inodes.map(String.init).joined(separator: ", ")); "
                + "with SO_REUSEPORT they would share its datagrams: stop the other process or choose another port)"
        }
    }
}

/// The bound UDP receive sockets of one `listen` address, each read by its
/// receive thread and feeding its loop's pipeline.
final class UDPIntake: IntakeListener {
    let url: ListenerURL
    /// The listener as configured (`udp://HOST:PORT`): its `listener` label.
    var name: String { url.description }
    let sockets: [UDPListener.Socket]

    init(url: ListenerURL, sockets: [UDPListener.Socket]) {
        self.url = url
        self.sockets = sockets
    }

    var socketCount: Int { sockets.count }

    var boundDescription: String { sockets.first.map { "udp://\($0.socket.localAddress.hostAndPort)" } ?? name }

    func start(handles: [Relay.PipelineHandle]) async throws {
        do {
            for socket in sockets {
                let handle = handles[socket.loopIndex]
                let replySocket = socket.socket
                let deliver = try await handle.eventLoop.submit {
                    let pipeline = handle.pipeline.value
                    pipeline.replySockets.insert(ObjectIdentifier(replySocket))
                    return NIOLoopBound<([ReceivedBurst]) -> Void>({ pipeline.receive($0) }, eventLoop: handle.eventLoop)
                }.get()
                try socket.receiver.start(name: "ferry-rx-\(socket.loopIndex)", eventLoop: handle.eventLoop, deliver: deliver)
            }
        } catch {
            for socket in sockets {
                socket.receiver.stop()
                socket.socket.close()
            }
            throw error
        }
    }

    func stopIntake(handles: [Relay.PipelineHandle]) async {
        for socket in sockets {
            socket.receiver.stop()
        }
        // Bursts read before the stop are delivered on their loops first (tasks
        // run in order); after this no loop sends from a receive socket again.
        for socket in sockets {
            let handle = handles[socket.loopIndex]
            let key = ObjectIdentifier(socket.socket)
            try? await handle.eventLoop.submit { _ = handle.pipeline.value.replySockets.remove(key) }.get()
            socket.socket.close()
        }
    }

    func snapshots(kernel table: [KernelUDPStats.SocketLine], own: Set<UInt64>, directRoute: (Int) -> String?) -> [ListenerSnapshot] {
        let kernel = Dictionary(table.map { ($0.inode, $0) }, uniquingKeysWith: { first, _ in first })
        let own = own.union(sockets.map(\.socket.inode))
        return sockets.map { socket in
            let line = kernel[socket.socket.inode]
            let foreign = PortSharing.foreignReceivers(of: socket.socket.localAddress, own: own, table: table)
            return ListenerSnapshot(
                listener: name,
                address: socket.socket.localAddress.hostAndPort,
                port: socket.socket.localAddress.port ?? 0,
                loop: socket.loopIndex,
                receiveBufferBytes: socket.socket.receiveBufferBytes,
                directRoute: directRoute(socket.loopIndex),
                kernelReceiveDrops: line?.drops,
                receiveQueueBytes: line?.receiveQueueBytes,
                foreignReceivers: foreign.map(\.inode).sorted(),
                datagramsReceived: socket.receiver.forwarding.received.load,
                receivedBytes: socket.receiver.forwarding.receivedBytes.load)
        }
    }
}
