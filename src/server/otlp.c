/*
 * The OTLP/HTTP JSON exporter (otlp.h).
 *
 * Invariants: only the loop pushes and only the exporter thread pops;
 * `dropped` is the sum of the spans of records the loop could not queue
 * (counted by the loop) and of batches that failed (counted by the
 * thread), both atomic adds; the libcurl handle belongs to the thread.
 */
#include "server/otlp.h"

#include <assert.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/json.h"
#include "common/log.h"
#include "common/spsc.h"

#define MOD "otlp"
#define QUEUE_SLOTS 4096u
/* Records per POST: each POST costs both sides a request's parsing and
 * the system calls of its exchange, so fewer and larger ones (about 600 KB
 * of JSON at 512) cost less per span. */
#define BATCH_MAX 512
/* A partial batch waits at most this long. Each POST costs the collector
 * (and this thread) about as much as a full one: at a low rate of traced
 * calls the interval decides how many POSTs there are. OpenTelemetry's
 * SDKs wait 5 s. */
#define FLUSH_MS 1000
#define CONNECT_TIMEOUT_MS 1000L
#define REQUEST_TIMEOUT_MS 3000L

struct otlp_exporter {
    spsc q;
    char *url;
    int efd;
    pthread_t thread;
    _Atomic bool stop, kicked;
    _Atomic uint64_t exported, dropped;
    bool warned; /* the thread said once that the collector fails */
};

/* --- encoding --------------------------------------------------------------- */

int otlp_span_count(const otlp_record *r)
{
    if (!r->submitted) return 1; /* request */
    int n = 3;                   /* request, queue_wait, inference */
    if (r->inv.start_us > 0) n++;
    if (r->inv.start_us > 0 && r->have_phases) n += r->from_zero ? 4 : 1;
    return n;
}

/* The encoder runs per span on the exporter's thread: what is the same for
 * all spans of a record (the trace id, the function's attribute, its
 * version) is made once per record, and each span is written through a
 * cursor into room reserved for its bound, with hand-made integers and no
 * printf, no length checks per field. */
#define REC_HEAD_MAX (sizeof("{\"traceId\":\"\",\"spanId\":\"") + TRACE_ID_HEX)
/* The function attribute: its JSON string is at most 6 bytes per byte. */
#define REC_ATTRS_MAX (160 + 6 * STORE_NAME_MAX + 64)
/* A span besides its record's attributes and the tracestate. */
#define SPAN_FIXED_MAX 512

typedef struct span_out {
    rouse_buf *b;
    const otlp_record *r;
    bool first;
    int64_t base_us; /* arrival, Unix µs */
    trace_rng *rng;
    char head[REC_HEAD_MAX]; /* {"traceId":"...","spanId":" */
    size_t head_len;
    char attrs[REC_ATTRS_MAX]; /* ,"attributes":[{function}{version} (no closing ']') */
    size_t attrs_len;
    rouse_buf state; /* the tracestate as a JSON string, or empty */
} span_out;

static char *cpy(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}
#define LIT(p, s) cpy((p), (s), sizeof(s) - 1)

/* Two digits at a time: half the divisions of one at a time (a span's
 * times are 16 digits each). */
static const char digit_pairs[] = "00010203040506070809101112131415161718192021222324"
                                  "25262728293031323334353637383940414243444546474849"
                                  "50515253545556575859606162636465666768697071727374"
                                  "75767778798081828384858687888990919293949596979899";

static char *put_i64(char *p, int64_t v)
{
    char tmp[24];
    int n = sizeof(tmp);
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    while (u >= 100) {
        n -= 2;
        memcpy(tmp + n, digit_pairs + (u % 100) * 2, 2);
        u /= 100;
    }
    if (u >= 10) {
        n -= 2;
        memcpy(tmp + n, digit_pairs + u * 2, 2);
    } else {
        tmp[--n] = (char)('0' + u);
    }
    if (v < 0) tmp[--n] = '-';
    return cpy(p, tmp + n, sizeof(tmp) - (size_t)n);
}

