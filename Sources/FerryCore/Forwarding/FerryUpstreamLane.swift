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
final class FerryUpstreamLane: UpstreamLane {
    /// What the window keeps of a frame in flight.
    struct InFlight {
        let frame: ByteBuffer
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
        var timing: AckWindow<InFlight>.Timing
        /// One frame per interval is traced at info on every hop; nil = none.
        var traceInterval: TimeAmount? = nil
        /// `auth.key-file`: frames are signed with the first key, acks verified with any (nil = unkeyed).
        var keys: FrameKeySource? = nil
    }

    let upstream: Upstream
    /// Nil until the upstream's name resolves for the first time.
    var address: SocketAddress?
    /// Sockets to earlier addresses, kept open for the acks and retransmissions of frames sent through them.
    var retiring: [any Channel] = []
    let eventLoop: any EventLoop
    let settlement: Settlement
    private let counters: PipelineCounters
    let laneIndex: Int
    let senderID: UInt64
    /// Where this lane's frames in flight are kept across restarts (with a spool).
    let journal: FrameJournal?
    /// What an earlier run left in the journal, sent again once connected.
    var pendingReplay: FrameJournal.Snapshot?
    /// Frames of the earlier run sent again, by sequence.
    var replaying: [UInt32: Replayed] = [:]
    var replaySent = false
    /// How often a replayed frame is retransmitted.
    var replayInterval: TimeAmount { settings.timing.ackTimeout }
    private let settings: Settings
    /// Signs this lane's frames and verifies the acks it gets (nil = unkeyed); follows reloads.
    var keys: FrameKeyRing? { keyCache.ring() }
    private var keyCache: FrameKeyCache
    let logger: Logger
    var window: AckWindow<InFlight>
    var channel: (any Channel)?
    var stopped = false
    private var tickScheduled = false
    /// Acks of the current read burst freed room in the window.
    private var roomOpened = false
    var reconnect = ReconnectBackoff()
    var warnings = WarningLimiter(interval: .seconds(10))
    private var generator = FastRandom()
    /// Buffers frames are encoded into, used in turn (see `send`).
    private var arenas = [ByteBuffer](repeating: ByteBuffer(), count: 16)
    private var arenaIndex = 0
    /// When the next frame sent is traced (`trace.frame-sample-interval`).
    private var nextTracedAt = NIODeadline.uptimeNanoseconds(0)
    private static let arenaBytes = 16 << 10
    /// Called when the window has room again, so waiting batches move.
    var onAvailable: (() -> Void)?
    /// Gives logs the lane could not send (or gave up on) back to the front of the pipeline's buffer.
    var returnToBuffer: (([ByteBuffer], Int, NIODeadline, SpoolSpans) -> Void)?

    init(
        upstream: Upstream, address: SocketAddress?, eventLoop: any EventLoop, settlement: Settlement, counters: PipelineCounters,
        laneIndex: Int, senderID: UInt64, settings: Settings, journal: FrameJournal? = nil, logger: Logger
    ) {
        self.journal = journal
        let snapshot = journal?.load()
        self.pendingReplay = snapshot
        self.upstream = upstream
        self.address = address
        self.eventLoop = eventLoop
        self.settlement = settlement
        self.counters = counters
        self.laneIndex = laneIndex
        self.senderID = senderID
        self.settings = settings
        self.keyCache = FrameKeyCache(settings.keys)
        self.logger = logger
        var seed = SystemRandomNumberGenerator()
        // With a journal: past every sequence the earlier run can have used, so nothing new is taken for a duplicate.
        let first = snapshot.map { $0.nextSequence &+ FrameJournal.restartGap } ?? UInt32.random(in: 0...UInt32.max, using: &seed)
        self.window = AckWindow(capacity: settings.windowFrames, timing: settings.timing, firstSequence: first)
        journal?.begin(next: first)
    }

    var canAccept: Bool {
        channel != nil && window.hasRoom && upstream.allowsTraffic()
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
        var logs = 0
        for entry in window.removeAll() {
            logs += entry.payload.count
            settlement.settle(count: entry.payload.count, bytes: entry.payload.bytes, spans: entry.payload.spans)
            upstream.inFlightFrames.add(-1)
        }
        _ = stop()
        return logs
    }

    /// Bytes a key adds to each frame (0 unkeyed).
    private var authBytes: Int { settings.keys == nil ? 0 : FrameCodec.authBytes }

    /// What the open window can still carry: every free frame full of payload.
    var roomBytes: Int {
        window.room * settings.maximumFrameBytes
    }

