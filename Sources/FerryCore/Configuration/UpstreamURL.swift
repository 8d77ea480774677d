/// Where forwarded logs go, as written in configuration.
///
/// - `udp://HOST:PORT`: each log becomes one datagram, byte-identical.
/// - `ferry://HOST:PORT`: logs packed into acknowledged frames to another Ferry.
/// - `file:PATH`: each log is appended to `PATH` as one line.
public enum UpstreamURL: Sendable, Hashable, CustomStringConvertible {
    case udp(HostAndPort)
    /// Acknowledged frames to another Ferry (`ferry://HOST:PORT`).
    case ferry(HostAndPort)
    case file(path: String)

    /// The schemes Ferry understands, for error messages.
    public static let allowedForms = "udp://HOST:PORT, ferry://HOST:PORT or file:PATH"

    public init?(parsing text: String) {
        if text.hasPrefix("udp://") {
            guard let address = HostAndPort(parsing: String(text.dropFirst("udp://".count))),
                address.port != 0
            else { return nil }
            self = .udp(address)
        } else if text.hasPrefix("ferry://") {
            guard let address = HostAndPort(parsing: String(text.dropFirst("ferry://".count))),
                address.port != 0
            else { return nil }
            self = .ferry(address)
        } else if text.hasPrefix("file:") {
            var path = String(text.dropFirst("file:".count))
            if path.hasPrefix("//") { path.removeFirst(2) }  // file:///var/log/x → /var/log/x
            guard !path.isEmpty, !path.hasSuffix("/") else { return nil }
            self = .file(path: path)
        } else {
            return nil
        }
    }

    public var description: String {
        switch self {
        case .udp(let address): return "udp://\(address)"
        case .ferry(let address): return "ferry://\(address)"
        case .file(let path): return "file:\(path)"
        }
    }
}

extension UpstreamURL {
    /// The host and port of a network upstream (nil for `file:`).
    var networkAddress: HostAndPort? {
        switch self {
        case .udp(let address), .ferry(let address): return address
        case .file: return nil
        }
    }
}