/* A time in µs as ns: its digits and "000" (times are whole µs). */
static char *put_us_as_ns(char *p, int64_t us)
{
    p = put_i64(p, us);
    return us != 0 ? LIT(p, "000") : p;
}

static char *attr_int(char *p, const char *key, size_t key_len, int64_t v)
{
    p = LIT(p, ",{\"key\":\"");
    p = cpy(p, key, key_len);
    p = LIT(p, "\",\"value\":{\"intValue\":\"");
    p = put_i64(p, v);
    return LIT(p, "\"}}");
}
#define ATTR_INT(p, key, v) attr_int((p), (key), sizeof(key) - 1, (v))

/* A string attribute whose value needs no escaping (hex digits, names of
 * our own). */
static char *attr_plain(char *p, const char *key, size_t key_len, const char *v)
{
    p = LIT(p, ",{\"key\":\"");
    p = cpy(p, key, key_len);
    p = LIT(p, "\",\"value\":{\"stringValue\":\"");
    p = cpy(p, v, strlen(v));
    return LIT(p, "\"}}");
}
#define ATTR_PLAIN(p, key, v) attr_plain((p), (key), sizeof(key) - 1, (v))

/* What the spans of o->r share: their head and attributes, and the
 * tracestate's JSON. */
static int record_begin(span_out *o)
{
    const otlp_record *r = o->r;
    char *p = LIT(o->head, "{\"traceId\":\"");
    p = cpy(p, r->ctx.trace_id, TRACE_ID_HEX);
    p = LIT(p, "\",\"spanId\":\"");
    o->head_len = (size_t)(p - o->head);
    rouse_buf_clear(&o->state);
    /* The function's name as a JSON string: escaped by the JSON writer
     * (into the state buffer first, then moved). */
    int rc = json_write_string(&o->state, r->inv.function, strlen(r->inv.function));
    if (rc < 0) return rc;
    if (o->state.len > 6 * STORE_NAME_MAX + 2) return ROUSE_ERANGE; /* cannot happen */
    p = LIT(o->attrs, ",\"attributes\":[{\"key\":\"rouse.function\",\"value\":{\"stringValue\":");
    p = cpy(p, o->state.data, o->state.len);
    p = LIT(p, "}}");
    if (r->inv.version > 0) p = ATTR_INT(p, "rouse.version", r->inv.version);
    o->attrs_len = (size_t)(p - o->attrs);
    rouse_buf_clear(&o->state);
    if (r->ctx.state[0]) rc = json_write_string(&o->state, r->ctx.state, strlen(r->ctx.state));
    return rc;
}

/* One span from offset `from_us` after arrival, lasting dur_us. */
static int span(span_out *o, const char *name, const char *span_id, const char *parent, int kind,
                uint64_t from_us, uint64_t dur_us, bool request)
{
    const otlp_record *r = o->r;
    size_t bound = SPAN_FIXED_MAX + o->head_len + o->attrs_len + (request ? o->state.len : 0);
    int rc = rouse_buf_reserve(o->b, bound);
    if (rc < 0) return rc;
    char *p0 = o->b->data + o->b->len, *p = p0;
    int64_t start = o->base_us + (int64_t)from_us;
    if (!o->first) *p++ = ',';
    o->first = false;
    p = cpy(p, o->head, o->head_len);
    p = cpy(p, span_id, SPAN_ID_HEX);
    p = LIT(p, "\",\"parentSpanId\":\"");
    p = cpy(p, parent, strnlen(parent, SPAN_ID_HEX));
    p = LIT(p, "\",\"name\":\"");
    p = cpy(p, name, strlen(name));
    p = LIT(p, "\",\"kind\":");
    *p++ = (char)('0' + kind);
    p = LIT(p, ",\"startTimeUnixNano\":\"");
    p = put_us_as_ns(p, start);
    p = LIT(p, "\",\"endTimeUnixNano\":\"");
    p = put_us_as_ns(p, start + (int64_t)dur_us);
    *p++ = '"';
    if (request && o->state.len) {
        p = LIT(p, ",\"traceState\":");
        p = cpy(p, o->state.data, o->state.len);
    }
    p = cpy(p, o->attrs, o->attrs_len);
    if (request) {
        p = ATTR_PLAIN(p, "rouse.request_id", r->inv.request_id); /* hex digits */
        p = ATTR_INT(p, "http.response.status_code", r->inv.status);
        if (r->inv.start != INV_START_NONE)
            p = ATTR_PLAIN(p, "rouse.start", inv_start_name(r->inv.start));
    }
    if (request && r->inv.status >= 500)
        p = LIT(p, "],\"status\":{\"code\":2}}");
    else
        p = LIT(p, "],\"status\":{\"code\":0}}");
    assert((size_t)(p - p0) <= bound);
    o->b->len += (size_t)(p - p0);
    o->b->data[o->b->len] = '\0';
    return 0;
}

