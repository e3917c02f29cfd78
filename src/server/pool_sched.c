/*
 * Scheduling of the pool (see pool_sched.h): one version pool per function
 * version in use, each with its template, its workers and a FIFO of waiting
 * calls. The decisions (dispatch, start, queue, reject, stop idle, keep min
 * warm, share the global cap fairly, stop the template) come from the pure
 * policy in pool_policy.c; this file applies them, and settles what the
 * processes' messages and ends mean for the calls.
 *
 * A worker starts as a fork of its pool's template (worker/template.h):
 * serve makes a socketpair, passes one end to the template with IPC_SPAWN
 * and learns the pid from the template's reply or the worker's READY.
 * With no template, one is started first ("from zero") and the worker
 * waits for it holding its socket end (peer_fd). Workers are reparented
 * to serve (a child subreaper), so serve reaps them like its own children.
 *
 * Invariants (besides those of pool_int.h):
 * - Every call ends exactly once (call_end): its completion runs unless it
 *   was cancelled, its body is freed or its memfd closed, it is freed.
 * - A worker, template or validator is freed only after it was reaped (so
 *   a pid is never confused with a later process), or, when it never had a
 *   process (its template died first), when its socket reports end of
 *   stream.
 * - Nothing on the request path (submit, pump, dispatch, replies) walks
 *   more than the workers of one pool, or the idle list under the cap.
 */
#include "rouse/weight_pages.h"
#include "server/pool_sched.h"
#include "server/route_policy.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "rouse/engine.h"
#include "server/pool_policy.h"
#include "store/blob_remote.h"
#include "worker/ipc.h"
#include "worker/sandbox.h"

#define MOD "pool"
#define VALIDATE_TIMEOUT_NS (600ull * 1000000000ull)
/* A template answers a spawn with the new worker's pid after one fork
 * (about a millisecond); one that has not answered in this long is stopped
 * or hung, and is replaced. */
#define SPAWN_ANSWER_NS (5000ull * 1000000ull)
/* After a new instance's first reply, its template is asked for a spare
 * only this much later: serve writes the reply to the client first, and
 * the spare's fork (page tables copied) and warm-up would take the cores
 * from it on a small machine. */
#define SPARE_AFTER_REPLY_NS (5ull * 1000000ull)
/* A generation past its deadline is ended by its instance between two
 * tokens or prefill chunks (timeout_generation); an instance that has not
 * answered it this long after is killed, as any other call's would be. */
#define GEN_TIMEOUT_GRACE_NS (5000ull * 1000000ull)

/* Replies expected sooner than SPIN_REPLY_MAX_NS after dispatch (by the
 * pool's average) make serve poll for up to twice that average plus
 * SPIN_SLACK_NS before it sleeps (pool_reply_due_ns). On virtual machines a
 * cross-CPU wake-up costs tens of microseconds, more than a small model's
 * whole inference; polling for a reply that is about to come saves one of
 * them per request. The loop's poll yields the CPU on each round, and
 * slower models never spin at all. */
#define SPIN_REPLY_MAX_NS (200ull * 1000ull)
#define SPIN_SLACK_NS (20ull * 1000ull)
/* Instances of a pool whose next request usually follows a reply within
 * POLL_GAP_MAX_NS poll for it (twice the average gap plus POLL_SLACK_NS)
 * instead of sleeping: the same wake-up saving on the instance's side. */
#define POLL_GAP_MAX_NS (60ull * 1000ull)
#define POLL_SLACK_NS (10ull * 1000ull)

static void worker_exited(pool *p, worker *w, int wstatus, bool no_process);

/* --- calls ----------------------------------------------------------------- */

static void call_free(call *c)
{
    if (c->body_fd >= 0) close(c->body_fd);
    free(c->body);
    free(c);
}

/* Seconds a client turned away from vp's full queue should wait. */
static int retry_after(const pool *p, const vpool *vp)
{
    int64_t inst = vp->cfg.scaling.max < p->max_instances ? vp->cfg.scaling.max : p->max_instances;
    int64_t slots = inst * (vp->cfg.scaling.concurrency > 0 ? vp->cfg.scaling.concurrency : 1);
    return pool_retry_after_s(vp->n_queued, vp->reply_ewma_ns,
                              slots > INT32_MAX ? INT32_MAX : (int)slots);
}

/* Ends a call: its completion gets the result (and res->fd, res->body). */
static void call_end(pool *p, call *c, pool_result *res)
{
    res->version = c->version;
    if (c->vp) res->memory_mb = c->vp->cfg.memory_mb;
    /* A call that ends without a reply (failed, timed out) waited until now
     * or until its dispatch. */
    if (res->run_ns == 0 && res->queue_ns == 0 && c->enq_ns) {
        uint64_t until = c->dispatch_ns ? c->dispatch_ns : pool_now(p);
        res->queue_ns = until > c->enq_ns ? until - c->enq_ns : 0;
    }
    if (res->status == 429) res->retry_after = c->vp ? retry_after(p, c->vp) : 1;
    if (c->done) {
        c->done(c->user, res);
    } else { /* cancelled: nobody to answer */
        if (res->fd >= 0) close(res->fd);
        free(res->body);
    }
    call_free(c);
}