    func send(_ records: [ByteBuffer], bytes: Int, receivedAt: NIODeadline, spans: SpoolSpans) {
        let now = NIODeadline.now()
        // Plan the frames first (what the window and breaker allow), then
        // encode all of them into one buffer: one allocation per burst, and
        // each frame a slice of it that lives until acknowledged.
        var plan: [(start: Int, count: Int, payloadBytes: Int)] = []
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
            let (count, payloadBytes) = FrameCodec.recordsFitting(records, from: index, maximumBytes: settings.maximumFrameBytes - authBytes)
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
            var encoded: [(header: FrameCodec.DataHeader, offset: Int, length: Int)] = []
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
                    flags: traceFirst && position == 0 ? FrameCodec.DataHeader.traced : 0)
                let offset = arenas[arenaIndex].writerIndex
                FrameCodec.encodeData(
                    header: header, records: records[frame.start..<(frame.start + frame.count)], into: &arenas[arenaIndex],
                    key: keys?.signing)
                encoded.append((header, offset, arenas[arenaIndex].writerIndex - offset))
            }
            var outgoing: [ByteBuffer] = []
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
                        sequence, entry: .init(sentAtMilliseconds: sentAt, ttlMilliseconds: ttl, runs: frameSpans.runs), next: window.nextSequence)
                }
                upstream.inFlightFrames.add(1)
                outgoing.append(slice)
                logger.log(
                    level: encoding.header.isTraced ? .info : .debug,
                    "frame sent",
                    metadata: [
                        "trace_id": "\(encoding.header.traceID)", "upstream": "\(upstream.url)", "frame.sequence": "\(sequence)",
                        "frame.records": "\(frame.count)",
                    ])
            }
            write(outgoing, to: channel)
            upstream.recordFirstAttempts(plan.count, now: now)
            scheduleTick()
        }
        if index < records.count {
            let rest = Array(records[index...])
            giveBack(rest, bytes: rest.reduce(0) { $0 + $1.readableBytes }, receivedAt: receivedAt, spans: spans.dropFirst(index))
        }
    }

    // MARK: - Acknowledgements and timeouts

    /// An ack arrived on the upstream socket.
    func received(_ datagram: ByteBuffer) {
        let ack: FrameCodec.Ack
        do {
            ack = try FrameCodec.decodeAck(datagram, keys: keys)
        } catch .unauthenticated(let reason) {
            // Forged, or from a receiver with another key: ignored before it can settle, retry or close anything.
            upstream.unauthenticatedAcks[reason.rawValue].add(1)
            // Keys 100+ are the send errors' (FerryUpstreamLane+Connection); these must not suppress those.
            if let suppressed = warnings.shouldLog(key: 200 + reason.rawValue) {
                logger.warning(
                    "unauthenticated ack ignored",
                    metadata: [
                        "upstream": "\(upstream.url)", "reason": "\(reason)", "warnings.suppressed": "\(suppressed)",
                        "effect": "the frames it names stay in flight and are retried; check that both Ferrys hold the same auth.key-file",
                    ])
            }
            return
        } catch {
            upstream.recordError(.other, detail: "invalid ack: \(error)")
            return
        }
        guard ack.senderID == senderID else { return }  // an ack for an earlier instance or loop
        let hadRoom = window.hasRoom
        guard let entry = window.acknowledge(ack.sequence) else {
            acknowledgeReplayed(ack.sequence)  // an earlier run's frame, or a repeated ack
            return
        }
        journal?.acknowledged(entry.sequence)
        let frame = entry.payload
        upstream.inFlightFrames.add(-1)
        settlement.settle(count: frame.count, bytes: frame.bytes, spans: frame.spans)
        upstream.forwarded.add(frame.count)
        upstream.forwardedBytes.add(frame.bytes)
        upstream.record(success: true, traceID: frame.traceID, fromCurrentAddress: frame.address == address)
        upstream.observeLatency(since: frame.receivedAt)
        if entry.attempts > 1 {
            logger.info(
                "frame acknowledged after retry",
                metadata: [
                    "trace_id": "\(frame.traceID)", "upstream": "\(upstream.url)", "frame.sequence": "\(entry.sequence)",
                    "frame.attempts": "\(entry.attempts)",
                ])
        } else {
            logger.log(
                level: frame.traced ? .info : .debug,
                "frame acknowledged",
                metadata: ["trace_id": "\(frame.traceID)", "upstream": "\(upstream.url)", "frame.sequence": "\(entry.sequence)"])
        }
        if !hadRoom { roomOpened = true }
    }

    /// A read burst of acks ended: if they made room in the window, waiting
    /// logs move now, together (one call per burst, so frames are full).
    func readComplete() {
        guard roomOpened else { return }
        roomOpened = false
        onAvailable?()
    }

    private func scheduleTick() {
        guard !tickScheduled, !window.isEmpty else { return }
        tickScheduled = true
        eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(10)) {
            self.tickScheduled = false
            self.tick()
        }
    }

    private func tick() {
        guard !stopped else { return }
        let now = NIODeadline.now()
        let upstream = self.upstream
        let advance = window.advance(now: now, generator: &generator) {
            upstream.allowsTraffic(now: now) && upstream.tryRetry(now: now) && upstream.acquire(now: now)
        }
        for sequence in advance.timeouts {
            let entry = window.entry(sequence)
            upstream.record(
                success: false, now: now, traceID: entry?.payload.traceID, fromCurrentAddress: entry?.payload.address == address)
        }
        if !advance.retransmit.isEmpty {
            var outgoing: [ObjectIdentifier: (channel: any Channel, frames: [ByteBuffer])] = [:]
            for sequence in advance.retransmit {
                guard let entry = window.entry(sequence) else { continue }
                guard let channel = retransmitChannel(for: entry.payload) else { continue }
                outgoing[ObjectIdentifier(channel), default: (channel, [])].frames.append(entry.payload.frame)
                upstream.retries.add(1)
                logger.info(
                    "frame retried",
                    metadata: [
                        "trace_id": "\(entry.payload.traceID)", "upstream": "\(upstream.url)", "frame.sequence": "\(sequence)",
                        "frame.attempt": "\(entry.attempts)", "frame.records": "\(entry.payload.count)",
                    ])
            }
            for (channel, frames) in outgoing.values { write(frames, to: channel) }
        }
        if advance.retriesRefused > 0, let suppressed = warnings.shouldLog(key: 1) {
            logger.warning(
                "retry budget exhausted",
                metadata: ["upstream": "\(upstream.url)", "retries.refused": "\(advance.retriesRefused)", "warnings.suppressed": "\(suppressed)"])
        }
        for entry in advance.givenUp {
            journal?.closed(entry.sequence)
            upstream.inFlightFrames.add(-1)
            upstream.failovers.add(1)
            logger.warning(
                "frame failed over",
                metadata: [
                    "trace_id": "\(entry.payload.traceID)", "upstream": "\(upstream.url)", "frame.sequence": "\(entry.sequence)",
                    "frame.attempts": "\(entry.attempts)", "frame.records": "\(entry.payload.count)",
                    "reason": "no acknowledgement within the frame's time-to-live; its logs go back to the buffer",
                ])
            guard let records = try? FrameCodec.decodeData(entry.payload.frame, keys: keys).records else { continue }
            giveBack(records, bytes: entry.payload.bytes, receivedAt: entry.payload.receivedAt, spans: entry.payload.spans)
        }
        if !advance.givenUp.isEmpty { onAvailable?() }
        closeIdleRetiringChannels()
        scheduleTick()
    }

    /// The socket that retransmits a frame: the one it went out on while that is
    /// open, or the current one if it was reconnected to the same address.
    private func retransmitChannel(for frame: InFlight) -> (any Channel)? {
        if frame.channel.isActive { return frame.channel }
        if frame.address == address { return channel }  // reconnected to the same address
        return nil  // its address was left behind: it waits to be given up, never sent to another receiver
    }

    /// Writes `frames` and flushes once, with one promise on the last write, so
    /// a failed `sendmmsg` is counted by reason instead of vanishing (the frames
    /// stay in the window and are retransmitted).
    private func write(_ frames: [ByteBuffer], to channel: any Channel) {
        guard !frames.isEmpty else { return }
        let promise = eventLoop.makePromise(of: Void.self)
        for (index, frame) in frames.enumerated() {
            channel.write(frame, promise: index == frames.count - 1 ? promise : nil)
        }
        channel.flush()
        promise.futureResult.assumeIsolated().whenFailure { error in
            self.noteError(error, source: channel)
        }
    }

    /// Moves new frames to `newAddress`. Frames already in flight stay with the
    /// socket they were sent on until acknowledged or given up, so nothing is
    /// delivered twice by the old and the new receiver.
    func repoint(to newAddress: SocketAddress) {
        guard newAddress != address, !stopped else { return }
        address = newAddress
        if let old = channel {
            retiring.append(old)
            channel = nil
        }
        connect().assumeIsolated().whenFailure { error in
            self.noteError(error)
            self.scheduleReconnect()
        }
        closeIdleRetiringChannels()
    }

    private func closeIdleRetiringChannels() {
        guard !retiring.isEmpty else { return }
        let idle = retiring.filter { old in !window.contains(where: { $0.payload.channel === old }) }
        retiring.removeAll { old in idle.contains { $0 === old } }
        // Closed only after `retiring` is updated: closing calls back into channelClosed.
        for old in idle { old.close(promise: nil) }
    }

    /// Hands logs back to the pipeline with their reservation; only if there is
    /// no pipeline to take them (it has stopped) are they dropped, counted.
    private func giveBack(_ records: [ByteBuffer], bytes: Int, receivedAt: NIODeadline, spans: SpoolSpans) {
        guard let returnToBuffer, !stopped else {
            settlement.settle(count: records.count, bytes: bytes, spans: spans)
            counters.countDropped(.retriesExhausted, logs: records.count)
            return
        }
        returnToBuffer(records, bytes, receivedAt, spans)
    }
}
