import Logging
import NIOCore

/// Frames earlier runs of this lane had in flight when they died, sent again
/// under their first identity (sender id and sequence) with the same logs (see
/// ``FrameJournal``): the receiver acknowledges what it already has without
/// delivering it again.
///
/// They live beside the ``AckWindow`` (their sender ids are not this lane's)
/// and are retransmitted every ack timeout. Their identity is the only one
/// their logs may have, since the receiver may hold them already (delivered,
/// its ack lost with the run that died):
/// 1. A frame already past its time-to-live at the start goes with the TTL
///    extended to its age plus the lane's TTL (same first-send time, signed
///    again): the receiver acknowledges it if it has it, delivers it if not.
/// 2. When the TTL passes unacknowledged and the route has no other upstream,
///    the frame is renewed so (its logs would only come back here, under a new
///    identity the receiver cannot recognise).
/// 3. It is given up, its logs back to the buffer, only when the route has
///    another upstream or the extension would pass the largest TTL a receiver
///    accepts (``FrameReceiver/maximumTTLMilliseconds``).
extension FerryUpstreamLane {
    /// A frame sent again.
    struct Replayed {
        var frame: ByteBuffer
        let count: Int
        let bytes: Int
        let spans: SpoolSpans
        let traceID: TraceID
        /// Its first send, in the run that made it (ms since the epoch): kept through renewals.
        let sentAtMilliseconds: UInt64
        /// Its end of TTL plus a second: then it is renewed or given up.
        var deadline: NIODeadline
        var lastSent: NIODeadline
    }

    /// The TTL that keeps a frame first sent at `sentAt` deliverable for the
    /// lane's TTL from `wallNow`; nil past the largest a receiver accepts, or
    /// for a first send further ahead of the clock than a receiver accepts.
    func extendedTTL(sentAt: UInt64, wallNow: UInt64) -> UInt32? {
        // Sent "in the future" (the clock was set back, or a crafted journal): receivers refuse it as malformed.
        guard sentAt <= wallNow &+ FrameReceiver.maximumClockSkewMilliseconds else { return nil }
        let age = wallNow > sentAt ? wallNow - sentAt : 0
        let ttl = age + UInt64(settings.timing.ttl.nanoseconds / 1_000_000)
        return ttl <= UInt64(FrameReceiver.maximumTTLMilliseconds) ? UInt32(ttl) : nil
    }

    /// Encodes a frame of an earlier run under its first identity and first-send time.
    private func encodeReplayed(
        _ identity: FrameJournal.Identity, sentAt: UInt64, ttl: UInt32, traceID: TraceID, records: ArraySlice<ByteBuffer>
    ) -> ByteBuffer {
        var frame = ByteBuffer()
        let header = FrameCodec.DataHeader(
            senderID: identity.sender, sequence: identity.sequence, ttlMilliseconds: ttl, sentAtMilliseconds: sentAt, traceID: traceID)
        FrameCodec.encodeData(header: header, records: records, into: &frame, key: keys?.signing)
        return frame
    }

