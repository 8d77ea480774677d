/// `file:PATH`: one line per log, appended by one ``FileSink`` that every loop's lane hands batches to.
struct FileUpstreamKind: UpstreamKind {
    let upstream: Upstream
    let sink: FileSink

    func makeLane(_ loop: LaneContext) -> any UpstreamLane {
        let lane = FileUpstreamLane(upstream: upstream, sink: sink, eventLoop: loop.eventLoop, settlement: loop.settlement, laneIndex: loop.loopIndex)
        lane.returnToBuffer = loop.handBack
        return lane
    }

    func reopen() -> String? {
        sink.reopen()
        return sink.path
    }

    func close() async {
        await sink.close()
    }
}
