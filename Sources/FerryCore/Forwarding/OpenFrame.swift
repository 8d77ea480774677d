import NIOCore

/// The logs of a `ferry://` lane's last frame while it is not yet full: held
/// (`forward.frame-linger`) so that the next read bursts fill it, instead of
/// every burst costing a frame and an acknowledgement on both hops.
///
/// The records arrive as slices of a receive slab that is reused for the next
/// read, so they are copied into the frame's own storage. Two storages take
/// turns: the records held now are read from one while what stays open is
/// copied into the other, which by then nothing refers to any more (the
/// caller's slices of it went with the send before), so clearing it keeps its
/// memory and holding allocates nothing in steady state.
struct OpenFrame {
    private var storages = [ByteBuffer](repeating: ByteBuffer(), count: 2)
    private var current = 0
    private var lengths: [Int] = []
    /// Payload bytes held.
    private(set) var bytes = 0
    /// Where the held logs are in the spool (empty without one).
    private(set) var spans = SpoolSpans()
    /// When the oldest held log was received (for the latency histogram).
    private(set) var receivedAt = NIODeadline.uptimeNanoseconds(0)
    /// When the frame opened: it leaves at this plus the linger, full or not.
    private(set) var openedAt = NIODeadline.uptimeNanoseconds(0)

    var count: Int { lengths.count }
    var isEmpty: Bool { lengths.isEmpty }

    /// Appends the held records (slices of the current storage) to `records`.
    func appendRecords(to records: inout [ByteBuffer]) {
        var offset = storages[current].readerIndex
        for length in lengths {
            records.append(storages[current].getSlice(at: offset, length: length)!)
            offset += length
        }
    }

    /// Holds `records` as the open frame, in place of what was held (the
    /// caller has put that first in `records`, if it stays). `openedAt` stays
    /// with `keepsOpening`: the frame's first held log is still in it.
    mutating func hold(_ records: [ByteBuffer], spans: SpoolSpans, receivedAt: NIODeadline, keepsOpening: Bool, now: NIODeadline) {
        let next = 1 - current
        storages[next].clear()
        lengths.removeAll(keepingCapacity: true)
        bytes = 0
        for record in records {
            lengths.append(record.readableBytes)
            bytes += record.readableBytes
            storages[next].writeImmutableBuffer(record)
        }
        self.spans = spans
        self.receivedAt = receivedAt
        if !keepsOpening { openedAt = now }
        current = next
    }

    /// Lets go of the held logs (sent, given back or settled by the caller).
    mutating func removeAll() {
        lengths.removeAll(keepingCapacity: true)
        bytes = 0
        spans = SpoolSpans()
    }
}
