/*
 * The bus (bus.h): one libnats connection per node, a thread that connects,
 * binds the membership bucket and sends, and a queue of what arrived that
 * the loop drains through an eventfd.
 *
 * Invariants:
 * - The loop touches only the queues (under the lock), the atomics and the
 *   eventfd; libnats objects are the thread's (created, used and destroyed
 *   there), except that libnats calls back on its own threads, which only
 *   append to the inbound queue.
 * - Nothing sent waits while the connection is down: publishes are dropped
 *   and a bucket value waits as the newest of its key (membership puts its
 *   values again every few hundred ms anyway).
 */
#include <errno.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "server/bus.h"

#define MOD "bus"
#define BUS_TICK_MS 250
#define BUS_MAX_SUBS 8

typedef struct qmsg {
    struct qmsg *next;
    bool state, connected; /* a state change instead of a message */
    char *subject;         /* malloc'd, with data after it */
    const char *kv_key;    /* into subject, or NULL */
    char *data;
    size_t len;
} qmsg;

typedef struct kv_val {
    struct kv_val *next;
    char *key;
    char *data;
    size_t len;
} kv_val;

struct bus {
    char url[1024];
    char node[128];
    bus_msg_fn on_msg;
    bus_state_fn on_state;
    void *user;
    int efd;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stop;
    /* Inbound (libnats threads -> loop). */
    qmsg *in_head, *in_tail;
    int n_in;
    /* Outbound (loop -> thread): publishes in order, bucket values by key. */
    qmsg *out_head, *out_tail;
    kv_val *kv_pending;
    char *subs[BUS_MAX_SUBS];
    int n_subs, n_subscribed; /* wanted, and made by the thread */
    atomic_bool connected, kv_ready;
    bool closed; /* libnats's last callback of the connection ran (under lock) */
    atomic_uint_fast64_t n_received, n_dropped, n_put_failed;
    /* The thread's. */
    natsConnection *nc;
    natsSubscription *nsubs[BUS_MAX_SUBS + 1];
    jsCtx *js;
    kvStore *kv;
    bool warned_kv;
};

static void wake_loop(bus *b)
{
    uint64_t one = 1;
    if (write(b->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        LOG_WARN(MOD, "eventfd write: %s", strerror(errno));
}

/* Appends to the inbound queue (any thread). */
static void push_in(bus *b, qmsg *m)
{
    pthread_mutex_lock(&b->lock);
    if (b->n_in >= BUS_QUEUE_MAX && !m->state) {
        pthread_mutex_unlock(&b->lock);
        atomic_fetch_add(&b->n_dropped, 1);
        free(m->subject);
        free(m);
        return;
    }
    m->next = NULL;
    if (b->in_tail)
        b->in_tail->next = m;
    else
        b->in_head = m;
    b->in_tail = m;
    b->n_in++;
    pthread_mutex_unlock(&b->lock);
    wake_loop(b);
}

static void push_state(bus *b, bool up)
{
    atomic_store(&b->connected, up);
    qmsg *m = calloc(1, sizeof(*m));
    if (!m) return;
    m->state = true;
    m->connected = up;
    push_in(b, m);
}

static void on_connected(natsConnection *nc, void *closure)
{
    (void)nc;
    push_state(closure, true);
}

static void on_disconnected(natsConnection *nc, void *closure)
{
    (void)nc;
    push_state(closure, false);
}

/* The last callback libnats makes for a connection: after it, none of its
 * threads touches the bus any more. */
static void on_closed(natsConnection *nc, void *closure)
{
    (void)nc;
    bus *b = closure;
    pthread_mutex_lock(&b->lock);
    b->closed = true;
    pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&b->lock);
}

/* The bucket's subject: $KV.<bucket>.<key>. */
#define KV_PREFIX "$KV." BUS_KV_BUCKET "."

static void on_nats_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void)nc;
    (void)sub;
    bus *b = closure;
    const char *subj = natsMsg_GetSubject(msg);
    const char *data = natsMsg_GetData(msg);
    int len = natsMsg_GetDataLength(msg);
    size_t sl = strlen(subj);
    qmsg *m = calloc(1, sizeof(*m));
    char *buf = m && len >= 0 ? malloc(sl + 1 + (size_t)len + 1) : NULL;
    if (!buf) {
        free(m);
        natsMsg_Destroy(msg);
        atomic_fetch_add(&b->n_dropped, 1);
        return;
    }
    memcpy(buf, subj, sl + 1);
    m->subject = buf;
    m->data = buf + sl + 1;
    if (len > 0) memcpy(m->data, data, (size_t)len);
    m->data[len] = '\0';
    m->len = (size_t)len;
    if (strncmp(subj, KV_PREFIX, strlen(KV_PREFIX)) == 0) m->kv_key = buf + strlen(KV_PREFIX);
    natsMsg_Destroy(msg);
    atomic_fetch_add(&b->n_received, 1);
    push_in(b, m);
}

