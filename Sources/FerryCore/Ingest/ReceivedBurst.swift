import NIOCore

/// What one `recvmmsg` brought in on one receive socket, sorted for the pipeline.
///
/// The burst is the unit of work above the socket: the pipeline reserves room,
/// decides on an upstream and writes once per burst, never per datagram.
package struct ReceivedBurst: Sendable {
    /// Plain datagrams (one log each), as slices of the receive buffer.
    package var records: [ByteBuffer] = []
    /// Payload bytes of `records`.
    package var recordBytes = 0
    /// `ferry://` frames, with the sender each acknowledgement goes back to
    /// and their place among `records` (a burst with frames keeps its order).
    package var frames: [ReceivedFrame] = []
    /// Real lengths of datagrams longer than `datagram.max-bytes`: read cut,
    /// counted as `oversize`, never forwarded.
    package var oversize: [Int] = []
    /// Where `records` are in the spool (empty without one). With a spool, the
    /// receive thread admitted them: they hold room in the memory buffer
    /// already (or, when it had none, they are on disk only and `records` is empty).
    package var spans = SpoolSpans()
    /// When the burst was read (the start of its forward latency).
    package var receivedAt: NIODeadline
    /// The records were refused on the receive thread's direct route: they wait
    /// in the buffer and are retried, instead of being sent again at once.
    package var failedDirectSend = false
    /// Datagrams refused before they were looked at: from a source the
    /// listener's `allow` does not cover, or over the source's rate limit; and one source of each, for the warning.
    var denied = 0
    var rateLimited = 0
    var deniedSource: SourceKey?
    var rateLimitedSource: SourceKey?
    /// The socket the burst's frames came to, which acknowledges them (set only when it has frames).
    package var replySocket: ReceiveSocket?
    /// The listener it came to: its position in `listen` (routes may match by listener).
    package var listener = 0
    /// Each record's source address, kept only when a route needs it (a `source` match, or `balance`).
    var sources: [SourceKey?] = []

    /// The sources of records `range` (nil each when none were kept).
    func sources(_ range: Range<Int>) -> [SourceKey?] {
        sources.count >= range.upperBound ? Array(sources[range]) : [SourceKey?](repeating: nil, count: range.count)
    }

    package init(receivedAt: NIODeadline = .now()) {
        self.receivedAt = receivedAt
    }

    package init(records: [ByteBuffer], receivedAt: NIODeadline = .now()) {
        self.records = records
        self.recordBytes = records.reduce(0) { $0 + $1.readableBytes }
        self.receivedAt = receivedAt
    }
}

/// A datagram that carries a `ferry://` frame, and where it came from.
package struct ReceivedFrame: Sendable {
    package var datagram: ByteBuffer
    package var sender: SocketAddress
    /// How many of the burst's records arrived before this frame.
    package var position: Int
}
