import FerryTestSupport
import Foundation
import NIOCore
import Testing

@testable import FerryCore

/// The frame journal on real files: what is written is read back; a torn or
/// garbage file is never trusted; acknowledged frames leave once recorded;
/// each frame keeps the sender id it was first sent under; a journal written
/// by an earlier release (version 1) is read with the spool's sender id.
struct FrameJournalTests {
    private typealias Identity = FrameJournal.Identity

    @Test func writesAndReadsBackFramesInFlight() throws {
        let dir = try scratchDirectory("journal")
        let journal = FrameJournal(directory: dir, shard: 2, key: "abc")
        let (first, second) = (Identity(sender: 0xA00, sequence: 100), Identity(sender: 0xB00, sequence: 101))
        journal.opened(first, entry: .init(sentAtMilliseconds: 5, ttlMilliseconds: 10_000, runs: [SpoolRun(shard: 2, first: 1, count: 40)]))
        journal.opened(second, entry: .init(sentAtMilliseconds: 6, ttlMilliseconds: 10_000, runs: [SpoolRun(shard: 2, first: 41, count: 9)]))
        journal.acknowledged(first)
        journal.writeIfChanged(recordedWatermark: 1)  // acknowledged but not recorded: kept
        var loaded = FrameJournal(directory: dir, shard: 2, key: "abc").load()
        #expect(loaded?.entries.keys.sorted() == [first, second])
        #expect(loaded?.entries[second]?.runs == [SpoolRun(shard: 2, first: 41, count: 9)])
        journal.writeIfChanged(recordedWatermark: 41)  // now recorded: the first leaves
        loaded = FrameJournal(directory: dir, shard: 2, key: "abc").load()
        #expect(loaded?.entries.keys.sorted() == [second])
    }

    /// A run killed before it decided about every frame an earlier run left
    /// (sent again, or closed) leaves them all to the next: each write holds
    /// what was read back until the lane closes it.
    @Test func framesReadBackStayInTheJournalUntilClosed() throws {
        let dir = try scratchDirectory("journal")
        let earlier = FrameJournal(directory: dir, shard: 0, key: "k")
        let (first, second) = (Identity(sender: 0x100, sequence: 1), Identity(sender: 0x100, sequence: 2))
        earlier.opened(first, entry: .init(sentAtMilliseconds: 1, ttlMilliseconds: 1_000, runs: [SpoolRun(first: 1, count: 2)]))
        earlier.opened(second, entry: .init(sentAtMilliseconds: 1, ttlMilliseconds: 1_000, runs: [SpoolRun(first: 3, count: 2)]))
        earlier.writeIfChanged(recordedWatermark: 0)

        let next = FrameJournal(directory: dir, shard: 0, key: "k")
        #expect(next.load()?.entries.count == 2)
        let own = Identity(sender: 0x200, sequence: 7)
        next.opened(own, entry: .init(sentAtMilliseconds: 2, ttlMilliseconds: 1_000, runs: [SpoolRun(first: 5, count: 1)]))
        next.writeIfChanged(recordedWatermark: 0)  // killed now: nothing decided about the earlier frames yet
        #expect(FrameJournal(directory: dir, shard: 0, key: "k").load()?.entries.keys.sorted() == [first, second, own])

        next.closed(first)
        next.writeIfChanged(recordedWatermark: 0)
        #expect(FrameJournal(directory: dir, shard: 0, key: "k").load()?.entries.keys.sorted() == [second, own])
    }

    /// Found by the FrameJournal fuzz target: a journal whose checksum is right
    /// but whose run ends past the last sequence (first 2^64 − 1, 255 logs)
    /// was taken, and a restarted lane claiming it trapped on `SpoolRun.end`.
    /// It is not a journal Ferry wrote: it is not read, and the logs go out in new frames.
    @Test func aJournalWhoseRunEndsPastTheLastSequenceIsNotRead() throws {
        let dir = try scratchDirectory("journal")
        let entries = [
            Identity(sender: 0x100, sequence: 1): FrameJournal.Entry(
                sentAtMilliseconds: 1, ttlMilliseconds: 1_000, runs: [SpoolRun(first: 1, count: 2)]),
            Identity(sender: 0x100, sequence: 2): FrameJournal.Entry(
                sentAtMilliseconds: 1, ttlMilliseconds: 1_000, runs: [SpoolRun(first: .max, count: 255)]),
        ]
        let bytes = FrameJournal.encode(generation: 9, entries: entries)
        #expect(FrameJournal.decode(bytes) == nil)
        try Data(bytes.readableBytesView).write(to: URL(fileURLWithPath: dir + "/frames-k.0"))
        #expect(FrameJournal(directory: dir, shard: 0, key: "k").load() == nil)
        let last = [
            Identity(sender: 0x100, sequence: 3): FrameJournal.Entry(
                sentAtMilliseconds: 1, ttlMilliseconds: 1, runs: [SpoolRun(first: .max - 1, count: 1)])
        ]
        #expect(FrameJournal.decode(FrameJournal.encode(generation: 1, entries: last))?.1.entries == last)  // ends at UInt64.max: a run
    }

