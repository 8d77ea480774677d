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
