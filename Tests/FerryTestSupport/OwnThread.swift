import Foundation

/// Runs `body` on a thread of its own and waits for it without holding one of
/// Swift concurrency's threads.
///
/// For the parts of a test that measure time: on a 2-core machine the
/// cooperative pool has two threads, and under a full parallel run other
/// tests' blocking calls can hold both for seconds, so a `Task.sleep` of
/// 20 ms may resume much later. A thread of its own is scheduled by the kernel
/// alone, so what it measures is the process under test, not the pool.
public func onOwnThread<T>(_ body: @escaping () throws -> T) async throws -> T {
    let work = UncheckedBox(body)
    let result: UncheckedBox<Result<T, any Error>> = await withCheckedContinuation { continuation in
        let thread = Thread {
            continuation.resume(returning: UncheckedBox(Result { try work.value() }))
        }
        thread.start()
    }
    return try result.value.get()
}

/// Carries a value that is used by one thread at a time across a hand-over.
private struct UncheckedBox<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

extension FerryProcess {
    /// Waits, blocking this thread, for the process to exit; returns its
    /// exit status, or `nil` after `timeout` seconds. For ``onOwnThread(_:)``.
    public func blockingWaitForExit(timeout: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning, Date() < deadline { usleep(5_000) }
        return process.isRunning ? nil : process.terminationStatus
    }
}
