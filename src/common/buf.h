/*
 * Growable byte buffer. data is always NUL-terminated (not counted in len) so
 * that text built with rouse_buf_appendf can be used as a C string directly.
 */
#ifndef ROUSE_COMMON_BUF_H
#define ROUSE_COMMON_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rouse_buf {
    char *data; /* NULL until the first append */
    size_t len;
    size_t cap;
} rouse_buf;

void rouse_buf_init(rouse_buf *b);
void rouse_buf_fini(rouse_buf *b);

/* Makes room for `extra` more bytes (plus the terminator); 0 or ROUSE_ENOMEM. */
int rouse_buf_reserve(rouse_buf *b, size_t extra);

int rouse_buf_append(rouse_buf *b, const void *data, size_t len);
int rouse_buf_append_str(rouse_buf *b, const char *s);
int rouse_buf_append_byte(rouse_buf *b, unsigned char c);
/* Decimal integers, without printf (for writers that run per request). */
int rouse_buf_append_u64(rouse_buf *b, uint64_t v);
int rouse_buf_append_i64(rouse_buf *b, int64_t v);
int rouse_buf_appendf(rouse_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int rouse_buf_vappendf(rouse_buf *b, const char *fmt, va_list ap);

/* Empties the buffer, keeping its memory. */
void rouse_buf_clear(rouse_buf *b);

/* Hands the memory to the caller (owned: free with free()) and empties b.
 * Returns an empty string rather than NULL for an untouched buffer, or NULL
 * when even that cannot be allocated. */
char *rouse_buf_detach(rouse_buf *b, size_t *len);

#endif
