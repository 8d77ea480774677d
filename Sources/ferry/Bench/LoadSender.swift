import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Sends numbered, timestamped logs to the target, paced at a rate or flat out.
final class LoadSender: Sendable {
    private let socket: BenchSocket
    private let sizes: BenchSizes
    private let rate: Int
    let sent = Atomic<Int>(0)
    let errors = Atomic<Int>(0)

    init(socket: BenchSocket, sizes: BenchSizes, rate: Int) {
        self.socket = socket
        self.sizes = sizes
        self.rate = rate
    }

    /// Sends `count` logs, or for `duration` seconds when given; returns the seconds it took.
    func run(count: Int?, duration: Double?) -> Double {
        var buffer = [UInt8](repeating: UInt8(ascii: "x"), count: sizes.maximum)
        var lengths = BenchSizes.Lengths(sizes)
        var length = lengths.next()
        let start = BenchPayload.monotonicNanoseconds()
        let end = duration.map { start + UInt64($0 * 1e9) }
        var sequence: UInt64 = 0
        while true {
            if let count, sequence >= UInt64(count) { break }
            let now = BenchPayload.monotonicNanoseconds()
            if let end, now >= end { break }
            if rate > 0 {
                // Paced: never ahead of schedule by more than a millisecond.
                let due = start + sequence * 1_000_000_000 / UInt64(rate)
                if due > now + 1_000_000 {
                    usleep(UInt32((due - now) / 1_000))
                    continue
                }
            }
            BenchPayload.fill(&buffer, length: length, sequence: sequence, time: BenchPayload.monotonicNanoseconds())
            let result = buffer.withUnsafeBytes { send(socket.fd, $0.baseAddress, length, 0) }
            if result < 0 {
                errors.wrappingAdd(1, ordering: .relaxed)
                if errno == ENOBUFS || errno == EAGAIN { usleep(100) }
                continue  // ECONNREFUSED from an earlier datagram: this one still needs sending
            }
            sequence += 1
            sent.store(Int(sequence), ordering: .relaxed)
            buffer[length - 1] = UInt8(ascii: "x")  // the next log may be longer: its padding, not this one's newline
            length = lengths.next()
        }
        return Double(BenchPayload.monotonicNanoseconds() - start) / 1e9
    }
}
