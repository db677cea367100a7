/*
 * echo-server: the framed-echo peer server of swift-micro's transport benchmarks,
 * written in C on libuv (plain TCP, or TLS through OpenSSL).
 *
 * Wire: a frame is a 4-byte big-endian length N followed by N payload bytes. Every
 * frame is echoed back unchanged, in order, on the connection it came from. A length
 * above 16 MiB closes the connection.
 *
 * Layout
 *   - One libuv loop per thread (--threads). Each thread has its own listening socket
 *     on the same address, bound with SO_REUSEPORT; the kernel spreads new connections
 *     over them. All sockets are bound and listening before the ready line is printed
 *     (with --port 0 the first one picks the port and the others bind to it).
 *   - Each loop owns the buffers every read goes through: a read buffer (plain) or a
 *     ciphertext + plaintext pair (TLS), and a TLS output buffer. A connection owns no
 *     buffer while it is idle; it keeps a heap copy of an incomplete frame only.
 *     Reads are of at most 64 KiB. (Measured on loopback: larger reads, and big frames
 *     glued into larger writes, drew many more spurious TCP loss probes and up to twice
 *     the server CPU per 64 KiB frame.)
 *   - An incomplete frame of at most FRONT_MAX (16 KiB) is copied back in front of the
 *     loop's buffer before the next read, so that it and the frames behind it form one
 *     contiguous run. A bigger one gets its own buffer of exactly the frame's size, the
 *     socket (or the TLS layer) reads the rest straight into it, and that buffer is then
 *     handed to the write (its burst holds nothing else).
 *   - All complete frames of one read burst go out with ONE write: uv_try_write first;
 *     what the socket did not take is copied into a single uv_write_t request. Reading
 *     pauses while more than HIGH_WATER bytes wait in the write queue.
 *   - TLS: a custom BIO reads the ciphertext straight from the loop's read buffer and
 *     appends what OpenSSL produces to the loop's output buffer, which is sent once per
 *     read burst (same try-write-then-queue path). The plaintext of the whole burst is
 *     gathered first, so each burst costs one SSL_write (two when a frame bigger than
 *     FRONT_MAX completes in the middle of it). TLS 1.2 minimum, 1.3 preferred;
 *     SSL_MODE_RELEASE_BUFFERS; no session tickets or session cache (no resumption).
 *   - SIGPIPE is ignored; SIGTERM or SIGINT closes every loop and exits 0.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#define MAX_PAYLOAD (16u << 20)        /* largest payload accepted */
#define FRONT_MAX (16u << 10)          /* frames up to this size are re-fronted when split */
#define READ_CHUNK (64u << 10)         /* bytes offered to one read (behind a re-fronted partial) */
#define RBUF_CAP (FRONT_MAX + READ_CHUNK)
#define TLS_CIPHER_CAP (64u << 10)     /* ciphertext read buffer (TLS) */
#define PLAIN_CAP (FRONT_MAX + 2 * READ_CHUNK)
#define TLS_RECORD_MAX (16u << 10)
#define HIGH_WATER (4u << 20)          /* stop reading above this many queued bytes */
#define LOW_WATER (1u << 20)           /* and start again below this */
#define TOUT_KEEP (1u << 20)           /* TLS output buffer kept between bursts, at most */
#define LISTEN_BACKLOG 4096            /* the kernel caps it at net.core.somaxconn */

static const char usage_text[] =
    "usage: echo-server [--host 127.0.0.1] [--port 0] [--threads 1] [--tls --cert FILE --key FILE]\n"
    "  Framed echo (4-byte big-endian length + payload), one libuv loop per thread,\n"
    "  one SO_REUSEPORT listener per thread. Prints 'echo-server listening on HOST:PORT'\n"
    "  once ready; exits 0 on SIGTERM or SIGINT.\n"
    "  --host ADDR    IPv4 or IPv6 address to listen on (default 127.0.0.1)\n"
    "  --port N       TCP port, 0 = pick a free one (default 0)\n"
    "  --threads N    event loops / listeners, 1..256 (default 1)\n"
    "  --tls          serve TLS (1.2 minimum, 1.3 preferred); needs --cert and --key\n"
    "  --cert FILE    PEM certificate chain\n"
    "  --key FILE     PEM private key\n"
    "  --help         this text\n";

