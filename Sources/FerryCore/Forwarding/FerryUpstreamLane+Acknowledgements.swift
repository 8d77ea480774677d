import Logging
import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// What comes back from the aggregator and what time does to frames in flight:
/// acks settle frames, ticks retry, fail over and close retired sockets.
extension FerryUpstreamLane {
    /// An ack (or a batched ack: all of a burst's frames) arrived on the upstream socket.
    func received(_ datagram: ByteBuffer) {
        let acks: (senderID: UInt64, sequences: [UInt32])
        do {
            acks = try FrameCodec.decodeAcks(datagram, keys: keys)
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
        guard acks.senderID == senderID else {
            // An earlier run's frames sent again (under their own sender id), or an ack for another lane: ignored.
            guard !replaying.isEmpty else { return }
            for sequence in acks.sequences { acknowledgeReplayed(.init(sender: acks.senderID, sequence: sequence)) }
            return
        }
        let hadRoom = hasRoom
        for sequence in acks.sequences { acknowledged(sequence) }
        if !hadRoom { roomOpened = true }
    }

    /// Settles frame `sequence` of this lane, acknowledged by the receiver.
    private func acknowledged(_ sequence: UInt32) {
        let now = NIODeadline.now()
        guard let entry = window.acknowledge(sequence, now: now) else {
            acknowledgeReplayed(.init(sender: senderID, sequence: sequence))  // a repeated ack
            return
        }
        journal?.acknowledged(.init(sender: senderID, sequence: entry.sequence))
        let frame = entry.payload
        upstream.inFlightFrames.add(-1)
        logsInFlight -= frame.count
        settlement.settle(count: frame.count, bytes: frame.bytes, spans: frame.spans)
        upstream.forwarded.add(frame.count)
        upstream.forwardedBytes.add(frame.bytes)
        upstream.record(success: true, now: now, traceID: frame.traceID, fromCurrentAddress: frame.address == address)
        upstream.observeLatency(since: frame.receivedAt, now: now)
        if entry.attempts == 1, let smoothed = window.roundTrip.smoothed { upstream.roundTrip.store(smoothed) }
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
    }

    /// A read burst of acks ended: if they made room in the window, waiting
    /// logs move now, together (one call per burst, so frames are full).
    func readComplete() {
        guard roomOpened else { return }
        roomOpened = false
        onAvailable?()
    }

    func scheduleTick() {
        guard !tickScheduled, !window.isEmpty else { return }
        tickScheduled = true
        eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(10)) {
            self.tickScheduled = false
            self.tick()
        }
    }

    func tick() {
        guard !stopped else { return }
        let now = NIODeadline.now()
        let upstream = self.upstream
        let advance = window.advance(now: now, generator: &generator) { onCurrentPath in
            // A path new frames have left is probed only while the breaker is closed: half-open, its
            // probes would take the permits the current path needs to show that it reaches a receiver.
            guard onCurrentPath else { return upstream.breakerState == .closed && upstream.tryRetry(now: now) }
            return upstream.allowsTraffic(now: now) && upstream.tryRetry(now: now) && upstream.acquire(now: now)
        }
        if advance.stalls > 0 { stalled(advance.stalls, now: now) }
        let resend = advance.retransmit + advance.renew.filter { renew($0) }
        if !resend.isEmpty {
            var outgoing: [ObjectIdentifier: (channel: any Channel, frames: [ByteBuffer])] = [:]
            for sequence in resend {
                guard let entry = window.entry(sequence), let channel = retransmitChannel(for: entry.payload) else { continue }
                outgoing[ObjectIdentifier(channel), default: (channel, [])].frames.append(entry.payload.frame)
                logger.info(
                    "frame retried",
                    metadata: [
                        "trace_id": "\(entry.payload.traceID)", "upstream": "\(upstream.url)", "frame.sequence": "\(sequence)",
                        "frame.attempt": "\(entry.attempts)", "frame.records": "\(entry.payload.count)",
                    ])
            }
            upstream.retries.add(resend.count)
            upstream.lossRepairs.add(advance.repairs)
            for (channel, frames) in outgoing.values { write(frames, to: channel) }
        }
        if advance.retriesRefused > 0, let suppressed = warnings.shouldLog(key: 1) {
            logger.warning(
                "retry budget exhausted",
                metadata: ["upstream": "\(upstream.url)", "retries.refused": "\(advance.retriesRefused)", "warnings.suppressed": "\(suppressed)"])
        }
        for entry in advance.givenUp { giveUp(entry) }
        if !advance.givenUp.isEmpty { onAvailable?() }
        closeIdleRetiringChannels()
        scheduleTick()
    }

    /// The upstream stalled (no answer for an ack timeout, `count` times):
    /// one breaker failure each. Every second stall in a row the lane sends from
    /// a new source port: a stale route or connection-tracking entry (a
    /// Kubernetes Service's dead pod) then gives way to a fresh one.
    private func stalled(_ count: Int, now: NIODeadline) {
        let traceID = window.oldest?.payload.traceID
        // Half-open, probes just sent get two ack timeouts (a lost probe is sent again) before silence fails them.
        let probing = upstream.breakerState == .halfOpen && window.lastSend.map { now - $0 < settings.timing.ackTimeout * 2 } == true
        for _ in 0..<count where !probing {
            upstream.record(success: false, now: now, traceID: traceID, fromCurrentAddress: true)
        }
        let stalls = window.stalls
        // Also while the breaker is open: the next half-open probes then leave from a port that may reach a live receiver.
        // Sockets are bounded: one per path with frames in flight (at most `maximumPaths`), idle ones are closed.
        guard stalls >= 2, stalls % 2 == 0, window.busyPaths < Self.maximumPaths else { return }
        rotatePath(reason: "no answer for \(stalls) ack timeouts")
    }

