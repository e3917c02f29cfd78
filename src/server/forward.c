/*
 * The forwarder (forward.h): a libcurl multi handle on a thread of its
 * own. Sends wait in a list until the thread wakes (curl_multi_wakeup);
 * finished transfers go to a done list and the loop is told through an
 * eventfd.
 *
 * Whether a failed call may have started at the peer: it may not when
 * the connection never came up (refused, unreachable, connect timeout);
 * once the request was sent it may, and is never tried again elsewhere.
 */
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"
#include "server/forward.h"

#define MOD "forward"

typedef struct xfer {
    struct xfer *next;
    CURL *easy;
    struct curl_slist *headers;
    char *url;
    char *body;
    size_t len;
    bool get;
    rouse_buf reply;
    bool too_big;
    forward_result res;
} xfer;

struct forwarder {
    char extra_ca[4096];
    bool have_extra_ca;
    int efd;
    pthread_t thread;
    pthread_mutex_t lock;
    bool stop;
    CURLM *multi;
    xfer *todo, *todo_tail; /* sent by the loop, not yet in the multi handle */
    xfer *done, *done_tail; /* finished, not yet taken */
    int n_pending;          /* sent and not taken */
    xfer *running;          /* the thread's */
};

static void xfer_free(xfer *x)
{
    if (!x) return;
    if (x->easy) curl_easy_cleanup(x->easy);
    curl_slist_free_all(x->headers);
    free(x->url);
    free(x->body);
    rouse_buf_fini(&x->reply);
    free(x->res.body);
    free(x);
}

static size_t on_body(char *p, size_t size, size_t n, void *user)
{
    xfer *x = user;
    size_t len = size * n;
    if (x->reply.len + len > FORWARD_REPLY_MAX) {
        x->too_big = true;
        return 0; /* aborts the transfer */
    }
    return rouse_buf_append(&x->reply, p, len) == 0 ? len : 0;
}

/* Copies the value of header line h (without CRLF) into out when it is
 * named name. */
static bool header_value(const char *h, size_t len, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    if (len <= nl || h[nl] != ':' || strncasecmp(h, name, nl) != 0) return false;
    const char *v = h + nl + 1;
    const char *end = h + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    size_t vl = (size_t)(end - v);
    if (vl >= cap) vl = cap - 1;
    memcpy(out, v, vl);
    out[vl] = '\0';
    return true;
}

static size_t on_header(char *h, size_t size, size_t n, void *user)
{
    xfer *x = user;
    size_t len = size * n;
    forward_result *r = &x->res;
    char num[32];
    if (len >= 5 && strncmp(h, "HTTP/", 5) == 0) {
        /* A new response (after a 100 Continue): start over. */
        r->content_type[0] = r->timing[0] = r->node[0] = r->request_id[0] = r->start[0] = '\0';
        r->version = 0;
        r->json_len = -1;
        r->retry_after = 0;
        return len;
    }
    if (header_value(h, len, "Content-Type", r->content_type, sizeof(r->content_type)) ||
        header_value(h, len, "Server-Timing", r->timing, sizeof(r->timing)) ||
        header_value(h, len, "Rouse-Node", r->node, sizeof(r->node)) ||
        header_value(h, len, "X-Request-Id", r->request_id, sizeof(r->request_id)) ||
        header_value(h, len, "Rouse-Start", r->start, sizeof(r->start)))
        return len;
    if (header_value(h, len, "X-Rouse-Version", num, sizeof(num)))
        r->version = strtoll(num, NULL, 10);
    else if (header_value(h, len, "Inference-Header-Content-Length", num, sizeof(num)))
        r->json_len = strtoll(num, NULL, 10);
    else if (header_value(h, len, "Retry-After", num, sizeof(num)))
        r->retry_after = atoi(num);
    return len;
}