/* --- the thread ------------------------------------------------------------- */

static void thread_connect(bus *b)
{
    natsOptions *o = NULL;
    natsStatus st = natsOptions_Create(&o);
    if (st == NATS_OK) st = natsOptions_SetURL(o, b->url);
    if (st == NATS_OK) st = natsOptions_SetName(o, b->node);
    if (st == NATS_OK) st = natsOptions_SetMaxReconnect(o, -1);
    if (st == NATS_OK) st = natsOptions_SetReconnectWait(o, BUS_TICK_MS);
    if (st == NATS_OK) st = natsOptions_SetTimeout(o, 2000);
    /* A server gone without a word (a pause, a dead link) is noticed
     * within about three seconds. */
    if (st == NATS_OK) st = natsOptions_SetPingInterval(o, 1000);
    if (st == NATS_OK) st = natsOptions_SetMaxPingsOut(o, 2);
    if (st == NATS_OK) st = natsOptions_SetRetryOnFailedConnect(o, true, on_connected, b);
    if (st == NATS_OK) st = natsOptions_SetDisconnectedCB(o, on_disconnected, b);
    if (st == NATS_OK) st = natsOptions_SetReconnectedCB(o, on_connected, b);
    if (st == NATS_OK) st = natsOptions_SetClosedCB(o, on_closed, b);
    if (st == NATS_OK) {
        st = natsConnection_Connect(&b->nc, o);
        if (st == NATS_OK) push_state(b, true);
        if (st == NATS_NOT_YET_CONNECTED) {
            LOG_WARN(MOD, "NATS at %s not reachable yet: serving locally, retrying", b->url);
            st = NATS_OK;
        }
    }
    if (st != NATS_OK) LOG_ERROR(MOD, "NATS at %s: %s", b->url, natsStatus_GetText(st));
    natsOptions_Destroy(o);
}

/* Binds the bucket (creating it the first time any node asks). */
static void thread_bind_kv(bus *b)
{
    if (!b->js) {
        jsOptions jo;
        jsOptions_Init(&jo);
        jo.Wait = 2000;
        if (natsConnection_JetStream(&b->js, b->nc, &jo) != NATS_OK) return;
    }
    kvConfig cfg;
    kvConfig_Init(&cfg);
    cfg.Bucket = BUS_KV_BUCKET;
    cfg.History = 1;
    cfg.TTL = (int64_t)BUS_KV_TTL_MS * 1000000; /* libnats takes nanoseconds */
    natsStatus st = js_CreateKeyValue(&b->kv, b->js, &cfg);
    if (st != NATS_OK) {
        if (!b->warned_kv)
            LOG_DEBUG(MOD, "creating bucket %s: %s (%s)", BUS_KV_BUCKET, natsStatus_GetText(st),
                      nats_GetLastError(NULL));
        /* Made by another node with other settings: use it as it is. */
        st = js_KeyValue(&b->kv, b->js, BUS_KV_BUCKET);
    }
    if (st != NATS_OK) {
        b->kv = NULL;
        if (!b->warned_kv)
            LOG_WARN(MOD, "key-value bucket %s: %s (is JetStream on, nats-server -js?)",
                     BUS_KV_BUCKET, natsStatus_GetText(st));
        b->warned_kv = true;
        return;
    }
    LOG_INFO(MOD, "membership bucket %s bound", BUS_KV_BUCKET);
    atomic_store(&b->kv_ready, true);
}

static void thread_send(bus *b, qmsg *pubs, kv_val *vals)
{
    bool up = atomic_load(&b->connected);
    for (qmsg *m = pubs; m; m = m->next)
        if (up) natsConnection_Publish(b->nc, m->subject, m->data, (int)m->len);
    for (kv_val *v = vals; v; v = v->next) {
        if (!up || !b->kv) {
            atomic_fetch_add(&b->n_put_failed, 1);
            continue;
        }
        uint64_t rev;
        natsStatus st = kvStore_Put(&rev, b->kv, v->key, v->data, (int)v->len);
        if (st != NATS_OK) {
            atomic_fetch_add(&b->n_put_failed, 1);
            LOG_DEBUG(MOD, "put %s: %s", v->key, natsStatus_GetText(st));
        }
    }
}

