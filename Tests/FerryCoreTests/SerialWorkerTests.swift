import Synchronization
import Testing

@testable import FerryCore

struct SerialWorkerTests {
    /// Work runs in order on the worker's thread; shutdown lets queued work
    /// finish; work submitted after it is told it will not run there.
    @Test func runsInOrderFinishesQueuedWorkAndRefusesLaterWork() async throws {
        let worker = try SerialWorker(name: "ferry-test")
        let done = Mutex<[Int]>([])
        for index in 0..<1_000 {
            worker.submit { active in
                #expect(active)
                done.withLock { $0.append(index) }
            }
        }
        await worker.shutdown()
        #expect(done.withLock { $0 } == Array(0..<1_000))
        let late = Mutex<Bool?>(nil)
        worker.submit { active in late.withLock { $0 = active } }
        #expect(late.withLock { $0 } == false)
    }
}
