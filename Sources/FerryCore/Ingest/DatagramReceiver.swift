import CFerrySystem
import Dispatch
import Logging
import NIOCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Reads one receive socket on a thread of its own, the way the C reference
/// relay does: a blocking `recvmmsg` of up to `receive.batch` datagrams into
/// preallocated slots, then the whole burst goes to the socket's loop pipeline
/// in one hop.
///
/// Why not NIO's `DatagramChannel`: it builds a `SocketAddress` (a heap box and
/// a formatted host string) for every datagram and sends each through the
/// channel pipeline on its own; profiles put that at a fifth of Ferry's CPU
/// per datagram. Here a datagram costs one slice of a reused buffer.
///
/// Bounded: at most ``slabCount`` bursts are on their way to the loop. When the
/// loop falls that far behind, the thread stops reading, datagrams wait in the
/// kernel's receive buffer, and what overflows it is counted by the kernel
/// (`ferry_kernel_receive_drops_total`), never lost unseen.
package final class DatagramReceiver: Sendable {
    /// Bursts that may wait for the loop at once (and receive buffers kept).
    static let slabCount = 8

    let socket: ReceiveSocket
    private let batch: Int
    /// `receive.coalesce` in microseconds (0: no pause).
    private let coalesceMicroseconds: UInt32
    private let slotBytes: Int
    let forwarding: Forwarding
    private let logger: Logger
    private let stopping = Atomic<Bool>(false)
    /// Bursts on their way to the loop, and the ordering rule of the direct route.
    private let handoff = BurstHandoff(capacity: DatagramReceiver.slabCount)
    private let thread = Mutex<NamedThread?>(nil)

    /// What the thread needs to count, sample and send on its own.
    package struct Forwarding: Sendable {
        /// The event loop (and lane) index of this socket.
        let loopIndex: Int
        /// Every upstream, in failover order.
        let upstreams: [Upstream]
        /// The route the loop's pipeline opens and closes.
        let route: DirectRoute
        /// The loop's counters (shared atomics).
        let counters: PipelineCounters
        /// `trace.sample-rate`.
        let sampleRate: Double
        /// The loop's spool shard: each burst is appended there before anything else.
        let spool: SpoolShard?
        /// The memory buffer an admission to the spool reserves room in.
        let capacity: BufferCapacity?
        /// The listener's allowlist and rate limit (nil: everything is let in).
        var gate: SourceGate? = nil
        /// The listener's name (`udp://HOST:PORT`), for warnings.
        var listener = ""
        /// The listener's position in `listen` (routes may match by listener).
        var listenerPosition = 0
        /// Whether each datagram's source address is kept for the routes (a
        /// `source` match, or `balance`): one flag for every listener, which a
        /// reload sets before it installs routes that need sources.
        var keepsSources = AtomicFlag(false)
        /// Datagrams (and their bytes) this socket read, oversize included: its listener's share.
        package let received = AtomicCounter()
        package let receivedBytes = AtomicCounter()

        package init(
            loopIndex: Int, upstreams: [Upstream], route: DirectRoute, counters: PipelineCounters, sampleRate: Double,
            spool: SpoolShard? = nil, capacity: BufferCapacity? = nil
        ) {
            self.spool = spool
            self.capacity = capacity
            self.loopIndex = loopIndex
            self.upstreams = upstreams
            self.route = route
            self.counters = counters
            self.sampleRate = sampleRate
        }
    }

    /// - Parameters:
    ///   - batch: datagrams per `recvmmsg` (`receive.batch`).
    ///   - maxDatagramBytes: slot size; a longer datagram is cut by the kernel, seen as such, and counted `oversize`.
    ///   - coalesce: pause after a read of less than half a batch (`receive.coalesce`; zero: none).
    init(socket: ReceiveSocket, batch: Int, maxDatagramBytes: Int, coalesce: Duration = .zero, forwarding: Forwarding, logger: Logger) {
        self.socket = socket
        self.batch = batch
        let (seconds, attoseconds) = coalesce.components
        self.coalesceMicroseconds = UInt32(clamping: seconds * 1_000_000 + attoseconds / 1_000_000_000_000)
        self.slotBytes = maxDatagramBytes
        self.forwarding = forwarding
        self.logger = logger
    }

    /// Starts the thread, which hands bursts to `deliver` on `eventLoop`: all
    /// that were read since the loop last took some, oldest first.
    func start(name: String, eventLoop: any EventLoop, deliver: NIOLoopBound<([ReceivedBurst]) -> Void>) throws {
        let started = try NamedThread(name: name) { [self] in run(eventLoop: eventLoop, deliver: deliver) }
        thread.withLock { $0 = started }
    }

    /// Stops reading and waits for the thread to end. Bursts already handed to
    /// the loop are still delivered there (the caller waits on the loop for them).
    func stop() {
        stopping.store(true, ordering: .releasing)
        socket.shutdownReads()
        handoff.wakeReceiver()
        thread.withLock { $0 }?.join()
    }

    // MARK: - The receive loop

    private func run(eventLoop: any EventLoop, deliver: NIOLoopBound<([ReceivedBurst]) -> Void>) {
        // One task per wake-up of the loop, not per burst: while the loop is
        // busy, bursts collect here and it takes them together. The task is
        // one closure made here, not one per hand-over (its context was a
        // quarter of the edge's mallocs at 100,000/s).
        let takeQueued: @Sendable () -> Void = { [handoff] in
            let (bursts, receiverWaiting) = handoff.takeAll()
            deliver.value(bursts)
            handoff.finished(bursts, receiverWaiting: receiverWaiting)
        }
        let loop = ReceiveLoop(
            socket: socket, batch: batch, maxDatagramBytes: slotBytes, slabs: Self.slabCount, forwarding: forwarding, logger: logger,
            loopCaughtUp: { [handoff] in handoff.loopCaughtUp },
            handOver: { [handoff] burst in
                guard handoff.handOver(burst) else { return }
                eventLoop.execute(takeQueued)
            })
        defer { loop.close() }
        while !stopping.load(ordering: .acquiring) {
            // The loop is behind: sleep until it has taken the queue (datagrams wait in the kernel meanwhile).
            if handoff.waitWhileFull() { continue }
            if !loop.step(), !stopping.load(ordering: .relaxed), loop.lastReadFailed {
                usleep(1_000)  // an unexpected error (logged): do not spin on it
            } else if coalesceMicroseconds > 0, loop.lastReceived > 0, loop.lastReceived < loop.readLimit / 2 {
                // A short read: the next would take little more per system call. Pausing lets datagrams collect in
                // the kernel's queue (bounded: the pause is at most 1 ms, the queue receive.buffer-bytes), so each
                // recvmmsg and sendmmsg moves more of them; 100 µs cut the CPU per datagram at 100,000/s by 0.85×.
                usleep(coalesceMicroseconds)
            }
        }
        // What the kernel queued before the stop is read too, not lost when the
        // socket closes (bounded: a flood cannot hold a stop or a reload).
        for _ in 0..<Self.maxBurstsReadAtStop {
            _ = handoff.waitWhileFull()
            guard loop.step(wait: false) else { break }
        }
    }

    /// Most bursts read from the kernel's queue after a stop.
    static let maxBurstsReadAtStop = 256
}
