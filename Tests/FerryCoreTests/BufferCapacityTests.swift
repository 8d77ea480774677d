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
}
