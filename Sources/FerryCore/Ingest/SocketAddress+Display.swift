import NIOCore

extension SocketAddress {
    /// `127.0.0.1:5514` or `[::1]:5514`, the form operators write in configuration.
    public var hostAndPort: String {
        guard let ip = ipAddress, let port else { return description }
        return ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }
}
