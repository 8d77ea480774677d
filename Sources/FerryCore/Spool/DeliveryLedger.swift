/// What one consumer of a spool shard has settled (delivered, or dropped with
/// a counted reason), whatever order settlements arrive in: the pure state
/// behind the shard's progress file.
///
/// `watermark` is the first sequence not yet settled: everything before it is
/// done and may be deleted; everything from it on is sent again after a crash.
/// Settlements that arrive ahead of it (a frame acknowledged before an older
/// one, a batch that failed over) wait in `ahead`, keyed by where they start,
/// and are absorbed once the gap before them closes.
package struct DeliveryLedger: Sendable, Equatable {
    package private(set) var watermark: UInt64
    /// Settled runs past the watermark: start → end.
    private var ahead: [UInt64: UInt64] = [:]
    /// Records settled since the ledger was made.
    package private(set) var settled = 0

    package init(watermark: UInt64) {
        self.watermark = watermark
    }

    /// Settled runs waiting for an older one.
    package var runsAhead: Int { ahead.count }

    /// Records settled past the watermark.
    package var settledAhead: Int { ahead.reduce(0) { $0 + Int($1.value - $1.key) } }

    /// Records `run` as settled. A run at or behind the watermark (settled
    /// twice, or from before a restart's watermark) changes nothing.
    package mutating func settle(_ run: SpoolRun) {
        guard run.count > 0, run.end > watermark else { return }
        var start = run.first
        if start < watermark { start = watermark }
        guard ahead[start].map({ $0 < run.end }) ?? true else { return }
        settled += Int(run.end - start)
        if start == watermark {
            watermark = run.end
            while let end = ahead.removeValue(forKey: watermark) { watermark = end }
        } else {
            ahead[start] = run.end
        }
    }

    /// Moves the watermark to at least `sequence` (records that can never be
    /// delivered, such as those a damaged segment lost).
    package mutating func skip(to sequence: UInt64) {
        guard sequence > watermark else { return }
        watermark = sequence
        for (start, end) in ahead where start <= watermark {
            ahead.removeValue(forKey: start)
            if end > watermark { watermark = end }
        }
        while let end = ahead.removeValue(forKey: watermark) { watermark = end }
    }
}
