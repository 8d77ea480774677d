import CFerrySystem
import Logging
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// A connected socket to one `udp://` upstream, sending with `sendmmsg`: a
/// receive thread's own (the direct route), and each event loop's lane's.
///
/// Confined to its thread. It connects (again) whenever the
/// upstream's current address changes, sends a burst with `sendmmsg`, and
/// reports to the shared ``Upstream`` what the loop's ``UDPUpstreamLane``
/// reports for its own sends: forwarded logs, latency, breaker outcomes and
/// errors. A refused send (ICMP port unreachable, reported by the kernel on a
/// later send) fails the rest of the burst, which goes back to the loop.
final class UDPSender {
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

    /// Sends `records` and returns how many went out, and their bytes; the
    /// rest were refused and must go back to the buffer.
    ///
    /// - Parameter recordSuccess: false for a half-open probe, whose success
    ///   is only known once no error came back for it (``settleProbe()``).
    func send(_ records: [ByteBuffer], bytes: Int, receivedAt: NIODeadline, recordSuccess: Bool = true) -> (logs: Int, bytes: Int) {
        let count = records.count
        guard count > 0, connectIfNeeded() else { return (0, 0) }
        var sent = 0
        var failure: CInt = 0
        withExtendedLifetime(records) {
            // In chunks of the preallocated headers (a receive burst is one chunk).
            chunks: while sent < count {
                let chunk = min(capacity, count - sent)
                for index in 0..<chunk {
                    // The pointers stay valid while `records` is alive: the buffers are not mutated.
                    records[sent + index].withUnsafeReadableBytes { bytes in
                        vectors[index] = iovec(iov_base: UnsafeMutableRawPointer(mutating: bytes.baseAddress), iov_len: bytes.count)
                    }
                    messages[index].msg_hdr = msghdr(
                        msg_name: nil, msg_namelen: 0, msg_iov: vectors + index, msg_iovlen: 1, msg_control: nil, msg_controllen: 0,
                        msg_flags: 0)
                }
                var done = 0
                while done < chunk {
                    let result = cferry_sendmmsg(descriptor, messages + done, UInt32(chunk - done), 0)
                    if result > 0 {
                        done += Int(result)
                    } else if errno != EINTR {
                        failure = errno
                        sent += done
                        break chunks
                    }
                }
                sent += done
            }
        }
        let now = NIODeadline.now()
        let sentBytes = sent == count ? bytes : records[..<sent].reduce(0) { $0 + $1.readableBytes }
        if sent > 0 {
            upstream.forwarded.add(sent)
            upstream.forwardedBytes.add(sentBytes)
            upstream.observeLatency(since: receivedAt, now: now)
        }
        if sent == count {
            // UDP has no acknowledgement: a send counts as a success when no error came shortly before it.
            if recordSuccess, lastErrorAt + .milliseconds(50) < now { upstream.record(success: true, now: now) }
        } else {
            noteFailure(failure, unsent: count - sent, now: now)
        }
        return (sent, sentBytes)
    }

    /// Decides a half-open probe sent a moment ago: a failure if the kernel
    /// holds an error for the socket (ICMP port unreachable), else a success.
    func settleProbe() {
        var code: CInt = 0
        var length = socklen_t(MemoryLayout<CInt>.size)
        if descriptor >= 0, getsockopt(descriptor, SOL_SOCKET, SO_ERROR, &code, &length) == 0, code != 0 {
            noteFailure(code, unsent: 0, now: .now())
        } else {
            upstream.record(success: descriptor >= 0)
        }
    }

    /// Closes the socket (the receive thread or lane is ending).
    func close() {
        if descriptor >= 0 { Glibc.close(descriptor) }
        descriptor = -1
        connectedTo = nil
        connectedGeneration = -1
    }

    /// Connects (again) if the upstream's address changed since; a UDP connect
    /// sends nothing. False if it has no address yet or the connect failed
    /// (counted and logged).
    func connectIfNeeded() -> Bool {
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

extension SendErrorReason {
    init(classifying error: any Error) {
        guard let ioError = error as? IOError else {
            self = .other
            return
        }
        switch ioError.errnoCode {
        case ECONNREFUSED: self = .refused
        case EHOSTUNREACH, ENETUNREACH: self = .unreachable
        case ENOBUFS: self = .noBufferSpace
        case EAGAIN: self = .wouldBlock
        default: self = .other
        }
    }
}
