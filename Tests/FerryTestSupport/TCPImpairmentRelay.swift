import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A fault on the connections through a ``TCPImpairmentRelay``.
public enum TCPFault: Sendable, Equatable, CustomStringConvertible {
    /// Nothing is forwarded either way for this long (the bytes wait in the kernels' buffers, as behind a black hole).
    case stall(Duration)
    /// Both sides of every open connection are closed (FIN).
    case cut
    /// Both sides of every open connection are reset (`SO_LINGER` 0, so `close` sends RST).
    case reset

    public var description: String {
        switch self {
        case .stall(let length): return "stall \(length)"
        case .cut: return "cut"
        case .reset: return "reset"
        }
    }
}

/// What a ``TCPImpairmentRelay`` did.
public struct TCPRelayCounters: Sendable, Equatable, CustomStringConvertible {
    public var accepted = 0
    public var connectFailed = 0
    public var bytesToServer = 0
    public var bytesToClient = 0
    public var stalls = 0
    /// Times a connection's pump entered a stall (from then on it moves no byte until the stall ends).
    public var stallsHeld = 0
    /// Connections closed by a cut, and by a reset.
    public var cut = 0
    public var reset = 0
    /// Connections one of the peers closed.
    public var closedByPeer = 0

    public var description: String {
        "accepted \(accepted), connect failed \(connectFailed), bytes to server \(bytesToServer), to client \(bytesToClient), "
            + "stalls \(stalls), cut \(cut), reset \(reset), closed by peer \(closedByPeer)"
    }
}

/// A TCP relay for `tcp://` upstreams that stalls, cuts and resets the
/// connections it forwards, at scheduled times or when told.
///
/// It accepts on ``endpoint``, connects each connection to `target`, and pumps
/// bytes both ways on a thread per connection (plain non-blocking sockets and
/// `poll`). Faults apply to every connection open when they happen; a stall
/// also holds connections made during it.
public final class TCPImpairmentRelay: Sendable {
    public let seed: UInt64
    public let endpoint: IPv4Endpoint
    public let target: IPv4Endpoint
    private let shared: TCPRelayShared
    private let listener: CInt
    private let finished = DispatchSemaphore(value: 0)

    /// Starts a relay on `listen` forwarding to `target`, with `faults` at times relative to now.
    public init(listen: IPv4Endpoint, to target: IPv4Endpoint, faults: [(at: Duration, TCPFault)] = [], seed: UInt64) throws {
        self.seed = seed
        self.target = target
        let (fd, bound) = try PlainSocket.bound(Int32(SOCK_STREAM.rawValue), to: listen, buffer: 1 << 20)
        guard Glibc.listen(fd, 64) == 0 else { throw TestSocketError.system("listen", errno) }
        listener = fd
        endpoint = bound
        shared = TCPRelayShared()
        schedule(faults)
        let shared = shared
        let thread = Thread { [finished] in
            Self.accept(on: fd, to: target, shared: shared)
            finished.signal()
        }
        thread.name = "tcp-impairment-relay"
        thread.start()
    }

    deinit { stop() }

    /// A schedule of `count` faults drawn from `seed`: times spread over `span`, kinds from `kinds`.
    public static func randomFaults(seed: UInt64, count: Int, over span: Duration, kinds: [TCPFault]) -> [(at: Duration, TCPFault)] {
        var random = SeededRandom(seed: seed, stream: 7)
        let spanNanoseconds = span.nanoseconds
        return (0..<count).map { _ in
            (Duration.nanoseconds(Int64(UInt64.random(in: 0...spanNanoseconds, using: &random))), kinds.randomElement(using: &random)!)
        }.sorted { $0.at < $1.at }
    }

    /// Carries out `fault` now.
    public func inject(_ fault: TCPFault) {
        schedule([(.zero, fault)])
    }

    /// Adds faults at times relative to now.
    public func schedule(_ faults: [(at: Duration, TCPFault)]) {
        let now = PlainSocket.now()
        shared.state.withLock { $0.pending += faults.map { (now + $0.at.nanoseconds, $0.1) } }
    }

    /// Ends every stall now (a test that must not depend on how long its own steps take stalls "for ever" and ends it).
    public func endStalls() {
        shared.state.withLock { $0.stalledUntil = 0 }
    }

    public var counters: TCPRelayCounters { shared.state.withLock { $0.counters } }

    /// The seed and the counters: for failure messages.
    public var description: String { "tcp relay seed \(seed) (replay: FERRY_TEST_SEED=\(seed)): \(counters)" }

    /// Stops accepting and closes every connection (idempotent).
    public func stop() {
        let first = shared.state.withLock { state -> Bool in
            defer { state.stopping = true }
            return !state.stopping
        }
        guard first else { return }
        finished.wait()
        close(listener)
        if shared.state.withLock({ $0.open }) > 0 { _ = shared.idle.wait(timeout: .now() + 2) }
    }

    /// The accept loop; it also turns due faults into the state connections read.
    private static func accept(on listener: CInt, to target: IPv4Endpoint, shared: TCPRelayShared) {
        var descriptor = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
        while !shared.state.withLock({ $0.stopping }) {
            shared.applyDueFaults(now: PlainSocket.now())
            guard poll(&descriptor, 1, 10) > 0 else { continue }
            let client = Glibc.accept(listener, nil, nil)
            guard client >= 0 else { continue }
            let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard server >= 0, PlainSocket.connect(server, to: target) == 0 else {
                shared.state.withLock { $0.counters.connectFailed += 1 }
                TCPRelayConnection.reset(client)
                if server >= 0 { close(server) }
                continue
            }
            let epoch = shared.state.withLock { state -> Int in
                state.counters.accepted += 1
                state.open += 1
                return state.faultEpoch
            }
            let connection = TCPRelayConnection(client: client, server: server, epoch: epoch, shared: shared)
            Thread { connection.run() }.start()
        }
    }
}

/// What the relay, its accept loop and its connections share.
final class TCPRelayShared: Sendable {
    struct State {
        var pending: [(due: UInt64, fault: TCPFault)] = []
        /// Forwarding is held until this monotonic time.
        var stalledUntil: UInt64 = 0
        /// Raised by each cut or reset; a connection acts on those after the epoch it was accepted in.
        var faultEpoch = 0
        var faults: [Int: TCPFault] = [:]
        var counters = TCPRelayCounters()
        var open = 0
        var stopping = false
    }

    let state = Mutex(State())
    /// Signalled when the last connection closes after a stop.
    let idle = DispatchSemaphore(value: 0)

    func applyDueFaults(now: UInt64) {
        state.withLock { state in
            let due = state.pending.filter { $0.due <= now }
            guard !due.isEmpty else { return }
            state.pending.removeAll { $0.due <= now }
            for (_, fault) in due.sorted(by: { $0.due < $1.due }) {
                switch fault {
                case .stall(let length):
                    state.stalledUntil = max(state.stalledUntil, now + length.nanoseconds)
                    state.counters.stalls += 1
                case .cut, .reset:
                    state.faultEpoch += 1
                    state.faults[state.faultEpoch] = fault
                }
            }
        }
    }
}
