import Logging
import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Appends batches of lines to one file from a thread of its own, so that no
/// event loop ever waits for the disk.
///
/// Batches from every loop are written in the order they were handed over.
/// Every line is written whole or not at all:
/// - a write the kernel took only part of is continued from the byte where it
///   stopped, never from the batch's first byte (no torn line, no duplicate);
/// - when the disk stays full (or the file cannot be written at all), the file
///   is cut back to the last complete line of the batch and the lines after it
///   are handed back (``FileWriteOutcome/partial(linesWritten:)``), so they fail
///   over to the next upstream; the sink then stays unavailable for a backoff;
/// - a file that ends in a fragment (a crash mid-line) gets a newline before
///   the first new line, counted in `Upstream.fileFragmentsEnded`.
///
/// Before every batch the sink checks that `path` still names the file it
/// writes to (`fstat` of the descriptor, `stat` of the path): a file moved by
/// logrotate or removed by anyone is reopened before any more is written into
/// it. ``reopen()`` (SIGHUP) does the same unconditionally.
final class FileSink: Sendable {
    let path: String
    private let upstream: Upstream
    private let file: Mutex<OpenFile?>
    private let worker: BackgroundWorker<ContinuousClock>
    private let logger: Logger
    private let backoff = Mutex(FileSinkBackoff())
    /// When the sink may be tried again (uptime ns; 0 = now): read on every dispatch, so an atomic.
    private let retryAt = Atomic<UInt64>(0)
    private let stopping = Atomic<Bool>(false)
    private let reopenRequested = Atomic<Bool>(false)
    private let warnings = Mutex(WarningLimiter(interval: .seconds(10)))
    /// Tries of one batch while the sink is healthy before its rest is handed back.
    static let attemptsPerBatch = 3
    /// With a spool, lines are synced as its records are (`spool.fsync`): before each batch counts as
    /// written (`always`), or at most this often (`interval`), so a power loss cannot lose a line the
    /// spool already counts as delivered beyond what the policy allows. Nil: never.
    private let syncEvery: Duration?
    /// When the file was last synced (uptime ns), read only on the sink's thread.
    private let lastSync = Atomic<UInt64>(0)

    /// Opens (creating if needed) `path` and its parent directories for appending.
    init(path: String, upstream: Upstream, syncEvery: Duration? = nil, logger: Logger) throws {
        self.syncEvery = syncEvery
        self.path = path
        self.upstream = upstream
        self.logger = logger
        if let code = ParentDirectories.create(for: path) { throw ForwardingError.cannotOpenFile(path: path, errno: code) }
        let opened = try OpenFile(path: path)
        if opened.endedFragment { upstream.fileFragmentsEnded.add(1) }
        self.file = Mutex(opened)
        self.worker = BackgroundWorker(name: "ferry-file-\(upstream.index)")
        try worker.start()
    }

    /// False during the backoff after a failed write: new traffic goes elsewhere.
    var isHealthy: Bool { NIODeadline.now().uptimeNanoseconds >= retryAt.load(ordering: .relaxed) }

    /// Writes `blob` (whose lines end at `lineEnds`, offsets into it) after every
    /// batch handed over before it; `completion` runs on the sink's thread.
    func write(_ blob: ByteBuffer, lineEnds: [Int], completion: @escaping @Sendable (FileWriteOutcome) -> Void) {
        worker.submit { active in
            guard active else {
                completion(.abandoned)
                return
            }
            completion(self.writeBatch(blob, lineEnds: lineEnds))
        }
    }

    /// Closes the file and opens `path` again before the next batch (SIGHUP).
    func reopen() {
        reopenRequested.store(true, ordering: .relaxed)
        worker.submit { active in if active { self.reopenIfNeeded() } }
    }

    /// Stops retrying failed writes, lets queued batches finish, and closes the file.
    func close() async {
        stopping.store(true, ordering: .relaxed)
        await worker.shutdown()
        file.withLock { $0?.close() }
    }

