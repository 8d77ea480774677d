import Hummingbird
import NIOCore

/// The context of every request to Ferry's HTTP server: Hummingbird's basic
/// one plus the client's address, which `POST /v1/logs` gives its lines as
/// their source (routes match and balance by it, as they do for UDP and TCP).
public struct FerryRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The connected client (nil if the channel no longer knows it).
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}
