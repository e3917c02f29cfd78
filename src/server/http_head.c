/*
 * The request-head check (see http_head.h). Rules, after RFC 9112:
 * - request line: method SP target SP "HTTP/1.0" or "HTTP/1.1" CRLF (a
 *   bare LF is accepted too); the method is 1-16 token characters, the
 *   target 1 or more visible characters and "%00" nowhere in its path;
 * - header fields: name ":" value, names of token characters;
 * - Content-Length: digits only (at most 19), and the same value when it
 *   is repeated; never beside Transfer-Encoding;
 * - Transfer-Encoding: "chunked" alone (501 for anything else: serve
 *   implements no other coding).
 * Leading empty lines before the request line are skipped (RFC 9112 2.2).
 * Sizes: the request line at most HTTP_REQUEST_LINE_MAX bytes (414), at
 * most HTTP_HEADER_FIELDS_MAX fields (431), the whole head at most
 * HTTP_HEAD_MAX (431).
 * The framing (http_frame_scan) follows a connection from head to body to
 * the next head: a Content-Length body is counted; a chunked one is parsed
 * (chunk-size lines, the CRLF after each chunk, trailer fields), with bare
 * LFs accepted as in heads. Chunk extensions are refused (400): nothing in
 * serve uses them, and libmicrohttpd and this scan could disagree about
 * where a line with one ends.
 */
#include "server/http_head.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static bool is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
        return true;
    default:
        return false;
    }
}

static void reject(http_head_check *out, int status, const char *msg)
{
    out->verdict = HTTP_HEAD_REJECT;
    out->status = status;
    snprintf(out->msg, sizeof(out->msg), "%s", msg);
}

int http_method_valid(const char *method)
{
    size_t n = strlen(method);
    if (n == 0 || n > 16) return 0;
    for (size_t i = 0; i < n; i++)
        if (!is_tchar((unsigned char)method[i])) return 0;
    return 1;
}

int http_target_has_nul(const char *target, size_t len)
{
    for (size_t i = 0; i + 2 < len && target[i] != '?'; i++)
        if (target[i] == '%' && target[i + 1] == '0' && target[i + 2] == '0') return 1;
    return 0;
}

/* The end of the line starting at p (the LF), or NULL. */
static const char *line_end(const char *p, const char *end)
{
    const char *lf = memchr(p, '\n', (size_t)(end - p));
    return lf;
}

/* [p, e) without a trailing CR and surrounding blanks. */
static void trim(const char **p, const char **e)
{
    while (*e > *p && ((*e)[-1] == '\r' || (*e)[-1] == ' ' || (*e)[-1] == '\t'))
        (*e)--;
    while (*p < *e && (**p == ' ' || **p == '\t'))
        (*p)++;
}

static bool check_request_line(const char *p, const char *e, http_head_check *out)
{
    if (e > p && e[-1] == '\r') e--;
    const char *sp1 = memchr(p, ' ', (size_t)(e - p));
    if (!sp1 || sp1 == p || sp1 - p > 16) goto bad;
    for (const char *c = p; c < sp1; c++)
        if (!is_tchar((unsigned char)*c)) goto bad;
    const char *t = sp1 + 1;
    const char *sp2 = memchr(t, ' ', (size_t)(e - t));
    if (!sp2 || sp2 == t) goto bad;
    for (const char *c = t; c < sp2; c++)
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c == 0x7f) goto bad;
    size_t vl = (size_t)(e - sp2 - 1);
    if (vl != 8 || (memcmp(sp2 + 1, "HTTP/1.1", 8) != 0 && memcmp(sp2 + 1, "HTTP/1.0", 8) != 0)) {
        if (vl >= 5 && memcmp(sp2 + 1, "HTTP/", 5) == 0) {
            reject(out, 505, "only HTTP/1.0 and HTTP/1.1 are supported");
            return false;
        }
        goto bad;
    }
    if (http_target_has_nul(t, (size_t)(sp2 - t))) {
        reject(out, 400, "the request path contains %00 (a NUL byte)");
        return false;
    }
    return true;
