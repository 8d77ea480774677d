import Dispatch
import Foundation
import DequeModule
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
    }

    private let queue = Mutex(Queue())
    private let wakeUp = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    private let maxQueuedLines: Int
    private let descriptor: CInt
    /// Lines that did not fit in the queue.
    public let droppedLines = AtomicCounter()

    /// Writes to `descriptor` (standard error by default).
    public init(descriptor: CInt = STDERR_FILENO, maxQueuedLines: Int = 10_000) {
        self.descriptor = descriptor
        self.maxQueuedLines = maxQueuedLines
        let thread = WriterThread(writer: self)
        thread.start()
    }

    /// Queues one complete line (with its newline).
    public func enqueue(_ line: [UInt8]) {
        let accepted = queue.withLock { queue -> Bool in
            guard !queue.closed, queue.lines.count < maxQueuedLines else { return false }
            queue.lines.append(line)
            return true
        }
        if accepted {
            wakeUp.signal()
        } else {
            droppedLines.add(1)
        }
    }

    /// Writes everything queued so far and stops the writer thread.
    public func close() {
        let wasOpen = queue.withLock { queue -> Bool in
            defer { queue.closed = true }
            return !queue.closed
        }
        guard wasOpen else { return }
        wakeUp.signal()
        finished.wait()
    }

    fileprivate func runLoop() {
        var batch: [UInt8] = []
        while true {
            wakeUp.wait()
            let (lines, closed) = queue.withLock { queue in
                defer { queue.lines.removeAll(keepingCapacity: true) }
                return (Array(queue.lines), queue.closed)
            }
            batch.removeAll(keepingCapacity: true)
            for line in lines { batch.append(contentsOf: line) }
            batch.withUnsafeBytes { bytes in
                var offset = 0
                while offset < bytes.count {
                    let written = write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                    if written < 0 {
                        if errno == EINTR { continue }
                        break  // nowhere left to report it; the line is lost with the descriptor
                    }
                    offset += written
                }
            }
            if closed {
                finished.signal()
                return
            }
        }
    }
}

/// The thread that drains a ``LogWriter``.
private final class WriterThread: Sendable {
    let writer: LogWriter

    init(writer: LogWriter) {
        self.writer = writer
    }

    func start() {
        let writer = self.writer
        let thread = Thread { writer.runLoop() }
        thread.start()
    }
}
