import CFerrySystem
import Dispatch
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Ferry's one way of starting a thread of its own: a pthread with a name that
/// `top -H`, `ps -L` and profilers show (`ferry-rx-0`, `ferry-log`, `ferry-file-0`).
///
/// Used where work must not run on an event loop or the cooperative pool: the
/// receive threads (blocking `recvmmsg`), the log writer and the file sinks
/// (blocking writes).
package final class NamedThread: Sendable {
    private let thread = Mutex<pthread_t?>(nil)

    /// Starts `body` on a new thread called `name` (at most 15 characters are kept).
    package init(name: String, _ body: @escaping @Sendable () -> Void) throws(NamedThreadError) {
        let box = Unmanaged.passRetained(
            Body {
                cferry_name_this_thread(name)
                body()
            }
        ).toOpaque()
        var created = pthread_t()
        let result = pthread_create(
            &created, nil,
            { argument in
                Unmanaged<Body>.fromOpaque(argument!).takeRetainedValue().run()
                return nil
            }, box)
        guard result == 0 else {
            Unmanaged<Body>.fromOpaque(box).release()
            throw NamedThreadError(name: name, code: result)
        }
        thread.withLock { $0 = created }
    }

    /// Waits for the thread to end (once; later calls return at once).
    package func join() {
        if let running = thread.withLock({ value -> pthread_t? in
            defer { value = nil }
            return value
        }) {
            pthread_join(running, nil)
        }
    }

    private final class Body: Sendable {
        let run: @Sendable () -> Void

        init(_ run: @escaping @Sendable () -> Void) {
            self.run = run
        }
    }
}

/// A thread could not be started (the process or system thread limit).
package struct NamedThreadError: Error, CustomStringConvertible {
    let name: String
    let code: CInt

    package var description: String {
        "cannot start thread '\(name)': \(String(cString: strerror(code)))"
    }
}

/// Runs submitted work in order on one ``NamedThread``, so blocking calls (disk
/// writes) never run on an event loop. Work submitted after ``shutdown()`` is
/// called with `false` and must not block.
package final class SerialWorker: Sendable {
    private struct Queue {
        var work: [@Sendable (Bool) -> Void] = []
        var closed = false
    }

    /// What the worker's thread and its submitters share.
    private final class Shared: Sendable {
        let queue = Mutex(Queue())
        let wakeUp = DispatchSemaphore(value: 0)
    }

    private let shared = Shared()
    private let thread: NamedThread

    package init(name: String) throws(NamedThreadError) {
        let shared = self.shared
        thread = try NamedThread(name: name) {
            while true {
                shared.wakeUp.wait()
                let (work, closed) = shared.queue.withLock { queue in
                    defer { queue.work.removeAll(keepingCapacity: true) }
                    return (queue.work, queue.closed)
                }
                for item in work { item(true) }
                if closed, shared.queue.withLock({ $0.work.isEmpty }) { return }
            }
        }
    }

    /// Runs `work(true)` on the worker's thread after everything submitted before it;
    /// after ``shutdown()``, runs `work(false)` at once on the caller's thread.
    package func submit(_ work: @escaping @Sendable (Bool) -> Void) {
        let accepted = shared.queue.withLock { queue -> Bool in
            guard !queue.closed else { return false }
            queue.work.append(work)
            return true
        }
        if accepted { shared.wakeUp.signal() } else { work(false) }
    }

    /// Lets queued work finish, then ends the thread (waiting for it off the cooperative pool).
    package func shutdown() async {
        shared.queue.withLock { $0.closed = true }
        shared.wakeUp.signal()
        let thread = self.thread
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                thread.join()
                continuation.resume()
            }
        }
    }
}