    private func writeBatch(_ blob: ByteBuffer, lineEnds: [Int]) -> FileWriteOutcome {
        var written = 0  // bytes of this batch on disk so far
        var attempt = 0
        let retries = isHealthy ? Self.attemptsPerBatch : 1
        while true {
            reopenIfNeeded()
            let result: FileAppendResult = file.withLock { file in
                guard var current = file else { return .failure(EBADF) }
                defer { file = current }
                if written == 0, let code = current.endPendingFragment() { return .failure(code) }
                return blob.withUnsafeReadableBytes { bytes in current.append(bytes, from: &written) }
            }
            switch result {
            case .success:
                syncIfDue()
                backoff.withLock { $0.succeeded() }
                retryAt.store(0, ordering: .relaxed)
                upstream.setAvailableOnAllLanes(true)
                return .written
            case .failure(let code):
                attempt += 1
                noteFailure(code)
                if attempt >= retries || stopping.load(ordering: .relaxed) {
                    return giveUp(written: written, lineEnds: lineEnds)
                }
                // Back off, but wake at once when shutdown gives up on the file.
                if worker.pause(for: .nanoseconds(backOff().nanoseconds)) { return giveUp(written: written, lineEnds: lineEnds) }
            }
        }
    }

    /// `fdatasync` after a batch, when the spool's policy asks (see ``syncEvery``).
    private func syncIfDue() {
        guard let syncEvery else { return }
        let now = NIODeadline.now().uptimeNanoseconds
        let every = UInt64(syncEvery.components.seconds) * 1_000_000_000 + UInt64(syncEvery.components.attoseconds / 1_000_000_000)
        guard now &- lastSync.load(ordering: .relaxed) >= every else { return }
        lastSync.store(now, ordering: .relaxed)
        file.withLock { file in
            if let descriptor = file?.descriptor { _ = fdatasync(descriptor) }
        }
    }

    /// Cuts the file back to the last whole line of the batch and says how many
    /// lines stay written; the rest go back to the buffer.
    private func giveUp(written: Int, lineEnds: [Int]) -> FileWriteOutcome {
        _ = backOff()
        upstream.setAvailableOnAllLanes(false)
        let whole = lineEnds.lastIndex(where: { $0 <= written }).map { $0 + 1 } ?? 0
        let keep = whole == 0 ? 0 : lineEnds[whole - 1]
        if written > keep {
            file.withLock { $0?.cutBack(by: written - keep) }
        }
        return .partial(linesWritten: whole)
    }

    /// Starts (or lengthens) the backoff after a failure; returns its length.
    private func backOff() -> TimeAmount {
        let now = NIODeadline.now()
        let delay = backoff.withLock { $0.failed(now: now) }
        retryAt.store((now + delay).uptimeNanoseconds, ordering: .relaxed)
        return delay
    }

    private func noteFailure(_ code: CInt) {
        upstream.recordError(.other, detail: String(cString: strerror(code)))
        upstream.record(success: false)
        upstream.setAvailableOnAllLanes(false)
        if let suppressed = warnings.withLock({ $0.shouldLog(key: Int(code)) }) {
            logger.error(
                "file upstream write failed",
                metadata: [
                    "upstream": "file:\(path)",
                    "error.errno": "\(code)",
                    "error.detail": "\(String(cString: strerror(code)))",
                    "warnings.suppressed": "\(suppressed)",
                ])
        }
    }

    /// Reopens `path` when asked to (SIGHUP) or when the file written so far is
    /// no longer what the path names (moved, removed).
    private func reopenIfNeeded() {
        let requested = reopenRequested.exchange(false, ordering: .relaxed)
        let outcome: Result<String?, ForwardingError> = file.withLock { file in
            let reason: String
            if requested {
                reason = "SIGHUP"
            } else if let current = file, let moved = current.whyPathNoLongerNamesThisFile() {
                reason = moved
            } else if file == nil {
                reason = "the file could not be opened before"
            } else {
                return .success(nil)
            }
            do {
                _ = ParentDirectories.create(for: path)
                let fresh = try OpenFile(path: path)
                if fresh.endedFragment { upstream.fileFragmentsEnded.add(1) }
                file?.close()
                file = fresh
                return .success(reason)
            } catch let error as ForwardingError {
                if !requested {  // keep nothing that writes into a removed file
                    file?.close()
                    file = nil
                }
                return .failure(error)
            } catch {
                return .success(nil)
            }
        }
        switch outcome {
        case .success(let reason?):
            logger.notice("file upstream reopened", metadata: ["upstream": "file:\(path)", "reason": "\(reason)"])
        case .success(nil):
            break
        case .failure(let error):
            logger.error("file upstream could not be reopened", metadata: ["upstream": "file:\(path)", "error": "\(error)"])
        }
    }
}

