import CFerrySystem
import Logging
import NIOCore
import NIOPosix

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
///
/// Runs of consecutive equal-length datagrams go out as one UDP generic
/// segmentation offload message (`UDP_SEGMENT`, Linux 4.18+) within the same
/// `sendmmsg`: the kernel builds and routes one buffer and splits it into the
/// same datagrams late (on loopback, at the receiving socket; on a NIC, in the
/// driver or the card). The receiver sees exactly the datagrams it would have
/// seen otherwise, in the same order; Ferry's cost per datagram drops by about a
/// quarter when lengths repeat. It is used only where the path MTU fits a whole
/// segment (never to fragment), and switched off for good on this socket if the
/// kernel refuses it (`forward.udp-segmentation` turns it off everywhere).
final class UDPSender {
    /// Datagrams one segmented message may carry (the kernel's UDP_MAX_SEGMENTS is 64 on older kernels).
    static let maximumSegments = 64
    /// Payload one segmented message may carry: the largest IPv4 UDP payload.
    static let maximumSegmentedBytes = 65_507

    let upstream: Upstream
    private let logger: Logger
    private var descriptor: CInt = -1
    private var connectedTo: SocketAddress?
    private var connectedGeneration = -1
    private var lastErrorAt = NIODeadline.uptimeNanoseconds(0)
    private var warnings = WarningLimiter(interval: .seconds(10))
    private var random = FastRandom()
    private let capacity: Int
    /// The `sendmmsg` headers (connected socket: no addresses).
    private let headers: MessageHeaders
    private var messages: UnsafeMutablePointer<cferry_mmsghdr> { headers.messages }
    private var vectors: UnsafeMutablePointer<iovec> { headers.vectors }
    /// Datagrams carried by each prepared message.
    private let datagramCounts: UnsafeMutablePointer<Int>
    /// One UDP_SEGMENT control block per message.
    private let controls: UnsafeMutableRawPointer
    private let controlBytes = cferry_udp_segment_control_bytes()
    /// The longest datagram that may go in a segmented message on this
    /// connection (path MTU less headers); nil while segmentation is off.
    private var segmentLimit: Int?
    /// The kernel refused a segmented send on this socket: never again.
    private var segmentationRefused = false

    /// - Parameter batch: the most records one ``send(_:bytes:receivedAt:)`` takes.
    init(upstream: Upstream, batch: Int, logger: Logger) {
        self.upstream = upstream
        self.logger = logger
        self.capacity = batch
        self.headers = MessageHeaders(capacity: batch, addresses: false)
        self.datagramCounts = .allocate(capacity: batch)
        self.controls = .allocate(byteCount: batch * controlBytes, alignment: MemoryLayout<Int>.alignment)
        datagramCounts.initialize(repeating: 0, count: batch)
    }

    deinit {
        if descriptor >= 0 { Glibc.close(descriptor) }
        datagramCounts.deallocate()
        controls.deallocate()
    }

    /// Whether runs of equal-length datagrams currently go out segmented.
    var segmenting: Bool { segmentLimit != nil }

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
                let prepared = prepareMessages(records, from: sent)
                var done = 0
                var doneDatagrams = 0
                while done < prepared {
                    let result = cferry_sendmmsg(descriptor, messages + done, UInt32(prepared - done), 0)
                    if result > 0 {
                        for index in done..<(done + Int(result)) { doneDatagrams += datagramCounts[index] }
                        done += Int(result)
                        continue
                    }
                    let code = errno
                    if code == EINTR { continue }
                    sent += doneDatagrams
                    if datagramCounts[done] > 1, refuseSegmentation(code, length: records[sent].readableBytes) {
                        continue chunks  // the same datagrams again, one message each
                    }
                    failure = code
                    break chunks
                }
                sent += doneDatagrams
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

    /// Points the message headers at up to `capacity` records from `start`:
    /// a run of equal-length ones (and one shorter one ending it, which
    /// segmentation allows) becomes one segmented message, any other record a
    /// message of its own. Returns the number of messages.
    private func prepareMessages(_ records: [ByteBuffer], from start: Int) -> Int {
        let end = min(records.count, start + capacity)
        var index = start
        var message = 0
        while index < end {
            let length = records[index].readableBytes
            var run = 1
            if let limit = segmentLimit, length > 0, length <= limit {
                var total = length
                while index + run < end, run < Self.maximumSegments {
                    let next = records[index + run].readableBytes
                    guard next > 0, next <= length, total + next <= Self.maximumSegmentedBytes else { break }
                    run += 1
                    total += next
                    if next < length { break }
                }
            }
            let vector = vectors + (index - start)
            for offset in 0..<run {
                // The pointers stay valid while `records` is alive: the buffers are not mutated.
                records[index + offset].withUnsafeReadableBytes { bytes in
                    vector[offset] = iovec(iov_base: UnsafeMutableRawPointer(mutating: bytes.baseAddress), iov_len: bytes.count)
                }
            }
            headers.prepare(message, vectorsFrom: index - start, count: run)
            if run > 1 {
                cferry_set_udp_segment(&messages[message].msg_hdr, controls + message * controlBytes, UInt16(length))
            }
            datagramCounts[message] = run
            message += 1
            index += run
        }
        return message
    }

    /// A segmented message failed with `code`. Returns true when that was the
    /// kernel refusing segmentation (the caller sends the datagrams again one
    /// by one), false for an ordinary send failure.
    private func refuseSegmentation(_ code: CInt, length: Int) -> Bool {
        switch code {
        case EMSGSIZE:
            // The path MTU may have shrunk: re-read it; if the segment still fits, segmentation itself is the problem.
            updateSegmentLimit()
            if let limit = segmentLimit, length <= limit { segmentationRefused = true }
        case EINVAL, EIO, EOPNOTSUPP, ENOPROTOOPT:
            segmentationRefused = true
        default:
            return false
        }
        if segmentationRefused {
            segmentLimit = nil
            logger.notice(
                "UDP segmentation refused by the kernel; sending datagrams one by one",
                metadata: ["upstream": "\(upstream.url)", "error": "\(IOError(errnoCode: code, reason: "sendmmsg"))"])
        }
        return true
    }

    /// Segmentation is used only for datagrams that fit the path MTU whole.
    private func updateSegmentLimit() {
        guard upstream.udpSegmentation, !segmentationRefused, descriptor >= 0, let family = connectedTo?.protocol,
            cferry_udp_segmentation_supported(descriptor) != 0
        else {
            segmentLimit = nil
            return
        }
        let mtu = Int(cferry_path_mtu(descriptor, CInt(family.rawValue)))
        let headers = (family == .inet6 ? 40 : 20) + 8
        segmentLimit = mtu > headers ? min(mtu - headers, Self.maximumSegmentedBytes) : nil
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
        segmentLimit = nil
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
        updateSegmentLimit()
        return true
    }

    private func noteFailure(_ code: CInt, unsent: Int, now: NIODeadline) {
        let error = IOError(errnoCode: code, reason: "sendmmsg")
        let reason = SendErrorReason(classifying: error)
        lastErrorAt = now
        upstream.recordError(reason, detail: SendErrorReason.detail(of: error))
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
