/*
 * Text formatting for the request path, without printf: copying a string
 * into a fixed array and writing integers in decimal or hex. snprintf
 * spends about a thousand instructions per call on parsing its format;
 * serve formats a handful of fields per request (headers, timings, ids).
 */
#ifndef ROUSE_COMMON_FMT_H
#define ROUSE_COMMON_FMT_H

#include <stddef.h>
#include <stdint.h>

/* Copies src into dst[cap] (cap > 0), cut to cap - 1 bytes, NUL-terminated
 * as snprintf(dst, cap, "%s", src) does; the length copied. */
size_t fmt_copy(char *dst, size_t cap, const char *src);

/* Writes v in decimal at p (at most 20 bytes, no NUL); the end. */
char *fmt_u64(char *p, uint64_t v);
/* The same for a signed value (at most 20 bytes). */
char *fmt_i64(char *p, int64_t v);
/* Writes v as exactly `digits` lower-case hex digits (the low ones) at p;
 * the end. */
char *fmt_hex(char *p, uint64_t v, int digits);
/* Writes us microseconds as milliseconds with three decimals ("12.345");
 * the end (at most 24 bytes). */
char *fmt_ms3(char *p, uint64_t us);

#endif
