/*
 * The HTTP client over libcurl (see http_client.h). One easy handle per
 * client, so that its connection stays open between requests; every option
 * a call sets is set again (or reset) by the next call, so that no call
 * inherits another's method, body or callbacks.
 */
#include "cli/http_client.h"

#include <curl/curl.h>
#include <pthread.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_CONNECT_TIMEOUT_MS 10000

struct http_client {
    CURL *curl;
    http_target target;
    char base[300];          /* scheme://host:port */
    char auth[600];          /* "Authorization: Bearer ...", or "" */
    char errtext[CURL_ERROR_SIZE];
};

static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;
static CURLcode g_curl_init_rc;

/* libcurl's global state, set up once per process and kept (it holds only
 * what its TLS library needs). */
static void curl_init_once(void)
{
    g_curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int http_target_parse(const char *url, http_target *out, rouse_errbuf *eb)
{
    memset(out, 0, sizeof(*out));
    const char *p = url;
    if (strncmp(p, "http://", 7) == 0) {
        p += 7;
    } else if (strncmp(p, "https://", 8) == 0) {
        p += 8;
        out->https = true;
    } else if (strstr(p, "://")) {
        return rouse_err_set(eb, ROUSE_EINVAL, "server URL %s: use http:// or https://", url);
    }
    size_t hl;
    if (*p == '[') { /* [IPv6]:port */
        const char *close = strchr(p, ']');
        if (!close) return rouse_err_set(eb, ROUSE_EINVAL, "server URL %s: no closing ']'", url);
        hl = (size_t)(close - p - 1);
        if (hl == 0 || hl >= sizeof(out->host))
            return rouse_err_set(eb, ROUSE_EINVAL, "server URL %s: no host", url);
        memcpy(out->host, p + 1, hl);
        p = close + 1;
    } else {
        hl = strcspn(p, ":/?#");
        if (hl == 0 || hl >= sizeof(out->host))
            return rouse_err_set(eb, ROUSE_EINVAL, "server URL %s: no host", url);
        memcpy(out->host, p, hl);
        p += hl;
    }
    out->port = out->https ? 443 : 80;
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

void http_target_url(const http_target *t, char *out, size_t cap)
{
    bool v6 = strchr(t->host, ':') != NULL;
    snprintf(out, cap, "%s://%s%s%s:%d", t->https ? "https" : "http", v6 ? "[" : "", t->host,
             v6 ? "]" : "", t->port);
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

int http_client_create(const http_target *t, const http_options *o, http_client **out,
                       rouse_errbuf *eb)
{
    pthread_once(&g_curl_once, curl_init_once);
    if (g_curl_init_rc != CURLE_OK)
        return rouse_err_set(eb, ROUSE_EIO, "libcurl: %s", curl_easy_strerror(g_curl_init_rc));
    http_client *c = calloc(1, sizeof(*c));
    if (!c) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    c->curl = curl_easy_init();
    if (!c->curl) {
        free(c);
        return rouse_err_set(eb, ROUSE_ENOMEM, "libcurl: cannot create a handle");
    }
    c->target = *t;
    http_target_url(t, c->base, sizeof(c->base));
    if (o && o->api_key && *o->api_key)
        snprintf(c->auth, sizeof(c->auth), "Authorization: Bearer %s", o->api_key);
    CURL *h = c->curl;
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->errtext);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(o && o->connect_timeout_ms > 0 ? o->connect_timeout_ms
                                                           : DEFAULT_CONNECT_TIMEOUT_MS));
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (o && o->cacert && *o->cacert) curl_easy_setopt(h, CURLOPT_CAINFO, o->cacert);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "rouse/" ROUSE_VERSION);
    *out = c;
    return 0;
}

void http_client_destroy(http_client *c)
{
    if (!c) return;
    curl_easy_cleanup(c->curl);
    free(c);
}

