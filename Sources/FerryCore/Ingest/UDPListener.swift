import Logging
import NIOCore

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
    let logger: Logger

    func bind(handles: [Relay.PipelineHandle], upstreams: [Upstream]) throws -> [Socket] {
        var sockets: [Socket] = []
        var port = configuration.listen.port
        do {
            if port == 0 {
                port = try ReceiveSocket.freePort(near: SocketAddress.makeAddressResolvingHost(configuration.listen.host, port: 0))
            }
            // Before binding: a socket already on the port would share its
            // traffic with ours (SO_REUSEPORT); not even briefly.
            let wanted = try SocketAddress.makeAddressResolvingHost(configuration.listen.host, port: port)
            try Self.refuseShared(wanted, own: [])
            for handle in handles {
                let address = try SocketAddress.makeAddressResolvingHost(configuration.listen.host, port: port)
                let socket = try ReceiveSocket.bind(
                    to: address, receiveBufferBytes: configuration.receiveBufferBytes, wakeInterval: nil)
                port = socket.localAddress.port ?? port  // the others join the port the kernel picked
                let forwarding = DatagramReceiver.Forwarding(
                    loopIndex: handle.index, upstreams: upstreams, route: handle.route, counters: handle.counters,
                    sampleRate: configuration.traceSampleRate)
                let receiver = DatagramReceiver(
                    socket: socket, batch: configuration.receiveBatch, maxDatagramBytes: configuration.maxDatagramBytes,
                    forwarding: forwarding, logger: logger)
                sockets.append(Socket(socket: socket, receiver: receiver, loopIndex: handle.index))
            }
            // And after: one that bound in between (two Ferrys starting at once).
            if let first = sockets.first {
                try Self.refuseShared(first.socket.localAddress, own: Set(sockets.map(\.socket.inode)))
            }
        } catch let error as IngestError {
            for socket in sockets { socket.socket.close() }
            throw error
        } catch {
            for socket in sockets { socket.socket.close() }
            throw IngestError.cannotBind(
                address: HostAndPort(host: configuration.listen.host, port: port).description, reason: String(describing: error))
        }
        return sockets
    }

    /// Fails if another socket already holds the configured port; run first
    /// thing at start, before any file is opened or socket bound.
    static func refuseSharedPort(_ configuration: FerryConfiguration) throws {
        guard configuration.listen.port != 0,
            let address = try? SocketAddress.makeAddressResolvingHost(configuration.listen.host, port: configuration.listen.port)
        else { return }
        try refuseShared(address, own: [])
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

    public var description: String {
        switch self {
        case .cannotBind(let address, let reason):
            return "cannot bind UDP listener on \(address): \(reason)"
        case .portShared(let address, let port, let inodes):
            return "cannot bind UDP listener on \(address): address already in use "
                + "(UDP port \(port) is held by \(inodes.count) other socket(s), inode \(inodes.map(String.init).joined(separator: ", ")); "
                + "with SO_REUSEPORT they would share its datagrams: stop the other process or choose another port)"
        }
    }
}
