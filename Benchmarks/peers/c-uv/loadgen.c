/*
 * loadgen: the framed-echo load generator of swift-micro's transport benchmarks.
 * One thread, epoll (level-triggered), plain TCP or TLS through OpenSSL.
 *
 * Wire: a frame is a 4-byte big-endian length N followed by N payload bytes; the server
 * sends every frame back unchanged and in order.
 *
 * Load mode: N connections, each keeping K frames in flight (closed loop: an echoed frame
 * is replaced by a new one at once). A payload is a window of a random byte table that
 * starts at an offset derived from (connection, frame number), so consecutive frames
 * differ and a lost, duplicated or reordered frame shows up as a mismatch. Every echoed
 * byte (length included) is compared. Plain sends: frames up to 4 KiB are copied into one
 * staging buffer and sent with one write(), bigger ones with writev straight from the
 * table; TLS copies the frames waiting on a connection into one buffer and sends them with
 * one SSL_write. Round trips (queued -> echo fully read) go into a log-linear histogram of
 * nanoseconds, 128 sub-buckets per power of two (bucket width <= 1/128 of the value,
 * reported at the bucket's middle). After --warmup s the window of --duration s is
 * measured: frames, latency, the server's utime+stime (/proc/PID/stat) and our own
 * CPU (getrusage). One progress line per second on stderr, one JSON line on stdout.
 *
 * Idle mode (--idle N): reads the server's VmRSS, opens N connections at most
 * IDLE_WINDOW at a time (TLS handshake finished, one 64-byte echo done), waits 1 s,
 * reads VmRSS again, prints one JSON line, holds --hold s, closes everything.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define MAX_PAYLOAD (16u << 20)
#define PAT_SPAN 4096u            /* distinct payload start offsets in the table */
#define RX_CAP (256u << 10)       /* shared receive buffer */
#define IOV_FRAMES 256            /* frames per writev */
#define STAGE_FRAME_MAX 4096u     /* frames up to this size are staged and sent with write() */
#define STAGE_CAP (256u << 10)
#define TLS_BATCH_BYTES (1u << 20) /* at most this much plaintext per SSL_write batch */
#define CONNECT_WINDOW 256        /* load mode: connects + handshakes in progress */
#define IDLE_WINDOW 128           /* idle mode: connections not yet echoed */
#define IDLE_PAYLOAD 64
#define SETUP_TIMEOUT_S 60
#define HB_SUB 128                /* histogram sub-buckets per power of two */
#define HB_COUNT (HB_SUB + (64 - 7) * HB_SUB)

static const char usage_text[] =
    "usage: loadgen --port P [--host 127.0.0.1] --connections N --inflight K --size B --duration SEC\n"
    "               [--warmup SEC] [--tls] [--server-pid PID] [--cpu N]\n"
    "       loadgen --port P [--host 127.0.0.1] --idle N --server-pid PID [--tls] [--hold SEC] [--cpu N]\n"
    "  Framed-echo load generator (4-byte big-endian length + payload), one thread, epoll.\n"
    "  load mode: N connections with K frames of B payload bytes in flight each; every echoed\n"
    "    byte is checked; the first --warmup s (default 1) are not measured, then --duration s\n"
    "    are. Progress on stderr once a second; one JSON line on stdout:\n"
    "    {\"frames\",\"seconds\",\"frames_per_s\",\"mb_per_s\",\"p50_us\",\"p99_us\",\"p999_us\",\"errors\",\n"
    "     \"server_cpu_us_per_frame\",\"server_cpu_pct\",\"loadgen_cpu_pct\"} (server fields null\n"
    "    without --server-pid). Exit 1 on any mismatch or failed connection, else 0.\n"
    "  idle mode: server VmRSS before and after opening N connections (TLS handshake and one\n"
    "    64-byte echo each, 1 s settle); one JSON line\n"
    "    {\"connections\",\"rss_before\",\"rss_after\",\"bytes_per_connection\"}; holds --hold s.\n"
    "  --port P           server port (required)\n"
    "  --host ADDR        server IPv4/IPv6 address (default 127.0.0.1)\n"
    "  --connections N    load: connections (default 1)\n"
    "  --inflight K       load: frames in flight per connection (default 1)\n"
    "  --size B           load: payload bytes per frame, 0..16777216 (default 64)\n"
    "  --duration SEC     load: measured window (default 5)\n"
    "  --warmup SEC       load: unmeasured run before the window (default 1)\n"
    "  --idle N           idle mode with N connections\n"
    "  --hold SEC         idle: keep the connections open SEC s after printing (default 0)\n"
    "  --tls              TLS client (no certificate verification)\n"
    "  --server-pid PID   server process for CPU (load) and RSS (idle, required)\n"
    "  --cpu N            pin this process to CPU N\n"
    "  --help             this text\n";