bad:
    reject(out, 400, "malformed request line: expected METHOD /path HTTP/1.1");
    return false;
}

void http_head_inspect(const char *buf, size_t len, http_head_check *out)
{
    memset(out, 0, sizeof(*out));
    const char *p = buf, *end = buf + len;
    while (p < end && (*p == '\r' || *p == '\n'))
        p++;
    const char *lf = line_end(p, end);
    size_t line_len = lf ? (size_t)(lf - p) - (lf > p && lf[-1] == '\r') : (size_t)(end - p);
    if (line_len > HTTP_REQUEST_LINE_MAX) {
        char msg[96];
        snprintf(msg, sizeof(msg), "the request line is longer than %d bytes",
                 HTTP_REQUEST_LINE_MAX);
        reject(out, 414, msg);
        return;
    }
    if (!lf) return;
    if (!check_request_line(p, lf, out)) return;
    int n_fields = 0;
    bool have_cl = false, have_te = false;
    uint64_t cl = 0;
    for (p = lf + 1;; p = lf + 1) {
        lf = line_end(p, end);
        if (!lf) {
            if (len > HTTP_HEAD_MAX) reject(out, 431, "the request header fields are too large");
            return;
        }
        const char *e = lf;
        if (e > p && e[-1] == '\r') e--;
        if (e == p) break; /* the empty line: end of the head */
        if (++n_fields > HTTP_HEADER_FIELDS_MAX) {
            char msg[96];
            snprintf(msg, sizeof(msg), "more than %d header fields", HTTP_HEADER_FIELDS_MAX);
            reject(out, 431, msg);
            return;
        }
        const char *colon = memchr(p, ':', (size_t)(e - p));
        bool name_ok = colon && colon > p;
        for (const char *c = p; name_ok && c < colon; c++)
            name_ok = is_tchar((unsigned char)*c);
        if (!name_ok) {
            reject(out, 400, "malformed header field: expected Name: value");
            return;
        }
        const char *v = colon + 1, *ve = e;
        trim(&v, &ve);
        size_t nl = (size_t)(colon - p);
        if (nl == 14 && strncasecmp(p, "Content-Length", 14) == 0) {
            uint64_t x = 0;
            size_t nd = (size_t)(ve - v);
            bool ok = nd > 0 && nd <= 19;
            for (const char *c = v; ok && c < ve; c++) {
                ok = *c >= '0' && *c <= '9';
                x = x * 10 + (uint64_t)(*c - '0');
            }
            if (!ok || (have_cl && x != cl)) {
                reject(out, 400, "Content-Length: not a byte count");
                return;
            }
            have_cl = true;
            cl = x;
        } else if (nl == 17 && strncasecmp(p, "Transfer-Encoding", 17) == 0) {
            if ((size_t)(ve - v) != 7 || strncasecmp(v, "chunked", 7) != 0) {
                reject(out, 501,
                       "Transfer-Encoding: only chunked is supported (no other coding, "
                       "no list of codings)");
                return;
            }
            have_te = true;
        }
        if (have_cl && have_te) {
            reject(out, 400, "Content-Length and Transfer-Encoding together");
            return;
        }
    }
    out->head_len = (size_t)(lf + 1 - buf);
    out->body_len = cl;
    out->chunked = have_te;
    out->verdict = HTTP_HEAD_OK;
}

/* --- framing: request after request on one connection --------------------- */

static size_t frame_reject(http_frame *f, size_t at, int status, const char *msg)
{
    f->cut_body = f->state != HTTP_FRAME_HEAD;
    f->state = HTTP_FRAME_REJECTED;
    f->status = status;
    snprintf(f->msg, sizeof(f->msg), "%s", msg);
    return at;
}

/* The line at p (up to its LF, a CR before it dropped): its length into
 * *n and the bytes it takes with the LF, or 0 when it is not complete. */
