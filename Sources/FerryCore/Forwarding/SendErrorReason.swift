import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#endif

/// Why a send to an upstream failed, as counted per upstream.
public enum SendErrorReason: Int, CaseIterable, Sendable, CustomStringConvertible {
    case wouldBlock, noBufferSpace, refused, unreachable
    /// A connection attempt (`tcp://`, `tls://`) that did not complete in time.
    case timeout
    /// An open connection that was reset or closed by the peer.
    case reset
    /// A TLS handshake that failed (its reason is in `tls_failures`).
    case tls
    case other

    public var description: String {
        switch self {
        case .wouldBlock: return "would_block"
        case .noBufferSpace: return "no_buffer_space"
        case .refused: return "refused"
        case .unreachable: return "unreachable"
        case .timeout: return "timeout"
        case .reset: return "reset"
        case .tls: return "tls"
        case .other: return "other"
        }
    }
}

extension SendErrorReason {
    init(classifying error: any Error) {
        if let channelError = error as? ChannelError, case .connectTimeout = channelError {
            self = .timeout
            return
        }
        if let connect = error as? NIOConnectionError, let first = connect.connectionErrors.first {
            self.init(classifying: first.error)
            return
        }
        guard let ioError = error as? IOError else {
            self = .other
            return
        }
        switch ioError.errnoCode {
        case ETIMEDOUT: self = .timeout
        case ECONNRESET, EPIPE: self = .reset
        case ECONNREFUSED: self = .refused
        case EHOSTUNREACH, ENETUNREACH: self = .unreachable
        case ENOBUFS: self = .noBufferSpace
        case EAGAIN: self = .wouldBlock
        default: self = .other
        }
    }

    /// What went wrong, for `last_error` and log lines: an `IOError` as
    /// "call: strerror (errno N)" (NIO's own description has a stray parenthesis).
    static func detail(of error: any Error) -> String {
        if let connect = error as? NIOConnectionError, let first = connect.connectionErrors.first { return detail(of: first.error) }
        guard let io = error as? IOError else { return String(describing: error) }
        let call = String(describing: io).split(separator: ":", maxSplits: 1).first.map(String.init) ?? "system call"
        return "\(call): \(String(cString: strerror(io.errnoCode))) (errno \(io.errnoCode))"
    }
}
