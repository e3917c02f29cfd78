/*
 * Growable byte buffer. Invariant: data == NULL, or len < cap and data[len] == 0.
 */
#include "common/buf.h"

#include "rouse/err.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rouse_buf_init(rouse_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void rouse_buf_fini(rouse_buf *b)
{
    free(b->data);
    rouse_buf_init(b);
}

int rouse_buf_reserve(rouse_buf *b, size_t extra)
{
    if (extra > SIZE_MAX - 1 - b->len) return ROUSE_ENOMEM;
    size_t need = b->len + extra + 1;
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(b->data, cap);
    if (!p) return ROUSE_ENOMEM;
    b->data = p;
    b->cap = cap;
    b->data[b->len] = '\0';
    return 0;
}

int rouse_buf_append(rouse_buf *b, const void *data, size_t len)
{
    int rc = rouse_buf_reserve(b, len);
    if (rc < 0) return rc;
    if (len) memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

int rouse_buf_append_str(rouse_buf *b, const char *s)
{
    return rouse_buf_append(b, s, strlen(s));
}

int rouse_buf_append_byte(rouse_buf *b, unsigned char c)
{
    return rouse_buf_append(b, &c, 1);
}

int rouse_buf_append_u64(rouse_buf *b, uint64_t v)
{
    char tmp[20];
    size_t n = sizeof(tmp);
    do {
        tmp[--n] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return rouse_buf_append(b, tmp + n, sizeof(tmp) - n);
}

int rouse_buf_append_i64(rouse_buf *b, int64_t v)
{
    if (v >= 0) return rouse_buf_append_u64(b, (uint64_t)v);
    int rc = rouse_buf_append_byte(b, '-');
    return rc ? rc : rouse_buf_append_u64(b, 0 - (uint64_t)v);
}

int rouse_buf_vappendf(rouse_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0) return ROUSE_EINVAL;
    int rc = rouse_buf_reserve(b, (size_t)n);
    if (rc < 0) return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int rouse_buf_appendf(rouse_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = rouse_buf_vappendf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void rouse_buf_clear(rouse_buf *b)
{
    b->len = 0;
    if (b->data) b->data[0] = '\0';
}

char *rouse_buf_detach(rouse_buf *b, size_t *len)
{
    if (!b->data && rouse_buf_reserve(b, 0) < 0) return NULL;
    char *p = b->data;
    if (len) *len = b->len;
    rouse_buf_init(b);
    return p;
}
