/// How a log reached Ferry.
public enum Transport: Int, CaseIterable, Sendable, CustomStringConvertible {
    case udp
    case http

    public var description: String {
        switch self {
        case .udp: return "udp"
        case .http: return "http"
        }
    }
}
