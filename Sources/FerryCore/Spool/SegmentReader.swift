import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// Reads the records of one segment file from an offset, in chunks, through a
/// ``SpoolRecordScanner``: the recovery scan and the read-back of spilled logs.
///
/// Bounded: at most one chunk (256 KiB, or one largest record) is held at a
/// time, and every chunk moves the position forward.
struct SegmentReader {
    /// What a read found besides records.
    struct Outcome {
        /// Where reading stopped: after the last record visited, or at `end`.
        var offset: Int
        /// Bytes that were not records (damage), skipped.
        var damagedBytes = 0
        /// Bytes at the end that were cut short (a torn tail), from `tornFrom`.
        var tornFrom: Int?
        /// The read stopped because the visitor asked it to.
        var stoppedEarly = false
    }

    let descriptor: CInt
    var scanner: SpoolRecordScanner
    /// Bytes read at a time (grown to one largest record when one does not fit);
    /// the fuzz target sets it small to cross chunk boundaries.
    var chunkBytes = 256 << 10

    /// Visits records from `offset` up to `end` (the bytes written so far), in
    /// order. `visit` gets each record's sequence, payload (a slice of the
    /// chunk) and offset in the file, and returns false to stop before it.
    mutating func read(
        from offset: Int, to end: Int, allocator: ByteBufferAllocator, visit: (UInt64, ByteBuffer, Int) -> Bool
    ) -> Outcome {
        var outcome = Outcome(offset: offset)
        var chunkSize = chunkBytes
        var chunk = allocator.buffer(capacity: chunkSize)
        var damageStart: Int?
        while outcome.offset < end {
            let want = min(chunkSize, end - outcome.offset)
            chunk.clear(minimumCapacity: want)
            let got = chunk.writeWithUnsafeMutableBytes(minimumWritableBytes: want) { bytes in
                max(0, pread(descriptor, bytes.baseAddress, want, off_t(outcome.offset)))
            }
            guard got > 0 else { break }
            let atEnd = outcome.offset + got >= end
            var position = 0
            var needMore = false
            chunk.withUnsafeReadableBytes { region in
                scanning: while position < region.count {
                    switch scanner.step(in: region, at: position, atEnd: atEnd) {
                    case .record(let sequence, let payload, let next):
                        if let start = damageStart {
                            outcome.damagedBytes += outcome.offset + position - start
                            damageStart = nil
                        }
                        let payloadBuffer = chunk.getSlice(at: chunk.readerIndex + payload.lowerBound, length: payload.count)!
                        if !visit(sequence, payloadBuffer, outcome.offset + position) {
                            outcome.stoppedEarly = true
                            break scanning
                        }
                        position = next
                    case .needMore(let at):
                        position = at
                        needMore = true
                        break scanning
                    case .damaged(let resumeAt):
                        if damageStart == nil { damageStart = outcome.offset + position }
                        position = resumeAt
                    }
                }
            }
            if outcome.stoppedEarly {
                outcome.offset += position
                return outcome
            }
            if needMore && position == 0 {
                // One record longer than the chunk: read it whole next time.
                guard chunkSize < SpoolRecordFormat.maximumPayloadBytes + SpoolRecordFormat.recordHeaderBytes else { break }
                chunkSize = SpoolRecordFormat.maximumPayloadBytes + SpoolRecordFormat.recordHeaderBytes
                continue
            }
            outcome.offset += position
        }
        if let start = damageStart {
            // Damage that runs to the end of what was written: a torn tail.
            outcome.tornFrom = start
            outcome.offset = end
        }
        return outcome
    }
}
