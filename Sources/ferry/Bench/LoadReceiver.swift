import Foundation
import Histogram
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Receives `ferry bench` logs at the sink address on a thread of its own and
/// counts what arrived, what arrived twice, and how late.
final class LoadReceiver: Sendable {
    struct Tally: Sendable {
        var received = 0
        var unique = 0
        var duplicated = 0
        var foreign = 0
        var latency = Histogram<UInt64>(highestTrackableValue: 120_000_000_000, numberOfSignificantValueDigits: .three)
    }

    private let socket: BenchSocket
    private let state = Mutex(Tally())
    private let seen = Mutex([UInt64]())
    private let stopping = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)

    init(socket: BenchSocket) {
        self.socket = socket
    }

    var tally: Tally { state.withLock { $0 } }

    func start() {
        let thread = Thread { [self] in
            run()
            finished.signal()
        }
        thread.start()
    }

    /// Stops after no datagram has arrived for `idle` seconds.
    func stop(afterIdle idle: Double) {
        var lastCount = -1
        var quietSince = Date()
        while true {
            let count = tally.received
            if count != lastCount {
                lastCount = count
                quietSince = Date()
            } else if Date().timeIntervalSince(quietSince) >= idle {
                break
            }
            usleep(20_000)
        }
        stopping.store(true, ordering: .relaxed)
        finished.wait()
    }

    private func run() {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        var poller = pollfd(fd: socket.fd, events: Int16(POLLIN), revents: 0)
        while !stopping.load(ordering: .relaxed) {
            guard poll(&poller, 1, 50) == 1 else { continue }
            let count = buffer.withUnsafeMutableBytes { recv(socket.fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            guard count > 0 else { continue }
            let now = BenchPayload.monotonicNanoseconds()
            let parsed = buffer.withUnsafeBytes { BenchPayload.parse(UnsafeRawBufferPointer(rebasing: $0[..<count])) }
            guard let (sequence, time) = parsed else {
                state.withLock {
                    $0.received += 1
                    $0.foreign += 1
                }
                continue
            }
            let first = seen.withLock { words -> Bool in
                let word = Int(sequence / 64)
                if word >= words.count { words.append(contentsOf: repeatElement(0, count: word - words.count + 1024)) }
                let bit: UInt64 = 1 << (sequence % 64)
                defer { words[word] |= bit }
                return words[word] & bit == 0
            }
            state.withLock { tally in
                tally.received += 1
                if first {
                    tally.unique += 1
                    _ = tally.latency.record(now > time ? now - time : 0)
                } else {
                    tally.duplicated += 1
                }
            }
        }
    }
}
