/*
 * The writer thread (see writer.h for what it promises).
 *
 * Invariants:
 * - A job is on exactly one of: the queue (submitted, not taken), the
 *   thread's current group, the done list (finished, callback not run).
 *   The queue and the done list are shared with the thread under `lock`;
 *   the group is the thread's alone.
 * - Independently, every job not yet freed is on the loop's `outstanding`
 *   list (links and the cancelled flag are touched by the loop thread
 *   only), which is how a ticket finds its job. Only the loop frees jobs.
 * - Jobs run, complete and call back in submission order: the queue is
 *   FIFO, groups are taken whole from its head, done jobs are appended.
 * - A job's rc is final, and its callback may run, only once the group's
 *   COMMIT returned (or the job ran alone, without a registry).
 */
#include "store/writer.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* The most writes one transaction takes: bounds how long the first of them
 * waits for the last to run. */
#define GROUP_MAX 256

typedef struct job job;
struct job {
    job *next;          /* queue, group or done list */
    job *lprev, *lnext; /* the loop's outstanding list */
    uint64_t ticket;
    bool cancelled;
    bool shared; /* it wrote to the shared registry (store_tx_write_shared) */
    store_write_apply apply;
    store_write_done done;
    store_write_release release; /* or NULL */
    void *user;
    int rc;
    rouse_errbuf eb;
    size_t arg_len;
    max_align_t arg[]; /* arg_len bytes, aligned for any argument struct */
};

struct store_writer {
    store *st; /* NULL: jobs run alone */
    char name[32];
    int efd;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    /* Under lock. */
    job *queue, *queue_tail;
    job *done, *done_tail;
    bool stop;
    bool batch_policy; /* the thread is SCHED_BATCH (it waits as one) */
    bool own_policy;   /* it started as SCHED_OTHER: switching is ours */
    store_writer_stats stats;
    /* Loop thread only. */
    job *outstanding, *outstanding_tail;
    int n_outstanding;
    uint64_t next_ticket;
};

/* The thread's scheduling policy: SCHED_BATCH while it waits, so that a
 * background write's wakeup never preempts a running thread (the loop, an
 * instance) on a busy core: the writer runs when the scheduler next picks
 * it; SCHED_OTHER while it runs a group (the loop's own wakeups preempt it
 * as they would any thread) and as soon as a foreground write comes, so
 * that durable writes wake it as promptly as ever. Both keep nice 0, the
 * same share of the CPU; an unprivileged thread may switch between them.
 * A thread started under another policy (real-time, idle) keeps it. A
 * failed switch changes nothing else. Under lock. */
static void set_batch_policy(store_writer *w, pthread_t t, bool batch)
{
    if (!w->own_policy || w->batch_policy == batch) return;
    struct sched_param sp = {.sched_priority = 0};
    if (pthread_setschedparam(t, batch ? SCHED_BATCH : SCHED_OTHER, &sp) == 0)
        w->batch_policy = batch;
}

/* Runs a group inside one transaction; sets every job's rc. */
static void run_group_tx(store *st, job *group)
{
    rouse_errbuf geb;
    rouse_errbuf_clear(&geb);
    int rc = store_tx_begin(st, &geb);
    if (rc == 0) {
        for (job *j = group; j && rc == 0; j = j->next) {
            if ((rc = store_tx_savepoint(st, &geb)) < 0) break;
            j->rc = j->apply(st, j->arg, &j->eb);
            j->shared = store_tx_write_shared(st);
            rc = store_tx_savepoint_end(st, j->rc == 0, &geb);
        }
        if (rc == 0)
            rc = store_tx_commit(st, &geb);
        else
            store_tx_rollback(st);
    }
    if (rc == 0) {
        /* The shared registry's part of the group (PostgreSQL) may have
         * failed while the local part committed: its writes fail alone. */
        rouse_errbuf seb;
        rouse_errbuf_clear(&seb);
        int src = store_tx_shared_status(st, &seb);
        for (job *j = group; src < 0 && j; j = j->next) {
            if (!j->shared || j->rc < 0) continue;
            j->rc = src;
            j->eb = seb;
        }
        return;
    }
    /* Nothing of the group is durable: writes that had succeeded fail with
     * the group's error; a write that failed on its own keeps its reason. */
    for (job *j = group; j; j = j->next) {
        if (j->rc < 0 && j->eb.msg[0]) continue;
        j->rc = rc;
        j->eb = geb;
    }
}

static void *writer_main(void *p)
{
    store_writer *w = p;
    pthread_mutex_lock(&w->lock);
    w->own_policy = sched_getscheduler(0) == SCHED_OTHER;
    pthread_mutex_unlock(&w->lock);
    for (;;) {
        pthread_mutex_lock(&w->lock);
        if (!w->queue && !w->stop && w->st) set_batch_policy(w, pthread_self(), true);
        while (!w->queue && !w->stop)
            pthread_cond_wait(&w->cond, &w->lock);
        set_batch_policy(w, pthread_self(), false);
        if (!w->queue) {
            pthread_mutex_unlock(&w->lock);
            break;
        }
        /* The group: what queued up while the previous one committed. */
        job *group = w->queue, *last = group;
        int n = 1;
        if (w->st)
            while (last->next && n < GROUP_MAX) {
                last = last->next;
                n++;
            }
        w->queue = last->next;
        if (!w->queue) w->queue_tail = NULL;
        last->next = NULL;
        pthread_mutex_unlock(&w->lock);

        if (w->st)
            run_group_tx(w->st, group);
        else
            group->rc = group->apply(NULL, group->arg, &group->eb);

        pthread_mutex_lock(&w->lock);
        if (w->done_tail)
            w->done_tail->next = group;
        else
            w->done = group;
        w->done_tail = last;
        w->stats.n_groups++;
        w->stats.n_writes += (uint64_t)n;
        if ((uint64_t)n > w->stats.max_group) w->stats.max_group = (uint64_t)n;
        pthread_mutex_unlock(&w->lock);
        uint64_t one = 1;
        while (write(w->efd, &one, sizeof(one)) < 0 && errno == EINTR) {
        }
    }
    return NULL;
}

