// Linux calls Ferry's data path needs that Swift's Glibc module does not
// declare (they need _GNU_SOURCE or are macros): batched datagram calls,
// thread names, and the CPUs the process may run on. This target declares its
// own mmsghdr, laid out like the kernel's, and forwards to the real calls from
// a C file built with _GNU_SOURCE.
#ifndef CFERRY_SOCKET_H
#define CFERRY_SOCKET_H

#include <sys/socket.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/// One message of a batched receive or send: `struct mmsghdr`.
struct cferry_mmsghdr {
    struct msghdr msg_hdr;
    unsigned int msg_len;
};

/// recvmmsg(2) with no timeout.
int cferry_recvmmsg(int fd, struct cferry_mmsghdr *messages, unsigned int count, int flags);

/// sendmmsg(2).
int cferry_sendmmsg(int fd, struct cferry_mmsghdr *messages, unsigned int count, int flags);

/// MSG_WAITFORONE: block for the first datagram only, then take what is queued.
int cferry_msg_waitforone(void);

/// A new UDP socket of `family` (AF_INET or AF_INET6), closed on exec; -1 and errno on failure.
int cferry_udp_socket(int family);

/// Attaches to the SO_REUSEPORT group of `fd` a classic BPF program that hands
/// every datagram starting with `magic` to socket (sender id's two halves
/// XORed) mod `sockets`, reading the 64-bit sender id at payload offset 8;
/// any other datagram is spread by the kernel's own hash. 0, or -1 and errno.
int cferry_steer_frames_by_sender(int fd, uint32_t magic, uint32_t sockets);

/// Names the calling thread (at most 15 characters show), so `top -H` and perf tell receive threads apart.
void cferry_name_this_thread(const char *name);

/// CRC-32C (Castagnoli) of `length` bytes, continuing from `crc` (start with
/// 0xFFFFFFFF, finish by inverting). Uses the SSE4.2 crc32 instruction where
/// the CPU has it, else a table: the same result either way.
uint32_t cferry_crc32c(uint32_t crc, const void *bytes, size_t length);

/// Whether the kernel takes UDP_SEGMENT (UDP generic segmentation offload,
/// Linux 4.18+) on this UDP socket: one send of a run of equal-length
/// datagrams that the stack splits late, instead of one pass per datagram.
int cferry_udp_segmentation_supported(int fd);

/// Bytes of control data one UDP_SEGMENT message needs (CMSG_SPACE of a uint16_t).
size_t cferry_udp_segment_control_bytes(void);

/// Points `message` at `control` (cferry_udp_segment_control_bytes() long) holding a
/// UDP_SEGMENT of `segment` bytes: the kernel sends the message's payload as
/// datagrams of that length (the last may be shorter).
void cferry_set_udp_segment(struct msghdr *message, void *control, uint16_t segment);

/// The path MTU of a connected UDP socket of `family` (IP_MTU / IPV6_MTU), or -1.
int cferry_path_mtu(int fd, int family);

/// Drops this process's page-table entries for the clean file pages it maps
/// read-only (its executable and libraries): `madvise(MADV_DONTNEED)` on every
/// file mapping that is not writable and holds no anonymous page (a RELRO
/// segment, written by the loader and then made read-only, holds some and is
/// kept, as its contents are not the file's). The pages stay in the page
/// cache, shared with any other process, and come back as minor faults on
/// their next use. Returns the bytes of the mappings dropped, or -errno if none
/// could be.
long cferry_page_out_file_mappings(void);

/// `RssFile` of /proc/self/status in bytes, or -1.
long cferry_resident_file_bytes(void);

/// CPUs in this process's affinity mask (taskset, cpusets), or 0 if unknown.
int cferry_usable_cpus(void);

/// The kernel's `struct tcp_info` as bytes (getsockopt TCP_INFO fills as much as it has).
struct cferry_tcp_info_raw {
    uint8_t bytes[512];
};

/// Bytes of this connection the peer's TCP has acknowledged (tcpi_bytes_acked, Linux 4.1+).
uint64_t cferry_tcp_bytes_acked(const struct cferry_tcp_info_raw *raw);

/// Bytes sent on this connection, retransmissions included (tcpi_bytes_sent, Linux 4.19+).
uint64_t cferry_tcp_bytes_sent(const struct cferry_tcp_info_raw *raw);

#endif