/// What became of a batch handed to a ``FileSink``.
enum FileWriteOutcome: Sendable, Equatable {
    /// Every line is in the file.
    case written
    /// The first `linesWritten` lines are in the file, whole; the others are not
    /// (the file was cut back to a line boundary) and must go elsewhere.
    case partial(linesWritten: Int)
    /// Shutdown gave up on the batch before it was tried.
    case abandoned
}

/// How long a sink that failed waits before it is tried again: 100 ms after
/// the first failure, doubling to 2 s; reset by a successful write.
struct FileSinkBackoff {
    private var delay = TimeAmount.milliseconds(100)

    /// Records a failure; returns how long to wait.
    mutating func failed(now: NIODeadline) -> TimeAmount {
        let wait = delay
        delay = min(delay * 2, .seconds(2))
        return wait
    }

    mutating func succeeded() {
        delay = .milliseconds(100)
    }
}

/// The descriptor a ``FileSink`` appends to, with the identity of the file it
/// opened, to notice when the path comes to name another file or none.
struct OpenFile {
    let path: String
    private(set) var descriptor: CInt
    private let device: UInt64
    private let inode: UInt64
    /// The file ended in a partial line when opened; a newline was written after it.
    private(set) var endedFragment = false
    /// A newline is owed before the next line (a fragment could not be cut back).
    private var fragmentPending = false

    init(path: String) throws {
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ForwardingError.cannotOpenFile(path: path, errno: errno) }
        var info = stat()
        _ = fstat(fd, &info)
        self.path = path
        descriptor = fd
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
        if info.st_size > 0, Self.lastByte(of: path, size: Int(info.st_size)) != UInt8(ascii: "\n") {
            // A crash left a partial line: it keeps a line of its own.
            fragmentPending = true
            if endPendingFragment() == nil { endedFragment = true }
        }
    }

    /// Writes the newline owed after a fragment; nil when none is owed or it was written.
    mutating func endPendingFragment() -> CInt? {
        guard fragmentPending else { return nil }
        var newline = UInt8(ascii: "\n")
        let result = Glibc.write(descriptor, &newline, 1)
        if result == 1 {
            fragmentPending = false
            return nil
        }
        return result < 0 ? errno : ENOSPC
    }

    /// Appends `bytes[written...]`, advancing `written` by what the kernel took.
    mutating func append(_ bytes: UnsafeRawBufferPointer, from written: inout Int) -> FileAppendResult {
        while written < bytes.count {
            let count = Glibc.write(descriptor, bytes.baseAddress! + written, bytes.count - written)
            if count < 0 {
                if errno == EINTR { continue }
                return .failure(errno)
            }
            written += count
        }
        return .success
    }

    /// Removes the last `bytes` of the file (a partial line); if that fails, a
    /// newline is owed so the fragment stays on a line of its own.
    mutating func cutBack(by bytes: Int) {
        var info = stat()
        guard fstat(descriptor, &info) == 0, Int(info.st_size) >= bytes, ftruncate(descriptor, info.st_size - off_t(bytes)) == 0 else {
            fragmentPending = true
            return
        }
    }

    /// Why `path` no longer names the file written so far, or nil when it still does.
    func whyPathNoLongerNamesThisFile() -> String? {
        var own = stat()
        if fstat(descriptor, &own) == 0, own.st_nlink == 0 { return "the file was removed" }
        var named = stat()
        guard stat(path, &named) == 0 else { return "the file was moved or removed" }
        if UInt64(named.st_dev) != device || UInt64(named.st_ino) != inode { return "the path names another file (rotation)" }
        return nil
    }

    mutating func close() {
        if descriptor >= 0 { _ = Glibc.close(descriptor) }
        descriptor = -1
    }

    private static func lastByte(of path: String, size: Int) -> UInt8? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { _ = Glibc.close(fd) }
        var byte: UInt8 = 0
        return pread(fd, &byte, 1, off_t(size - 1)) == 1 ? byte : nil
    }
}

/// The result of one append: done, or the `errno` that stopped it.
enum FileAppendResult {
    case success
    case failure(CInt)
}
