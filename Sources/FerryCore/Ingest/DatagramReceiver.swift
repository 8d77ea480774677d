import CFerrySystem
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
final class DatagramReceiver: Sendable {
    /// Bursts that may wait for the loop at once (and receive buffers kept).
    static let slabCount = 8

    let socket: ReceiveSocket
    private let batch: Int
    private let slotBytes: Int
    private let forwarding: Forwarding
    private let logger: Logger
    private let stopping = Atomic<Bool>(false)
    /// Bursts read but not yet taken by the loop.
    private let handoff = Mutex<Handoff>(Handoff())

    private struct Handoff: Sendable {
        var bursts: [ReceivedBurst] = []
        /// A task to take them is on its way to the loop.
        var scheduled = false
    }
    private let thread = Mutex<pthread_t?>(nil)

    /// What the thread needs to count, sample and send on its own.
    struct Forwarding: Sendable {
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
    }

    /// - Parameters:
    ///   - batch: datagrams per `recvmmsg` (`receive.batch`).
    ///   - maxDatagramBytes: slot size; a longer datagram is cut by the kernel, seen as such, and counted `oversize`.
    init(socket: ReceiveSocket, batch: Int, maxDatagramBytes: Int, forwarding: Forwarding, logger: Logger) {
        self.socket = socket
        self.batch = batch
        self.slotBytes = maxDatagramBytes
        self.forwarding = forwarding
        self.logger = logger
    }

    /// Starts the thread, which hands bursts to `deliver` on `eventLoop`: all
    /// that were read since the loop last took some, oldest first.
    func start(name: String, eventLoop: any EventLoop, deliver: NIOLoopBound<([ReceivedBurst]) -> Void>) throws {
        let body = ThreadBody { [self] in
            cferry_name_this_thread(name)
            self.run(eventLoop: eventLoop, deliver: deliver)
        }
        var created = pthread_t()
        let box = Unmanaged.passRetained(body).toOpaque()
        let result = pthread_create(&created, nil, { argument in
            let body = Unmanaged<ThreadBody>.fromOpaque(argument!).takeRetainedValue()
            body.run()
            return nil
        }, box)
        guard result == 0 else {
            Unmanaged<ThreadBody>.fromOpaque(box).release()
            throw ReceiveSocketError.systemCall("pthread_create", result)
        }
        thread.withLock { $0 = created }
    }

    /// Stops reading and waits for the thread to end. Bursts already handed to
    /// the loop are still delivered there (the caller waits on the loop for them).
    func stop() {
        stopping.store(true, ordering: .releasing)
        socket.shutdownReads()
        if let running = thread.withLock({ value -> pthread_t? in defer { value = nil }; return value }) {
            pthread_join(running, nil)
        }
    }

    // MARK: - The receive loop

