/*
 * Callback delivery on its own thread (callback.h).
 *
 * Invariants:
 * - A delivery is on exactly one list: `todo` (waiting for its next
 *   attempt, ordered by due time only loosely: the thread picks the
 *   earliest), being sent by the thread (held in a local), or `done`.
 * - The loop only touches the lists under the lock; the thread does its
 *   HTTP outside it.
 */
#include "server/callback.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/timeutil.h"

#define MOD "callback"

typedef struct delivery {
    int64_t id;
    char *url;
    char *body;
    size_t len;
    int attempts;
    uint64_t due_ns;
    char error[256];
    struct delivery *next;
} delivery;

struct callbacks {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int efd;
    bool stop;
    delivery *todo;
    delivery *done, *done_tail;
    int n_pending;
};

static void delivery_free(delivery *d)
{
    free(d->url);
    free(d->body);
    free(d);
}

static size_t discard(char *p, size_t size, size_t n, void *user)
{
    (void)p;
    (void)user;
    return size * n;
}

/* One POST: true when the receiver answered 2xx. */
static bool post(CURL *curl, delivery *d)
{
    curl_easy_reset(curl);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(curl, CURLOPT_URL, d->url);
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, d->body);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)d->len);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)CALLBACK_TIMEOUT_MS);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
    CURLcode cc = curl_easy_perform(curl);
    long code = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(h);
    if (cc != CURLE_OK) {
        snprintf(d->error, sizeof(d->error), "%s", curl_easy_strerror(cc));
        return false;
    }
    if (code < 200 || code > 299) {
        snprintf(d->error, sizeof(d->error), "the receiver answered %ld", code);
        return false;
    }
    d->error[0] = '\0';
    return true;
}

static void finish(callbacks *c, delivery *d)
{
    d->next = NULL;
    if (c->done_tail)
        c->done_tail->next = d;
    else
        c->done = d;
    c->done_tail = d;
    uint64_t one = 1;
    if (write(c->efd, &one, sizeof(one)) < 0) {
        /* The counter cannot overflow in practice; the loop reads the list anyway. */
    }
}

static void *thread_main(void *arg)
{
    callbacks *c = arg;
    CURL *curl = curl_easy_init();
    pthread_mutex_lock(&c->lock);
    while (!c->stop) {
        /* The earliest due delivery. */
        delivery **best = NULL;
        for (delivery **pp = &c->todo; *pp; pp = &(*pp)->next)
            if (!best || (*pp)->due_ns < (*best)->due_ns) best = pp;
        if (!best) {
            pthread_cond_wait(&c->cond, &c->lock);
            continue;
        }
        uint64_t now = rouse_now_ns();
        if ((*best)->due_ns > now) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            uint64_t wait = (*best)->due_ns - now;
            ts.tv_sec += (time_t)(wait / 1000000000ull);
            ts.tv_nsec += (long)(wait % 1000000000ull);
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&c->cond, &c->lock, &ts);
            continue;
        }
        delivery *d = *best;
        *best = d->next;
        pthread_mutex_unlock(&c->lock);
        d->attempts++;
        bool ok = curl ? post(curl, d) : false;
        if (!curl) snprintf(d->error, sizeof(d->error), "libcurl did not initialize");
        pthread_mutex_lock(&c->lock);
        if (ok || d->attempts >= CALLBACK_MAX_ATTEMPTS || c->stop) {
            finish(c, d);
        } else {
            uint64_t back = (uint64_t)CALLBACK_BACKOFF_MS << (d->attempts - 1);
            d->due_ns = rouse_now_ns() + back * 1000000ull;
            d->next = c->todo;
            c->todo = d;
        }
    }
    pthread_mutex_unlock(&c->lock);
    if (curl) curl_easy_cleanup(curl);
    return NULL;
}

int callbacks_create(callbacks **out, rouse_errbuf *eb)
{
    /* Before any thread uses libcurl (its global init is not thread-safe). */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return rouse_err_set(eb, ROUSE_EIO, "libcurl did not initialize");
    callbacks *c = calloc(1, sizeof(*c));
    if (!c) {
        curl_global_cleanup();
        return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    }
    c->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (c->efd < 0) {
        free(c);
        curl_global_cleanup();
        return rouse_err_set(eb, ROUSE_EIO, "eventfd for callbacks failed");
    }
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->cond, NULL);
    if (pthread_create(&c->thread, NULL, thread_main, c) != 0) {
        pthread_cond_destroy(&c->cond);
        pthread_mutex_destroy(&c->lock);
        close(c->efd);
        free(c);
        curl_global_cleanup();
        return rouse_err_set(eb, ROUSE_EIO, "cannot start the callback thread");
    }
    *out = c;
    return 0;
}

