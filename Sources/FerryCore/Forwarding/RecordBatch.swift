import NIOCore

/// Records kept while no upstream can take them, copied into one buffer.
///
/// A read burst arrives as slices of a receive slab; holding those slices
/// would pin the whole (large) slab and make the receive thread allocate a new
/// one. A batch that has to wait is therefore copied once into compact
/// storage; taking records from its front afterwards copies nothing.
struct RecordBatch {
    private(set) var storage: ByteBuffer
    private var lengths: [Int]
    /// Records already taken from the front.
    private var taken = 0
    private(set) var bytes: Int
    /// When the oldest of these records was received (for the latency histogram).
    let receivedAt: NIODeadline
    /// Where the records not yet taken are in the spool (empty without one).
    private(set) var spans: SpoolSpans
    /// Each record's source address, for routes that balance by source (empty when no route needs them).
    private(set) var sources: [SourceKey?]
    /// The upstream (id) that handed these records back, if one did: a balanced route sends them to another member.
    var handedBackBy: Int?

    init(
        copying records: [ByteBuffer], bytes: Int, receivedAt: NIODeadline, spans: SpoolSpans, sources: [SourceKey?] = [],
        allocator: ByteBufferAllocator
    ) {
        self.receivedAt = receivedAt
        self.spans = spans
        self.sources = sources
        var storage = allocator.buffer(capacity: bytes)
        var lengths: [Int] = []
        lengths.reserveCapacity(records.count)
        for var record in records {
            lengths.append(record.readableBytes)
            storage.writeBuffer(&record)
        }
        self.storage = storage
        self.lengths = lengths
        self.bytes = bytes
    }

    var count: Int { lengths.count - taken }

    /// The records as slices of the batch's storage.
    var records: [ByteBuffer] {
        var result: [ByteBuffer] = []
        result.reserveCapacity(count)
        var offset = storage.readerIndex
        for length in lengths[taken...] {
            result.append(storage.getSlice(at: offset, length: length)!)
            offset += length
        }
        return result
    }

    /// How many records from the front fit in `budget` payload bytes (at least one).
    func countFitting(bytes budget: Int) -> Int {
        var total = 0
        var fitting = 0
        for length in lengths[taken...] {
            total += length
            if total > budget, fitting > 0 { break }
            fitting += 1
        }
        return fitting
    }

    /// Removes the first `count` records and returns them (slices) with their bytes.
    mutating func takeFirst(_ count: Int) -> (records: [ByteBuffer], bytes: Int, spans: SpoolSpans) {
        var result: [ByteBuffer] = []
        result.reserveCapacity(count)
        var taken = 0
        for length in lengths[self.taken..<(self.taken + count)] {
            result.append(storage.getSlice(at: storage.readerIndex, length: length)!)
            storage.moveReaderIndex(forwardBy: length)
            taken += length
        }
        self.taken += count
        bytes -= taken
        if !sources.isEmpty { sources.removeFirst(min(count, sources.count)) }
        let takenSpans = spans.prefix(count)
        spans = spans.dropFirst(count)
        return (result, taken, takenSpans)
    }
}
