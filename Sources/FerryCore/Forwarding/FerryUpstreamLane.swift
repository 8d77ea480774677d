import Logging
import NIOCore
import NIOPosix

/// One event loop's acknowledged stream of frames to a `ferry://` upstream.
///
/// Logs are packed into frames of at most `frame-max-bytes`; each frame stays
/// in an ``AckWindow`` until the receiving Ferry acknowledges it. Unacknowledged
/// frames are retransmitted byte-identical (same sequence number, so the
/// receiver delivers them once) on a jittered backoff, within the upstream's
/// retry budget and only while its breaker lets traffic through. A frame that
/// used its attempts is given up once its time-to-live has passed, and its logs
/// go back to the front of the buffer, from where they fail over to the next
/// upstream or wait.
///
/// Below full speed a read burst holds far fewer logs than a frame takes: a
/// send that does not fill a frame is held as the ``OpenFrame`` for up to
/// `forward.frame-linger`, so that the next bursts fill it.
final class FerryUpstreamLane: UpstreamLane {
    /// What the window keeps of a frame in flight.
    struct InFlight {
        /// The frame as sent (signed again when renewed).
        var frame: ByteBuffer
        let count: Int
        let bytes: Int
        let traceID: TraceID
        /// Traced on every hop (logged at info): one frame per loop and `trace.frame-sample-interval`.
        let traced: Bool
        let receivedAt: NIODeadline
        /// Where its logs are in the spool (settled when it is acknowledged).
        let spans: SpoolSpans
        /// The socket (and so the address) the frame went out on; retransmissions use the same one,
        /// so a frame is never delivered by two different receivers.
        let channel: any Channel
        /// The address it was sent to; after a reconnect to the same address the new socket retransmits it.
        let address: SocketAddress
    }

    /// Frame sizes and timings of `ferry://` upstreams.
    struct Settings: Sendable {
        var maximumFrameBytes: Int
        var windowFrames: Int
        /// Logs in flight before the lane takes no new batch (`forward.window-logs`).
        var windowLogs: Int
        var timing: AckWindow<InFlight>.Timing
        /// One frame per interval is traced at info on every hop; nil = none.
        var traceInterval: TimeAmount? = nil
        /// `auth.key-file`: frames are signed with the first key, acks verified with any (nil = unkeyed).
        var keys: FrameKeySource? = nil
        /// `forward.frame-linger`: how long the last frame, not yet full, waits for more logs (nil = it leaves at once).
        var linger: TimeAmount? = nil
    }