    private func run(eventLoop: any EventLoop, deliver: NIOLoopBound<([ReceivedBurst]) -> Void>) {
        let slabs = (0..<Self.slabCount).map { _ in ReceiveSlab(count: batch, slotBytes: slotBytes) }
        let upstreams = forwarding.upstreams
        let loopIndex = forwarding.loopIndex
        let senders: [DirectUDPSender?] = upstreams.map { upstream in
            guard case .udp = upstream.url else { return nil }
            return DirectUDPSender(upstream: upstream, batch: batch, logger: logger)
        }
        defer { senders.forEach { $0?.close() } }
        var drops = DropReporter(counters: forwarding.counters, logger: logger, loopIndex: loopIndex)
        var sampler = LogSampler(rate: forwarding.sampleRate, logger: logger, loopIndex: loopIndex)
        var warnings = WarningLimiter(interval: .seconds(10))
        var next = 0

        // One task per wake-up of the loop, not per burst: while the loop is
        // busy, bursts collect here and it takes them together.
        func handOver(_ burst: ReceivedBurst) {
            let schedule = handoff.withLock { handoff in
                handoff.bursts.append(burst)
                defer { handoff.scheduled = true }
                return !handoff.scheduled
            }
            guard schedule else { return }
            eventLoop.execute { [self] in
                let bursts = handoff.withLock { handoff in
                    handoff.scheduled = false
                    defer { handoff.bursts.removeAll(keepingCapacity: true) }
                    return handoff.bursts
                }
                deliver.value(bursts)
            }
        }

        while !stopping.load(ordering: .acquiring) {
            if handoff.withLock({ $0.bursts.count }) >= Self.slabCount {
                // The loop is behind: let it catch up (datagrams wait in the kernel meanwhile).
                usleep(50)
                continue
            }
            let slab = slabs[next]
            let received = slab.receive(from: socket.descriptor)
            guard received > 0 else {
                let code = errno
                if received < 0, code != EAGAIN, code != EWOULDBLOCK, code != EINTR, !stopping.load(ordering: .relaxed) {
                    if let suppressed = warnings.shouldLog(key: Int(code)) {
                        logger.warning(
                            "receive failed",
                            metadata: [
                                "error": "\(ReceiveSocketError.systemCall("recvmmsg", code))",
                                "udp.address": "\(socket.localAddress.hostAndPort)", "warnings.suppressed": "\(suppressed)",
                            ])
                    }
                    usleep(1_000)
                }
                continue
            }
            next = (next + 1) % slabs.count
            var burst = slab.burst(count: Int(received))

            // Counted here, once, whichever way the logs go on.
            if !burst.oversize.isEmpty {
                forwarding.counters.countReceived(.udp, logs: burst.oversize.count, bytes: burst.oversize.reduce(0, +))
                drops.drop(.oversize, logs: burst.oversize.count, detail: burst.oversize.max() ?? 0)
            }
            if !burst.records.isEmpty {
                forwarding.counters.countReceived(.udp, logs: burst.records.count, bytes: burst.recordBytes)
                sampler.consider(burst.records, transport: .udp)
            }

            // A burst with frames goes to the loop whole, to keep its order.
            if !burst.records.isEmpty, burst.frames.isEmpty, let sender = directSender(senders, loopIndex: loopIndex) {
                let sent = sender.send(burst.records, bytes: burst.recordBytes, receivedAt: burst.receivedAt)
                if sent == burst.records.count {
                    burst.records = []
                } else {
                    burst.records.removeFirst(sent)
                    burst.recordBytes = burst.records.reduce(0) { $0 + $1.readableBytes }
                    burst.failedDirectSend = true
                }
            }
            if !burst.records.isEmpty || !burst.frames.isEmpty {
                handOver(burst)
            }
        }
    }

    /// The direct route's sender, if the route is open and still good: the
    /// loop's lane to it is connected, its breaker is closed, and no upstream
    /// ahead of it in the failover order can take traffic again (the loop
    /// decides a failback).
    private func directSender(_ senders: [DirectUDPSender?], loopIndex: Int) -> DirectUDPSender? {
        guard let position = forwarding.route.upstream, let sender = senders[position] else { return nil }
        let upstream = sender.upstream
        guard upstream.isLaneAvailable(loopIndex), upstream.isBreakerClosed else { return nil }
        for earlier in forwarding.upstreams[..<position] where earlier.isLaneAvailable(loopIndex) && earlier.allowsTraffic() {
            return nil
        }
        return sender
    }
}

/// The closure a receive thread runs.
private final class ThreadBody: Sendable {
    let run: @Sendable () -> Void

    init(_ run: @escaping @Sendable () -> Void) {
        self.run = run
    }
}

/// One reusable receive buffer with its `recvmmsg` bookkeeping: `count` slots
/// of `slotBytes`, and the message headers and sender addresses that go with them.
///
/// Only the receive thread touches a slab. The slices handed to the pipeline
/// share its buffer; should any still be alive (a batch waiting on a socket)
/// when the slab comes round again, `clear()` gives the slab fresh storage
/// and leaves the old one to those slices, so data is never overwritten.
private final class ReceiveSlab {
    private var buffer: ByteBuffer
    private let count: Int
    private let slotBytes: Int
    private let messages: UnsafeMutablePointer<cferry_mmsghdr>
    private let vectors: UnsafeMutablePointer<iovec>
    private let senders: UnsafeMutablePointer<sockaddr_storage>
    /// The buffer storage the message headers point into.
    private var preparedBase: UnsafeMutableRawPointer?
    /// Datagrams the last `receive` delivered (their headers need resetting).
    private var lastReceived = 0
    /// The last burst's records, kept to reuse the array's storage.
    private var records: [ByteBuffer] = []

