// TCP_INFO's cumulative byte counters, read from the kernel's own struct
// (linux/tcp.h), which Glibc's netinet/tcp.h declares without them.
#include <stddef.h>
#include <string.h>
#include <linux/tcp.h>
#include "CFerrySystem.h"

_Static_assert(sizeof(struct tcp_info) <= sizeof(struct cferry_tcp_info_raw), "cferry_tcp_info_raw too small");

uint64_t cferry_tcp_bytes_acked(const struct cferry_tcp_info_raw *raw) {
    struct tcp_info info;
    memcpy(&info, raw->bytes, sizeof info);
    return info.tcpi_bytes_acked;
}

uint64_t cferry_tcp_bytes_sent(const struct cferry_tcp_info_raw *raw) {
    struct tcp_info info;
    memcpy(&info, raw->bytes, sizeof info);
    return info.tcpi_bytes_sent;
}
