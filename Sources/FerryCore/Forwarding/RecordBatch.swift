import NIOCore

/// Records kept while no upstream can take them, copied into one buffer.
///
/// A read burst arrives as slices of NIO's receive buffer; holding those slices
/// would pin the whole (large) receive buffer and force NIO to allocate a new
/// one. A batch that has to wait is therefore copied once into compact storage.
struct RecordBatch {
    private(set) var storage: ByteBuffer
    private(set) var lengths: [Int]
    private(set) var bytes: Int
    /// When the oldest of these records was received (for the latency histogram).
    let receivedAt: NIODeadline

    init(copying records: [ByteBuffer], bytes: Int, receivedAt: NIODeadline, allocator: ByteBufferAllocator) {
        self.receivedAt = receivedAt
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

    var count: Int { lengths.count }

    /// The records as slices of the batch's storage.
    var records: [ByteBuffer] {
        var result: [ByteBuffer] = []
        result.reserveCapacity(lengths.count)
        var offset = storage.readerIndex
        for length in lengths {
            result.append(storage.getSlice(at: offset, length: length)!)
            offset += length
        }
        return result
    }
}
