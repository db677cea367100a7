// A malloc counter to preload (LD_PRELOAD) under `micro bench`: counts allocations per thread, so that the
// benchmark can report allocations per call on the client's and the server's loop threads separately.
// micro_malloc_count() returns the calling thread's count; `micro bench` calls it on each loop thread.
#define _GNU_SOURCE
#include <stddef.h>
#include <stdlib.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static __thread unsigned long long count;

unsigned long long micro_malloc_count(void) { return count; }

void *malloc(size_t n) { count++; return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { count++; return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { count++; return __libc_realloc(p, n); }
void *aligned_alloc(size_t a, size_t n) { count++; return __libc_memalign(a, n); }
void *memalign(size_t a, size_t n) { count++; return __libc_memalign(a, n); }
int posix_memalign(void **out, size_t a, size_t n) {
    count++;
    void *p = __libc_memalign(a, n);
    if (!p) return 12;
    *out = p;
    return 0;
}
