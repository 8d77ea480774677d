/// How a log reached Ferry.
public enum Transport: Int, CaseIterable, Sendable, CustomStringConvertible {
    case udp
    case http
    /// Records of `ferry://` frames from another Ferry.
    case ferry

    public var description: String {
        switch self {
        case .udp: return "udp"
        case .http: return "http"
        case .ferry: return "ferry"
        }
    }
}