/* The spans of one record (see the top of otlp.h). */
static int encode_record(span_out *o)
{
    const otlp_record *r = o->r;
    const invocation *inv = &r->inv;
    char qid[SPAN_ID_HEX + 1], iid[SPAN_ID_HEX + 1], sid[SPAN_ID_HEX + 1], tid[SPAN_ID_HEX + 1],
        pid[SPAN_ID_HEX + 1];
    int rc = record_begin(o);
    if (rc < 0) return rc;
    trace_new_span_id(o->rng, qid);
    trace_new_span_id(o->rng, iid);
    rc = span(o, "request", r->ctx.span_id, r->ctx.parent_id, 2, 0, inv->total_us, true);
    if (!r->submitted) return rc;
    uint64_t wait = inv->queue_us + inv->start_us;
    uint64_t enq = r->enq_us;
    /* Clock readings differ by a few µs; keep the children inside. */
    if (enq + wait + inv->run_us > inv->total_us)
        enq = inv->total_us > wait + inv->run_us ? inv->total_us - wait - inv->run_us : 0;
    if (rc == 0) rc = span(o, "queue_wait", qid, r->ctx.span_id, 1, enq, wait, false);
    if (rc == 0 && inv->start_us > 0) {
        uint64_t s0 = enq + inv->queue_us, end = s0 + inv->start_us;
        trace_new_span_id(o->rng, sid);
        rc = span(o, "instance_start", sid, qid, 1, s0, inv->start_us, false);
        if (rc == 0 && r->have_phases) {
            uint64_t spawn = r->spawn_us < inv->start_us ? r->spawn_us : inv->start_us;
            trace_new_span_id(o->rng, pid);
            rc = span(o, "spawn", pid, sid, 1, end - spawn, spawn, false);
            if (rc == 0 && r->from_zero) {
                uint64_t room = inv->start_us - spawn;
                uint64_t t = r->template_us < room ? r->template_us : room;
                uint64_t t0 = end - spawn - t;
                uint64_t plan = r->plan_open_us < t ? r->plan_open_us : t;
                uint64_t prep = r->prepare_us < t - plan ? r->prepare_us : t - plan;
                trace_new_span_id(o->rng, tid);
                rc = span(o, "template_start", tid, sid, 1, t0, t, false);
                char c1[SPAN_ID_HEX + 1], c2[SPAN_ID_HEX + 1];
                trace_new_span_id(o->rng, c1);
                trace_new_span_id(o->rng, c2);
                /* The template opens the plan, then prepares it, then says
                 * READY: both end before the template's start does. */
                uint64_t p0 = t0 + t - plan - prep;
                if (rc == 0) rc = span(o, "plan_open", c1, tid, 1, p0, plan, false);
                if (rc == 0) rc = span(o, "prepare", c2, tid, 1, p0 + plan, prep, false);
            }
        }
    }
    if (rc == 0) rc = span(o, "inference", iid, r->ctx.span_id, 1, enq + wait, inv->run_us, false);
    return rc;
}

/* A body's spans are encoded one record at a time: encode_begin, then
 * encode_record per record, then encode_end (the exporter encodes each
 * record straight from its queue slot). */