    init(count: Int, slotBytes: Int) {
        self.count = count
        self.slotBytes = slotBytes
        self.buffer = ByteBufferAllocator().buffer(capacity: count * slotBytes)
        self.messages = .allocate(capacity: count)
        self.vectors = .allocate(capacity: count)
        self.senders = .allocate(capacity: count)
        records.reserveCapacity(count)
        messages.initialize(repeating: cferry_mmsghdr(), count: count)
        vectors.initialize(repeating: iovec(), count: count)
        senders.initialize(repeating: sockaddr_storage(), count: count)
    }

    deinit {
        messages.deallocate()
        vectors.deallocate()
        senders.deallocate()
    }

    /// One `recvmmsg`: blocks for the first datagram, then takes what is queued,
    /// up to `count`. Returns the number read, or -1 with `errno` set.
    func receive(from descriptor: CInt) -> CInt {
        // Let go of the last burst's slices first, so the buffer is usually ours alone again.
        records.removeAll(keepingCapacity: true)
        buffer.clear()
        let received = buffer.withUnsafeMutableWritableBytes { storage -> CInt in
            let base = storage.baseAddress!
            if base != preparedBase {
                // New storage (first use, or the old one is still held by slices): point every slot at it.
                for index in 0..<count {
                    vectors[index] = iovec(iov_base: base + index * slotBytes, iov_len: slotBytes)
                    messages[index].msg_hdr = msghdr(
                        msg_name: UnsafeMutableRawPointer(senders + index), msg_namelen: socklen_t(MemoryLayout<sockaddr_storage>.size),
                        msg_iov: vectors + index, msg_iovlen: 1, msg_control: nil, msg_controllen: 0, msg_flags: 0)
                }
                preparedBase = base
            } else {
                // The kernel only wrote to the headers of what it delivered last time.
                for index in 0..<lastReceived {
                    messages[index].msg_hdr.msg_namelen = socklen_t(MemoryLayout<sockaddr_storage>.size)
                    messages[index].msg_hdr.msg_flags = 0
                }
            }
            // MSG_TRUNC: msg_len is a datagram's real length even when it was cut to fit its slot.
            return cferry_recvmmsg(descriptor, messages, UInt32(count), cferry_msg_waitforone() | CInt(MSG_TRUNC))
        }
        lastReceived = Int(max(received, 0))
        if received > 0 { buffer.moveWriterIndex(to: Int(received) * slotBytes) }
        return received
    }

    /// Sorts the datagrams of the last `receive` into logs, frames and oversize ones.
    func burst(count received: Int) -> ReceivedBurst {
        var burst = ReceivedBurst(receivedAt: .now())
        var recordBytes = 0
        for index in 0..<received where messages[index].msg_hdr.msg_namelen > 0 {
            // No sender address: not a datagram but the end-of-stream a read
            // returns once the socket is shut down for stopping.
            let length = Int(messages[index].msg_len)
            let cut = messages[index].msg_hdr.msg_flags & CInt(MSG_TRUNC) != 0
            if cut || length > slotBytes {
                burst.oversize.append(length)
                continue
            }
            let datagram = buffer.getSlice(at: index * slotBytes, length: length)!
            if FrameCodec.looksLikeFrame(datagram), let sender = SocketAddress(storage: senders[index]) {
                burst.frames.append(ReceivedFrame(datagram: datagram, sender: sender, position: records.count))
            } else {
                records.append(datagram)
                recordBytes += length
            }
        }
        burst.records = records
        burst.recordBytes = recordBytes
        return burst
    }
}