static void free_qmsgs(qmsg *m)
{
    while (m) {
        qmsg *next = m->next;
        free(m->subject);
        free(m);
        m = next;
    }
}

static void free_kv_vals(kv_val *v)
{
    while (v) {
        kv_val *next = v->next;
        free(v->key);
        free(v->data);
        free(v);
        v = next;
    }
}

static void *thread_main(void *arg)
{
    bus *b = arg;
    thread_connect(b);
    pthread_mutex_lock(&b->lock);
    while (!b->stop) {
        /* Subscriptions asked for since (the connection keeps them across
         * reconnects). */
        while (b->nc && b->n_subscribed < b->n_subs) {
            char *subj = b->subs[b->n_subscribed];
            pthread_mutex_unlock(&b->lock);
            natsStatus st = natsConnection_Subscribe(&b->nsubs[b->n_subscribed], b->nc, subj,
                                                     on_nats_msg, b);
            pthread_mutex_lock(&b->lock);
            if (st != NATS_OK) {
                LOG_WARN(MOD, "subscribe %s: %s", subj, natsStatus_GetText(st));
                break;
            }
            b->n_subscribed++;
        }
        qmsg *pubs = b->out_head;
        kv_val *vals = b->kv_pending;
        b->out_head = b->out_tail = NULL;
        b->kv_pending = NULL;
        pthread_mutex_unlock(&b->lock);
        if (b->nc && !b->kv && atomic_load(&b->connected)) thread_bind_kv(b);
        if (b->nc) thread_send(b, pubs, vals);
        free_qmsgs(pubs);
        free_kv_vals(vals);
        pthread_mutex_lock(&b->lock);
        if (b->stop || b->out_head || b->kv_pending) continue;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += BUS_TICK_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&b->cond, &b->lock, &ts);
    }
    pthread_mutex_unlock(&b->lock);
    for (int i = 0; i < b->n_subscribed; i++)
        natsSubscription_Unsubscribe(b->nsubs[i]);
    if (b->nc) {
        natsConnection_Close(b->nc);
        /* Wait (bounded) for libnats's callbacks of the connection to end:
         * they point at b, which bus_destroy frees next. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 5;
        pthread_mutex_lock(&b->lock);
        while (!b->closed)
            if (pthread_cond_timedwait(&b->cond, &b->lock, &ts) != 0) break;
        bool closed = b->closed;
        pthread_mutex_unlock(&b->lock);
        if (!closed) LOG_WARN(MOD, "NATS connection not closed after 5 s");
    }
    for (int i = 0; i < b->n_subscribed; i++)
        natsSubscription_Destroy(b->nsubs[i]);
    kvStore_Destroy(b->kv);
    jsCtx_Destroy(b->js);
    natsConnection_Destroy(b->nc);
    return NULL;
}

/* --- the loop's side ---------------------------------------------------------- */

int bus_create(const char *url, const char *node, bus_msg_fn on_msg, bus_state_fn on_state,
               void *user, bus **out, rouse_errbuf *eb)
{
    if (strncmp(url, "nats://", 7) != 0 && strncmp(url, "tls://", 6) != 0)
        return rouse_err_set(eb, ROUSE_EINVAL, "--bus: expected nats://HOST:PORT, got %s", url);
    bus *b = calloc(1, sizeof(*b));
    if (!b) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    if (strlen(url) >= sizeof(b->url) || strlen(node) >= sizeof(b->node)) {
        free(b);
        return rouse_err_set(eb, ROUSE_EINVAL, "--bus: URL too long");
    }
    snprintf(b->url, sizeof(b->url), "%s", url);
    snprintf(b->node, sizeof(b->node), "%s", node);
    b->on_msg = on_msg;
    b->on_state = on_state;
    b->user = user;
    b->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (b->efd < 0) {
        free(b);
        return rouse_err_set(eb, ROUSE_EIO, "eventfd for the bus: %s", strerror(errno));
    }
    pthread_mutex_init(&b->lock, NULL);
    pthread_cond_init(&b->cond, NULL);
    if (pthread_create(&b->thread, NULL, thread_main, b) != 0) {
        pthread_cond_destroy(&b->cond);
        pthread_mutex_destroy(&b->lock);
        close(b->efd);
        free(b);
        return rouse_err_set(eb, ROUSE_EIO, "cannot start the bus thread");
    }
    LOG_INFO(MOD, "bus %s as node %s", url, node);
    *out = b;
    return 0;
}

void bus_destroy(bus *b)
{
    if (!b) return;
    pthread_mutex_lock(&b->lock);
    b->stop = true;
    pthread_cond_signal(&b->cond);
    pthread_mutex_unlock(&b->lock);
    pthread_join(b->thread, NULL);
    free_qmsgs(b->in_head);
    free_qmsgs(b->out_head);
    free_kv_vals(b->kv_pending);
    for (int i = 0; i < b->n_subs; i++)
        free(b->subs[i]);
    pthread_cond_destroy(&b->cond);
    pthread_mutex_destroy(&b->lock);
    close(b->efd);
    free(b);
}

int bus_fd(const bus *b)
{
    return b->efd;
}

void bus_on_event(bus *b)
{
    uint64_t n;
    if (read(b->efd, &n, sizeof(n)) < 0 && errno != EAGAIN)
        LOG_WARN(MOD, "eventfd read: %s", strerror(errno));
    pthread_mutex_lock(&b->lock);
    qmsg *m = b->in_head;
    b->in_head = b->in_tail = NULL;
    b->n_in = 0;
    pthread_mutex_unlock(&b->lock);
    for (qmsg *q = m; q; q = q->next) {
        if (q->state) {
            LOG_INFO(MOD, "NATS %s", q->connected ? "connected" : "disconnected");
            if (b->on_state) b->on_state(b->user, q->connected);
            continue;
        }
        bus_msg bm = {.subject = q->subject, .kv_key = q->kv_key, .data = q->data, .len = q->len};
        if (b->on_msg) b->on_msg(b->user, &bm);
    }
    free_qmsgs(m);
}

int bus_subscribe(bus *b, const char *subject, rouse_errbuf *eb)
{
    pthread_mutex_lock(&b->lock);
    if (b->n_subs == BUS_MAX_SUBS) {
        pthread_mutex_unlock(&b->lock);
        return rouse_err_set(eb, ROUSE_ERANGE, "bus: too many subscriptions");
    }
    char *s = strdup(subject);
    if (!s) {
        pthread_mutex_unlock(&b->lock);
        return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    }
    b->subs[b->n_subs++] = s;
    pthread_cond_signal(&b->cond);
    pthread_mutex_unlock(&b->lock);
    return 0;
}

int bus_publish(bus *b, const char *subject, const void *data, size_t len)
{
    if (!atomic_load(&b->connected)) return ROUSE_ESTATE;
    size_t sl = strlen(subject);
    qmsg *m = calloc(1, sizeof(*m));
    char *buf = m ? malloc(sl + 1 + len + 1) : NULL;
    if (!buf) {
        free(m);
        return ROUSE_ENOMEM;
    }
    memcpy(buf, subject, sl + 1);
    m->subject = buf;
    m->data = buf + sl + 1;
    if (len) memcpy(m->data, data, len);
    m->data[len] = '\0';
    m->len = len;
    pthread_mutex_lock(&b->lock);
    if (b->out_tail)
        b->out_tail->next = m;
    else
        b->out_head = m;
    b->out_tail = m;
    pthread_cond_signal(&b->cond);
    pthread_mutex_unlock(&b->lock);
    return 0;
}

int bus_kv_put(bus *b, const char *key, const void *data, size_t len)
{
    char *d = malloc(len + 1);
    if (!d) return ROUSE_ENOMEM;
    if (len) memcpy(d, data, len);
    d[len] = '\0';
    pthread_mutex_lock(&b->lock);
    for (kv_val *v = b->kv_pending; v; v = v->next) {
        if (strcmp(v->key, key) == 0) {
            free(v->data);
            v->data = d;
            v->len = len;
            pthread_mutex_unlock(&b->lock);
            return 0;
        }
    }
    kv_val *v = calloc(1, sizeof(*v));
    if (!v || !(v->key = strdup(key))) {
        pthread_mutex_unlock(&b->lock);
        free(v);
        free(d);
        return ROUSE_ENOMEM;
    }
    v->data = d;
    v->len = len;
    v->next = b->kv_pending;
    b->kv_pending = v;
    pthread_cond_signal(&b->cond);
    pthread_mutex_unlock(&b->lock);
    return 0;
}

bool bus_connected(const bus *b)
{
    return atomic_load(&((bus *)b)->connected);
}

bool bus_kv_ready(const bus *b)
{
    return atomic_load(&((bus *)b)->kv_ready);
}

void bus_counts(const bus *b, uint64_t *received, uint64_t *dropped, uint64_t *put_failed)
{
    bus *m = (bus *)b;
    *received = atomic_load(&m->n_received);
    *dropped = atomic_load(&m->n_dropped);
    *put_failed = atomic_load(&m->n_put_failed);
}
