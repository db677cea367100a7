#ifndef MICRO_COPENSSL_SHIM_H
#define MICRO_COPENSSL_SHIM_H
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/pem.h>
#include <openssl/bio.h>
#include <string.h>

// Macro-only OpenSSL APIs, as functions Swift can call.
static inline long micro_ssl_ctx_set_mode(SSL_CTX *ctx, long mode) { return SSL_CTX_set_mode(ctx, mode); }
static inline long micro_ssl_ctx_set_min_proto(SSL_CTX *ctx, int v) { return SSL_CTX_set_min_proto_version(ctx, v); }
static inline long micro_ssl_set_sni(SSL *ssl, const char *name) { return SSL_set_tlsext_host_name(ssl, name); }
static inline size_t micro_bio_pending(BIO *b) { return BIO_ctrl_pending(b); }
static inline long micro_ssl_ctx_set_session_cache_mode(SSL_CTX *ctx, long m) { return SSL_CTX_set_session_cache_mode(ctx, m); }
static inline int micro_tls1_2_version(void) { return TLS1_2_VERSION; }
static inline int micro_tls1_3_version(void) { return TLS1_3_VERSION; }
static inline long micro_mode_release_buffers(void) { return SSL_MODE_RELEASE_BUFFERS; }
static inline long micro_mode_no_auto_chain(void) { return SSL_MODE_NO_AUTO_CHAIN; }
static inline long micro_mode_partial_write(void) { return SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER; }
static inline uint64_t micro_default_options(void) {
    return SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE;
}
static inline long micro_sess_cache_client(void) { return SSL_SESS_CACHE_CLIENT; }
static inline long micro_sess_cache_server(void) { return SSL_SESS_CACHE_SERVER; }
static inline long micro_sess_cache_off(void) { return SSL_SESS_CACHE_OFF; }
static inline int micro_verify_peer(void) { return SSL_VERIFY_PEER; }
static inline int micro_verify_fail_if_no_peer_cert(void) { return SSL_VERIFY_FAIL_IF_NO_PEER_CERT; }
static inline int micro_verify_none(void) { return SSL_VERIFY_NONE; }

static inline int micro_err_reason(unsigned long e) { return ERR_GET_REASON(e); }
static inline long micro_ssl_ctx_add1_chain_cert(SSL_CTX *ctx, X509 *x) { return SSL_CTX_add1_chain_cert(ctx, x); }
static inline int micro_ssl_ctx_set_app_data(SSL_CTX *ctx, void *arg) { return SSL_CTX_set_app_data(ctx, arg); }
static inline void *micro_ssl_ctx_get_app_data(const SSL_CTX *ctx) { return SSL_CTX_get_app_data(ctx); }
static inline int micro_ssl_set_app_data(SSL *ssl, void *arg) { return SSL_set_app_data(ssl, arg); }
static inline void *micro_ssl_get_app_data(const SSL *ssl) { return SSL_get_app_data(ssl); }
static inline long micro_sess_cache_client_no_internal(void) { return SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE; }
// A storage-free BIO (one per thread, shared by every SSL on it): reads come straight from the ciphertext the
// caller just read from the socket, writes go to the caller's scratch buffer. Both are set for the length of
// one SSL call (micro_io_state); outside a call it has nothing to read and no room to write (retry), so it
// never holds per-connection bytes. SSL reads exactly what it needs (read_ahead is off), so nothing is lost.
typedef struct {
    const unsigned char *in;
    size_t in_len;
    unsigned char *out;
    size_t out_cap;
    size_t out_len;
} micro_io_state;

static inline int micro_io_read(BIO *b, char *buf, int len) {
    micro_io_state *st = (micro_io_state *)BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (len <= 0) return 0;
    if (st->in_len == 0) {
        BIO_set_retry_read(b);
        return -1;
    }
    size_t n = st->in_len < (size_t)len ? st->in_len : (size_t)len;
    memcpy(buf, st->in, n);
    st->in += n;
    st->in_len -= n;
    return (int)n;
}

static inline int micro_io_write(BIO *b, const char *buf, int len) {
    micro_io_state *st = (micro_io_state *)BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (len <= 0) return 0;
    size_t room = st->out_cap - st->out_len;
    if (room == 0) {
        BIO_set_retry_write(b);
        return -1;
    }
    size_t n = room < (size_t)len ? room : (size_t)len;
    memcpy(st->out + st->out_len, buf, n);
    st->out_len += n;
    return (int)n;
}

static inline long micro_io_ctrl(BIO *b, int cmd, long num, void *ptr) {
    (void)b; (void)num; (void)ptr;
    switch (cmd) {
    case BIO_CTRL_FLUSH: return 1;  // written bytes are already with the caller
    case BIO_CTRL_PUSH: case BIO_CTRL_POP: return 0;
    default: return 0;  // no pending bytes, no kTLS, nothing else
    }
}

// The state lives as long as the BIO (its last reference may be an SSL's).
static inline int micro_io_create(BIO *b) {
    micro_io_state *st = (micro_io_state *)OPENSSL_zalloc(sizeof(micro_io_state));
    if (st == NULL) return 0;
    BIO_set_data(b, st);
    BIO_set_init(b, 1);
    return 1;
}

static inline int micro_io_destroy(BIO *b) {
    OPENSSL_free(BIO_get_data(b));
    BIO_set_data(b, NULL);
    return 1;
}

/// The state of the micro_io BIO an SSL reads from.
static inline micro_io_state *micro_io_state_of(const SSL *ssl) { return (micro_io_state *)BIO_get_data(SSL_get_rbio(ssl)); }

/// The method of micro_io BIOs; made once per process (the caller keeps it).
static inline BIO_METHOD *micro_io_method_new(void) {
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "swift-micro io");
    if (m == NULL) return NULL;
    if (!BIO_meth_set_write(m, micro_io_write) || !BIO_meth_set_read(m, micro_io_read) ||
        !BIO_meth_set_ctrl(m, micro_io_ctrl) || !BIO_meth_set_create(m, micro_io_create) ||
        !BIO_meth_set_destroy(m, micro_io_destroy)) {
        BIO_meth_free(m);
        return NULL;
    }
    return m;
}

#endif
