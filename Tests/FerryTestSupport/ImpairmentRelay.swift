import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A UDP relay that loses, duplicates, reorders, delays, corrupts and
/// partitions the datagrams it forwards, per direction, from a fixed seed.
///
/// This machine's kernel has no `netem`, so the multi-host tests put this
/// between an edge and its upstream: the edge sends to ``endpoint``, the relay
/// forwards to `target`. Like a NAT, each client source address and port gets
/// a server-facing socket of its own (a flow), so replies (acks) go back to the
/// port they answer, and a client that changes its source port is a new flow.
/// Payloads are forwarded, not packets: flipped bits reach the receiver with a
/// valid UDP checksum (the kernel computes it over the changed payload).
///
/// One thread with `poll`, `recvfrom` and `sendto` does all the work; held
/// datagrams wait in a queue ordered by due time. Each direction draws from a
/// generator of its own seeded from ``seed``, so the choices made for the n-th
/// data datagram are the same in every run (which datagrams are the n-th
/// depends on the peers' timing: a replay repeats the faults, not the exact run).
public final class ImpairmentRelay: Sendable {
    /// The run's seed: print it with every failure (``description`` does).
    public let seed: UInt64
    /// Where clients send (the client-facing socket).
    public let endpoint: IPv4Endpoint
    /// Where datagrams are forwarded.
    public let target: IPv4Endpoint

    private let shared: RelayShared
    private let wake: (read: CInt, write: CInt)
    private let finished = DispatchSemaphore(value: 0)

    /// Starts a relay on `listen` (port 0: any free port) forwarding to `target`.
    /// - Parameters:
    ///   - source: the address server-facing sockets bind (the relay's address on the server's link); any when nil.
    ///   - partitions: partitions relative to now (the relay's start).
    public init(
        listen: IPv4Endpoint, to target: IPv4Endpoint, source: String? = nil, data: Impairment = .none, acks: Impairment = .none,
        partitions: [ScheduledPartition] = [], seed: UInt64
    ) throws {
        self.seed = seed
        self.target = target
        let (fd, bound) = try PlainSocket.bound(Int32(SOCK_DGRAM.rawValue), to: listen)
        endpoint = bound
        let start = PlainSocket.now()
        shared = RelayShared(
            RelayShared.Control(
                impairments: [data, acks],
                partitions: partitions.map { (start + $0.start.nanoseconds, start + $0.end.nanoseconds, $0.scope) }))
        wake = PlainSocket.wakePipe()
        let loop = RelayLoop(
            shared: shared, clientSocket: fd, wake: wake.read, source: IPv4Endpoint(host: source ?? "0.0.0.0", port: 0), target: target,
            seed: seed)
        let thread = Thread { [finished] in
            loop.run()
            finished.signal()
        }
        thread.name = "impairment-relay"
        thread.start()
    }

    deinit { stop() }

    /// Stops the thread and closes every socket (idempotent).
    public func stop() {
        let first = shared.control.withLock { control -> Bool in
            defer { control.stopping = true }
            return !control.stopping
        }
        guard first else { return }
        wakeUp()
        finished.wait()
        close(wake.read)
        close(wake.write)
    }

    /// Changes what happens to `direction` from now on.
    public func set(_ impairment: Impairment, for direction: RelayDirection) {
        shared.control.withLock { $0.impairments[direction.rawValue] = impairment }
        wakeUp()
    }

    /// Drops everything in `scope` from now for `length`.
    public func partition(_ scope: PartitionScope = .both, for length: Duration) {
        schedule([ScheduledPartition(at: .zero, for: length, scope)])
    }

    /// Adds partitions at times relative to now.
    public func schedule(_ partitions: [ScheduledPartition]) {
        let now = PlainSocket.now()
        shared.control.withLock { control in
            control.partitions += partitions.map { (now + $0.start.nanoseconds, now + $0.end.nanoseconds, $0.scope) }
        }
        wakeUp()
    }

    /// Ends every partition now, and cancels those still to come.
    public func heal() {
        let now = PlainSocket.now()
        shared.control.withLock { control in
            control.partitions = control.partitions.compactMap { $0.start >= now ? nil : (min($0.start, now), now, $0.scope) }
        }
        wakeUp()
    }

    /// What the relay did in `direction` so far.
    public func counters(_ direction: RelayDirection) -> ImpairmentCounters {
        shared.published.withLock { $0.counters[direction.rawValue] }
    }

    /// Client flows seen (distinct client address and port).
    public var flows: Int { shared.published.withLock { $0.flows } }

    /// Datagrams held for later (delayed or reordered) and not yet sent.
    public var holding: Int { shared.published.withLock { $0.holding } }

    /// The seed (and how to replay it) and both directions' counters: for failure messages.
    public var description: String {
        "relay seed \(seed) (replay: FERRY_TEST_SEED=\(seed)); data: \(counters(.data)); acks: \(counters(.acks)); flows: \(flows)"
    }

    private func wakeUp() {
        var byte: UInt8 = 1
        _ = write(wake.write, &byte, 1)
    }
}

/// What the relay's owner and its thread share: settings in, counters out.
final class RelayShared: Sendable {
    struct Control {
        var impairments: [Impairment]
        /// Partitions as monotonic nanosecond windows.
        var partitions: [(start: UInt64, end: UInt64, scope: PartitionScope)]
        var stopping = false
    }

    let control: Mutex<Control>
    let published = Mutex<(counters: [ImpairmentCounters], flows: Int, holding: Int)>(([ImpairmentCounters(), ImpairmentCounters()], 0, 0))

    init(_ control: Control) { self.control = Mutex(control) }
}
