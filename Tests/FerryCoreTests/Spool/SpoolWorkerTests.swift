import FerryTestSupport
import Logging
import NIOCore
import Synchronization
import Testing

@testable import FerryCore

/// The spool's thread is woken by what happens to the spool, not by a poll: each test waits
/// on the event the worker reports (a sync observed, a waiter resumed), never on a sleep.
@Suite(.timeLimit(.minutes(1)))
struct SpoolWorkerTests {
    private let logger = Logger(label: "spool-worker-test")

    private func open(_ sync: SpoolSyncPolicy, interval: Duration = .milliseconds(100)) throws -> Spool {
        let settings = SpoolSettings(
            directory: try scratchDirectory("spool-worker"), maxBytes: 1 << 30, segmentBytes: 1 << 20, sync: sync, syncInterval: interval)
        return try Spool.open(settings: settings, shardCount: 1, logger: logger)
    }

    private func append(_ spool: Spool, _ count: Int) -> SpoolRun? {
        let batch = (0..<count).map { ByteBuffer(string: "log \($0)") }
        let capacity = BufferCapacity(logs: 10_000, bytes: 1 << 20)
        return spool.shards[0].admit(batch, bytes: batch.reduce(0) { $0 + $1.readableBytes }, capacity: capacity, allOrNothing: false).run
    }

    /// Returns after the spool's thread has synced once (with nothing else asking it to).
    private func nextSync(of spool: Spool, after action: () -> Void) async {
        let waiting = Mutex<CheckedContinuation<Void, Never>?>(nil)
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            waiting.withLock { $0 = continuation }
            spool.observeSyncs { _ in waiting.withLock { $0.take() }?.resume() }
            action()
        }
    }

    @Test(arguments: [SpoolSyncPolicy.always, .interval])
    func anAppendAloneWakesTheThreadThatSyncsIt(policy: SpoolSyncPolicy) async throws {
        let spool = try open(policy)
        defer { spool.close() }
        await nextSync(of: spool) { #expect(append(spool, 10) != nil) }
        #expect(spool.syncFigures.count >= 1)
    }

    @Test func aWaiterForDurabilityIsResumedByTheSyncThatCoversIt() async throws {
        let spool = try open(.always)
        defer { spool.close() }
        let run = try #require(append(spool, 10))
        await spool.durable(shard: 0, through: run.end)
        #expect(spool.shared.synced.withLock { $0[0] } >= run.end)
    }
}