static void wake_loop(forwarder *f)
{
    uint64_t one = 1;
    if (write(f->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        LOG_WARN(MOD, "eventfd write: %s", strerror(errno));
}

static void finish(forwarder *f, xfer *x)
{
    pthread_mutex_lock(&f->lock);
    x->next = NULL;
    if (f->done_tail)
        f->done_tail->next = x;
    else
        f->done = x;
    f->done_tail = x;
    pthread_mutex_unlock(&f->lock);
    wake_loop(f);
}

static bool xfer_setup(forwarder *f, xfer *x)
{
    x->easy = curl_easy_init();
    if (!x->easy) return false;
    CURL *e = x->easy;
    curl_easy_setopt(e, CURLOPT_URL, x->url);
    if (x->get) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body ? x->body : "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->len);
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)FORWARD_CONNECT_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 5L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 2L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    if (f->have_extra_ca) {
        /* The extra file and the system's directory both: a CAINFO of our
         * own would otherwise replace the system's bundle. */
        curl_easy_setopt(e, CURLOPT_CAINFO, f->extra_ca);
        curl_easy_setopt(e, CURLOPT_CAPATH, "/etc/ssl/certs");
    }
    return true;
}

static void on_finished(forwarder *f, CURL *e, CURLcode cc)
{
    xfer *x = NULL;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&x);
    curl_multi_remove_handle(f->multi, e);
    for (xfer **pp = &f->running; *pp; pp = &(*pp)->next)
        if (*pp == x) {
            *pp = x->next;
            break;
        }
    forward_result *r = &x->res;
    long code = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
    if (cc == CURLE_OK && code > 0) {
        r->status = (int)code;
        r->started = true;
        r->body = rouse_buf_detach(&x->reply, &r->len);
    } else {
        long sent = 0;
        curl_easy_getinfo(e, CURLINFO_REQUEST_SIZE, &sent);
        r->status = 0;
        r->started = sent > 0 && cc != CURLE_COULDNT_CONNECT && cc != CURLE_COULDNT_RESOLVE_HOST;
        if (x->too_big)
            snprintf(r->error, sizeof(r->error), "its reply exceeds %llu bytes",
                     (unsigned long long)FORWARD_REPLY_MAX);
        else
            snprintf(r->error, sizeof(r->error), "%s", curl_easy_strerror(cc));
    }
    curl_easy_cleanup(e);
    x->easy = NULL;
    finish(f, x);
}

static void *thread_main(void *arg)
{
    forwarder *f = arg;
    for (;;) {
        pthread_mutex_lock(&f->lock);
        bool stop = f->stop;
        xfer *todo = f->todo;
        f->todo = f->todo_tail = NULL;
        pthread_mutex_unlock(&f->lock);
        if (stop) {
            /* Dropped: the loop takes nothing any more. */
            while (todo) {
                xfer *next = todo->next;
                xfer_free(todo);
                todo = next;
            }
            break;
        }
        while (todo) {
            xfer *x = todo;
            todo = x->next;
            if (!xfer_setup(f, x) || curl_multi_add_handle(f->multi, x->easy) != CURLM_OK) {
                snprintf(x->res.error, sizeof(x->res.error), "libcurl: cannot start a transfer");
                finish(f, x);
                continue;
            }
            x->next = f->running;
            f->running = x;
        }
        int still = 0;
        curl_multi_perform(f->multi, &still);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(f->multi, &left)))
            if (m->msg == CURLMSG_DONE) on_finished(f, m->easy_handle, m->data.result);
        curl_multi_poll(f->multi, NULL, 0, 1000, NULL);
    }
    while (f->running) {
        xfer *x = f->running;
        f->running = x->next;
        curl_multi_remove_handle(f->multi, x->easy);
        xfer_free(x);
    }
    return NULL;
}

