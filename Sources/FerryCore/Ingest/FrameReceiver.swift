import Logging
import NIOCore

/// The `ferry://` receiving end of one event loop: validates each frame,
/// reserves its logs in the buffer once, and acknowledges it.
///
/// - With keys (`auth.key-file`), a frame not signed by one of them is
///   `unauthenticated` and dropped before anything else is looked at: no
///   dedupe mark, no ack (acks are signed with the first key).
/// - A frame that fails to decode, claims a first-send time more than
///   ``maximumClockSkewMilliseconds`` in the future, or a TTL over
///   ``maximumTTLMilliseconds``, is `malformed` (one log dropped).
/// - One past its TTL is `expired`: its sender has sent its logs elsewhere.
/// - A retransmission is acknowledged again, not delivered again (per-sender
///   dedupe windows in a bounded ``SenderWindows`` table, least recently used
///   evicted, failing safe).
/// - A frame is acknowledged only once its logs hold a place in the buffer (with
///   a spool: once they are appended to it, and synced under `spool.fsync:
///   always`); when there is none it is not, so the sender keeps it
///   (backpressure, not loss).
///
/// Acknowledgements of a burst are queued and sent together
/// (``sendAcknowledgements()``) from the loop's receive socket. Confined to its loop.
final class FrameReceiver {
    /// Senders remembered per loop.
    static let maximumSenders = 4096
    /// A frame may claim to have been first sent at most this far in our future (clock skew).
    static let maximumClockSkewMilliseconds: UInt64 = 60_000
    /// The longest TTL a frame may carry: `forward.frame-ttl`'s largest allowed value.
    static let maximumTTLMilliseconds: UInt32 = 3_600_000

    /// The receive socket of the burst being taken, which acknowledges its frames (nil once its intake stopped).
    var replySocket: ReceiveSocket?
    /// Whether a socket may still send (its intake has not stopped), for acknowledgements deferred to a sync.
    var openSockets: ((ReceiveSocket) -> Bool)?
    private let capacity: BufferCapacity
    private let spool: Spool?
    private let shardIndex: Int
    private let eventLoop: any EventLoop
    /// The highest spool sequence this burst's acknowledgements wait for (`spool.fsync: always`).
    private var awaitingSync: UInt64?
    /// What else they wait for: the routes' spools the pipeline appended the burst's logs to.
    private var awaitingMarks: [SpoolMark] = []
    /// Whether a frame's logs take room in the memory buffer here (false when
    /// each route's spool takes them, after this: ``awaitDurable(_:)``).
    private let reservesRoom: Bool
    private let counters: PipelineCounters
    private let maxRecordBytes: Int
    /// Verifies frames and signs acks (nil: unkeyed); follows reloads of the key files.
    private var keys: FrameKeyCache
    private let logger: Logger
    private var drops: DropReporter
    private var senders = SenderWindows(capacity: FrameReceiver.maximumSenders)
    /// Keeps `senders` in the spool across restarts (nil without a spool).
    private var dedupeJournal: DedupeJournal?
    /// A frame was marked since the last snapshot offered to the journal.
    private var sendersChanged = false
    private var lastOffered = NIODeadline.uptimeNanoseconds(0)
    private var offerScheduled = false
    /// Acknowledgements owed for the burst being taken.
    private var replies = ReplyQueue()
    /// Sequences owed to senders that read batched acks, by sender, in arrival
    /// order: one datagram each when the burst ends, not one per frame.
    private var batches: [BatchKey: [UInt32]] = [:]
    private var batchOrder: [BatchKey] = []

    private struct BatchKey: Hashable {
        let address: SocketAddress
        let senderID: UInt64
    }
    /// Trace ids of traced frames taken in this burst, for the pipeline to log where their logs went.
    private var traced: [TraceID] = []

    init(
        capacity: BufferCapacity, spool: Spool? = nil, shardIndex: Int = 0, eventLoop: any EventLoop, counters: PipelineCounters,
        maxRecordBytes: Int, loopIndex: Int, keys: FrameKeySource? = nil, reservesRoom: Bool = true, logger: Logger
    ) {
        self.keys = FrameKeyCache(keys)
        self.reservesRoom = reservesRoom
        self.capacity = capacity
        self.spool = spool
        self.shardIndex = shardIndex
        self.eventLoop = eventLoop
        self.counters = counters
        self.maxRecordBytes = maxRecordBytes
        self.logger = logger
        self.drops = DropReporter(counters: counters, logger: logger, loopIndex: loopIndex)
        self.dedupeJournal = spool?.dedupeJournal(shard: shardIndex, restoring: &senders)
    }

