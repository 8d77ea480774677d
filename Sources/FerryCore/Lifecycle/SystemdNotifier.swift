import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// Tells systemd how Ferry's start, reloads and stop are going, as
/// `sd_notify(3)` does: one datagram of `KEY=VALUE` lines to the unix socket
/// named by `$NOTIFY_SOCKET` (a path, or an abstract name written with a
/// leading `@`).
///
/// A `Type=notify` unit counts as started only when `READY=1` arrives, so
/// `systemctl start ferry` returns (and units ordered after it start) once the
/// listeners are bound, not when the process was forked. Around a reload it
/// sends `RELOADING=1` with `MONOTONIC_USEC`, then `READY=1`; at shutdown
/// `STOPPING=1`. No libsystemd: the protocol is one `sendto`, and a host
/// without systemd simply has no `NOTIFY_SOCKET`.
public struct SystemdNotifier: Sendable {
    /// Why a notification could not be sent.
    public enum Error: Swift.Error, CustomStringConvertible, Equatable {
        /// `NOTIFY_SOCKET` is neither an absolute path nor `@name`, or is too long for a unix socket address.
        case invalidSocket(String)
        /// `socket` or `sendto` failed with this errno.
        case sendFailed(socket: String, errno: Int32)

        public var description: String {
            switch self {
            case .invalidSocket(let socket):
                "NOTIFY_SOCKET '\(socket)' is not a unix socket address: allowed are an absolute path or @name of at most 107 bytes"
            case .sendFailed(let socket, let errno):
                "notification to systemd at '\(socket)' failed: \(String(cString: strerror(errno)))"
            }
        }
    }

    /// The socket as `NOTIFY_SOCKET` names it.
    public let socket: String

    /// The notifier for `$NOTIFY_SOCKET`, or nil when it is unset or empty (not started by systemd, or not `Type=notify`).
    public init?(environment: [String: String]) {
        guard let socket = environment["NOTIFY_SOCKET"], !socket.isEmpty else { return nil }
        self.socket = socket
    }

    /// A notifier for this socket (`/run/systemd/notify`, `@name`).
    public init(socket: String) {
        self.socket = socket
    }

    /// What Ferry tells systemd.
    public enum State: Sendable, Equatable {
        /// Ferry is up: its listeners are bound (or a reload has finished, whatever its outcome).
        case ready
        /// A reload begins, at this `CLOCK_MONOTONIC` time; `.ready` must follow when it ends.
        case reloading(monotonicMicroseconds: UInt64)
        /// Graceful shutdown has begun.
        case stopping

        /// The datagram's text: newline-separated `KEY=VALUE` assignments.
        public var assignments: String {
            switch self {
            case .ready: "READY=1"
            case .reloading(let microseconds): "RELOADING=1\nMONOTONIC_USEC=\(microseconds)"
            case .stopping: "STOPPING=1"
            }
        }

        /// A reload beginning now.
        public static func reloadingNow() -> State { .reloading(monotonicMicroseconds: SystemdNotifier.monotonicMicroseconds()) }
    }

    /// Sends `state` as one datagram.
    public func send(_ state: State) throws(Error) {
        try send(assignments: state.assignments)
    }

    /// Sends `state`; a failure is logged at warning (systemd then times the start or reload out) and otherwise ignored.
    public func send(_ state: State, logger: Logger) {
        do {
            try send(state)
        } catch {
            logger.warning("systemd notification failed", metadata: ["systemd.state": "\(state.assignments)", "error": "\(error)"])
        }
    }

    /// Sends newline-separated `KEY=VALUE` assignments as one datagram.
    public func send(assignments: String) throws(Error) {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var path = Array(socket.utf8)
        let abstract = path.first == UInt8(ascii: "@")
        if abstract { path[0] = 0 }
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard abstract || path.first == UInt8(ascii: "/"), path.count > 1, path.count < capacity else {
            throw .invalidSocket(socket)
        }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: path) }
        // A path ends with its NUL; an abstract name is exactly its bytes.
        let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + path.count + (abstract ? 0 : 1))
        let descriptor = Glibc.socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw .sendFailed(socket: socket, errno: errno) }
        defer { close(descriptor) }
        let message = Array(assignments.utf8)
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                message.withUnsafeBytes { sendto(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), socketAddress, length) }
            }
        }
        guard sent == message.count else { throw .sendFailed(socket: socket, errno: errno) }
    }

    /// `CLOCK_MONOTONIC` in microseconds, the clock systemd compares `MONOTONIC_USEC` with.
    public static func monotonicMicroseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1_000
    }
}