/* ------------------------------------------------------------------ options */
static const char *o_host = "127.0.0.1";
static int o_port = -1;
static long o_conns = 1, o_inflight = 1, o_size = 64, o_idle = 0;
static double o_duration = 5, o_warmup = 1, o_hold = 0;
static int o_tls = 0, o_server_pid = 0, o_cpu = -1;

/* ------------------------------------------------------------------ small helpers */
static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double rusage_self_us(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

/* utime + stime of all threads of pid, in microseconds; < 0 when unreadable */
static double proc_cpu_us(int pid) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    if (!p) return -1;
    unsigned long long ut, st;
    /* after ')': state(3) ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime(14) stime(15) */
    if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) return -1;
    return (double)(ut + st) * 1e6 / (double)sysconf(_SC_CLK_TCK);
}

/* VmRSS of pid in bytes; < 0 when unreadable */
static long long proc_rss_bytes(int pid) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %lld kB", &kb) == 1) break;
    fclose(f);
    return kb < 0 ? -1 : kb * 1024;
}

/* ------------------------------------------------------------------ histogram */
typedef struct {
    uint64_t count[HB_COUNT];
    uint64_t n;
} histogram;

static inline int hist_index(uint64_t v) {
    if (v < HB_SUB) return (int)v;
    int e = 63 - __builtin_clzll(v); /* >= 7 */
    int shift = e - 7;
    return HB_SUB + shift * HB_SUB + (int)((v >> shift) - HB_SUB);
}

static double hist_mid(int i) {
    if (i < HB_SUB) return (double)i;
    int shift = (i - HB_SUB) / HB_SUB;
    uint64_t lo = (uint64_t)(HB_SUB + (i - HB_SUB) % HB_SUB) << shift;
    return (double)lo + (double)(1ull << shift) / 2.0;
}

static double hist_percentile(const histogram *h, double p) {
    if (h->n == 0) return 0;
    uint64_t rank = (uint64_t)ceil(p * (double)h->n);
    if (rank < 1) rank = 1;
    uint64_t acc = 0;
    for (int i = 0; i < HB_COUNT; i++) {
        acc += h->count[i];
        if (acc >= rank) return hist_mid(i);
    }
    return hist_mid(HB_COUNT - 1);
}

/* ------------------------------------------------------------------ frames */
static unsigned char *g_table; /* payload source: size + PAT_SPAN random bytes */
static unsigned char g_hdr[4];
static size_t g_size, g_flen; /* payload and frame length */