typedef struct loop_ctx {
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_async_t stop;
    int listen_fd;
    pthread_t thread;
    char *rbuf;            /* plain: RBUF_CAP; TLS: ciphertext, TLS_CIPHER_CAP */
    char *plain;           /* TLS: decrypted bytes of the current burst, PLAIN_CAP */
    char *tout;            /* TLS: bytes OpenSSL produced during the current burst */
    size_t tout_len, tout_cap;
    const char *tin;       /* TLS: ciphertext not yet handed to OpenSSL */
    size_t tin_len;
    int failed;            /* TLS: the output buffer could not grow */
} loop_ctx;

typedef struct conn {
    uv_tcp_t tcp;          /* first: a conn is its handle */
    loop_ctx *lc;
    SSL *ssl;
    char *part;            /* incomplete frame (header included), NULL when none */
    uint32_t plen;         /* bytes in part */
    uint32_t need;         /* total size of the frame in part, when part is "large" */
    uint32_t front;        /* plain: bytes of part copied in front of rbuf by on_alloc */
    uint8_t large;         /* part is a full-size frame buffer, read into directly */
    uint8_t paused;        /* reading stopped for backpressure */
} conn;

typedef struct write_req {
    uv_write_t req;
    char *owned; /* a large frame's own buffer, sent without a copy; else NULL */
    char data[];
} write_req;

static const char *g_host = "127.0.0.1";
static int g_port = 0;
static int g_threads = 1;
static SSL_CTX *g_ctx;
static BIO_METHOD *g_bio_method;
static pthread_barrier_t g_started;

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static inline uint32_t get_be32(const char *p) {
    const unsigned char *u = (const unsigned char *)p;
    return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | (uint32_t)u[3];
}

/* ------------------------------------------------------------------ connections */

static void on_conn_closed(uv_handle_t *h) {
    conn *c = (conn *)h;
    free(c->part);
    if (c->ssl) SSL_free(c->ssl); /* frees its BIO */
    free(c);
}

static inline int is_closing(conn *c) { return uv_is_closing((uv_handle_t *)&c->tcp); }

static void conn_close(conn *c) {
    if (!is_closing(c)) uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void drop_part(conn *c) {
    free(c->part);
    c->part = NULL;
    c->plen = c->need = c->front = 0;
    c->large = 0;
}

static void on_written(uv_write_t *req, int status) {
    conn *c = (conn *)req->handle;
    write_req *wr = (write_req *)req;
    free(wr->owned);
    free(wr);
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (c->paused && !is_closing(c) && uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) < LOW_WATER) {
        c->paused = 0;
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) conn_close(c);
    }
}

/* Send bytes on the socket: directly if the socket takes them, the rest in one queued request
 * (a copy, or the heap buffer `owned` itself when given: it is freed once sent or on error). */
static void send_bytes_owned(conn *c, const char *data, size_t len, char *owned) {
    if (len == 0 || is_closing(c)) {
        free(owned);
        return;
    }
    uv_stream_t *s = (uv_stream_t *)&c->tcp;
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    int n = uv_try_write(s, &b, 1);
    if (n < 0) {
        if (n != UV_EAGAIN) {
            free(owned);
            conn_close(c);
            return;
        }
        n = 0;
    }
    if ((size_t)n == len) {
        free(owned);
        return;
    }
    size_t rest = len - (size_t)n;
    write_req *wr = malloc(sizeof *wr + (owned ? 0 : rest));
    if (!wr) {
        free(owned);
        conn_close(c);
        return;
    }
    wr->owned = owned;
    if (!owned) memcpy(wr->data, data + n, rest);
    b = uv_buf_init(owned ? (char *)data + n : wr->data, (unsigned)rest);
    if (uv_write(&wr->req, s, &b, 1, on_written) != 0) {
        free(wr->owned);
        free(wr);
        conn_close(c);
        return;
    }
    if (!c->paused && uv_stream_get_write_queue_size(s) > HIGH_WATER) {
        c->paused = 1;
        uv_read_stop(s);
    }
}

static void send_bytes(conn *c, const char *data, size_t len) { send_bytes_owned(c, data, len, NULL); }

/* Length of the run of complete frames at the start of p. *bad is set when a length above
 * MAX_PAYLOAD follows the run (the frames before it are still echoed, then the connection
 * closes); an incomplete frame behind the run has a valid length when *bad is 0. */
