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
        } catch {
            for socket in sockets { socket.socket.close() }
            throw IngestError.cannotBind(address: HostAndPort(host: configuration.listen.host, port: port).description, reason: String(describing: error))
        }
        return sockets
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
