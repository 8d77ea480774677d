#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <string.h>
#include <errno.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <linux/filter.h>
#include "CFerrySystem.h"

#ifndef SO_ATTACH_REUSEPORT_CBPF
#define SO_ATTACH_REUSEPORT_CBPF 51
#endif

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif

_Static_assert(sizeof(struct cferry_mmsghdr) == sizeof(struct mmsghdr), "mmsghdr layout");
_Static_assert(offsetof(struct cferry_mmsghdr, msg_len) == offsetof(struct mmsghdr, msg_len), "mmsghdr layout");

int cferry_recvmmsg(int fd, struct cferry_mmsghdr *messages, unsigned int count, int flags) {
    return recvmmsg(fd, (struct mmsghdr *)messages, count, flags, NULL);
}

int cferry_sendmmsg(int fd, struct cferry_mmsghdr *messages, unsigned int count, int flags) {
    return sendmmsg(fd, (struct mmsghdr *)messages, count, flags);
}

int cferry_msg_waitforone(void) {
    return MSG_WAITFORONE;
}

void cferry_name_this_thread(const char *name) {
    char truncated[16];
    int i = 0;
    for (; i < 15 && name[i] != 0; i++) truncated[i] = name[i];
    truncated[i] = 0;
    pthread_setname_np(pthread_self(), truncated);
}

int cferry_udp_socket(int family) {
    return socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
}

int cferry_udp_segmentation_supported(int fd) {
    int off = 0;
    return setsockopt(fd, SOL_UDP, UDP_SEGMENT, &off, sizeof(off)) == 0;
}

size_t cferry_udp_segment_control_bytes(void) {
    return CMSG_SPACE(sizeof(uint16_t));
}

void cferry_set_udp_segment(struct msghdr *message, void *control, uint16_t segment) {
    memset(control, 0, CMSG_SPACE(sizeof(uint16_t)));
    message->msg_control = control;
    message->msg_controllen = CMSG_SPACE(sizeof(uint16_t));
    struct cmsghdr *header = CMSG_FIRSTHDR(message);
    header->cmsg_level = SOL_UDP;
    header->cmsg_type = UDP_SEGMENT;
    header->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    memcpy(CMSG_DATA(header), &segment, sizeof(segment));
}

int cferry_path_mtu(int fd, int family) {
    int mtu = 0;
    socklen_t length = sizeof(mtu);
    int result = family == AF_INET6 ? getsockopt(fd, IPPROTO_IPV6, IPV6_MTU, &mtu, &length)
                                    : getsockopt(fd, IPPROTO_IP, IP_MTU, &mtu, &length);
    return result == 0 ? mtu : -1;
}

int cferry_usable_cpus(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0) return 0;
    return CPU_COUNT(&set);
}

static uint32_t crc32c_table[256];

static void crc32c_init_table(void) {
    for (uint32_t index = 0; index < 256; index++) {
        uint32_t crc = index;
        for (int bit = 0; bit < 8; bit++) crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
        crc32c_table[index] = crc;
    }
}

static uint32_t crc32c_software(uint32_t crc, const uint8_t *bytes, size_t length) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, crc32c_init_table);
    for (size_t i = 0; i < length; i++) crc = crc32c_table[(crc ^ bytes[i]) & 0xFF] ^ (crc >> 8);
    return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static uint32_t crc32c_sse42(uint32_t crc, const uint8_t *bytes, size_t length) {
    uint64_t wide = crc;
    while (length >= 8) {
        uint64_t word;
        memcpy(&word, bytes, 8);
        wide = __builtin_ia32_crc32di(wide, word);
        bytes += 8;
        length -= 8;
    }
    crc = (uint32_t)wide;
    while (length > 0) {
        crc = __builtin_ia32_crc32qi(crc, *bytes++);
        length--;
    }
    return crc;
}
#endif

uint32_t cferry_crc32c(uint32_t crc, const void *bytes, size_t length) {
#if defined(__x86_64__)
    static int hardware = -1;
    if (hardware < 0) hardware = __builtin_cpu_supports("sse4.2") ? 1 : 0;
    if (hardware) return crc32c_sse42(crc, (const uint8_t *)bytes, length);
#endif
    return crc32c_software(crc, (const uint8_t *)bytes, length);
}

/// Drops this process's mapping of `[start, end)` if it qualifies (see the header),
/// adding its size to `advised` or its errno to `failure`.
static void cferry_release_mapping(
    unsigned long start, unsigned long end, const char *permissions, unsigned long inode, long anonymous, long *advised, int *failure) {
    if (start >= end || inode == 0 || permissions[1] == 'w' || anonymous != 0) return;
    if (madvise((void *)start, end - start, MADV_DONTNEED) == 0) {
        *advised += (long)(end - start);
    } else {
        *failure = errno;
    }
}

long cferry_page_out_file_mappings(void) {
    FILE *smaps = fopen("/proc/self/smaps", "re");
    if (smaps == NULL) return -errno;
    char line[4352];
    long advised = 0;
    int failure = 0;
    unsigned long start = 0, end = 0, inode = 0;
    char permissions[5] = "----";
    long anonymous = -1;
    // A mapping's fields follow its header line: each header settles the mapping before it, the end the last one.
    while (fgets(line, sizeof line, smaps) != NULL) {
        unsigned long nextStart, nextEnd, offset, nextInode;
        char nextPermissions[5], device[32];
        if (sscanf(line, "%lx-%lx %4s %lx %31s %lu", &nextStart, &nextEnd, nextPermissions, &offset, device, &nextInode) == 6) {
            cferry_release_mapping(start, end, permissions, inode, anonymous, &advised, &failure);
            start = nextStart, end = nextEnd, inode = nextInode, anonymous = -1;
            memcpy(permissions, nextPermissions, sizeof permissions);
            continue;
        }
        long kib;
        if (sscanf(line, "Anonymous: %ld kB", &kib) == 1) anonymous = kib;
    }
    cferry_release_mapping(start, end, permissions, inode, anonymous, &advised, &failure);
    fclose(smaps);
    return advised == 0 && failure != 0 ? -failure : advised;
}

long cferry_resident_file_bytes(void) {
    FILE *status = fopen("/proc/self/status", "re");
    if (status == NULL) return -1;
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof line, status) != NULL) {
        if (sscanf(line, "RssFile: %ld kB", &kib) == 1) break;
    }
    fclose(status);
    return kib < 0 ? -1 : kib * 1024;
}

int cferry_steer_frames_by_sender(int fd, uint32_t magic, uint32_t sockets) {
    // For a UDP reuseport group the program sees the datagram's payload at offset 0.
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_LEN, 0),             // 0: A = payload length
        BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 16, 0, 8),      // 1: shorter than magic + header + sender id: fall back (10)
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0),             // 2: A = first word
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, magic, 0, 6),   // 3: not a frame: fall back (10)
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 8),             // 4: sender id, high word
        BPF_STMT(BPF_MISC | BPF_TAX, 0),                   // 5: X = A
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 12),            // 6: sender id, low word
        BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),            // 7: A ^= X
        BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, sockets),       // 8: A %= sockets
        BPF_STMT(BPF_RET | BPF_A, 0),                      // 9: that socket
        BPF_STMT(BPF_RET | BPF_K, 0xffffffff),             // 10: out of range: the kernel's hash
    };
    struct sock_fprog program = { .len = sizeof(code) / sizeof(code[0]), .filter = code };
    return setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &program, sizeof(program));
}
