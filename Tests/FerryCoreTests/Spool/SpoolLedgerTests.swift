import Testing

@testable import FerryCore

/// The pure parts of the spool: what is settled, and where a batch's records are.
struct SpoolLedgerTests {
    @Test func theWatermarkWaitsForTheOldestUnsettledRecord() {
        var ledger = DeliveryLedger(watermark: 1)
        ledger.settle(SpoolRun(first: 11, count: 10))  // acknowledged before an older frame
        #expect(ledger.watermark == 1)
        ledger.settle(SpoolRun(first: 1, count: 5))
        #expect(ledger.watermark == 6)
        ledger.settle(SpoolRun(first: 6, count: 5))  // closes the gap: absorbs 11..<21
        #expect(ledger.watermark == 21)
        #expect(ledger.settled == 20 && ledger.runsAhead == 0)
        ledger.settle(SpoolRun(first: 3, count: 2))  // behind the watermark: nothing changes
        #expect(ledger.watermark == 21 && ledger.settled == 20)
    }

    @Test func skippingPastLostRecordsAbsorbsWhatWaitsBeyond() {
        var ledger = DeliveryLedger(watermark: 100)
        ledger.settle(SpoolRun(first: 150, count: 10))
        ledger.skip(to: 150)
        #expect(ledger.watermark == 160)
    }

    @Test func spansFollowRecordsThroughSplitsAndMerges() {
        var spans = SpoolSpans(SpoolRun(shard: 1, first: 10, count: 4))
        spans.append(SpoolRun(shard: 1, first: 14, count: 2))  // consecutive: merged
        spans.append(SpoolRun(shard: 1, first: 30, count: 3))
        spans.append(SpoolRun(shard: 2, first: 33, count: 1))  // another shard: never merged
        #expect(spans.runs.count == 3 && spans.count == 10)
        #expect(spans.prefix(7).runs == [SpoolRun(shard: 1, first: 10, count: 6), SpoolRun(shard: 1, first: 30, count: 1)])
        #expect(spans.dropFirst(7).runs == [SpoolRun(shard: 1, first: 31, count: 2), SpoolRun(shard: 2, first: 33, count: 1)])
        #expect(spans.slice(from: 5, count: 3).runs == [SpoolRun(shard: 1, first: 15, count: 1), SpoolRun(shard: 1, first: 30, count: 2)])
        #expect(SpoolSpans(nil).isEmpty && SpoolSpans().prefix(3).isEmpty)
    }
}
