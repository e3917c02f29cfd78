/*
 * SHA-256 through OpenSSL's EVP interface: one-shot and streaming (blob uploads
 * are hashed while they stream to disk), plus the lower-case hex form used in
 * content addresses ("sha256:<64 hex>").
 */
#ifndef ROUSE_COMMON_SHA256_H
#define ROUSE_COMMON_SHA256_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ROUSE_SHA256_LEN 32
#define ROUSE_SHA256_HEX_LEN 64

typedef struct rouse_sha256 {
    void *ctx; /* EVP_MD_CTX, owned */
} rouse_sha256;

/* 0 or ROUSE_ENOMEM. */
int rouse_sha256_init(rouse_sha256 *h);
int rouse_sha256_update(rouse_sha256 *h, const void *data, size_t len);
/* Writes the digest and releases the context (fini not needed afterwards). */
int rouse_sha256_final(rouse_sha256 *h, uint8_t out[ROUSE_SHA256_LEN]);
/* Releases a context that was not finalized. Safe after final. */
void rouse_sha256_fini(rouse_sha256 *h);

/* One-shot digest. */
int rouse_sha256_digest(const void *data, size_t len, uint8_t out[ROUSE_SHA256_LEN]);

/* Lower-case hex of a digest into hex[65] (NUL-terminated). */
void rouse_sha256_hex(const uint8_t digest[ROUSE_SHA256_LEN], char hex[ROUSE_SHA256_HEX_LEN + 1]);

/* True when s is exactly 64 lower-case hex digits (what rouse_sha256_hex
 * writes). */
bool rouse_sha256_hex_valid(const char *s);

#endif
