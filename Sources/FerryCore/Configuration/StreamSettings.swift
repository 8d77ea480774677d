/// Limits of `tcp://` and `tls://` listeners (`tcp.*`), the same for each.
public struct StreamListenerSettings: Sendable, Equatable {
    /// A connection that sends nothing for this long is closed (`tcp.idle-timeout`).
    public var idleTimeout: Duration = .seconds(600)
    /// Open connections per listener; more are closed at accept (`tcp.max-connections`).
    public var maxConnections = 1_024
    /// Open connections per listener from one source address (`tcp.max-connections-per-source`).
    public var maxConnectionsPerSource = 64

    public init() {}
}

/// Whether a `tls://` listener asks clients for a certificate (`tls.client-auth`).
public enum TLSClientAuth: String, Sendable, CaseIterable {
    /// No client certificate is asked for.
    case none
    /// A client may present one; if it does, it must verify against `tls.ca`.
    case optional
    /// Every client must present a certificate that verifies against `tls.ca`.
    case required
}

/// The server side of `tls://` listeners (`tls.*`).
public struct TLSListenerSettings: Sendable, Equatable {
    /// PEM certificate chain (`tls.cert`), re-read when the file changes.
    public var certificatePath: String?
    /// PEM private key (`tls.key`), re-read with the certificate.
    public var keyPath: String?
    /// PEM CA bundle client certificates are verified against (`tls.ca`).
    public var caPath: String?
    public var clientAuth: TLSClientAuth = .none
    /// Time a connection has to finish its handshake (`tls.handshake-timeout`).
    public var handshakeTimeout: Duration = .seconds(10)

    public init() {}
}

/// The client side of `tls://` upstreams (`upstream-tls.*`).
public struct TLSUpstreamSettings: Sendable, Equatable {
    /// PEM CA bundle the server's certificate is verified against; the system's trust store when unset (`upstream-tls.ca`).
    public var caPath: String?
    /// Client certificate for mutual TLS (`upstream-tls.cert`).
    public var certificatePath: String?
    /// Its private key (`upstream-tls.key`).
    public var keyPath: String?
    /// Skips verifying the server's certificate and name (`upstream-tls.insecure`): loud in logs and status.
    public var insecure = false

    public init() {}
}