    let upstream: Upstream
    /// Nil until the upstream's name resolves for the first time.
    var address: SocketAddress?
    /// Sockets to earlier addresses, kept open for the acks and retransmissions of frames sent through them.
    var retiring: [any Channel] = []
    /// Retiring sockets whose receiver refused (nothing listens there): their frames go out on the current socket.
    var goneReceivers: Set<ObjectIdentifier> = []
    let eventLoop: any EventLoop
    let settlement: Settlement
    let counters: PipelineCounters
    let laneIndex: Int
    let senderID: UInt64
    /// Where this lane's frames in flight are kept across restarts (with a spool).
    let journal: FrameJournal?
    /// What an earlier run left in the journal, sent again once connected.
    var pendingReplay: FrameJournal.Snapshot?
    /// Frames of earlier runs sent again, by their first identity.
    var replaying: [FrameJournal.Identity: Replayed] = [:]
    var replaySent = false
    /// How often a replayed frame is retransmitted.
    var replayInterval: TimeAmount { settings.timing.ackTimeout }
    let settings: Settings
    /// The largest frame the current socket sends: `forward.frame-max-bytes`,
    /// or less where the path MTU is smaller (set on each connect).
    var frameLimit: Int
    /// Logs in the frames of ``window``, against `settings.windowLogs`.
    var logsInFlight = 0
    /// Signs this lane's frames and verifies the acks it gets (nil = unkeyed); follows reloads.
    var keys: FrameKeyRing? { keyCache.ring() }
    private var keyCache: FrameKeyCache
    let logger: Logger
    var window: AckWindow<InFlight>
    var channel: (any Channel)?
    /// The lane's own sockets (the current one, and retiring ones), by their channel: frames go out through them with `sendmmsg`.
    var sockets: [ObjectIdentifier: FrameSocket] = [:]
    var stopped = false
    /// The next connect keeps the frames in flight on the old socket's path (see ``rotatePath(reason:)``).
    var keepPathOnConnect = false
    /// The address of the window's current path.
    var pathAddress: SocketAddress?
    var tickScheduled = false
    /// Acks of the current read burst freed room in the window.
    var roomOpened = false
    var reconnect = ReconnectBackoff()
    var warnings = WarningLimiter(interval: .seconds(10))
    var generator = FastRandom()
    /// Buffers frames are encoded into, used in turn (see `send`). Eight: a
    /// send takes at most 1,024 logs and the window 4,096, so a buffer is
    /// normally acknowledged by the time it comes round; each grows to a whole
    /// send (~235 KB of 60–400-byte lines), so more would only add resident memory.
    private var arenas = [ByteBuffer](repeating: ByteBuffer(), count: 8)
    private var arenaIndex = 0
    /// The arrays one `send` plans, encodes and writes its frames with, kept
    /// between sends so that a burst allocates none (a profile of the edge at
    /// 100,000/s put these three at 40 % of its mallocs). A nested send, should
    /// one ever happen, finds them taken and uses fresh ones.
    private var planScratch: [(start: Int, count: Int, payloadBytes: Int)] = []
    private var encodedScratch: [(header: FrameCodec.DataHeader, offset: Int, length: Int)] = []
    private var outgoingScratch: [ByteBuffer] = []
    /// The last frame's logs while it is not full and the linger has not passed.
    var openFrame = OpenFrame()
    var lingerScheduled = false
    /// Calls ``lingerPassed(_:)`` back: one object for the lane's life, so a
    /// frame's linger schedules without allocating (NIO keeps the handler, a
    /// class reference, inline; `scheduleTask` allocated a task, a promise and
    /// a closure per frame, a quarter of the edge's mallocs at 100,000/s).
    lazy var lingerCallback = LingerCallback(lane: self)
    /// The array a send joins the open frame's logs and the new ones in (kept, so that a burst allocates none).
    var joinScratch: [ByteBuffer] = []
    /// When the next frame sent is traced (`trace.frame-sample-interval`).
    private var nextTracedAt = NIODeadline.uptimeNanoseconds(0)
    private static let arenaBytes = 16 << 10
    /// Called when the window has room again, so waiting batches move.
    var onAvailable: (() -> Void)?
    /// Gives logs the lane could not send (or gave up on) back to the front of the pipeline's buffer.
    var returnToBuffer: (([ByteBuffer], Int, NIODeadline, SpoolSpans) -> Void)?
    /// Whether the route has another upstream to fail over to: while it has
    /// none, frames of earlier runs are renewed, never given up (see ``tickReplayed()``).
    var hasOtherUpstreams: () -> Bool = { false }

    init(
        upstream: Upstream, address: SocketAddress?, eventLoop: any EventLoop, settlement: Settlement, counters: PipelineCounters,
        laneIndex: Int, senderID: UInt64, settings: Settings, journal: FrameJournal? = nil, legacySenderID: UInt64 = 0, logger: Logger
    ) {
        self.journal = journal
        let snapshot = journal?.load(legacySender: legacySenderID)
        self.pendingReplay = snapshot
        self.upstream = upstream
        self.address = address
        self.eventLoop = eventLoop
        self.settlement = settlement
        self.counters = counters
        self.laneIndex = laneIndex
        self.senderID = senderID
        self.settings = settings
        self.frameLimit = settings.maximumFrameBytes
        self.keyCache = FrameKeyCache(settings.keys)
        self.logger = logger
        // The sender id is this lane's alone (new for every lane made), so any first sequence is as good as another.
        var seed = SystemRandomNumberGenerator()
        self.window = AckWindow(
            capacity: settings.windowFrames, timing: settings.timing, firstSequence: UInt32.random(in: 0...UInt32.max, using: &seed))
    }