int store_writer_create(store *st, const char *name, store_writer **out, rouse_errbuf *eb)
{
    *out = NULL;
    int rc = ROUSE_ENOMEM;
    store_writer *w = calloc(1, sizeof(*w));
    if (!w) {
        rouse_err_set(eb, rc, "out of memory starting the %s writer", name);
        goto out_store;
    }
    w->st = st;
    w->next_ticket = 1;
    snprintf(w->name, sizeof(w->name), "%s", name);
    w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->efd < 0) {
        rc = rouse_err_set(eb, ROUSE_EIO, "eventfd for the %s writer: %s", name, strerror(errno));
        goto out_free;
    }
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    /* The thread takes no signals: the loop reads them through its signalfd. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int err = pthread_create(&w->thread, NULL, writer_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err) {
        rc = rouse_err_set(eb, ROUSE_EINTERNAL, "cannot start the %s writer thread: %s", name,
                           strerror(err));
        goto out_sync;
    }
    char tname[16];
    snprintf(tname, sizeof(tname), "rouse-%s", name);
    pthread_setname_np(w->thread, tname);
    *out = w;
    return 0;

out_sync:
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    close(w->efd);
out_free:
    free(w);
out_store:
    store_close(st);
    return rc;
}

static void free_list(job *j)
{
    while (j) {
        job *n = j->next;
        if (j->release) j->release(j->arg);
        free(j);
        j = n;
    }
}

void store_writer_destroy(store_writer *w)
{
    if (!w) return;
    pthread_mutex_lock(&w->lock);
    w->stop = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL); /* it finishes the queue first */
    free_list(w->done);            /* every job is done by now */
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    close(w->efd);
    store_close(w->st);
    free(w);
}

int store_writer_fd(const store_writer *w)
{
    return w->efd;
}

int store_writer_submit(store_writer *w, store_write_apply apply, const void *arg, size_t arg_len,
                        store_write_done done, void *user, uint64_t *ticket)
{
    return store_writer_submit_release(w, apply, arg, arg_len, done, NULL, user, ticket);
}

static int submit(store_writer *w, store_write_apply apply, const void *arg, size_t arg_len,
                  store_write_done done, store_write_release release, void *user, bool background,
                  uint64_t *ticket)
{
    job *j = malloc(sizeof(*j) + arg_len);
    if (!j) return ROUSE_ENOMEM;
    memset(j, 0, sizeof(*j));
    j->apply = apply;
    j->done = done;
    j->release = release;
    j->user = user;
    j->arg_len = arg_len;
    if (arg_len) memcpy(j->arg, arg, arg_len);
    rouse_errbuf_clear(&j->eb);
    j->ticket = w->next_ticket++;
    pthread_mutex_lock(&w->lock);
    if (w->stop) {
        pthread_mutex_unlock(&w->lock);
        free(j);
        return ROUSE_ESTATE;
    }
    if (w->queue_tail)
        w->queue_tail->next = j;
    else
        w->queue = j;
    w->queue_tail = j;
    if (!background) set_batch_policy(w, w->thread, false);
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    j->lprev = w->outstanding_tail;
    if (w->outstanding_tail)
        w->outstanding_tail->lnext = j;
    else
        w->outstanding = j;
    w->outstanding_tail = j;
    w->n_outstanding++;
    if (ticket) *ticket = j->ticket;
    return 0;
}

int store_writer_submit_release(store_writer *w, store_write_apply apply, const void *arg,
                                size_t arg_len, store_write_done done, store_write_release release,
                                void *user, uint64_t *ticket)
{
    return submit(w, apply, arg, arg_len, done, release, user, false, ticket);
}

int store_writer_submit_background(store_writer *w, store_write_apply apply, const void *arg,
                                   size_t arg_len, store_write_done done,
                                   store_write_release release, void *user)
{
    return submit(w, apply, arg, arg_len, done, release, user, true, NULL);
}

void store_writer_cancel(store_writer *w, uint64_t ticket)
{
    for (job *j = w->outstanding; j; j = j->lnext) {
        if (j->ticket != ticket) continue;
        j->cancelled = true;
        return;
    }
}

void store_writer_complete(store_writer *w)
{
    uint64_t n;
    while (read(w->efd, &n, sizeof(n)) < 0 && errno == EINTR) {
    }
    pthread_mutex_lock(&w->lock);
    job *j = w->done;
    w->done = w->done_tail = NULL;
    pthread_mutex_unlock(&w->lock);
    while (j) {
        job *next = j->next;
        if (j->lprev)
            j->lprev->lnext = j->lnext;
        else
            w->outstanding = j->lnext;
        if (j->lnext)
            j->lnext->lprev = j->lprev;
        else
            w->outstanding_tail = j->lprev;
        w->n_outstanding--;
        if (!j->cancelled && j->done) j->done(j->user, j->rc, &j->eb, j->arg);
        if (j->release) j->release(j->arg);
        free(j);
        j = next;
    }
}

int store_writer_pending(const store_writer *w)
{
    return w->n_outstanding;
}

void store_writer_stats_get(store_writer *w, store_writer_stats *out)
{
    pthread_mutex_lock(&w->lock);
    *out = w->stats;
    pthread_mutex_unlock(&w->lock);
}