/* Copies a header's value, trimmed, into dst. */
static void header_value(char *dst, size_t cap, const char *v, size_t len)
{
    while (len && (*v == ' ' || *v == '\t')) {
        v++;
        len--;
    }
    while (len && (v[len - 1] == '\r' || v[len - 1] == '\n' || v[len - 1] == ' '))
        len--;
    if (len >= cap) len = cap - 1;
    memcpy(dst, v, len);
    dst[len] = '\0';
}

typedef struct xfer {
    const http_call *call;
    http_response *out;
    bool stopped; /* on_data asked to stop */
    int oom;
} xfer;

static size_t on_header(char *line, size_t size, size_t n, void *user)
{
    xfer *x = user;
    http_response *r = x->out;
    size_t len = size * n;
    /* A new status line (after a 100 Continue or a redirect) starts over. */
    if (len > 5 && strncmp(line, "HTTP/", 5) == 0) {
        r->content_type[0] = r->rouse_start[0] = r->server_timing[0] = r->location[0] = '\0';
        r->rouse_node[0] = '\0';
        r->rouse_version = r->infer_json_len = -1;
        r->retry_after = -1;
        return len;
    }
    const char *colon = memchr(line, ':', len);
    if (!colon) return len;
    size_t nl = (size_t)(colon - line);
    const char *v = colon + 1;
    size_t vl = len - nl - 1;
    char val[256];
    header_value(val, sizeof(val), v, vl);
#define IS(name) (nl == strlen(name) && strncasecmp(line, name, nl) == 0)
    if (IS("Content-Type"))
        snprintf(r->content_type, sizeof(r->content_type), "%.127s", val);
    else if (IS("X-Rouse-Version"))
        r->rouse_version = strtoll(val, NULL, 10);
    else if (IS("Inference-Header-Content-Length"))
        r->infer_json_len = strtoll(val, NULL, 10);
    else if (IS("Retry-After"))
        r->retry_after = atoi(val);
    else if (IS("Rouse-Start"))
        snprintf(r->rouse_start, sizeof(r->rouse_start), "%.15s", val);
    else if (IS("Server-Timing"))
        snprintf(r->server_timing, sizeof(r->server_timing), "%.127s", val);
    else if (IS("Rouse-Node"))
        snprintf(r->rouse_node, sizeof(r->rouse_node), "%.63s", val);
    else if (IS("Location"))
        snprintf(r->location, sizeof(r->location), "%s", val);
#undef IS
    return len;
}

static size_t on_body(char *data, size_t size, size_t n, void *user)
{
    xfer *x = user;
    size_t len = size * n;
    if (x->call->on_data) {
        if (x->call->on_data(x->call->user, data, len) != 0) {
            x->stopped = true;
            return 0; /* CURLE_WRITE_ERROR, taken as a normal end */
        }
        return len;
    }
    if (rouse_buf_append(&x->out->body, data, len) < 0) {
        x->oom = 1;
        return 0;
    }
    return len;
}

static int on_xferinfo(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dltotal;
    (void)dlnow;
    xfer *x = user;
    if (ultotal > 0) x->call->on_progress(x->call->user, (uint64_t)ulnow, (uint64_t)ultotal);
    return 0;
}

static bool mutating(const char *method)
{
    return strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0;
}

