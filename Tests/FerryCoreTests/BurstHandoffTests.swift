import Foundation
import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import FerryCore

/// ``BurstHandoff``'s one invariant, driven through interleavings by a real
/// receive thread and a real event loop: the logs of one socket leave in the
/// order they arrived, whichever way each burst goes (direct, handed over,
/// a refused direct send whose rest is handed over, frames mixed in).
@Suite(.timeLimit(.minutes(1)))
struct BurstHandoffTests {
    /// What a simulated receive thread does with each burst.
    private enum Kind: CaseIterable {
        /// Plain logs: direct if the route is open and the loop has caught up.
        case plain
        /// A burst with a frame: always through the loop.
        case frames
        /// A direct send the kernel refused after its first log: the rest goes through the loop.
        case refused
    }

    /// Runs `bursts` bursts of two logs each through a receive thread and a
    /// loop; returns the logs in the order they left. `obeyTheRule: false` is
    /// the same driver with the hand-off's rule ignored (direct whenever the route is open).
    private func run(bursts: Int, obeyTheRule: Bool, seed: UInt64) async throws -> [Int] {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let handoff = BurstHandoff(capacity: 8)
        let output = Mutex<[Int]>([])
        let routeOpen = Atomic<Bool>(true)
        let done = DispatchSemaphore(value: 0)

        let receiver = Thread {
            var random = HandoffRandom(seed: seed)
            for index in 0..<bursts {
                let logs = [index * 2, index * 2 + 1]
                let kind = Kind.allCases[Int(random.next() % 10) < 7 ? 0 : (random.next() % 2 == 0 ? 1 : 2)]
                var burst = ReceivedBurst(records: logs.map { ByteBuffer(integer: $0) })
                let direct = kind != .frames && routeOpen.load(ordering: .relaxed) && (!obeyTheRule || handoff.loopCaughtUp)
                if direct {
                    let sent = kind == .refused ? 1 : 2
                    output.withLock { $0 += logs.prefix(sent) }
                    burst.records.removeFirst(sent)
                    if kind == .refused { burst.failedDirectSend = true }
                }
                if !burst.records.isEmpty {
                    while handoff.waitWhileFull(timeout: .milliseconds(1)) {}
                    if handoff.handOver(burst) {
                        loop.execute {
                            let (taken, receiverWaiting) = handoff.takeAll()
                            // The loop is slow now and then: the interleavings that matter.
                            if taken.count > 1 || index % 7 == 0 { usleep(UInt32(20 + index % 50)) }
                            // The pipeline closes the route while logs wait or a refused send is retried.
                            routeOpen.store(!taken.contains { $0.failedDirectSend } && index % 13 != 0, ordering: .relaxed)
                            for burst in taken {
                                output.withLock { $0 += burst.records.map { $0.getInteger(at: $0.readerIndex, as: Int.self)! } }
                            }
                            handoff.finished(taken, receiverWaiting: receiverWaiting)
                        }
                    }
                }
                if index % 97 == 0 { usleep(30) }
            }
            done.signal()
        }
        receiver.start()
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                done.wait()
                continuation.resume()
            }
        }
        // The last tasks on the loop.
        try await loop.submit {}.get()
        while !handoff.loopCaughtUp { try await Task.sleep(for: .milliseconds(1)) }
        return output.withLock { $0 }
    }

    @Test(arguments: [1, 2, 3] as [UInt64])
    func logsOfOneSocketLeaveInTheOrderTheyArrived(seed: UInt64) async throws {
        let bursts = 5_000
        let left = try await run(bursts: bursts, obeyTheRule: true, seed: seed)
        #expect(left.count == bursts * 2)
        let inversions = zip(left, left.dropFirst()).filter { $0 > $1 }.count
        #expect(inversions == 0, "first out of order at \(String(describing: zip(left, left.dropFirst()).first { $0 > $1 }))")
    }

    /// The driver can tell: without the rule, direct sends overtake bursts still on the loop.
    @Test func withoutTheRuleLogsOvertakeEachOther() async throws {
        let left = try await run(bursts: 5_000, obeyTheRule: false, seed: 7)
        #expect(zip(left, left.dropFirst()).contains { $0 > $1 })
    }
}

/// A small deterministic generator, so a failing interleaving can be replayed by its seed.
private struct HandoffRandom {
    var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var value = state
        value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
        value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
        return value ^ (value >> 31)
    }
}
