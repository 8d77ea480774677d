import Logging
import ServiceLifecycle

/// Every `kernel.check-interval`, looks at what the kernel says of the
/// receive sockets and says so when it matters:
/// - a socket's drop counter grew (datagrams lost before Ferry could read
///   them): one warning per listener and interval, with the fix;
/// - a foreign socket joined a listener's port group (`SO_REUSEPORT`) and takes
///   part of its traffic: one warning per socket, counted in
///   ``Relay/foreignReceiversSeen``.
///
/// A `Service` in the process's `ServiceGroup`: it stops on graceful shutdown.
public struct KernelSocketMonitor: RelayMonitor {
    let handle: RelayHandle

    public init(handle: RelayHandle) {
        self.handle = handle
    }

    func watch(_ relay: Relay) async {
        let interval = relay.configuration.kernelCheckInterval
        var previous: [String: Int] = [:]
        var foreignSeen: Set<UInt64> = []
        // By listener and socket: several listeners have a socket on each loop.
        for listener in relay.listeners { previous["\(listener.listener)#\(listener.loop)"] = listener.kernelReceiveDrops ?? 0 }
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: interval)
            } catch {
                return
            }
            let listeners = relay.listeners
            reportForeignReceivers(listeners, of: relay, seen: &foreignSeen)
            for listener in listeners {
                guard let drops = listener.kernelReceiveDrops else { continue }
                let key = "\(listener.listener)#\(listener.loop)"
                let grown = drops - previous[key, default: drops]
                previous[key] = drops
                guard grown > 0 else { continue }
                relay.logger.warning(
                    "kernel dropped datagrams before Ferry could read them",
                    metadata: [
                        "listener": "\(listener.address)",
                        "socket": "\(listener.loop)",
                        "kernel.drops.interval": "\(grown)",
                        "kernel.drops.total": "\(drops)",
                        "interval": "\(interval)",
                        "udp.receive_buffer.granted_bytes": "\(listener.receiveBufferBytes)",
                        "fix":
                            "raise the sysctl net.core.rmem_max and receive.buffer-bytes (FERRY_RECEIVE_BUFFER_BYTES), or add receive sockets (receive.sockets) so more cores read",
                    ])
            }
        }
    }

    /// Warns about, and counts, sockets that joined a listener's port since the last check.
    private func reportForeignReceivers(_ listeners: [ListenerSnapshot], of relay: Relay, seen: inout Set<UInt64>) {
        // Every socket of a listener sees the same port group: one report per listener.
        var reported = Set<String>()
        for listener in listeners where reported.insert(listener.listener).inserted {
            report(listener, of: relay, seen: &seen)
        }
    }

    private func report(_ listener: ListenerSnapshot, of relay: Relay, seen: inout Set<UInt64>) {
        let fresh = listener.foreignReceivers.filter { !seen.contains($0) }
        guard !fresh.isEmpty else { return }
        seen.formUnion(fresh)
        relay.foreignReceiversSeen.add(fresh.count)
        relay.logger.warning(
            "foreign receiver on the UDP port takes part of its traffic",
            metadata: [
                "listener": "\(listener.address)",
                "socket.inodes": "\(fresh.map(String.init).joined(separator: ","))",
                "foreign_receivers": "\(listener.foreignReceivers.count)",
                "fix": "another process bound this port with SO_REUSEPORT (a second Ferry?): stop it; see 'ss -ulpn sport = :\(listener.port)'",
            ])
    }
}
