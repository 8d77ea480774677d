import FerryTestSupport
import Foundation
import NIOCore
import Synchronization
import Testing

@testable import FerryCore

/// The receiver's dedupe windows saved in the spool: what is written is what a
/// restarted receiver knows (duplicates stay duplicates, the eviction horizon
/// and the order of use are kept), two loops' files merge, and a damaged file
/// is never trusted.
struct DedupeJournalTests {
    private func windows() -> SenderWindows {
        var table = SenderWindows(capacity: 8)
        for sequence in [UInt32(5), 6, 9, 2_000] { table.mark(sender: 0xA00, sequence: sequence, sentAt: 100, now: 200) }
        for sequence in UInt32(0)..<3 { table.mark(sender: 0xB00, sequence: sequence, sentAt: 300, now: 400) }
        return table
    }

    @Test func aRestartedReceiverKnowsWhatItDelivered() throws {
        let dir = try scratchDirectory("dedupe")
        let journal = DedupeJournal(directory: dir)
        journal.offer(windows())
        let taken = try #require(journal.take())
        #expect(journal.take() == nil, "a snapshot is written once")
        journal.write(taken)

        var restored = SenderWindows(capacity: 8)
        #expect(DedupeJournal.load(directory: dir, into: &restored) == 1)
        #expect(restored.check(sender: 0xA00, sequence: 2_000, sentAt: 100) == .duplicate)
        #expect(restored.check(sender: 0xA00, sequence: 9, sentAt: 100) == .tooOld, "far behind 2,000: as before the restart")
        #expect(restored.check(sender: 0xB00, sequence: 2, sentAt: 300) == .duplicate)
        #expect(restored.check(sender: 0xB00, sequence: 3, sentAt: 300) == .new)
        #expect(restored.check(sender: 0xC00, sequence: 1, sentAt: 1) == .new)
        #expect(restored.sendersByUse.count == 2)
    }

    @Test func theNewestGoodFileWinsAndTwoLoopsMerge() throws {
        let (first, second) = (try scratchDirectory("dedupe"), try scratchDirectory("dedupe"))
        let journal = DedupeJournal(directory: first)
        var table = windows()
        journal.write(table)
        table.mark(sender: 0xA00, sequence: 2_001, sentAt: 100, now: 200)
        journal.write(table)  // generation 2, the other file
        var other = SenderWindows(capacity: 8)
        other.mark(sender: 0xD00, sequence: 77, sentAt: 500, now: 600)
        DedupeJournal(directory: second).write(other)

        var restored = SenderWindows(capacity: 8)
        #expect(DedupeJournal.load(directory: first, into: &restored) == 2)
        DedupeJournal.load(directory: second, into: &restored)
        #expect(restored.check(sender: 0xA00, sequence: 2_001, sentAt: 100) == .duplicate)
        #expect(restored.check(sender: 0xD00, sequence: 77, sentAt: 500) == .duplicate)
    }

    @Test func theEvictionHorizonIsKept() {
        var table = SenderWindows(capacity: 1)
        table.mark(sender: 1, sequence: 1, sentAt: 1_000, now: 2_000)
        table.mark(sender: 2, sequence: 1, sentAt: 3_000, now: 4_000)  // evicts sender 1: horizon 1,000
        var restored = SenderWindows(capacity: 1)
        #expect(DedupeJournal.decode(DedupeJournal.encode(table, generation: 1), into: &restored))
        #expect(restored.evictedHorizon == 1_000)
        #expect(restored.check(sender: 1, sequence: 1, sentAt: 1_000) == .tooOld)
    }

    /// FIFOs in place of both files hold neither the start nor the spool's thread.
    @Test func fifosInTheirPlaceHoldNothing() throws {
        let dir = try scratchDirectory("dedupe")
        for name in ["dedupe.0", "dedupe.1"] { #expect(mkfifo(dir + "/" + name, 0o600) == 0) }
        let done = finishes(within: 10, fifos: [dir + "/dedupe.0", dir + "/dedupe.1"]) {
            var restored = SenderWindows(capacity: 8)
            #expect(DedupeJournal.load(directory: dir, into: &restored) == 0)
            let journal = DedupeJournal(directory: dir)
            journal.write(windows())
            journal.write(windows())
        }
        #expect(done, "a FIFO held the load or a write")
    }

    @Test func aDamagedSnapshotIsNotTrusted() {
        let good = DedupeJournal.encode(windows(), generation: 3)
        for position in stride(from: 0, to: good.readableBytes, by: 7) {
            var bytes = Array(good.readableBytesView)
            bytes[position] ^= 0x10
            var restored = SenderWindows(capacity: 8)
            #expect(!DedupeJournal.decode(ByteBuffer(bytes: bytes), into: &restored), "a flipped byte at \(position) was trusted")
            #expect(restored.sendersByUse.isEmpty)
        }
        var restored = SenderWindows(capacity: 8)
        #expect(!DedupeJournal.decode(ByteBuffer(bytes: Array(good.readableBytesView.dropLast())), into: &restored))
    }
}
