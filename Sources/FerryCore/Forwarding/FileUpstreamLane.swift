import NIOCore

/// One event loop's way into the shared ``FileSink`` of a `file:` upstream.
///
/// Turns a batch into the exact bytes to append (one line per log), then hands
/// it to the sink's thread; the reservation is released once it is written.
final class FileUpstreamLane: UpstreamLane {
    let upstream: Upstream
    private let sink: FileSink
    private let eventLoop: any EventLoop
    private let capacity: BufferCapacity
    private let laneIndex: Int
    private let allocator = ByteBufferAllocator()

    init(upstream: Upstream, sink: FileSink, eventLoop: any EventLoop, capacity: BufferCapacity, laneIndex: Int) {
        self.upstream = upstream
        self.sink = sink
        self.eventLoop = eventLoop
        self.capacity = capacity
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

    func send(_ records: [ByteBuffer], bytes: Int, receivedAt: NIODeadline) {
        _ = upstream.acquire()  // a file takes what it is given; this only tracks half-open probes
        var blob = allocator.buffer(capacity: bytes + records.count)
        for record in records {
            LineFormat.append(record, to: &blob)
        }
        let count = records.count
        let upstream = self.upstream
        let capacity = self.capacity
        sink.write(blob) { written in
            // A batch the sink gave up on (only at shutdown, after the drain
            // deadline) keeps its reservation: it is counted as undrained.
            guard written else { return }
            upstream.record(success: true)
            upstream.observeLatency(since: receivedAt)
            capacity.release(count: count, bytes: bytes)
            upstream.forwarded.add(count)
            upstream.forwardedBytes.add(bytes)
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
