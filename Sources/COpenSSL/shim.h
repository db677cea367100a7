#ifndef MICRO_COPENSSL_SHIM_H
#define MICRO_COPENSSL_SHIM_H
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/pem.h>
#include <openssl/bio.h>

// Macro-only OpenSSL APIs, as functions Swift can call.
static inline long micro_ssl_ctx_set_mode(SSL_CTX *ctx, long mode) { return SSL_CTX_set_mode(ctx, mode); }
static inline long micro_ssl_ctx_set_min_proto(SSL_CTX *ctx, int v) { return SSL_CTX_set_min_proto_version(ctx, v); }
static inline long micro_ssl_set_sni(SSL *ssl, const char *name) { return SSL_set_tlsext_host_name(ssl, name); }
static inline size_t micro_bio_pending(BIO *b) { return BIO_ctrl_pending(b); }
static inline long micro_ssl_ctx_set_session_cache_mode(SSL_CTX *ctx, long m) { return SSL_CTX_set_session_cache_mode(ctx, m); }
static inline int micro_tls1_2_version(void) { return TLS1_2_VERSION; }
static inline int micro_tls1_3_version(void) { return TLS1_3_VERSION; }
static inline long micro_mode_release_buffers(void) { return SSL_MODE_RELEASE_BUFFERS; }
static inline long micro_mode_partial_write(void) { return SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER; }
static inline uint64_t micro_default_options(void) {
    return SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE;
}
static inline long micro_sess_cache_client(void) { return SSL_SESS_CACHE_CLIENT; }
static inline long micro_sess_cache_server(void) { return SSL_SESS_CACHE_SERVER; }
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
#endif
