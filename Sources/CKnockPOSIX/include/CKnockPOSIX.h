#ifndef CKNOCKPOSIX_H
#define CKNOCKPOSIX_H

/// Adds "close every descriptor from `from` on" to a posix_spawn file-actions object (`actions` is a
/// `posix_spawn_file_actions_t *`). Returns 0 or an errno value; ENOSYS where the C library lacks it.
/// The corresponding C function is `posix_spawn_file_actions_addclosefrom_np` (glibc 2.34 and later),
/// which Swift's Glibc module hides behind _GNU_SOURCE.
int CKnockPOSIX_spawn_file_actions_addclosefrom(void *actions, int from);

/// Fixes glibc's mmap threshold at `threshold` bytes (no dynamic raising) and limits it to one
/// allocation arena. Returns 1 when both took effect, 0 otherwise (0 too where the C library is not
/// glibc). The corresponding C function is `mallopt` (`M_MMAP_THRESHOLD`, `M_ARENA_MAX`).
int CKnockPOSIX_tune_malloc(int threshold);

/// How many blocks glibc holds in mappings of their own (`mallinfo2().hblks`); -1 where unknown.
long CKnockPOSIX_mapped_blocks(void);

struct pollfd;

/// `poll` with a timeout in nanoseconds (negative: forever), for waits shorter than a millisecond.
/// Returns as `poll` does. The corresponding C function is `ppoll` (no signal mask), which Swift's
/// Glibc module hides behind _GNU_SOURCE.
int CKnockPOSIX_ppoll(struct pollfd *fds, unsigned long count, long long timeoutNanoseconds);

#endif
