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

/* The framing of a connection's byte stream, request after request: each
 * head (checked by http_head_inspect), the body its Content-Length counts,
 * or a chunked body (chunk-size lines of 1-15 hex digits without
 * extensions, chunk data, the CRLF after it, the last chunk and its
 * trailer fields). Serve reads a connection through it before
 * libmicrohttpd does (http_wire.c), so that every request of a kept-alive
 * connection, also pipelined or split across packets, is checked, and
 * libmicrohttpd only ever sees whole, acceptable heads and chunk lines. */
typedef enum http_frame_state {
    HTTP_FRAME_HEAD = 0, /* the next request's head (or nothing) */
    HTTP_FRAME_BODY,     /* remain bytes of a Content-Length body */
    HTTP_FRAME_CHUNK_SIZE,
    HTTP_FRAME_CHUNK_DATA, /* remain bytes of a chunk */
    HTTP_FRAME_CHUNK_END,  /* the CRLF after a chunk's data */
    HTTP_FRAME_TRAILER,    /* trailer fields after the last chunk */
    HTTP_FRAME_REJECTED,   /* stops here: status and msg say why */
} http_frame_state;

/* The longest chunk-size or trailer line taken (400 past it). */
#define HTTP_CHUNK_LINE_MAX 1024

typedef struct http_frame {
    http_frame_state state;
    unsigned long long remain;
    unsigned long long requests; /* heads accepted */
    int trailers;                /* trailer fields of the current body */
    int status;                  /* HTTP_FRAME_REJECTED: 400, 414, 431, 501 or 505 */
    char msg[160];
    int cut_body; /* HTTP_FRAME_REJECTED: inside a request's (chunked) body */
} http_frame;

/* Scans buf[0..len), the bytes that follow what earlier calls accepted:
 * returns how many of them are accepted (whole heads, body bytes, whole
 * chunk-size and trailer lines). The rest is an incomplete head or line,
 * to be given again with the bytes that follow it, or, once f->state is
 * HTTP_FRAME_REJECTED, the start of a request (or chunk line) that is
 * refused. Needs at most HTTP_HEAD_MAX + 1 unaccepted bytes to decide. */
size_t http_frame_scan(http_frame *f, const char *buf, size_t len);

/* True for an HTTP method: 1 to 16 token characters (RFC 9110 5.6.2). */
int http_method_valid(const char *method);

/* True when a request target's path (before any '?') holds "%00", which
 * decodes to a NUL that would silently cut the path short. */
int http_target_has_nul(const char *target, size_t len);

#endif
