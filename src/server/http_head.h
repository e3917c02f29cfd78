/*
 * A check of an HTTP/1.x request head (request line and header fields) as
 * it arrives on a new connection, before libmicrohttpd reads it: the cases
 * where libmicrohttpd would answer with an HTML page (twice over for a
 * malformed Content-Length) or not at all (a garbage request line, an
 * unsupported Transfer-Encoding) are answered by serve instead, as JSON
 * errors (http_gate.c). A pure function over bytes: fuzzed by
 * fuzz/http_head.c, tested from a table.
 */
#ifndef ROUSE_SERVER_HTTP_HEAD_H
#define ROUSE_SERVER_HTTP_HEAD_H

#include <stddef.h>

/* The largest request head serve takes (libmicrohttpd's own buffer holds
 * about twice that); a longer one is answered 431. */
#define HTTP_HEAD_MAX 16384
/* The longest request line (method, target, version; 414 past it) and the
 * most header fields a head may have (431 past it). */
#define HTTP_REQUEST_LINE_MAX 8192
#define HTTP_HEADER_FIELDS_MAX 100

typedef enum http_head_verdict {
    HTTP_HEAD_MORE = 0, /* no complete head yet, and nothing wrong so far */
    HTTP_HEAD_OK,       /* complete and acceptable: libmicrohttpd takes it */
    HTTP_HEAD_REJECT,   /* answer status with msg, then close */
} http_head_verdict;

typedef struct http_head_check {
    http_head_verdict verdict;
    int status;      /* HTTP_HEAD_REJECT: 400, 414, 431, 501 or 505 */
    char msg[160];   /* HTTP_HEAD_REJECT: the error sentence */
    size_t head_len; /* HTTP_HEAD_OK / REJECT: bytes of the head, when complete */
    /* HTTP_HEAD_OK: the body that follows the head on the wire:
     * Content-Length (0 without one), or chunked (length unknown here). */
    unsigned long long body_len;
    int chunked;
} http_head_check;

/* Checks buf[0..len), the first bytes of a connection or of a later
 * request on it. */
void http_head_inspect(const char *buf, size_t len, http_head_check *out);

/* True for an HTTP method: 1 to 16 token characters (RFC 9110 5.6.2). */
int http_method_valid(const char *method);

/* True when a request target's path (before any '?') holds "%00", which
 * decodes to a NUL that would silently cut the path short. */
int http_target_has_nul(const char *target, size_t len);

#endif
