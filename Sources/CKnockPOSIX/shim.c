// A C shim for the glibc functions KnockPOSIX needs that Swift's Glibc module does not show:
// posix_spawn_file_actions_addclosefrom_np and ppoll (declared only under _GNU_SOURCE) and the
// allocator settings of <malloc.h>. No other code lives here.
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <time.h>
#include "CKnockPOSIX.h"

#if defined(__GLIBC__) || defined(__linux__)
#include <spawn.h>
#endif
#if defined(__GLIBC__)
#include <malloc.h>
#endif

int CKnockPOSIX_spawn_file_actions_addclosefrom(void *actions, int from) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    return posix_spawn_file_actions_addclosefrom_np((posix_spawn_file_actions_t *)actions, from);
#else
    (void)actions;
    (void)from;
    return ENOSYS;
#endif
}

int CKnockPOSIX_tune_malloc(int threshold) {
#if defined(__GLIBC__)
    int fixed = mallopt(M_MMAP_THRESHOLD, threshold);
    int arenas = mallopt(M_ARENA_MAX, 1);
    return fixed == 1 && arenas == 1;
#else
    (void)threshold;
    return 0;
#endif
}

long CKnockPOSIX_mapped_blocks(void) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    return (long)mallinfo2().hblks;
#else
    return -1;
#endif
}

int CKnockPOSIX_ppoll(struct pollfd *fds, unsigned long count, long long timeoutNanoseconds) {
#if defined(__linux__)
    if (timeoutNanoseconds < 0) return ppoll(fds, (nfds_t)count, NULL, NULL);
    struct timespec timeout = { (time_t)(timeoutNanoseconds / 1000000000LL), (long)(timeoutNanoseconds % 1000000000LL) };
    return ppoll(fds, (nfds_t)count, &timeout, NULL);
#else
    return poll(fds, (nfds_t)count, timeoutNanoseconds < 0 ? -1 : (int)((timeoutNanoseconds + 999999) / 1000000));
#endif
}
