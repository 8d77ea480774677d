import CFerrySystem
import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// One reusable receive buffer with its `recvmmsg` bookkeeping: `count` slots
/// of `slotBytes`, and the message headers and sender addresses that go with them.
///
/// Only the receive thread touches a slab. The slices handed to the pipeline
/// share its buffer; should any still be alive (a batch waiting on a socket)
/// when the slab comes round again, `clear()` gives the slab fresh storage
/// and leaves the old one to those slices, so data is never overwritten.
final class ReceiveSlab {
    private var buffer: ByteBuffer
    private let count: Int
    private let slotBytes: Int
    /// The `recvmmsg` headers, one iovec and one sender address per slot.
    private let headers: MessageHeaders
    private var messages: UnsafeMutablePointer<cferry_mmsghdr> { headers.messages }
    private var vectors: UnsafeMutablePointer<iovec> { headers.vectors }
    private var senders: UnsafeMutablePointer<sockaddr_storage> { headers.addresses! }
    /// The buffer storage the message headers point into.
    private var preparedBase: UnsafeMutableRawPointer?
    /// Datagrams the last `receive` delivered (their headers need resetting).
    private var lastReceived = 0
    /// The last burst's records and frames, kept to reuse the arrays' storage
    /// (the pipeline has normally let go of them when the slab comes round).
    private var records: [ByteBuffer] = []
    private var frames: [ReceivedFrame] = []
    /// The sender of the last frame read, as the kernel wrote it and as an
    /// address: an edge's frames come from one socket, and building a
    /// `SocketAddress` costs two mallocs (its host string and its box), a
    /// quarter of an aggregator's at 100,000 logs/s.
    private var lastSender: (storage: sockaddr_storage, address: SocketAddress)?

    init(count: Int, slotBytes: Int) {
        self.count = count
        self.slotBytes = slotBytes
        self.buffer = ByteBufferAllocator().buffer(capacity: count * slotBytes)
        self.headers = MessageHeaders(capacity: count, addresses: true)
        records.reserveCapacity(count)
    }

    /// One `recvmmsg`: blocks for the first datagram (unless `wait` is false),
    /// then takes what is queued, up to `limit` (at most `count`). Returns the
    /// number read, or -1 with `errno` set.
    func receive(from descriptor: CInt, wait: Bool = true, limit: Int = .max) -> CInt {
        // Let go of the last burst's slices first, so the buffer is usually ours alone again.
        records.removeAll(keepingCapacity: true)
        frames.removeAll(keepingCapacity: true)
        buffer.clear()
        let received = buffer.withUnsafeMutableWritableBytes { storage -> CInt in
            let base = storage.baseAddress!
            if base != preparedBase {
                // New storage (first use, or the old one is still held by slices): point every slot at it.
                for index in 0..<count {
                    vectors[index] = iovec(iov_base: base + index * slotBytes, iov_len: slotBytes)
                    headers.prepare(index, vectorsFrom: index, count: 1, nameLength: MemoryLayout<sockaddr_storage>.size)
                }
                preparedBase = base
            } else {
                // The kernel only wrote to the headers of what it delivered last time.
                for index in 0..<lastReceived {
                    messages[index].msg_hdr.msg_namelen = socklen_t(MemoryLayout<sockaddr_storage>.size)
                    messages[index].msg_hdr.msg_flags = 0
                }
            }
            // MSG_TRUNC: msg_len is a datagram's real length even when it was cut to fit its slot.
            let flags = cferry_msg_waitforone() | CInt(MSG_TRUNC) | (wait ? 0 : CInt(MSG_DONTWAIT))
            return cferry_recvmmsg(descriptor, messages, UInt32(min(count, max(limit, 1))), flags)
        }
        lastReceived = Int(max(received, 0))
        if received > 0 { buffer.moveWriterIndex(to: Int(received) * slotBytes) }
        return received
    }

    /// Sorts the datagrams of the last `receive` into logs, frames and
    /// oversize ones, after `gate` (allowlist, rate limit) refused those it does not let in.
    /// With `keepSources`, each record's source address goes with it (for routes that need it).
    func burst(count received: Int, gate: SourceGate? = nil, keepSources: Bool = false) -> ReceivedBurst {
        guard let gate else { return sort(received, gated: false, keepSources: keepSources) { _, _ in .admitted } }
        return gate.deciding { decide in sort(received, gated: true, keepSources: keepSources, decide: decide) }
    }

    /// The address of a frame's sender: the last one's if the kernel wrote the same bytes.
    private func frameSender(_ storage: UnsafeMutablePointer<sockaddr_storage>) -> SocketAddress? {
        let length = storage.pointee.addressLength
        if let last = lastSender, withUnsafeBytes(of: last.storage, { memcmp($0.baseAddress!, storage, length) == 0 }) {
            return last.address
        }
        guard let address = SocketAddress(storage: storage.pointee) else { return nil }
        lastSender = (storage.pointee, address)
        return address
    }

    private func sort(_ received: Int, gated: Bool, keepSources: Bool, decide: (SourceKey, Bool) -> SourceGate.Verdict) -> ReceivedBurst {
        var burst = ReceivedBurst(receivedAt: .now())
        var recordBytes = 0
        for index in 0..<received where messages[index].msg_hdr.msg_namelen > 0 {
            // No sender address: not a datagram but the end-of-stream a read
            // returns once the socket is shut down for stopping.
            let length = Int(messages[index].msg_len)
            // The frame magic, read once: the gate and the sorting below both need it.
            let looksLikeFrame = length >= 4 && buffer.getInteger(at: index * slotBytes, as: UInt32.self) == FrameCodec.magic
            if gated, let key = SourceKey(storage: senders + index) {
                switch decide(key, looksLikeFrame) {
                case .admitted: break
                case .denied:
                    burst.denied += 1
                    burst.deniedSource = key
                    continue
                case .rateLimited:
                    burst.rateLimited += 1
                    burst.rateLimitedSource = key
                    continue
                }
            }
            let cut = messages[index].msg_hdr.msg_flags & CInt(MSG_TRUNC) != 0
            if cut || length > slotBytes {
                burst.oversize.append(length)
                continue
            }
            let datagram = buffer.getSlice(at: index * slotBytes, length: length)!
            if looksLikeFrame, let sender = frameSender(senders + index) {
                frames.append(ReceivedFrame(datagram: datagram, sender: sender, position: records.count))
            } else {
                records.append(datagram)
                recordBytes += length
                if keepSources { burst.sources.append(SourceKey(storage: senders + index)) }
            }
        }
        burst.records = records
        burst.frames = frames
        burst.recordBytes = recordBytes
        return burst
    }
}
