import CFerrySystem
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Ferry's one way of starting a thread of its own: a pthread with a name that
/// `top -H`, `ps -L` and profilers show (`ferry-rx-0`, `ferry-log`, `ferry-file-0`).
///
/// Used directly by the receive threads (blocking `recvmmsg`); everything else
/// that blocks (the spool, the log writer, the file sinks) runs on a
/// ``BackgroundWorker``, which starts one of these.
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
