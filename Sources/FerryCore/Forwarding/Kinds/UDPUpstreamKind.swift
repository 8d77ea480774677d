/// `udp://HOST:PORT`: each log one datagram, byte-identical, on a connected socket per loop.
struct UDPUpstreamKind: UpstreamKind {
    let upstream: Upstream

    func makeLane(_ loop: LaneContext) -> any UpstreamLane {
        let lane = UDPUpstreamLane(
            upstream: upstream, eventLoop: loop.eventLoop, settlement: loop.settlement, laneIndex: loop.loopIndex, logger: loop.logger)
        lane.onAvailable = loop.wake
        lane.returnToBuffer = loop.handBack
        return lane
    }
}
