import NIOCore

/// Frames earlier runs of this lane had in flight when they died, sent again
/// under their first identity (sender id and sequence) with the same logs (see
/// ``FrameJournal``): the receiver acknowledges what it already has without
/// delivering it again.
///
/// They live beside the ``AckWindow`` (their sender ids are not this lane's),
/// are retransmitted every ack timeout, and are given up, their logs back to
/// the buffer, once their time-to-live has passed.
extension FerryUpstreamLane {
    /// A frame sent again.
    struct Replayed {
        let frame: ByteBuffer
        let count: Int
        let bytes: Int
        let spans: SpoolSpans
        let traceID: TraceID
        /// Its time-to-live (from its first send, in the earlier run) plus a second: then it is given up.
        let deadline: NIODeadline
        var lastSent: NIODeadline
    }

    /// Reads the earlier run's frames back from the spool and claims their
    /// logs, before anything reads spilled logs back (at the lane's start).
    func prepareReplay() {
        guard let snapshot = pendingReplay, let journal, let spool = settlement.spool(id: journal.spoolID) else { return }
        pendingReplay = nil
        let now = NIODeadline.now()
        let wallNow = WallClock.milliseconds()
        var generator = FastRandom()
        for (identity, entry) in snapshot.entries.sorted(by: { $0.key < $1.key }) {
            let ends = entry.sentAtMilliseconds &+ UInt64(entry.ttlMilliseconds)
            guard ends > wallNow else { continue }  // past its TTL: the receiver would drop it; its logs go out as new frames
            guard let records = spool.shards[journal.shard].claim(entry.runs) else { continue }
            let bytes = records.reduce(0) { $0 + $1.readableBytes }
            guard settlement.capacity.reserveAll(count: records.count, bytes: bytes) else {
                spool.shards[journal.shard].unclaim(entry.runs)
                continue
            }
            var frame = ByteBuffer()
            let header = FrameCodec.DataHeader(
                senderID: identity.sender, sequence: identity.sequence, ttlMilliseconds: entry.ttlMilliseconds,
                sentAtMilliseconds: entry.sentAtMilliseconds,
                traceID: TraceID.random(using: &generator))
            FrameCodec.encodeData(header: header, records: records[...], into: &frame, key: keys?.signing)
            var spans = SpoolSpans()
            for run in entry.runs { spans.append(run) }
            replaying[identity] = Replayed(
                frame: frame, count: records.count, bytes: bytes, spans: spans, traceID: header.traceID,
                deadline: now + .milliseconds(Int64(entry.remainingMilliseconds(at: wallNow)) + 1_000), lastSent: now)
            upstream.inFlightFrames.add(1)
            journal.opened(identity, entry: entry)  // kept until acknowledged and recorded, as any frame
        }
    }

    /// Sends the replayed frames (once a socket is connected).
    func sendReplayed() {
        guard !replaySent, !replaying.isEmpty, let channel else { return }
        replaySent = true
        logger.notice(
            "frames of the previous run sent again",
            metadata: [
                "upstream": "\(upstream.url)", "frames": "\(replaying.count)",
                "frame.senders": "\(Set(replaying.keys.map { String($0.sender, radix: 16) }).sorted())",
                "reason": "in flight when the previous run stopped; the receiver delivers each at most once",
            ])
        writeReplayed(replaying.sorted { $0.key < $1.key }.map(\.value.frame), to: channel)
        scheduleReplayTick()
    }

    /// An ack for a replayed frame: its logs are delivered.
    func acknowledgeReplayed(_ identity: FrameJournal.Identity) {
        guard let frame = replaying.removeValue(forKey: identity) else { return }
        upstream.inFlightFrames.add(-1)
        journal?.acknowledged(identity)
        settlement.settle(count: frame.count, bytes: frame.bytes, spans: frame.spans)
        upstream.forwarded.add(frame.count)
        upstream.forwardedBytes.add(frame.bytes)
    }

    /// Retransmits replayed frames due, gives up those past their TTL.
    func tickReplayed() {
        guard !replaying.isEmpty, !stopped else { return }
        let now = NIODeadline.now()
        var outgoing: [ByteBuffer] = []
        for (identity, frame) in replaying {
            if now >= frame.deadline {
                replaying.removeValue(forKey: identity)
                upstream.inFlightFrames.add(-1)
                journal?.closed(identity)
                if let records = try? FrameCodec.decodeData(frame.frame, keys: keys).records {
                    returnToBuffer?(records, frame.bytes, now, frame.spans)
                }
            } else if now - frame.lastSent >= replayInterval {
                replaying[identity]?.lastSent = now
                outgoing.append(frame.frame)
            }
        }
        if let channel, !outgoing.isEmpty { writeReplayed(outgoing, to: channel) }
        scheduleReplayTick()
    }

    private func scheduleReplayTick() {
        guard !replaying.isEmpty else { return }
        eventLoop.assumeIsolated().scheduleTask(in: replayInterval) { self.tickReplayed() }
    }

    private func writeReplayed(_ frames: [ByteBuffer], to channel: any Channel) {
        write(frames, to: channel)
    }
}