    /// The trace ids of traced frames taken since the last call.
    func takeTraced() -> [TraceID] {
        guard !traced.isEmpty else { return [] }
        defer { traced.removeAll(keepingCapacity: true) }
        return traced
    }

    /// Sends the acknowledgements queued since the last call: now, or (under
    /// `spool.fsync: always`) once the spool's next sync covers their logs, one
    /// sync for the whole burst.
    func sendAcknowledgements() {
        offerSenders()
        defer {
            batches.removeAll(keepingCapacity: true)
            batchOrder.removeAll(keepingCapacity: true)
        }
        guard let replySocket else { return }
        let signing = batchOrder.isEmpty ? nil : keys.ring()?.signing
        for key in batchOrder {
            let sequences = batches[key] ?? []
            for start in stride(from: 0, to: sequences.count, by: FrameCodec.maximumBatchedAcks) {
                let chunk = sequences[start..<min(start + FrameCodec.maximumBatchedAcks, sequences.count)]
                replies.append(to: key.address) { buffer in
                    FrameCodec.encodeBatchedAck(senderID: key.senderID, sequences: chunk, into: &buffer, key: signing)
                }
            }
        }
        var marks = awaitingMarks
        awaitingMarks.removeAll()
        if let through = awaitingSync, let spool { marks.append(SpoolMark(spool: spool, shard: shardIndex, through: through)) }
        awaitingSync = nil
        marks.removeAll { $0.spool.settings.sync != .always }
        guard !marks.isEmpty else {
            replies.flush(from: replySocket.descriptor)
            return
        }
        let loop = eventLoop
        let deferred = NIOLoopBoundBox(replies, eventLoop: loop)
        replies = ReplyQueue()
        let descriptor = replySocket.descriptor
        let bound = NIOLoopBound(self, eventLoop: loop)
        let left = Countdown(marks.count)
        for mark in marks {
            mark.spool.whenDurable(shard: mark.shard, through: mark.through) {
                guard left.finishOne() else { return }
                loop.execute {
                    guard let pipelineSockets = bound.value.openSockets, pipelineSockets(replySocket) else { return }
                    deferred.value.flush(from: descriptor)
                }
            }
        }
    }

    /// Offers the dedupe windows to the spool at most every
    /// ``DedupeJournal/interval``; marks made sooner are offered when it has passed.
    private func offerSenders() {
        guard sendersChanged, let dedupeJournal else { return }
        let now = NIODeadline.now()
        guard now - lastOffered >= DedupeJournal.interval else {
            guard !offerScheduled else { return }
            offerScheduled = true
            let bound = NIOLoopBound(self, eventLoop: eventLoop)
            eventLoop.scheduleTask(in: DedupeJournal.interval) {
                bound.value.offerScheduled = false
                bound.value.offerSenders()
            }
            return
        }
        sendersChanged = false
        lastOffered = now
        dedupeJournal.offer(senders)
    }

    /// Makes this burst's acknowledgements wait for `marks` too (each route's
    /// spool the logs went to, under `spool.fsync: always`).
    func awaitDurable(_ marks: [SpoolMark]) {
        awaitingMarks.append(contentsOf: marks)
    }

