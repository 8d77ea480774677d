#if canImport(Glibc)
    import Glibc
#endif

/// One connection through a ``TCPImpairmentRelay``: pumps bytes both ways on
/// its own thread until a peer closes it, a fault ends it, or the relay stops.
///
/// `@unchecked Sendable`: handed to its thread once and used by it alone.
final class TCPRelayConnection: @unchecked Sendable {
    private let client: CInt
    private let server: CInt
    private let epoch: Int
    private let shared: TCPRelayShared
    /// Bytes read and not yet written: [0] client → server, [1] server → client.
    private var pending: [[UInt8]] = [[], []]
    /// Whether the pump is in a stall now (counted once per stall it enters).
    private var holding = false
    private var buffer = [UInt8](repeating: 0, count: 65_536)

    init(client: CInt, server: CInt, epoch: Int, shared: TCPRelayShared) {
        self.client = client
        self.server = server
        self.epoch = epoch
        self.shared = shared
        PlainSocket.setNonBlocking(client)
        PlainSocket.setNonBlocking(server)
    }

    /// Closes `fd` with RST instead of FIN.
    static func reset(_ fd: CInt) {
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        close(fd)
    }

    func run() {
        let ending = pump()
        switch ending {
        case .reset:
            Self.reset(client)
            Self.reset(server)
        case .cut, .peer:
            close(client)
            close(server)
        }
        shared.state.withLock { state in
            state.open -= 1
            switch ending {
            case .reset: state.counters.reset += 1
            case .cut: state.counters.cut += 1
            case .peer: state.counters.closedByPeer += 1
            }
            if state.stopping, state.open == 0 { shared.idle.signal() }
        }
    }

    private enum Ending {
        case peer
        case cut
        case reset
    }

    private func pump() -> Ending {
        let ends = [client, server]
        while true {
            let (stalled, fault) = shared.state.withLock { state -> (Bool, TCPFault?) in
                if state.stopping { return (false, .cut) }
                var fault: TCPFault?
                if state.faultEpoch > epoch {
                    for later in (epoch + 1)...state.faultEpoch where fault == nil { fault = state.faults[later] }
                }
                return (state.stalledUntil > PlainSocket.now(), fault)
            }
            if let fault { return fault == .reset ? .reset : .cut }
            if stalled {
                // Nothing read or written: a peer's close, too, is seen once the stall ends.
                if !holding { shared.state.withLock { $0.counters.stallsHeld += 1 } }
                holding = true
                usleep(10_000)
                continue
            }
            holding = false
            var descriptors = ends.map { pollfd(fd: $0, events: 0, revents: 0) }
            for direction in 0..<2 {
                if pending[direction].isEmpty {
                    descriptors[direction].events |= Int16(POLLIN)
                } else {
                    descriptors[1 - direction].events |= Int16(POLLOUT)
                }
            }
            guard poll(&descriptors, 2, 10) > 0 else { continue }
            for direction in 0..<2 {
                let from = descriptors[direction]
                if from.revents & Int16(POLLIN | POLLHUP | POLLERR) != 0, pending[direction].isEmpty {
                    let count = buffer.withUnsafeMutableBytes { read(ends[direction], $0.baseAddress, $0.count) }
                    if count == 0 || (count < 0 && errno != EAGAIN && errno != EINTR) { return .peer }
                    if count > 0 {
                        pending[direction] = Array(buffer[0..<count])
                        shared.state.withLock { state in
                            if direction == 0 { state.counters.bytesToServer += count } else { state.counters.bytesToClient += count }
                        }
                    }
                }
                if !pending[direction].isEmpty {
                    let written = pending[direction].withUnsafeBytes { write(ends[1 - direction], $0.baseAddress, $0.count) }
                    if written < 0, errno != EAGAIN, errno != EINTR { return .peer }
                    if written > 0 { pending[direction].removeFirst(written) }
                }
            }
        }
    }
}
