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
/// Batches from every loop are written in the order they were handed over. A
/// failed write (disk full, permissions changed) is retried with backoff while
/// the sink reports itself unhealthy, so new traffic fails over to the next
/// upstream; batches already handed over keep their buffer reservation until
/// written, which keeps memory bounded.
///
/// Rotation-friendly: about once a second the sink checks that `path` is still
/// the file it writes to, and reopens it when logrotate (or anyone) moved or
/// removed it, so no logs go on into a renamed file.
final class FileSink: Sendable {
    let path: String
    private let upstream: Upstream
    private let file: Mutex<OpenFile>
    private let pool: NIOThreadPool
    private let logger: Logger
    private let healthy = Atomic<Bool>(true)
    private let stopping = Atomic<Bool>(false)
    private let warnings = Mutex(WarningLimiter(interval: .seconds(10)))

    /// Opens (creating if needed) `path` and its parent directories for appending.
    init(path: String, upstream: Upstream, logger: Logger) throws {
        self.path = path
        self.upstream = upstream
        self.logger = logger
        try Self.createParentDirectories(of: path)
        self.file = Mutex(try OpenFile(path: path))
        self.pool = NIOThreadPool(numberOfThreads: 1)
        self.pool.start()
    }

    var isHealthy: Bool { healthy.load(ordering: .relaxed) }

    /// Writes `blob` after every batch handed over before it; `completion`
    /// runs on the sink's thread with `true` once it is on disk (in the page cache).
    func write(_ blob: ByteBuffer, completion: @escaping @Sendable (Bool) -> Void) {
        pool.submit { state in
            guard case .active = state else {
                completion(false)
                return
            }
            completion(self.writeRetrying(blob))
        }
    }

    /// Stops retrying failed writes, lets queued batches finish, and closes the file.
    func close() async {
        stopping.store(true, ordering: .relaxed)
        try? await pool.shutdownGracefully()
        file.withLock { $0.close() }
    }

    private func writeRetrying(_ blob: ByteBuffer) -> Bool {
        var delayMilliseconds = 100
        while true {
            reopenIfMoved()
            let descriptor = file.withLock { $0.descriptor }
            let result = blob.withUnsafeReadableBytes { bytes in Self.writeAll(descriptor, bytes) }
            switch result {
            case .success:
                setHealthy(true)
                return true
            case .failure(let code):
                setHealthy(false)
                upstream.recordError(.other, detail: String(cString: strerror(code)))
                upstream.record(success: false)
                let suppressed = warnings.withLock { $0.shouldLog(key: Int(code)) }
                if let suppressed {
                    logger.error(
                        "file upstream write failed",
                        metadata: [
                            "upstream": "file:\(path)",
                            "error.errno": "\(code)",
                            "error.detail": "\(String(cString: strerror(code)))",
                            "warnings.suppressed": "\(suppressed)",
                        ])
                }
                // Back off, but wake at once when shutdown gives up on the file.
                var waited = 0
                while waited < delayMilliseconds {
                    if stopping.load(ordering: .relaxed) { return false }
                    usleep(10_000)
                    waited += 10
                }
                delayMilliseconds = min(delayMilliseconds * 2, 2000)
            }
        }
    }

    /// Reopens `path` if the file written so far is no longer there (rotated or deleted).
    private func reopenIfMoved() {
        let reopened: Result<Bool, ForwardingError> = file.withLock { file in
            guard file.isDueForCheck() else { return .success(false) }
            guard file.pathStillNamesThisFile() else {
                do {
                    try Self.createParentDirectories(of: path)
                    let new = try OpenFile(path: path)
                    file.close()
                    file = new
                    return .success(true)
                } catch let error as ForwardingError {
                    return .failure(error)
                } catch {
                    return .success(false)
                }
            }
            return .success(false)
        }
        switch reopened {
        case .success(true):
            logger.notice("file upstream reopened", metadata: ["upstream": "file:\(path)", "reason": "the file was moved or removed (rotation)"])
        case .success(false):
            break
        case .failure(let error):
            logger.error("file upstream could not be reopened", metadata: ["upstream": "file:\(path)", "error": "\(error)"])
        }
    }

    private func setHealthy(_ value: Bool) {
        if healthy.exchange(value, ordering: .relaxed) != value {
            upstream.setAvailableOnAllLanes(value)
        }
    }

    private enum WriteResult { case success, failure(CInt) }

    private static func writeAll(_ fd: CInt, _ bytes: UnsafeRawBufferPointer) -> WriteResult {
        var offset = 0
        while offset < bytes.count {
            let written = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                return .failure(errno)
            }
            offset += written
        }
        return .success
    }

    private static func createParentDirectories(of path: String) throws {
        var components = path.split(separator: "/", omittingEmptySubsequences: false).dropLast()
        guard !components.isEmpty else { return }
        var current = path.hasPrefix("/") ? "" : "."
        if path.hasPrefix("/") { components = components.dropFirst() }
        for component in components where !component.isEmpty && component != "." {
            current += "/" + component
            if mkdir(current, 0o755) != 0 && errno != EEXIST {
                throw ForwardingError.cannotOpenFile(path: path, errno: errno)
            }
        }
    }
}

/// The descriptor a ``FileSink`` appends to, with the identity of the file it
/// opened, to notice when the path comes to name another file or none.
struct OpenFile {
    let path: String
    private(set) var descriptor: CInt
    private let device: UInt64
    private let inode: UInt64
    private var lastCheck = NIODeadline.now()

    init(path: String) throws {
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ForwardingError.cannotOpenFile(path: path, errno: errno) }
        var info = stat()
        _ = fstat(fd, &info)
        self.path = path
        descriptor = fd
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
    }

    mutating func isDueForCheck(now: NIODeadline = .now()) -> Bool {
        guard now - lastCheck >= .seconds(1) else { return false }
        lastCheck = now
        return true
    }

    /// False when `path` is gone or is now another file.
    func pathStillNamesThisFile() -> Bool {
        var info = stat()
        guard stat(path, &info) == 0 else { return false }
        return UInt64(info.st_dev) == device && UInt64(info.st_ino) == inode
    }

    mutating func close() {
        if descriptor >= 0 { _ = Glibc.close(descriptor) }
        descriptor = -1
    }
}
