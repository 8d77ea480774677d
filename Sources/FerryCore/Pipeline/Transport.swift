/// How a log reached Ferry.
public enum Transport: Int, CaseIterable, Sendable, CustomStringConvertible {
    case udp
    case http
    /// Records of `ferry://` frames from another Ferry.
    case ferry
    /// Syslog over TCP (`tcp://` listeners).
    case tcp
    /// Syslog over TLS (`tls://` listeners).
    case tls

    public var description: String {
        switch self {
        case .udp: return "udp"
        case .http: return "http"
        case .ferry: return "ferry"
        case .tcp: return "tcp"
        case .tls: return "tls"
        }
    }
}
