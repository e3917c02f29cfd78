/*
 * S3 addressing, credentials and error documents (blob_s3.h).
 */
#include "store/blob_s3.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/blob.h"

/* S3's rule for bucket names: 3 to 63 of a-z, 0-9, '.' and '-', starting
 * and ending with a letter or digit. */
static bool bucket_valid(const char *b, size_t n)
{
    if (n < 3 || n > 63) return false;
    for (size_t i = 0; i < n; i++) {
        char c = b[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && c != '.' && c != '-') return false;
        if ((i == 0 || i == n - 1) && !alnum) return false;
    }
    return true;
}

/* Characters a prefix may hold: those that need no escaping in a URL path
 * nor in SigV4's canonical URI. */
static bool prefix_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '-' || c == '_' || c == '/';
}

static bool region_valid(const char *r)
{
    size_t n = strlen(r);
    if (n == 0 || n > 32) return false;
    for (size_t i = 0; i < n; i++)
        if (!((r[i] >= 'a' && r[i] <= 'z') || (r[i] >= '0' && r[i] <= '9') || r[i] == '-'))
            return false;
    return true;
}

int blob_s3_parse(const char *url, const char *endpoint, const char *region, blob_s3 *out,
                  rouse_errbuf *eb)
{
    memset(out, 0, sizeof(*out));
    if (!url || strncmp(url, "s3://", 5) != 0)
        return rouse_err_set(eb, ROUSE_EINVAL, "--blobs: expected s3://BUCKET[/PREFIX]");
    const char *b = url + 5;
    size_t bn = strcspn(b, "/");
    if (!bucket_valid(b, bn))
        return rouse_err_set(eb, ROUSE_EINVAL,
                             "--blobs: '%.*s' is not a bucket name (3 to 63 of a-z, 0-9, '.' "
                             "and '-')",
                             (int)(bn < 80 ? bn : 80), b);
    memcpy(out->bucket, b, bn);
    const char *p = b + bn;
    while (*p == '/')
        p++;
    size_t pn = strlen(p);
    while (pn > 0 && p[pn - 1] == '/')
        pn--;
    if (pn >= sizeof(out->prefix))
        return rouse_err_set(eb, ROUSE_EINVAL, "--blobs: the prefix is longer than %zu bytes",
                             sizeof(out->prefix) - 1);
    for (size_t i = 0; i < pn; i++)
        if (!prefix_char(p[i]) || (p[i] == '/' && p[i + 1] == '/'))
            return rouse_err_set(eb, ROUSE_EINVAL,
                                 "--blobs: the prefix may hold a-z, A-Z, 0-9, '.', '-', '_' "
                                 "and single '/' only");
    memcpy(out->prefix, p, pn);

    if (!region || !*region) region = getenv("AWS_REGION");
    if (!region || !*region) region = "us-east-1";
    if (!region_valid(region))
        return rouse_err_set(eb, ROUSE_EINVAL, "--s3-region: '%.40s' is not a region name",
                             region);
    snprintf(out->region, sizeof(out->region), "%s", region);
    snprintf(out->sigv4, sizeof(out->sigv4), "aws:amz:%s:s3", region);

    int n;
    if (endpoint && *endpoint) {
        size_t en = strlen(endpoint);
        while (en > 0 && endpoint[en - 1] == '/')
            en--;
        n = snprintf(out->base, sizeof(out->base), "%.*s/%s/", (int)en, endpoint, out->bucket);
    } else {
        n = snprintf(out->base, sizeof(out->base), "https://%s.s3.%s.amazonaws.com/",
                     out->bucket, region);
    }
    if (n < 0 || (size_t)n >= sizeof(out->base))
        return rouse_err_set(eb, ROUSE_EINVAL, "--s3-endpoint: the URL is too long");

    const char *ak = getenv("AWS_ACCESS_KEY_ID"), *sk = getenv("AWS_SECRET_ACCESS_KEY");
    if (!ak || !*ak || !sk || !*sk)
        return rouse_err_set(eb, ROUSE_EINVAL,
                             "--blobs s3://: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                             "(the bucket's credentials)");
    if (strchr(ak, ':'))
        return rouse_err_set(eb, ROUSE_EINVAL, "AWS_ACCESS_KEY_ID may not contain ':'");
    n = snprintf(out->userpwd, sizeof(out->userpwd), "%s:%s", ak, sk);
    if (n < 0 || (size_t)n >= sizeof(out->userpwd))
        return rouse_err_set(eb, ROUSE_EINVAL, "the AWS credentials are too long");
    const char *tok = getenv("AWS_SESSION_TOKEN");
    if (tok && *tok) {
        n = snprintf(out->token, sizeof(out->token), "%s", tok);
        if (n < 0 || (size_t)n >= sizeof(out->token) || strpbrk(tok, "\r\n"))
            return rouse_err_set(eb, ROUSE_EINVAL, "AWS_SESSION_TOKEN is too long or malformed");
    }
    return 0;
}

int blob_s3_object_url(const blob_s3 *s, const char *digest, char *out, size_t cap)
{
    if (!blob_digest_valid(digest)) return ROUSE_EINVAL;
    const char *hex = digest + 7;
    int n = snprintf(out, cap, "%s%s%ssha256/%s", s->base, s->prefix, s->prefix[0] ? "/" : "",
                     hex);
    return n < 0 || (size_t)n >= cap ? ROUSE_ERANGE : 0;
}

void blob_s3_describe(const blob_s3 *s, char *out, size_t cap)
{
    snprintf(out, cap, "s3://%s%s%s", s->bucket, s->prefix[0] ? "/" : "", s->prefix);
}

/* The text of the first <tag>...</tag> of body, or NULL; *n its length. */
static const char *element(const char *body, size_t len, const char *tag, size_t *n)
{
    char open[24], close[24];
    int on = snprintf(open, sizeof(open), "<%s>", tag);
    int cn = snprintf(close, sizeof(close), "</%s>", tag);
    for (size_t i = 0; i + (size_t)on <= len; i++) {
        if (memcmp(body + i, open, (size_t)on) != 0) continue;
        const char *start = body + i + on;
        size_t rest = len - i - (size_t)on;
        for (size_t j = 0; j + (size_t)cn <= rest; j++)
            if (memcmp(start + j, close, (size_t)cn) == 0) {
                *n = j;
                return start;
            }
        return NULL;
    }
    return NULL;
}

/* Appends n bytes of s to out[*at] (printable ASCII kept, the rest '?'). */
static void put(char *out, size_t cap, size_t *at, const char *s, size_t n)
{
    for (size_t i = 0; i < n && *at + 1 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        out[(*at)++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    out[*at] = '\0';
}

void blob_s3_error_text(const char *body, size_t len, char *out, size_t cap)
{
    if (cap == 0) return;
    out[0] = '\0';
    if (!body) return;
    size_t cn = 0, mn = 0, at = 0;
    const char *code = element(body, len, "Code", &cn);
    const char *msg = element(body, len, "Message", &mn);
    if (code) put(out, cap, &at, code, cn);
    if (code && msg) put(out, cap, &at, ": ", 2);
    if (msg) put(out, cap, &at, msg, mn);
}
