import Synchronization

/// What one `tcp://` or `tls://` listener has seen, readable from any thread:
/// connections by outcome, TLS failures by reason, time its connections spent
/// paused because the buffer (or spool) was full, and the open connections
/// per source address that its per-source cap is checked against.
public final class StreamListenerStats: Sendable {
    /// Why a connection was refused at accept.
    public enum Refusal: Int, CaseIterable, Sendable, CustomStringConvertible {
        /// `tcp.max-connections` were open on this listener.
        case listenerLimit
        /// `tcp.max-connections-per-source` were open from this address.
        case sourceLimit
        /// The relay is stopping.
        case draining
        /// From an address no block of the listener's `allow` covers (closed before any byte is read).
        case denied

        public var description: String {
            switch self {
            case .listenerLimit: return "listener_limit"
            case .sourceLimit: return "source_limit"
            case .draining: return "draining"
            case .denied: return "denied"
            }
        }
    }

    /// Why a connection ended.
    public enum Closure: Int, CaseIterable, Sendable, CustomStringConvertible {
        /// The peer closed it (or reset it).
        case peer
        /// Nothing came for `tcp.idle-timeout`.
        case idle
        /// Its stream could not be framed (see ``DropReason/framingError``).
        case framingError
        /// Its TLS handshake failed (the reason is in ``tlsFailures``).
        case handshakeFailed
        /// Its TLS handshake did not finish within `tls.handshake-timeout`.
        case handshakeTimeout
        /// A read or TLS error after the handshake.
        case error
        /// Ferry stopped.
        case shutdown

        public var description: String {
            switch self {
            case .peer: return "peer"
            case .idle: return "idle"
            case .framingError: return "framing_error"
            case .handshakeFailed: return "handshake_failed"
            case .handshakeTimeout: return "handshake_timeout"
            case .error: return "error"
            case .shutdown: return "shutdown"
            }
        }
    }

    /// The listener as configured: its `listener` label.
    public let name: String
    let accepted = AtomicCounter()
    let open = AtomicCounter()
    let refused: [AtomicCounter] = Refusal.allCases.map { _ in AtomicCounter() }
    let closed: [AtomicCounter] = Closure.allCases.map { _ in AtomicCounter() }
    let tlsFailures: [AtomicCounter] = TLSFailureReason.allCases.map { _ in AtomicCounter() }
    /// Messages taken from this listener's connections, and their bytes.
    let received = AtomicCounter()
    let receivedBytes = AtomicCounter()
    /// Nanoseconds connections spent not reading because Ferry had no room.
    let pausedNanoseconds = AtomicCounter()
    /// Connections paused right now.
    let pausedNow = AtomicCounter()
    private let sources = Mutex<[String: Int]>([:])
    private let maxConnections: Int
    private let maxPerSource: Int

    init(name: String, maxConnections: Int, maxPerSource: Int) {
        self.name = name
        self.maxConnections = maxConnections
        self.maxPerSource = maxPerSource
    }

    /// Takes a place for a new connection from `source`, or says why there is none.
    func admit(source: String) -> Refusal? {
        let refusal: Refusal? = sources.withLock { table in
            let total = open.load
            guard total < maxConnections else { return .listenerLimit }
            let current = table[source, default: 0]
            guard current < maxPerSource else { return .sourceLimit }
            table[source] = current + 1
            open.add(1)
            return nil
        }
        if let refusal { refused[refusal.rawValue].add(1) } else { accepted.add(1) }
        return refusal
    }

    /// Gives back the place of a connection from `source` that ended.
    func release(source: String, closure: Closure) {
        closed[closure.rawValue].add(1)
        sources.withLock { table in
            let current = table[source, default: 1]
            if current <= 1 { table.removeValue(forKey: source) } else { table[source] = current - 1 }
            open.add(-1)
        }
    }

    /// Source addresses with open connections now.
    var sourceCount: Int { sources.withLock { $0.count } }

    public var snapshot: StreamListenerSnapshot {
        StreamListenerSnapshot(
            listener: name, address: "", port: 0,
            connectionsOpen: open.load,
            connectionsAccepted: accepted.load,
            sources: sourceCount,
            refused: Dictionary(uniqueKeysWithValues: Refusal.allCases.map { ($0.description, refused[$0.rawValue].load) }),
            closed: Dictionary(uniqueKeysWithValues: Closure.allCases.map { ($0.description, closed[$0.rawValue].load) }),
            tlsFailures: Dictionary(uniqueKeysWithValues: TLSFailureReason.allCases.map { ($0.description, tlsFailures[$0.rawValue].load) }),
            received: received.load,
            receivedBytes: receivedBytes.load,
            pausedSeconds: Double(pausedNanoseconds.load) / 1e9,
            pausedNow: pausedNow.load)
    }
}

/// What `/v1/status` shows of one `tcp://` or `tls://` listener.
public struct StreamListenerSnapshot: Sendable, Codable, Equatable {
    public var listener: String
    /// The address bound, with the port the kernel chose when 0 was configured.
    public var address: String
    public var port: Int
    public var connectionsOpen: Int
    public var connectionsAccepted: Int
    /// Source addresses with open connections.
    public var sources: Int
    public var refused: [String: Int]
    public var closed: [String: Int]
    public var tlsFailures: [String: Int]
    public var received: Int
    public var receivedBytes: Int
    /// Time connections spent not being read because Ferry had no room (backpressure).
    public var pausedSeconds: Double
    public var pausedNow: Int
    /// The TLS certificate in use (its subject and expiry), for `tls://`.
    public var certificate: String?
}
