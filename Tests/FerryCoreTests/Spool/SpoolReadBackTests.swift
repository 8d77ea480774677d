import FerryTestSupport
import Foundation
import Logging
import NIOCore
import Testing

@testable import FerryCore

/// A route queue's read-back source, on a real spool directory.
struct SpoolReadBackTests {
    private let logger = Logger(label: "spool-read-back-test")

    /// A spool whose shard `n` holds the one log "log n" from an earlier run.
    private func spoolWithOneLogPerShard(_ count: Int) throws -> Spool {
        let root = try scratchDirectory("spool-read-back")
        for index in 0..<count {
            let shard = root + "/shard-\(index)"
            try FileManager.default.createDirectory(atPath: shard, withIntermediateDirectories: true)
            var segment = ByteBuffer()
            SpoolRecordFormat.encodeSegmentHeader(shard: index, firstSequence: 1, into: &segment)
            SpoolRecordFormat.encodeRecord(sequence: 1, payload: ByteBuffer(string: "log \(index)"), into: &segment)
            try Data(segment.readableBytesView).write(to: URL(fileURLWithPath: shard + "/0000000000000001.seg"))
        }
        let settings = SpoolSettings(directory: root, maxBytes: 1 << 20, segmentBytes: 4096, sync: .never, syncInterval: .seconds(1))
        return try Spool.open(settings: settings, shardCount: count, logger: logger)
    }

    private func readAll(_ readBack: SpoolReadBack) -> [String] {
        let capacity = BufferCapacity(logs: 100, bytes: 1 << 20)
        var texts: [String] = []
        for _ in 0..<10 {
            guard let (read, _) = readBack.read(maximum: 64, capacity: capacity, allocator: ByteBufferAllocator()) else { break }
            texts += read.records.map { String(buffer: $0) }
        }
        return texts
    }

    /// With fewer loops than the earlier run had, loop `i` also reads the
    /// shards `i + loopCount`, `i + 2 × loopCount`…; each log is read once.
    @Test func aLoopReadsItsOwnShardAndThoseOfLoopsThatAreGone() throws {
        let spool = try spoolWithOneLogPerShard(4)
        defer { spool.close() }
        let first = SpoolReadBack(shards: SpoolReadBack.shards(of: spool, readBy: 0, loopCount: 2), countsAsRouted: true)
        let second = SpoolReadBack(shards: SpoolReadBack.shards(of: spool, readBy: 1, loopCount: 2), countsAsRouted: true)
        #expect(first.hasSpilled && second.hasSpilled)
        #expect(readAll(first) == ["log 0", "log 2"])
        #expect(readAll(second) == ["log 1", "log 3"])
        #expect(!first.hasSpilled && !second.hasSpilled)
    }

    /// A queue a reload replaced stops reading: its replacement reads the same shards.
    @Test func aStoppedReadBackReadsNothing() throws {
        let spool = try spoolWithOneLogPerShard(1)
        defer { spool.close() }
        var replaced = SpoolReadBack(shards: SpoolReadBack.shards(of: spool, readBy: 0, loopCount: 1), countsAsRouted: false)
        let replacement = replaced
        replaced.stop()
        #expect(!replaced.hasSpilled && readAll(replaced).isEmpty)
        #expect(readAll(replacement) == ["log 0"])
    }
}
