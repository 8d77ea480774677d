import CFerrySystem
import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// Acknowledgements a loop owes `ferry://` senders for one burst, sent
/// together from its receive socket with one `sendmmsg` when the burst ends.
///
/// Confined to its loop. Best effort, like every acknowledgement: one that is
/// lost makes its sender retransmit, and the retransmission is deduplicated.
struct ReplyQueue {
    private var bytes = ByteBufferAllocator().buffer(capacity: 64 * FrameCodec.ackBytes)
    private var lengths: [Int] = []
    private var addresses: [sockaddr_storage] = []
    /// The `sendmmsg` headers, kept between bursts (grown when a burst owes more replies).
    private var headers: MessageHeaders?

    /// Queues one reply; `encode` writes it at the end of the queue's buffer.
    mutating func append(to address: SocketAddress, _ encode: (inout ByteBuffer) -> Void) {
        let before = bytes.writerIndex
        encode(&bytes)
        lengths.append(bytes.writerIndex - before)
        var storage = sockaddr_storage()
        address.withSockAddr { pointer, length in
            withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: UnsafeRawBufferPointer(start: pointer, count: length)) }
        }
        addresses.append(storage)
    }

    /// Sends what is queued from `descriptor` and empties the queue.
    mutating func flush(from descriptor: CInt) {
        guard !lengths.isEmpty else { return }
        let count = lengths.count
        if (headers?.capacity ?? 0) < count { headers = MessageHeaders(capacity: max(count, 64), addresses: true) }
        let headers = self.headers!
        let messages = headers.messages
        let vectors = headers.vectors
        let lengths = self.lengths
        bytes.withUnsafeMutableReadableBytes { storage in
            var offset = 0
            for index in 0..<count {
                vectors[index] = iovec(iov_base: storage.baseAddress! + offset, iov_len: lengths[index])
                offset += lengths[index]
                headers.addresses![index] = addresses[index]
                headers.prepare(index, vectorsFrom: index, count: 1, nameLength: addresses[index].addressLength)
            }
            var sent = 0
            while sent < count {
                let result = cferry_sendmmsg(descriptor, messages + sent, UInt32(count - sent), CInt(MSG_DONTWAIT))
                if result > 0 {
                    sent += Int(result)
                } else if errno == EINTR {
                    continue
                } else {
                    sent += 1  // skip the one that failed (its sender retransmits)
                }
            }
        }
        bytes.clear()
        self.lengths.removeAll(keepingCapacity: true)
        self.addresses.removeAll(keepingCapacity: true)
    }
}
