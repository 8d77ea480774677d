import CFerrySystem

#if canImport(Glibc)
    import Glibc
#endif

/// Preallocated headers for `recvmmsg` and `sendmmsg`: `capacity` message
/// headers, as many iovecs, and (when asked) an address slot per message.
///
/// One owner each (a receive slab, a sender, a reply queue) fills them again
/// for every call, so a call allocates nothing. Not thread-safe: confined to
/// its owner's thread.
final class MessageHeaders {
    let capacity: Int
    let messages: UnsafeMutablePointer<cferry_mmsghdr>
    let vectors: UnsafeMutablePointer<iovec>
    /// One `sockaddr_storage` per message: where a datagram came from (receive) or goes to (send).
    let addresses: UnsafeMutablePointer<sockaddr_storage>?

    init(capacity: Int, addresses: Bool) {
        self.capacity = capacity
        messages = .allocate(capacity: capacity)
        vectors = .allocate(capacity: capacity)
        messages.initialize(repeating: cferry_mmsghdr(), count: capacity)
        vectors.initialize(repeating: iovec(), count: capacity)
        if addresses {
            let storage = UnsafeMutablePointer<sockaddr_storage>.allocate(capacity: capacity)
            storage.initialize(repeating: sockaddr_storage(), count: capacity)
            self.addresses = storage
        } else {
            self.addresses = nil
        }
    }

    deinit {
        messages.deallocate()
        vectors.deallocate()
        addresses?.deallocate()
    }

    /// Points message `index` at `count` iovecs from iovec `first`, and at its
    /// address slot (`nameLength` bytes of it: the whole slot to receive, the
    /// address's own length to send) when there are address slots.
    @inline(__always)
    func prepare(_ index: Int, vectorsFrom first: Int, count: Int, nameLength: Int = 0) {
        messages[index].msg_hdr = msghdr(
            msg_name: addresses.map { UnsafeMutableRawPointer($0 + index) }, msg_namelen: socklen_t(addresses == nil ? 0 : nameLength),
            msg_iov: vectors + first, msg_iovlen: count, msg_control: nil, msg_controllen: 0, msg_flags: 0)
    }
}
