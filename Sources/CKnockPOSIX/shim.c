// A C shim for the one glibc function KnockPOSIX needs that Swift's Glibc module does not show:
// it is declared only under _GNU_SOURCE. No other code lives here.
#define _GNU_SOURCE
#include <errno.h>
#include "CKnockPOSIX.h"

#if defined(__GLIBC__) || defined(__linux__)
#include <spawn.h>
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