int http_client_call(http_client *c, const http_call *call, http_response *out, rouse_errbuf *eb)
{
    CURL *h = c->curl;
    char url[2048];
    if ((size_t)snprintf(url, sizeof(url), "%s%s", c->base, call->path) >= sizeof(url))
        return rouse_err_set(eb, ROUSE_EINVAL, "URL too long: %s%.64s...", c->base, call->path);
    struct curl_slist *hl = NULL, *t;
    bool have_ct = false;
    for (const char *const *p = call->headers; p && *p; p++) {
        if (strncasecmp(*p, "Content-Type:", 13) == 0) have_ct = true;
        if (!(t = curl_slist_append(hl, *p))) goto out_oom;
        hl = t;
    }
    /* libcurl would label a body form data; rouse's bodies say what they are. */
    if (!have_ct) {
        if (!(t = curl_slist_append(hl, "Content-Type:"))) goto out_oom;
        hl = t;
    }
    if (c->auth[0]) {
        if (!(t = curl_slist_append(hl, c->auth))) goto out_oom;
        hl = t;
    }

    xfer x = {.call = call, .out = out};
    rouse_buf_clear(&out->body);
    c->errtext[0] = '\0';
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, NULL);
    curl_easy_setopt(h, CURLOPT_NOBODY, 0L);
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    const char *m = call->method;
    if (strcmp(m, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (strcmp(m, "GET") == 0) {
        /* HTTPGET above */
    } else if (call->body || strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)call->body_len);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, call->body ? call->body : "");
        if (strcmp(m, "POST") != 0) curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, m);
    } else {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, m);
    }
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, mutating(m) ? 0L : 1L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(call->timeout_ms > 0 ? call->timeout_ms : 0));
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
    if (call->on_progress) {
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_xferinfo);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, &x);
    } else {
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 1L);
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, NULL);
    }
    CURLcode cc = curl_easy_perform(h);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
    curl_slist_free_all(hl);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    out->status = (int)status;
    if (x.oom) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory reading the response");
    if (cc == CURLE_WRITE_ERROR && x.stopped) cc = CURLE_OK;
    if (cc != CURLE_OK) {
        const char *why = c->errtext[0] ? c->errtext : curl_easy_strerror(cc);
        switch (cc) {
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
        case CURLE_COULDNT_CONNECT:
        {
            long os_errno = 0;
            curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &os_errno);
            out->unreachable = true;
            return rouse_err_set(eb, ROUSE_EIO, "cannot reach %s (%s)", c->base,
                                 cc == CURLE_COULDNT_CONNECT && os_errno
                                     ? strerror((int)os_errno)
                                     : curl_easy_strerror(cc));
        }
        case CURLE_OPERATION_TIMEDOUT:
            return rouse_err_set(eb, ROUSE_ETIMEOUT, "%s %s: %s", m, url, why);
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_CONNECT_ERROR:
            return rouse_err_set(eb, ROUSE_EIO, "TLS with %s failed: %s", c->base, why);
        default:
            return rouse_err_set(eb, ROUSE_EIO, "%s %s: %s", m, url, why);
        }
    }
    if (status >= 300 && status < 400 && mutating(m))
        return rouse_err_set(eb, ROUSE_ESTATE,
                             "%s %s was redirected (%ld) to %s; not repeating a %s elsewhere: "
                             "give the final URL with --server",
                             m, url, status, out->location[0] ? out->location : "?", m);
    if (!call->on_data && rouse_buf_reserve(&out->body, 1) == 0)
        out->body.data[out->body.len] = '\0';
    return 0;
out_oom:
    curl_slist_free_all(hl);
    return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
}

int http_client_request(http_client *c, const char *method, const char *path,
                        const char *const *extra_headers, const void *body, size_t body_len,
                        int timeout_ms, http_response *out, rouse_errbuf *eb)
{
    http_call call = {.method = method,
                      .path = path,
                      .headers = extra_headers,
                      .body = body,
                      .body_len = body_len,
                      .timeout_ms = timeout_ms};
    return http_client_call(c, &call, out, eb);
}

int http_request(const http_target *t, const char *method, const char *path,
                 const char *const *extra_headers, const void *body, size_t body_len,
                 int timeout_ms, http_response *out, rouse_errbuf *eb)
{
    http_client *c;
    int rc = http_client_create(t, NULL, &c, eb);
    if (rc < 0) return rc;
    rc = http_client_request(c, method, path, extra_headers, body, body_len, timeout_ms, out, eb);
    http_client_destroy(c);
    return rc;
}
