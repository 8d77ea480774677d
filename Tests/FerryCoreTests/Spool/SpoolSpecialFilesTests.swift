import Dispatch
import FerryTestSupport
import Foundation
import Logging
import Synchronization
import Testing

@testable import FerryCore

/// A spool directory where FIFOs stand in for Ferry's files: the spool opens,
/// reads and writes without waiting on them.
struct SpoolSpecialFilesTests {
    private let logger = Logger(label: "spool-special-files-test")

    /// Found by the SpoolRecovery fuzz target: a FIFO named `progress-default`
    /// (or `sender-id`, or a frame journal) held `Spool.open` in `open(2)`
    /// for ever, so Ferry never started; a journal FIFO held the spool's thread.
    @Test func fifosInPlaceOfItsFilesNeitherHoldTheStartNorTheSpoolsThread() throws {
        let root = try scratchDirectory("spool-fifo")
        let shard = root + "/shard-0"
        try FileManager.default.createDirectory(atPath: shard, withIntermediateDirectories: true)
        let fifos = [shard + "/progress-default", root + "/sender-id", shard + "/frames-k.0", shard + "/frames-k.1"]
        for fifo in fifos { #expect(mkfifo(fifo, 0o600) == 0) }
        let settings = SpoolSettings(directory: root, maxBytes: 1 << 20, segmentBytes: 4096, sync: .never, syncInterval: .seconds(1))
        let logger = self.logger
        #expect(
            finishes(within: 10, fifos: fifos) {
                guard let spool = try? Spool.open(settings: settings, shardCount: 1, logger: logger) else { return }
                spool.close()
            })
        #expect(
            finishes(within: 10, fifos: fifos) {
                let journal = FrameJournal(directory: shard, shard: 0, key: "k")
                _ = journal.load()
                journal.opened(.init(sender: 1, sequence: 1), entry: .init(sentAtMilliseconds: 1, ttlMilliseconds: 1, runs: []))
                journal.writeIfChanged(recordedWatermark: 0)
            })
    }

    /// Found by the SpoolRecovery fuzz target next: a FIFO named as the segment
    /// the spool opens next held `Spool.open` in `open(2)` for ever. It now
    /// fails at once with an error naming the directory.
    @Test func aFifoWhereTheNextSegmentGoesFailsTheStartAtOnce() throws {
        let root = try scratchDirectory("spool-fifo")
        let shard = root + "/shard-0"
        try FileManager.default.createDirectory(atPath: shard, withIntermediateDirectories: true)
        let fifos = [shard + "/0000000000000001.seg", root + "/sender-id.new"]
        for fifo in fifos { #expect(mkfifo(fifo, 0o600) == 0) }
        let settings = SpoolSettings(directory: root, maxBytes: 1 << 20, segmentBytes: 4096, sync: .never, syncInterval: .seconds(1))
        let logger = self.logger
        let refused = Mutex(false)
        #expect(
            finishes(within: 10, fifos: fifos) {
                do {
                    try Spool.open(settings: settings, shardCount: 1, logger: logger).close()
                } catch {
                    refused.withLock { $0 = error is SpoolError }
                }
            })
        #expect(refused.withLock { $0 })
    }
}