static void build_table(size_t size) {
    g_size = size;
    g_flen = 4 + size;
    g_hdr[0] = (unsigned char)(size >> 24);
    g_hdr[1] = (unsigned char)(size >> 16);
    g_hdr[2] = (unsigned char)(size >> 8);
    g_hdr[3] = (unsigned char)size;
    size_t n = size + PAT_SPAN;
    g_table = malloc(n);
    if (!g_table) {
        fprintf(stderr, "loadgen: out of memory\n");
        exit(1);
    }
    uint64_t s = 0x243F6A8885A308D3ull; /* splitmix64 */
    for (size_t i = 0; i < n; i += 8) {
        uint64_t z = (s += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        for (size_t j = 0; j < 8 && i + j < n; j++) g_table[i + j] = (unsigned char)(z >> (8 * j));
    }
}

/* where the payload of frame seq of connection id starts in the table */
static inline uint32_t pat_offset(uint32_t id, uint64_t seq) {
    uint64_t x = ((uint64_t)id << 40 ^ seq) * 0xD6E8FEB86659FD93ull;
    x ^= x >> 29;
    x *= 0x9E3779B97F4A7C15ull;
    return (uint32_t)(x >> 40) & (PAT_SPAN - 1);
}

/* ------------------------------------------------------------------ connections */
enum { ST_NEW, ST_CONNECTING, ST_HANDSHAKE, ST_ACTIVE, ST_DEAD };

typedef struct conn {
    int fd;
    uint32_t id;
    uint8_t state;
    uint8_t out_armed; /* EPOLLOUT in the interest set */
    uint8_t counted;   /* still counted in the setup window */
    SSL *ssl;
    uint64_t q_seq;  /* frames queued (sent or waiting) */
    uint64_t tx_seq; /* frames fully handed to the socket / to SSL_write */
    uint64_t rx_seq; /* frames fully echoed */
    size_t tx_off;   /* plain: bytes of frame tx_seq already written */
    size_t rx_pos;   /* bytes of frame rx_seq already received */
    uint32_t rx_pat; /* table offset of frame rx_seq */
    uint64_t *ts;    /* queue times, ring of ring_mask + 1 */
    /* TLS: plaintext batch being written */
    unsigned char *tbuf;
    size_t tlen, toff;
    uint64_t tframes;
} conn;

static conn *g_conns;
static long g_nconns;
static int g_epfd;
static struct sockaddr_storage g_addr;
static socklen_t g_addrlen;
static SSL_CTX *g_ctx;
static unsigned char *g_rx;
static unsigned char *g_stage;
static uint64_t g_ring_mask;
static size_t g_tls_batch_frames;

enum { PH_SETUP, PH_WARMUP, PH_MEASURE, PH_DONE };
static int g_phase = PH_SETUP;
static int g_idle_mode;
static long g_next_open;    /* next connection to open */
static long g_in_window;    /* connections in the setup window */
static long g_ready;        /* connections through setup (load) or echoed (idle) */
static long g_alive;        /* connections not dead */
static long g_errors;       /* mismatches + failed connections */
static int g_setup_failed;
static uint64_t g_frames_all, g_frames_meas;
static histogram g_hist;
static char g_first_error[256];

static void note_error(const char *fmt, long id, const char *what) {
    g_errors++;
    if (!g_first_error[0]) snprintf(g_first_error, sizeof g_first_error, fmt, id, what);
}

static void set_interest(conn *c, int out) {
    struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(g_epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0) c->out_armed = (uint8_t)out;
}

static void leave_window(conn *c) {
    if (c->counted) {
        c->counted = 0;
        g_in_window--;
    }
}

static void conn_kill(conn *c) {
    if (c->state == ST_DEAD || c->state == ST_NEW) return; /* ST_NEW: its socket() failed */
    leave_window(c);
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    epoll_ctl(g_epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    c->state = ST_DEAD;
    g_alive--;
}

static void conn_fail(conn *c, const char *what) {
    if (c->state == ST_DEAD) return;
    if (g_phase == PH_SETUP) g_setup_failed = 1; /* idle mode stays in PH_SETUP until it is done */
    note_error("connection %ld: %s", (long)c->id, what);
    ERR_clear_error();
    conn_kill(c);
}

static inline void enqueue(conn *c, uint64_t now) {
    c->ts[c->q_seq & g_ring_mask] = now;
    c->q_seq++;
}

/* Plain sends: small frames are copied into one staging buffer and sent with write(); bigger
 * ones go out with writev straight from the table. What a short write left is rebuilt from
 * (tx_seq, tx_off) next time, so nothing is kept per connection.
 * Returns -1 when the connection failed. */
static int flush_plain(conn *c) {
    struct iovec iov[2 * IOV_FRAMES];
    while (c->tx_seq < c->q_seq) {
        int k = 0;
        size_t total = 0, off = c->tx_off;
        if (g_flen <= STAGE_FRAME_MAX) {
            unsigned char *p = g_stage;
            for (uint64_t s = c->tx_seq; s < c->q_seq && (size_t)(p - g_stage) + g_flen <= STAGE_CAP; s++, off = 0) {
                if (off < 4) {
                    memcpy(p, g_hdr + off, 4 - off);
                    p += 4 - off;
                    off = 4;
                }
                memcpy(p, g_table + pat_offset(c->id, s) + (off - 4), g_size - (off - 4));
                p += g_size - (off - 4);
            }
            iov[0].iov_base = g_stage;
            iov[0].iov_len = total = (size_t)(p - g_stage);
            k = 1;
        } else {
            for (uint64_t s = c->tx_seq; s < c->q_seq && k + 2 <= 2 * IOV_FRAMES; s++, off = 0) {
                if (off < 4) {
                    iov[k].iov_base = g_hdr + off;
                    iov[k++].iov_len = 4 - off;
                    total += 4 - off;
                    off = 4;
                }
                if (g_size > off - 4) {
                    iov[k].iov_base = g_table + pat_offset(c->id, s) + (off - 4);
                    iov[k++].iov_len = g_size - (off - 4);
                    total += g_size - (off - 4);
                }
            }
        }
        ssize_t w = k == 1 ? write(c->fd, iov[0].iov_base, iov[0].iov_len) : writev(c->fd, iov, k);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                if (!c->out_armed) set_interest(c, 1);
                return 0;
            }
            conn_fail(c, strerror(errno));
            return -1;
        }
        size_t left = (size_t)w;
        while (left) {
            size_t rem = g_flen - c->tx_off;
            if (left >= rem) {
                left -= rem;
                c->tx_seq++;
                c->tx_off = 0;
            } else {
                c->tx_off += left;
                left = 0;
            }
        }
        if ((size_t)w < total) {
            if (!c->out_armed) set_interest(c, 1);
            return 0;
        }
    }
    if (c->out_armed) set_interest(c, 0);
    return 0;
}

