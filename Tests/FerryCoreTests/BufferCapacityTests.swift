import Testing

@testable import FerryCore

struct BufferCapacityTests {
    @Test func reservesTheLongestPrefixThatFitsInLogsAndBytes() {
        let capacity = BufferCapacity(logs: 3, bytes: 100)
        let first = capacity.reservePrefix(of: [10, 20]) { $0 }
        #expect(first.count == 2 && first.bytes == 30)
        let second = capacity.reservePrefix(of: [10, 10, 10]) { $0 }
        #expect(second.count == 1 && second.bytes == 10)  // only one more log fits
        #expect(capacity.usedLogs == 3 && capacity.usedBytes == 40)
        capacity.release(count: 3, bytes: 40)
        let bytesBound = capacity.reservePrefix(of: [60, 50]) { $0 }
        #expect(bytesBound.count == 1 && bytesBound.bytes == 60)  // 50 more would exceed 100 bytes
    }

    @Test func reserveAllIsAllOrNothing() {
        let capacity = BufferCapacity(logs: 10, bytes: 100)
        #expect(capacity.reserveAll(count: 5, bytes: 90))
        #expect(!capacity.reserveAll(count: 1, bytes: 11))
        #expect(capacity.usedLogs == 5 && capacity.usedBytes == 90)
        #expect(capacity.reserveAll(count: 5, bytes: 10))
        #expect(!capacity.reserveAll(count: 1, bytes: 0))
    }

    @Test func concurrentReservationsNeverExceedCapacity() async {
        let capacity = BufferCapacity(logs: 1000, bytes: 1 << 20)
        let granted = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    var total = 0
                    for _ in 0..<500 { total += capacity.reservePrefix(of: [1, 1]) { $0 }.count }
                    return total
                }
            }
            return await group.reduce(0, +)
        }
        #expect(granted == 1000)
        #expect(capacity.usedLogs == 1000)
    }

    /// The drain's wait: woken by the release that empties the buffer, not by polling.
    @Test func waitUntilEmptyReturnsWhenTheLastLogIsReleased() async {
        let capacity = BufferCapacity(logs: 10, bytes: 100)
        await capacity.waitUntilEmpty()  // already empty: at once
        #expect(capacity.reserveAll(count: 2, bytes: 20))
        let waiter = Task {
            await capacity.waitUntilEmpty()
            return capacity.usedLogs
        }
        try? await Task.sleep(for: .milliseconds(50))
        capacity.release(count: 1, bytes: 10)  // one left: still waiting
        try? await Task.sleep(for: .milliseconds(50))
        capacity.release(count: 1, bytes: 10)
        #expect(await waiter.value == 0)
    }

    /// Cancelled, the wait ends without the release that never comes: without
    /// that, the test never finishes and its time limit fails it. (No clock
    /// bound: a loaded CI once resumed the cancelled task 27 s later.)
    @Test(.timeLimit(.minutes(2))) func waitUntilEmptyEndsWhenCancelled() async {
        let capacity = BufferCapacity(logs: 10, bytes: 100)
        #expect(capacity.reserveAll(count: 1, bytes: 10))
        let waiter = Task { await capacity.waitUntilEmpty() }
        try? await Task.sleep(for: .milliseconds(50))
        waiter.cancel()
        await waiter.value
        #expect(capacity.usedLogs == 1)
    }
}
