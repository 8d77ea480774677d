import Logging
import NIOCore
import Synchronization

/// Binding the listeners of `listen`: at start, and for those a reload adds.
extension Relay {
    /// One listener bound (a `udp://` one not yet reading; see ``IntakeListener/start(handles:)``), with its allowlist and rate limit.
    struct BoundListener: Sendable {
        let intake: any IntakeListener
        let gate: SourceGate?
    }

    /// Binds `url` as `configuration` says, at `position` for `match.listener`.
    ///
    /// - Parameter own: Ferry's receive sockets already open (a reload may bind
    ///   a UDP port one of its own listeners holds until the reload ends).
    static func bindListener(
        _ url: ListenerURL, configuration: FerryConfiguration, group: any EventLoopGroup, handles: [PipelineHandle], upstreams: [Upstream],
        position: Int, keepsSources: AtomicFlag, own: Set<UInt64> = [], logger: Logger
    ) async throws -> BoundListener {
        let gate = SourceGate.make(allowlist: configuration.allowlist(for: url), rateLimit: configuration.rateLimit)
        switch url {
        case .udp(let address):
            let intake = try UDPListener(configuration: configuration, address: address, gate: gate, logger: logger)
                .bind(handles: handles, upstreams: upstreams, position: position, keepsSources: keepsSources, own: own)
            return BoundListener(intake: intake, gate: gate)
        case .tcp, .tls:
            // Accepts at once: its first bursts may meet the routing table in force until the caller installs the next.
            let intake = try await StreamListener.bind(
                url, configuration: configuration, group: group, handles: handles, gate: gate, position: position, logger: logger)
            return BoundListener(intake: intake, gate: gate)
        }
    }

    /// The inodes of every UDP receive socket Ferry holds now.
    var ownReceiveSockets: Set<UInt64> { Self.receiveSockets(of: state.withLock { $0.listeners }) }

    static func receiveSockets(of listeners: [any IntakeListener]) -> Set<UInt64> {
        Set(listeners.compactMap { $0 as? UDPIntake }.flatMap { $0.sockets.map(\.socket.inode) })
    }
}