static int flush_tls(conn *c) {
    for (;;) {
        if (c->toff == c->tlen) {
            c->tx_seq += c->tframes;
            c->tframes = 0;
            c->tlen = c->toff = 0;
            if (c->tx_seq == c->q_seq) break;
            if (!c->tbuf) {
                c->tbuf = malloc(g_tls_batch_frames * g_flen);
                if (!c->tbuf) {
                    conn_fail(c, "out of memory");
                    return -1;
                }
            }
            uint64_t n = c->q_seq - c->tx_seq;
            if (n > g_tls_batch_frames) n = g_tls_batch_frames;
            unsigned char *p = c->tbuf;
            for (uint64_t s = c->tx_seq; s < c->tx_seq + n; s++) {
                memcpy(p, g_hdr, 4);
                memcpy(p + 4, g_table + pat_offset(c->id, s), g_size);
                p += g_flen;
            }
            c->tframes = n;
            c->tlen = (size_t)(p - c->tbuf);
        }
        size_t len = c->tlen - c->toff;
        int r = SSL_write(c->ssl, c->tbuf + c->toff, len > INT_MAX ? INT_MAX : (int)len);
        if (r > 0) {
            c->toff += (size_t)r;
            continue;
        }
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_WRITE) {
            if (!c->out_armed) set_interest(c, 1);
            return 0;
        }
        if (e == SSL_ERROR_WANT_READ) return 0; /* retried after the next read */
        conn_fail(c, e == SSL_ERROR_SYSCALL ? strerror(errno) : "TLS write failed");
        return -1;
    }
    if (c->out_armed) set_interest(c, 0);
    return 0;
}

static int flush_conn(conn *c) { return c->ssl ? flush_tls(c) : flush_plain(c); }

/* Check echoed bytes against what was sent; returns -1 on a mismatch (connection killed). */
static int consume(conn *c, const unsigned char *p, size_t n, uint64_t now) {
    while (n) {
        if (c->rx_seq == c->q_seq) {
            conn_fail(c, "received bytes that were never sent");
            return -1;
        }
        if (c->rx_pos == 0) c->rx_pat = pat_offset(c->id, c->rx_seq);
        size_t take = g_flen - c->rx_pos;
        if (take > n) take = n;
        size_t i = 0, pos = c->rx_pos;
        if (pos < 4) {
            i = take < 4 - pos ? take : 4 - pos;
            if (memcmp(p, g_hdr + pos, i) != 0) {
                conn_fail(c, "echoed length differs from the one sent");
                return -1;
            }
            pos += i;
        }
        if (i < take && memcmp(p + i, g_table + c->rx_pat + (pos - 4), take - i) != 0) {
            conn_fail(c, "echoed payload differs from the one sent");
            return -1;
        }
        c->rx_pos += take;
        p += take;
        n -= take;
        if (c->rx_pos == g_flen) {
            uint64_t sent = c->ts[c->rx_seq & g_ring_mask];
            c->rx_seq++;
            c->rx_pos = 0;
            g_frames_all++;
            if (g_phase == PH_MEASURE) {
                g_frames_meas++;
                g_hist.count[hist_index(now - sent)]++;
                g_hist.n++;
            }
            if (g_idle_mode) {
                if (c->counted) {
                    leave_window(c);
                    g_ready++;
                }
            } else if (g_phase == PH_WARMUP || g_phase == PH_MEASURE) {
                enqueue(c, now);
            }
        }
    }
    return 0;
}

static void on_readable(conn *c, uint64_t now) {
    if (c->ssl) {
        for (;;) {
            int r = SSL_read(c->ssl, g_rx, RX_CAP);
            if (r > 0) {
                if (consume(c, g_rx, (size_t)r, now) < 0) return;
                continue;
            }
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ) break;
            if (e == SSL_ERROR_WANT_WRITE) {
                if (!c->out_armed) set_interest(c, 1);
                break;
            }
            conn_fail(c, e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno == 0)
                             ? "closed by the server"
                             : e == SSL_ERROR_SYSCALL ? strerror(errno) : "TLS read failed");
            return;
        }
    } else {
        for (int i = 0; i < 4; i++) {
            ssize_t r = read(c->fd, g_rx, RX_CAP);
            if (r > 0) {
                if (consume(c, g_rx, (size_t)r, now) < 0) return;
                if ((size_t)r < RX_CAP) break;
                continue;
            }
            if (r == 0) {
                conn_fail(c, "closed by the server");
                return;
            }
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            conn_fail(c, strerror(errno));
            return;
        }
    }
    flush_conn(c);
}

/* ------------------------------------------------------------------ setup */
static void became_ready(conn *c, uint64_t now) {
    c->state = ST_ACTIVE;
    set_interest(c, 0);
    if (g_idle_mode) { /* one echo; it leaves the window when it comes back */
        enqueue(c, now);
        flush_conn(c);
    } else {
        leave_window(c);
        g_ready++;
    }
}