static size_t complete_run(const char *p, size_t len, int *bad) {
    size_t off = 0;
    *bad = 0;
    while (len - off >= 4) {
        uint32_t n = get_be32(p + off);
        if (n > MAX_PAYLOAD) {
            *bad = 1;
            break;
        }
        if (len - off - 4 < n) break;
        off += 4 + (size_t)n;
    }
    return off;
}

/* Keep the incomplete frame at the end of a burst; returns -1 when out of memory. */
static int keep_tail(conn *c, const char *tail, size_t len) {
    if (len == 0) return 0;
    size_t total = len >= 4 ? 4 + (size_t)get_be32(tail) : 0;
    if (total > FRONT_MAX) {
        c->part = malloc(total);
        if (!c->part) return -1;
        c->need = (uint32_t)total;
        c->large = 1;
    } else {
        c->part = malloc(len);
        if (!c->part) return -1;
    }
    memcpy(c->part, tail, len);
    c->plen = (uint32_t)len;
    return 0;
}

/* ------------------------------------------------------------------ plain TCP */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)suggested;
    conn *c = (conn *)h;
    loop_ctx *lc = c->lc;
    if (c->ssl) {
        *buf = uv_buf_init(lc->rbuf, TLS_CIPHER_CAP);
        return;
    }
    if (c->large) {
        *buf = uv_buf_init(c->part + c->plen, c->need - c->plen);
        return;
    }
    /* a small incomplete frame goes in front, the read lands right behind it */
    c->front = c->plen;
    if (c->plen) memcpy(lc->rbuf, c->part, c->plen);
    *buf = uv_buf_init(lc->rbuf + c->front, READ_CHUNK);
}

static void plain_burst(conn *c, ssize_t nread) {
    if (c->large) {
        c->plen += (uint32_t)nread;
        if (c->plen == c->need) { /* the frame's buffer goes to the write as it is */
            char *frame = c->part;
            size_t len = c->need;
            c->part = NULL;
            drop_part(c);
            send_bytes_owned(c, frame, len, frame);
        }
        return;
    }
    char *base = c->lc->rbuf;
    size_t len = c->front + (size_t)nread;
    drop_part(c); /* its bytes are now in front of rbuf */
    int bad;
    size_t run = complete_run(base, len, &bad);
    send_bytes(c, base, run);
    if (bad) conn_close(c);
    if (is_closing(c)) return;
    if (keep_tail(c, base + run, len - run) < 0) conn_close(c);
}

/* ------------------------------------------------------------------ TLS */

static int bio_cb_write(BIO *b, const char *data, int len) {
    loop_ctx *lc = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (len <= 0) return 0;
    size_t need = lc->tout_len + (size_t)len;
    if (need > lc->tout_cap) {
        size_t cap = lc->tout_cap ? lc->tout_cap : 64u << 10;
        while (cap < need) cap *= 2;
        char *p = realloc(lc->tout, cap);
        if (!p) {
            lc->failed = 1;
            return -1;
        }
        lc->tout = p;
        lc->tout_cap = cap;
    }
    memcpy(lc->tout + lc->tout_len, data, (size_t)len);
    lc->tout_len += (size_t)len;
    return len;
}

static int bio_cb_read(BIO *b, char *out, int len) {
    loop_ctx *lc = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (lc->tin_len == 0) {
        BIO_set_retry_read(b);
        return -1;
    }
    size_t n = (size_t)len < lc->tin_len ? (size_t)len : lc->tin_len;
    memcpy(out, lc->tin, n);
    lc->tin += n;
    lc->tin_len -= n;
    return (int)n;
}

static long bio_cb_ctrl(BIO *b, int cmd, long num, void *ptr) {
    (void)b, (void)num, (void)ptr;
    switch (cmd) {
    case BIO_CTRL_FLUSH: return 1;
    case BIO_CTRL_PENDING:
    case BIO_CTRL_WPENDING: return 0;
    default: return 0;
    }
}

static int bio_cb_create(BIO *b) {
    BIO_set_init(b, 1);
    return 1;
}

