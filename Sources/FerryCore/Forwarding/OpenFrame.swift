import NIOCore

/// The logs of a `ferry://` lane's next frame while it is not yet full: held
/// (`forward.frame-linger`) so that the next read bursts fill it, instead of
/// every burst costing a frame and an acknowledgement on both hops.
///
/// The records arrive as slices of a receive slab that is reused for the next
/// read, so each is copied once, appended to the frame's own storage. The
/// storage is cleared when the next frame opens, by which time the send that
/// took the last one has let go of its slices: clearing keeps its memory, and
/// holding allocates nothing in steady state.
package struct OpenFrame {
    private var storage = ByteBuffer()
    private var lengths: [Int] = []
    /// Payload bytes held.
    package private(set) var bytes = 0
    /// Where the held logs are in the spool (empty without one).
    package private(set) var spans = SpoolSpans()
    /// When the oldest held log was received (for the latency histogram).
    package private(set) var receivedAt = NIODeadline.uptimeNanoseconds(0)
    /// When the frame opened: it leaves at this plus the linger, full or not.
    package private(set) var openedAt = NIODeadline.uptimeNanoseconds(0)

    package init() {}

    package var count: Int { lengths.count }
    package var isEmpty: Bool { lengths.isEmpty }

    /// Appends the held records (slices of the frame's storage) to `records`.
    package func appendRecords(to records: inout [ByteBuffer]) {
        var offset = storage.readerIndex
        for length in lengths {
            records.append(storage.getSlice(at: offset, length: length)!)
            offset += length
        }
    }

    /// Copies `records` in after those held; the first ones open the frame (at `now`).
    package mutating func append(_ records: [ByteBuffer], spans: SpoolSpans, receivedAt: NIODeadline, now: NIODeadline) {
        if lengths.isEmpty {
            storage.clear()
            self.spans = spans
            self.receivedAt = receivedAt
            openedAt = now
        } else if !spans.isEmpty {
            self.spans.append(contentsOf: spans)
        }
        for record in records {
            lengths.append(record.readableBytes)
            bytes += record.readableBytes
            storage.writeImmutableBuffer(record)
        }
    }

    /// Lets go of the held logs (sent, given back or settled by the caller).
    package mutating func removeAll() {
        lengths.removeAll(keepingCapacity: true)
        bytes = 0
        spans = SpoolSpans()
    }
}