static void drive_handshake(conn *c, uint64_t now) {
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        became_ready(c, now);
        return;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ) {
        if (c->out_armed) set_interest(c, 0);
    } else if (e == SSL_ERROR_WANT_WRITE) {
        if (!c->out_armed) set_interest(c, 1);
    } else {
        char msg[200];
        unsigned long err = ERR_peek_error();
        if (err) ERR_error_string_n(err, msg, sizeof msg);
        else snprintf(msg, sizeof msg, "%s", e == SSL_ERROR_SYSCALL && errno ? strerror(errno) : "closed by the server");
        char full[256];
        snprintf(full, sizeof full, "TLS handshake failed: %s", msg);
        conn_fail(c, full);
    }
}

static int open_next(void) {
    conn *c = &g_conns[g_next_open];
    c->id = (uint32_t)g_next_open;
    g_next_open++;
    c->fd = socket(g_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        note_error("cannot open connection %ld: %s", (long)c->id, strerror(errno));
        fprintf(stderr, "loadgen: %s\n", g_first_error);
        return -1;
    }
    g_alive++;
    c->counted = 1;
    g_in_window++;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->state = ST_CONNECTING;
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(g_epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        note_error("connection %ld: epoll_ctl: %s", (long)c->id, strerror(errno));
        fprintf(stderr, "loadgen: %s\n", g_first_error);
        return -1;
    }
    c->out_armed = 1;
    if (connect(c->fd, (struct sockaddr *)&g_addr, g_addrlen) != 0 && errno != EINPROGRESS) {
        char msg[200];
        snprintf(msg, sizeof msg, "connect: %s", strerror(errno));
        conn_fail(c, msg);
    }
    return 0;
}

static void on_connected(conn *c, uint64_t now) {
    int err = 0;
    socklen_t l = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
    if (err) {
        char msg[200];
        snprintf(msg, sizeof msg, "connect: %s", strerror(err));
        conn_fail(c, msg);
        return;
    }
    if (!o_tls) {
        became_ready(c, now);
        return;
    }
    c->ssl = SSL_new(g_ctx);
    if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) {
        conn_fail(c, "SSL_new failed");
        return;
    }
    SSL_set_connect_state(c->ssl);
    c->state = ST_HANDSHAKE;
    drive_handshake(c, now);
}

static void on_event(conn *c, uint32_t events) {
    uint64_t now = now_ns();
    switch (c->state) {
    case ST_CONNECTING: on_connected(c, now); break;
    case ST_HANDSHAKE: drive_handshake(c, now); break;
    case ST_ACTIVE:
        if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(c, now);
        if (c->state == ST_ACTIVE && (events & EPOLLOUT)) flush_conn(c);
        break;
    default: break;
    }
}

/* one epoll_wait + dispatch; wait at most timeout_ms */
static void poll_once(int timeout_ms) {
    struct epoll_event evs[512];
    int n = epoll_wait(g_epfd, evs, 512, timeout_ms);
    if (n < 0 && errno != EINTR) {
        fprintf(stderr, "loadgen: epoll_wait: %s\n", strerror(errno));
        exit(1);
    }
    for (int i = 0; i < n; i++) on_event(evs[i].data.ptr, evs[i].events);
}

static int ms_until(uint64_t deadline, uint64_t now) {
    if (deadline <= now) return 0;
    uint64_t ms = (deadline - now + 999999) / 1000000;
    return ms > 1000 ? 1000 : (int)ms;
}

