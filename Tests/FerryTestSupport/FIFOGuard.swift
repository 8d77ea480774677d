import Dispatch
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Runs `body` on a thread of its own; false when it has not finished in
/// `seconds` (the FIFOs are then opened at both ends, which frees it). For
/// tests that put FIFOs where Ferry expects files: a blocking `open(2)` must
/// fail the test, not hang it.
public func finishes(within seconds: Double, fifos: [String], _ body: @escaping @Sendable () -> Void) -> Bool {
    let done = DispatchSemaphore(value: 0)
    Thread {
        body()
        done.signal()
    }.start()
    guard done.wait(timeout: .now() + seconds) == .timedOut else { return true }
    let ends = fifos.map { open($0, O_RDWR | O_NONBLOCK) }
    done.wait()
    for end in ends where end >= 0 { close(end) }
    return false
}
