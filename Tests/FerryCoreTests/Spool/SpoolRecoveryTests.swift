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

    /// Found by the SpoolRecovery fuzz target: a segment named 2^63 beside
    /// segment 1 made recovery count the 2^63 sequences between them as
    /// damaged (`Int(sequence - watermark)` trapped). Sequences stop at 2^62:
    /// such a name is a foreign file, and a progress file past it is unreadable.
    @Test(arguments: [false, true])
    func sequencesPastTheLimitAreDamageNotACountThatTraps(withProgressPastTheLimit: Bool) throws {
        let root = try scratchDirectory("spool-recovery")
        let shard = root + "/shard-0"
        try FileManager.default.createDirectory(atPath: shard, withIntermediateDirectories: true)
        for first: UInt64 in [1, 1 << 63] {
            var segment = ByteBuffer()
            SpoolRecordFormat.encodeSegmentHeader(shard: 0, firstSequence: first, into: &segment)
            SpoolRecordFormat.encodeRecord(sequence: first + 4, payload: ByteBuffer(string: "log"), into: &segment)
            try Data(segment.readableBytesView).write(to: URL(fileURLWithPath: shard + "/" + String(format: "%016llx.seg", first)))
        }
        if withProgressPastTheLimit {
            var progress = ProgressFile(path: shard + "/progress-default")
            #expect(progress.write(.max - 1) == nil)
            progress.close()
        }
        let settings = SpoolSettings(directory: root, maxBytes: 1 << 20, segmentBytes: 4096, sync: .never, syncInterval: .seconds(1))
        let spool = try Spool.open(settings: settings, shardCount: 1, logger: logger)
        defer { spool.close() }
        let report = spool.recoveries[0]
        #expect(report.foreignFiles == ["8000000000000000.seg"] && report.progressLost)
        #expect(report.recovered == 5 && report.damagedRecords == 4)  // 1...4 missing, 5 held
    }
}
