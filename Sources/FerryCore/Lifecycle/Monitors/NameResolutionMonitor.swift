import NIOCore
import NIOPosix
import ServiceLifecycle

/// Re-resolves upstream host names every `resolve.interval`, soon after a
/// breaker opens, and every second while a name has no address yet; a changed
/// address moves every lane (``Upstream/applyResolution(_:now:)``). A `Service`
/// in the process's `ServiceGroup`: it stops on graceful shutdown.
public struct NameResolutionMonitor: RelayMonitor {
    let handle: RelayHandle

    public init(handle: RelayHandle) {
        self.handle = handle
    }

    func watch(_ relay: Relay) async {
        // With resolve.interval 0, names are still retried until they resolve once.
        let configured = relay.configuration.resolveInterval
        let interval = configured > .zero ? TimeAmount(configured) : .hours(1_000_000)
        while !Task.isCancelled {
            for upstream in relay.upstreams {
                guard upstream.needsResolution(interval: interval), let host = upstream.hostName,
                    let address = upstream.url.networkAddress
                else { continue }
                let result: Result<[SocketAddress], any Error>
                do {
                    let port = address.port
                    result = .success(try await NIOThreadPool.singleton.runIfActive { try NameResolver.resolveAll(host: host, port: port) })
                } catch {
                    result = .failure(error)
                }
                upstream.applyResolution(result)
            }
            do {
                try await Task.sleep(for: .milliseconds(250))
            } catch {
                return
            }
        }
    }
}