    /// Validates a `ferry://` frame, reserves its logs once, and acknowledges it.
    /// Returns the logs to forward (reserved), or nil when there are none.
    ///
    /// A frame is acknowledged only once its logs hold a place in this Ferry's
    /// buffer; when the buffer is full it is not acknowledged, so the sender
    /// keeps it and retries (backpressure instead of loss). Retransmissions are
    /// acknowledged again but not delivered again.
    func receive(_ datagram: ByteBuffer, from sender: SocketAddress) -> ([ByteBuffer], Int, SpoolSpans)? {
        let decoded: (header: FrameCodec.DataHeader, records: [ByteBuffer])
        do {
            decoded = try FrameCodec.decodeData(datagram, keys: keys.ring())
        } catch .unauthenticated(let reason) {
            counters.countReceived(.ferry, logs: 1, bytes: datagram.readableBytes)
            counters.countFrame(.unauthenticated)
            counters.unauthenticated[reason.rawValue].add(1)
            drops.drop(.unauthenticated, logs: 1, detail: datagram.readableBytes, error: "\(reason)", source: sender)
            return nil
        } catch {
            dropMalformed(datagram, error: "\(error)")
            return nil
        }
        let header = decoded.header
        let now = WallClock.milliseconds()
        if header.sentAtMilliseconds > now &+ Self.maximumClockSkewMilliseconds || header.ttlMilliseconds > Self.maximumTTLMilliseconds {
            // Claims to come from the future, or to stay deliverable for longer
            // than any Ferry sends: not a frame a sender made, so not trusted.
            dropMalformed(
                datagram,
                error: "sent \(Int64(bitPattern: header.sentAtMilliseconds &- now)) ms from now with TTL \(header.ttlMilliseconds) ms "
                    + "(allowed: up to \(Self.maximumClockSkewMilliseconds) ms ahead, TTL up to \(Self.maximumTTLMilliseconds) ms)")
            return nil
        }
        if now > header.sentAtMilliseconds, now - header.sentAtMilliseconds > UInt64(header.ttlMilliseconds) {
            // The sender has given up on this frame and sent its logs elsewhere.
            counters.countFrame(.expired)
            return nil
        }
        switch senders.check(sender: header.senderID, sequence: header.sequence, sentAt: header.sentAtMilliseconds) {
        case .duplicate:
            counters.countFrame(.duplicate)
            acknowledge(header, to: sender)
            logger.debug(
                "frame duplicate acknowledged",
                metadata: ["trace_id": "\(header.traceID)", "frame.sequence": "\(header.sequence)"])
            return nil
        case .tooOld:
            counters.countFrame(.stale)
            return nil
        case .new:
            break
        }
        // Counted first and filtered only when one is too long (rare): filtering
        // in place would copy the decoded array, still referenced, on every frame.
        var bytes = 0
        var oversize = 0
        for record in decoded.records {
            if record.readableBytes > maxRecordBytes {
                oversize += 1
            } else {
                bytes += record.readableBytes
            }
        }
        let accepted = oversize == 0 ? decoded.records : decoded.records.filter { $0.readableBytes <= maxRecordBytes }
        var spans = SpoolSpans()
        var inMemory = true
        if let spool, !accepted.isEmpty {
            let admission = spool.shards[shardIndex].admit(accepted, bytes: bytes, capacity: capacity, allOrNothing: true)
            guard let run = admission.run else {
                counters.countFrame(.rejectedFull)
                return nil
            }
            spans = SpoolSpans(run)
            inMemory = admission.inMemory
            if spool.settings.sync == .always { awaitingSync = max(awaitingSync ?? 0, run.end) }
        } else if reservesRoom, !accepted.isEmpty, !capacity.reserveAll(count: accepted.count, bytes: bytes) {
            counters.countFrame(.rejectedFull)
            return nil
        }
        let evictions = senders.evictions
        senders.mark(sender: header.senderID, sequence: header.sequence, sentAt: header.sentAtMilliseconds, now: now)
        sendersChanged = true
        if senders.evictions > evictions { counters.senderEvictions.add(1) }
        counters.countFrame(.accepted)
        counters.countReceived(.ferry, logs: decoded.records.count, bytes: bytes)
        counters.countPriorities(accepted)
        if oversize > 0 { drops.drop(.oversize, logs: oversize, detail: maxRecordBytes) }
        acknowledge(header, to: sender)
        if header.isTraced, !accepted.isEmpty { traced.append(header.traceID) }
        logger.log(
            level: header.isTraced ? .info : .debug,
            "frame received",
            metadata: [
                "trace_id": "\(header.traceID)", "frame.sender": "\(String(header.senderID, radix: 16))",
                "frame.sequence": "\(header.sequence)", "frame.records": "\(decoded.records.count)",
            ])
        // On disk only (the memory window is full): read back from the spool later.
        return accepted.isEmpty || !inMemory ? nil : (accepted, bytes, spans)
    }

    /// A frame that cannot be trusted: counted as one log received and dropped `malformed`.
    private func dropMalformed(_ datagram: ByteBuffer, error: String) {
        counters.countReceived(.ferry, logs: 1, bytes: datagram.readableBytes)
        counters.countFrame(.malformed)
        drops.drop(.malformed, logs: 1, detail: datagram.readableBytes, error: error)
    }

    private func acknowledge(_ header: FrameCodec.DataHeader, to sender: SocketAddress) {
        guard replySocket != nil else { return }
        if header.flags & FrameCodec.DataHeader.acceptsBatchedAcks != 0 {
            let key = BatchKey(address: sender, senderID: header.senderID)
            if batches[key] == nil { batchOrder.append(key) }
            batches[key, default: []].append(header.sequence)
            return
        }
        let signing = keys.ring()?.signing
        replies.append(to: sender) { buffer in
            FrameCodec.encodeAck(
                .init(senderID: header.senderID, sequence: header.sequence, traceID: header.traceID), into: &buffer, key: signing)
        }
    }
}