/* Encrypt a run of complete frames. */
static int tls_echo(conn *c, const char *p, size_t len) {
    if (len == 0) return 0;
    size_t done = 0;
    while (done < len) { /* one call unless the run exceeds INT_MAX */
        size_t chunk = len - done > (size_t)INT_MAX ? (size_t)INT_MAX : len - done;
        int n = SSL_write(c->ssl, p + done, (int)chunk);
        if (n <= 0) return -1;
        done += (size_t)n;
    }
    return 0;
}

static void tls_flush(conn *c) {
    loop_ctx *lc = c->lc;
    if (lc->tout_cap > TOUT_KEEP) { /* a huge frame went through: hand the buffer to the write */
        char *out = lc->tout;
        size_t len = lc->tout_len;
        lc->tout = NULL;
        lc->tout_len = lc->tout_cap = 0;
        send_bytes_owned(c, out, len, out);
        return;
    }
    send_bytes(c, lc->tout, lc->tout_len);
    lc->tout_len = 0;
}

/* Echo the complete frames of plain[0, *len) and keep what is left in front of it. */
static int tls_consume(conn *c, size_t *len) {
    char *p = c->lc->plain;
    int bad;
    size_t run = complete_run(p, *len, &bad);
    if (tls_echo(c, p, run) < 0 || bad) return -1;
    size_t tail = *len - run;
    if (tail >= 4) {
        uint32_t n = get_be32(p + run);
        if (4 + (size_t)n > FRONT_MAX) { /* large: give it its own buffer, read into it */
            if (keep_tail(c, p + run, tail) < 0) return -1;
            *len = 0;
            return 0;
        }
    }
    if (run && tail) memmove(p, p + run, tail);
    *len = tail;
    return 0;
}

static void tls_burst(conn *c, const char *cipher, size_t clen) {
    loop_ctx *lc = c->lc;
    char *plain = lc->plain;
    size_t len = 0;
    int bad = 0;
    lc->tin = cipher;
    lc->tin_len = clen;
    lc->failed = 0;
    if (c->part && !c->large) { /* small incomplete frame: in front of this burst's plaintext */
        memcpy(plain, c->part, c->plen);
        len = c->plen;
        drop_part(c);
    }
    for (;;) {
        int n;
        if (c->large) {
            size_t want = c->need - c->plen;
            n = SSL_read(c->ssl, c->part + c->plen, want > (size_t)INT_MAX ? INT_MAX : (int)want);
            if (n > 0) {
                c->plen += (uint32_t)n;
                if (c->plen == c->need) {
                    if (tls_echo(c, c->part, c->need) < 0) {
                        bad = 1;
                        break;
                    }
                    drop_part(c);
                }
                continue;
            }
        } else {
            n = SSL_read(c->ssl, plain + len, (int)(PLAIN_CAP - len));
            if (n > 0) {
                len += (size_t)n;
                if (PLAIN_CAP - len < TLS_RECORD_MAX && tls_consume(c, &len) < 0) {
                    bad = 1;
                    break;
                }
                continue;
            }
        }
        int e = SSL_get_error(c->ssl, n);
        if (e != SSL_ERROR_WANT_READ || lc->failed) bad = 1; /* close_notify, alert, error */
        break;
    }
    if (!bad && tls_consume(c, &len) < 0) bad = 1;
    if (!bad && len && keep_tail(c, plain, len) < 0) bad = 1;
    lc->tin = NULL;
    lc->tin_len = 0;
    tls_flush(c); /* handshake messages, echoes, or the alert before closing */
    if (bad) {
        ERR_clear_error();
        conn_close(c);
    }
}

/* ------------------------------------------------------------------ reads, accepts */

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    conn *c = (conn *)s;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    if (nread == 0) return; /* EAGAIN; a re-fronted partial is still in c->part */
    if (c->ssl) tls_burst(c, buf->base, (size_t)nread);
    else plain_burst(c, nread);
}

static void on_connection(uv_stream_t *server, int status) {
    if (status < 0) return;
    loop_ctx *lc = server->data;
    conn *c = calloc(1, sizeof *c);
    if (!c) return;
    c->lc = lc;
    uv_tcp_init(&lc->loop, &c->tcp);
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (g_ctx) {
        BIO *bio = BIO_new(g_bio_method);
        c->ssl = SSL_new(g_ctx);
        if (!bio || !c->ssl) {
            BIO_free(bio);
            ERR_clear_error();
            conn_close(c);
            return;
        }
        BIO_set_data(bio, lc);
        SSL_set_bio(c->ssl, bio, bio); /* one reference, owned by the SSL */
        SSL_set_accept_state(c->ssl);
    }
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) conn_close(c);
}

