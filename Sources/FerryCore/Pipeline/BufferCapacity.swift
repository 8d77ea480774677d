import Synchronization

/// The one bound on everything Ferry holds between receiving a log and
/// forwarding it, in logs and in payload bytes, shared by every event loop.
///
/// Both figures live in one 64-bit atomic (logs in the low 24 bits, bytes in
/// the high 40), so a whole read burst is reserved with one compare-and-swap
/// and the two limits can never disagree. A log holds its reservation until
/// it is forwarded or dropped.
public final class BufferCapacity: Sendable {
    /// Largest capacity in logs that fits the packed representation.
    public static let maxLogs = (1 << 24) - 1
    /// Largest capacity in bytes allowed (64 GiB).
    public static let maxBytes = 1 << 36

    public let capacityLogs: Int
    public let capacityBytes: Int
    private let used = Atomic<UInt64>(0)
    /// Tasks waiting for the buffer to empty (the drain), by id.
    private let emptyWaiters = Mutex<(next: Int, waiting: [Int: CheckedContinuation<Void, Never>])>((0, [:]))
    /// Set while anyone waits, so a release checks for emptiness only then.
    private let hasEmptyWaiters = Atomic<Bool>(false)

    public init(logs: Int, bytes: Int) {
        precondition(logs > 0 && logs <= Self.maxLogs && bytes > 0 && bytes <= Self.maxBytes)
        self.capacityLogs = logs
        self.capacityBytes = bytes
    }

    /// Logs currently held.
    public var usedLogs: Int { Int(used.load(ordering: .relaxed) & 0xFF_FFFF) }
    /// Payload bytes currently held.
    public var usedBytes: Int { Int(used.load(ordering: .relaxed) >> 24) }

    /// Reserves room for as many of `sizes` as fit, in order; returns how many
    /// and their total size. The rest must be dropped by the caller as `queue_full`.
    @inline(__always)
    public func reservePrefix<C: Collection>(of records: C, size: (C.Element) -> Int) -> (count: Int, bytes: Int) {
        var current = used.load(ordering: .relaxed)
        while true {
            let freeLogs = capacityLogs - Int(current & 0xFF_FFFF)
            var freeBytes = capacityBytes - Int(current >> 24)
            var count = 0
            var bytes = 0
            for record in records {
                let length = size(record)
                guard count < freeLogs, length <= freeBytes else { break }
                count += 1
                bytes += length
                freeBytes -= length
            }
            if count == 0 { return (0, 0) }
            let desired = current + (UInt64(bytes) << 24) + UInt64(count)
            let (exchanged, original) = used.compareExchange(
                expected: current, desired: desired, successOrdering: .relaxed, failureOrdering: .relaxed)
            if exchanged { return (count, bytes) }
            current = original
        }
    }

    /// Reserves room for all of `count` logs of `bytes` total, or for none.
    public func reserveAll(count: Int, bytes: Int) -> Bool {
        var current = used.load(ordering: .relaxed)
        while true {
            guard Int(current & 0xFF_FFFF) + count <= capacityLogs, Int(current >> 24) + bytes <= capacityBytes else {
                return false
            }
            let desired = current + (UInt64(bytes) << 24) + UInt64(count)
            let (exchanged, original) = used.compareExchange(
                expected: current, desired: desired, successOrdering: .relaxed, failureOrdering: .relaxed)
            if exchanged { return true }
            current = original
        }
    }

    /// Gives back the room of logs that were forwarded or dropped.
    @inline(__always)
    public func release(count: Int, bytes: Int) {
        let now = used.subtract((UInt64(bytes) << 24) + UInt64(count), ordering: .sequentiallyConsistent).newValue
        if now & 0xFF_FFFF == 0, hasEmptyWaiters.load(ordering: .sequentiallyConsistent) { wakeEmptyWaiters() }
    }

    /// Returns once no log is held (at once if none is), or when the task is cancelled.
    ///
    /// The drain waits on this instead of polling: the release that empties the
    /// buffer wakes it.
    public func waitUntilEmpty() async {
        let id = emptyWaiters.withLock { state in
            defer { state.next += 1 }
            return state.next
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = emptyWaiters.withLock { state -> Bool in
                    hasEmptyWaiters.store(true, ordering: .sequentiallyConsistent)
                    // Checked after the flag is set: a release that empties it now sees the flag.
                    if Task.isCancelled || used.load(ordering: .sequentiallyConsistent) & 0xFF_FFFF == 0 { return true }
                    state.waiting[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            emptyWaiters.withLock { $0.waiting.removeValue(forKey: id) }?.resume()
        }
    }

    private func wakeEmptyWaiters() {
        let waiting = emptyWaiters.withLock { state in
            defer {
                state.waiting.removeAll()
                hasEmptyWaiters.store(false, ordering: .sequentiallyConsistent)
            }
            return Array(state.waiting.values)
        }
        for continuation in waiting { continuation.resume() }
    }
}
