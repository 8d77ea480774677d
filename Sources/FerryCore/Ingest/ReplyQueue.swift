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
        let messages = UnsafeMutablePointer<cferry_mmsghdr>.allocate(capacity: count)
        let vectors = UnsafeMutablePointer<iovec>.allocate(capacity: count)
        defer {
            messages.deallocate()
            vectors.deallocate()
        }
        let lengths = self.lengths
        addresses.withUnsafeMutableBufferPointer { addresses in
            bytes.withUnsafeMutableReadableBytes { storage in
                var offset = 0
                for index in 0..<count {
                    vectors[index] = iovec(iov_base: storage.baseAddress! + offset, iov_len: lengths[index])
                    offset += lengths[index]
                    let family = CInt(addresses[index].ss_family)
                    let nameLength = family == AF_INET6 ? MemoryLayout<sockaddr_in6>.size : MemoryLayout<sockaddr_in>.size
                    messages[index] = cferry_mmsghdr(
                        msg_hdr: msghdr(
                            msg_name: UnsafeMutableRawPointer(addresses.baseAddress! + index), msg_namelen: socklen_t(nameLength),
                            msg_iov: vectors + index, msg_iovlen: 1, msg_control: nil, msg_controllen: 0, msg_flags: 0),
                        msg_len: 0)
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
        }
        bytes.clear()
        self.lengths.removeAll(keepingCapacity: true)
        self.addresses.removeAll(keepingCapacity: true)
    }
}
