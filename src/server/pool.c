/*
 * The pool as a whole (pool.h): creating it, shutting it down, and what the
 * loop asks of it between events. The work is done by its parts, each in a
 * file of its own, calling one way (docs/architecture.md draws them):
 *
 *   pool_registry.c   reads the registry: configs of versions, routes
 *        |
 *   pool_sched.c      queues, dispatch, min/idle, deadlines, the fair share;
 *        |            the only caller of the pure policy (pool_policy.c)
 *        +----------------+----------------+
 *   pool_proc.c       pool_ipc.c       pool_stats.c
 *   processes:        the protocol:    cold starts, Server-Timing,
 *   start, pid map,   regions, send,   describe
 *   reap, late pids   replies
 *        |
 *   zygote_proc.c     the system calls: fork+exec, the zygote, kill, waitpid
 *
 * pool_check.c asserts the invariants of pool_int.h over all of them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "common/log.h"

#include "server/pool_int.h"

int pool_create(const pool_opts *o, pool **out, rouse_errbuf *eb)
{
    pool *p = calloc(1, sizeof(*p));
    if (!p) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    snprintf(p->exe, sizeof(p->exe), "%s", o->exe);
    snprintf(p->plan_dir, sizeof(p->plan_dir), "%s", o->plan_dir);
    snprintf(p->log_level, sizeof(p->log_level), "%s", o->log_level);
    p->weight_pages = o->weight_pages;
    p->gen_weight_pages = o->gen_weight_pages;
    p->iso = o->iso;
    p->max_instances = o->max_instances;
    p->st = o->st;
    p->blobs = o->blobs;
    p->remote = o->remote;
    p->clock = o->clock;
    p->clock_user = o->clock_user;
    p->ka_minute_ms = o->keepalive_minute_ms > 0 ? o->keepalive_minute_ms : KA_MINUTE_MS;
    p->output = o->output;
    p->ended = o->ended;
    p->hooks_user = o->hooks_user;
    p->next_call_id = 1;
    p->next_spawn_id = 1;
    p->next_batch_id = 1;
    p->batch_tag.kind = EP_BATCH_TIMER;
    p->batch_timer_fd = -1;
    /* Batches wait for more calls for microseconds: a timer of its own, as
     * the loop's wait is in milliseconds. A test clock has none (pool_tick
     * sends what is due). */
    if (!o->clock && o->epfd >= 0) {
        p->batch_timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &p->batch_tag};
        if (p->batch_timer_fd >= 0 &&
            epoll_ctl(o->epfd, EPOLL_CTL_ADD, p->batch_timer_fd, &ev) < 0) {
            close(p->batch_timer_fd);
            p->batch_timer_fd = -1;
        }
        if (p->batch_timer_fd < 0)
            LOG_WARN("pool", "no batch timer: waiting batches go at the loop's next tick");
    }
    proc_table_init(&p->procs, o->epfd, p->exe, p->log_level);
    p->procs.cg = p->iso && p->iso->sandbox ? &p->iso->cg : NULL;
    p->procs.zyg.sandbox = p->iso && p->iso->sandbox;
    zygote_start(&p->procs.zyg);
    *out = p;
    return 0;
}

void pool_stop_all(pool *p)
{
    pool_fail_all(p, "server is shutting down");
    /* What only workers hold: their regions and unsent socket ends. */
    for (proc *pr = p->procs.all; pr; pr = pr->all_next) {
        if (pr->kind != PROC_WORKER) continue;
        worker *w = (worker *)pr;
        pool_region_release(&w->region);
        if (w->peer_fd >= 0) close(w->peer_fd);
        w->peer_fd = -1;
    }
    proc_stop_all(&p->procs);
    p->templates = NULL;
    p->idle_head = p->idle_tail = NULL;
    p->n_instances = 0;
    p->n_spares = 0;
}

void pool_destroy(pool *p)
{
    if (!p) return;
    pool_stop_all(p);
    if (p->batch_timer_fd >= 0) close(p->batch_timer_fd);
    free(p);
}

void pool_stopping(pool *p)
{
    p->procs.zyg.stopping = true;
}

uint64_t pool_reply_due_ns(const pool *p)
{
    return p->reply_due_ns;
}

bool pool_poll_timed(const pool *p)
{
    return p->poll_timed_due_ns > pool_now(p);
}

void pool_note_poll(pool *p, uint64_t cpu_ns)
{
    p->poll_cpu_ns += cpu_ns;
}
