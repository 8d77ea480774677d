import Logging
import NIOCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// When appended logs are made durable (`spool.fsync`).
public enum SpoolSyncPolicy: String, Sendable, CaseIterable, CustomStringConvertible {
    /// `fdatasync` every `spool.fsync-interval`: a process crash loses nothing
    /// the kernel took; a power loss at most the interval.
    case interval
    /// `fdatasync` before an acknowledgement (HTTP 202, a `ferry://` ack), one
    /// sync for everything appended meanwhile (group commit).
    case always
    /// Never: the kernel writes back when it likes (a power loss may lose
    /// tens of seconds; a process crash still loses nothing).
    case never

    public var description: String { rawValue }
}

/// The spool's settings (`spool.*`).
public struct SpoolSettings: Sendable, Equatable {
    public var directory: String
    public var maxBytes: Int
    public var segmentBytes: Int
    public var sync: SpoolSyncPolicy
    public var syncInterval: Duration

    public init(directory: String, maxBytes: Int, segmentBytes: Int, sync: SpoolSyncPolicy, syncInterval: Duration) {
        self.directory = directory
        self.maxBytes = maxBytes
        self.segmentBytes = segmentBytes
        self.sync = sync
        self.syncInterval = syncInterval
    }
}

/// Why the spool could not be opened.
public enum SpoolError: Error, CustomStringConvertible, Equatable {
    case cannotCreate(path: String, errno: CInt)
    case inUse(path: String)

    public var description: String {
        switch self {
        case .cannotCreate(let path, let code):
            return "spool.dir: cannot create or open \(path): \(String(cString: strerror(code)))"
        case .inUse(let path):
            return "spool.dir: \(path) is in use by another Ferry process (its LOCK file is held); give each Ferry its own spool directory"
        }
    }
}

