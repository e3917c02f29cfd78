/*
 * The registry's sync (see regsync.h).
 *
 * Invariants:
 * - The thread owns its PostgreSQL connection and its own connection to
 *   the replica (a second store on the same SQLite file, in WAL mode): the
 *   writer's copies of this node's writes and the thread's copies of
 *   everyone's go through different connections, ordered by the numbers
 *   replica.c keeps per object.
 * - The queue of events for the loop (changed functions, own writes) is
 *   shared under `lock`; the eventfd is written after each push.
 */
#include "server/regsync.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "store/replica.h"

#define MOD "regsync"
#define POLL_MS 1000

typedef struct event {
    char fn[STORE_NAME_MAX + 1];
    int64_t seq;
    bool own;  /* this node's write (publish) or another's change */
    bool keys; /* API keys changed (fn empty) */
} event;

struct regsync {
    char *url;
    store *st; /* the thread's connection to the replica */
    PGconn *conn;
    pg_health health;
    int efd;
    pthread_t thread;
    bool started;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    /* Under lock. */
    bool stop, poked;
    event *q;
    int nq, capq;
    /* Loop only. */
    regsync_publish_fn publish;
    void *publish_user;
};

static void push_locked(regsync *r, const event *e)
{
    if (r->nq == r->capq) {
        int ncap = r->capq ? 2 * r->capq : 16;
        event *n = realloc(r->q, (size_t)ncap * sizeof(*n));
        if (!n) {
            LOG_ERROR(MOD, "out of memory queueing a registry change");
            return;
        }
        r->q = n;
        r->capq = ncap;
    }
    r->q[r->nq++] = *e;
}

static void wake_loop(regsync *r)
{
    uint64_t one = 1;
    while (write(r->efd, &one, sizeof(one)) < 0 && errno == EINTR) {
    }
}

/* One round: is there anything past the replica's number? Copy it. */
static void sync_once(regsync *r)
{
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    int rc;
    if (!r->conn && (rc = pg_connect(r->url, &r->conn, &eb)) < 0) {
        pg_health_down(&r->health, eb.msg);
        return;
    }
    int64_t local;
    if ((rc = replica_local_seq(r->st, &local, &eb)) < 0) {
        LOG_ERROR(MOD, "%s", eb.msg);
        return;
    }
    replica_snap *snap = NULL;
    if ((rc = replica_read_since(&r->conn, local, &snap, &eb)) < 0) {
        if (rc == ROUSE_EUNAVAILABLE)
            pg_health_down(&r->health, eb.msg);
        else
            LOG_ERROR(MOD, "%s", eb.msg);
        return;
    }
    if (pg_health_get(&r->health, NULL, NULL, NULL, 0))
        LOG_INFO(MOD, "PostgreSQL reachable again: the registry is shared again");
    pg_health_up(&r->health);
    if (!snap) return;
    if (replica_snap_full(snap))
        LOG_INFO(MOD,
                 "the registry's log was pruned past this replica (sequence %lld): copying "
                 "the whole registry",
                 (long long)local);
    replica_changes ch;
    memset(&ch, 0, sizeof(ch));
    rc = replica_apply(r->st, snap, &ch, &eb);
    int64_t seq = replica_snap_seq(snap);
    replica_snap_free(snap);
    if (rc < 0) {
        LOG_ERROR(MOD, "copying registry changes: %s", eb.msg);
        replica_changes_fini(&ch);
        return;
    }
    if (ch.n || ch.keys) {
        pthread_mutex_lock(&r->lock);
        for (int i = 0; i < ch.n; i++) {
            event e = {.seq = seq};
            memcpy(e.fn, ch.fns[i], sizeof(e.fn));
            push_locked(r, &e);
        }
        if (ch.keys) push_locked(r, &(event){.seq = seq, .keys = true});
        pthread_mutex_unlock(&r->lock);
        wake_loop(r);
    }
    replica_changes_fini(&ch);
}

