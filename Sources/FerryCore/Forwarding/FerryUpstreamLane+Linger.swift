import NIOCore

/// The frame linger: below full speed a read burst holds far fewer logs than a
/// frame takes, so a send that does not fill a frame is held as the lane's
/// ``OpenFrame`` for up to `forward.frame-linger`, and the next bursts fill it.
extension FerryUpstreamLane {
    func send(_ records: [ByteBuffer], bytes: Int, receivedAt: NIODeadline, spans: SpoolSpans) {
        guard let linger = settings.linger else {
            transmit(records, bytes: bytes, receivedAt: receivedAt, spans: spans)
            return
        }
        // Held while the open frame's logs and these fit one frame with room
        // to spare: traffic too light to fill frames by itself. A send that
        // fills a frame leaves at once, the open frame's logs first, so under
        // load nothing waits or is copied twice.
        let count = openFrame.count + records.count
        let size = FrameCodec.dataHeaderBytes + FrameCodec.trailerBytes + openFrame.bytes + bytes + count * FrameCodec.recordOverhead
        let staysOpen = size + FrameCodec.recordOverhead + Self.shortLogBytes <= frameLimit - authBytes && count < Int(UInt16.max)
        guard staysOpen || !openFrame.isEmpty else {
            transmit(records, bytes: bytes, receivedAt: receivedAt, spans: spans)
            return
        }
        if staysOpen {
            // Copied (they are slices of a receive slab, read into again).
            openFrame.append(records, spans: spans, receivedAt: receivedAt, now: .now())
            scheduleLinger(linger)
            return
        }
        var all = joinScratch
        joinScratch = []
        defer {
            all.removeAll(keepingCapacity: true)
            joinScratch = all
        }
        openFrame.appendRecords(to: &all)
        all.append(contentsOf: records)
        var allSpans = openFrame.spans
        allSpans.append(contentsOf: spans)
        let (allBytes, oldest) = (openFrame.bytes + bytes, openFrame.receivedAt)
        openFrame.removeAll()
        transmit(all, bytes: allBytes, receivedAt: oldest, spans: allSpans)
    }

    /// A frame with less room than this left is full: it leaves without waiting.
    static let shortLogBytes = 64

    private func scheduleLinger(_ linger: TimeAmount) {
        guard !lingerScheduled, !openFrame.isEmpty else { return }
        lingerScheduled = true
        do {
            try eventLoop.assumeIsolated().scheduleCallback(at: openFrame.openedAt + linger, handler: lingerCallback)
        } catch {
            // The loop is shutting down: the open frame leaves now rather than never.
            lingerScheduled = false
            flushOpenFrame()
        }
    }

    /// What the event loop calls back when a frame's linger may have passed.
    final class LingerCallback: NIOScheduledCallbackHandler {
        weak var lane: FerryUpstreamLane?

        init(lane: FerryUpstreamLane) {
            self.lane = lane
        }

        func handleScheduledCallback(eventLoop: some EventLoop) {
            guard let lane, let linger = lane.settings.linger else { return }
            lane.lingerScheduled = false
            lane.lingerPassed(linger)
        }
    }

    /// The open frame leaves once it is `linger` old (a later frame may have replaced it: then its own time counts).
    private func lingerPassed(_ linger: TimeAmount) {
        guard !stopped, !openFrame.isEmpty else { return }
        guard NIODeadline.now() >= openFrame.openedAt + linger else { return scheduleLinger(linger) }
        flushOpenFrame()
    }

    /// Sends the open frame's logs now.
    private func flushOpenFrame() {
        guard !openFrame.isEmpty else { return }
        var all = joinScratch
        joinScratch = []
        defer {
            all.removeAll(keepingCapacity: true)
            joinScratch = all
        }
        openFrame.appendRecords(to: &all)
        let (bytes, receivedAt, spans) = (openFrame.bytes, openFrame.receivedAt, openFrame.spans)
        openFrame.removeAll()
        transmit(all, bytes: bytes, receivedAt: receivedAt, spans: spans)
    }
}
