import Logging
import NIOSSL

/// `tcp://HOST:PORT` and `tls://HOST:PORT`: syslog over a TCP connection per
/// loop (inside TLS for `tls://`), logs kept until the peer's TCP acknowledged them.
struct StreamUpstreamKind: UpstreamKind {
    let upstream: Upstream
    let framing: StreamFraming
    /// The client context of a `tls://` upstream (nil for `tcp://`).
    let tls: NIOSSLContext?
    /// The name the server's certificate must carry (SNI too); nil for an IP
    /// address, which is checked against the certificate's IP entries.
    let serverName: String?
    let logger: Logger

    func makeLane(_ loop: LaneContext) -> any UpstreamLane {
        let lane = StreamUpstreamLane(
            upstream: upstream, eventLoop: loop.eventLoop, settlement: loop.settlement, laneIndex: loop.loopIndex, framing: framing, tls: tls,
            serverName: serverName, logger: logger)
        lane.returnToBuffer = loop.handBack
        lane.onAvailable = loop.wake
        return lane
    }

    /// Resolves the upstream's name and, for `tls://`, builds its client context once.
    static func open(_ upstream: Upstream, address: HostAndPort, framing: StreamFraming, tls settings: TLSUpstreamSettings?, logger: Logger) throws
        -> StreamUpstreamKind
    {
        try NameResolver.resolveAtStart(address, for: upstream, logger: logger)
        var context: NIOSSLContext?
        if let settings {
            context = try TLSClientContext.make(settings)
            if settings.insecure {
                upstream.tlsInsecure.store(true)
                logger.error(
                    "tls upstream is not verified (upstream-tls.insecure=true): anyone on the path can read and change these logs",
                    metadata: ["upstream": "\(upstream.url)"])
            }
        }
        let name = NameResolver.isLiteral(address.host) ? nil : address.host
        return StreamUpstreamKind(upstream: upstream, framing: framing, tls: context, serverName: name, logger: logger)
    }
}
