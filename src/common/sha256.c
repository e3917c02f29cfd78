/* SHA-256 over OpenSSL EVP. */
#include "common/sha256.h"

#include "rouse/err.h"

#include <openssl/evp.h>

int rouse_sha256_init(rouse_sha256 *h)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx) return ROUSE_ENOMEM;
    if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        return ROUSE_EINTERNAL;
    }
    h->ctx = ctx;
    return 0;
}

int rouse_sha256_update(rouse_sha256 *h, const void *data, size_t len)
{
    if (!h->ctx) return ROUSE_ESTATE;
    return EVP_DigestUpdate(h->ctx, data, len) == 1 ? 0 : ROUSE_EINTERNAL;
}

int rouse_sha256_final(rouse_sha256 *h, uint8_t out[ROUSE_SHA256_LEN])
{
    if (!h->ctx) return ROUSE_ESTATE;
    unsigned int n = 0;
    int ok = EVP_DigestFinal_ex(h->ctx, out, &n) == 1 && n == ROUSE_SHA256_LEN;
    rouse_sha256_fini(h);
    return ok ? 0 : ROUSE_EINTERNAL;
}

void rouse_sha256_fini(rouse_sha256 *h)
{
    EVP_MD_CTX_free(h->ctx);
    h->ctx = NULL;
}

int rouse_sha256_digest(const void *data, size_t len, uint8_t out[ROUSE_SHA256_LEN])
{
    rouse_sha256 h;
    int rc = rouse_sha256_init(&h);
    if (rc < 0) return rc;
    if ((rc = rouse_sha256_update(&h, data, len)) < 0) {
        rouse_sha256_fini(&h);
        return rc;
    }
    return rouse_sha256_final(&h, out);
}

void rouse_sha256_hex(const uint8_t digest[ROUSE_SHA256_LEN], char hex[ROUSE_SHA256_HEX_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < ROUSE_SHA256_LEN; i++) {
        hex[2 * i] = digits[digest[i] >> 4];
        hex[2 * i + 1] = digits[digest[i] & 15];
    }
    hex[ROUSE_SHA256_HEX_LEN] = '\0';
}

bool rouse_sha256_hex_valid(const char *s)
{
    if (!s) return false;
    for (int i = 0; i < ROUSE_SHA256_HEX_LEN; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
    return s[ROUSE_SHA256_HEX_LEN] == '\0';
}
