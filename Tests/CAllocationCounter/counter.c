// Test-only malloc interposition: the test executable's malloc, calloc, realloc and the aligned
// allocators forward to glibc's own (__libc_*), counting calls on threads that asked for it.
// free is not interposed: every block still comes from glibc's allocator.
#define _GNU_SOURCE
#include <stddef.h>
#include <stdlib.h>  /* features.h: __GLIBC__ */
#include "CAllocationCounter.h"

#if defined(__GLIBC__)
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *pointer, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);

static __thread int counting __attribute__((tls_model("initial-exec")));
static __thread long counted __attribute__((tls_model("initial-exec")));

void CAllocationCounter_start(void) { counted = 0; counting = 1; }
long CAllocationCounter_stop(void) { counting = 0; return counted; }

void *malloc(size_t size) {
    if (counting) counted++;
    return __libc_malloc(size);
}

void *calloc(size_t count, size_t size) {
    if (counting) counted++;
    return __libc_calloc(count, size);
}

void *realloc(void *pointer, size_t size) {
    if (counting) counted++;
    return __libc_realloc(pointer, size);
}

void *aligned_alloc(size_t alignment, size_t size) {
    if (counting) counted++;
    return __libc_memalign(alignment, size);
}

void *memalign(size_t alignment, size_t size) {
    if (counting) counted++;
    return __libc_memalign(alignment, size);
}

int posix_memalign(void **result, size_t alignment, size_t size) {
    if (counting) counted++;
    if (alignment % sizeof(void *) != 0 || (alignment & (alignment - 1)) != 0) return 22; /* EINVAL */
    void *block = __libc_memalign(alignment, size);
    if (block == NULL) return 12; /* ENOMEM */
    *result = block;
    return 0;
}
#else
void CAllocationCounter_start(void) {}
long CAllocationCounter_stop(void) { return -1; }
#endif
