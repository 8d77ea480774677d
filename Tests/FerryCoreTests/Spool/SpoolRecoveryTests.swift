import FerryTestSupport
import Foundation
import Logging
import NIOCore
import Testing

@testable import FerryCore

/// Recovery of spool directories the fuzzer made: what is recovered, read
/// back and counted lost adds up.
struct SpoolRecoveryTests {
    private let logger = Logger(label: "spool-recovery-test")

    /// Found by the SpoolRecovery fuzz target: segment 1 holds log 1, and a
    /// later segment named 3 holds only a torn tail. Recovery counted 1 log
    /// (the next sequence 2) but kept the empty segment 3, so the read-back
    /// counted sequence 2 lost as well (read 1 + lost 1 of 1 recovered), and
    /// the next new segment sat before it in the spool's order.
    @Test func aSegmentWithNoReadableRecordIsRemovedAndNothingIsCountedTwice() throws {
        let root = try scratchDirectory("spool-recovery")
        let shard = root + "/shard-0"
        try FileManager.default.createDirectory(atPath: shard, withIntermediateDirectories: true)
        var first = ByteBuffer()
        SpoolRecordFormat.encodeSegmentHeader(shard: 0, firstSequence: 1, into: &first)
        SpoolRecordFormat.encodeRecord(sequence: 1, payload: ByteBuffer(string: "log 1"), into: &first)
        var third = ByteBuffer()
        SpoolRecordFormat.encodeSegmentHeader(shard: 0, firstSequence: 3, into: &third)
        third.writeBytes([0, 1])  // the fuzzer's torn tail
        try Data(first.readableBytesView).write(to: URL(fileURLWithPath: shard + "/0000000000000001.seg"))
        try Data(third.readableBytesView).write(to: URL(fileURLWithPath: shard + "/0000000000000003.seg"))

        let settings = SpoolSettings(directory: root, maxBytes: 1 << 20, segmentBytes: 4096, sync: .never, syncInterval: .seconds(1))
        let spool = try Spool.open(settings: settings, shardCount: 1, logger: logger)
        defer { spool.close() }
        #expect(spool.recoveries[0].recovered == 1)
        let capacity = BufferCapacity(logs: 100, bytes: 1 << 20)
        var texts: [String] = []
        var lost = 0
        for _ in 0..<10 where spool.shards[0].isSpilling {
            let read = spool.shards[0].readSpilled(maxRecords: 64, capacity: capacity, allocator: ByteBufferAllocator())
            texts += read.records.map { String(buffer: $0) }
            lost += read.lost
        }
        #expect(texts == ["log 1"] && lost == 0)
        #expect(!FileManager.default.fileExists(atPath: shard + "/0000000000000003.seg"))
        #expect(spool.shards[0].state.withLock { $0.segments.map(\.first) } == [1, 2])
    }
}
