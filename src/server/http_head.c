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
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
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
