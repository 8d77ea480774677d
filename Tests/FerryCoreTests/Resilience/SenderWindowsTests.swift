import Testing

@testable import FerryCore

struct SenderWindowsTests {
    @Test func leastRecentlyUsedSenderIsEvicted() {
        var table = SenderWindows(capacity: 3)
        for sender in UInt64(1)...3 { table.mark(sender: sender, sequence: 1, sentAt: 100, now: 100) }
        #expect(table.sendersByUse == [1, 2, 3])
        // Sender 1 is heard from again: now 2 is the least recently used.
        #expect(table.check(sender: 1, sequence: 1, sentAt: 100) == .duplicate)
        table.mark(sender: 4, sequence: 1, sentAt: 200, now: 200)
        #expect(table.sendersByUse == [3, 1, 4])
        #expect(table.evictions == 1)
        #expect(table.count == 3)
    }

    @Test func aLiveSenderSurvivesAFloodOfOtherSenders() {
        var table = SenderWindows(capacity: 64)
        var random = SystemRandomNumberGenerator()
        let live: UInt64 = 0xFEED
        for sequence in UInt32(0)..<2_000 {
            for _ in 0..<10 { table.mark(sender: random.next(), sequence: 0, sentAt: 1_000, now: 1_000) }
            #expect(table.check(sender: live, sequence: sequence, sentAt: 1_000) == .new)
            table.mark(sender: live, sequence: sequence, sentAt: 1_000, now: 1_000)
        }
        #expect(table.check(sender: live, sequence: 1_999, sentAt: 1_000) == .duplicate)
        #expect(table.evictions > 10_000)
    }

    /// The evicted sender's retransmission is not new: it was first sent no
    /// later than what its window saw, which the horizon remembers.
    @Test func anEvictedSendersRetransmissionIsStaleNotNew() {
        var table = SenderWindows(capacity: 2)
        table.mark(sender: 1, sequence: 7, sentAt: 5_000, now: 5_000)
        table.mark(sender: 2, sequence: 1, sentAt: 5_100, now: 5_100)
        table.mark(sender: 3, sequence: 1, sentAt: 5_200, now: 5_200)  // evicts 1
        #expect(table.evictedHorizon == 5_000)
        #expect(table.check(sender: 1, sequence: 7, sentAt: 5_000) == .tooOld)
        // A frame first sent after the horizon cannot be one the table forgot.
        #expect(table.check(sender: 1, sequence: 8, sentAt: 5_300) == .new)
        #expect(table.check(sender: 9, sequence: 1, sentAt: 5_300) == .new)
    }

    /// A sender's clock far ahead cannot push the horizon into the future and
    /// make every new sender look stale.
    @Test func theHorizonIsClampedToTheTimeOfReceipt() {
        var table = SenderWindows(capacity: 1)
        table.mark(sender: 1, sequence: 1, sentAt: 1_000_000_000, now: 10_000)
        table.mark(sender: 2, sequence: 1, sentAt: 10_010, now: 10_010)
        #expect(table.evictedHorizon == 10_000)
        #expect(table.check(sender: 3, sequence: 1, sentAt: 10_020) == .new)
    }
}
