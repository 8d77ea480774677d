import DequeModule
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Writes Ferry's own log lines from a thread of its own.
///
/// Logging must never block the data plane: a log call only formats the line
/// and appends it to a bounded queue. What does not fit is counted
/// (``droppedLines``) instead of waiting for a slow terminal or disk.
public final class LogWriter: Sendable {
    private struct Queue {
        var lines: Deque<[UInt8]> = []
        var closed = false
        var reopenRequested = false
    }

    private let queue = Mutex(Queue())
    private let worker = BackgroundWorker(name: "ferry-log")
    private let maxQueuedLines: Int
    private let output: Mutex<LogOutput>
    /// Lines that did not fit in the queue.
    public let droppedLines = AtomicCounter()

    /// Writes to standard error.
    public convenience init(maxQueuedLines: Int = 10_000) {
        self.init(output: LogOutput(descriptor: STDERR_FILENO), maxQueuedLines: maxQueuedLines)
    }

    /// Writes to `path`, rotating it when it reaches `maxBytes` and keeping `keep` old files
    /// (`PATH.1` newest … `PATH.keep` oldest).
    public convenience init(path: String, maxBytes: Int, keep: Int, maxQueuedLines: Int = 10_000) throws {
        self.init(output: try LogOutput(path: path, maxBytes: maxBytes, keep: keep), maxQueuedLines: maxQueuedLines)
    }

    private init(output: LogOutput, maxQueuedLines: Int) {
        self.output = Mutex(output)
        self.maxQueuedLines = maxQueuedLines
        // Without a writer thread there is nowhere to log; the process cannot run.
        do {
            try worker.start { [self] _ in
                writeQueued()
                return nil
            }
        } catch {
            fatalError("\(error)")
        }
    }

    /// Queues one complete line (with its newline).
    public func enqueue(_ line: [UInt8]) {
        let accepted = queue.withLock { queue -> Bool in
            guard !queue.closed, queue.lines.count < maxQueuedLines else { return false }
            queue.lines.append(line)
            return true
        }
        if accepted {
            worker.wake()
        } else {
            droppedLines.add(1)
        }
    }

    /// Asks the writer thread to close and reopen the log file before its next
    /// write (SIGHUP, after logrotate moved it). Standard error is left as it is.
    public func reopen() {
        queue.withLock { $0.reopenRequested = true }
        worker.wake()
    }

    /// The log file's path, or nil when lines go to standard error.
    public var path: String? { output.withLock { $0.path } }

    /// Writes everything queued so far and stops the writer thread.
    public func close() {
        let wasOpen = queue.withLock { queue -> Bool in
            defer { queue.closed = true }
            return !queue.closed
        }
        guard wasOpen else { return }
        worker.stop()
    }

    /// One round of the writer's thread: everything queued, in one write where it can.
    private func writeQueued() {
        let (lines, reopen) = queue.withLock { queue in
            defer {
                queue.lines.removeAll(keepingCapacity: true)
                queue.reopenRequested = false
            }
            return (Array(queue.lines), queue.reopenRequested)
        }
        var batch: [UInt8] = []
        output.withLock { output in
            if reopen { output.reopen() }
            for line in lines {
                batch.append(contentsOf: line)
                if output.wouldRotate(adding: batch.count, linesBefore: batch.count - line.count) {
                    // Whole lines only: a line never straddles two files.
                    batch.removeLast(line.count)
                    output.write(batch)
                    output.rotate()
                    batch.removeAll(keepingCapacity: true)
                    batch.append(contentsOf: line)
                }
            }
            output.write(batch)
        }
    }
}

/// Where log lines go: a descriptor, or a file rotated by size.
struct LogOutput {
    private var descriptor: CInt
    let path: String?
    private let maxBytes: Int
    private let keep: Int
    private var size = 0

    init(descriptor: CInt) {
        self.descriptor = descriptor
        self.path = nil
        self.maxBytes = .max
        self.keep = 0
    }

    init(path: String, maxBytes: Int, keep: Int) throws {
        self.path = path
        self.maxBytes = maxBytes
        self.keep = keep
        if let code = ParentDirectories.create(for: path) { throw LogOutputError.cannotOpen(path: path, errno: code) }
        self.descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw LogOutputError.cannotOpen(path: path, errno: errno) }
        var info = stat()
        if fstat(descriptor, &info) == 0 { size = Int(info.st_size) }
    }

    /// Closes the file and opens `path` again (a new file if it was moved away);
    /// on failure keeps writing to the old descriptor rather than nowhere.
    mutating func reopen() {
        guard let path else { return }
        _ = ParentDirectories.create(for: path)
        let fresh = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fresh >= 0 else { return }
        _ = Glibc.close(descriptor)
        descriptor = fresh
        var info = stat()
        size = fstat(descriptor, &info) == 0 ? Int(info.st_size) : 0
    }

    /// Whether `bytes` more would pass the size limit. A line longer than the
    /// limit on its own still goes into an empty file (`linesBefore`: bytes of
    /// whole lines ahead of it in the same write, which count as content too,
    /// so a large batch written right after a rotation is split again).
    func wouldRotate(adding bytes: Int, linesBefore: Int = 0) -> Bool {
        path != nil && (size > 0 || linesBefore > 0) && size + bytes > maxBytes
    }

    mutating func write(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Glibc.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return  // nowhere left to report it
                }
                offset += written
            }
        }
        size += bytes.count
    }

    /// PATH → PATH.1 → … → PATH.keep (the oldest is removed), then a new PATH.
    mutating func rotate() {
        guard let path else { return }
        _ = Glibc.close(descriptor)
        if keep > 0 {
            unlink("\(path).\(keep)")
            for index in stride(from: keep - 1, through: 1, by: -1) {
                rename("\(path).\(index)", "\(path).\(index + 1)")
            }
            rename(path, "\(path).1")
        } else {
            unlink(path)
        }
        descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        size = 0
    }
}

/// Why the log file could not be opened.
public enum LogOutputError: Error, CustomStringConvertible {
    case cannotOpen(path: String, errno: CInt)

    public var description: String {
        switch self {
        case .cannotOpen(let path, let code):
            return "cannot open log file '\(path)': \(String(cString: strerror(code)))"
        }
    }
}
