/// `ferry://HOST:PORT`: acknowledged frames to another Ferry, one sender id per lane.
///
/// Every lane made gets a new random sender id (the loop index in its low
/// byte, for people reading logs): its frames start a dedupe window of their
/// own at the receiver, so frames of an earlier lane or run, sent again from
/// the journal under their own id, are still recognised there.
struct FerryUpstreamKind: UpstreamKind {
    let upstream: Upstream
    let legacyInstanceID: UInt64
    let settings: FerryUpstreamLane.Settings

    func makeLane(_ loop: LaneContext) -> any UpstreamLane {
        var random = SystemRandomNumberGenerator()
        let loopByte = UInt64(loop.loopIndex & 0xFF)
        let lane = FerryUpstreamLane(
            upstream: upstream, address: upstream.currentAddress, eventLoop: loop.eventLoop, settlement: loop.settlement,
            counters: loop.counters, laneIndex: loop.loopIndex, senderID: random.next() & ~UInt64(0xFF) | loopByte, settings: settings,
            journal: loop.spool?.journal(shard: loop.loopIndex, upstream: upstream.url.description),
            legacySenderID: legacyInstanceID | loopByte, logger: loop.logger)
        lane.onAvailable = loop.wake
        lane.returnToBuffer = loop.handBack
        lane.hasOtherUpstreams = loop.hasOtherUpstreams
        return lane
    }
}
