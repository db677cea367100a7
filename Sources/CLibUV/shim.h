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

/// A non-blocking timerfd on CLOCK_BOOTTIME (the clock of MicroCore's Timestamp), armed with absolute times.
#include <sys/timerfd.h>
#include <time.h>
static inline int micro_alarm_fd_create(void) {
    return timerfd_create(CLOCK_BOOTTIME, TFD_NONBLOCK | TFD_CLOEXEC);
}
/// Arms `fd` for the absolute CLOCK_BOOTTIME time `ns` (0 disarms).
static inline int micro_alarm_fd_arm(int fd, long long ns) {
    struct itimerspec it = {0};
    it.it_value.tv_sec = ns / 1000000000LL;
    it.it_value.tv_nsec = ns % 1000000000LL;
    return timerfd_settime(fd, TFD_TIMER_ABSTIME, &it, 0);
}
/// Empties `fd`'s expiration count (it is level-triggered until read).
static inline void micro_alarm_fd_clear(int fd) {
    unsigned long long n;
    ssize_t r = read(fd, &n, sizeof n);
    (void)r;
}
static inline long long micro_boottime_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
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