int forward_create(const char *extra_ca, forwarder **out, rouse_errbuf *eb)
{
    forwarder *f = calloc(1, sizeof(*f));
    if (!f) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    if (extra_ca) {
        if (strlen(extra_ca) >= sizeof(f->extra_ca)) {
            free(f);
            return rouse_err_set(eb, ROUSE_EINVAL, "certificate path too long");
        }
        snprintf(f->extra_ca, sizeof(f->extra_ca), "%s", extra_ca);
        f->have_extra_ca = true;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    f->multi = curl_multi_init();
    f->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (!f->multi || f->efd < 0) {
        if (f->multi) curl_multi_cleanup(f->multi);
        if (f->efd >= 0) close(f->efd);
        curl_global_cleanup();
        free(f);
        return rouse_err_set(eb, ROUSE_EIO, "the forwarder: cannot create its libcurl handle");
    }
    pthread_mutex_init(&f->lock, NULL);
    if (pthread_create(&f->thread, NULL, thread_main, f) != 0) {
        pthread_mutex_destroy(&f->lock);
        curl_multi_cleanup(f->multi);
        close(f->efd);
        curl_global_cleanup();
        free(f);
        return rouse_err_set(eb, ROUSE_EIO, "cannot start the forwarder's thread");
    }
    *out = f;
    return 0;
}

void forward_destroy(forwarder *f)
{
    if (!f) return;
    pthread_mutex_lock(&f->lock);
    f->stop = true;
    pthread_mutex_unlock(&f->lock);
    curl_multi_wakeup(f->multi);
    pthread_join(f->thread, NULL);
    while (f->done) {
        xfer *x = f->done;
        f->done = x->next;
        xfer_free(x);
    }
    curl_multi_cleanup(f->multi);
    pthread_mutex_destroy(&f->lock);
    close(f->efd);
    curl_global_cleanup();
    free(f);
}

int forward_fd(const forwarder *f)
{
    return f->efd;
}

int forward_send(forwarder *f, forward_send_req *rq)
{
    xfer *x = calloc(1, sizeof(*x));
    if (!x) {
        free(rq->body);
        rq->body = NULL;
        return ROUSE_ENOMEM;
    }
    rouse_buf_init(&x->reply);
    x->body = rq->body;
    x->len = rq->len;
    x->get = rq->get;
    rq->body = NULL;
    x->res.id = rq->id;
    x->res.json_len = -1;
    x->url = strdup(rq->url);
    bool ok = x->url != NULL;
    /* No Expect: 100-continue round trip before the body. */
    struct curl_slist *h = curl_slist_append(NULL, "Expect:");
    ok = ok && h;
    for (int i = 0; ok && i < FORWARD_HEADERS_MAX && rq->headers[i]; i++) {
        struct curl_slist *n = curl_slist_append(h, rq->headers[i]);
        if (!n) ok = false;
        else h = n;
    }
    x->headers = h;
    if (!ok) {
        xfer_free(x);
        return ROUSE_ENOMEM;
    }
    pthread_mutex_lock(&f->lock);
    if (f->todo_tail)
        f->todo_tail->next = x;
    else
        f->todo = x;
    f->todo_tail = x;
    f->n_pending++;
    pthread_mutex_unlock(&f->lock);
    curl_multi_wakeup(f->multi);
    return 0;
}

int forward_take(forwarder *f, forward_result *out, int max)
{
    uint64_t n;
    if (read(f->efd, &n, sizeof(n)) < 0 && errno != EAGAIN)
        LOG_WARN(MOD, "eventfd read: %s", strerror(errno));
    int k = 0;
    pthread_mutex_lock(&f->lock);
    while (k < max && f->done) {
        xfer *x = f->done;
        f->done = x->next;
        if (!f->done) f->done_tail = NULL;
        out[k++] = x->res;
        x->res.body = NULL;
        f->n_pending--;
        xfer_free(x);
    }
    bool more = f->done != NULL;
    pthread_mutex_unlock(&f->lock);
    if (more) wake_loop(f); /* the rest on the next round */
    return k;
}

int forward_pending(const forwarder *f)
{
    forwarder *m = (forwarder *)f;
    pthread_mutex_lock(&m->lock);
    int n = m->n_pending;
    pthread_mutex_unlock(&m->lock);
    return n;
}
