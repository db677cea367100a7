#ifndef MICRO_CLIBUV_SHIM_H
#define MICRO_CLIBUV_SHIM_H
#include <uv.h>
#include <signal.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <unistd.h>
#include <fcntl.h>
#include <pthread.h>

/// Ignores SIGPIPE process-wide; libuv does not do it on Linux.
static inline void micro_ignore_sigpipe(void) { signal(SIGPIPE, SIG_IGN); }

/// The process's soft fd limit (RLIMIT_NOFILE).
#include <sys/resource.h>
static inline long micro_fd_soft_limit(void) {
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) != 0) return -1;
    return (long)r.rlim_cur;
}
static inline int micro_set_fd_soft_limit(long n) {
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) != 0) return -1;
    r.rlim_cur = (rlim_t)n;
    return setrlimit(RLIMIT_NOFILE, &r);
}

/// Gives the heap's free pages back to the system (glibc; elsewhere a no-op).
#if defined(__GLIBC__)
#include <malloc.h>
static inline int micro_malloc_trim(void) { return malloc_trim(0); }
/// The usable size of a heap block (glibc; elsewhere 0). For tests that bound per-connection memory.
static inline size_t micro_malloc_usable_size(void *p) { return malloc_usable_size(p); }
#else
static inline int micro_malloc_trim(void) { return 0; }
static inline size_t micro_malloc_usable_size(void *p) { (void)p; return 0; }
#endif
/// Pins the calling thread to one CPU (benchmarks); 0 on success.
#include <sys/syscall.h>
static inline int micro_pin_current_thread(int cpu) {
    unsigned long mask[16] = {0};
    if (cpu < 0 || cpu >= 1024) return -1;
    mask[cpu / 64] |= 1UL << (cpu % 64);
    return (int)syscall(SYS_sched_setaffinity, 0, sizeof(mask), mask);
}

#endif
