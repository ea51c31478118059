// A C shim for the glibc functions KnockPOSIX needs that Swift's Glibc module does not show:
// posix_spawn_file_actions_addclosefrom_np (declared only under _GNU_SOURCE) and the allocator
// settings of <malloc.h>. No other code lives here.
#define _GNU_SOURCE
#include <errno.h>
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