static size_t take_line(const char *p, size_t avail, size_t *n)
{
    size_t lim = avail < HTTP_CHUNK_LINE_MAX + 2 ? avail : HTTP_CHUNK_LINE_MAX + 2;
    const char *lf = memchr(p, '\n', lim);
    if (!lf) return 0;
    *n = (size_t)(lf - p) - (lf > p && lf[-1] == '\r');
    return (size_t)(lf - p) + 1;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

size_t http_frame_scan(http_frame *f, const char *buf, size_t len)
{
    size_t at = 0;
    while (at < len && f->state != HTTP_FRAME_REJECTED) {
        const char *p = buf + at;
        size_t avail = len - at, n, took;
        switch (f->state) {
        case HTTP_FRAME_HEAD: {
            http_head_check c;
            http_head_inspect(p, avail, &c);
            if (c.verdict == HTTP_HEAD_MORE) return at;
            if (c.verdict == HTTP_HEAD_REJECT) return frame_reject(f, at, c.status, c.msg);
            if (c.head_len > HTTP_HEAD_MAX)
                return frame_reject(f, at, 431, "the request header fields are too large");
            at += c.head_len;
            f->requests++;
            f->trailers = 0;
            f->remain = c.body_len;
            f->state = c.chunked        ? HTTP_FRAME_CHUNK_SIZE
                       : c.body_len > 0 ? HTTP_FRAME_BODY
                                        : HTTP_FRAME_HEAD;
            break;
        }
        case HTTP_FRAME_BODY:
        case HTTP_FRAME_CHUNK_DATA:
            n = avail < f->remain ? avail : (size_t)f->remain;
            at += n;
            f->remain -= n;
            if (f->remain == 0)
                f->state = f->state == HTTP_FRAME_BODY ? HTTP_FRAME_HEAD : HTTP_FRAME_CHUNK_END;
            break;
        case HTTP_FRAME_CHUNK_SIZE: {
            took = take_line(p, avail, &n);
            if (!took) {
                if (avail > HTTP_CHUNK_LINE_MAX + 1)
                    return frame_reject(f, at, 400, "chunked body: a chunk-size line too long");
                return at;
            }
            unsigned long long size = 0;
            size_t i = 0;
            for (; i < n && hex_digit(p[i]) >= 0; i++)
                size = size * 16 + (unsigned)hex_digit(p[i]);
            if (i == 0 || i > 15)
                return frame_reject(f, at, 400,
                                    "chunked body: expected a chunk size of 1 to 15 hex digits");
            if (i < n)
                return frame_reject(f, at, 400, "chunked body: chunk extensions are not supported");
            at += took;
            f->remain = size;
            f->state = size ? HTTP_FRAME_CHUNK_DATA : HTTP_FRAME_TRAILER;
            break;
        }
        case HTTP_FRAME_CHUNK_END:
            if (p[0] == '\n') {
                at += 1;
            } else if (p[0] == '\r') {
                if (avail < 2) return at;
                if (p[1] != '\n')
                    return frame_reject(f, at, 400, "chunked body: no CRLF after a chunk's data");
                at += 2;
            } else {
                return frame_reject(f, at, 400, "chunked body: no CRLF after a chunk's data");
            }
            f->state = HTTP_FRAME_CHUNK_SIZE;
            break;
        case HTTP_FRAME_TRAILER: {
            took = take_line(p, avail, &n);
            if (!took) {
                if (avail > HTTP_CHUNK_LINE_MAX + 1)
                    return frame_reject(f, at, 431, "chunked body: a trailer field too long");
                return at;
            }
            if (n == 0) {
                at += took;
                f->state = HTTP_FRAME_HEAD;
                break;
            }
            const char *colon = memchr(p, ':', n);
            bool name_ok = colon && colon > p;
            for (const char *c = p; name_ok && c < colon; c++)
                name_ok = is_tchar((unsigned char)*c);
            if (!name_ok)
                return frame_reject(f, at, 400,
                                    "chunked body: malformed trailer field: expected Name: value");
            if (++f->trailers > HTTP_HEADER_FIELDS_MAX)
                return frame_reject(f, at, 431, "chunked body: too many trailer fields");
            at += took;
            break;
        }
        case HTTP_FRAME_REJECTED:
            break;
        }
    }
    return at;
}