/* open connections (at most `window` unfinished at a time) until `target` are ready */
static int setup_connections(long window) {
    uint64_t deadline = now_ns() + (uint64_t)SETUP_TIMEOUT_S * 1000000000u;
    while (g_ready < g_nconns) {
        while (g_next_open < g_nconns && g_in_window < window && !g_setup_failed)
            if (open_next() < 0) return -1;
        if (g_setup_failed) {
            fprintf(stderr, "loadgen: %s\n", g_first_error);
            return -1;
        }
        uint64_t now = now_ns();
        if (now >= deadline) {
            fprintf(stderr, "loadgen: setup timed out after %d s: %ld of %ld connections ready\n", SETUP_TIMEOUT_S,
                    g_ready, g_nconns);
            return -1;
        }
        poll_once(ms_until(deadline, now));
        if (g_setup_failed) {
            fprintf(stderr, "loadgen: %s\n", g_first_error);
            return -1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ arguments */
static void bad_value(const char *flag, const char *v, const char *expect) {
    fprintf(stderr, "loadgen: bad value for %s: '%s' (expected %s)\n", flag, v, expect);
    exit(2);
}

static long parse_long(const char *flag, const char *v, long lo, long hi) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (!*v || *end || errno || x < lo || x > hi) {
        char expect[96];
        snprintf(expect, sizeof expect, "an integer %ld..%ld", lo, hi);
        bad_value(flag, v, expect);
    }
    return x;
}

static double parse_seconds(const char *flag, const char *v, double lo, double hi) {
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (!*v || *end || errno || !(x >= lo && x <= hi)) {
        char expect[96];
        snprintf(expect, sizeof expect, "seconds, %g..%g", lo, hi);
        bad_value(flag, v, expect);
    }
    return x;
}

static void usage_error(const char *msg, const char *arg) {
    fprintf(stderr, "loadgen: %s%s (see --help)\n", msg, arg);
    exit(2);
}

static void parse_args(int argc, char **argv) {
    int seen_load = 0; /* a load-mode flag was given */
    int seen_hold = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        char name[32];
        const char *eq = strncmp(a, "--", 2) == 0 ? strchr(a, '=') : NULL;
        if (eq && (size_t)(eq - a) < sizeof name) {
            memcpy(name, a, (size_t)(eq - a));
            name[eq - a] = 0;
            a = name;
            v = eq + 1;
        }
        static const char *const valued[] = {"--port", "--host", "--connections", "--inflight", "--size",
                                             "--duration", "--warmup", "--server-pid", "--cpu", "--idle",
                                             "--hold", NULL};
        int takes_value = 0;
        for (int k = 0; valued[k]; k++)
            if (!strcmp(a, valued[k])) takes_value = 1;
        if (takes_value && !v) {
            if (i + 1 >= argc) usage_error(a, " needs a value");
            v = argv[++i];
        } else if (!takes_value && v) {
            usage_error(a, " takes no value");
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage_text, stdout);
            exit(0);
        } else if (!strcmp(a, "--port")) o_port = (int)parse_long(a, v, 1, 65535);
        else if (!strcmp(a, "--host")) o_host = v;
        else if (!strcmp(a, "--connections")) o_conns = parse_long(a, v, 1, 1000000), seen_load = 1;
        else if (!strcmp(a, "--inflight")) o_inflight = parse_long(a, v, 1, 1 << 20), seen_load = 1;
        else if (!strcmp(a, "--size")) o_size = parse_long(a, v, 0, MAX_PAYLOAD), seen_load = 1;
        else if (!strcmp(a, "--duration")) o_duration = parse_seconds(a, v, 0.1, 3600), seen_load = 1;
        else if (!strcmp(a, "--warmup")) o_warmup = parse_seconds(a, v, 0, 3600), seen_load = 1;
        else if (!strcmp(a, "--server-pid")) o_server_pid = (int)parse_long(a, v, 1, INT_MAX);
        else if (!strcmp(a, "--cpu")) o_cpu = (int)parse_long(a, v, 0, CPU_SETSIZE - 1);
        else if (!strcmp(a, "--idle")) o_idle = parse_long(a, v, 1, 1000000);
        else if (!strcmp(a, "--hold")) o_hold = parse_seconds(a, v, 0, 86400), seen_hold = 1;
        else if (!strcmp(a, "--tls")) o_tls = 1;
        else usage_error("unknown argument ", argv[i]);
    }
    if (o_port < 0) usage_error("--port is required", "");
    if (o_idle && seen_load)
        usage_error("--connections/--inflight/--size/--duration/--warmup are load-mode flags, not for --idle", "");
    if (!o_idle && seen_hold) usage_error("--hold is only for --idle", "");
    if (o_idle && !o_server_pid) usage_error("--idle needs --server-pid", "");
    if (!o_idle && o_conns * o_inflight > (1L << 24)) usage_error("--connections x --inflight is above 16777216", "");
    if (o_server_pid && proc_cpu_us(o_server_pid) < 0) {
        char pid[16];
        snprintf(pid, sizeof pid, "%d", o_server_pid);
        bad_value("--server-pid", pid, "a running process");
    }
    if (o_cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(o_cpu, &set);
        if (sched_setaffinity(0, sizeof set, &set) != 0) {
            char cpu[16];
            snprintf(cpu, sizeof cpu, "%d", o_cpu);
            bad_value("--cpu", cpu, "a CPU this process may run on");
        }
    }
    if (inet_pton(AF_INET, o_host, &((struct sockaddr_in *)&g_addr)->sin_addr) == 1) {
        struct sockaddr_in *sa = (struct sockaddr_in *)&g_addr;
        sa->sin_family = AF_INET;
        sa->sin_port = htons((uint16_t)o_port);
        g_addrlen = sizeof *sa;
    } else if (inet_pton(AF_INET6, o_host, &((struct sockaddr_in6 *)&g_addr)->sin6_addr) == 1) {
        struct sockaddr_in6 *sa = (struct sockaddr_in6 *)&g_addr;
        sa->sin6_family = AF_INET6;
        sa->sin6_port = htons((uint16_t)o_port);
        g_addrlen = sizeof *sa;
    } else {
        bad_value("--host", o_host, "an IPv4 or IPv6 address");
    }
}