/// The disk spool: one ``SpoolShard`` per event loop under `spool.dir`, and
/// the worker thread that syncs them, checkpoints what was delivered and
/// deletes delivered segments, off the receive threads and event loops.
///
/// ```
/// spool.dir/
///   LOCK                      held (flock) while a Ferry uses the spool
///   shard-0/0000000000000001.seg, …   segments of loop 0, named by first sequence
///   shard-0/progress-default  the default route's watermark
///   shard-0/frames-<upstream>.{0,1}  frame journals (FrameJournal)
///   shard-0/evicted           runs a route's spool evicted at its cap (EvictedRuns)
///   shard-0/dedupe.{0,1}      the loop's ferry:// dedupe windows (DedupeJournal)
///   shard-1/…
/// ```
package final class Spool: Sendable {
    package let settings: SpoolSettings
    package let shards: [SpoolShard]
    /// What each shard's start-up scan found.
    package let recoveries: [SpoolRecovery]
    package let budget: SpoolBudget
    private let lockDescriptor: CInt
    let shared: Shared
    /// Wakes the worker: ``SpoolSignal``.
    let signal: SpoolSignal
    private let logger: Logger
    /// This spool's `ferry://` sender instance id (`sender-id`): the same across restarts.
    package let senderInstance: UInt64
    /// Its id in ``SpoolRun/spool`` (0, or its slot in the ``SpoolRegistry``).
    package let id: Int
    let journals = Mutex<[FrameJournal]>([])
    let dedupeJournals = Mutex<[DedupeJournal]>([])

    /// What the worker and the shards' users share.
    final class Shared: Sendable {
        let progress: Mutex<[ProgressFile]>
        /// Callbacks waiting for a sync that covers a shard's sequence.
        let waiting = Mutex<[(shard: Int, through: UInt64, done: @Sendable () -> Void)]>([])
        /// Per shard: one past the last sequence a sync covered.
        let synced: Mutex<[UInt64]>
        let syncs = Atomic<Int>(0)
        let syncNanoseconds = Atomic<Int>(0)
        let lastSyncError = Atomic<Int32>(0)
        /// Observes each sync's duration (the metrics backend's histogram).
        let observeSync: Mutex<(@Sendable (Duration) -> Void)?> = Mutex(nil)
        /// When the worker last synced (read and written by its thread only).
        let lastSync: Mutex<ContinuousClock.Instant>

        init(progress: [ProgressFile], now: ContinuousClock.Instant) {
            self.progress = Mutex(progress)
            self.synced = Mutex(progress.map { _ in 0 })
            self.lastSync = Mutex(now)
        }
    }

    /// Opens (creating if needed) the spool for `shardCount` loops and scans
    /// what an earlier run left. Shards beyond `shardCount` from a run with
    /// more loops are scanned too and read back by loop `index % shardCount`.
    ///
    /// - Parameters:
    ///   - id: the spool's id in the runs it makes (a route's slot in the ``SpoolRegistry``).
    ///   - evictsOldest: past `settings.maxBytes`, drop the oldest logs that wait on disk only (a route's backlog cap).
    ///   - parent: the whole spool's budget when this is one route's part of it.
    package static func open(
        settings: SpoolSettings, shardCount: Int, id: Int = 0, evictsOldest: Bool = false, parent: SpoolBudget? = nil, logger: Logger
    ) throws -> Spool {
        let root = settings.directory
        if let code = ParentDirectories.create(for: root + "/LOCK") { throw SpoolError.cannotCreate(path: root, errno: code) }
        let lock = Glibc.open(root + "/LOCK", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard lock >= 0 else { throw SpoolError.cannotCreate(path: root + "/LOCK", errno: errno) }
        guard flock(lock, LOCK_EX | LOCK_NB) == 0 else {
            _ = Glibc.close(lock)
            throw SpoolError.inUse(path: root)
        }
        var count = shardCount
        for name in SpoolShard.directoryEntries(root) where name.hasPrefix("shard-") {
            if let index = Int(name.dropFirst(6)), index >= count, index < 1024 { count = index + 1 }
        }
        let budget = SpoolBudget(limit: settings.maxBytes, parent: parent)
        var shards: [SpoolShard] = []
        var progress: [ProgressFile] = []
        var recoveries: [SpoolRecovery] = []
        let clock: @Sendable () -> Double = { WallClock.seconds() }
        let signal = SpoolSignal(worker: BackgroundWorker(name: "ferry-spool"))
        for index in 0..<count {
            let directory = "\(root)/shard-\(index)"
            if mkdir(directory, 0o700) != 0, errno != EEXIST {
                _ = Glibc.close(lock)
                throw SpoolError.cannotCreate(path: directory, errno: errno)
            }
            let shard = SpoolShard(
                index: index, spoolID: id, evictsOldest: evictsOldest, directory: directory, segmentBytes: settings.segmentBytes, budget: budget,
                clock: clock, changed: signal.changed)
            var file = ProgressFile(path: "\(directory)/\(SpoolShard.progressName)")
            recoveries.append(shard.recover(progress: &file))
            if index < shardCount, let code = shard.openActiveSegment() {
                _ = Glibc.close(lock)
                throw SpoolError.cannotCreate(path: directory, errno: code)
            }
            progress.append(file)
            shards.append(shard)
        }
        let senderInstance = Self.senderInstance(root)
        let spool = Spool(
            settings: settings, shards: shards, recoveries: recoveries, budget: budget, lock: lock, progress: progress,
            senderInstance: senderInstance, id: id, signal: signal, logger: logger)
        try spool.startWorker()
        return spool
    }

    private init(
        settings: SpoolSettings, shards: [SpoolShard], recoveries: [SpoolRecovery], budget: SpoolBudget, lock: CInt, progress: [ProgressFile],
        senderInstance: UInt64, id: Int, signal: SpoolSignal, logger: Logger
    ) {
        self.senderInstance = senderInstance
        self.id = id
        self.settings = settings
        self.shards = shards
        self.recoveries = recoveries
        self.budget = budget
        self.lockDescriptor = lock
        self.signal = signal
        self.shared = Shared(progress: progress, now: signal.worker.clock.now)
        self.logger = logger
    }

    /// Records that left Ferry (delivered, or dropped with a counted reason), of any shard.
    package func settle(_ spans: SpoolSpans) {
        settle(spans.runs)
    }

    /// Settles the runs of `runs` that are this spool's.
    package func settle(_ runs: [SpoolRun]) {
        if runs.count == 1 || runs.allSatisfy({ $0.shard == runs[0].shard }) {
            if let shard = runs.first?.shard, shard < shards.count { shards[shard].settle(runs) }
            return
        }
        for shard in Set(runs.map(\.shard)) where shard < shards.count { shards[shard].settle(runs) }
    }

    /// Gives the records of `spans` that are this spool's back to the disk,
    /// unsettled, to be read back later (``SpoolShard/release(_:)``).
    package func release(_ spans: SpoolSpans) {
        for run in spans.runs where run.shard < shards.count { shards[run.shard].release(run) }
    }

    /// The instance id in `sender-id`, made (random, low byte 0) and written on first use.
    package static func senderInstance(_ root: String) -> UInt64 {
        let path = root + "/sender-id"
        let existing = Glibc.open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)  // a FIFO in its place reads as nothing, at once
        if existing >= 0 {
            var bytes = [UInt8](repeating: 0, count: 32)
            let count = bytes.withUnsafeMutableBytes { max(0, pread(existing, $0.baseAddress, $0.count, 0)) }
            _ = Glibc.close(existing)
            let text = String(decoding: bytes.prefix(count).filter { $0 != 0x0A && $0 != 0x20 }, as: UTF8.self)
            if let value = UInt64(text, radix: 16), value & ~UInt64(0xFF) != 0 { return value & ~UInt64(0xFF) }
        }
        var random = SystemRandomNumberGenerator()
        let value = random.next() & ~UInt64(0xFF) | 0x100
        let descriptor = Glibc.open(path + ".new", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NONBLOCK, 0o600)
        if descriptor >= 0 {
            var bytes = ByteBuffer(string: String(value, radix: 16) + "\n")
            _ = SpoolShard.writeAll(descriptor, bytes, at: 0)
            bytes.clear()
            _ = fsync(descriptor)
            _ = Glibc.close(descriptor)
            _ = rename(path + ".new", path)
        }
        return value
    }

    /// The frame journal of shard `shard`'s lane to `upstream` (made and registered on first use).
    package func journal(shard: Int, upstream: String) -> FrameJournal {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325  // FNV-1a of the URL: the journal belongs to that upstream only
        for byte in upstream.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
        let journal = FrameJournal(
            directory: shards[shard].directory, shard: shard, spoolID: id, key: String(hash, radix: 16), wake: signal.now,
            changed: signal.changed)
        journals.withLock { $0.append(journal) }
        return journal
    }

    /// The dedupe journal of shard `shard`'s `ferry://` receiver (registered
    /// with the spool's thread), and every shard's saved windows read into `windows`.
    func dedupeJournal(shard: Int, restoring windows: inout SenderWindows) -> DedupeJournal {
        let journal = DedupeJournal(directory: shards[shard].directory, changed: signal.changed)
        for other in shards {
            let generation = DedupeJournal.load(directory: other.directory, into: &windows)
            if other.index == shard { journal.resume(after: generation) }
        }
        dedupeJournals.withLock { $0.append(journal) }
        return journal
    }

    /// Bytes the spool's files take.
    package var bytes: Int { budget.bytes }

    /// Sets what observes each sync's duration.
    package func observeSyncs(_ observe: @escaping @Sendable (Duration) -> Void) {
        shared.observeSync.withLock { $0 = observe }
    }

    /// Runs `done` (on the worker's thread) once everything shard `shard`
    /// appended before `sequence` is durable: at once unless the policy is `always`.
    package func whenDurable(shard: Int, through sequence: UInt64, _ done: @escaping @Sendable () -> Void) {
        guard settings.sync == .always, shared.synced.withLock({ $0[shard] }) < sequence else {
            done()
            return
        }
        shared.waiting.withLock { $0.append((shard, sequence, done)) }
        signal.now()
    }

    /// Awaits ``whenDurable(shard:through:_:)``.
    package func durable(shard: Int, through sequence: UInt64) async {
        guard settings.sync == .always else { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            whenDurable(shard: shard, through: sequence) { continuation.resume() }
        }
    }

    /// Stops the worker after a last checkpoint and sync, closes the files and releases the lock.
    package func close() {
        signal.worker.stop()
        for shard in shards { shard.closeFiles() }
        shared.progress.withLock { files in
            for index in files.indices { files[index].close() }
        }
        _ = Glibc.close(lockDescriptor)
    }

    /// Deletes the spool's files after ``close()`` (a route a reload removed):
    /// its shards' segments, progress files and frame journals, its LOCK, and
    /// its directory when nothing else is left in it.
    package func deleteFiles() {
        for shard in shards {
            for name in SpoolShard.directoryEntries(shard.directory) where name != "." && name != ".." {
                _ = unlink("\(shard.directory)/\(name)")
            }
            _ = rmdir(shard.directory)
        }
        _ = unlink(settings.directory + "/LOCK")
        _ = rmdir(settings.directory)
    }

    // MARK: - Figures

    /// Syncs done and their total time.
    package var syncFigures: (count: Int, seconds: Double) {
        (shared.syncs.load(ordering: .relaxed), Double(shared.syncNanoseconds.load(ordering: .relaxed)) / 1e9)
    }
}
