/*
 * The usage shipper's thread (usage_ship.h).
 */
#include "server/usage_ship.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "store/usage.h"
#include "store/usage_pg.h"

#define MOD "usage-ship"
#define SHIP_BATCH 512          /* records per PostgreSQL transaction */
#define SHIP_POLL_MS 200        /* the list is read this often when idle */
#define SHIP_BACKOFF_MIN_MS 100 /* PostgreSQL away: first retry, doubling */
#define SHIP_BACKOFF_MAX_MS 5000
#define SHIP_FINAL_MS 5000      /* usage_ship_stop ships for at most this */
#define ROLLUP_HOURS_PER_ROUND 24

struct usage_ship {
    char *url;
    char node[64];
    char store_id[33];
    int64_t retention_us;
    int64_t rollup_every_ms;
    store *local; /* this thread's own connection */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;              /* under mu */
    uint64_t stop_ns;       /* when stop was asked */
    _Atomic int64_t cursor; /* -1 until read from PostgreSQL */
    _Atomic int64_t unshipped;
    uint64_t counted_ns; /* when unshipped was last counted (this thread's) */
    bool done;           /* under mu: the thread is about to return */
    /* The PostgreSQL connection's socket while connected: usage_ship_stop
     * shuts it down when a server that stopped answering holds the thread
     * past SHIP_FINAL_MS. */
    _Atomic int sock;
    /* The buffers of one batch. */
    usage_rec recs[SHIP_BATCH];
    int64_t ids[SHIP_BATCH];
};

/* Waits ms (or until asked to stop); true when asked to stop. */
static bool wait_ms(usage_ship *sh, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&sh->mu);
    while (!sh->stop && pthread_cond_timedwait(&sh->cv, &sh->mu, &ts) != ETIMEDOUT) {
    }
    bool stop = sh->stop;
    pthread_mutex_unlock(&sh->mu);
    return stop;
}

static bool stopping(usage_ship *sh, bool *final_over)
{
    pthread_mutex_lock(&sh->mu);
    bool stop = sh->stop;
    uint64_t at = sh->stop_ns;
    pthread_mutex_unlock(&sh->mu);
    *final_over = stop && rouse_now_ns() - at > (uint64_t)SHIP_FINAL_MS * 1000000ull;
    return stop;
}

static void count_unshipped(usage_ship *sh, int64_t cursor)
{
    /* A count reads every waiting entry: at most twice a second, so a long
     * backlog catching up does not count itself once per batch. */
    uint64_t now = rouse_now_ns();
    if (now - sh->counted_ns < 500000000ull) return;
    sh->counted_ns = now;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    int64_t n;
    if (usage_outbox_pending(sh->local, cursor < 0 ? 0 : cursor, &n, &eb) == 0)
        atomic_store(&sh->unshipped, n);
}

/* Rolls up what is older than the retention, a bounded number of hours
 * per round (the next round goes on). */
static int rollup(usage_ship *sh, pg_conn *pg)
{
    int64_t cutoff = rouse_wall_us() - sh->retention_us;
    if (sh->retention_us >= USAGE_HOUR_US) cutoff = cutoff / USAGE_HOUR_US * USAGE_HOUR_US;
    for (int i = 0; i < ROLLUP_HOURS_PER_ROUND; i++) {
        rouse_errbuf eb;
        rouse_errbuf_clear(&eb);
        int64_t n;
        bool more, busy;
        if (usage_pg_rollup(pg, cutoff, &n, &more, &busy, &eb) < 0) {
            LOG_WARN(MOD, "rolling usage up into hours in PostgreSQL: %s", eb.msg);
            return -1;
        }
        if (n > 0)
            LOG_DEBUG(MOD, "rolled %lld usage record(s) up into hourly aggregates in PostgreSQL",
                      (long long)n);
        if (busy || !more) break;
    }
    return 0;
}

