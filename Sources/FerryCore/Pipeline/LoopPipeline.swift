import DequeModule
import Logging
import NIOCore

/// The part of the data path that one event loop owns: it takes the logs that
/// loop receives, reserves room for them in the shared ``BufferCapacity``, and
/// hands them to the routes they match (``RouteQueue``, one per route), whose
/// upstreams send them or whose queues keep them, in this loop's shard of the buffer.
///
/// Confined to its event loop: nothing in it is locked, and nothing per log
/// crosses a thread. A read burst is the unit of work: one reservation, one
/// route decision and one write-and-flush per burst and route.
package final class LoopPipeline {
    let index: Int
    let eventLoop: any EventLoop
    let counters: PipelineCounters
    let capacity: BufferCapacity
    /// The disk spool, if `spool.dir` is set: every log is admitted to it first.
    let spool: Spool?
    /// This loop's shard of the spool (it appends there).
    var spoolShard: SpoolShard? { spool?.shards[index] }
    /// Each route's own spool, with `routes` and `spool.dir` (then ``spool`` is nil).
    let registry: SpoolRegistry?
    let loopCount: Int
    let maxRecordBytes: Int
    let logger: Logger
    /// Every upstream's lane on this loop, by upstream id, and the route queue each belongs to.
    var lanes: [Int: any UpstreamLane] = [:]
    var owners: [Int: LaneOwner] = [:]
    /// The routes logs go to, as the routing table orders them.
    var routes: [RouteQueue] = []
    /// Routes a reload removed that still hold logs: they deliver what they can until their deadline.
    var retired: [RouteQueue] = []
    var table: RoutingTable
    /// Gives back the room and spool place of logs that leave.
    let settlement: Settlement
    var drops: DropReporter
    var sampler: LogSampler
    /// Tells this loop's receive thread which upstream it may send to itself.
    package let directRoute = DirectRoute()

    let allocator = ByteBufferAllocator()
    /// Takes the `ferry://` frames of this loop's bursts: validates, dedupes, acknowledges.
    private let frames: FrameReceiver

    /// - Parameter routing: the routes, installed by ``install(_:stats:kinds:logger:)``
    ///   (nil: one route over every lane ``setLanes(_:)`` gets, in failover order).
    package init(
        index: Int, eventLoop: any EventLoop, capacity: BufferCapacity, maxRecordBytes: Int,
        sampleRate: Double = 0, spool: Spool? = nil, loopCount: Int = 1, keys: FrameKeySource? = nil,
        routing: RoutingTable? = nil, registry: SpoolRegistry? = nil, logger: Logger
    ) {
        self.spool = spool
        self.registry = registry
        self.loopCount = loopCount
        let counters = PipelineCounters()
        self.drops = DropReporter(counters: counters, logger: logger, loopIndex: index)
        self.sampler = LogSampler(rate: sampleRate, logger: logger, loopIndex: index)
        self.index = index
        self.eventLoop = eventLoop
        self.capacity = capacity
        self.counters = counters
        self.maxRecordBytes = maxRecordBytes
        self.logger = logger
        self.settlement = Settlement(capacity: capacity, spool: spool, registry: registry)
        let table = routing ?? RoutingTable(configuration: FerryConfiguration())
        self.table = table
        self.frames = FrameReceiver(
            capacity: capacity, spool: spool, shardIndex: index, eventLoop: eventLoop, counters: counters, maxRecordBytes: maxRecordBytes,
            loopIndex: index, keys: keys, reservesRoom: registry == nil, logger: logger)
        if routing == nil { self.routes = table.routes.map { RouteQueue(route: $0, stats: RouteStats(route: $0), pipeline: self) } }
        frames.openSockets = { [unowned self] socket in self.replySockets.contains(ObjectIdentifier(socket)) }
    }

    /// Gives the one route of a pipeline built without a routing table these
    /// lanes, in failover order (benchmarks; the relay uses ``install(_:stats:kinds:logger:)``).
    package func setLanes(_ lanes: [any UpstreamLane]) {
        for (id, lane) in lanes.enumerated() {
            self.lanes[id] = lane
            owners[id] = LaneOwner(queue: routes[0])
        }
        routes[0].setLanes(lanes)
    }

    /// Every lane, live or retiring, by upstream id.
    var allLanes: [any UpstreamLane] { lanes.keys.sorted().compactMap { lanes[$0] } }

    // MARK: - Intake

    /// This loop's receive sockets (one per UDP listener) that may still
    /// acknowledge frames; a socket leaves when its intake stops.
    var replySockets: Set<ObjectIdentifier> = []

    /// Takes what a receive thread could not send itself: frames, and logs
    /// while no direct route is open. It has counted them already; here they
    /// get room in the buffer (the newest are dropped as `queue_full` when
    /// there is none) and go to their routes.
    /// The records array that `receive(_ bursts:)` merges bursts into, kept between calls.
    private var mergeScratch: [ByteBuffer] = []

    package func receive(_ bursts: [ReceivedBurst]) {
        guard bursts.count > 1 else {
            if let burst = bursts.first { receive(burst) }
            return
        }
        // Bursts that queued up while this loop was busy leave together (in
        // order): one reservation, one write, full frames. Only bursts of one
        // listener merge (a route may match by listener).
        var merged = ReceivedBurst(receivedAt: bursts[0].receivedAt)
        // Into the array the last merge used: nothing keeps its records once forwarded, so it is reused as it is.
        merged.records = mergeScratch
        mergeScratch = []
        defer {
            merged.records.removeAll(keepingCapacity: true)
            mergeScratch = merged.records
        }
        merged.listener = bursts[0].listener
        merged.replySocket = bursts.lazy.compactMap(\.replySocket).first
        for burst in bursts {
            if burst.failedDirectSend || burst.listener != merged.listener {
                receive(burst)  // rare: waits in the shard, or another listener's
                continue
            }
            let offset = merged.records.count
            merged.records.append(contentsOf: burst.records)
            merged.recordBytes += burst.recordBytes
            merged.spans.append(contentsOf: burst.spans)
            if !burst.sources.isEmpty || !merged.sources.isEmpty {
                merged.sources += [SourceKey?](repeating: nil, count: offset - merged.sources.count)
                merged.sources += burst.sources.isEmpty ? [SourceKey?](repeating: nil, count: burst.records.count) : burst.sources
            }
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
            if let (records, bytes, spans) = take(burst, 0..<burst.records.count) {
                forward(records, bytes: bytes, spans: spans, sources: burst.sources, of: burst)
            }
            scheduleReadBack()
            publishDirectRoute()
            return
        }
        // Frames and logs in the order they arrived, forwarded together: one
        // write per burst, however many frames it held.
        frames.replySocket = burst.replySocket.flatMap { replySockets.contains(ObjectIdentifier($0)) ? $0 : nil }
        var outgoing: [ByteBuffer] = []
        var outgoingBytes = 0
        var outgoingSpans = SpoolSpans()
        var sources: [SourceKey?] = []
        let keepSources = table.readsSource
        var start = 0
        for frame in burst.frames {
            if frame.position > start, let (records, bytes, spans) = take(burst, start..<frame.position) {
                outgoing.append(contentsOf: records)
                outgoingBytes += bytes
                outgoingSpans.append(contentsOf: spans)
                if keepSources { sources += burst.sources(start..<(start + records.count)) }
            }
            start = max(start, frame.position)
            if let (records, bytes, spans) = frames.receive(frame.datagram, from: frame.sender) {
                outgoing.append(contentsOf: records)
                outgoingBytes += bytes
                outgoingSpans.append(contentsOf: spans)
                if keepSources { sources += [SourceKey?](repeating: SourceKey(frame.sender), count: records.count) }
            }
        }
        if start < burst.records.count, let (records, bytes, spans) = take(burst, start..<burst.records.count) {
            outgoing.append(contentsOf: records)
            outgoingBytes += bytes
            outgoingSpans.append(contentsOf: spans)
            if keepSources { sources += burst.sources(start..<(start + records.count)) }
        }
        if registry == nil {
            frames.sendAcknowledgements()
            forward(outgoing, bytes: outgoingBytes, spans: outgoingSpans, sources: sources, of: burst)
        } else {
            // Each route's spool takes the frames' logs first: acknowledged once they are there (synced, under `always`).
            frames.awaitDurable(forward(outgoing, bytes: outgoingBytes, spans: outgoingSpans, sources: sources, of: burst))
            frames.sendAcknowledgements()
        }
        scheduleReadBack()
        for traceID in frames.takeTraced() {
            let first = routes[0]
            logger.info(
                "frame forwarded",
                metadata: [
                    "trace_id": "\(traceID)",
                    "upstream":
                        "\(!first.isWaiting && !first.lanes.isEmpty ? first.lanes[first.currentUpstream].upstream.url.description : "waiting in the buffer")",
                ])
        }
        publishDirectRoute()
    }

    /// The plain logs `range` of a burst, holding room in the memory buffer.
    /// With a spool the receive thread admitted them (room reserved, or on disk
    /// only and not here); with a spool per route, each route's admission takes
    /// them later; without, room is reserved now and the newest that do not fit
    /// are dropped as `queue_full`.
    private func take(_ burst: ReceivedBurst, _ range: Range<Int>) -> ([ByteBuffer], Int, SpoolSpans)? {
        guard !range.isEmpty else { return nil }
        if spool != nil || registry != nil {
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

    /// Returns the places in the routes' spools the logs' acknowledgements wait for (a spool per route, `always`).
    @discardableResult
    private func forward(_ records: [ByteBuffer], bytes: Int, spans: SpoolSpans, sources: [SourceKey?], of burst: ReceivedBurst) -> [SpoolMark] {
        guard !records.isEmpty else { return [] }
        if burst.failedDirectSend {
            // Refused on the receive thread's socket (only ever the one route): wait, then retry or fail over.
            routes[0].park(records, bytes: bytes, receivedAt: burst.receivedAt, spans: spans)
            return []
        }
        return route(records, bytes: bytes, receivedAt: burst.receivedAt, spans: spans, sources: sources, listener: burst.listener)
    }

    /// Opens the receive thread's direct route to the first upstream that can
    /// take traffic when that is a `udp://` upstream with a closed breaker and
    /// nothing waits in this loop's shard; closes it otherwise. Direct sends
    /// then keep the order and failover decisions this pipeline made. Only
    /// with one route that takes every log: with more, each burst is routed here.
    func publishDirectRoute() {
        guard table.allowsDirectRoute, let queue = routes.first, !queue.isWaiting, spoolShard?.isSpilling != true,
            let position = queue.firstAvailablePosition, queue.lanes[position].sendsFromReceiveThread,
            queue.lanes[position].upstream.isBreakerClosed
        else {
            directRoute.close()
            return
        }
        if position != queue.currentUpstream { queue.noteFailover(from: queue.currentUpstream, to: position) }
        directRoute.open(upstream: position)
    }

    /// Result of offering a whole HTTP request's lines.
    enum BulkOutcome: Equatable {
        /// Taken: how many, and (with a spool) where they were appended, to await its sync.
        case accepted(Int, [SpoolMark])
        case bufferFull
        /// The spool could not take them (`spool.max-bytes`, or a failed write).
        case spoolFull
        /// Refused at the door (`allow`, `rate-limit.*`): never received.
        case refused(RefusalReason)
    }

    /// Takes all of `records` (lines of one `POST /v1/logs`) or, when the buffer
    /// cannot hold them all, none of them.
    ///
    /// - Parameters:
    ///   - source: the client's address, every line's source for the routes.
    ///   - gate: the HTTP intake's allowlist and rate limit: a request is refused
    ///     whole if its client is not allowed or has not the tokens for all its lines.
    func receiveAll(_ records: [ByteBuffer], transport: Transport, source: SourceKey? = nil, gate: SourceGate? = nil) -> BulkOutcome {
        if let gate, let source, !records.isEmpty {
            if let allowlist = gate.allowlist, !allowlist.allows(source) {
                drops.refuse(.denied, logs: records.count, source: source, listener: FerryConfiguration.httpListenerName)
                return .refused(.denied)
            }
            if gate.admit(records.count, from: source, allOrNothing: true) == 0 {
                drops.refuse(.rateLimited, logs: records.count, source: source, listener: FerryConfiguration.httpListenerName)
                return .refused(.rateLimited)
            }
        }
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
        guard !accepted.isEmpty else { return .accepted(0, []) }
        counters.countPriorities(accepted)
        let http = table.httpListener
        let sources = table.readsSource && source != nil ? [SourceKey?](repeating: source, count: accepted.count) : []
        if registry != nil {
            // Each route's spool takes its own (its oldest go when it is past its cap, counted).
            return .accepted(accepted.count, route(accepted, bytes: bytes, receivedAt: .now(), spans: SpoolSpans(), sources: sources, listener: http))
        }
        if let spoolShard, let spool {
            let admission = spoolShard.admit(accepted, bytes: bytes, capacity: capacity, allOrNothing: true)
            guard let run = admission.run else {
                drops.dropRefused(admission, by: spoolShard)
                return .spoolFull
            }
            if admission.inMemory {
                route(accepted, bytes: bytes, receivedAt: .now(), spans: SpoolSpans(run), sources: sources, listener: http)
            } else {
                routes[0].scheduleRetry()  // on disk only: read back once there is room
            }
            return .accepted(accepted.count, [SpoolMark(spool: spool, shard: run.shard, through: run.end)])
        }
        guard capacity.reserveAll(count: accepted.count, bytes: bytes) else {
            drops.drop(.queueFull, logs: accepted.count, detail: capacity.usedLogs)
            return .bufferFull
        }
        route(accepted, bytes: bytes, receivedAt: .now(), spans: SpoolSpans(), sources: sources, listener: http)
        return .accepted(accepted.count, [])
    }
}
