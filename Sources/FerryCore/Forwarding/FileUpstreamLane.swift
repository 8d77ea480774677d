import NIOCore

/// One event loop's way into the shared ``FileSink`` of a `file:` upstream.
///
/// Turns a batch into the exact bytes to append (one line per log), then hands
/// it to the sink's thread; the reservation is released once it is written.
final class FileUpstreamLane: UpstreamLane {
    let upstream: Upstream
    private let sink: FileSink
    private let eventLoop: any EventLoop
    private let settlement: Settlement
    private let laneIndex: Int
    private let allocator = ByteBufferAllocator()
    /// Gives logs the file did not take back to the loop's buffer (runs on the loop).
    var returnToBuffer: (@Sendable ([ByteBuffer], Int, NIODeadline, SpoolSpans) -> Void)?

    init(upstream: Upstream, sink: FileSink, eventLoop: any EventLoop, settlement: Settlement, laneIndex: Int) {
        self.upstream = upstream
        self.sink = sink
        self.eventLoop = eventLoop
        self.settlement = settlement
        self.laneIndex = laneIndex
    }

    var canAccept: Bool { sink.isHealthy && upstream.allowsTraffic() }

    func start() -> EventLoopFuture<Void> {
        upstream.setAvailable(true, lane: laneIndex)
        return eventLoop.makeSucceededVoidFuture()
    }

    func stop() -> EventLoopFuture<Void> {
        upstream.setAvailable(false, lane: laneIndex)
        return eventLoop.makeSucceededVoidFuture()
    }

    func repoint(to address: SocketAddress) {}

    func send(_ records: [ByteBuffer], bytes: Int, receivedAt: NIODeadline, spans: SpoolSpans) {
        _ = upstream.acquire()  // a file takes what it is given; this only tracks half-open probes
        var blob = allocator.buffer(capacity: bytes + records.count)
        var lineEnds: [Int] = []
        lineEnds.reserveCapacity(records.count)
        for record in records {
            LineFormat.append(record, to: &blob)
            lineEnds.append(blob.readableBytes)
        }
        let upstream = self.upstream
        let settlement = self.settlement
        let eventLoop = self.eventLoop
        let handBack = self.returnToBuffer
        sink.write(blob, lineEnds: lineEnds) { outcome in
            let written: Int
            switch outcome {
            case .written:
                written = records.count
                upstream.record(success: true)
            case .partial(let lines):
                written = lines
            case .abandoned:
                // Given up at shutdown, after the drain deadline: the batch keeps
                // its reservation and is counted as undrained.
                return
            }
            let writtenBytes = records.prefix(written).reduce(0) { $0 + $1.readableBytes }
            if written > 0 {
                upstream.observeLatency(since: receivedAt)
                settlement.settle(count: written, bytes: writtenBytes, spans: spans.prefix(written))
                upstream.forwarded.add(written)
                upstream.forwardedBytes.add(writtenBytes)
            }
            if written < records.count {
                // Not in the file (it was cut back to a line boundary): the rest
                // keeps its reservation and goes back to the buffer, to fail over.
                let rest = Array(records[written...])
                upstream.failovers.add(1)
                let restSpans = spans.dropFirst(written)
                eventLoop.execute { handBack?(rest, bytes - writtenBytes, receivedAt, restSpans) }
            }
        }
    }
}

/// How a log becomes one line of a file upstream.
///
/// The payload is written as it is, followed by a newline unless it already
/// ends with one. A newline inside the payload would split one log into two
/// lines, so it is written as `#012`, rsyslog's escape for it.
enum LineFormat {
    static func append(_ record: ByteBuffer, to blob: inout ByteBuffer) {
        record.withUnsafeReadableBytes { bytes in
            guard !bytes.isEmpty else {
                blob.writeInteger(UInt8(ascii: "\n"))
                return
            }
            let last = bytes.count - 1
            var start = 0
            for index in 0..<last where bytes[index] == UInt8(ascii: "\n") {
                blob.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[start..<index]))
                blob.writeStaticString("#012")
                start = index + 1
            }
            blob.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[start...]))
            if bytes[last] != UInt8(ascii: "\n") {
                blob.writeInteger(UInt8(ascii: "\n"))
            }
        }
    }
}