    /// Whether the window takes another frame: frames and logs in flight (the open frame's too) both under their limits.
    var hasRoom: Bool {
        window.hasRoom && logsInFlight + openFrame.count < settings.windowLogs
    }

    var canAccept: Bool {
        channel != nil && hasRoom && upstream.allowsTraffic()
    }

    func start() -> EventLoopFuture<Void> {
        prepareReplay()
        // An upstream whose name did not resolve yet starts without a socket;
        // the resolver repoints the lane once it does.
        guard address != nil else { return eventLoop.makeSucceededVoidFuture() }
        return connect().map { _ in }
    }

    func stop() -> EventLoopFuture<Void> {
        stopped = true
        upstream.setAvailable(false, lane: laneIndex)
        // Frames still unacknowledged keep their buffer reservation: they are
        // counted as undrained, never as forwarded.
        let left = window.removeAll()
        logsInFlight = 0
        openFrame.removeAll()
        upstream.inFlightFrames.add(-left.count - replaying.count)
        replaying.removeAll()  // still in the journal and the spool: sent again by the next run
        let closing = retiring
        retiring.removeAll()
        for old in closing { old.close(promise: nil) }
        guard let channel else { return eventLoop.makeSucceededVoidFuture() }
        self.channel = nil
        return channel.close().recover { _ in }
    }

    /// Settles the frames still unacknowledged (their logs leave as dropped) and stops.
    func abandon() -> Int {
        var logs = openFrame.count
        settlement.settle(count: openFrame.count, bytes: openFrame.bytes, spans: openFrame.spans)
        openFrame.removeAll()
        defer { logsInFlight = 0 }
        for entry in window.removeAll() {
            logs += entry.payload.count
            settlement.settle(count: entry.payload.count, bytes: entry.payload.bytes, spans: entry.payload.spans)
            upstream.inFlightFrames.add(-1)
        }
        _ = stop()
        return logs
    }

    /// Bytes a key adds to each frame (0 unkeyed).
    var authBytes: Int { settings.keys == nil ? 0 : FrameCodec.authBytes }

    /// What the open window can still carry: every free frame full of payload.
    var roomBytes: Int {
        hasRoom ? window.room * frameLimit : 0
    }

