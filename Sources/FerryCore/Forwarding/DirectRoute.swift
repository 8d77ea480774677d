import CFerrySystem
import Logging
import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Which `udp://` upstream a receive thread may send to itself, as its loop's
/// pipeline decided (or none).
///
/// The pipeline owns every forwarding decision: it opens the route only while
/// nothing waits in its shard and the first upstream that can take traffic is
/// a `udp://` one with a closed breaker, and closes it as soon as that changes.
/// While the route is open, a burst goes from `recvmmsg` to `sendmmsg` on the
/// receive thread, as in the C reference relay, with no hop and no buffering.
package final class DirectRoute: Sendable {
    private let target = Atomic<Int>(-1)

    package init() {}

    package func open(upstream position: Int) {
        target.store(position, ordering: .relaxed)
    }

    func close() {
        target.store(-1, ordering: .relaxed)
    }

    /// The upstream's position in the failover order, or nil while the route is closed.
    var upstream: Int? {
        let position = target.load(ordering: .relaxed)
        return position >= 0 ? position : nil
    }
}

/// A receive thread's own connected socket to one `udp://` upstream.
///
/// Confined to its receive thread. It connects (again) whenever the
/// upstream's current address changes, sends a burst with `sendmmsg`, and
/// reports to the shared ``Upstream`` what the loop's ``UDPUpstreamLane``
/// reports for its own sends: forwarded logs, latency, breaker outcomes and
/// errors. A refused send (ICMP port unreachable, reported by the kernel on a
/// later send) fails the rest of the burst, which goes back to the loop.
final class DirectUDPSender {
    let upstream: Upstream
    private let logger: Logger
    private var descriptor: CInt = -1
    private var connectedTo: SocketAddress?
    private var connectedGeneration = -1
    private var lastErrorAt = NIODeadline.uptimeNanoseconds(0)
    private var warnings = WarningLimiter(interval: .seconds(10))
    private var random = FastRandom()
    private let capacity: Int
    private let messages: UnsafeMutablePointer<cferry_mmsghdr>
    private let vectors: UnsafeMutablePointer<iovec>

    /// - Parameter batch: the most records one ``send(_:bytes:receivedAt:)`` takes.
    init(upstream: Upstream, batch: Int, logger: Logger) {
        self.upstream = upstream
        self.logger = logger
        self.capacity = batch
        self.messages = .allocate(capacity: batch)
        self.vectors = .allocate(capacity: batch)
        messages.initialize(repeating: cferry_mmsghdr(), count: batch)
        vectors.initialize(repeating: iovec(), count: batch)
    }

    deinit {
        if descriptor >= 0 { Glibc.close(descriptor) }
        messages.deallocate()
        vectors.deallocate()
    }

    /// Sends `records` (at most `batch`) and returns how many went out; the
    /// rest were refused and must go back to the buffer.
    func send(_ records: [ByteBuffer], bytes: Int, receivedAt: NIODeadline) -> Int {
        precondition(records.count <= capacity, "a burst is at most receive.batch datagrams")
        let count = records.count
        guard count > 0, connectIfNeeded() else { return 0 }
        var sent = 0
        var failure: CInt = 0
        withExtendedLifetime(records) {
            for index in 0..<count {
                // The pointers stay valid while `records` is alive: the buffers are not mutated.
                records[index].withUnsafeReadableBytes { bytes in
                    vectors[index] = iovec(iov_base: UnsafeMutableRawPointer(mutating: bytes.baseAddress), iov_len: bytes.count)
                }
                messages[index].msg_hdr = msghdr(
                    msg_name: nil, msg_namelen: 0, msg_iov: vectors + index, msg_iovlen: 1, msg_control: nil, msg_controllen: 0,
                    msg_flags: 0)
            }
            while sent < count {
                let result = cferry_sendmmsg(descriptor, messages + sent, UInt32(count - sent), 0)
                if result > 0 {
                    sent += Int(result)
                } else if errno != EINTR {
                    failure = errno
                    break
                }
            }
        }
        let now = NIODeadline.now()
        if sent > 0 {
            let sentBytes = sent == records.count ? bytes : records[0..<sent].reduce(0) { $0 + $1.readableBytes }
            upstream.forwarded.add(sent)
            upstream.forwardedBytes.add(sentBytes)
            upstream.observeLatency(since: receivedAt, now: now)
        }
        if sent == count {
            // UDP has no acknowledgement: a send counts as a success when no error came shortly before it.
            if lastErrorAt + .milliseconds(50) < now { upstream.record(success: true, now: now) }
        } else {
            noteFailure(failure, unsent: count - sent, now: now)
        }
        return sent
    }

    /// Closes the socket (the receive thread is ending).
    func close() {
        if descriptor >= 0 { Glibc.close(descriptor) }
        descriptor = -1
        connectedTo = nil
        connectedGeneration = -1
    }

    private func connectIfNeeded() -> Bool {
        let generation = upstream.currentAddressGeneration
        if generation == connectedGeneration, descriptor >= 0 { return true }
        guard let address = upstream.currentAddress else { return false }
        if descriptor >= 0, connectedTo?.protocol != address.protocol { close() }
        if descriptor < 0 {
            descriptor = cferry_udp_socket(CInt(address.protocol.rawValue))
            guard descriptor >= 0 else {
                noteFailure(errno, unsent: 0, now: .now())
                return false
            }
            var size: CInt = 4 << 20
            _ = setsockopt(descriptor, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<CInt>.size))
        }
        let result = address.withSockAddr { Glibc.connect(descriptor, $0, socklen_t($1)) }
        guard result == 0 else {
            noteFailure(errno, unsent: 0, now: .now())
            close()
            return false
        }
        connectedTo = address
        connectedGeneration = generation
        return true
    }

    private func noteFailure(_ code: CInt, unsent: Int, now: NIODeadline) {
        let error = IOError(errnoCode: code, reason: "sendmmsg")
        let reason = SendErrorReason(classifying: error)
        lastErrorAt = now
        upstream.recordError(reason, detail: String(describing: error))
        upstream.record(success: false, now: now)
        if let suppressed = warnings.shouldLog(key: reason.rawValue, now: now) {
            logger.warning(
                "upstream send failed",
                metadata: [
                    "upstream": "\(upstream.url)",
                    "error.reason": "\(reason)",
                    "error.detail": "\(error)",
                    "logs.returned_to_buffer": "\(unsent)",
                    "warnings.suppressed": "\(suppressed)",
                    "trace_id": "\(TraceID.random(using: &random))",
                ])
        }
    }
}
