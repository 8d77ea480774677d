import FerryTestSupport
import Foundation
import NIOCore
import Testing

@testable import FerryCore

/// The frame journal on real files: what is written is read back; a torn or
/// garbage file is never trusted; acknowledged frames leave once recorded.
struct FrameJournalTests {
    @Test func writesAndReadsBackFramesInFlight() throws {
        let dir = try scratchDirectory("journal")
        let journal = FrameJournal(directory: dir, shard: 2, key: "abc")
        journal.begin(next: 100)
        journal.opened(100, entry: .init(sentAtMilliseconds: 5, ttlMilliseconds: 10_000, runs: [SpoolRun(shard: 2, first: 1, count: 40)]), next: 101)
        journal.opened(101, entry: .init(sentAtMilliseconds: 6, ttlMilliseconds: 10_000, runs: [SpoolRun(shard: 2, first: 41, count: 9)]), next: 102)
        journal.acknowledged(100)
        journal.writeIfChanged(recordedWatermark: 1)  // 100 acknowledged but not recorded: kept
        var loaded = FrameJournal(directory: dir, shard: 2, key: "abc").load()
        #expect(loaded?.nextSequence == 102 && loaded?.entries.keys.sorted() == [100, 101])
        #expect(loaded?.entries[101]?.runs == [SpoolRun(shard: 2, first: 41, count: 9)])
        journal.writeIfChanged(recordedWatermark: 41)  // now recorded: 100 leaves
        loaded = FrameJournal(directory: dir, shard: 2, key: "abc").load()
        #expect(loaded?.entries.keys.sorted() == [101])
    }

    @Test func aTornOrForeignFileIsNotTrusted() throws {
        let dir = try scratchDirectory("journal")
        let journal = FrameJournal(directory: dir, shard: 0, key: "k")
        journal.opened(7, entry: .init(sentAtMilliseconds: 1, ttlMilliseconds: 1, runs: [SpoolRun(first: 1, count: 1)]), next: 8)
        journal.writeIfChanged(recordedWatermark: 0)  // generation 1: frames-k.1
        journal.closed(7)
        journal.writeIfChanged(recordedWatermark: 0)  // generation 2: frames-k.0
        // The newer file torn: the older one, one write behind, is used.
        let newer = dir + "/frames-k.0"
        let bytes = try Data(contentsOf: URL(fileURLWithPath: newer))
        try bytes.prefix(bytes.count - 3).write(to: URL(fileURLWithPath: newer))
        #expect(FrameJournal(directory: dir, shard: 0, key: "k").load()?.entries.keys.sorted() == [7])
        // Random bytes are never a snapshot.
        for length in [0, 3, 28, 200, 5000] {
            var random = ByteBuffer()
            for _ in 0..<length { random.writeInteger(UInt8.random(in: 0...255)) }
            #expect(FrameJournal.decode(random) == nil)
        }
    }
}
