/*
 * Blocking HTTP/1.1 client (see http_client.h). Invariant: never reads past
 * what it buffered, and a response whose header block does not parse is an
 * error, not a guess.
 */
#include "cli/http_client.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

int http_target_parse(const char *url, http_target *out, rouse_errbuf *eb)
{
    memset(out, 0, sizeof(*out));
    const char *p = url;
    if (strncmp(p, "http://", 7) == 0)
        p += 7;
    else if (strstr(p, "://"))
        return rouse_err_set(eb, ROUSE_EINVAL, "server URL %s: only http:// is supported", url);
    size_t hl = strcspn(p, ":/");
    if (hl == 0 || hl >= sizeof(out->host))
        return rouse_err_set(eb, ROUSE_EINVAL, "server URL %s: no host", url);
    memcpy(out->host, p, hl);
    out->port = 80;
    p += hl;
    if (*p == ':') {
        char *end;
        long port = strtol(p + 1, &end, 10);
        if (end == p + 1 || port < 1 || port > 65535 || (*end && *end != '/'))
            return rouse_err_set(eb, ROUSE_EINVAL, "server URL %s: bad port", url);
        out->port = (int)port;
        p = end;
    }
    if (*p && strcmp(p, "/") != 0)
        return rouse_err_set(eb, ROUSE_EINVAL, "server URL %s: give no path", url);
    return 0;
}

void http_response_init(http_response *r)
{
    memset(r, 0, sizeof(*r));
    rouse_buf_init(&r->body);
    r->rouse_version = r->infer_json_len = -1;
    r->retry_after = -1;
}

void http_response_fini(http_response *r)
{
    rouse_buf_fini(&r->body);
}

static int connect_to(const http_target *t, int timeout_ms, int *out, rouse_errbuf *eb)
{
    char port[16];
    snprintf(port, sizeof(port), "%d", t->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
    int gai = getaddrinfo(t->host, port, &hints, &res);
    if (gai != 0)
        return rouse_err_set(eb, ROUSE_EIO, "cannot resolve %s: %s", t->host, gai_strerror(gai));
    int fd = -1, err = 0;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) continue;
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
        err = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        return rouse_err_set(eb, ROUSE_EIO, "cannot connect to %s:%d: %s", t->host, t->port,
                             strerror(err ? err : ECONNREFUSED));
    if (timeout_ms > 0) {
        struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    }
    *out = fd;
    return 0;
}

static int send_all(int fd, const void *data, size_t len, rouse_errbuf *eb)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0)
            return rouse_err_set(eb, ROUSE_EIO, "cannot send the request: %s",
                                 n < 0 ? strerror(errno) : "connection closed");
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static void parse_header(http_response *r, const char *line, size_t len)
{
    const char *colon = memchr(line, ':', len);
    if (!colon) return;
    size_t nl = (size_t)(colon - line);
    const char *v = colon + 1;
    while (v < line + len && (*v == ' ' || *v == '\t'))
        v++;
    size_t vl = (size_t)(line + len - v);
    char val[128];
    if (vl >= sizeof(val)) vl = sizeof(val) - 1;
    memcpy(val, v, vl);
    val[vl] = '\0';
#define IS(name) (nl == strlen(name) && strncasecmp(line, name, nl) == 0)
    if (IS("Content-Type"))
        snprintf(r->content_type, sizeof(r->content_type), "%s", val);
    else if (IS("X-Rouse-Version"))
        r->rouse_version = strtoll(val, NULL, 10);
    else if (IS("Inference-Header-Content-Length"))
        r->infer_json_len = strtoll(val, NULL, 10);
    else if (IS("Retry-After"))
        r->retry_after = atoi(val);
    else if (IS("Rouse-Start"))
        snprintf(r->rouse_start, sizeof(r->rouse_start), "%.15s", val);
    else if (IS("Server-Timing"))
        snprintf(r->server_timing, sizeof(r->server_timing), "%s", val);
#undef IS
}

int http_request(const http_target *t, const char *method, const char *path,
                 const char *const *extra_headers, const void *body, size_t body_len,
                 int timeout_ms, http_response *out, rouse_errbuf *eb)
{
    int fd = -1, rc;
    if ((rc = connect_to(t, timeout_ms, &fd, eb)) < 0) return rc;
    rouse_buf req, raw;
    rouse_buf_init(&req);
    rouse_buf_init(&raw);
    rouse_buf_appendf(&req, "%s %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n", method, path,
                      t->host, t->port);
    if (body || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0)
        rouse_buf_appendf(&req, "Content-Length: %zu\r\n", body_len);
    for (const char *const *h = extra_headers; h && *h; h++)
        rouse_buf_appendf(&req, "%s\r\n", *h);
    if (rouse_buf_append_str(&req, "\r\n") < 0) {
        rc = rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
        goto out_close;
    }
    if ((rc = send_all(fd, req.data, req.len, eb)) < 0) goto out_close;
    /* A server that answers early (413) may close before taking the whole
     * body: a failed send is then not the end of the story. */
    if (body_len > 0 && send_all(fd, body, body_len, eb) < 0) rouse_errbuf_clear(eb);
    for (;;) {
        if ((rc = rouse_buf_reserve(&raw, 65536)) < 0) goto out_close;
        ssize_t n = recv(fd, raw.data + raw.len, 65536, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            rc = rouse_err_set(eb, errno == EAGAIN ? ROUSE_ETIMEOUT : ROUSE_EIO,
                               "cannot read the response: %s",
                               errno == EAGAIN ? "timed out" : strerror(errno));
            goto out_close;
        }
        if (n == 0) break;
        raw.len += (size_t)n;
        raw.data[raw.len] = '\0';
    }
    const char *hdr_end = raw.data ? strstr(raw.data, "\r\n\r\n") : NULL;
    int major, minor;
    if (!hdr_end || sscanf(raw.data, "HTTP/%d.%d %d", &major, &minor, &out->status) != 3) {
        rc = rouse_err_set(eb, ROUSE_EFORMAT,
                           "the server's answer is not an HTTP response (%zu bytes)", raw.len);
        goto out_close;
    }
    const char *line = strstr(raw.data, "\r\n") + 2;
    while (line < hdr_end) {
        const char *e = strstr(line, "\r\n");
        parse_header(out, line, (size_t)(e - line));
        line = e + 2;
    }
    const char *b = hdr_end + 4;
    rouse_buf_clear(&out->body);
    rc = rouse_buf_append(&out->body, b, raw.len - (size_t)(b - raw.data));
out_close:
    close(fd);
    rouse_buf_fini(&req);
    rouse_buf_fini(&raw);
    return rc;
}
