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
    let capacity: BufferCapacity
    /// The disk spool, if `spool.dir` is set: every log is admitted to it first.
    let spool: Spool?
    /// This loop's shard of the spool (it appends there).
    var spoolShard: SpoolShard? { spool?.shards[index] }
    /// Shards this loop reads spilled logs back from: its own, and those of
    /// loops an earlier run had beyond this run's count.
    let readShards: [SpoolShard]
    let maxRecordBytes: Int
    private let logger: Logger
    private(set) var lanes: [any UpstreamLane] = []
    var drops: DropReporter
    var sampler: LogSampler
    /// Tells this loop's receive thread which upstream it may send to itself.
    package let directRoute = DirectRoute()

    /// Batches waiting for an upstream, oldest first.
    var shard: Deque<RecordBatch> = []
    private var retryScheduled = false
    let allocator = ByteBufferAllocator()
    /// Takes the `ferry://` frames of this loop's bursts: validates, dedupes, acknowledges.
    private let frames: FrameReceiver

    package init(
        index: Int, eventLoop: any EventLoop, capacity: BufferCapacity, maxRecordBytes: Int,
        sampleRate: Double = 0, spool: Spool? = nil, loopCount: Int = 1, keys: FrameKeySource? = nil, logger: Logger
    ) {
        self.spool = spool
        self.readShards =
            spool.map { spool in spool.shards.filter { $0.index == index || ($0.index >= loopCount && $0.index % loopCount == index) } } ?? []
        let counters = PipelineCounters()
        self.drops = DropReporter(counters: counters, logger: logger, loopIndex: index)
        self.sampler = LogSampler(rate: sampleRate, logger: logger, loopIndex: index)
        self.index = index
        self.eventLoop = eventLoop
        self.capacity = capacity
        self.counters = counters
        self.maxRecordBytes = maxRecordBytes
        self.logger = logger
        self.frames = FrameReceiver(
            capacity: capacity, spool: spool, shardIndex: index, eventLoop: eventLoop, counters: counters, maxRecordBytes: maxRecordBytes,
            loopIndex: index, keys: keys, logger: logger)
        frames.openSockets = { [unowned self] socket in self.replySockets.contains(ObjectIdentifier(socket)) }
    }

    package func setLanes(_ lanes: [any UpstreamLane]) {
        self.lanes = lanes
    }

    // MARK: - Intake

    /// This loop's receive sockets (one per UDP listener) that may still
    /// acknowledge frames; a socket leaves when its intake stops.
    var replySockets: Set<ObjectIdentifier> = []

    /// Takes what a receive thread could not send itself: frames, and logs
    /// while no direct route is open. It has counted them already; here they
    /// get room in the buffer (the newest are dropped as `queue_full` when
    /// there is none) and go to an upstream or wait.
    package func receive(_ bursts: [ReceivedBurst]) {
        guard bursts.count > 1 else {
            if let burst = bursts.first { receive(burst) }
            return
        }
        // Bursts that queued up while this loop was busy leave together (in
        // order): one reservation, one write, full frames.
        var merged = ReceivedBurst(receivedAt: bursts[0].receivedAt)
        merged.replySocket = bursts.lazy.compactMap(\.replySocket).first
        for burst in bursts {
            if burst.failedDirectSend {
                receive(burst)  // waits in the shard; rare
                continue
            }
            let offset = merged.records.count
            merged.records.append(contentsOf: burst.records)
            merged.recordBytes += burst.recordBytes
            merged.spans.append(contentsOf: burst.spans)
            for var frame in burst.frames {
                frame.position += offset
                merged.frames.append(frame)
            }
        }
        receive(merged)
    }

    package func receive(_ burst: ReceivedBurst) {
        guard !burst.frames.isEmpty else {
            // Plain logs only, the common case: forwarded as they came.
            if let (records, bytes, spans) = take(burst, 0..<burst.records.count) { forward(records, bytes: bytes, spans: spans, of: burst) }
            publishDirectRoute()
            return
        }
        // Frames and logs in the order they arrived, forwarded together: one
        // write per burst, however many frames it held.
        frames.replySocket = burst.replySocket.flatMap { replySockets.contains(ObjectIdentifier($0)) ? $0 : nil }
        var outgoing: [ByteBuffer] = []
        var outgoingBytes = 0
        var outgoingSpans = SpoolSpans()
        var start = 0
        for frame in burst.frames {
            if frame.position > start, let (records, bytes, spans) = take(burst, start..<frame.position) {
                outgoing.append(contentsOf: records)
                outgoingBytes += bytes
                outgoingSpans.append(contentsOf: spans)
            }
            start = max(start, frame.position)
            if let (records, bytes, spans) = frames.receive(frame.datagram, from: frame.sender) {
                outgoing.append(contentsOf: records)
                outgoingBytes += bytes
                outgoingSpans.append(contentsOf: spans)
            }
        }
        if start < burst.records.count, let (records, bytes, spans) = take(burst, start..<burst.records.count) {
            outgoing.append(contentsOf: records)
            outgoingBytes += bytes
            outgoingSpans.append(contentsOf: spans)
        }
        frames.sendAcknowledgements()
        forward(outgoing, bytes: outgoingBytes, spans: outgoingSpans, of: burst)
        if spoolShard?.isSpilling == true { scheduleRetry() }
        for traceID in frames.takeTraced() {
            logger.info(
                "frame forwarded",
                metadata: [
                    "trace_id": "\(traceID)",
                    "upstream": "\(shard.isEmpty && !lanes.isEmpty ? lanes[currentUpstream].upstream.url.description : "waiting in the buffer")",
                ])
        }
        publishDirectRoute()
    }

    /// The plain logs `range` of a burst, holding room in the memory buffer.
    /// With a spool the receive thread admitted them (room reserved, or on disk
    /// only and not here); without, room is reserved now and the newest that do
    /// not fit are dropped as `queue_full`.
    private func take(_ burst: ReceivedBurst, _ range: Range<Int>) -> ([ByteBuffer], Int, SpoolSpans)? {
        guard !range.isEmpty else { return nil }
        if spool != nil {
            let bytes = range.count == burst.records.count ? burst.recordBytes : burst.records[range].reduce(0) { $0 + $1.readableBytes }
            return (Array(burst.records[range]), bytes, burst.spans.slice(from: range.lowerBound, count: range.count))
        }
        guard let (records, bytes) = reserve(burst.records[range]) else { return nil }
        return (records, bytes, SpoolSpans())
    }

    /// Reserves room for plain logs; the newest that do not fit are dropped as `queue_full`.
    private func reserve<Records: RandomAccessCollection<ByteBuffer>>(_ records: Records) -> ([ByteBuffer], Int)? {
        guard !records.isEmpty else { return nil }
        var records = Array(records)
        let (count, bytes) = capacity.reservePrefix(of: records) { $0.readableBytes }
        if count < records.count {
            drops.drop(.queueFull, logs: records.count - count, detail: capacity.usedLogs)
            records.removeLast(records.count - count)
        }
        return count > 0 ? (records, bytes) : nil
    }

    private func forward(_ records: [ByteBuffer], bytes: Int, spans: SpoolSpans, of burst: ReceivedBurst) {
        guard !records.isEmpty else { return }
        if burst.failedDirectSend {
            // Refused on the receive thread's socket: wait, then retry or fail over.
            shard.append(RecordBatch(copying: records, bytes: bytes, receivedAt: burst.receivedAt, spans: spans, allocator: allocator))
            scheduleRetry()
        } else {
            dispatch(records, bytes: bytes, receivedAt: burst.receivedAt, spans: spans)
        }
    }

    /// Opens the receive thread's direct route to the first upstream that can
    /// take traffic when that is a `udp://` upstream with a closed breaker and
    /// nothing waits in this loop's shard; closes it otherwise. Direct sends
    /// then keep the order and failover decisions this pipeline made.
    private func publishDirectRoute() {
        guard shard.isEmpty, spoolShard?.isSpilling != true, let position = lanes.firstIndex(where: { $0.canAccept }),
            lanes[position].sendsFromReceiveThread, lanes[position].upstream.isBreakerClosed
        else {
            directRoute.close()
            return
        }
        if position != currentUpstream { noteFailover(from: currentUpstream, to: position) }
        directRoute.open(upstream: position)
    }

    /// Result of offering a whole HTTP request's lines.
    enum BulkOutcome: Equatable {
        /// Taken: how many, and (with a spool) the run they were appended as, to await its sync.
        case accepted(Int, SpoolRun?)
        case bufferFull
        /// The spool could not take them (`spool.max-bytes`, or a failed write).
        case spoolFull
    }

    /// Takes all of `records` (lines of one `POST /v1/logs`) or, when the buffer
    /// cannot hold them all, none of them.
    func receiveAll(_ records: [ByteBuffer], transport: Transport) -> BulkOutcome {
        var accepted: [ByteBuffer] = []
        accepted.reserveCapacity(records.count)
        var bytes = 0
        var oversize = 0
        sampler.consider(records, transport: transport)
        for record in records {
            counters.countReceived(transport, logs: 1, bytes: record.readableBytes)
            if record.readableBytes > maxRecordBytes {
                oversize += 1
            } else {
                accepted.append(record)
                bytes += record.readableBytes
            }
        }
        if oversize > 0 { drops.drop(.oversize, logs: oversize, detail: maxRecordBytes) }
        guard !accepted.isEmpty else { return .accepted(0, nil) }
        if let spoolShard {
            let admission = spoolShard.admit(accepted, bytes: bytes, capacity: capacity, allOrNothing: true)
            guard let run = admission.run else {
                drops.dropRefused(admission, by: spoolShard)
                return .spoolFull
            }
            if admission.inMemory {
                dispatch(accepted, bytes: bytes, receivedAt: .now(), spans: SpoolSpans(run))
            } else {
                scheduleRetry()  // on disk only: read back once there is room
            }
            return .accepted(accepted.count, run)
        }
        guard capacity.reserveAll(count: accepted.count, bytes: bytes) else {
            drops.drop(.queueFull, logs: accepted.count, detail: capacity.usedLogs)
            return .bufferFull
        }
        dispatch(accepted, bytes: bytes, receivedAt: .now(), spans: SpoolSpans())
        return .accepted(accepted.count, nil)
    }

    // MARK: - Forwarding

    /// Sends reserved records now if nothing is waiting ahead of them and an
    /// upstream can take them; otherwise queues a copy behind the waiting ones.
    func dispatch(_ records: [ByteBuffer], bytes: Int, receivedAt: NIODeadline, spans: SpoolSpans) {
        if shard.isEmpty, let lane = firstAvailableLane() {
            lane.send(records, bytes: bytes, receivedAt: receivedAt, spans: spans)
            return
        }
        shard.append(RecordBatch(copying: records, bytes: bytes, receivedAt: receivedAt, spans: spans, allocator: allocator))
        drainShard()
    }

    /// Moves waiting batches to upstreams, oldest first, for as long as one can take them.
    func drainShard() {
        if !readShards.isEmpty { readBackSpilled() }
        // Bounded: a lane may hand part of a batch back (to the front), which
        // is then tried on the next round rather than in a loop here.
        var remaining = shard.count
        while remaining > 0, let batch = shard.first {
            guard let lane = firstAvailableLane() else {
                scheduleRetry()
                directRoute.close()
                return
            }
            // Waiting batches leave together, up to one large burst, so that
            // frames and sendmmsg calls are full rather than one per batch;
            // but no more than the lane can take now, so nothing is handed back.
            let budget = lane.roomBytes
            let fitting = min(batch.countFitting(bytes: budget), Self.drainBurst)
            var records: [ByteBuffer]
            var bytes: Int
            var spans: SpoolSpans
            remaining -= 1
            if fitting < batch.count {
                (records, bytes, spans) = shard[shard.startIndex].takeFirst(fitting)
            } else {
                (records, bytes, spans) = (batch.records, batch.bytes, batch.spans)
                shard.removeFirst()
                while remaining > 0, let next = shard.first, records.count + next.count <= Self.drainBurst,
                    bytes + next.bytes <= budget
                {
                    records.append(contentsOf: next.records)
                    bytes += next.bytes
                    spans.append(contentsOf: next.spans)
                    remaining -= 1
                    shard.removeFirst()
                }
            }
            lane.send(records, bytes: bytes, receivedAt: batch.receivedAt, spans: spans)
        }
        if !shard.isEmpty || spoolShard?.isSpilling == true { scheduleRetry() }
        publishDirectRoute()
    }

    /// Most logs one drain step hands to a lane at once.
    private static let drainBurst = 1_024

    /// Takes back logs an upstream could not send or gave up on. They keep
    /// their reservation and go to the front of this loop's shard, from where
    /// they fail over to the next upstream that can take them, or wait.
    func returnToBuffer(_ records: [ByteBuffer], bytes: Int, receivedAt: NIODeadline, spans: SpoolSpans) {
        guard !records.isEmpty else { return }
        shard.prepend(RecordBatch(copying: records, bytes: bytes, receivedAt: receivedAt, spans: spans, allocator: allocator))
        directRoute.close()
        scheduleRetry()
    }

    /// Index of the upstream this loop sent to last, to log changes once.
    private var currentUpstream = 0

    @inline(__always)
    func firstAvailableLane() -> (any UpstreamLane)? {
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
                "reason":
                    "\(new > old ? "\(previous.url) cannot take traffic (breaker \(previous.breakerState.rawValue))" : "\(next.url) can take traffic again")",
                "loop": "\(index)",
            ])
    }

    func scheduleRetry() {
        guard !retryScheduled else { return }
        retryScheduled = true
        eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(20)) {
            self.retryScheduled = false
            self.drainShard()
        }
    }
}