/* ------------------------------------------------------------------ loops, startup */

static void close_any(uv_handle_t *h, void *arg) {
    loop_ctx *lc = arg;
    if (uv_is_closing(h)) return;
    if (h == (uv_handle_t *)&lc->listener || h == (uv_handle_t *)&lc->stop) uv_close(h, NULL);
    else if (h->type == UV_TCP) uv_close(h, on_conn_closed);
    else uv_close(h, NULL);
}

static void on_stop(uv_async_t *a) {
    loop_ctx *lc = a->data;
    uv_walk(&lc->loop, close_any, lc);
}

static void *loop_main(void *arg) {
    loop_ctx *lc = arg;
    pthread_barrier_wait(&g_started);
    uv_run(&lc->loop, UV_RUN_DEFAULT);
    uv_loop_close(&lc->loop);
    return NULL;
}

static void die(int code, const char *fmt, const char *a, const char *b) {
    fprintf(stderr, "echo-server: ");
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    exit(code);
}

static long parse_int(const char *flag, const char *v, long lo, long hi) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (!*v || *end || errno || x < lo || x > hi) {
        fprintf(stderr, "echo-server: bad value for %s: '%s' (expected an integer %ld..%ld)\n", flag, v, lo, hi);
        exit(2);
    }
    return x;
}