static void call_fail(pool *p, call *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void call_fail(pool *p, call *c, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    pool_result res = {.status = status, .fd = -1, .json_len = -1, .error = msg};
    call_end(p, c, &res);
}

static void queue_push(vpool *vp, call *c, bool front)
{
    c->w = NULL;
    if (c->background) vp->n_bg_queued++;
    if (!c->background && vp->n_bg_queued > 0 && !front) {
        /* Synchronous calls go ahead of every background one. */
        call *prev = NULL, *k = vp->queue;
        while (k && !k->background) {
            prev = k;
            k = k->next;
        }
        c->next = k;
        if (prev)
            prev->next = c;
        else
            vp->queue = c;
        vp->n_queued++;
        return;
    }
    if (front) {
        c->next = vp->queue;
        vp->queue = c;
        if (!vp->queue_tail) vp->queue_tail = c;
    } else {
        c->next = NULL;
        if (vp->queue_tail)
            vp->queue_tail->next = c;
        else
            vp->queue = c;
        vp->queue_tail = c;
    }
    vp->n_queued++;
}

static call *queue_pop(vpool *vp)
{
    call *c = vp->queue;
    if (!c) return NULL;
    vp->queue = c->next;
    if (!vp->queue) vp->queue_tail = NULL;
    vp->n_queued--;
    if (c->background) vp->n_bg_queued--;
    c->next = NULL;
    return c;
}

/* Takes c out of vp's queue (prev is the call before it, or NULL). */
static void queue_unlink(vpool *vp, call *prev, call *c)
{
    if (prev)
        prev->next = c->next;
    else
        vp->queue = c->next;
    if (vp->queue_tail == c) vp->queue_tail = prev;
    vp->n_queued--;
    if (c->background) vp->n_bg_queued--;
    c->next = NULL;
}

static void fail_queue(pool *p, vpool *vp, int status, const char *msg)
{
    call *c;
    while ((c = queue_pop(vp)))
        call_fail(p, c, status, "%s", msg);
}

/* --- workers and templates ----------------------------------------------- */

/* A version's min on this node: its share when several nodes serve
 * (pool_set_min_share). */
static int64_t eff_min_of(const pool *p, const vpool *vp)
{
    if (vp->retired) return 0;
    int64_t min = vp->cfg.scaling.min;
    if (p->min_nodes <= 1 || min <= 0) return min;
    return route_min_share(min > INT32_MAX ? INT32_MAX : (int)min, p->min_rank, p->min_nodes);
}
#define eff_min(vp) eff_min_of(p, (vp))

/* Puts w on the idle list or takes it off, as its state says. */
static void idle_update(pool *p, worker *w)
{
    bool idle = w->vp && !w->held && w->h.state == PROC_READY && w->h.sock >= 0 &&
                w->n_inflight == 0;
    if (idle == w->idle) return;
    w->idle = idle;
    if (idle) {
        w->inext = NULL;
        w->iprev = p->idle_tail;
        if (p->idle_tail)
            p->idle_tail->inext = w;
        else
            p->idle_head = w;
        p->idle_tail = w;
    } else {
        if (w->iprev)
            w->iprev->inext = w->inext;
        else
            p->idle_head = w->inext;
        if (w->inext)
            w->inext->iprev = w->iprev;
        else
            p->idle_tail = w->iprev;
        w->iprev = w->inext = NULL;
    }
}

/* Leaves the counted states (starting/ready) for stopping. */
static void worker_uncount(pool *p, worker *w)
{
    if (w->h.state == PROC_STOPPING) return;
    assert(!w->vp || w->held || (w->vp->n_instances > 0 && p->n_instances > 0));
    w->h.state = PROC_STOPPING;
    if (w->vp && !w->held) { /* a held spare counts as its template's spare */
        w->vp->n_instances--;
        p->n_instances--;
    }
    idle_update(p, w);
}

/* A template stops being its pool's (and keeps no spare any more: the
 * spare ends with it, or sees its channel close). */
static void held_release(pool *p, tmpl *t);

static void tmpl_leave(pool *p, tmpl *t)
{
    t->h.state = PROC_STOPPING;
    held_release(p, t);
    if (t->spare) {
        t->spare = false;
        t->spare_pid = 0;
        p->n_spares--;
    }
    if (t->vp) t->version = t->vp->version; /* a live change may have renamed its pool */
    if (t->vp && t->vp->tmpl == t) t->vp->tmpl = NULL;
    t->vp = NULL;
}

/* Takes the in-flight calls away from a worker (oldest first); its region
 * is not lent any more (the worker is being stopped). */
static call *worker_take_inflight(pool *p, worker *w)
{
    call *list = w->inflight;
    w->inflight = w->inflight_tail = NULL;
    w->n_inflight = 0;
    w->n_msgs = 0;
    w->region.lent_to = NULL;
    idle_update(p, w);
    return list;
}

/* Puts calls back at the front of their pool's queue, keeping their order. */
static void requeue(vpool *vp, call *list)
{
    call *rev = NULL;
    while (list) {
        call *n = list->next;
        list->next = rev;
        rev = list;
        list = n;
    }
    while (rev) {
        call *n = rev->next;
        rev->first = false;
        rev->batch_id = 0;
        rev->batch_n = 0;
        queue_push(vp, rev, true);
        rev = n;
    }
}

static void waiting_add(tmpl *t, worker *w)
{
    w->t = t;
    w->tprev = NULL;
    w->tnext = t->waiting;
    if (t->waiting) t->waiting->tprev = w;
    t->waiting = w;
    t->n_waiting++;
}

static void waiting_remove(worker *w)
{
    tmpl *t = w->t;
    if (!t) return;
    if (w->tprev)
        w->tprev->tnext = w->tnext;
    else
        t->waiting = w->tnext;
    if (w->tnext) w->tnext->tprev = w->tprev;
    w->tprev = w->tnext = NULL;
    w->t = NULL;
    t->n_waiting--;
}

static void vp_workers_remove(worker *w)
{
    vpool *vp = w->vp;
    if (!vp || w->held) return; /* a held spare is not on the list */
    if (w->vprev)
        w->vprev->vnext = w->vnext;
    else
        vp->workers = w->vnext;
    if (w->vnext) w->vnext->vprev = w->vprev;
    w->vprev = w->vnext = NULL;
}

static void vp_workers_add(vpool *vp, worker *w)
{
    w->vprev = NULL;
    w->vnext = vp->workers;
    if (vp->workers) vp->workers->vprev = w;
    vp->workers = w;
}

/* A new worker of vp; a held spare (`held`) stays off vp->workers. */
static worker *worker_new(pool *p, vpool *vp, int sock, bool held)
{
    worker *w = calloc(1, sizeof(*w));
    if (!w) return NULL;
    proc_add(&p->procs, &w->h, PROC_WORKER, sock, 0, pool_now(p));
    w->vp = vp;
    w->peer_fd = -1;
    w->held = held;
    pool_region_init(&w->region);
    if (!held) vp_workers_add(vp, w);
    return w;
}

/* Unlinks a settled worker; freed after the epoll batch. */
static void bury_worker(pool *p, worker *w)
{
    waiting_remove(w);
    worker_uncount(p, w);
    vp_workers_remove(w);
    w->vp = NULL;
    idle_update(p, w);
    pool_region_release(&w->region);
    if (w->peer_fd >= 0) close(w->peer_fd);
    w->peer_fd = -1;
    proc_bury(&p->procs, &w->h);
}

static void bury_template(pool *p, tmpl *t)
{
    assert(!t->waiting);
    tmpl_leave(p, t);
    if (t->prev)
        t->prev->next = t->next;
    else
        p->templates = t->next;
    if (t->next) t->next->prev = t->prev;
    proc_bury(&p->procs, &t->h);
}

static void validators_remove(pool *p, validator *v)
{
    if (v->prev)
        v->prev->next = v->next;
    else if (p->validators == v)
        p->validators = v->next;
    if (v->next) v->next->prev = v->prev;
    v->prev = v->next = NULL;
}

static void kill_worker(pool *p, worker *w, const char *why)
{
    LOG_WARN(MOD, "killing instance %d: %s", (int)w->h.pid, why);
    worker_uncount(p, w);
    proc_kill(&p->procs, &w->h);
    idle_update(p, w);
}

/* Stops a worker gently: it exits at end of stream. */
static void stop_worker(pool *p, worker *w, const char *why)
{
    if (w->vp)
        LOG_INFO(MOD, "function %s v%" PRId64 ": stopping %s instance %d (%s)", w->vp->name,
                 w->vp->version, w->n_inflight ? "busy" : "idle", (int)w->h.pid, why);
    worker_uncount(p, w);
    proc_close(&p->procs, &w->h);
    idle_update(p, w);
}

static void kill_template(pool *p, tmpl *t, const char *why)
{
    LOG_WARN(MOD, "killing template %d: %s", (int)t->h.pid, why);
    tmpl_leave(p, t);
    proc_kill(&p->procs, &t->h);
}

static void stop_template(pool *p, tmpl *t, const char *why)
{
    if (t->vp)
        LOG_INFO(MOD, "function %s v%" PRId64 ": stopping template %d (%s)", t->vp->name,
                 t->vp->version, (int)t->h.pid, why);
    tmpl_leave(p, t);
    proc_close(&p->procs, &t->h);
}

static int worker_free_slots(const worker *w)
{
    bool open = w->h.state == PROC_READY || (w->primed && w->h.state == PROC_STARTING);
    if (!open || w->h.sock < 0 || !w->vp) return 0;
    int c = (int)w->vp->cfg.scaling.concurrency;
    return c > w->n_msgs ? c - w->n_msgs : 0;
}

/* --- starting processes ---------------------------------------------------- */

const char *sched_config_digest(const fn_config *cfg)
{
    return strncmp(cfg->model, "sha256:", 7) == 0 ? cfg->model + 7 : NULL;
}

const char *sched_tenant(const fn_config *cfg)
{
    return cfg->tenant[0] ? cfg->tenant : "default";
}

/* A sandboxed template's arguments (isolation "sandbox"): the tenant's
 * ids, serve's control-group roots and the tenant's pid namespace; each instance's memory limit is the
 * --memory-mb every worker gets (worker_argv). */
static int sandbox_argv(const pool *p, const fn_config *cfg, sched_argbuf *buf, char **argv)
{
    int argc = 0;
    snprintf(buf->uid, sizeof(buf->uid), "%u", (unsigned)sandbox_tenant_id(sched_tenant(cfg)));
    argv[argc++] = "--sandbox";
    argv[argc++] = buf->uid;
    for (int c = 0; c < CGROUP_N_CTL; c++) {
        if (!p->iso->cg.dir[c][0]) continue;
        snprintf(buf->cgroup[c], sizeof(buf->cgroup[c]), "%s=%s", cgroup_ctl_name((cgroup_ctl)c),
                 p->iso->cg.dir[c]);
        argv[argc++] = p->iso->cg.v2[c] ? "--cgroup2" : "--cgroup";
        argv[argc++] = buf->cgroup[c];
    }
    if (p->iso->pidns) {
        rouse_errbuf eb;
        rouse_errbuf_clear(&eb);
        /* Never a template outside its tenant's namespace: without one
         * the template refuses its arguments and the function does not
         * start (the reason is logged here). */
        if (tenant_ns_arg(p->iso->pidns, sched_tenant(cfg), buf->pidns, sizeof(buf->pidns), &eb) <
            0) {
            LOG_ERROR(MOD, "%s", eb.msg);
            snprintf(buf->pidns, sizeof(buf->pidns), "unavailable");
        }
        argv[argc++] = "--pidns";
        argv[argc++] = buf->pidns;
    }
    return argc;
}

/* The arguments of `rouse __template` or `rouse __instance --check`. */
static int worker_argv(pool *p, const char *model_path, const char *name, int64_t version,
                       const char *digest, const fn_config *cfg, bool check, sched_argbuf *buf,
                       char *argv[TEMPLATE_ARGV_MAX])
{
    char *ver = buf->ver;
    snprintf(ver, sizeof(buf->ver), "%" PRId64, version);
    /* The worker answers with the name its tenant calls the function by
     * (model_name), not the registry's "tenant:name" key (store.h). */
    const char *colon = strchr(name, ':');
    char *head[] = {p->exe,         check ? "__instance" : "__template",
                    "--fd",         "3",
                    "--model",      (char *)model_path,
                    "--name",       (char *)(colon ? colon + 1 : name),
                    "--version",    ver,
                    "--plan-cache", p->plan_dir,
                    "--log-level",  p->log_level};
    int argc = (int)(sizeof(head) / sizeof(head[0]));
    memcpy(argv, head, sizeof(head));
    if (check) argv[argc++] = "--check";
    /* memory_mb bounds each plan's activation memory: the deploy check
     * refuses a model over it at its declared shapes, an instance answers
     * 413 to a request over it, and the spare's warm-up stays within it. */
    snprintf(buf->memory_mb, sizeof(buf->memory_mb), "%" PRId64, cfg->memory_mb);
    argv[argc++] = "--memory-mb";
    argv[argc++] = buf->memory_mb;
    /* fp32 says nothing, so the argv of an fp32 function is what it was. */
    if (cfg->precision != ROUSE_PRECISION_FP32) {
        argv[argc++] = "--precision";
        argv[argc++] = (char *)rouse_precision_name(cfg->precision);
    }
    if (cfg->task == FN_TASK_TEXT_GENERATION) {
        snprintf(buf->max_context, sizeof(buf->max_context), "%" PRId64, cfg->max_context);
        argv[argc++] = "--max-context";
        argv[argc++] = buf->max_context;
        /* Several streams per instance decode together (worker/gen_streams.h). */
        if (cfg->scaling.concurrency > 1) {
            snprintf(buf->streams, sizeof(buf->streams), "%" PRId64, cfg->scaling.concurrency);
            argv[argc++] = "--streams";
            argv[argc++] = buf->streams;
        }
        /* Its "batching": new streams wait for company and are prefilled
         * together (worker/gen_streams.h). */
        if (cfg->batching.mode != FN_BATCH_OFF) {
            snprintf(buf->max_batch, sizeof(buf->max_batch), "%" PRId64, cfg->batching.max_batch);
            snprintf(buf->delay_us, sizeof(buf->delay_us), "%" PRId64,
                     cfg->batching.max_delay_us);
            argv[argc++] = "--prefill-batch";
            argv[argc++] = buf->max_batch;
            argv[argc++] = "--prefill-delay-us";
            argv[argc++] = buf->delay_us;
        }
        const char *digests[3] = {cfg->tokenizer, cfg->vocab, cfg->merges};
        static const char *const flags[3] = {"--tokenizer", "--vocab", "--merges"};
        for (int i = 0; i < 3; i++) {
            if (!digests[i][0] || blob_path(p->blobs, digests[i], buf->tok[i], PATH_MAX) < 0)
                continue;
            argv[argc++] = (char *)flags[i];
            argv[argc++] = buf->tok[i];
        }
    }
    /* int8's calibration samples, each by its blob's path. */
    for (int i = 0; i < cfg->n_calibration; i++) {
        char path[PATH_MAX];
        if (blob_path(p->blobs, cfg->calibration[i].digest, path, sizeof(path)) < 0) continue;
        snprintf(buf->calib[i], sizeof(buf->calib[i]), "%s=%s", cfg->calibration[i].input, path);
        argv[argc++] = "--calibrate";
        argv[argc++] = buf->calib[i];
    }
    /* Dynamic batching: the check refuses a model that cannot batch, the
     * template prepares every batch size up to the largest. */
    if (cfg->batching.mode != FN_BATCH_OFF && cfg->task != FN_TASK_TEXT_GENERATION) {
        snprintf(buf->max_batch, sizeof(buf->max_batch), "%" PRId64, cfg->batching.max_batch);
        argv[argc++] = "--max-batch";
        argv[argc++] = buf->max_batch;
    }
    /* A template is told its blob's digest, so that it opens the cached
     * plan without hashing the model file again. */
    if (!check && digest) {
        argv[argc++] = "--sha256";
        argv[argc++] = (char *)digest;
    }
    /* The zygote keeps the template's weights in huge pages when warming
     * its model (template_warm). */
    int wp = cfg->task == FN_TASK_TEXT_GENERATION ? p->gen_weight_pages : p->weight_pages;
    if (!check && wp != ROUSE_WEIGHT_PAGES_4K) {
        argv[argc++] = "--weight-pages";
        argv[argc++] = (char *)rouse_weight_pages_name((rouse_weight_pages)wp);
    }
    if (!check && p->iso && p->iso->sandbox) argc += sandbox_argv(p, cfg, buf, argv + argc);
    argv[argc] = NULL;
    return argc;
}

int sched_template_argv(pool *p, const char *model_path, const char *name, int64_t version,
                        const char *digest, const fn_config *cfg, sched_argbuf *buf,
                        char *argv[TEMPLATE_ARGV_MAX])
{
    return worker_argv(p, model_path, name, version, digest, cfg, false, buf, argv);
}

/* Starts vp's template: forked by the zygote, exec'd without one. */
static int start_template(pool *p, vpool *vp, rouse_errbuf *eb)
{
    uint64_t t0 = pool_now(p);
    tmpl *t = calloc(1, sizeof(*t));
    if (!t) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    sched_argbuf buf;
    char *argv[TEMPLATE_ARGV_MAX];
    int argc = worker_argv(p, vp->model_path, vp->name, vp->version, sched_config_digest(&vp->cfg),
                           &vp->cfg, false, &buf, argv);
    bool pending;
    int rc = proc_spawn(&p->procs, &t->h, PROC_TEMPLATE, argv, argc, t0, &pending, eb);
    if (rc < 0) {
        free(t);
        return rc;
    }
    t->vp = vp;
    snprintf(t->name, sizeof(t->name), "%s", vp->name);
    t->version = vp->version;
    t->last_used_ns = t0; /* the start includes the fork or exec */
    t->next = p->templates;
    if (p->templates) p->templates->prev = t;
    p->templates = t;
    vp->tmpl = t;
    if (pending)
        LOG_DEBUG(MOD, "function %s v%" PRId64 ": template asked of the zygote", vp->name,
                  vp->version);
    else
        LOG_INFO(MOD, "function %s v%" PRId64 ": template %d starting (exec)", vp->name,
                 vp->version, (int)t->h.pid);
    return 0;
}

/* --- blobs this node lacks ------------------------------------------------ */

static void blob_fetched(void *user, int rc, const char *msg)
{
    vpool *vp = user;
    pool *p = vp->pool_of;
    vp->fetch_ticket = 0;
    if (rc == 0) {
        LOG_INFO(MOD, "function %s v%" PRId64 ": a blob of it was fetched", vp->name, vp->version);
        sched_pump(p, vp);
        return;
    }
    LOG_ERROR(MOD, "function %s v%" PRId64 ": %s", vp->name, vp->version, msg);
    vp->no_start_until_ns = pool_now(p) + 1000000000ull;
    char text[600];
    snprintf(text, sizeof(text), "this node lacks a blob of this function and %s: %s",
             rc == ROUSE_ENOTFOUND ? "no other node has it" : "could not fetch it", msg);
    fail_queue(p, vp, rc == ROUSE_ENOTFOUND ? 503 : 502, text);
}

/* Whether the blobs vp's template reads are here: 0 yes (or nowhere to
 * fetch them from: the start fails as it would have); ROUSE_EBUSY while
 * one is being fetched (the start waits, its calls stay queued). */
static int blobs_ready(pool *p, vpool *vp)
{
    if (!p->remote || !blob_remote_has_sources(p->remote)) return 0;
    const fn_config *cfg = &vp->cfg;
    const char *need[4 + FN_CALIB_MAX];
    int n = 0;
    need[n++] = cfg->model;
    const char *tok[3] = {cfg->tokenizer, cfg->vocab, cfg->merges};
    for (int i = 0; i < 3; i++)
        if (tok[i][0]) need[n++] = tok[i];
    for (int i = 0; i < cfg->n_calibration; i++)
        need[n++] = cfg->calibration[i].digest;
    if (vp->fetch_ticket) return ROUSE_EBUSY;
    for (int i = 0; i < n; i++) {
        if (blob_stat(p->blobs, need[i], NULL) != ROUSE_ENOTFOUND) continue;
        vp->pool_of = p;
        if (blob_remote_fetch(p->remote, need[i], blob_fetched, vp, &vp->fetch_ticket) < 0) {
            vp->fetch_ticket = 0;
            return 0;
        }
        LOG_INFO(MOD, "function %s v%" PRId64 ": fetching blob %s before its template starts",
                 vp->name, vp->version, need[i]);
        return ROUSE_EBUSY;
    }
    return 0;
}

/* Asks the template for one worker. A failure breaks the template: kill it
 * (the worker's socket then ends and the worker is dropped). */
static void send_spawn(pool *p, worker *w)
{
    tmpl *t = w->t;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    w->spawn_id = p->next_spawn_id++;
    w->spawn_ns = pool_now(p);
    if (!w->held) t->last_used_ns = w->spawn_ns; /* a held spare's is no use */
    int rc = pool_ipc_send_spawn(t->h.sock, w->spawn_id, w->peer_fd, &eb);
    w->peer_fd = -1;
    if (rc < 0) kill_template(p, t, eb.msg);
}

static void dispatch(pool *p, worker *w, call *c);
static void spare_set(pool *p, tmpl *t, bool on);
static void promote_held(pool *p, vpool *vp, tmpl *t);
static bool batching(const vpool *vp);

/* From zero, right behind a new worker's spawn, the oldest waiting call
 * goes down its socket (the worker is primed): the instance finds it there
 * once it is up, with no round trip through serve between its READY and
 * its first call. Not for a batching function, whose waiting calls go
 * together once an instance is ready; nor in a burst from a ready
 * template, where a call bound to an instance still starting would wait
 * for it while others come free (measured: half the instances started for
 * 32 mlp calls, each start slower for the first runs beside it). */
static void prime(pool *p, worker *w)
{
    vpool *vp = w->vp;
    if (!vp || !vp->queue || batching(vp) || !w->t || w->t->h.sock < 0 || w->h.sock < 0) return;
    w->primed = true;
    dispatch(p, w, queue_pop(vp));
}

static int start_worker(pool *p, vpool *vp)
{
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    int rc;
    if (!vp->tmpl && (rc = blobs_ready(p, vp)) < 0) return rc;
    if (!vp->tmpl && (rc = start_template(p, vp, &eb)) < 0) {
        LOG_ERROR(MOD, "cannot start a template of %s: %s", vp->name, eb.msg);
        return rc;
    }
    if (vp->tmpl->held && vp->tmpl->h.state == PROC_READY) {
        promote_held(p, vp, vp->tmpl);
        return 0;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        LOG_ERROR(MOD, "socketpair: %s", strerror(errno));
        return ROUSE_EIO;
    }
    worker *w = worker_new(p, vp, sv[0], false);
    if (!w) {
        close(sv[0]);
        close(sv[1]);
        return ROUSE_ENOMEM;
    }
    w->peer_fd = sv[1];
    tmpl *t = vp->tmpl;
    waiting_add(t, w);
    w->kind = t->h.state == PROC_READY ? START_TEMPLATE : START_ZERO;
    vp->n_instances++;
    p->n_instances++;
    if (t->h.state != PROC_READY) return 0;
    /* A warm spare (it said so) takes this spawn: the oldest waiting call
     * goes down the new socket right behind it, so the spare finds it there
     * once handed the socket, as a warm instance would. */
    bool spare_warm = t->spare && t->spare_pid > 0;
    send_spawn(p, w);
    if (spare_warm && t->h.sock >= 0) {
        /* Taken: it is this instance now, and the template keeps no other
         * until asked again (maybe_allow_spare, once this call is
         * answered). The word goes right behind the spawn, so a template
         * whose spare failed to take it and forked another drops that one
         * too: serve counts no spare. */
        spare_set(p, t, false);
        w->primed = true;
        if (vp->queue) {
            LOG_DEBUG(MOD, "function %s v%" PRId64 ": the warm spare takes a request with its spawn",
                      vp->name, vp->version);
            dispatch(p, w, queue_pop(vp));
        }
    }
    return 0;
}

/* --- spares ------------------------------------------------------------------ */

/* Instances and spares: what the global cap bounds. */
static int global_used(const pool *p)
{
    return p->n_instances + p->n_spares;
}

/* Tells a template to keep a spare or to drop it. */
static void spare_set(pool *p, tmpl *t, bool on)
{
    if (t->spare == on) return;
    if (!on) held_release(p, t);
    if (t->h.sock >= 0) {
        rouse_errbuf eb;
        rouse_errbuf_clear(&eb);
        ipc_msg m;
        ipc_msg_init(&m, IPC_SPARE, 0);
        m.status = on ? 1 : 0;
        if (ipc_send(t->h.sock, &m, -1, &eb) < 0 && on) return;
    } else if (on) {
        return;
    }
    t->spare = on;
    t->spare_pid = 0;
    p->n_spares += on ? 1 : -1;
}

/* Whether an instance of vp is starting or has not yet answered (or, for
 * a stream, begun to answer) its first call. */
static bool first_call_pending(const vpool *vp)
{
    for (const worker *w = vp->workers; w; w = w->vnext) {
        if (w->h.state == PROC_STARTING) return true;
        if (w->inflight && w->inflight->first && !w->inflight->chunked) return true;
    }
    return false;
}

/* A ready template gets a spare when the cap has room for one, once the
 * instances it started have their first answer: a spare warming up (and a
 * generator's template preparing its other plans, which waits for this
 * word) would take the CPU from it. */
static void maybe_allow_spare(pool *p, tmpl *t)
{
    if (!t || t->spare || t->h.state != PROC_READY || t->h.sock < 0 || !t->vp) return;
    if (t->vp->spare_after_ns > pool_now(p)) return;
    if (global_used(p) >= p->max_instances) return;
    if (first_call_pending(t->vp)) return;
    spare_set(p, t, true);
}

/* Connects a template's warm spare to serve ahead of need: a spawn of its
 * own, whose socket and shared region are made now, so that the request
 * that takes the spare later goes straight down its socket, as to a warm
 * instance (promote_held): no spawn, no hand-off through the template and
 * no region to make on its path. The spare stays the template's in the
 * count (a spare, not an instance) until then. */
static void hold_spare(pool *p, tmpl *t)
{
    vpool *vp = t->vp;
    if (!vp || t->held || !t->spare || t->h.state != PROC_READY || t->h.sock < 0) return;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        LOG_WARN(MOD, "socketpair: %s", strerror(errno));
        return;
    }
    worker *w = worker_new(p, vp, sv[0], true);
    if (!w) {
        close(sv[0]);
        close(sv[1]);
        return;
    }
    w->peer_fd = sv[1];
    w->kind = START_TEMPLATE;
    waiting_add(t, w);
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    uint64_t need = vp->region_bytes > REGION_MIN_BYTES ? vp->region_bytes : REGION_MIN_BYTES;
    if (pool_region_reserve(&w->region, need, &eb) < 0) /* then made by its first request */
        LOG_DEBUG(MOD, "held spare: %s", eb.msg);
    t->held = w;
    LOG_DEBUG(MOD, "function %s v%" PRId64 ": its template's warm spare %d is connected ahead",
              vp->name, vp->version, (int)t->spare_pid);
    send_spawn(p, w); /* a failure kills the template, which releases w */
}