void callbacks_destroy(callbacks *c)
{
    if (!c) return;
    pthread_mutex_lock(&c->lock);
    c->stop = true;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->lock);
    pthread_join(c->thread, NULL);
    for (delivery *l = c->todo; l;) {
        delivery *n = l->next;
        delivery_free(l);
        l = n;
    }
    for (delivery *l = c->done; l;) {
        delivery *n = l->next;
        delivery_free(l);
        l = n;
    }
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->lock);
    close(c->efd);
    free(c);
    curl_global_cleanup();
}

int callbacks_fd(const callbacks *c)
{
    return c->efd;
}

int callbacks_send(callbacks *c, int64_t id, const char *url, char *body, size_t len)
{
    delivery *d = calloc(1, sizeof(*d));
    if (!d || !(d->url = strdup(url))) {
        free(d);
        free(body);
        return ROUSE_ENOMEM;
    }
    d->id = id;
    d->body = body;
    d->len = len;
    pthread_mutex_lock(&c->lock);
    d->next = c->todo;
    c->todo = d;
    c->n_pending++;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->lock);
    return 0;
}

int callbacks_take(callbacks *c, callback_outcome *out, int max)
{
    uint64_t n;
    if (read(c->efd, &n, sizeof(n)) < 0) {
        /* Nothing signalled: the list may still hold what an earlier read left. */
    }
    int k = 0;
    pthread_mutex_lock(&c->lock);
    while (c->done && k < max) {
        delivery *d = c->done;
        c->done = d->next;
        if (!c->done) c->done_tail = NULL;
        c->n_pending--;
        out[k].id = d->id;
        out[k].delivered = d->error[0] == '\0';
        out[k].attempts = d->attempts;
        snprintf(out[k].error, sizeof(out[k].error), "%s", d->error);
        k++;
        delivery_free(d);
    }
    bool more = c->done != NULL;
    pthread_mutex_unlock(&c->lock);
    if (more) {
        uint64_t one = 1;
        if (write(c->efd, &one, sizeof(one)) < 0) {
            /* As in finish(). */
        }
    }
    return k;
}

int callbacks_pending(const callbacks *c)
{
    return c->n_pending;
}

static bool host_allowed(const char *host, size_t len, const char *allow)
{
    if (!allow) allow = "127.0.0.1,localhost,::1";
    const char *p = allow;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        while (n > 0 && p[0] == ' ')
            p++, n--;
        while (n > 0 && p[n - 1] == ' ')
            n--;
        if (n == len && strncasecmp(p, host, len) == 0) return true;
        if (!e) break;
        p = e + 1;
    }
    return false;
}

int callback_url_check(const char *url, const char *allow, rouse_errbuf *eb)
{
    const char *rest;
    if (strncasecmp(url, "http://", 7) == 0)
        rest = url + 7;
    else if (strncasecmp(url, "https://", 8) == 0)
        rest = url + 8;
    else
        return rouse_err_set(eb, ROUSE_EINVAL, "Callback-Url: only http:// and https:// URLs");
    for (const char *q = url; *q; q++)
        if ((unsigned char)*q <= ' ' || (unsigned char)*q >= 0x7f)
            return rouse_err_set(eb, ROUSE_EINVAL,
                                 "Callback-Url: spaces and control characters are not allowed");
    if (strchr(rest, '@') &&
        strchr(rest, '@') < (strchr(rest, '/') ? strchr(rest, '/') : rest + strlen(rest)))
        return rouse_err_set(eb, ROUSE_EINVAL, "Callback-Url: user information is not allowed");
    const char *host = rest, *end;
    size_t len;
    if (*host == '[') {
        end = strchr(host, ']');
        if (!end) return rouse_err_set(eb, ROUSE_EINVAL, "Callback-Url: malformed host");
        host++;
        len = (size_t)(end - host);
    } else {
        len = strcspn(host, ":/?#");
    }
    if (len == 0) return rouse_err_set(eb, ROUSE_EINVAL, "Callback-Url: no host");
    if (!host_allowed(host, len, allow))
        return rouse_err_set(eb, ROUSE_EINVAL,
                             "Callback-Url: host '%.*s' is not allowed (serve --callback-allow)",
                             (int)len, host);
    return 0;
}