    /// Found reading the journal's consumer while fuzzing it: a frame sent again
    /// got a deadline of `Int64(sentAt + TTL - now)` ms, which trapped for a send
    /// time 2^63 ms ahead of the clock (a checksummed journal may say anything)
    /// and, for a clock set back by years, kept the frame for years. What is left
    /// of a frame's TTL is never more than its TTL.
    @Test func aFrameSentAheadOfTheClockWaitsAtMostItsTimeToLive() {
        let now: UInt64 = 1_765_000_000_000
        func entry(sentAt: UInt64) -> FrameJournal.Entry { .init(sentAtMilliseconds: sentAt, ttlMilliseconds: 10_000, runs: []) }
        #expect(entry(sentAt: now + (1 << 63)).remainingMilliseconds(at: now) == 10_000)
        #expect(entry(sentAt: .max).remainingMilliseconds(at: now) == 10_000)
        #expect(entry(sentAt: now + 30 * 365 * 86_400_000).remainingMilliseconds(at: now) == 10_000)
        #expect(entry(sentAt: now - 3_000).remainingMilliseconds(at: now) == 7_000)
        #expect(entry(sentAt: now - 10_000).remainingMilliseconds(at: now) == 0)
    }

    /// Two frames with one sequence under two sender ids (two runs of a lane) are two entries, never one.
    @Test func framesOfTwoRunsWithTheSameSequenceAreKeptApart() throws {
        let dir = try scratchDirectory("journal")
        let journal = FrameJournal(directory: dir, shard: 0, key: "k")
        let entry = FrameJournal.Entry(sentAtMilliseconds: 1, ttlMilliseconds: 1_000, runs: [SpoolRun(first: 1, count: 2)])
        journal.opened(Identity(sender: 0x100, sequence: 9), entry: entry)
        journal.opened(Identity(sender: 0x200, sequence: 9), entry: entry)
        journal.writeIfChanged(recordedWatermark: 0)
        #expect(FrameJournal(directory: dir, shard: 0, key: "k").load()?.entries.count == 2)
    }

    /// A version 1 journal (written by the release before per-lane sender ids) is read, its frames under the legacy sender.
    @Test func aVersionOneJournalIsReadWithTheSpoolsSenderID() throws {
        var buffer = ByteBuffer()
        buffer.writeBytes(Array("FERRYFJ1".utf8))
        buffer.writeInteger(UInt64(3))  // generation
        buffer.writeInteger(UInt32(70_000))  // next sequence
        buffer.writeInteger(UInt32(1))  // entries
        buffer.writeInteger(UInt32(65_000))
        buffer.writeInteger(UInt64(1_234))
        buffer.writeInteger(UInt32(10_000))
        buffer.writeInteger(UInt16(1))
        buffer.writeInteger(UInt64(17))
        buffer.writeInteger(UInt32(5))
        buffer.writeInteger(buffer.withUnsafeReadableBytes { CRC32C.checksum($0) })
        let decoded = FrameJournal.decode(buffer, legacySender: 0xABC01)
        #expect(decoded?.0 == 3)
        let entry = decoded?.1.entries[Identity(sender: 0xABC01, sequence: 65_000)]
        #expect(entry == .init(sentAtMilliseconds: 1_234, ttlMilliseconds: 10_000, runs: [SpoolRun(first: 17, count: 5)]))
    }

    @Test func aSnapshotDecodesToWhatWasEncoded() {
        let entries: [Identity: FrameJournal.Entry] = [
            Identity(sender: 0x1_0000_0001, sequence: 4): .init(sentAtMilliseconds: 9, ttlMilliseconds: 8, runs: [SpoolRun(first: 3, count: 2)]),
            Identity(sender: 0x2_0000_0000, sequence: 0): .init(sentAtMilliseconds: 1, ttlMilliseconds: 2, runs: []),
        ]
        let decoded = FrameJournal.decode(FrameJournal.encode(generation: 77, entries: entries))
        #expect(decoded?.0 == 77 && decoded?.1.entries == entries)
    }

    @Test func aTornOrForeignFileIsNotTrusted() throws {
        let dir = try scratchDirectory("journal")
        let journal = FrameJournal(directory: dir, shard: 0, key: "k")
        let identity = Identity(sender: 0x100, sequence: 7)
        journal.opened(identity, entry: .init(sentAtMilliseconds: 1, ttlMilliseconds: 1, runs: [SpoolRun(first: 1, count: 1)]))
        journal.writeIfChanged(recordedWatermark: 0)  // generation 1: frames-k.1
        journal.closed(identity)
        journal.writeIfChanged(recordedWatermark: 0)  // generation 2: frames-k.0
        // The newer file torn: the older one, one write behind, is used.
        let newer = dir + "/frames-k.0"
        let bytes = try Data(contentsOf: URL(fileURLWithPath: newer))
        try bytes.prefix(bytes.count - 3).write(to: URL(fileURLWithPath: newer))
        #expect(FrameJournal(directory: dir, shard: 0, key: "k").load()?.entries.keys.sorted() == [identity])
        // Random bytes are never a snapshot.
        for length in [0, 3, 28, 200, 5000] {
            var random = ByteBuffer()
            for _ in 0..<length { random.writeInteger(UInt8.random(in: 0...255)) }
            #expect(FrameJournal.decode(random) == nil)
        }
    }
}
