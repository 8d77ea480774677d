import Logging
import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// What a receive thread does with one burst, one ``step()`` at a time: read
/// it, count it, send it directly when the route is open, or hand it over.
///
/// Confined to its thread (``DatagramReceiver`` runs it; the benchmarks drive
/// it directly). In steady state on the direct route a step allocates nothing:
/// the slabs, their headers, the records array and the send headers are reused.
package final class ReceiveLoop {
    private let socket: ReceiveSocket
    private let forwarding: DatagramReceiver.Forwarding
    private let logger: Logger
    private let slabs: [ReceiveSlab]
    private let senders: [UDPSender?]
    private let handOver: (ReceivedBurst) -> Void
    /// Whether the loop has forwarded every burst handed to it; until it has,
    /// later bursts follow them there, so that logs keep their order.
    private let loopCaughtUp: () -> Bool
    private var drops: DropReporter
    private var sampler: LogSampler
    private var warnings = WarningLimiter(interval: .seconds(10))
    private var next = 0
    /// The last read failed with an unexpected error (not a timeout or a stop).
    private(set) var lastReadFailed = false
    /// Datagrams the last read returned (0 when it failed).
    private(set) var lastReceived = 0
    /// Datagrams the next read may take: `receive.batch`, or fewer after a
    /// read that found `ferry://` frames, and for the first read, which cannot
    /// know yet (``frameReadLimit``).
    private(set) var readLimit: Int
    private let batch: Int
    /// Datagrams a read takes while frames arrive: about 512 KiB of slots. A
    /// frame fills its slot (up to 65,507 bytes on loopback, thousands of
    /// logs), so 64 of them would touch 4 MiB of each slab, 32 MiB of resident
    /// memory per socket across the slabs, for no gain: 8 full frames already
    /// bring thousands of logs per system call. Syslog datagrams touch a page of
    /// their slot each, so reads of them keep the whole batch.
    let frameReadLimit: Int

    /// - Parameters:
    ///   - batch: datagrams per `recvmmsg` (`receive.batch`).
    ///   - maxDatagramBytes: slot size; a longer datagram is cut by the kernel, seen as such, and counted `oversize`.
    ///   - slabs: receive buffers used in turn (as many as bursts may wait for the loop).
    ///   - handOver: takes a burst the thread does not send itself (to the event loop).
    package init(
        socket: ReceiveSocket, batch: Int, maxDatagramBytes: Int, slabs: Int, forwarding: DatagramReceiver.Forwarding, logger: Logger,
        loopCaughtUp: @escaping () -> Bool = { true },
        handOver: @escaping (ReceivedBurst) -> Void
    ) {
        self.loopCaughtUp = loopCaughtUp
        self.socket = socket
        self.forwarding = forwarding
        self.logger = logger
        self.handOver = handOver
        self.slabs = (0..<slabs).map { _ in ReceiveSlab(count: batch, slotBytes: maxDatagramBytes) }
        self.batch = batch
        self.frameReadLimit = min(batch, max(4, (512 << 10) / max(maxDatagramBytes, 1)))
        self.readLimit = frameReadLimit
        self.senders = forwarding.upstreams.map { upstream in
            guard case .udp = upstream.url else { return nil }
            return UDPSender(upstream: upstream, batch: batch, logger: logger)
        }
        self.drops = DropReporter(counters: forwarding.counters, logger: logger, loopIndex: forwarding.loopIndex)
        self.sampler = LogSampler(rate: forwarding.sampleRate, logger: logger, loopIndex: forwarding.loopIndex)
    }

    /// Closes the direct route's sockets (the thread is ending).
    package func close() {
        for sender in senders { sender?.close() }
    }

    /// Reads one burst (blocking for its first datagram, up to the socket's
    /// wake interval, unless `wait` is false) and forwards it. Returns false
    /// when nothing was read.
    @discardableResult
    package func step(wait: Bool = true) -> Bool {
        let slab = slabs[next]
        let received = slab.receive(from: socket.descriptor, wait: wait, limit: readLimit)
        lastReceived = max(Int(received), 0)
        guard received > 0 else {
            if wait || received == 0 || (errno != EAGAIN && errno != EWOULDBLOCK) { noteReadFailure(received < 0 ? errno : 0) }
            return false
        }
        lastReadFailed = false
        var burst = slab.burst(count: Int(received), gate: forwarding.gate, keepSources: forwarding.keepsSources.load)
        burst.listener = forwarding.listenerPosition
        if let source = burst.deniedSource { drops.refuse(.denied, logs: burst.denied, source: source, listener: forwarding.listener) }
        if let source = burst.rateLimitedSource {
            drops.refuse(.rateLimited, logs: burst.rateLimited, source: source, listener: forwarding.listener)
        }
        if !burst.frames.isEmpty { burst.replySocket = socket }  // acknowledged from the socket they came to
        readLimit = burst.frames.isEmpty ? batch : frameReadLimit

        // Counted here, once, whichever way the logs go on.
        if !burst.oversize.isEmpty {
            forwarding.counters.countReceived(.udp, logs: burst.oversize.count, bytes: burst.oversize.reduce(0, +))
            drops.drop(.oversize, logs: burst.oversize.count, detail: burst.oversize.max() ?? 0)
        }
        forwarding.received.add(Int(received))
        if !burst.records.isEmpty {
            forwarding.receivedBytes.add(burst.recordBytes)
            forwarding.counters.countReceived(.udp, logs: burst.records.count, bytes: burst.recordBytes)
            forwarding.counters.countPriorities(burst.records)
            sampler.consider(burst.records, transport: .udp)
        }

        // With a spool, what was read is on disk before it goes anywhere.
        if let spool = forwarding.spool, let capacity = forwarding.capacity, !burst.records.isEmpty { admit(&burst, to: spool, capacity: capacity) }

        // A burst with frames goes to the loop whole, to keep its order.
        if !burst.records.isEmpty, burst.frames.isEmpty, let sender = directSender() {
            let sent = sender.send(burst.records, bytes: burst.recordBytes, receivedAt: burst.receivedAt)
            if !burst.spans.isEmpty, sent.logs > 0 {
                // Delivered: out of the memory buffer, and done in the spool.
                forwarding.capacity?.release(count: sent.logs, bytes: sent.bytes)
                forwarding.spool?.settle(burst.spans.prefix(sent.logs).runs)
            }
            if sent.logs == burst.records.count {
                burst.records = []
                burst.spans = SpoolSpans()
            } else {
                burst.records.removeFirst(sent.logs)
                burst.recordBytes -= sent.bytes
                burst.spans = burst.spans.dropFirst(sent.logs)
                burst.failedDirectSend = true
            }
        }
        if !burst.records.isEmpty || !burst.frames.isEmpty {
            handOver(burst)
            // The loop holds slices of this slab now: read the next burst into another.
            next = (next + 1) % slabs.count
        }
        // Otherwise the burst is gone and the same slab is read into again, as
        // the C relay does: its pages and headers stay hot in the cache.
        return true
    }

    /// Appends the burst's logs to the spool (and reserves memory for them if
    /// the window has room). Logs the spool refuses are dropped, counted; logs
    /// on disk only leave the burst (the loop reads them back).
    private func admit(_ burst: inout ReceivedBurst, to spool: SpoolShard, capacity: BufferCapacity) {
        let admission = spool.admit(burst.records, bytes: burst.recordBytes, capacity: capacity, allOrNothing: false)
        drops.dropRefused(admission, by: spool)
        let taken = admission.run?.count ?? 0
        if admission.inMemory, taken == burst.records.count {
            burst.spans = SpoolSpans(admission.run)
            return
        }
        let keep = admission.inMemory ? taken : 0
        // Refused logs are gone; on-disk-only logs wait there: neither stays in the burst.
        burst.recordBytes = burst.records.prefix(keep).reduce(0) { $0 + $1.readableBytes }
        burst.records.removeLast(burst.records.count - keep)
        burst.spans = admission.inMemory ? SpoolSpans(admission.run) : SpoolSpans()
        for index in burst.frames.indices { burst.frames[index].position = min(burst.frames[index].position, keep) }
    }

    /// The direct route's sender, if the route is open and still good: no
    /// earlier burst is still on its way through the loop (frames, say), the
    /// loop's lane to it is connected, its breaker is closed, and no upstream
    /// ahead of it in the failover order can take traffic again (the loop
    /// decides a failback).
    private func directSender() -> UDPSender? {
        // The loop's count first (acquiring): a route it closed while forwarding those bursts is then seen closed.
        // An upstream a reload added has no sender here (ids past the start's): its bursts go through the loop.
        guard loopCaughtUp(), let position = forwarding.route.upstream, position < senders.count, let sender = senders[position] else { return nil }
        let upstream = sender.upstream
        let loopIndex = forwarding.loopIndex
        guard upstream.isLaneAvailable(loopIndex), upstream.isBreakerClosed else { return nil }
        for earlier in forwarding.upstreams[..<position] where earlier.isLaneAvailable(loopIndex) && earlier.allowsTraffic() {
            return nil
        }
        return sender
    }

    /// A timeout (the wake interval passed), a stop (end of stream) or an
    /// interruption is normal; anything else is logged, rate-limited.
    private func noteReadFailure(_ code: CInt) {
        lastReadFailed = code != 0 && code != EAGAIN && code != EWOULDBLOCK && code != EINTR
        guard lastReadFailed, let suppressed = warnings.shouldLog(key: Int(code)) else { return }
        logger.warning(
            "receive failed",
            metadata: [
                "error": "\(ReceiveSocketError.systemCall("recvmmsg", code))",
                "udp.address": "\(socket.localAddress.hostAndPort)", "warnings.suppressed": "\(suppressed)",
            ])
    }
}