static int open_listener(const struct sockaddr *sa, socklen_t salen) {
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 || bind(fd, sa, salen) != 0 ||
        listen(fd, LISTEN_BACKLOG) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

static void load_tls(const char *cert, const char *key) {
    g_ctx = SSL_CTX_new(TLS_server_method());
    if (!g_ctx) die(1, "%s%s", "SSL_CTX_new failed", "");
    SSL_CTX_set_min_proto_version(g_ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(g_ctx, SSL_MODE_RELEASE_BUFFERS);
    /* Resumption through OpenSSL's default stateless tickets (as micro-echo): they cost nothing while a
       connection is idle; the server-side cache stays off. */
    SSL_CTX_set_options(g_ctx, SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_session_cache_mode(g_ctx, SSL_SESS_CACHE_OFF);
    char reason[256];
    if (SSL_CTX_use_certificate_chain_file(g_ctx, cert) != 1) {
        ERR_error_string_n(ERR_get_error(), reason, sizeof reason);
        die(1, "cannot load --cert %s: %s", cert, reason);
    }
    if (SSL_CTX_use_PrivateKey_file(g_ctx, key, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(g_ctx) != 1) {
        ERR_error_string_n(ERR_get_error(), reason, sizeof reason);
        die(1, "cannot load --key %s: %s", key, reason);
    }
    g_bio_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "echo-server loop buffers");
    if (!g_bio_method) die(1, "%s%s", "BIO_meth_new failed", "");
    BIO_meth_set_write(g_bio_method, bio_cb_write);
    BIO_meth_set_read(g_bio_method, bio_cb_read);
    BIO_meth_set_ctrl(g_bio_method, bio_cb_ctrl);
    BIO_meth_set_create(g_bio_method, bio_cb_create);
}

int main(int argc, char **argv) {
    const char *cert = NULL, *key = NULL;
    int tls = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        char name[32];
        const char *eq = strncmp(a, "--", 2) == 0 ? strchr(a, '=') : NULL;
        if (eq && (size_t)(eq - a) < sizeof name) { /* --flag=value */
            memcpy(name, a, (size_t)(eq - a));
            name[eq - a] = 0;
            a = name;
            v = eq + 1;
        }
        int takes_value = !strcmp(a, "--host") || !strcmp(a, "--port") || !strcmp(a, "--threads") ||
                          !strcmp(a, "--cert") || !strcmp(a, "--key");
        if (takes_value && !v) {
            if (i + 1 >= argc) {
                fprintf(stderr, "echo-server: %s needs a value (see --help)\n", a);
                return 2;
            }
            v = argv[++i];
        } else if (!takes_value && v) {
            fprintf(stderr, "echo-server: %s takes no value (see --help)\n", a);
            return 2;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage_text, stdout);
            return 0;
        } else if (!strcmp(a, "--host")) g_host = v;
        else if (!strcmp(a, "--port")) g_port = (int)parse_int(a, v, 0, 65535);
        else if (!strcmp(a, "--threads")) g_threads = (int)parse_int(a, v, 1, 256);
        else if (!strcmp(a, "--cert")) cert = v;
        else if (!strcmp(a, "--key")) key = v;
        else if (!strcmp(a, "--tls")) tls = 1;
        else {
            fprintf(stderr, "echo-server: unknown argument '%s' (see --help)\n", argv[i]);
            return 2;
        }
    }
    if (tls && (!cert || !key)) {
        fprintf(stderr, "echo-server: --tls needs --cert FILE and --key FILE\n");
        return 2;
    }
    if (!tls && (cert || key)) {
        fprintf(stderr, "echo-server: --cert/--key are only used with --tls\n");
        return 2;
    }

    struct sockaddr_storage ss;
    socklen_t sslen;
    int v6 = 0;
    if (uv_ip4_addr(g_host, g_port, (struct sockaddr_in *)&ss) == 0) sslen = sizeof(struct sockaddr_in);
    else if (uv_ip6_addr(g_host, g_port, (struct sockaddr_in6 *)&ss) == 0) sslen = sizeof(struct sockaddr_in6), v6 = 1;
    else {
        fprintf(stderr, "echo-server: bad value for --host: '%s' (expected an IPv4 or IPv6 address)\n", g_host);
        return 2;
    }

    signal(SIGPIPE, SIG_IGN);
    if (tls) load_tls(cert, key);

    /* every listener exists (and is listening) before any loop runs */
    loop_ctx *lcs = calloc((size_t)g_threads, sizeof *lcs);
    if (!lcs) die(1, "%s%s", "out of memory", "");
    for (int i = 0; i < g_threads; i++) {
        int fd = open_listener((struct sockaddr *)&ss, sslen);
        if (fd < 0) {
            char port[16];
            snprintf(port, sizeof port, "%d", g_port);
            fprintf(stderr, "echo-server: cannot listen on %s port %s: %s\n", g_host, port, strerror(-fd));
            return 1;
        }
        if (i == 0) { /* --port 0: the others join the port the first one got */
            socklen_t l = sslen;
            getsockname(fd, (struct sockaddr *)&ss, &l);
            g_port = ntohs(v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port);
        }
        loop_ctx *lc = &lcs[i];
        lc->listen_fd = fd;
        lc->rbuf = malloc(tls ? TLS_CIPHER_CAP : RBUF_CAP);
        lc->plain = tls ? malloc(PLAIN_CAP) : NULL;
        if (!lc->rbuf || (tls && !lc->plain)) die(1, "%s%s", "out of memory", "");
        int r = uv_loop_init(&lc->loop);
        if (r == 0) r = uv_tcp_init(&lc->loop, &lc->listener);
        if (r == 0) r = uv_tcp_open(&lc->listener, fd);
        lc->listener.data = lc;
        if (r == 0) r = uv_listen((uv_stream_t *)&lc->listener, LISTEN_BACKLOG, on_connection);
        if (r == 0) r = uv_async_init(&lc->loop, &lc->stop, on_stop);
        if (r != 0) die(1, "libuv setup failed: %s%s", uv_strerror(r), "");
        lc->stop.data = lc;
    }

    /* loops get no signals: the main thread waits for SIGTERM/SIGINT */
    sigset_t stopset;
    sigemptyset(&stopset);
    sigaddset(&stopset, SIGTERM);
    sigaddset(&stopset, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stopset, NULL);
    pthread_barrier_init(&g_started, NULL, (unsigned)g_threads + 1);
    for (int i = 0; i < g_threads; i++) {
        if (pthread_create(&lcs[i].thread, NULL, loop_main, &lcs[i]) != 0) die(1, "%s%s", "pthread_create failed", "");
    }
    pthread_barrier_wait(&g_started);
    if (v6) printf("echo-server listening on [%s]:%d\n", g_host, g_port);
    else printf("echo-server listening on %s:%d\n", g_host, g_port);
    fflush(stdout);

    int sig = 0;
    while (sigwait(&stopset, &sig) != 0) {
    }
    for (int i = 0; i < g_threads; i++) uv_async_send(&lcs[i].stop);
    for (int i = 0; i < g_threads; i++) pthread_join(lcs[i].thread, NULL);
    return 0;
}