static int encode_begin(span_out *o, rouse_buf *out, trace_rng *rng)
{
    memset(o, 0, sizeof(*o));
    o->b = out;
    o->first = true;
    o->rng = rng;
    rouse_buf_init(&o->state);
    return rouse_buf_append_str(
        out, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\","
             "\"value\":{\"stringValue\":\"rouse\"}}]},\"scopeSpans\":[{\"scope\":{\"name\":"
             "\"rouse\",\"version\":\"" ROUSE_VERSION "\"},\"spans\":[");
}

static int encode_one(span_out *o, const otlp_record *r)
{
    o->r = r;
    o->base_us = r->inv.ts_us;
    return encode_record(o);
}

static int encode_end(span_out *o, int rc)
{
    rouse_buf_fini(&o->state);
    return rc == 0 ? rouse_buf_append_str(o->b, "]}]}]}") : rc;
}

int otlp_encode(const otlp_record *recs, int n, rouse_buf *out)
{
    trace_rng rng;
    trace_rng_seed(&rng);
    span_out o;
    int rc = encode_begin(&o, out, &rng);
    for (int i = 0; rc == 0 && i < n; i++)
        rc = encode_one(&o, &recs[i]);
    return encode_end(&o, rc);
}

/* --- the exporter thread --------------------------------------------------- */

static size_t discard(char *p, size_t size, size_t n, void *user)
{
    (void)p;
    (void)user;
    return size * n;
}

/* POSTs one batch; true when the collector took it. */
static bool post(otlp_exporter *x, CURL *c, const rouse_buf *body, char *err)
{
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body->data);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body->len);
    CURLcode cc = curl_easy_perform(c);
    long code = 0;
    if (cc == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    if (cc == CURLE_OK && code >= 200 && code < 300) return true;
    if (cc != CURLE_OK)
        snprintf(err, CURL_ERROR_SIZE, "%s", err[0] ? err : curl_easy_strerror(cc));
    else
        snprintf(err, CURL_ERROR_SIZE, "the collector answered %ld", code);
    (void)x;
    return false;
}

static void *exporter_main(void *arg)
{
    otlp_exporter *x = arg;
    char err[CURL_ERROR_SIZE];
    CURL *c = curl_easy_init();
    /* No "Expect: 100-continue" (libcurl sends it with bodies over 1 KB):
     * its extra round trip per POST buys nothing from a collector that
     * takes every batch. */
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    if (hdrs) {
        struct curl_slist *h = curl_slist_append(hdrs, "Expect:");
        if (h) hdrs = h;
    }
    if (c) {
        curl_easy_setopt(c, CURLOPT_URL, x->url);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, REQUEST_TIMEOUT_MS);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
    }
    rouse_buf body;
    rouse_buf_init(&body);
    trace_rng rng; /* the span ids of the children */
    trace_rng_seed(&rng);
    for (;;) {
        struct pollfd pfd = {.fd = x->efd, .events = POLLIN};
        if (poll(&pfd, 1, FLUSH_MS) > 0) {
            uint64_t v;
            if (read(x->efd, &v, sizeof(v)) < 0) { /* woken anyway */
            }
        }
        atomic_store(&x->kicked, false);
        bool stopping = atomic_load(&x->stop);
        for (;;) {
            int n = 0, spans = 0;
            const otlp_record *r;
            span_out o;
            rouse_buf_clear(&body);
            int rc = encode_begin(&o, &body, &rng);
            while (n < BATCH_MAX && (r = spsc_peek(&x->q))) {
                /* Encoded in its slot, not copied out: then the slot is free. */
                if (rc == 0) rc = encode_one(&o, r);
                spans += otlp_span_count(r);
                spsc_release(&x->q);
                n++;
            }
            rc = encode_end(&o, rc);
            if (n == 0) break;
            err[0] = '\0';
            bool ok = c && rc == 0 && post(x, c, &body, err);
            if (ok) {
                atomic_fetch_add(&x->exported, (uint64_t)spans);
                x->warned = false;
            } else if (stopping || atomic_load(&x->stop)) {
                /* Stopping and the collector fails: the rest is dropped
                 * rather than each batch waiting out its own timeout. */
                while ((r = spsc_peek(&x->q))) {
                    spans += otlp_span_count(r);
                    spsc_release(&x->q);
                }
                atomic_fetch_add(&x->dropped, (uint64_t)spans);
                break;
            } else {
                atomic_fetch_add(&x->dropped, (uint64_t)spans);
                if (!x->warned)
                    LOG_WARN(MOD,
                             "cannot export spans to %s: %s (dropping them; "
                             "rouse_trace_spans_dropped_total counts them)",
                             x->url, c ? err : "libcurl failed to start");
                x->warned = true;
            }
        }
        if (stopping) break;
    }
    rouse_buf_fini(&body);
    curl_slist_free_all(hdrs);
    if (c) curl_easy_cleanup(c);
    return NULL;
}