/* The held spare goes (its template dropped it or left its pool): closed,
 * it ends at end of stream and is reaped as any worker is. */
static void held_release(pool *p, tmpl *t)
{
    worker *w = t->held;
    if (!w) return;
    t->held = NULL;
    w->h.state = PROC_STOPPING;
    w->vp = NULL;
    proc_close(&p->procs, &w->h);
}

/* A held spare ended or failed on its own: its template keeps no spare
 * now (serve asks again, maybe_allow_spare), and w belongs to no pool. */
static void held_lost(pool *p, worker *w)
{
    if (!w->held || !w->vp) return;
    tmpl *t = w->vp->tmpl;
    if (t && t->held == w) {
        t->held = NULL;
        spare_set(p, t, false);
    }
    w->h.state = PROC_STOPPING;
    w->vp = NULL;
}

/* A request takes the held spare: it is an instance from now on, and
 * the oldest waiting call goes down its socket at once (if it is still
 * connecting, right behind its spawn: primed). The template keeps no
 * other spare until asked again (maybe_allow_spare, once this call is
 * answered). */
static void promote_held(pool *p, vpool *vp, tmpl *t)
{
    worker *w = t->held;
    t->held = NULL;
    spare_set(p, t, false);
    w->held = false;
    vp_workers_add(vp, w);
    vp->n_instances++;
    p->n_instances++;
    uint64_t now = pool_now(p);
    w->promoted_ns = now;
    w->spawn_ns = t->last_used_ns = now;
    if (w->h.state == PROC_READY)
        w->h.ready_ns = w->idle_since_ns = now; /* an instance from now */
    else
        w->primed = true;
    idle_update(p, w);
    LOG_DEBUG(MOD, "function %s v%" PRId64 ": the held spare %d takes a request", vp->name,
              vp->version, (int)w->h.pid);
    if (vp->queue) dispatch(p, w, queue_pop(vp));
}

/* Under pressure a spare goes first: one of another pool's templates if
 * there is one, else `own`'s. True when one was dropped. */
static bool drop_spare(pool *p, const tmpl *own)
{
    tmpl *last = NULL;
    for (tmpl *t = p->templates; t; t = t->next) {
        if (!t->spare) continue;
        if (t != own) {
            spare_set(p, t, false);
            LOG_DEBUG(MOD, "template %d: spare dropped to make room", (int)t->h.pid);
            return true;
        }
        last = t;
    }
    if (!last) return false;
    spare_set(p, last, false);
    return true;
}

/* --- dispatch and the policy ----------------------------------------------- */

/* serve's CPU time so far (its loop's thread): batching weighs what a
 * message costs serve. A system call, so only for the messages it times. */
static uint64_t loop_cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) < 0) return 0;
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Notes that a reply to a call of vp dispatched now is due soon. */
static void expect_reply(pool *p, const vpool *vp, uint64_t now)
{
    if (vp->reply_ewma_ns > SPIN_REPLY_MAX_NS) return;
    uint64_t until = now + 2 * vp->reply_ewma_ns + SPIN_SLACK_NS;
    if (until > p->reply_due_ns) p->reply_due_ns = until;
    if (vp->cfg.batching.mode != FN_BATCH_OFF && until > p->poll_timed_due_ns)
        p->poll_timed_due_ns = until;
}

/* Sends c to w; on failure the worker is broken: kill it and requeue. */
static void dispatch(pool *p, worker *w, call *c)
{
    assert(worker_free_slots(w) > 0 && c->vp == w->vp && !c->w);
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    vpool *vp = w->vp;
    /* Batching weighs a batch's CPU time per request against a lone
     * call's: one lone call in eight is timed, which is plenty (every one
     * until auto mode knows four, or a first is known). */
    bool timed = vp->cfg.batching.mode != FN_BATCH_OFF && c->type == IPC_INFER &&
                 (vp->n_lone++ % 8 == 0 || (vp->cfg.batching.mode == FN_BATCH_AUTO
                                                ? vp->aimd.n_row[0] < BATCH_CLASS_MIN_SAMPLES
                                                : !vp->runs.cpu_ns[0]));
    uint64_t cpu0 = timed ? loop_cpu_ns() : 0;
    uint64_t now = pool_now(p);
    ipc_msg m;
    ipc_msg_init(&m, (ipc_type)c->type, c->id);
    m.json_len = c->json_len;
    m.body_len = c->body_len;
    m.version = c->version;
    /* How soon this worker's next request usually comes after a reply. */
    if (w->n_inflight == 0 && w->served_first) {
        uint64_t gap = now - w->idle_since_ns;
        vp->gap_ewma_ns = vp->gap_ewma_ns ? (vp->gap_ewma_ns * 7 + gap) / 8 : gap;
    }
    if (vp->gap_ewma_ns && vp->gap_ewma_ns <= POLL_GAP_MAX_NS)
        m.poll_us = (uint32_t)((2 * vp->gap_ewma_ns + POLL_SLACK_NS) / 1000u);
    if (timed) m.flags |= IPC_F_CPU;
    bool sent;
    int rc = pool_ipc_send_request(w->h.sock, &w->region, &m, c, c->body, &c->body_fd, c->body_len,
                                   &sent, &eb);
    if (rc < 0 && !sent) {
        /* Nothing was sent: the worker is fine, the request cannot go. */
        call_fail(p, c, 500, "%s", eb.msg);
        return;
    }
    /* A held spare's region is made this big ahead of its first call. */
    if (w->region.size > vp->region_bytes) vp->region_bytes = w->region.size;
    c->w = w;
    c->next = NULL;
    c->dispatch_ns = now;
    c->send_cpu_ns = timed ? loop_cpu_ns() - cpu0 : 0;
    expect_reply(p, vp, now);
    c->first = !w->served_first;
    w->served_first = true;
    if (w->inflight_tail)
        w->inflight_tail->next = c;
    else
        w->inflight = c;
    w->inflight_tail = c;
    w->n_inflight++;
    w->n_msgs++;
    idle_update(p, w);
    if (rc < 0) {
        kill_worker(p, w, eb.msg);
        requeue(vp, worker_take_inflight(p, w));
    }
}

/* --- dynamic batching ------------------------------------------------------ */

static bool batching(const vpool *vp)
{
    /* A generator's batching is its instances' (their prefill in groups,
     * worker/gen_streams.h): its calls go as they come. */
    return vp->cfg.batching.mode != FN_BATCH_OFF && vp->cfg.task != FN_TASK_TEXT_GENERATION;
}

/* Whether c may join a batch: an inference whose body is in memory (a
 * spilled one travels alone in its memfd). */
static bool batchable(const call *c)
{
    return c->type == IPC_INFER && c->body && c->body_fd < 0;
}

static int batch_limit(const vpool *vp)
{
    return vp->cfg.batching.mode == FN_BATCH_AUTO ? vp->aimd.limit
                                                  : (int)vp->cfg.batching.max_batch;
}