    /// Packs `records` into frames and sends them, as many as the window and
    /// the breaker allow now; the rest go back to the buffer.
    func transmit(_ records: [ByteBuffer], bytes: Int, receivedAt: NIODeadline, spans: SpoolSpans) {
        let now = NIODeadline.now()
        // Plan the frames first (what the window and breaker allow), then
        // encode all of them into one buffer: one allocation per burst, and
        // each frame a slice of it that lives until acknowledged.
        var plan = planScratch
        planScratch = []
        defer {
            plan.removeAll(keepingCapacity: true)
            planScratch = plan
        }
        var index = 0
        var room = window.room
        var frameBytes = 0
        while index < records.count {
            let length = records[index].readableBytes
            if !FrameCodec.fitsAlone(length, keyed: settings.keys != nil) {
                // Cannot travel in any frame: counted, never sent cut.
                settlement.settle(count: 1, bytes: length, spans: spans.slice(from: index, count: 1))
                counters.countDropped(.oversize, logs: 1)
                index += 1
                continue
            }
            guard channel != nil, room > 0, upstream.acquire(now: now) else { break }
            let (count, payloadBytes) = FrameCodec.recordsFitting(records, from: index, maximumBytes: frameLimit - authBytes)
            plan.append((index, count, payloadBytes))
            frameBytes += FrameCodec.dataHeaderBytes + payloadBytes + count * FrameCodec.recordOverhead + FrameCodec.trailerBytes + authBytes
            room -= 1
            index += count
        }
        if let channel, !plan.isEmpty {
            let sentAt = WallClock.milliseconds()
            let ttl = UInt32(clamping: settings.timing.ttl.nanoseconds / 1_000_000)
            // Frames are encoded into a ring of reused buffers. By the time a
            // buffer comes round again its frames are normally acknowledged, so
            // clearing it allocates nothing; if some are still in flight it
            // gets fresh storage and the old one stays theirs (copy-on-write).
            arenaIndex = (arenaIndex + 1) % arenas.count
            arenas[arenaIndex].clear(minimumCapacity: max(frameBytes, Self.arenaBytes))
            var encoded = encodedScratch
            encodedScratch = []
            defer {
                encoded.removeAll(keepingCapacity: true)
                encodedScratch = encoded
            }
            encoded.reserveCapacity(plan.count)
            var traceFirst = false
            if let interval = settings.traceInterval, now >= nextTracedAt {
                traceFirst = true
                nextTracedAt = now + interval
            }
            for (position, frame) in plan.enumerated() {
                let header = FrameCodec.DataHeader(
                    senderID: senderID, sequence: window.nextSequence &+ UInt32(position), ttlMilliseconds: ttl,
                    sentAtMilliseconds: sentAt, traceID: TraceID.random(using: &generator),
                    flags: FrameCodec.DataHeader.acceptsBatchedAcks | (traceFirst && position == 0 ? FrameCodec.DataHeader.traced : 0))
                let offset = arenas[arenaIndex].writerIndex
                FrameCodec.encodeData(
                    header: header, records: records[frame.start..<(frame.start + frame.count)], into: &arenas[arenaIndex],
                    key: keys?.signing)
                encoded.append((header, offset, arenas[arenaIndex].writerIndex - offset))
            }
            var outgoing = outgoingScratch
            outgoingScratch = []
            defer {
                outgoing.removeAll(keepingCapacity: true)
                outgoingScratch = outgoing
            }
            outgoing.reserveCapacity(plan.count)
            for (frame, encoding) in zip(plan, encoded) {
                let slice = arenas[arenaIndex].getSlice(at: encoding.offset, length: encoding.length)!
                let frameSpans = spans.slice(from: frame.start, count: frame.count)
                let sequence = window.open(
                    InFlight(
                        frame: slice, count: frame.count, bytes: frame.payloadBytes, traceID: encoding.header.traceID,
                        traced: encoding.header.isTraced, receivedAt: receivedAt,
                        spans: frameSpans, channel: channel, address: address!),
                    now: now)
                assert(sequence == encoding.header.sequence)
                if let journal, !frameSpans.isEmpty {
                    journal.opened(
                        .init(sender: senderID, sequence: sequence),
                        entry: .init(sentAtMilliseconds: sentAt, ttlMilliseconds: ttl, runs: frameSpans.runs))
                }
                upstream.inFlightFrames.add(1)
                logsInFlight += frame.count
                outgoing.append(slice)
                logger.log(
                    level: encoding.header.isTraced ? .info : .debug,
                    "frame sent",
                    metadata: [
                        "trace_id": "\(encoding.header.traceID)", "upstream": "\(upstream.url)", "frame.sequence": "\(sequence)",
                        "frame.records": "\(frame.count)",
                    ])
            }
            if let journal, !spans.isEmpty {
                // Sent once the journal holds them: a crash before that sends their logs again as new, never twice.
                let frames = NIOLoopBound((lane: self, frames: outgoing), eventLoop: eventLoop)
                let loop = eventLoop
                journal.whenWritten {
                    loop.execute {
                        let (lane, frames) = frames.value
                        if !lane.stopped { lane.write(frames, to: channel) }
                    }
                }
            } else {
                write(outgoing, to: channel)
            }
            upstream.recordFirstAttempts(plan.count, now: now)
            upstream.framesSent.add(plan.count)
            scheduleTick()
        }
        if index < records.count {
            let rest = Array(records[index...])
            giveBack(rest, bytes: rest.reduce(0) { $0 + $1.readableBytes }, receivedAt: receivedAt, spans: spans.dropFirst(index))
        }
    }
}
