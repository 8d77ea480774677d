import Logging
import NIOCore

/// One configured upstream's kind (`udp://`, `ferry://`, `file:`): what it opens
/// once for the whole process, and the lane it gives each event loop.
///
/// Adding a kind (`tcp://`, `tls://`) is a new type conforming to this, its
/// lane (``UpstreamLane``), and a case in ``UpstreamKinds/open(_:context:)``
/// where URLs are turned into kinds; the pipeline and the relay do not change.
package protocol UpstreamKind: Sendable {
    var upstream: Upstream { get }
    /// The lane of one loop's pipeline; called once per loop, on that loop.
    func makeLane(_ loop: LaneContext) -> any UpstreamLane
    /// Reopens files (SIGHUP); returns what it reopened, if anything.
    func reopen() -> String?
    /// Settles and releases what the kind opened (at shutdown, before the lanes stop).
    func close() async
}

extension UpstreamKind {
    package func reopen() -> String? { nil }
    package func close() async {}
}

/// What a lane needs of the loop and route it belongs to: the loop, the shared
/// buffer, and the two ways back into its route's queue.
package struct LaneContext {
    let loopIndex: Int
    let eventLoop: any EventLoop
    let capacity: BufferCapacity
    /// Gives back the buffer room and spool place of records that left.
    let settlement: Settlement
    /// The spool the lane's route keeps its logs in (its frame journal lives there), if any.
    let spool: Spool?
    let counters: PipelineCounters
    let logger: Logger
    /// The lane can take traffic again: waiting logs should move (runs on the loop).
    let wake: () -> Void
    /// Logs the lane could not deliver go back to the front of the buffer (runs on the loop).
    let handBack: @Sendable ([ByteBuffer], Int, NIODeadline, SpoolSpans) -> Void
    /// Whether the lane's route has another upstream its logs could fail over to now (runs on the loop).
    let hasOtherUpstreams: () -> Bool

    /// - Parameter upstream: the id of the lane's upstream (records it hands back are marked with it).
    init(owner: LaneOwner, upstream: Int, logger: Logger) {
        let pipeline = owner.queue.pipeline
        loopIndex = pipeline.index
        eventLoop = pipeline.eventLoop
        self.capacity = pipeline.capacity
        self.settlement = pipeline.settlement
        self.spool = owner.queue.spool ?? pipeline.spool
        counters = pipeline.counters
        self.logger = logger
        wake = { [unowned owner] in owner.queue.drainShard() }
        hasOtherUpstreams = { [unowned owner] in owner.queue.lanes.count > 1 }
        let loopBound = NIOLoopBound(owner, eventLoop: pipeline.eventLoop)
        handBack = { records, bytes, receivedAt, spans in
            loopBound.value.queue.returnToBuffer(records, bytes: bytes, receivedAt: receivedAt, spans: spans, from: upstream)
        }
    }
}

/// The route queue one loop's lane belongs to now. A reload that changes a
/// route gives its lanes to the route's new queue: what they hand back then
/// goes there, and their connections, windows and breakers carry on.
final class LaneOwner {
    var queue: RouteQueue

    init(queue: RouteQueue) {
        self.queue = queue
    }
}

/// Settings every kind may need when it is opened.
package struct UpstreamKindContext: Sendable {
    /// The spool's `sender-id` (0 without a spool): whose frames a journal of an earlier release holds.
    var legacyInstanceID: UInt64
    var frameSettings: FerryUpstreamLane.Settings
    var logger: Logger
    /// How often `file:` upstreams sync their lines: as the spool does (`spool.fsync`); nil without a spool or under `never`.
    var fileSyncEvery: Duration? = nil
    /// Verification of `tls://` upstreams (`upstream-tls.*`).
    var tlsUpstream = TLSUpstreamSettings()
}

/// Where upstream URLs become kinds: the one place that knows them all.
package enum UpstreamKinds {
    /// Opens `upstream`'s kind: resolves its name or opens its file, before any loop uses it.
    static func open(_ upstream: Upstream, context: UpstreamKindContext) throws -> any UpstreamKind {
        switch upstream.url {
        case .udp(let address):
            try NameResolver.resolveAtStart(address, for: upstream, logger: context.logger)
            return UDPUpstreamKind(upstream: upstream)
        case .ferry(let address):
            try NameResolver.resolveAtStart(address, for: upstream, logger: context.logger)
            return FerryUpstreamKind(upstream: upstream, legacyInstanceID: context.legacyInstanceID, settings: context.frameSettings)
        case .tcp(let address, let framing):
            return try StreamUpstreamKind.open(upstream, address: address, framing: framing, tls: nil, logger: context.logger)
        case .tls(let address, let framing):
            return try StreamUpstreamKind.open(upstream, address: address, framing: framing, tls: context.tlsUpstream, logger: context.logger)
        case .file(let path):
            let sink = try FileSink(path: path, upstream: upstream, syncEvery: context.fileSyncEvery, logger: context.logger)
            return FileUpstreamKind(upstream: upstream, sink: sink)
        }
    }
}