/* Wakes the loop at `at` (monotonic ns) for a batch waiting until then. */
static void batch_timer_arm(pool *p, uint64_t at)
{
    if (p->batch_timer_fd < 0 || (p->batch_timer_at && p->batch_timer_at <= at)) return;
    struct itimerspec its = {.it_value = {.tv_sec = (time_t)(at / 1000000000ull),
                                          .tv_nsec = (long)(at % 1000000000ull)}};
    if (timerfd_settime(p->batch_timer_fd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
        p->batch_timer_at = at;
}

/* Sends calls[0..k) to w as one batch; on failure as dispatch does. */
static void dispatch_batch(pool *p, worker *w, call **calls, int k)
{
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    vpool *vp = w->vp;
    /* Every batch is timed: what it costs per call decides the next. */
    uint64_t cpu0 = loop_cpu_ns();
    uint64_t now = pool_now(p);
    pool_batch_part parts[FN_BATCH_MAX];
    for (int i = 0; i < k; i++)
        parts[i] = (pool_batch_part){.id = calls[i]->id,
                                     .body = calls[i]->body,
                                     .len = calls[i]->body_len,
                                     .json_len = calls[i]->json_len};
    ipc_msg m;
    ipc_msg_init(&m, IPC_BATCH, p->next_batch_id++);
    m.version = calls[0]->version;
    if (w->n_inflight == 0 && w->served_first) {
        uint64_t gap = now - w->idle_since_ns;
        vp->gap_ewma_ns = vp->gap_ewma_ns ? (vp->gap_ewma_ns * 7 + gap) / 8 : gap;
    }
    if (vp->gap_ewma_ns && vp->gap_ewma_ns <= POLL_GAP_MAX_NS)
        m.poll_us = (uint32_t)((2 * vp->gap_ewma_ns + POLL_SLACK_NS) / 1000u);
    m.flags |= IPC_F_CPU;
    bool sent;
    int rc = pool_ipc_send_batch(w->h.sock, &w->region, &m, calls[0], parts, k, &sent, &eb);
    if (rc < 0 && !sent) {
        for (int i = 0; i < k; i++)
            call_fail(p, calls[i], 500, "%s", eb.msg);
        return;
    }
    for (int i = 0; i < k; i++) {
        call *c = calls[i];
        c->w = w;
        c->next = NULL;
        c->dispatch_ns = now;
        c->batch_id = m.id;
        c->batch_n = k;
        c->first = i == 0 && !w->served_first;
        if (w->inflight_tail)
            w->inflight_tail->next = c;
        else
            w->inflight = c;
        w->inflight_tail = c;
        w->n_inflight++;
    }
    w->served_first = true;
    w->n_msgs++;
    calls[0]->send_cpu_ns = loop_cpu_ns() - cpu0;
    expect_reply(p, vp, now);
    idle_update(p, w);
    if (rc < 0) {
        kill_worker(p, w, eb.msg);
        requeue(vp, worker_take_inflight(p, w));
    }
}

/* The head of vp's queue may join a batch: sends what the policy says to w
 * (false when the batch waits for more calls, the timer armed). */
static bool pump_batch(pool *p, vpool *vp, worker *w)
{
    int limit = batch_limit(vp), n = 0, n_inst = 0, n_free = 0;
    bool idle = true;
    uint64_t now = pool_now(p);
    for (const worker *o = vp->workers; o; o = o->vnext) {
        if (o->n_inflight) idle = false;
        if (worker_free_slots(o) > 0) {
            n_free++;
            n_inst++;
        } else if (o->h.state == PROC_READY && o->inflight && vp->reply_ewma_ns &&
                   now < o->inflight->dispatch_ns + 2 * vp->reply_ewma_ns) {
            /* Busy, but by the average reply time free before a batch sent
             * now would end: it counts for the shares. One overdue (a long
             * request), or with no replies yet to judge by, does not. */
            n_inst++;
        }
    }
    /* Enough of the queue to see each instance's share. */
    int want = n_inst > 1 ? limit * n_inst : limit;
    const call *newest = vp->queue;
    for (const call *c = vp->queue; c && n < want && batchable(c); c = c->next) {
        if (c->enq_ns > newest->enq_ns) newest = c; /* a requeued call may come first */
        n++;
    }
    uint64_t wait, oldest = vp->queue->enq_ns;
    batch_view v = {.n_ready = n,
                    .limit = limit,
                    .pool_idle = idle,
                    .waited_ns = now > oldest ? now - oldest : 0,
                    .max_delay_ns = (uint64_t)vp->cfg.batching.max_delay_us * 1000u,
                    .span_ns = newest->enq_ns > oldest ? newest->enq_ns - oldest : 0,
                    .quiet_ns = now > newest->enq_ns ? now - newest->enq_ns : 0,
                    .gap_ns = vp->arrival_gap_ns,
                    .n_free = n_free,
                    .n_instances = n_inst,
                    .left = vp->queue->left,
                    .lone_held = vp->lone_held,
                    .probe = vp->lone_since_probe >= BATCH_PROBE_EVERY,
                    .runs = &vp->runs};
    batch_why why;
    int k = batch_decide(&v, &wait, &why);
    if (why == BATCH_WHY_LONE && k == 1) {
        vp->lone_since_probe++;
        /* Held where the rule judged (a lone call's cost known): a call
         * sent alone to measure that cost holds nothing. */
        if (vp->runs.inst_ns[0]) vp->lone_held = true;
    }
    if (k > 1) vp->lone_since_probe = 0;
    if (k == 0) {
        vp->batch_due_ns = now + wait;
        batch_timer_arm(p, vp->batch_due_ns);
        return false;
    }
    vp->batch_due_ns = 0;
    vp->n_why[why] += (uint64_t)k;
    call *calls[FN_BATCH_MAX];
    for (int i = 0; i < k; i++)
        calls[i] = queue_pop(vp);
    /* The ready calls it did not take have waited their turn: the next
     * free instance takes them at once. */
    int rest = n - k;
    for (call *c = vp->queue; c && rest > 0; c = c->next, rest--)
        c->left = true;
    if (k == 1) /* alone: the plain message, a batch of one */
        dispatch(p, w, calls[0]);
    else
        dispatch_batch(p, w, calls, k);
    return true;
}

void sched_batch_timer(pool *p)
{
    uint64_t ticks;
    while (p->batch_timer_fd >= 0 && read(p->batch_timer_fd, &ticks, sizeof(ticks)) > 0) {
    }
    p->batch_timer_at = 0;
    uint64_t now = pool_now(p);
    for (vpool *vp = p->pools; vp; vp = vp->next) {
        if (!vp->batch_due_ns) continue;
        if (vp->batch_due_ns <= now) {
            vp->batch_due_ns = 0;
            sched_pump(p, vp);
        } else {
            batch_timer_arm(p, vp->batch_due_ns);
        }
    }
}

static pool_view view_of(const pool *p, const vpool *vp)
{
    pool_view v = {.concurrency = (int)vp->cfg.scaling.concurrency,
                   .max = (int)vp->cfg.scaling.max,
                   .n_queued = vp->n_queued,
                   .queue_depth = (int)vp->cfg.scaling.queue_depth,
                   .global_instances = global_used(p),
                   .global_max = p->max_instances};
    for (const worker *w = vp->workers; w; w = w->vnext) {
        if (w->h.state == PROC_STOPPING) continue;
        v.n_instances++;
        if (w->h.state == PROC_STARTING) v.n_starting++;
        v.free_slots += worker_free_slots(w);
    }
    return v;
}

/* The view for the newest waiting call (it is already in the queue). */
static pool_view waiting_view(const pool *p, const vpool *vp)
{
    pool_view v = view_of(p, vp);
    if (v.n_queued > 0) v.n_queued--;
    /* A batching pool's slot takes a whole batch of the waiting calls. */
    if (batching(vp) && v.n_queued > 0) {
        int limit = batch_limit(vp) > 0 ? batch_limit(vp) : 1;
        v.n_queued = (v.n_queued + limit - 1) / limit;
    }
    return v;
}

/* Pools that hold instances, have requests waiting or keep a min share the
 * global cap. */
static int fair_share(const pool *p)
{
    int n = 0;
    for (const vpool *vp = p->pools; vp; vp = vp->next)
        if (vp->n_instances > 0 || vp->n_queued > 0 || eff_min(vp) > 0) n++;
    return pool_fair_share(p->max_instances, n);
}

static int n_starved_except(const pool *p, const vpool *except, int share)
{
    int n = 0;
    for (const vpool *vp = p->pools; vp; vp = vp->next) {
        if (vp == except || vp->n_queued == 0) continue;
        pool_view v = waiting_view(p, vp);
        if (pool_is_starved(&v, share)) n++;
    }
    return n;
}

/* Makes room under the global cap for for_vp: stops the worker of another
 * pool that has been idle the longest, among those the policy lets go: for
 * waiting requests, as far as the fair shares allow (pool_may_evict); for
 * for_vp's min, any held beyond its own pool's min (pool_may_evict_for_min). */
static bool evict_idle(pool *p, const vpool *for_vp, bool for_min)
{
    int share = fair_share(p);
    for (worker *w = p->idle_head; w; w = w->inext) {
        if (w->vp == for_vp) continue;
        int n = w->vp->n_instances, min = (int)eff_min(w->vp);
        /* A min takes room from instances beyond another pool's min, as
         * far as that pool stays at its fair share. */
        if (for_min ? !pool_may_evict_for_min(n, min) || n <= share
                    : !pool_may_evict(for_vp->n_instances, share, n, min, share))
            continue;
        stop_worker(p, w,
                    for_min ? "making room for another function's min"
                            : "making room under the global cap");
        return true;
    }
    return false;
}

/* Starts what `min` asks for (not while backing off after a failure). */
static void ensure_min(pool *p, vpool *vp)
{
    if (pool_now(p) < vp->no_start_until_ns) return;
    int want = (int)eff_min(vp) - vp->n_instances;
    /* min is a reservation: what the cap lacks comes from spares first, then
     * from idle instances. */
    while (want > 0 && p->max_instances - global_used(p) < want &&
           (drop_spare(p, vp->tmpl) || evict_idle(p, vp, true))) {
    }
    int n = pool_missing_warm(vp->n_instances, (int)eff_min(vp), global_used(p), p->max_instances);
    for (int k = 0; k < n; k++)
        if (start_worker(p, vp) < 0) break;
}

void sched_pump(pool *p, vpool *vp)
{
    vp->batch_due_ns = 0;
    while (vp->queue) {
        worker *best = NULL;
        for (worker *w = vp->workers; w; w = w->vnext) {
            if (worker_free_slots(w) == 0) continue;
            if (!best || w->n_msgs < best->n_msgs) best = w;
        }
        if (!best) break;
        if (batching(vp) && batchable(vp->queue)) {
            if (!pump_batch(p, vp, best)) break;
            continue;
        }
        dispatch(p, best, queue_pop(vp));
    }
    ensure_min(p, vp);
    while (vp->queue) {
        pool_view v = waiting_view(p, vp);
        if (pool_blocked_by_global_cap(&v) && (drop_spare(p, vp->tmpl) || evict_idle(p, vp, false)))
            v = waiting_view(p, vp);
        if (pool_decide(&v) != POOL_START_QUEUE) break;
        if (start_worker(p, vp) < 0) {
            if (vp->n_instances == 0 && !vp->fetch_ticket)
                fail_queue(p, vp, 503, "cannot start an instance of this function");
            break;
        }
    }
}

void sched_pump_all(pool *p)
{
    for (vpool *vp = p->pools; vp; vp = vp->next)
        sched_pump(p, vp);
}

/* --- pools and calls ------------------------------------------------------- */

vpool *sched_find(pool *p, const char *name, int64_t version)
{
    for (vpool *vp = p->pools; vp; vp = vp->next)
        if (vp->version == version && strcmp(vp->name, name) == 0) return vp;
    return NULL;
}

vpool *sched_add_pool(pool *p, const char *name, int64_t version, const fn_config *cfg,
                      const char *model_path)
{
    vpool *vp = calloc(1, sizeof(*vp));
    if (!vp) return NULL;
    vp->cfg = *cfg;
    snprintf(vp->model_path, sizeof(vp->model_path), "%s", model_path);
    snprintf(vp->name, sizeof(vp->name), "%s", name);
    vp->version = version;
    vp->last_request_ns = pool_now(p);
    ka_init(&vp->ka);
    batch_aimd_init(&vp->aimd, (int)cfg->batching.max_batch,
                    (uint64_t)cfg->batching.slo_ms * 1000000ull,
                    (uint64_t)cfg->batching.max_delay_us * 1000ull);
    for (const vpool *o = p->pools; o; o = o->next) /* the newest version it follows */
        if (strcmp(o->name, name) == 0 && o->version < version &&
            (vp->ka.last_minute < 0 || o->ka.last_minute > vp->ka.last_minute))
            vp->ka = o->ka;
    vp->next = p->pools;
    p->pools = vp;
    return vp;
}

int sched_submit(pool *p, vpool *vp, const pool_request *rq, pool_call **out, int *retry_after_s,
                 rouse_errbuf *eb)
{
    vp->retired = false; /* asked for by name: it serves again */
    vp->last_request_ns = pool_now(p);
    ka_record(&vp->ka, (int64_t)(vp->last_request_ns / 1000000ull), p->ka_minute_ms);
    pool_view v = view_of(p, vp);
    v.n_queued -= vp->n_bg_queued; /* background calls take no queue room */
    if (!rq->background && pool_decide(&v) == POOL_REJECT) {
        if (rq->body_fd >= 0) close(rq->body_fd);
        free(rq->body);
        *retry_after_s = retry_after(p, vp);
        return rouse_err_set(eb, ROUSE_EBUSY,
                             "function %s version %" PRId64 " is overloaded (%d requests waiting)",
                             rq->name, rq->version, vp->n_queued);
    }
    call *c = calloc(1, sizeof(*c));
    if (!c) {
        if (rq->body_fd >= 0) close(rq->body_fd);
        free(rq->body);
        return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    }
    c->done = rq->done;
    c->chunk = rq->chunk;
    c->user = rq->user;
    c->vp = vp;
    c->id = p->next_call_id++;
    c->type = rq->type;
    c->body = rq->body;
    c->body_fd = rq->body_fd;
    c->body_len = rq->body_len;
    c->json_len = rq->json_len;
    c->version = rq->version;
    c->background = rq->background;
    c->enq_ns = pool_now(p);
    if (batching(vp) && batchable(c)) { /* how often company comes */
        if (vp->last_arrival_ns) {
            /* A gap past max_delay says the same as max_delay: no company
             * in time. Capped so that an idle hour does not outweigh the
             * next burst. */
            uint64_t gap = c->enq_ns - vp->last_arrival_ns,
                     cap = (uint64_t)vp->cfg.batching.max_delay_us * 1000u;
            if (gap > cap) gap = cap;
            vp->arrival_gap_ns = vp->arrival_gap_ns ? (vp->arrival_gap_ns * 7 + gap) / 8 : gap;
        }
        vp->last_arrival_ns = c->enq_ns;
    }
    c->deadline_ns = c->enq_ns + (uint64_t)vp->cfg.timeout_ms * 1000000ull;
    *out = c; /* before the pump: a start that fails at once ends the call there */
    queue_push(vp, c, false);
    sched_pump(p, vp);
    return 0;
}

int sched_free_capacity(const pool *p, const vpool *vp)
{
    if (vp->n_queued > vp->n_bg_queued) return 0; /* synchronous calls wait */
    pool_view v = view_of(p, vp);
    int startable = v.max - v.n_instances;
    int global_free = p->max_instances - global_used(p);
    if (startable > global_free) startable = global_free;
    if (startable < 0) startable = 0;
    /* One background call may wait per slot of a ready instance, so that a
     * reply is followed by the next call at once, as a queue of
     * synchronous calls is (a synchronous call still goes first). */
    int ready_slots = (v.n_instances - v.n_starting) * v.concurrency;
    int cap = v.free_slots + (v.n_starting + startable) * v.concurrency + ready_slots -
              vp->n_queued;
    /* Held off by the global cap alone: one call may wait in the queue,
     * where the fair share makes room for it as for any waiting call. */
    if (cap <= 0 && vp->n_queued == 0 && v.n_instances < v.max && global_free <= 0) cap = 1;
    return cap > 0 ? cap : 0;
}

bool pool_call_queued(const pool_call *c)
{
    return c && !c->w;
}

void pool_cancel(pool *p, pool_call *c)
{
    (void)p;
    if (!c) return;
    if (c->w) {
        c->done = NULL; /* its reply is discarded */
        c->chunk = NULL;
        if (c->type == IPC_GENERATE && c->w->h.sock >= 0) {
            /* Stop generating now: the instance checks between tokens. */
            ipc_msg m;
            ipc_msg_init(&m, IPC_CANCEL, c->id);
            rouse_errbuf eb;
            if (ipc_send(c->w->h.sock, &m, -1, &eb) < 0) LOG_WARN(MOD, "%s", eb.msg);
        }
        return;
    }
    vpool *vp = c->vp;
    call *prev = NULL;
    for (call *k = vp->queue; k; prev = k, k = k->next) {
        if (k == c) {
            queue_unlink(vp, prev, c);
            break;
        }
    }
    call_free(c);
}

int pool_validate(pool *p, const char *name, const char *model_path, const fn_config *cfg,
                  pool_done_fn done, void *user, rouse_errbuf *eb)
{
    validator *v = calloc(1, sizeof(*v));
    if (!v) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    sched_argbuf buf;
    char *argv[TEMPLATE_ARGV_MAX];
    int argc = worker_argv(p, model_path, name, 0, NULL, cfg, true, &buf, argv);
    bool forked;
    int rc = proc_spawn(&p->procs, &v->h, PROC_VALIDATOR, argv, argc, pool_now(p), &forked, eb);
    if (rc < 0) {
        free(v);
        return rc;
    }
    LOG_INFO(MOD, "function %s: checking a new model in process %d", name, (int)v->h.pid);
    v->done = done;
    v->user = user;
    v->next = p->validators;
    if (p->validators) p->validators->prev = v;
    p->validators = v;
    return 0;
}

/* --- what processes say ---------------------------------------------------- */

/* status 0: the model loaded (body: its accuracy figures, a JSON object,
 * or NULL; borrowed for the callback); otherwise the HTTP status to answer
 * with. */
static void validator_done(pool *p, validator *v, int status, const char *msg, char *body)
{
    if (v->answered) return;
    v->answered = true;
    validators_remove(p, v);
    pool_result res = {.status = status, .fd = -1, .json_len = -1, .error = msg, .body = body,
                       .len = body ? strlen(body) : 0};
    if (v->done) v->done(v->user, &res);
}

/* Learns a worker's pid; false when that process already ended (it was
 * reaped before and has now been settled: w is buried). */
static bool learn_pid(pool *p, worker *w, pid_t pid)
{
    int wstatus;
    if (!proc_set_pid(&p->procs, &w->h, pid, &wstatus)) return true;
    worker_exited(p, w, wstatus, false);
    return false;
}

/* The pool cannot start instances for now: fail what waits on it. */
static void start_failed(pool *p, vpool *vp, const char *msg)
{
    vp->no_start_until_ns = pool_now(p) + 1000000000ull;
    if (vp->n_instances == 0 && vp->queue) {
        char text[400];
        snprintf(text, sizeof(text), "instance failed to start: %s", msg);
        fail_queue(p, vp, 500, text);
    }
}

/* A template is gone or broken: workers still waiting for it have no
 * process and never will. */
static void orphan_waiters(pool *p, tmpl *t)
{
    for (worker *w = t->waiting, *nx; w; w = nx) {
        nx = w->tnext;
        waiting_remove(w);
        if (w->peer_fd >= 0) {
            close(w->peer_fd);
            w->peer_fd = -1;
            worker_exited(p, w, 0, true);
        } else if (w->h.sock < 0 && w->h.pid == 0) {
            /* Closed by serve (stopped, or a released held spare) before
             * the template said its pid: no end of stream will tell. */
            worker_exited(p, w, 0, true);
        }
    }
}

static void lifecycle_events(pool *p);

static void template_ready(pool *p, tmpl *t, const ipc_msg *m, int fd)
{
    if (m->flags & IPC_F_SPARE) { /* its spare is warm */
        if (t->spare && !t->held) {
            t->spare_pid = (pid_t)m->pid;
            hold_spare(p, t);
        }
        return;
    }
    /* The zygote's answer (the pid, and that it forked the template) is
     * sent before the template can say READY: read it first. */
    if (t->h.start_argv) lifecycle_events(p);
    vpool *vp = t->vp;
    if (m->status != 0) {
        pool_ipc_error_text(fd, m->body_len, t->h.fail_msg, sizeof(t->h.fail_msg));
        if (vp) LOG_ERROR(MOD, "template of %s failed to load: %s", vp->name, t->h.fail_msg);
        tmpl_leave(p, t);
        orphan_waiters(p, t);
        if (vp) start_failed(p, vp, t->h.fail_msg);
        return;
    }
    if (t->h.state != PROC_STARTING) return;
    t->h.state = PROC_READY;
    t->h.ready_ns = t->last_used_ns = pool_now(p);
    t->plan_ns = m->dur_ns[0];
    t->prepare_ns = m->dur_ns[1];
    t->plan_cached = m->dur_ns[2] != 0;
    t->session_kept = m->dur_ns[2] == 2;
    if (vp && m->mem_bytes) vp->batch_mem_bytes = m->mem_bytes;
    if (vp && t->session_kept)
        LOG_INFO(MOD,
                 "function %s v%" PRId64 ": template %d ready in %.1f ms (its plan opened and "
                 "prepared by the zygote)",
                 vp->name, vp->version, (int)t->h.pid,
                 rouse_ns_to_ms(t->h.ready_ns - t->h.started_ns));
    else if (vp)
        LOG_INFO(MOD,
                 "function %s v%" PRId64 ": template %d ready in %.1f ms (plan %s %.1f ms, "
                 "prepare %.1f ms)",
                 vp->name, vp->version, (int)t->h.pid,
                 rouse_ns_to_ms(t->h.ready_ns - t->h.started_ns),
                 t->plan_cached ? "opened in" : "compiled in", rouse_ns_to_ms(t->plan_ns),
                 rouse_ns_to_ms(t->prepare_ns));
    for (worker *w = t->waiting; w; w = w->tnext) {
        if (w->peer_fd < 0) continue;
        w->tmpl_start_ns = t->h.ready_ns - t->h.started_ns;
        w->tmpl_plan_ns = t->plan_ns;
        w->tmpl_prepare_ns = t->prepare_ns;
        w->tmpl_forked = t->forked;
        w->tmpl_kept = t->session_kept;
        send_spawn(p, w);
        if (t->h.sock < 0) break; /* the template broke: orphaned at its reap */
        prime(p, w);
    }
    maybe_allow_spare(p, t); /* after the spawns: those go first */
}

static void template_spawned(pool *p, tmpl *t, const ipc_msg *m, int fd)
{
    worker *w = t->waiting;
    while (w && w->spawn_id != m->id)
        w = w->tnext;
    if (m->status != 0) {
        char msg[256];
        pool_ipc_error_text(fd, m->body_len, msg, sizeof(msg));
        LOG_ERROR(MOD, "template %d: %s", (int)t->h.pid, msg);
        return; /* its socket ends and the worker is dropped */
    }
    if (w && w->held)
        t->spare_pid = (pid_t)m->pid; /* the spare (or, if it was lost, a new instance) */
    else if (m->pid > 0 && (pid_t)m->pid == t->spare_pid)
        t->spare_pid = 0; /* it became w */
    if (!w) return;
    w->fork_ns = m->dur_ns[0];
    waiting_remove(w);
    learn_pid(p, w, (pid_t)m->pid);
}

/* Returns false when w was settled (its process had ended). */
static bool worker_ready(pool *p, worker *w, const ipc_msg *m, int fd)
{
    if (m->status != 0) {
        pool_ipc_error_text(fd, m->body_len, w->h.fail_msg, sizeof(w->h.fail_msg));
        if (w->held) {
            LOG_ERROR(MOD, "a held spare %d failed: %s", (int)w->h.pid, w->h.fail_msg);
            held_lost(p, w);
        }
        if (w->vp) {
            vpool *vp = w->vp;
            LOG_ERROR(MOD, "instance %d of %s failed to load: %s", (int)w->h.pid, vp->name,
                      w->h.fail_msg);
            worker_uncount(p, w);
            start_failed(p, vp, w->h.fail_msg);
        }
        return true;
    }
    if (!learn_pid(p, w, (pid_t)m->pid)) return false;
    if (w->h.state != PROC_STARTING || !w->vp) return true;
    w->h.state = PROC_READY;
    w->h.ready_ns = w->idle_since_ns = pool_now(p);
    idle_update(p, w);
    if (w->held) { /* its region mapped ahead too */
        rouse_errbuf eb;
        rouse_errbuf_clear(&eb);
        if (pool_ipc_send_region(w->h.sock, &w->region, &eb) < 0)
            LOG_DEBUG(MOD, "held spare %d: %s", (int)w->h.pid, eb.msg);
    }
    LOG_DEBUG(MOD, "function %s v%" PRId64 ": instance %d ready in %.2f ms (%s)", w->vp->name,
              w->vp->version, (int)w->h.pid, rouse_ns_to_ms(w->h.ready_ns - w->h.started_ns),
              start_kind_name(w->kind));
    sched_pump(p, w->vp);
    return true;
}

/* Whether c waited for its worker to start: its first call, unless min
 * kept it warm or it was ready before c came. A held spare taken once c
 * was there (promote_held) was ready before, but became an instance for
 * c; one taken for min before c came is a warm instance to c. */
static bool call_cold(const worker *w, const call *c)
{
    return c->first && w->kind != START_WARM &&
           (w->h.ready_ns > c->enq_ns || (w->promoted_ns && w->promoted_ns >= c->enq_ns));
}

/* When c stopped waiting: its dispatch, or for a cold call its worker's
 * READY as serve read it. A primed call (sent before READY) may have run
 * before serve got to that READY, so its wait ends no later than its run
 * began (`now`, its reply, less `run_ns`): queue, start and run then add up
 * to no more than the call took. */
static uint64_t wait_end_of(const worker *w, const call *c, bool cold, uint64_t now,
                            uint64_t run_ns)
{
    uint64_t end = cold && w->h.ready_ns > c->dispatch_ns ? w->h.ready_ns : c->dispatch_ns;
    uint64_t ran = now > run_ns ? now - run_ns : 0;
    if (end > ran) end = ran > c->dispatch_ns ? ran : c->dispatch_ns;
    return end;
}

static void record_cold_start(pool *p, const worker *w, const call *c, uint64_t infer_ns)
{
    cold_start r;
    memset(&r, 0, sizeof(r));
    snprintf(r.name, sizeof(r.name), "%s", w->vp->name);
    r.version = c->version;
    r.pid = (int)w->h.pid;
    r.kind = w->kind;
    r.at_ms = rouse_wall_ms();
    r.queue_ms = rouse_ns_to_ms(c->dispatch_ns - c->enq_ns);
    if (w->kind == START_ZERO) {
        r.template_ms = rouse_ns_to_ms(w->tmpl_start_ns);
        r.plan_open_ms = rouse_ns_to_ms(w->tmpl_plan_ns);
        r.prepare_ms = rouse_ns_to_ms(w->tmpl_prepare_ns);
        r.template_forked = w->tmpl_forked;
        r.template_kept = w->tmpl_kept;
    }
    r.spawn_ms = rouse_ns_to_ms(w->h.ready_ns - w->spawn_ns);
    r.fork_ms = rouse_ns_to_ms(w->fork_ns);
    r.first_infer_ms = rouse_ns_to_ms(infer_ns);
    stats_record_cold(&p->cold, &r);
}

/* A worker of a pool above its fair share just went idle while another
 * pool starves: a spare is dropped if there is one, else the worker stops,
 * and the place goes to the starving pool. True when a place was made. */
static bool maybe_yield(pool *p, worker *w)
{
    if (w->n_inflight > 0 || w->h.state != PROC_READY) return false;
    vpool *vp = w->vp;
    int share = fair_share(p);
    int starved = n_starved_except(p, vp, share);
    if (starved > 0 && drop_spare(p, NULL)) return true; /* a spare goes first */
    if (!pool_should_yield(vp->n_instances, (int)eff_min(vp), share, starved)) return false;
    stop_worker(p, w, "another function needs its share of the instance cap");
    return true;
}

/* The calls of one batch reply, while its results are handed out. */
typedef struct batch_settle {
    pool *p;
    worker *w;
    call **calls;
    int k, next;
    uint64_t wait, start; /* of the batch's first call (cold start) */
    const char *start_kind;
} batch_settle;

static void settle_one(void *user, const pool_batch_reply *r)
{
    batch_settle *b = user;
    /* Results come in message order; a result for no call of it is ignored. */
    int i = b->next;
    while (i < b->k && (!b->calls[i] || b->calls[i]->id != r->id))
        i++;
    if (i == b->k) return;
    call *c = b->calls[i];
    b->calls[i] = NULL;
    b->next = i + 1;
    uint64_t wait = c->dispatch_ns - c->enq_ns, start = 0;
    if (i == 0) {
        wait = b->wait;
        start = b->start;
    }
    char timing[128];
    stats_timing_batch(timing, wait - start, start, r->run_ns, r->batch);
    pool_result res = {.status = r->status,
                       .content_type = r->content_type,
                       .fd = -1,
                       .len = r->len,
                       .json_len = r->json_len,
                       .start = i == 0 && b->start_kind ? b->start_kind : "warm",
                       .timing = timing,
                       .queue_ns = wait - start,
                       .start_ns = start,
                       /* Metering bills each request of a batch its share. */
                       .run_ns = r->bill_ns};
    res.body = malloc(r->len + 1);
    if (res.body) {
        memcpy(res.body, r->body, r->len);
    } else {
        res.status = 500;
        res.error = "out of memory";
        res.len = 0;
    }
    call_end(b->p, c, &res);
}

/* The reply to a batch: every call of it ends with its own result. */
static void batch_reply(pool *p, worker *w, const ipc_msg *m, int *fd)
{
    call *c = w->inflight;
    vpool *vp = c ? c->vp : NULL;
    /* An instance's first message is not timed: it pays once for the
     * instance (the first touches of its memory, its session's first
     * run: a call of 20 ms of CPU cost 4-5 ms more on a fresh instance),
     * which no later call costs. Counted, a first call that ran alone
     * made lone calls look dearer than batches for dozens of calls (a
     * moving average, one lone call in eight timed), and the lone rule
     * waited that long to send a call alone. */
    bool timed = vp && m->dur_ns[1] && !c->first;
    uint64_t cpu0 = timed ? loop_cpu_ns() : 0;
    /* What the message cost in waiting: the instance's polling and wake-up
     * before it, serve's polling for its reply. */
    uint64_t waited = m->dur_ns[2] + p->poll_cpu_ns;
    p->poll_cpu_ns = 0;
    if (!c || c->batch_id != m->id) {
        LOG_ERROR(MOD, "instance %d answered batch %" PRIu64 " out of order", (int)w->h.pid, m->id);
        return;
    }
    int k = c->batch_n;
    /* Nor is an instance's first batch of a size class: its rows' memory
     * is touched for the first time (resnet18's first batch of 2 cost 57
     * ms of CPU a call, against 16 alone, and made every probe look dear). */
    unsigned cls_bit = 1u << batch_class(k);
    bool size_known = (w->classes_run & cls_bit) != 0;
    w->classes_run |= cls_bit;
    if (!size_known) timed = false;
    call *calls[FN_BATCH_MAX];
    for (int i = 0; i < k; i++) {
        assert(w->inflight && w->inflight->batch_id == m->id);
        calls[i] = w->inflight;
        w->inflight = calls[i]->next;
        calls[i]->next = NULL;
    }
    if (!w->inflight) w->inflight_tail = NULL;
    w->n_inflight -= k;
    w->n_msgs--;
    uint64_t now = pool_now(p);
    uint64_t took = now - c->dispatch_ns, send_cpu = c->send_cpu_ns;
    vp->reply_ewma_ns = vp->reply_ewma_ns ? (vp->reply_ewma_ns * 7 + took) / 8 : took;
    if (w->n_inflight == 0) w->idle_since_ns = now;
    vp->n_batches++;
    vp->n_batched_calls += (uint64_t)k;

    /* The first call's wait and start, as worker_reply splits them. */
    bool cold = call_cold(w, c);
    uint64_t wait_end = wait_end_of(w, c, cold, now, m->dur_ns[0]);
    batch_settle b = {.p = p, .w = w, .calls = calls, .k = k, .wait = wait_end - c->enq_ns};
    if (c->first) record_cold_start(p, w, c, m->dur_ns[0]);
    if (cold) {
        uint64_t from = w->h.started_ns > c->enq_ns ? w->h.started_ns : c->enq_ns;
        b.start = w->h.ready_ns > from ? w->h.ready_ns - from : 0;
        if (b.start > b.wait) b.start = b.wait;
        b.start_kind = start_kind_name(w->kind);
    }
    const char *error = NULL;
    if (m->status != 200) { /* the message itself failed: its error for every call */
        char msg[300];
        pool_ipc_error_text(*fd, m->body_len, msg, sizeof(msg));
        if (m->flags & IPC_F_IN_REGION) snprintf(msg, sizeof(msg), "batch %" PRIu64 " failed", m->id);
        pool_region *r = &w->region;
        if (r->lent_to == calls[0]) r->lent_to = NULL;
        if (*fd >= 0) close(*fd);
        *fd = -1;
        for (int i = 0; i < k; i++)
            call_fail(p, calls[i], 500, "batch %" PRIu64 " failed: %s", m->id, msg);
    } else {
        pool_ipc_read_batch(&w->region, calls[0], m, fd, settle_one, &b, &error);
        for (int i = 0; i < k; i++)
            if (calls[i])
                call_fail(p, calls[i], 500, "batch %" PRIu64 ": %s", m->id,
                          error ? error : "the instance's reply did not answer this request");
    }
    /* The cost of the batch: the instance's CPU and serve's, to send it
     * and to hand out its replies (each call's response included). */
    uint64_t serve_cpu = timed ? send_cpu + (loop_cpu_ns() - cpu0) : 0;
    bool measured = m->status == 200 && timed;
    if (measured) {
        batch_runs_note(&vp->runs, k, m->dur_ns[0], m->dur_ns[1] + serve_cpu + waited);
        batch_runs_note_instance(&vp->runs, k, m->dur_ns[1]);
    }
    /* Held by the lone rule, a batch is a probe: it alone decides whether
     * batches go again (one that was not measured leaves the rule held). */
    if (vp->lone_held && measured) vp->lone_held = !batch_runs_probed(&vp->runs);
    if (vp->cfg.batching.mode == FN_BATCH_AUTO && size_known)
        batch_aimd_observe(&vp->aimd, k, m->dur_ns[0], timed ? m->dur_ns[1] : 0, serve_cpu, waited);
    idle_update(p, w);
    if (maybe_yield(p, w))
        sched_pump_all(p);
    else
        sched_pump(p, vp);
}

/* A generation decoded with other streams: its prefill's chunks, the
 * others' decode steps between them and the group it was prefilled in, as
 * a Server-Timing entry after the ones in buf. */
static void timing_prefill(char *buf, size_t cap, const ipc_msg *m)
{
    if (m->prefill_chunks && m->prefill_group > 1)
        snprintf(buf, cap, ", prefill;desc=\"%u chunks, %u steps, group of %u\"",
                 m->prefill_chunks, m->prefill_steps, m->prefill_group);
    else if (m->prefill_chunks)
        snprintf(buf, cap, ", prefill;desc=\"%u chunks, %u steps\"", m->prefill_chunks,
                 m->prefill_steps);
}

/* w's in-flight call with this id: the oldest, or for a generator that
 * decodes several streams together (which end in any order, and stream
 * their chunks interleaved) any of them. *prev gets the call before it. */
static call *inflight_find(const worker *w, uint64_t id, call **prev)
{
    *prev = NULL;
    call *c = w->inflight;
    if (c && c->id == id) return c;
    if (!c || c->type != IPC_GENERATE || !w->vp || w->vp->cfg.scaling.concurrency < 2) return NULL;
    for (; c && c->id != id; c = c->next)
        *prev = c;
    return c && c->type == IPC_GENERATE ? c : NULL;
}

static void worker_reply_one(pool *p, worker *w, const ipc_msg *m, int *fd);

/* A reply; once a new instance's first call is answered, its template
 * may fork a spare again (maybe_allow_spare: not while the call runs). */
static void worker_reply(pool *p, worker *w, const ipc_msg *m, int *fd)
{
    vpool *vp = w->vp;
    bool first = w->inflight && w->inflight->first;
    if (m->flags & IPC_F_BATCH)
        batch_reply(p, w, m, fd);
    else
        worker_reply_one(p, w, m, fd);
    /* Not at once: the reply is still on its way to the client, and the
     * spare's fork and warm-up would take the cores from it (pool_tick
     * asks when it is due). */
    if (first && vp) vp->spare_after_ns = pool_now(p) + SPARE_AFTER_REPLY_NS;
}

static void worker_reply_one(pool *p, worker *w, const ipc_msg *m, int *fd)
{
    call *prev, *c = inflight_find(w, m->id, &prev);
    if (!c) {
        LOG_ERROR(MOD, "instance %d answered request %" PRIu64 " out of order", (int)w->h.pid,
                  m->id);
        return;
    }
    assert(c->w == w && w->n_inflight > 0);
    vpool *vp = c->vp;
    /* An instance's first message is not timed (see batch_reply), nor its
     * first lone call: one that had run only batches of 8 spent 34 ms of
     * CPU on it against 16 a call in the batches (resnet18), its memory
     * for one row touched for the first time. */
    bool timed = batching(vp) && m->dur_ns[1] && c->type == IPC_INFER && !c->first &&
                 (w->classes_run & 1u);
    if (c->type == IPC_INFER) w->classes_run |= 1u;
    uint64_t cpu0 = timed ? loop_cpu_ns() : 0, send_cpu = c->send_cpu_ns;
    /* As for a batch (batch_reply): what its message cost in waiting. */
    uint64_t waited = timed ? m->dur_ns[2] + p->poll_cpu_ns : 0;
    p->poll_cpu_ns = 0;
    if (prev)
        prev->next = c->next;
    else
        w->inflight = c->next;
    if (w->inflight_tail == c) w->inflight_tail = prev;
    c->next = NULL;
    w->n_inflight--;
    w->n_msgs--;
    uint64_t now = pool_now(p);
    /* An exponential average over about eight replies. */
    uint64_t took = now - c->dispatch_ns;
    vp->reply_ewma_ns = vp->reply_ewma_ns ? (vp->reply_ewma_ns * 7 + took) / 8 : took;
    if (w->n_inflight == 0) w->idle_since_ns = now;
    /* The wait, split into the part spent starting this request's worker
     * and the rest. Cold for this request only when it waited for its
     * worker to start (one that min kept warm was ready before it came). */
    bool cold = call_cold(w, c);
    /* A call handed over with the spawn (primed) waited until its instance
     * was ready all the same. */
    uint64_t wait_end = wait_end_of(w, c, cold, now, m->dur_ns[0]);
    uint64_t wait = wait_end - c->enq_ns, start = 0;
    if (c->first) record_cold_start(p, w, c, m->dur_ns[0]);
    if (cold) {
        uint64_t from = w->h.started_ns > c->enq_ns ? w->h.started_ns : c->enq_ns;
        start = w->h.ready_ns > from ? w->h.ready_ns - from : 0;
        if (start > wait) start = wait;
    }
    /* A batching function's lone call ran as a batch of one: its run
     * counts for the share rule, and for auto mode (below). */
    bool lone_run = batching(vp) && c->type == IPC_INFER && m->status == 200;
    uint64_t run_ns = m->dur_ns[0], cpu_ns = m->dur_ns[1];
    char timing[192];
    if (batching(vp))
        stats_timing_batch(timing, wait - start, start, m->dur_ns[0], 1);
    else
        stats_timing(timing, wait - start, start, m->dur_ns[0]);
    pool_result res = {.status = m->status,
                       .content_type = m->content_type,
                       .len = m->body_len,
                       .json_len = m->json_len,
                       .start = cold ? start_kind_name(w->kind) : "warm",
                       .timing = timing,
                       .queue_ns = wait - start,
                       .start_ns = start,
                       .run_ns = m->dur_ns[0],
                       .warning = m->warning[0] ? m->warning : NULL};
    if (c->type == IPC_GENERATE) {
        res.ttft_ns = m->dur_ns[1];
        res.itl_ns = m->dur_ns[2];
        unsigned long long q = (wait - start + 500) / 1000, s = (start + 500) / 1000,
                           t = (m->dur_ns[1] + 500) / 1000, i = (m->dur_ns[2] + 500) / 1000;
        int n = snprintf(timing, sizeof(timing),
                         "queue;dur=%llu.%03llu, start;dur=%llu.%03llu, ttft;dur=%llu.%03llu, "
                         "itl;dur=%llu.%03llu",
                         q / 1000, q % 1000, s / 1000, s % 1000, t / 1000, t % 1000, i / 1000,
                         i % 1000);
        if (n > 0 && (size_t)n < sizeof(timing))
            timing_prefill(timing + n, sizeof(timing) - (size_t)n, m);
    }
    pool_ipc_take_reply(&w->region, c, m, fd, &res);
    idle_update(p, w);
    call_end(p, c, &res);
    /* Its run and cost count as a batch of one's; auto mode counts them
     * too: at a limit of 1 every call goes alone, and only these runs can
     * grow the limit again. */
    uint64_t serve_cpu = timed ? send_cpu + (loop_cpu_ns() - cpu0) : 0;
    if (lone_run) batch_runs_note(&vp->runs, 1, run_ns, timed ? cpu_ns + serve_cpu + waited : 0);
    if (lone_run && timed) batch_runs_note_instance(&vp->runs, 1, cpu_ns);
    if (lone_run && vp->cfg.batching.mode == FN_BATCH_AUTO)
        batch_aimd_observe(&vp->aimd, 1, run_ns, timed ? cpu_ns : 0, serve_cpu, waited);
    if (maybe_yield(p, w))
        sched_pump_all(p); /* the starving pools first take the freed place */
    else
        sched_pump(p, vp);
}

/* A streamed piece of the reply of one of w's calls (the oldest, unless
 * the instance decodes several streams together). */
static void worker_chunk(pool *p, worker *w, const ipc_msg *m, const char *data, size_t len)
{
    call *prev, *c = inflight_find(w, m->id, &prev);
    if (!c) return; /* a late piece of a cancelled call */
    bool first = !c->chunked;
    c->chunked = true;
    if (!c->chunk || !c->done) return;
    char timing[192] = "";
    const char *start = NULL;
    if (first) {
        /* As worker_reply splits the wait; the time to the first token
         * stands for the inference. */
        uint64_t wait = c->dispatch_ns - c->enq_ns, st = 0;
        bool cold = call_cold(w, c);
        if (cold) {
            uint64_t end = wait_end_of(w, c, true, pool_now(p), m->dur_ns[1]);
            uint64_t from = w->h.started_ns > c->enq_ns ? w->h.started_ns : c->enq_ns;
            wait = end - c->enq_ns;
            st = w->h.ready_ns > from ? w->h.ready_ns - from : 0;
            if (st > wait) st = wait;
        }
        unsigned long long q = (wait - st + 500) / 1000, s = (st + 500) / 1000,
                           t = (m->dur_ns[1] + 500) / 1000;
        int n = snprintf(timing, sizeof(timing),
                         "queue;dur=%llu.%03llu, start;dur=%llu.%03llu, ttft;dur=%llu.%03llu",
                         q / 1000, q % 1000, s / 1000, s % 1000, t / 1000, t % 1000);
        if (n > 0 && (size_t)n < sizeof(timing))
            timing_prefill(timing + n, sizeof(timing) - (size_t)n, m);
        start = cold ? start_kind_name(w->kind) : "warm";
    }
    (void)p;
    pool_chunk ch = {.status = m->status,
                     .content_type = m->content_type,
                     .warning = m->warning,
                     .start = start,
                     .timing = first ? timing : NULL,
                     .data = data,
                     .len = len,
                     .first = first};
    c->chunk(c->user, &ch);
}

static void validator_message(pool *p, validator *v, const ipc_msg *m, int fd)
{
    if (m->type != IPC_READY) return;
    if (m->status != 0) {
        pool_ipc_error_text(fd, m->body_len, v->h.fail_msg, sizeof(v->h.fail_msg));
        validator_done(p, v, m->status == 507 ? 507 : 400, v->h.fail_msg, NULL);
        return;
    }
    char *acc = pool_ipc_json_object(fd, m->body_len);
    validator_done(p, v, 0, NULL, acc);
    free(acc);
    proc_close(&p->procs, &v->h);
}

/* Reads every packet waiting on a process's socket. */
static void drain(pool *p, proc *pr)
{
    while (pr->sock >= 0) {
        ipc_msg m;
        int fd = -1;
        rouse_errbuf eb;
        rouse_errbuf_clear(&eb);
        char chunk[IPC_CHUNK_MAX];
        size_t chunk_len = 0;
        int rc = pr->kind == PROC_WORKER
                     ? ipc_recv_chunked(pr->sock, &m, &fd, chunk, sizeof(chunk), &chunk_len, 0, &eb)
                     : ipc_recv(pr->sock, &m, &fd, &eb);
        if (rc == ROUSE_EBUSY) return;
        if (rc < 0) {
            if (rc != ROUSE_ENOTFOUND) LOG_WARN(MOD, "process %d: %s", (int)pr->pid, eb.msg);
            if (rc == ROUSE_EFORMAT) continue;
            proc_close(&p->procs, pr);
            /* Gone: the reap (SIGCHLD) settles its calls, unless it never
             * had a process that serve knows of. */
            if (pr->kind == PROC_WORKER) {
                idle_update(p, (worker *)pr);
                if (pr->pid == 0) worker_exited(p, (worker *)pr, 0, true);
            }
            return;
        }
        if (pr->kind == PROC_TEMPLATE) {
            if (m.type == IPC_OUTPUT && fd >= 0 && p->output) {
                tmpl *t = (tmpl *)pr;
                if (t->h.start_argv) lifecycle_events(p); /* its pid, from the zygote */
                p->output(p->hooks_user, t->name, t->version, (int)t->h.pid, fd);
                fd = -1; /* the hook's now */
            } else if (m.type == IPC_READY)
                template_ready(p, (tmpl *)pr, &m, fd);
            else if (m.type == IPC_REPLY)
                template_spawned(p, (tmpl *)pr, &m, fd);
        } else if (pr->kind == PROC_VALIDATOR) {
            validator_message(p, (validator *)pr, &m, fd);
        } else if (m.type == IPC_READY) {
            if (!worker_ready(p, (worker *)pr, &m, fd)) { /* settled */
                if (fd >= 0) close(fd);
                return;
            }
        } else if (m.type == IPC_CHUNK) {
            worker_chunk(p, (worker *)pr, &m, chunk, chunk_len);
        } else if (m.type == IPC_REPLY) {
            worker *w = (worker *)pr;
            worker_reply(p, w, &m, &fd);
            /* Nothing more is due from an idle worker: skip the read that
             * would only say so (epoll is level-triggered and reports any
             * packet or end of stream that is there after all). */
            if (fd < 0 && w->n_inflight == 0 && w->h.state == PROC_READY) return;
        }
        if (fd >= 0) close(fd);
    }
}

void pool_on_event(pool *p, ep_tag *tag, uint32_t events)
{
    (void)events;
    if (tag->kind == EP_ZYGOTE) {
        lifecycle_events(p);
        return;
    }
    if (tag->kind == EP_BATCH_TIMER) {
        sched_batch_timer(p);
        return;
    }
    proc *pr = (proc *)tag;
    if (pr->dead) return;
    drain(p, pr);
}

/* --- how processes end ----------------------------------------------------- */

static void describe_status(int wstatus, bool no_process, char *buf, size_t cap)
{
    if (no_process)
        snprintf(buf, cap, "its template ended before it was forked");
    else if (WIFSIGNALED(wstatus))
        snprintf(buf, cap, "signal %d, %s", WTERMSIG(wstatus), strsignal(WTERMSIG(wstatus)));
    else if (WIFEXITED(wstatus))
        snprintf(buf, cap, "exit status %d", WEXITSTATUS(wstatus));
    else
        snprintf(buf, cap, "status %d", wstatus);
}

/* A template process ended. Its workers live on (they are serve's now);
 * the next start needs a new template. */
static void template_exited(pool *p, tmpl *t, const char *how)
{
    vpool *vp = t->vp;
    bool was_starting = vp && t->h.state == PROC_STARTING;
    if (t->h.state != PROC_STOPPING || t->h.fail_msg[0]) {
        LOG_WARN(MOD, "template %d ended (%s)", (int)t->h.pid, how);
        if (p->ended) {
            char what[320];
            snprintf(what, sizeof(what), "template %d ended (%s)%s%s", (int)t->h.pid, how,
                     t->h.fail_msg[0] ? ": " : "", t->h.fail_msg);
            p->ended(p->hooks_user, t->name, t->version, (int)t->h.pid, what);
        }
    }
    proc_close(&p->procs, &t->h);
    tmpl_leave(p, t);
    orphan_waiters(p, t);
    if (was_starting && !t->h.fail_msg[0]) {
        char msg[160];
        snprintf(msg, sizeof(msg), "its template ended while loading (%s)", how);
        start_failed(p, vp, msg);
    }
    bury_template(p, t);
    if (vp) sched_pump(p, vp);
}

/* A worker's process ended (or, no_process, will never exist): settle
 * what it held, forget it. */
static void worker_exited(pool *p, worker *w, int wstatus, bool no_process)
{
    char how[96];
    describe_status(wstatus, no_process, how, sizeof(how));
    if (!no_process) drain(p, &w->h); /* replies it sent before it died still count */
    proc_close(&p->procs, &w->h);
    if (w->peer_fd >= 0) close(w->peer_fd);
    w->peer_fd = -1;
    bool was_starting = w->h.state == PROC_STARTING;
    held_lost(p, w); /* a held spare that ended belongs to no pool */
    vpool *vp = w->vp;
    worker_uncount(p, w);
    call *c = worker_take_inflight(p, w);
    /* Calls handed to an instance that never came up (a primed worker)
     * did not run: they wait for the next one. */
    if (vp && was_starting && c) {
        requeue(vp, c);
        c = NULL;
    }
    /* A load failure was already reported with its message. */
    bool clean =
        no_process || (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) || w->h.fail_msg[0];
    if (c || !clean) {
        LOG_WARN(MOD, "instance %d %s (%s)", (int)w->h.pid,
                 w->killed_timeout ? "killed after a timeout" : "ended", how);
        if (vp && p->ended) {
            char what[256];
            snprintf(what, sizeof(what), "instance %d %s (%s)%s", (int)w->h.pid,
                     w->killed_timeout ? "killed after a request exceeded timeout_ms" : "ended",
                     how, c ? " while running a request" : "");
            p->ended(p->hooks_user, vp->name, vp->version, (int)w->h.pid, what);
        }
    }
    int sig = !no_process && WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : 0;
    bool oom = sig == SIGKILL && w->h.oom_killed;
    if (oom) p->n_oom_kills++;
    while (c) {
        call *n = c->next;
        if (oom)
            call_fail(p, c, 500, "instance exceeded its %" PRId64 " MB memory limit",
                      vp ? vp->cfg.memory_mb : (int64_t)0);
        /* Every call of a batch fails with the batch's id: none is retried,
         * since any of them may be what crashed it. */
        else if (c->batch_id && sig)
            call_fail(p, c, 500,
                      "instance crashed (signal %d) while running batch %" PRIu64
                      " (%d requests), this request among them; not retried, the next request "
                      "gets a fresh instance",
                      sig, c->batch_id, c->batch_n);
        else if (c->batch_id)
            call_fail(p, c, 500,
                      "instance ended (%s) while running batch %" PRIu64
                      " (%d requests), this request among them; not retried",
                      how, c->batch_id, c->batch_n);
        else if (sig)
            call_fail(p, c, 500,
                      "instance crashed (signal %d) while running this request; the next "
                      "request gets a fresh instance",
                      sig);
        else
            call_fail(p, c, 500, "instance ended (%s) while running this request", how);
        c = n;
    }
    if (vp && was_starting && !no_process && !w->h.fail_msg[0]) {
        char msg[160];
        snprintf(msg, sizeof(msg), "it ended while starting (%s)", how);
        start_failed(p, vp, msg);
    }
    bury_worker(p, w);
    if (vp) sched_pump(p, vp);
}

static void validator_exited(pool *p, validator *v, const char *how)
{
    drain(p, &v->h); /* its answer may be waiting on its socket */
    char msg[160];
    snprintf(msg, sizeof(msg), "the model loader crashed (%s)", how);
    validator_done(p, v, 400, msg, NULL);
    validators_remove(p, v);
    proc_bury(&p->procs, &v->h);
}

/* A template the zygote could not fork and exec could not start either:
 * what waits for it fails like a template that ended while loading. */
static void template_failed(pool *p, tmpl *t, const char *msg)
{
    vpool *vp = t->vp;
    LOG_ERROR(MOD, "cannot start a template%s%s: %s", vp ? " of " : "", vp ? vp->name : "", msg);
    tmpl_leave(p, t);
    orphan_waiters(p, t);
    if (vp) start_failed(p, vp, msg);
    bury_template(p, t);
    if (vp) sched_pump(p, vp);
}

/* What became of the templates asked of the zygote. */
static void lifecycle_events(pool *p)
{
    proc_event ev;
    while (proc_next_event(&p->procs, pool_now(p), &ev)) {
        tmpl *t = (tmpl *)ev.pr;
        if (ev.type == PROC_EV_FAILED) {
            template_failed(p, t, ev.msg);
        } else if (ev.type == PROC_EV_ENDED) {
            char how[96];
            describe_status(ev.wstatus, false, how, sizeof(how));
            template_exited(p, t, how);
        } else {
            t->forked = ev.forked;
            if (t->vp)
                LOG_INFO(MOD, "function %s v%" PRId64 ": template %d starting (%s)", t->vp->name,
                         t->vp->version, (int)t->h.pid,
                         ev.forked ? "forked by the zygote" : "exec");
        }
    }
}

void pool_reap(pool *p)
{
    /* Pids of fresh workers may still sit in their templates' replies. */
    for (tmpl *t = p->templates, *nx; t; t = nx) {
        nx = t->next;
        drain(p, &t->h);
    }
    int wstatus;
    proc *pr;
    while ((pr = proc_reap(&p->procs, &wstatus))) {
        char how[96];
        describe_status(wstatus, false, how, sizeof(how));
        if (pr->kind == PROC_WORKER)
            worker_exited(p, (worker *)pr, wstatus, false);
        else if (pr->kind == PROC_TEMPLATE)
            template_exited(p, (tmpl *)pr, how);
        else
            validator_exited(p, (validator *)pr, how);
    }
    lifecycle_events(p); /* the zygote may be among the ended */
}

void pool_collect(pool *p)
{
    proc_collect(&p->procs);
}

/* --- time ------------------------------------------------------------------ */

static void note_deadline(int64_t *next, uint64_t at, uint64_t now)
{
    int64_t ms = at <= now ? 0 : (int64_t)((at - now) / 1000000ull) + 1;
    if (*next < 0 || ms < *next) *next = ms;
}

/* Waiting calls past their deadline get 504 (deadlines need not ascend: a
 * live change may alter timeout_ms). */
static void expire_queue(pool *p, vpool *vp, uint64_t now, int64_t *next)
{
    call *prev = NULL;
    for (call *c = vp->queue, *n; c; c = n) {
        n = c->next;
        if (!pool_deadline_passed(now, c->deadline_ns)) {
            note_deadline(next, c->deadline_ns, now);
            prev = c;
            continue;
        }
        queue_unlink(vp, prev, c);
        call_fail(p, c, 504,
                  "deadline of %" PRId64 " ms (timeout_ms) passed while waiting for an instance",
                  vp->cfg.timeout_ms);
    }
}

/* scaling.keep_alive "learned" (keepalive_policy.h): whether vp's template
 * is wanted loaded now; *change_ns is when that answer changes (0: never). */
static bool learned_wants(const pool *p, const vpool *vp, uint64_t now, uint64_t *change_ns,
                          ka_windows *w)
{
    ka_windows_learned(&vp->ka, p->ka_minute_ms, vp->cfg.scaling.template_ttl_ms,
                       vp->cfg.scaling.template_ttl_caps, KA_SHARE_GAPS, w);
    int64_t change;
    bool want = ka_want_loaded(w, (int64_t)(now / 1000000ull), &change);
    *change_ns = change == INT64_MAX ? 0 : (uint64_t)change * 1000000ull;
    return want;
}

static bool keep_learned(const vpool *vp)
{
    return vp->cfg.scaling.keep_alive == FN_KEEP_ALIVE_LEARNED && !vp->retired &&
           vp->ka.last_minute >= 0;
}

/* No template: the learned policy starts one ahead of the request it
 * expects (pre-warm), once its pre-warm window has passed; otherwise (the
 * fixed fallback, a template that died) only a request starts one. */
static void tick_prewarm(pool *p, vpool *vp, uint64_t now, int64_t *next)
{
    if (!keep_learned(vp) || now < vp->no_start_until_ns) return;
    uint64_t change;
    ka_windows w;
    bool want = learned_wants(p, vp, now, &change, &w);
    if (w.kind != KA_LEARNED || w.prewarm_ms == 0) return;
    if (!want || (int64_t)(now / 1000000ull) < w.from_ms + w.prewarm_ms) {
        if (change) note_deadline(next, change, now);
        return;
    }
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    if (blobs_ready(p, vp) < 0) return; /* pre-warmed once it is here */
    if (start_template(p, vp, &eb) < 0) {
        LOG_ERROR(MOD, "cannot pre-warm a template of %s: %s", vp->name, eb.msg);
        return;
    }
    vp->n_prewarms++;
    LOG_DEBUG(MOD, "function %s v%" PRId64 ": template pre-warmed", vp->name, vp->version);
}

static void tick_template(pool *p, vpool *vp, uint64_t now, int64_t *next)
{
    tmpl *t = vp->tmpl;
    if (!t) tick_prewarm(p, vp, now, next);
    if (!t || t->h.state != PROC_READY) return;
    /* A template that does not answer a spawn (stopped, hung) is killed:
     * the workers it owed end with it (orphan_waiters at its reap), and the
     * calls they were for, still queued, get a new template. */
    for (const worker *w = t->waiting; w; w = w->tnext) {
        if (w->peer_fd >= 0) continue; /* not asked yet */
        if (now - w->spawn_ns > SPAWN_ANSWER_NS) {
            char why[96];
            snprintf(why, sizeof(why), "no answer to a spawn in %llu ms",
                     SPAWN_ANSWER_NS / 1000000ull);
            kill_template(p, t, why);
            return;
        }
        note_deadline(next, w->spawn_ns + SPAWN_ANSWER_NS, now);
    }
    if (keep_learned(vp)) {
        uint64_t change;
        ka_windows w;
        if (learned_wants(p, vp, now, &change, &w)) {
            if (change) note_deadline(next, change, now);
        } else if (t->n_waiting == 0)
            stop_template(p, t, "outside its keep-alive window (learned)");
        return;
    }
    uint64_t used = t->last_used_ns > vp->last_request_ns ? t->last_used_ns : vp->last_request_ns;
    int64_t ttl = vp->retired ? 0 : vp->cfg.scaling.template_ttl_ms;
    if (pool_should_stop_template(t->n_waiting, (long long)((now - used) / 1000000ull), ttl))
        stop_template(p, t, "unused for template_ttl_ms");
    else
        note_deadline(next, used + (uint64_t)ttl * 1000000ull, now);
}

/* A generation past its deadline is ended by its instance, which stops
 * that stream alone after the token (or prefill chunk) it is computing:
 * IPC_CANCEL with status 504 and the function's timeout_ms in json_len.
 * The stream's reply then carries the error. */
static void timeout_generation(const vpool *vp, worker *w, call *c)
{
    c->timed_out = true;
    if (w->h.sock < 0) return;
    ipc_msg m;
    ipc_msg_init(&m, IPC_CANCEL, c->id);
    m.status = 504;
    m.json_len = vp->cfg.timeout_ms;
    rouse_errbuf eb;
    if (ipc_send(w->h.sock, &m, -1, &eb) < 0) LOG_WARN(MOD, "%s", eb.msg);
}

static void tick_worker(pool *p, vpool *vp, worker *w, uint64_t now, int64_t *next)
{
    if (w->h.state != PROC_READY) return;
    call *late = NULL;
    for (call *c = w->inflight; c; c = c->next) {
        if (c->deadline_ns <= now && c->type == IPC_GENERATE) {
            /* Its instance ends it and serves on; killed only when it does
             * not answer within the grace. */
            if (!c->timed_out) timeout_generation(vp, w, c);
            uint64_t grace = c->deadline_ns + GEN_TIMEOUT_GRACE_NS;
            if (now < grace) {
                note_deadline(next, grace, now);
                continue;
            }
        }
        if (c->deadline_ns <= now) {
            late = c;
            break;
        }
        note_deadline(next, c->deadline_ns, now);
    }
    if (late) {
        /* The worker cannot be interrupted mid-run: kill it. Its other
         * calls did nothing wrong and go back to the queue. */
        w->killed_timeout = true;
        kill_worker(p, w, "a request exceeded timeout_ms");
        call *list = worker_take_inflight(p, w);
        call *keep = NULL, **tail = &keep;
        for (call *c = list, *n; c; c = n) {
            n = c->next;
            c->next = NULL;
            if (c == late) {
                call_fail(p, c, 504,
                          "request exceeded the function's timeout_ms (%" PRId64
                          " ms); its instance was stopped",
                          vp->cfg.timeout_ms);
            } else if (c->chunked) {
                /* A stream decoded alongside it has sent part of its answer:
                 * starting it again would send that part twice. */
                call_fail(p, c, 503,
                          "another stream of its instance exceeded timeout_ms (%" PRId64
                          " ms); the instance was stopped",
                          vp->cfg.timeout_ms);
            } else {
                *tail = c;
                tail = &c->next;
            }
        }
        requeue(vp, keep);
        sched_pump(p, vp);
        return;
    }
    if (w->n_inflight == 0) {
        long long idle_ms = (long long)((now - w->idle_since_ns) / 1000000ull);
        int64_t timeout = vp->retired ? 0 : vp->cfg.scaling.idle_timeout_ms;
        if (pool_over_max(vp->n_instances, (int)vp->cfg.scaling.max)) {
            stop_worker(p, w, "above scaling.max");
        } else if (pool_should_stop_idle(vp->n_instances, (int)eff_min(vp), idle_ms, timeout)) {
            stop_worker(p, w, vp->retired ? "its version was replaced" : "idle");
        } else if (vp->n_instances > eff_min(vp)) {
            note_deadline(next, w->idle_since_ns + (uint64_t)timeout * 1000000ull, now);
        }
    }
}

int pool_tick(pool *p)
{
    lifecycle_events(p); /* a zygote too slow to answer is given up here */
    uint64_t now = pool_now(p);
    int64_t next = proc_timeout_ms(&p->procs, now);
    for (vpool *vp = p->pools; vp; vp = vp->next) {
        if (vp->batch_due_ns && vp->batch_due_ns <= now) sched_pump(p, vp);
        if (vp->batch_due_ns) note_deadline(&next, vp->batch_due_ns, now);
        expire_queue(p, vp, now, &next);
        if ((int)eff_min(vp) > vp->n_instances) {
            ensure_min(p, vp);
            if (vp->no_start_until_ns > now) note_deadline(&next, vp->no_start_until_ns, now);
        }
        tick_template(p, vp, now, &next);
        maybe_allow_spare(p, vp->tmpl);
        if (vp->spare_after_ns > now) note_deadline(&next, vp->spare_after_ns, now);
        /* New workers go to the head of the list: the walk never meets them. */
        for (worker *w = vp->workers, *nx; w; w = nx) {
            nx = w->vnext;
            tick_worker(p, vp, w, now, &next);
        }
    }
    for (validator *v = p->validators, *nx; v; v = nx) {
        nx = v->next;
        if (now - v->h.started_ns > VALIDATE_TIMEOUT_NS) {
            proc_kill(&p->procs, &v->h);
            validator_done(p, v, 400, "loading the model took longer than 600 s", NULL);
        } else {
            note_deadline(&next, v->h.started_ns + VALIDATE_TIMEOUT_NS, now);
        }
    }
    return next > INT32_MAX ? INT32_MAX : (int)next;
}

/* --- bulk operations ------------------------------------------------------- */

int pool_scale_to_zero(pool *p, const char *name)
{
    int n = 0;
    for (vpool *vp = p->pools; vp; vp = vp->next) {
        if (strcmp(vp->name, name) != 0) continue;
        for (worker *w = vp->workers, *nx; w; w = nx) {
            nx = w->vnext;
            if (w->h.state == PROC_READY && w->n_inflight == 0) {
                stop_worker(p, w, "scaled to zero");
                n++;
            }
        }
        /* A template still owing spawns keeps them; it goes at its TTL. */
        if (vp->tmpl && vp->tmpl->n_waiting == 0) {
            stop_template(p, vp->tmpl, "scaled to zero");
            n++;
        }
    }
    return n;
}

void sched_free_pool(pool *p, vpool *vp, int status, const char *why)
{
    fail_queue(p, vp, status, why);
    while (vp->workers) {
        worker *w = vp->workers;
        call *c = worker_take_inflight(p, w);
        /* Busy workers cannot be interrupted: kill them. Idle ones exit
         * when their socket closes. */
        if (c && w->h.state != PROC_STOPPING) kill_worker(p, w, why);
        worker_uncount(p, w);
        proc_close(&p->procs, &w->h);
        vp_workers_remove(w);
        w->vp = NULL;
        while (c) {
            call *n = c->next;
            call_fail(p, c, status, "%s", why);
            c = n;
        }
    }
    if (vp->tmpl) {
        tmpl *t = vp->tmpl;
        tmpl_leave(p, t);
        proc_close(&p->procs, &t->h);
    }
    for (vpool **pp = &p->pools; *pp; pp = &(*pp)->next) {
        if (*pp == vp) {
            *pp = vp->next;
            break;
        }
    }
    if (vp->fetch_ticket) blob_remote_cancel(p->remote, vp->fetch_ticket);
    free(vp);
}

uint64_t pool_oom_kills(const pool *p)
{
    return p->n_oom_kills;
}

int pool_pending(const pool *p)
{
    int n = 0;
    for (const vpool *vp = p->pools; vp; vp = vp->next) {
        n += vp->n_queued;
        for (const worker *w = vp->workers; w; w = w->vnext)
            n += w->n_inflight;
    }
    for (const validator *v = p->validators; v; v = v->next)
        n++;
    return n;
}

void pool_fail_all(pool *p, const char *why)
{
    while (p->validators) {
        validator *v = p->validators;
        proc_kill(&p->procs, &v->h);
        validator_done(p, v, 503, why, NULL);
    }
    while (p->pools)
        sched_free_pool(p, p->pools, 503, why);
}

int pool_load(const pool *p, pool_load_fn f, void *user)
{
    int global_free = p->max_instances - global_used(p);
    if (global_free < 0) global_free = 0;
    for (const vpool *vp = p->pools; vp; vp = vp->next) {
        pool_view v = view_of(p, vp);
        int busy = 0;
        for (const worker *w = vp->workers; w; w = w->vnext)
            if (w->h.state == PROC_READY && w->n_inflight > 0) busy++;
        int startable = v.max - v.n_instances;
        if (startable > global_free) startable = global_free;
        pool_load_row row = {.name = vp->name,
                             .version = vp->version,
                             .instances = v.n_instances,
                             .idle = v.free_slots,
                             .busy = busy,
                             .startable = startable > 0 ? startable : 0,
                             .free_capacity = sched_free_capacity(p, vp),
                             .queued = vp->n_queued};
        f(user, &row);
    }
    return global_free;
}

void pool_set_min_share(pool *p, int rank, int n_nodes)
{
    if (p->min_rank == rank && p->min_nodes == n_nodes) return;
    LOG_INFO(MOD, "min instances: this node keeps its share as %d of %d node(s)", rank + 1,
             n_nodes);
    p->min_rank = rank;
    p->min_nodes = n_nodes;
}
