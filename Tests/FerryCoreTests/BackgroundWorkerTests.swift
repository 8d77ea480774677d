import Synchronization
import Testing

@testable import FerryCore

/// The worker's contract, with a test clock and no sleeps: every wait is on an event the worker reports.
struct BackgroundWorkerTests {
    /// What a worker did, in order, and a way to wait until it has done something.
    final class Journal: Sendable {
        private struct State {
            var entries: [String] = []
            var waiters: [(count: Int, resume: CheckedContinuation<Void, Never>)] = []
        }
        private let state = Mutex(State())

        func note(_ entry: String) {
            let ready = state.withLock { state -> [CheckedContinuation<Void, Never>] in
                state.entries.append(entry)
                let count = state.entries.count
                defer { state.waiters.removeAll { $0.count <= count } }
                return state.waiters.filter { $0.count <= count }.map(\.resume)
            }
            for resume in ready { resume.resume() }
        }

        var entries: [String] { state.withLock { $0.entries } }

        /// Returns once `count` entries are noted.
        func wait(for count: Int) async {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLock { state -> Bool in
                    guard state.entries.count < count else { return true }
                    state.waiters.append((count, continuation))
                    return false
                }
                if now { continuation.resume() }
            }
        }
    }

    /// Submits a marker and waits until the worker has run it (everything submitted before it has run too).
    private func pass<C>(_ worker: BackgroundWorker<C>, _ journal: Journal, _ name: String) async {
        let count = journal.entries.count
        worker.submit { _ in journal.note(name) }
        await journal.wait(for: count + 1)
    }

    @Test func runsWorkInOrderAndStopLetsQueuedWorkFinishThenRefusesMore() async throws {
        let worker = BackgroundWorker(name: "ferry-test")
        let done = Mutex<[Int]>([])
        for index in 0..<1_000 {
            worker.submit { active in
                #expect(active)
                done.withLock { $0.append(index) }
            }
        }
        try worker.start()  // work submitted before the start waits for it
        await worker.shutdown()
        #expect(done.withLock { $0 } == Array(0..<1_000))
        let late = Mutex<Bool?>(nil)
        worker.submit { active in late.withLock { $0 = active } }
        #expect(late.withLock { $0 } == false)
    }

    @Test func aWakeRunsARoundAfterTheWorkSubmittedBeforeIt() async throws {
        let worker = BackgroundWorker(name: "ferry-test", clock: ManualClock())
        let journal = Journal()
        try worker.start { _ in
            journal.note("round")
            return nil
        }
        worker.submit { _ in journal.note("work") }
        worker.wake()
        await journal.wait(for: 2)
        #expect(journal.entries == ["work", "round"])
        await worker.shutdown()
    }

    @Test func aDeadlineRunsARoundWhenItsClockReachesItAndNotBefore() async throws {
        let clock = ManualClock()
        let worker = BackgroundWorker(name: "ferry-test", clock: clock)
        let journal = Journal()
        try worker.start { _ in
            journal.note("round")
            return nil
        }
        worker.wake(at: clock.now.advanced(by: .seconds(60)))
        await pass(worker, journal, "started")
        clock.advance(by: .seconds(59))
        worker.clockMoved()
        await pass(worker, journal, "at 59 s")
        clock.advance(by: .seconds(1))
        worker.clockMoved()
        await journal.wait(for: 3)
        #expect(journal.entries == ["started", "at 59 s", "round"])
        // Fired once: the deadline is gone.
        await pass(worker, journal, "after")
        #expect(journal.entries == ["started", "at 59 s", "round", "after"])
        await worker.shutdown()
    }

    @Test func theEarliestDeadlineWinsAndARoundMayAskForTheNext() async throws {
        let clock = ManualClock()
        let worker = BackgroundWorker(name: "ferry-test", clock: clock)
        let journal = Journal()
        let rounds = Atomic<Int>(0)
        try worker.start { _ in
            let round = rounds.add(1, ordering: .relaxed).newValue
            journal.note("round \(round) at \(clock.now.offset)")
            return round == 1 ? clock.now.advanced(by: .seconds(10)) : nil
        }
        worker.wake(at: clock.now.advanced(by: .seconds(30)))
        worker.wake(at: clock.now.advanced(by: .seconds(5)))
        worker.wake(at: clock.now.advanced(by: .seconds(20)))
        clock.advance(by: .seconds(5))
        worker.clockMoved()
        await journal.wait(for: 1)
        clock.advance(by: .seconds(10))
        worker.clockMoved()
        await journal.wait(for: 2)
        #expect(journal.entries == ["round 1 at 5.0 seconds", "round 2 at 15.0 seconds"])
        await worker.shutdown()
    }

    @Test func stopRunsALastRoundAndNoneAfterIt() async throws {
        let worker = BackgroundWorker(name: "ferry-test", clock: ManualClock())
        let journal = Journal()
        try worker.start { stopping in
            journal.note(stopping ? "last round" : "round")
            return nil
        }
        worker.submit { _ in journal.note("work") }
        worker.stop()
        #expect(journal.entries == ["work", "last round"])
        worker.wake()
        worker.stop()  // a second stop returns at once
        #expect(journal.entries == ["work", "last round"])
    }

    @Test func aPauseOnTheWorkersThreadEndsWhenStopIsAsked() async throws {
        let worker = BackgroundWorker(name: "ferry-test", clock: ManualClock())
        let journal = Journal()
        try worker.start()
        worker.submit { _ in
            #expect(!worker.pause(for: .zero))
            journal.note("pausing")
            journal.note(worker.pause(for: .seconds(3_600)) ? "stopped" : "timed out")
        }
        await journal.wait(for: 1)
        await worker.shutdown()
        #expect(journal.entries == ["pausing", "stopped"])
    }
}
