import DequeModule
import Logging
import NIOCore

/// The part of the data path that one event loop owns: it takes the logs that
/// loop receives, reserves room for them in the shared ``BufferCapacity``, and
/// hands them in batches to the first upstream in failover order that can take
/// them. Logs no upstream can take wait here, in this loop's shard of the buffer.
///
/// Confined to its event loop: nothing in it is locked, and nothing per log
/// crosses a thread. A read burst is the unit of work: one reservation, one
/// upstream decision and one write-and-flush per burst.
package final class LoopPipeline {
    let index: Int
    let eventLoop: any EventLoop
    let counters: PipelineCounters
    private let capacity: BufferCapacity
    private let maxRecordBytes: Int
    private let logger: Logger
    private(set) var lanes: [any UpstreamLane] = []
    private var warnings = WarningLimiter(interval: .seconds(10))

    /// Logs of the current read burst, reserved at its end.
    private var burst: [ByteBuffer] = []
    /// Batches waiting for an upstream, oldest first.
    private var shard: Deque<RecordBatch> = []
    private var retryScheduled = false
    private let allocator = ByteBufferAllocator()

    /// Fraction of received logs that get a `log sampled` line, as a threshold on a 64-bit random draw.
    private let sampleThreshold: UInt64
    private var sampler = FastRandom()
    private var traceRandom = FastRandom()

    package init(
        index: Int, eventLoop: any EventLoop, capacity: BufferCapacity, maxRecordBytes: Int, receiveBatch: Int,
        sampleRate: Double = 0, logger: Logger
    ) {
        self.sampleThreshold = sampleRate >= 1 ? .max : UInt64(sampleRate * Double(UInt64.max))
        self.index = index
        self.eventLoop = eventLoop
        self.capacity = capacity
        self.counters = PipelineCounters()
        self.maxRecordBytes = maxRecordBytes
        self.logger = logger
        self.burst.reserveCapacity(receiveBatch * 4)
    }

    package func setLanes(_ lanes: [any UpstreamLane]) {
        self.lanes = lanes
    }

    /// Logs waiting in this loop's shard (not yet handed to an upstream).
    var waitingLogs: Int { shard.reduce(0) { $0 + $1.count } }

    // MARK: - Intake

    /// The receive socket of this loop, which acknowledges frames.
    var replyChannel: (any Channel)?
    /// Dedupe windows of the `ferry://` senders this loop has heard from.
    private var senders: [UInt64: DedupeWindow] = [:]
    private static let maximumSenders = 4096

    /// Takes one received datagram; it is reserved and forwarded at ``flush()``.
    @inline(__always)
    func receive(_ record: ByteBuffer, from sender: SocketAddress) {
        if FrameCodec.looksLikeFrame(record) {
            receiveFrame(record, from: sender)
            return
        }
        let length = record.readableBytes
        counters.countReceived(.udp, logs: 1, bytes: length)
        if sampleThreshold > 0, sampler.next() <= sampleThreshold { sample(record, transport: .udp) }
        guard length <= maxRecordBytes else {
            drop(.oversize, logs: 1, detail: length)
            return
        }
        burst.append(record)
    }

    /// Ends a read burst: reserves room for it, drops what does not fit as
    /// `queue_full` (the newest logs), and forwards the rest.
    func flush() {
        guard !burst.isEmpty else { return }
        let (count, bytes) = capacity.reservePrefix(of: burst) { $0.readableBytes }
        if count < burst.count {
            drop(.queueFull, logs: burst.count - count, detail: capacity.usedLogs)
            burst.removeLast(burst.count - count)
        }
        if count > 0 {
            dispatch(burst, bytes: bytes, receivedAt: .now())
        }
        burst.removeAll(keepingCapacity: true)
    }

    /// Result of offering a whole HTTP request's lines.
    enum BulkOutcome: Equatable {
        case accepted(Int)
        case bufferFull
    }

    /// Takes all of `records` (lines of one `POST /v1/logs`) or, when the buffer
    /// cannot hold them all, none of them.
    func receiveAll(_ records: [ByteBuffer], transport: Transport) -> BulkOutcome {
        var accepted: [ByteBuffer] = []
        accepted.reserveCapacity(records.count)
        var bytes = 0
        var oversize = 0
        for record in records {
            counters.countReceived(transport, logs: 1, bytes: record.readableBytes)
            if sampleThreshold > 0, sampler.next() <= sampleThreshold { sample(record, transport: transport) }
            if record.readableBytes > maxRecordBytes {
                oversize += 1
            } else {
                accepted.append(record)
                bytes += record.readableBytes
            }
        }
        if oversize > 0 { drop(.oversize, logs: oversize, detail: maxRecordBytes) }
        guard !accepted.isEmpty else { return .accepted(0) }
        guard capacity.reserveAll(count: accepted.count, bytes: bytes) else {
            drop(.queueFull, logs: accepted.count, detail: capacity.usedLogs)
            return .bufferFull
        }
        dispatch(accepted, bytes: bytes, receivedAt: .now())
        return .accepted(accepted.count)
    }

    // MARK: - Frames from other Ferry instances

    /// Validates a `ferry://` frame, delivers its logs once, and acknowledges it.
    ///
    /// A frame is acknowledged only once its logs hold a place in this Ferry's
    /// buffer; when the buffer is full it is not acknowledged, so the sender
    /// keeps it and retries (backpressure instead of loss). Retransmissions are
    /// acknowledged again but not delivered again.
    private func receiveFrame(_ datagram: ByteBuffer, from sender: SocketAddress) {
        let decoded: (header: FrameCodec.DataHeader, records: [ByteBuffer])
        do {
            decoded = try FrameCodec.decodeData(datagram)
        } catch {
            counters.countReceived(.ferry, logs: 1, bytes: datagram.readableBytes)
            counters.countFrame(.malformed)
            drop(.malformed, logs: 1, detail: datagram.readableBytes, error: "\(error)")
            return
        }
        let header = decoded.header
        let now = WallClock.milliseconds()
        if now > header.sentAtMilliseconds, now - header.sentAtMilliseconds > UInt64(header.ttlMilliseconds) {
            // The sender has given up on this frame and sent its logs elsewhere.
            counters.countFrame(.expired)
            return
        }
        switch senders[header.senderID]?.check(header.sequence) ?? .new {
        case .duplicate:
            counters.countFrame(.duplicate)
            acknowledge(header, to: sender)
            logger.debug(
                "frame duplicate acknowledged",
                metadata: ["trace_id": "\(header.traceID)", "frame.sequence": "\(header.sequence)"])
            return
        case .tooOld:
            counters.countFrame(.stale)
            return
        case .new:
            break
        }
        var accepted = decoded.records
        var bytes = 0
        var oversize = 0
        accepted.removeAll { record in
            if record.readableBytes > maxRecordBytes {
                oversize += 1
                return true
            }
            bytes += record.readableBytes
            return false
        }
        guard accepted.isEmpty || capacity.reserveAll(count: accepted.count, bytes: bytes) else {
            counters.countFrame(.rejectedFull)
            return
        }
        if senders[header.senderID] == nil, senders.count >= Self.maximumSenders {
            senders.remove(at: senders.startIndex)
        }
        senders[header.senderID, default: DedupeWindow()].mark(header.sequence)
        counters.countFrame(.accepted)
        counters.countReceived(.ferry, logs: decoded.records.count, bytes: bytes)
        if oversize > 0 { drop(.oversize, logs: oversize, detail: maxRecordBytes) }
        if !accepted.isEmpty { dispatch(accepted, bytes: bytes, receivedAt: .now()) }
        acknowledge(header, to: sender)
        logger.debug(
            "frame received",
            metadata: [
                "trace_id": "\(header.traceID)", "frame.sender": "\(String(header.senderID, radix: 16))",
                "frame.sequence": "\(header.sequence)", "frame.records": "\(decoded.records.count)",
            ])
    }

    private func acknowledge(_ header: FrameCodec.DataHeader, to sender: SocketAddress) {
        guard let replyChannel else { return }
        var ack = allocator.buffer(capacity: FrameCodec.ackBytes)
        FrameCodec.encodeAck(.init(senderID: header.senderID, sequence: header.sequence, traceID: header.traceID), into: &ack)
        replyChannel.write(AddressedEnvelope(remoteAddress: sender, data: ack), promise: nil)
    }

    // MARK: - Forwarding

    /// Sends reserved records now if nothing is waiting ahead of them and an
    /// upstream can take them; otherwise queues a copy behind the waiting ones.
    private func dispatch(_ records: [ByteBuffer], bytes: Int, receivedAt: NIODeadline) {
        if shard.isEmpty, let lane = firstAvailableLane() {
            lane.send(records, bytes: bytes, receivedAt: receivedAt)
            return
        }
        shard.append(RecordBatch(copying: records, bytes: bytes, receivedAt: receivedAt, allocator: allocator))
        drainShard()
    }

    /// Moves waiting batches to upstreams, oldest first, for as long as one can take them.
    func drainShard() {
        // Bounded: a lane may hand part of a batch back (to the front), which
        // is then tried on the next round rather than in a loop here.
        var remaining = shard.count
        while remaining > 0, let batch = shard.first {
            guard let lane = firstAvailableLane() else {
                scheduleRetry()
                return
            }
            remaining -= 1
            shard.removeFirst()
            lane.send(batch.records, bytes: batch.bytes, receivedAt: batch.receivedAt)
        }
        if !shard.isEmpty { scheduleRetry() }
    }

    /// Takes back logs an upstream could not send or gave up on. They keep
    /// their reservation and go to the front of this loop's shard, from where
    /// they fail over to the next upstream that can take them, or wait.
    func returnToBuffer(_ records: [ByteBuffer], bytes: Int, receivedAt: NIODeadline) {
        guard !records.isEmpty else { return }
        shard.prepend(RecordBatch(copying: records, bytes: bytes, receivedAt: receivedAt, allocator: allocator))
        scheduleRetry()
    }

    /// Index of the upstream this loop sent to last, to log changes once.
    private var currentUpstream = 0

    @inline(__always)
    private func firstAvailableLane() -> (any UpstreamLane)? {
        for (position, lane) in lanes.enumerated() where lane.canAccept {
            if position != currentUpstream { noteFailover(from: currentUpstream, to: position) }
            return lane
        }
        return nil
    }

    /// Logs a move of this loop's traffic to another upstream (one line per change).
    private func noteFailover(from old: Int, to new: Int) {
        let previous = lanes[old].upstream
        let next = lanes[new].upstream
        currentUpstream = new
        if new > old { previous.failovers.add(1) }
        logger.notice(
            new > old ? "upstream failover" : "upstream failback",
            metadata: [
                "upstream.from": "\(previous.url)",
                "upstream.to": "\(next.url)",
                "reason": "\(new > old ? "\(previous.url) cannot take traffic (breaker \(previous.breakerState.rawValue))" : "\(next.url) can take traffic again")",
                "loop": "\(index)",
            ])
    }

    private func scheduleRetry() {
        guard !retryScheduled else { return }
        retryScheduled = true
        eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(20)) {
            self.retryScheduled = false
            self.drainShard()
        }
    }

    /// Logs one received log (sampled), with the trace id the log carries itself, if any.
    private func sample(_ record: ByteBuffer, transport: Transport) {
        var metadata: Logger.Metadata = [
            "record.bytes": "\(record.readableBytes)", "record.transport": "\(transport)", "loop": "\(index)",
        ]
        if let traceID = RecordTraceID.extract(from: record) { metadata["record.trace_id"] = "\(traceID)" }
        logger.info("log sampled", metadata: metadata)
    }

    private func drop(_ reason: DropReason, logs: Int, detail: Int, error: String? = nil) {
        counters.countDropped(reason, logs: logs)
        if let suppressed = warnings.shouldLog(key: reason.rawValue) {
            var metadata: Logger.Metadata = [
                "drop.reason": "\(reason)",
                "drop.logs": "\(logs)",
                "drop.detail": "\(detail)",
                "loop": "\(index)",
                "warnings.suppressed": "\(suppressed)",
            ]
            if let error { metadata["error"] = "\(error)" }
            // The dropped batch's own trace id, so its line can be followed like a frame's.
            metadata["trace_id"] = "\(TraceID.random(using: &traceRandom))"
            logger.warning("logs dropped", metadata: metadata)
        }
    }
}
