import Dispatch
import Synchronization

/// Ferry's one way to run blocking work (disk writes, syncs) off the event
/// loops: a ``NamedThread`` that sleeps until an event wakes it and never polls.
///
/// The events: work submitted (``submit(_:)``, run in order), a round asked for
/// now (``wake()``) or by a deadline of `clock` (``wake(at:)``), and ``stop()``.
/// A round is the `round` given to ``start(round:)``: what a worker does each
/// time something changed (the spool's sync and checkpoint, the log writer's
/// write); it may return the deadline of its next round. ``stop()`` runs the
/// work queued before it and one last round (`round(true)`), then ends the
/// thread; work submitted after it is refused: run at once with `false`.
package final class BackgroundWorker<C: Clock>: Sendable where C.Duration == Duration {
    package typealias Round = @Sendable (_ stopping: Bool) -> C.Instant?

    private struct State {
        var work: [@Sendable (Bool) -> Void] = []
        var woken = false
        var deadline: C.Instant?
        var stopping = false
        /// The semaphore was signalled since the thread last decided to sleep.
        var signalled = false
    }

    /// What the thread and the callers share (not the worker: the thread must not keep it alive).
    private final class Shared: Sendable {
        let clock: C
        let state = Mutex(State())
        let wakeUp = DispatchSemaphore(value: 0)

        init(clock: C) {
            self.clock = clock
        }

        /// Changes the state; signals the thread if `change` says it must look again.
        func update(_ change: (inout State) -> Bool) {
            let signal = state.withLock { state -> Bool in
                guard change(&state), !state.signalled else { return false }
                state.signalled = true
                return true
            }
            if signal { wakeUp.signal() }
        }
    }

    let name: String
    private let shared: Shared
    private let thread = Mutex<NamedThread?>(nil)

    /// A worker whose thread starts with ``start(round:)``; work submitted before then waits.
    package init(name: String, clock: C) {
        self.name = name
        self.shared = Shared(clock: clock)
    }

    package var clock: C { shared.clock }

    /// Starts the thread (once). `round` is kept by the thread only, until it ends.
    package func start(round: Round? = nil) throws(NamedThreadError) {
        let shared = self.shared
        let started = try NamedThread(name: name) { Self.run(shared, round) }
        thread.withLock { $0 = started }
    }

    // MARK: - Events

    /// Runs `work(true)` on the thread after everything submitted before it;
    /// after ``stop()``, runs `work(false)` at once on the caller's thread.
    package func submit(_ work: @escaping @Sendable (Bool) -> Void) {
        var accepted = false
        shared.update { state in
            accepted = !state.stopping
            if accepted { state.work.append(work) }
            return accepted
        }
        if !accepted { work(false) }
    }

    /// Asks for a round now.
    package func wake() {
        shared.update { state in
            guard !state.woken else { return false }
            state.woken = true
            return true
        }
    }

    /// Asks for a round by `deadline` (the earliest of those asked for wins).
    package func wake(at deadline: C.Instant) {
        shared.update { state in
            guard state.deadline.map({ deadline < $0 }) ?? true else { return false }
            state.deadline = deadline
            return true
        }
    }

    /// Makes the thread read the clock again (a test clock moved).
    package func clockMoved() {
        shared.update { _ in true }
    }

    /// On the worker's thread: waits up to `duration` of the clock, returning true
    /// early once ``stop()`` was asked (a retry's backoff that shutdown cuts short).
    package func pause(for duration: Duration) -> Bool {
        let until = shared.clock.now.advanced(by: duration)
        while true {
            let left = shared.state.withLock { state -> Duration? in
                guard !state.stopping else { return nil }
                state.signalled = false
                return shared.clock.now.duration(to: until)
            }
            guard let left else { return true }
            guard left > .zero else { return false }
            _ = shared.wakeUp.wait(timeout: .now() + left.dispatchInterval)
        }
    }

    /// Runs what was submitted and a last round, ends the thread and waits for it. Not from the worker's own thread.
    package func stop() {
        shared.update { state in
            defer { state.stopping = true }
            return !state.stopping
        }
        thread.withLock { $0 }?.join()
    }

    /// ``stop()``, waiting for the thread off the cooperative pool.
    package func shutdown() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                self.stop()
                continuation.resume()
            }
        }
    }

    // MARK: - The thread

    private enum Next {
        case run(work: [@Sendable (Bool) -> Void], round: Bool, stopping: Bool)
        case sleep(Duration?)
    }

    private static func run(_ shared: Shared, _ round: Round?) {
        while true {
            let next = shared.state.withLock { state -> Next in
                let now = shared.clock.now
                let due = state.deadline.map { now >= $0 } ?? false
                guard state.work.isEmpty, !state.woken, !due, !state.stopping else {
                    defer {
                        state.work.removeAll(keepingCapacity: true)
                        state.woken = false
                        if due { state.deadline = nil }
                    }
                    return .run(work: state.work, round: state.woken || due || state.stopping, stopping: state.stopping)
                }
                state.signalled = false
                return .sleep(state.deadline.map { now.duration(to: $0) })
            }
            switch next {
            case .sleep(nil):
                shared.wakeUp.wait()
            case .sleep(let left?):
                _ = shared.wakeUp.wait(timeout: .now() + left.dispatchInterval)
            case .run(let work, let wantsRound, let stopping):
                for item in work { item(true) }
                if wantsRound, let round, let deadline = round(stopping), !stopping {
                    shared.state.withLock { state in state.deadline = min(state.deadline ?? deadline, deadline) }
                }
                if stopping { return }
            }
        }
    }
}

extension BackgroundWorker where C == ContinuousClock {
    /// A worker on the system's monotonic clock.
    package convenience init(name: String) {
        self.init(name: name, clock: ContinuousClock())
    }
}

extension Duration {
    /// As a `DispatchTimeInterval` (whole nanoseconds, at least one).
    fileprivate var dispatchInterval: DispatchTimeInterval {
        let (seconds, attoseconds) = components
        let nanoseconds = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        guard !nanoseconds.overflow, nanoseconds.partialValue < Int64(Int.max / 2) else { return .seconds(Int(Int32.max)) }
        return .nanoseconds(Int(max(1, nanoseconds.partialValue + attoseconds / 1_000_000_000)))
    }
}