/* ------------------------------------------------------------------ main */
static void raise_nofile(long need) {
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY && (rlim_t)need + 16 > rl.rlim_cur) {
        fprintf(stderr, "loadgen: cannot open %ld connections: the open-file limit is %llu (hard limit %llu)\n", need,
                (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max);
        exit(1);
    }
}

static void init_tls(void) {
    g_ctx = SSL_CTX_new(TLS_client_method());
    if (!g_ctx) {
        fprintf(stderr, "loadgen: SSL_CTX_new failed\n");
        exit(1);
    }
    SSL_CTX_set_min_proto_version(g_ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(g_ctx, SSL_VERIFY_NONE, NULL); /* benchmark peer: no verification */
    SSL_CTX_set_mode(g_ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_session_cache_mode(g_ctx, SSL_SESS_CACHE_OFF);
}

static void close_all(void) {
    for (long i = 0; i < g_next_open; i++) conn_kill(&g_conns[i]);
}

static int run_idle(void) {
    long long rss_before = proc_rss_bytes(o_server_pid);
    if (rss_before < 0) {
        fprintf(stderr, "loadgen: cannot read VmRSS of process %d\n", o_server_pid);
        return 1;
    }
    if (setup_connections(IDLE_WINDOW) < 0) {
        close_all();
        return 1;
    }
    uint64_t settle = now_ns() + 1000000000u;
    for (uint64_t now; (now = now_ns()) < settle;) poll_once(ms_until(settle, now));
    if (g_errors) {
        fprintf(stderr, "loadgen: %s\n", g_first_error);
        close_all();
        return 1;
    }
    long long rss_after = proc_rss_bytes(o_server_pid);
    if (rss_after < 0) {
        fprintf(stderr, "loadgen: cannot read VmRSS of process %d\n", o_server_pid);
        return 1;
    }
    fprintf(stderr, "loadgen: %ld connections open, one %d-byte echo done on each\n", g_nconns, IDLE_PAYLOAD);
    printf("{\"connections\":%ld,\"rss_before\":%lld,\"rss_after\":%lld,\"bytes_per_connection\":%.1f}\n", g_nconns,
           rss_before, rss_after, (double)(rss_after - rss_before) / (double)g_nconns);
    fflush(stdout);
    if (o_hold > 0) {
        uint64_t end = now_ns() + (uint64_t)(o_hold * 1e9);
        for (uint64_t now; (now = now_ns()) < end;) poll_once(ms_until(end, now));
        if (g_alive < g_nconns)
            fprintf(stderr, "loadgen: %ld connections were closed by the server while held\n", g_nconns - g_alive);
    }
    close_all();
    return 0;
}

static void print_result(double seconds, double srv_us, double lg_us) {
    double fps = seconds > 0 ? (double)g_frames_meas / seconds : 0;
    double mbps = seconds > 0 ? (double)g_frames_meas * (double)g_size / seconds / 1e6 : 0;
    printf("{\"frames\":%llu,\"seconds\":%.3f,\"frames_per_s\":%.1f,\"mb_per_s\":%.3f,\"p50_us\":%.2f,\"p99_us\":%.2f,"
           "\"p999_us\":%.2f,\"errors\":%ld,",
           (unsigned long long)g_frames_meas, seconds, fps, mbps, hist_percentile(&g_hist, 0.50) / 1e3,
           hist_percentile(&g_hist, 0.99) / 1e3, hist_percentile(&g_hist, 0.999) / 1e3, g_errors);
    if (srv_us >= 0 && g_frames_meas)
        printf("\"server_cpu_us_per_frame\":%.3f,", srv_us / (double)g_frames_meas);
    else
        printf("\"server_cpu_us_per_frame\":null,");
    if (srv_us >= 0 && seconds > 0) printf("\"server_cpu_pct\":%.1f,", srv_us / seconds / 1e4);
    else printf("\"server_cpu_pct\":null,");
    printf("\"loadgen_cpu_pct\":%.1f}\n", seconds > 0 ? lg_us / seconds / 1e4 : 0);
    fflush(stdout);
}

static int run_load(void) {
    if (setup_connections(CONNECT_WINDOW) < 0) {
        close_all();
        print_result(0, o_server_pid ? 0 : -1, 0);
        return 1;
    }
    if (o_tls) {
        SSL *s = g_conns[0].ssl;
        fprintf(stderr, "loadgen: %ld connections ready (%s, %s)\n", g_nconns, SSL_get_version(s), SSL_get_cipher(s));
    } else {
        fprintf(stderr, "loadgen: %ld connections ready\n", g_nconns);
    }
    uint64_t t0 = now_ns();
    uint64_t warm_end = t0 + (uint64_t)(o_warmup * 1e9);
    uint64_t meas_start = 0, meas_end = 0, next_tick = t0 + 1000000000u;
    double srv0 = -1, lg0 = 0, srv_us = -1, lg_us = 0;
    uint64_t frames_tick = 0;
    g_phase = PH_WARMUP;
    for (long i = 0; i < g_nconns; i++) {
        conn *c = &g_conns[i];
        for (long k = 0; k < o_inflight; k++) enqueue(c, t0);
        flush_conn(c);
    }
    for (;;) {
        uint64_t now = now_ns();
        if (now >= next_tick) {
            double t = (double)(now - t0) / 1e9;
            uint64_t last = g_frames_all - frames_tick;
            frames_tick = g_frames_all;
            if (g_phase == PH_MEASURE && now - meas_start >= 50000000u)
                fprintf(stderr, "loadgen: %5.1f s measuring: %.0f frames/s in the last second, %.0f frames/s so far\n", t,
                        (double)last, (double)g_frames_meas / ((double)(now - meas_start) / 1e9));
            else
                fprintf(stderr, "loadgen: %5.1f s %s: %.0f frames/s in the last second\n", t,
                        g_phase == PH_MEASURE ? "measuring" : "warm-up", (double)last);
            next_tick += 1000000000u;
            if (next_tick <= now) next_tick = now + 1000000000u;
        }
        if (g_phase == PH_WARMUP && now >= warm_end) {
            g_phase = PH_MEASURE;
            meas_start = now;
            meas_end = now + (uint64_t)(o_duration * 1e9);
            if (o_server_pid) srv0 = proc_cpu_us(o_server_pid);
            lg0 = rusage_self_us();
        }
        if ((g_phase == PH_MEASURE && now >= meas_end) || g_alive == 0) {
            if (g_phase == PH_WARMUP) { /* every connection died during warm-up */
                meas_start = meas_end = now;
                lg0 = rusage_self_us();
            }
            meas_end = now;
            if (o_server_pid) {
                double s1 = proc_cpu_us(o_server_pid);
                srv_us = (s1 >= 0 && srv0 >= 0) ? s1 - srv0 : -1;
            }
            lg_us = rusage_self_us() - lg0;
            g_phase = PH_DONE;
            break;
        }
        uint64_t deadline = next_tick;
        if (g_phase == PH_WARMUP && warm_end < deadline) deadline = warm_end;
        if (g_phase == PH_MEASURE && meas_end < deadline) deadline = meas_end;
        poll_once(ms_until(deadline, now));
    }
    double seconds = (double)(meas_end - meas_start) / 1e9;
    close_all();
    if (g_errors) fprintf(stderr, "loadgen: %ld errors; first: %s\n", g_errors, g_first_error);
    print_result(seconds, o_server_pid ? srv_us : -1, lg_us);
    return g_errors ? 1 : 0;
}

int main(int argc, char **argv) {
    parse_args(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    g_idle_mode = o_idle > 0;
    g_nconns = g_idle_mode ? o_idle : o_conns;
    raise_nofile(g_nconns);
    build_table(g_idle_mode ? IDLE_PAYLOAD : (size_t)o_size);
    long ring = 1;
    while (ring < (g_idle_mode ? 1 : o_inflight)) ring <<= 1;
    g_ring_mask = (uint64_t)ring - 1;
    g_tls_batch_frames = TLS_BATCH_BYTES / g_flen;
    if (g_tls_batch_frames < 1) g_tls_batch_frames = 1;
    if (!g_idle_mode && g_tls_batch_frames > (size_t)o_inflight) g_tls_batch_frames = (size_t)o_inflight;
    if (g_idle_mode) g_tls_batch_frames = 1;
    g_conns = calloc((size_t)g_nconns, sizeof *g_conns);
    uint64_t *rings = calloc((size_t)g_nconns * (size_t)ring, sizeof(uint64_t));
    g_rx = malloc(RX_CAP);
    g_stage = malloc(STAGE_CAP);
    g_epfd = epoll_create1(EPOLL_CLOEXEC);
    if (!g_conns || !rings || !g_rx || !g_stage || g_epfd < 0) {
        fprintf(stderr, "loadgen: out of memory\n");
        return 1;
    }
    for (long i = 0; i < g_nconns; i++) {
        g_conns[i].fd = -1;
        g_conns[i].ts = rings + (size_t)i * (size_t)ring;
    }
    if (o_tls) init_tls();
    return g_idle_mode ? run_idle() : run_load();
}
