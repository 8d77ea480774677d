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

/// Names the calling thread (at most 15 characters show), so `top -H` and perf tell receive threads apart.
void cferry_name_this_thread(const char *name);

/// CRC-32C (Castagnoli) of `length` bytes, continuing from `crc` (start with
/// 0xFFFFFFFF, finish by inverting). Uses the SSE4.2 crc32 instruction where
/// the CPU has it, else a table: the same result either way.
uint32_t cferry_crc32c(uint32_t crc, const void *bytes, size_t length);

/// CPUs in this process's affinity mask (taskset, cpusets), or 0 if unknown.
int cferry_usable_cpus(void);

#endif