    /// Reads the earlier run's frames back from the spool and claims their
    /// logs, before anything reads spilled logs back (at the lane's start).
    func prepareReplay() {
        guard let snapshot = pendingReplay, let journal, let spool = settlement.spool(id: journal.spoolID) else { return }
        pendingReplay = nil
        let now = NIODeadline.now()
        let wallNow = WallClock.milliseconds()
        var generator = FastRandom()
        var skipped = (expired: 0, unclaimed: 0, noRoom: 0)
        defer {
            if skipped != (0, 0, 0) {
                logger.notice(
                    "frames of the previous run not sent again",
                    metadata: [
                        "upstream": "\(upstream.url)", "frames.expired": "\(skipped.expired)", "frames.unclaimed": "\(skipped.unclaimed)",
                        "frames.no_room": "\(skipped.noRoom)", "effect": "their logs go out in new frames",
                    ])
            }
        }
        for (identity, entry) in snapshot.entries.sorted(by: { $0.key < $1.key }) {
            var ttl = entry.ttlMilliseconds
            if entry.sentAtMilliseconds &+ UInt64(ttl) <= wallNow &+ UInt64(replayInterval.nanoseconds / 1_000_000) {
                // Past (or all but past) its TTL: the receiver may still hold it, so it goes under its identity, extended (rule 1).
                guard let extended = extendedTTL(sentAt: entry.sentAtMilliseconds, wallNow: wallNow) else {
                    skipped.expired += 1  // older than any receiver accepts: its logs go out as new frames
                    journal.closed(identity)
                    continue
                }
                ttl = extended
            }
            var effective = entry
            effective.ttlMilliseconds = ttl
            let remaining = effective.remainingMilliseconds(at: wallNow)  // at most the TTL, whatever the journal says
            guard let records = spool.shards[journal.shard].claim(entry.runs) else {
                skipped.unclaimed += 1  // its logs are no longer waiting on disk (delivered, or lost and counted)
                journal.closed(identity)
                continue
            }
            let bytes = records.reduce(0) { $0 + $1.readableBytes }
            guard settlement.capacity.reserveAll(count: records.count, bytes: bytes) else {
                spool.shards[journal.shard].unclaim(entry.runs)
                skipped.noRoom += 1  // its logs are read back from the spool later, in new frames
                journal.closed(identity)
                continue
            }
            let traceID = TraceID.random(using: &generator)
            let frame = encodeReplayed(identity, sentAt: entry.sentAtMilliseconds, ttl: ttl, traceID: traceID, records: records[...])
            var spans = SpoolSpans()
            for run in entry.runs { spans.append(run) }
            replaying[identity] = Replayed(
                frame: frame, count: records.count, bytes: bytes, spans: spans, traceID: traceID,
                sentAtMilliseconds: entry.sentAtMilliseconds, deadline: now + .milliseconds(Int64(remaining) + 1_000), lastSent: now)
            upstream.inFlightFrames.add(1)  // its journal entry (kept since the load) stays until acknowledged and recorded
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

    /// Retransmits replayed frames due; renews or gives up those past their TTL (rules 2 and 3).
    func tickReplayed() {
        guard !replaying.isEmpty, !stopped else { return }
        let now = NIODeadline.now()
        let wallNow = WallClock.milliseconds()
        var outgoing: [ByteBuffer] = []
        var renewed = 0
        defer {
            if renewed > 0 {
                logger.info(
                    "frames of the previous run renewed",
                    metadata: [
                        "upstream": "\(upstream.url)", "frames": "\(renewed)",
                        "reason":
                            "not acknowledged within their time-to-live and the route has no other upstream: sent again under the same identity",
                    ])
            }
        }
        for (identity, frame) in replaying {
            if now >= frame.deadline, !hasOtherUpstreams(), let ttl = extendedTTL(sentAt: frame.sentAtMilliseconds, wallNow: wallNow),
                let records = try? FrameCodec.decodeData(frame.frame, keys: keys).records
            {
                let renewedFrame = encodeReplayed(identity, sentAt: frame.sentAtMilliseconds, ttl: ttl, traceID: frame.traceID, records: records[...])
                replaying[identity]?.frame = renewedFrame
                replaying[identity]?.deadline = now + settings.timing.ttl + .seconds(1)
                replaying[identity]?.lastSent = now
                outgoing.append(renewedFrame)
                renewed += 1
            } else if now >= frame.deadline {
                replaying.removeValue(forKey: identity)
                upstream.inFlightFrames.add(-1)
                journal?.closed(identity)
                logger.warning(
                    "frame of the previous run failed over",
                    metadata: [
                        "trace_id": "\(frame.traceID)", "upstream": "\(upstream.url)", "frame.identity": "\(identity)",
                        "frame.records": "\(frame.count)",
                        "reason": "no acknowledgement within the frame's time-to-live; its logs go back to the buffer",
                    ])
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
