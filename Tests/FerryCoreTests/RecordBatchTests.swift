import NIOCore
import Testing

@testable import FerryCore

/// Waiting logs: copied once, then taken from the front without copying.
struct RecordBatchTests {
    private func batch(_ texts: [String]) -> RecordBatch {
        let records = texts.map { ByteBuffer(string: $0) }
        return RecordBatch(
            copying: records, bytes: records.reduce(0) { $0 + $1.readableBytes }, receivedAt: .now(),
            spans: SpoolSpans(SpoolRun(shard: 0, first: 10, count: records.count)), allocator: ByteBufferAllocator())
    }

    @Test func takesFromTheFrontWhatFitsABudget() {
        var waiting = batch(["aaaa", "bb", "cccccc", "d"])
        #expect(waiting.count == 4 && waiting.bytes == 13)
        #expect(waiting.countFitting(bytes: 6) == 2)  // aaaa + bb
        #expect(waiting.countFitting(bytes: 3) == 1)  // always at least one, so a large log still moves
        #expect(waiting.countFitting(bytes: .max) == 4)
        let (first, bytes, spans) = waiting.takeFirst(2)
        #expect(first.map { String(buffer: $0) } == ["aaaa", "bb"] && bytes == 6)
        #expect(spans == SpoolSpans(SpoolRun(first: 10, count: 2)))  // their place in the spool goes with them
        #expect(waiting.count == 2 && waiting.bytes == 7)
        #expect(waiting.records.map { String(buffer: $0) } == ["cccccc", "d"])
        #expect(waiting.countFitting(bytes: 6) == 1)
        let (rest, restBytes, restSpans) = waiting.takeFirst(2)
        #expect(rest.map { String(buffer: $0) } == ["cccccc", "d"] && restBytes == 7)
        #expect(restSpans == SpoolSpans(SpoolRun(first: 12, count: 2)))
        #expect(waiting.count == 0 && waiting.bytes == 0)
    }
}
