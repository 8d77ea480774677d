/// `ferry://HOST:PORT`: acknowledged frames to another Ferry, one sender id per loop.
struct FerryUpstreamKind: UpstreamKind {
    let upstream: Upstream
    let instanceID: UInt64
    let settings: FerryUpstreamLane.Settings

    func makeLane(_ loop: LaneContext) -> any UpstreamLane {
        let lane = FerryUpstreamLane(
            upstream: upstream, address: upstream.currentAddress, eventLoop: loop.eventLoop, settlement: loop.settlement,
            counters: loop.counters, laneIndex: loop.loopIndex, senderID: instanceID | UInt64(loop.loopIndex & 0xFF), settings: settings,
            journal: loop.spool?.journal(shard: loop.loopIndex, upstream: upstream.url.description), logger: loop.logger)
        lane.onAvailable = loop.wake
        lane.returnToBuffer = loop.handBack
        return lane
    }
}