static void *ship_main(void *arg)
{
    usage_ship *sh = arg;
    pg_conn *pg = NULL;
    int backoff = 0;
    bool told_away = false;
    uint64_t next_rollup = 0;
    int64_t cursor = -1;
    bool retried = false; /* after stop was asked: one try on a new connection */
    for (;;) {
        bool final_over;
        bool stop = stopping(sh, &final_over);
        if (final_over) break;
        rouse_errbuf eb;
        rouse_errbuf_clear(&eb);
        if (!pg) {
            if (usage_pg_open(sh->url, &pg, &eb) == 0 &&
                usage_pg_cursor(pg, sh->node, sh->store_id, &cursor, &eb) == 0) {
                atomic_store(&sh->cursor, cursor);
                atomic_store(&sh->sock, usage_pg_socket(pg));
                if (told_away) LOG_INFO(MOD, "PostgreSQL is back: shipping usage records again");
                told_away = false;
                backoff = 0;
            } else {
                usage_pg_close(pg);
                pg = NULL;
                if (!told_away)
                    LOG_WARN(MOD,
                             "usage records stay local until PostgreSQL answers (retrying): %s",
                             eb.msg);
                told_away = true;
                if (stop) break; /* nothing can be shipped: they wait for the next start */
                count_unshipped(sh, atomic_load(&sh->cursor));
                backoff = backoff ? backoff * 2 : SHIP_BACKOFF_MIN_MS;
                if (backoff > SHIP_BACKOFF_MAX_MS) backoff = SHIP_BACKOFF_MAX_MS;
                wait_ms(sh, backoff);
                continue;
            }
        }
        int n = 0;
        int64_t last = cursor, before = cursor;
        if (usage_outbox_read(sh->local, cursor, SHIP_BATCH, sh->recs, sh->ids, &n, &last, &eb) <
            0) {
            LOG_WARN(MOD, "reading usage records to ship: %s", eb.msg);
            if (stop || wait_ms(sh, SHIP_BACKOFF_MAX_MS)) break;
            continue;
        }
        if (last > cursor) {
            if (usage_pg_ship(pg, sh->node, sh->store_id, sh->recs, sh->ids, n, last, &eb) < 0) {
                LOG_WARN(MOD, "shipping %d usage record(s): %s", n, eb.msg);
                told_away = !usage_pg_ok(pg);
                atomic_store(&sh->sock, -1);
                usage_pg_close(pg);
                pg = NULL;
                /* Stopping: a connection PostgreSQL closed while it was
                 * idle (a restart) fails the first statement; one more
                 * try on a new connection ships the last records. */
                if (stop && !retried) {
                    retried = true;
                    continue;
                }
                if (stop) break;
                backoff = backoff ? backoff * 2 : SHIP_BACKOFF_MIN_MS;
                if (backoff > SHIP_BACKOFF_MAX_MS) backoff = SHIP_BACKOFF_MAX_MS;
                wait_ms(sh, backoff);
                continue;
            }
            cursor = last;
            atomic_store(&sh->cursor, cursor);
        }
        count_unshipped(sh, cursor);
        if (last - before >= SHIP_BATCH) continue; /* a full batch: more may wait */
        if (stop && last == before) break;         /* everything listed is shipped */
        if (stop) continue;
        uint64_t now = rouse_now_ns();
        if (now >= next_rollup) {
            if (rollup(sh, pg) < 0 && !usage_pg_ok(pg)) {
                atomic_store(&sh->sock, -1);
                usage_pg_close(pg);
                pg = NULL;
            }
            next_rollup = now + (uint64_t)sh->rollup_every_ms * 1000000ull;
        }
        wait_ms(sh, SHIP_POLL_MS);
    }
    pthread_mutex_lock(&sh->mu);
    sh->done = true;
    pthread_cond_broadcast(&sh->cv);
    pthread_mutex_unlock(&sh->mu);
    atomic_store(&sh->sock, -1);
    usage_pg_close(pg);
    return NULL;
}

int usage_ship_start(const usage_ship_opts *o, usage_ship **out, rouse_errbuf *eb)
{
    *out = NULL;
    usage_ship *sh = calloc(1, sizeof(*sh));
    if (!sh) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    sh->url = strdup(o->url);
    if (!sh->url) {
        free(sh);
        return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    }
    snprintf(sh->node, sizeof(sh->node), "%s", o->node);
    sh->retention_us = o->retention_us;
    sh->rollup_every_ms = o->rollup_every_ms;
    atomic_init(&sh->cursor, -1);
    atomic_init(&sh->unshipped, 0);
    atomic_init(&sh->sock, -1);
    int rc = store_open(o->data_dir, &sh->local, eb);
    if (rc < 0) {
        free(sh->url);
        free(sh);
        return rc;
    }
    if ((rc = usage_outbox_create(sh->local, eb)) < 0 ||
        (rc = usage_outbox_store_id(sh->local, sh->store_id, eb)) < 0) {
        store_close(sh->local);
        free(sh->url);
        free(sh);
        return rc;
    }
    count_unshipped(sh, 0);
    sh->counted_ns = 0;
    pthread_mutex_init(&sh->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&sh->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&sh->thread, NULL, ship_main, sh) != 0) {
        pthread_cond_destroy(&sh->cv);
        pthread_mutex_destroy(&sh->mu);
        store_close(sh->local);
        free(sh->url);
        free(sh);
        return rouse_err_set(eb, ROUSE_EIO, "cannot start the usage shipper's thread");
    }
    pthread_setname_np(sh->thread, "usage-ship");
    *out = sh;
    return 0;
}

void usage_ship_stop(usage_ship *sh)
{
    if (!sh) return;
    pthread_mutex_lock(&sh->mu);
    sh->stop = true;
    sh->stop_ns = rouse_now_ns();
    pthread_cond_broadcast(&sh->cv);
    /* A server that stopped answering (not one that went away: that fails
     * at once) would hold the thread in a read: past the final shipping's
     * time and a second, its socket is shut down, which ends the read. */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += SHIP_FINAL_MS / 1000 + 1;
    while (!sh->done && pthread_cond_timedwait(&sh->cv, &sh->mu, &ts) != ETIMEDOUT) {
    }
    if (!sh->done) {
        int fd = atomic_load(&sh->sock);
        if (fd >= 0) shutdown(fd, SHUT_RDWR);
        LOG_WARN(MOD, "PostgreSQL does not answer: usage records not shipped yet wait for the "
                      "next start");
    }
    pthread_mutex_unlock(&sh->mu);
    pthread_join(sh->thread, NULL);
    int64_t left = atomic_load(&sh->unshipped);
    if (left > 0)
        LOG_WARN(MOD, "%lld usage record(s) not shipped yet: they ship at the next start",
                 (long long)left);
    pthread_cond_destroy(&sh->cv);
    pthread_mutex_destroy(&sh->mu);
    store_close(sh->local);
    free(sh->url);
    free(sh);
}

int64_t usage_ship_cursor(const usage_ship *sh)
{
    return atomic_load(&((usage_ship *)sh)->cursor);
}

int64_t usage_ship_unshipped(const usage_ship *sh)
{
    return atomic_load(&((usage_ship *)sh)->unshipped);
}