int otlp_create(const char *endpoint, otlp_exporter **out, rouse_errbuf *eb)
{
    if (strncmp(endpoint, "http://", 7) != 0 && strncmp(endpoint, "https://", 8) != 0)
        return rouse_err_set(eb, ROUSE_EINVAL,
                             "--otlp-endpoint: expected an http:// or https:// URL, got '%s'",
                             endpoint);
    const char *host = strstr(endpoint, "://") + 3;
    if (!*host || *host == '/')
        return rouse_err_set(eb, ROUSE_EINVAL, "--otlp-endpoint: no host in '%s'", endpoint);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return rouse_err_set(eb, ROUSE_EIO, "libcurl failed to initialise");
    otlp_exporter *x = calloc(1, sizeof(*x));
    int rc;
    if (!x) {
        rc = rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
        goto out_curl;
    }
    x->efd = -1;
    const char *path = strchr(host, '/');
    bool bare = !path || strcmp(path, "/") == 0;
    size_t len = strlen(endpoint) + sizeof("/v1/traces");
    if (!(x->url = malloc(len))) {
        rc = rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
        goto out_free;
    }
    if (bare)
        snprintf(x->url, len, "%.*s/v1/traces",
                 (int)(path ? (size_t)(path - endpoint) : strlen(endpoint)), endpoint);
    else
        snprintf(x->url, len, "%s", endpoint);
    if (spsc_init(&x->q, sizeof(otlp_record), QUEUE_SLOTS) < 0) {
        rc = rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
        goto out_url;
    }
    if ((x->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
        rc = rouse_err_set(eb, ROUSE_EIO, "eventfd: %s", strerror(errno));
        goto out_queue;
    }
    if ((errno = pthread_create(&x->thread, NULL, exporter_main, x)) != 0) {
        rc = rouse_err_set(eb, ROUSE_EIO, "cannot start the span exporter's thread: %s",
                           strerror(errno));
        goto out_efd;
    }
    pthread_setname_np(x->thread, "rouse-otlp");
    *out = x;
    return 0;

out_efd:
    close(x->efd);
out_queue:
    spsc_fini(&x->q);
out_url:
    free(x->url);
out_free:
    free(x);
out_curl:
    curl_global_cleanup();
    return rc;
}

static void kick(otlp_exporter *x)
{
    uint64_t one = 1;
    if (write(x->efd, &one, sizeof(one)) < 0) { /* already pending: fine */
    }
}

void otlp_destroy(otlp_exporter *x)
{
    if (!x) return;
    atomic_store(&x->stop, true);
    kick(x);
    pthread_join(x->thread, NULL);
    close(x->efd);
    spsc_fini(&x->q);
    free(x->url);
    free(x);
    curl_global_cleanup();
}

otlp_record *otlp_claim(otlp_exporter *x)
{
    return spsc_claim(&x->q);
}

void otlp_publish(otlp_exporter *x)
{
    spsc_publish(&x->q);
    if (spsc_used(&x->q) >= BATCH_MAX && !atomic_exchange(&x->kicked, true)) kick(x);
}

void otlp_drop(otlp_exporter *x, int n_spans)
{
    atomic_fetch_add_explicit(&x->dropped, (uint64_t)n_spans, memory_order_relaxed);
}

uint64_t otlp_exported(const otlp_exporter *x)
{
    return atomic_load(&((otlp_exporter *)x)->exported);
}

uint64_t otlp_dropped(const otlp_exporter *x)
{
    return atomic_load(&((otlp_exporter *)x)->dropped);
}
