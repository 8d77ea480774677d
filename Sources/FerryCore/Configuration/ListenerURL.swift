/// One address Ferry receives logs on, as written in configuration (`listen`).
///
/// - `udp://HOST:PORT` (or a bare `HOST:PORT`): one log per datagram.
/// - `tcp://HOST:PORT`: syslog over TCP, RFC 6587 framing.
/// - `tls://HOST:PORT`: the same inside TLS (RFC 5425), with the `tls.*` keys.
///
/// A stream listener frames by the first byte of each connection (a digit:
/// octet counting; anything else: one log per line) unless `?framing=octet`
/// or `?framing=lf` fixes it. Its text is also its `listener` label in
/// metrics and status, so the label's values come from the configuration only.
public enum ListenerURL: Sendable, Hashable, CustomStringConvertible {
    case udp(HostAndPort)
    case tcp(HostAndPort, framing: StreamFraming)
    case tls(HostAndPort, framing: StreamFraming)

    /// The forms `listen` takes, for error messages.
    public static let allowedForms = "udp://HOST:PORT (or HOST:PORT), tcp://HOST:PORT or tls://HOST:PORT, optionally ?framing=octet|lf for tcp/tls"

    public init?(parsing text: String) {
        func streamAddress(_ rest: Substring) -> (HostAndPort, StreamFraming)? {
            guard let (addressText, framing) = StreamFraming.splitQuery(rest),
                let address = HostAndPort(parsing: String(addressText))
            else { return nil }
            return (address, framing ?? .detect)
        }
        if text.hasPrefix("udp://") {
            guard let address = HostAndPort(parsing: String(text.dropFirst("udp://".count))) else { return nil }
            self = .udp(address)
        } else if text.hasPrefix("tcp://") {
            guard let (address, framing) = streamAddress(text.dropFirst("tcp://".count)) else { return nil }
            self = .tcp(address, framing: framing)
        } else if text.hasPrefix("tls://") {
            guard let (address, framing) = streamAddress(text.dropFirst("tls://".count)) else { return nil }
            self = .tls(address, framing: framing)
        } else if !text.contains("://"), let address = HostAndPort(parsing: text) {
            self = .udp(address)
        } else {
            return nil
        }
    }

    /// The address and port.
    public var address: HostAndPort {
        switch self {
        case .udp(let address), .tcp(let address, _), .tls(let address, _): return address
        }
    }

    /// Whether this is a connection (`tcp://`, `tls://`) listener.
    public var isStream: Bool {
        if case .udp = self { return false }
        return true
    }

    public var description: String {
        switch self {
        case .udp(let address): return "udp://\(address)"
        case .tcp(let address, let framing): return "tcp://\(address)\(framing.query)"
        case .tls(let address, let framing): return "tls://\(address)\(framing.query)"
        }
    }
}

/// How a stream listener or upstream splits a byte stream into logs (RFC 6587).
public enum StreamFraming: String, Sendable, Hashable, CaseIterable {
    /// Decided per connection by its first byte: a digit means octet counting, anything else LF.
    case detect
    /// Octet counting (RFC 6587 §3.4.1): `LENGTH SP MESSAGE`.
    case octet
    /// Non-transparent framing (RFC 6587 §3.4.2): one message per line, ended by LF.
    case lf

    var query: String { self == .detect ? "" : "?framing=\(rawValue)" }

    /// Splits `HOST:PORT?framing=octet|lf` into the address text and the framing it fixes
    /// (nil when there is no query); nil when the query is anything else.
    static func splitQuery(_ text: Substring) -> (Substring, StreamFraming?)? {
        guard let query = text.firstIndex(of: "?") else { return (text, nil) }
        let parameter = text[text.index(after: query)...]
        guard parameter.hasPrefix("framing="), let fixed = StreamFraming(rawValue: String(parameter.dropFirst("framing=".count))),
            fixed != .detect
        else { return nil }
        return (text[..<query], fixed)
    }
}