static void *sync_main(void *p)
{
    regsync *r = p;
    pthread_mutex_lock(&r->lock);
    while (!r->stop) {
        if (!r->poked) {
            struct timespec until;
            clock_gettime(CLOCK_MONOTONIC, &until);
            until.tv_sec += POLL_MS / 1000;
            pthread_cond_timedwait(&r->cond, &r->lock, &until);
        }
        if (r->stop) break;
        r->poked = false;
        pthread_mutex_unlock(&r->lock);
        sync_once(r);
        pthread_mutex_lock(&r->lock);
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

static void destroy(regsync *r)
{
    if (r->conn) PQfinish(r->conn);
    store_close(r->st);
    if (r->efd >= 0) close(r->efd);
    pthread_cond_destroy(&r->cond);
    pthread_mutex_destroy(&r->lock);
    pg_health_fini(&r->health);
    free(r->q);
    free(r->url);
    free(r);
}

int regsync_start(const char *url, const char *data_dir, regsync **out, rouse_errbuf *eb)
{
    *out = NULL;
    regsync *r = calloc(1, sizeof(*r));
    if (!r) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    r->efd = -1;
    pg_health_init(&r->health);
    pthread_mutex_init(&r->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cond, &ca);
    pthread_condattr_destroy(&ca);
    int rc = ROUSE_ENOMEM;
    if (!(r->url = strdup(url))) {
        rouse_err_set(eb, rc, "out of memory");
        goto out;
    }
    if ((rc = store_open(data_dir, &r->st, eb)) < 0 || (rc = replica_prepare(r->st, eb)) < 0)
        goto out;
    if ((rc = pg_connect(url, &r->conn, eb)) < 0) goto out_state;
    if ((rc = replica_migrate(&r->conn, eb)) < 0) goto out_state;
    /* The whole registry, before serve listens. */
    replica_snap *snap;
    if ((rc = replica_read_full(&r->conn, &snap, eb)) < 0) goto out_state;
    rc = replica_apply(r->st, snap, NULL, eb);
    LOG_INFO(MOD, "registry copied from PostgreSQL (sequence %lld)",
             (long long)replica_snap_seq(snap));
    replica_snap_free(snap);
    if (rc < 0) goto out;
    r->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (r->efd < 0) {
        rc = rouse_err_set(eb, ROUSE_EIO, "eventfd for the registry sync: %s", strerror(errno));
        goto out;
    }
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int err = pthread_create(&r->thread, NULL, sync_main, r);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err) {
        rc = rouse_err_set(eb, ROUSE_EINTERNAL, "cannot start the registry sync thread: %s",
                           strerror(err));
        goto out;
    }
    pthread_setname_np(r->thread, "rouse-regsync");
    r->started = true;
    *out = r;
    return 0;

out_state:
    if (rc == ROUSE_EUNAVAILABLE) {
        char msg[sizeof(eb->msg)];
        snprintf(msg, sizeof(msg), "%s", eb->msg);
        rouse_err_set(eb, rc, "--state: %s", msg);
    }
out:
    destroy(r);
    return rc;
}

void regsync_stop(regsync *r)
{
    if (!r) return;
    if (r->started) {
        pthread_mutex_lock(&r->lock);
        r->stop = true;
        pthread_cond_signal(&r->cond);
        pthread_mutex_unlock(&r->lock);
        pthread_join(r->thread, NULL);
    }
    destroy(r);
}

int regsync_fd(const regsync *r)
{
    return r->efd;
}

void regsync_poke(regsync *r)
{
    pthread_mutex_lock(&r->lock);
    r->poked = true;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

void regsync_set_publish(regsync *r, regsync_publish_fn fn, void *user)
{
    r->publish = fn;
    r->publish_user = user;
}

void regsync_own_write(void *user, const char *fn_key, int64_t seq)
{
    regsync *r = user;
    event e = {.seq = seq, .own = true};
    snprintf(e.fn, sizeof(e.fn), "%s", fn_key);
    pthread_mutex_lock(&r->lock);
    push_locked(r, &e);
    pthread_mutex_unlock(&r->lock);
    wake_loop(r);
}

void regsync_drain(regsync *r, void (*changed)(void *user, const char *fn_key), void *user)
{
    uint64_t n;
    while (read(r->efd, &n, sizeof(n)) < 0 && errno == EINTR) {
    }
    pthread_mutex_lock(&r->lock);
    event *q = r->q;
    int nq = r->nq;
    r->q = NULL;
    r->nq = r->capq = 0;
    pthread_mutex_unlock(&r->lock);
    for (int i = 0; i < nq; i++) {
        if (q[i].own) {
            if (r->publish) r->publish(r->publish_user, q[i].fn, q[i].seq);
        } else {
            changed(user, q[i].keys ? NULL : q[i].fn);
        }
    }
    free(q);
}

pg_health *regsync_health(regsync *r)
{
    return &r->health;
}
