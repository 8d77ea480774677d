#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <sys/socket.h>
#include "CFerrySystem.h"

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

int cferry_usable_cpus(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0) return 0;
    return CPU_COUNT(&set);
}
