import NIOCore

/// The pipeline's side of `tcp://` and `tls://` connections.
extension LoopPipeline {
    /// Takes messages one connection read, as many as there is room for (the
    /// first ones), and returns how many it took. The rest stay with the
    /// connection, which stops reading until there is room: the sender's TCP
    /// window holds them (backpressure, not a drop).
    ///
    /// Taken messages are counted as received; with a spool they are appended
    /// to it first (on disk only while the memory buffer is full).
    func receiveStream(_ records: ArraySlice<ByteBuffer>, transport: Transport, listener: Int = 0, source: SourceKey? = nil) -> Int {
        guard !records.isEmpty else { return 0 }
        let bytes = records.reduce(0) { $0 + $1.readableBytes }
        if registry != nil {
            // Each route's spool takes its own (a route past its cap drops its oldest, counted): all are taken.
            let taken = Array(records)
            counters.countReceived(transport, logs: taken.count, bytes: bytes)
            sampler.consider(taken, transport: transport)
            counters.countPriorities(taken)
            route(taken, bytes: bytes, receivedAt: .now(), spans: SpoolSpans(), sources: sources(source, taken.count), listener: listener)
            return taken.count
        }
        if let spoolShard {
            let admission = spoolShard.admit(records, bytes: bytes, capacity: capacity, allOrNothing: false)
            guard let run = admission.run, run.count > 0 else { return 0 }
            let taken = Array(records.prefix(run.count))
            let takenBytes = run.count == records.count ? bytes : taken.reduce(0) { $0 + $1.readableBytes }
            counters.countReceived(transport, logs: taken.count, bytes: takenBytes)
            sampler.consider(taken, transport: transport)
            counters.countPriorities(taken)
            if admission.inMemory {
                route(taken, bytes: takenBytes, receivedAt: .now(), spans: SpoolSpans(run), sources: sources(source, taken.count), listener: listener)
            } else {
                routes[0].scheduleRetry()  // on disk only: read back once there is room
            }
            return taken.count
        }
        let (count, takenBytes) = capacity.reservePrefix(of: records) { $0.readableBytes }
        guard count > 0 else { return 0 }
        let taken = Array(records.prefix(count))
        counters.countReceived(transport, logs: count, bytes: takenBytes)
        sampler.consider(taken, transport: transport)
        counters.countPriorities(taken)
        route(taken, bytes: takenBytes, receivedAt: .now(), spans: SpoolSpans(), sources: sources(source, count), listener: listener)
        return count
    }

    /// One connection's source for each of `count` logs, when a route needs sources.
    private func sources(_ source: SourceKey?, _ count: Int) -> [SourceKey?] {
        table.readsSource ? [SourceKey?](repeating: source, count: count) : []
    }
}