    /// Paths (sockets) with frames in flight at most: a lane stops moving to new source ports beyond this.
    static let maximumPaths = 4

    /// Signs frame `sequence` again with its TTL extended (``AckWindow`` rule 5);
    /// false if that is not possible (then it is given up now).
    private func renew(_ sequence: UInt32) -> Bool {
        guard let entry = window.entry(sequence) else { return false }
        let wallNow = WallClock.milliseconds()
        guard let decoded = try? FrameCodec.decodeData(entry.payload.frame, keys: keys),
            let ttl = extendedTTL(sentAt: decoded.header.sentAtMilliseconds, wallNow: wallNow)
        else {
            if let removed = window.remove(sequence) { giveUp(removed) }
            return false
        }
        var header = decoded.header
        header.ttlMilliseconds = ttl
        var frame = ByteBuffer()
        FrameCodec.encodeData(header: header, records: decoded.records[...], into: &frame, key: keys?.signing)
        window.update(sequence) { $0.payload.frame = frame }
        upstream.renewals.add(1)
        logger.info(
            "frame renewed",
            metadata: [
                "trace_id": "\(entry.payload.traceID)", "upstream": "\(upstream.url)", "frame.sequence": "\(sequence)",
                "frame.ttl_ms": "\(ttl)",
                "reason": "not acknowledged within its time-to-live, but the receiver answers: sent again under the same identity",
            ])
        return true
    }

    /// Hands a frame's logs back to the buffer: its path was silent for a whole
    /// TTL (``AckWindow`` rule 6). The silence was counted as stalls already;
    /// only the probe permit it may hold (sent half-open) is given back.
    private func giveUp(_ entry: AckWindow<InFlight>.Entry) {
        upstream.releaseProbe()
        journal?.closed(.init(sender: senderID, sequence: entry.sequence))
        upstream.inFlightFrames.add(-1)
        logsInFlight -= entry.payload.count
        upstream.failovers.add(1)
        logger.warning(
            "frame failed over",
            metadata: [
                "trace_id": "\(entry.payload.traceID)", "upstream": "\(upstream.url)", "frame.sequence": "\(entry.sequence)",
                "frame.attempts": "\(entry.attempts)", "frame.records": "\(entry.payload.count)",
                "reason": "no answer from its receiver within the frame's time-to-live; its logs go back to the buffer",
            ])
        guard let records = try? FrameCodec.decodeData(entry.payload.frame, keys: keys).records else { return }
        giveBack(records, bytes: entry.payload.bytes, receivedAt: entry.payload.receivedAt, spans: entry.payload.spans)
    }

    /// The socket that retransmits a frame: the one it went out on while that is
    /// open, or the current one if it was reconnected to the same address.
    func retransmitChannel(for frame: InFlight) -> (any Channel)? {
        if frame.channel.isActive, !goneReceivers.contains(ObjectIdentifier(frame.channel)) { return frame.channel }
        if frame.address == address { return channel }  // reconnected to the same address
        return nil  // its address was left behind: it waits to be given up, never sent to another receiver
    }

    /// Writes `frames` with one `sendmmsg` on the lane's own socket
    /// (``FrameSocket``). A failure is counted by reason (the frames stay in
    /// the window and are retransmitted); what a full send buffer refused goes
    /// to NIO, which waits until the socket is writable.
    func write(_ frames: [ByteBuffer], to channel: any Channel) {
        guard !frames.isEmpty else { return }
        guard let socket = sockets[ObjectIdentifier(channel)] else {
            writeThroughNIO(frames[...], to: channel)
            return
        }
        let (sent, failure) = socket.send(frames)
        guard let failure else { return }
        if failure == EAGAIN || failure == EWOULDBLOCK || failure == ENOBUFS {
            writeThroughNIO(frames[sent...], to: channel)
        } else {
            noteError(IOError(errnoCode: failure, reason: "sendmmsg"), source: channel)
        }
    }

    /// Writes `frames` through NIO and flushes once, with one promise on the
    /// last write, so a failed send is counted by reason instead of vanishing.
    private func writeThroughNIO(_ frames: ArraySlice<ByteBuffer>, to channel: any Channel) {
        guard !frames.isEmpty else { return }
        let promise = eventLoop.makePromise(of: Void.self)
        for (index, frame) in zip(frames.indices, frames) {
            channel.write(frame, promise: index == frames.endIndex - 1 ? promise : nil)
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
            keepPathOnConnect = true
        }
        connect().assumeIsolated().whenFailure { error in
            self.noteError(error)
            self.scheduleReconnect()
        }
        closeIdleRetiringChannels()
    }

    func closeIdleRetiringChannels() {
        guard !retiring.isEmpty else { return }
        let idle = retiring.filter { old in !window.contains(where: { $0.payload.channel === old }) }
        retiring.removeAll { old in idle.contains { $0 === old } }
        // Closed only after `retiring` is updated: closing calls back into channelClosed.
        for old in idle { old.close(promise: nil) }
    }

    /// Hands logs back to the pipeline with their reservation; only if there is
    /// no pipeline to take them (it has stopped) are they dropped, counted.
    func giveBack(_ records: [ByteBuffer], bytes: Int, receivedAt: NIODeadline, spans: SpoolSpans) {
        guard let returnToBuffer, !stopped else {
            settlement.settle(count: records.count, bytes: bytes, spans: spans)
            counters.countDropped(.retriesExhausted, logs: records.count)
            return
        }
        returnToBuffer(records, bytes, receivedAt, spans)
    }
}
