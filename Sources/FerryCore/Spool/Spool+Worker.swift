import NIOCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Wakes the spool's worker when there is something for it, so it never polls.
///
/// A change (an append, a settlement, a journal entry) asks for a round within
/// ``checkpointDelay``: the changes of that time share one checkpoint, as the
/// 5 ms poll this replaces did, and an idle spool's thread sleeps. A waiter
/// for a sync (``now()``) asks for one at once.
final class SpoolSignal: Sendable {
    /// How long a change may wait for its round: the appends and settlements of this time share one round.
    static let checkpointDelay = Duration.milliseconds(5)

    let worker: BackgroundWorker<ContinuousClock>
    /// A round is asked for and has not started yet: further changes need not ask again.
    private let asked = Atomic<Bool>(false)

    init(worker: BackgroundWorker<ContinuousClock>) {
        self.worker = worker
    }

    /// Something changed under a lock the worker's round takes: a round within ``checkpointDelay``.
    /// Cheap when one is asked for already (one atomic load on the append path).
    @Sendable func changed() {
        guard !asked.load(ordering: .acquiring), !asked.exchange(true, ordering: .acquiringAndReleasing) else { return }
        worker.wake(at: worker.clock.now.advanced(by: Self.checkpointDelay))
    }

    /// A round at once (someone waits for a sync or a journal write).
    @Sendable func now() {
        worker.wake()
    }

    /// The worker's round starts: it sees every change made before this, under the locks it takes next.
    func roundStarts() {
        asked.store(false, ordering: .sequentiallyConsistent)
    }
}

// MARK: - The worker

extension Spool {
    func startWorker() throws {
        let interval = settings.syncInterval
        let policy = settings.sync
        try signal.worker.start { [self] stopping in
            guard !stopping else {
                maintain(sync: policy != .never)
                return nil
            }
            let now = signal.worker.clock.now
            let due = shared.lastSync.withLock { lastSync -> Bool in
                let due: Bool
                switch policy {
                case .interval: due = lastSync.duration(to: now) >= interval
                case .always: due = true
                case .never: due = false
                }
                if due { lastSync = now }
                return due
            }
            maintain(sync: due)
            // Under `interval`, what this round left unsynced is synced when the interval has passed.
            guard policy == .interval, !due else { return nil }
            return shared.lastSync.withLock { $0 }.advanced(by: interval)
        }
        // What recovery found (a watermark, delivered segments) is checkpointed as before the first change.
        signal.changed()
    }

    /// One round of the worker: checkpoint each shard's watermark, sync if
    /// due, delete delivered segments, and run callbacks the sync covered.
    func maintain(sync: Bool) {
        signal.roundStarts()
        let started = NIODeadline.now()
        // Taken before the sync, written after it: a saved window never names a frame whose logs it does not cover.
        let dedupe = dedupeJournals.withLock { $0 }.compactMap { journal in journal.take().map { (journal, $0) } }
        var didSync = false
        for shard in shards {
            let work = shard.takeMaintenance(syncing: sync)
            let failed = shared.progress.withLock { files -> CInt? in
                let code = files[shard.index].write(work.watermark)
                if work.sync {
                    files[shard.index].sync()
                }
                return code
            }
            if let failed { shared.lastSyncError.store(failed, ordering: .relaxed) }
            if work.sync {
                didSync = true
                if work.active >= 0, fdatasync(work.active) != 0 { shared.lastSyncError.store(errno, ordering: .relaxed) }
            }
            for descriptor in work.sealed {
                if sync { _ = fdatasync(descriptor) }
                _ = Glibc.close(descriptor)
            }
            if work.sync || settings.sync == .never { shared.synced.withLock { $0[shard.index] = work.appendedThrough } }
            // Only what the durable watermark covers is deleted: a crash then never finds a gap.
            let durable = sync || settings.sync == .never ? work.watermark : work.durableWatermark
            shard.deleteDelivered(through: durable, markDurable: sync || settings.sync == .never)
        }
        // After the progress files: an acknowledged frame leaves its journal only once they record its logs.
        let recorded = shared.progress.withLock { files in files.map { $0.written ?? 0 } }
        for journal in journals.withLock({ $0 }) { journal.writeIfChanged(recordedWatermark: recorded[journal.shard]) }
        for (journal, windows) in dedupe { journal.write(windows) }
        if didSync {
            let elapsed = NIODeadline.now() - started
            shared.syncs.add(1, ordering: .relaxed)
            shared.syncNanoseconds.add(Int(elapsed.nanoseconds), ordering: .relaxed)
            if let observe = shared.observeSync.withLock({ $0 }) { observe(.nanoseconds(elapsed.nanoseconds)) }
        }
        let synced = shared.synced.withLock { $0 }
        let ready = shared.waiting.withLock { waiting -> [@Sendable () -> Void] in
            var ready: [@Sendable () -> Void] = []
            waiting.removeAll { entry in
                guard synced[entry.shard] >= entry.through else { return false }
                ready.append(entry.done)
                return true
            }
            return ready
        }
        for done in ready { done() }
    }
}
