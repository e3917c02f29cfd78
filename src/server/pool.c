/*
 * Instance pools: one per function version that has been called, each with
 * its template process, its instances and a FIFO of waiting requests. The
 * decisions (dispatch, start, queue, reject, stop idle, keep min warm, share
 * the global cap fairly, stop the template) come from the pure policy in
 * pool_policy.c; this file does the mechanics: templates and spawning,
 * talking IPC, deadlines, reaping, crash and timeout handling.
 *
 * An instance starts as a fork of its pool's template (worker/template.h):
 * serve makes a socketpair, passes one end to the template with IPC_SPAWN
 * and learns the pid from the template's reply or the instance's READY.
 * With no template, one is exec'd first ("from zero") and the instance
 * waits for it holding its socket end (peer_fd). Instances are reparented to
 * serve (a child subreaper), so serve reaps them like its own children.
 *
 * Invariants:
 * - Every call ends exactly once (call_end): reply set, connection resumed,
 *   body freed or its memfd closed, call freed.
 * - An instance's shared region is lent to at most one call at a time
 *   (region_call); serve writes it only while it is not lent, and takes it
 *   back when that call's reply arrives.
 * - A call is either in its pool's queue or in one instance's in-flight
 *   list, never both; in-flight order is reply order.
 * - vp->n_instances and s->n_instances count starting and ready instances;
 *   stopping ones (closed or killed, not yet reaped) are not counted.
 * - An instance is freed only after waitpid reaped it, so a pid is never
 *   confused with a later process; one that never had a process (its
 *   template died first) is freed when its socket reports end of stream.
 * - Templates are in the instance list with is_template set; they are not
 *   counted in any cap, never dispatched to, and a pool has at most one.
 * - A call's req, when set, points back at the call (req->pending) until the
 *   call ends; a client that hangs up unlinks both.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/arena.h"
#include "common/json.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "server/pool_policy.h"
#include "server/server_int.h"
#include "store/store.h"
#include "worker/ipc.h"

#define MOD "pool"
#define VALIDATE_TIMEOUT_NS (600ull * 1000000000ull)

static void pump(server *s, vpool *vp);

/* --- calls ----------------------------------------------------------------- */

static void call_free(call *c)
{
    if (c->body_fd >= 0) close(c->body_fd);
    free(c->body);
    free(c);
}

/* Seconds a client turned away from vp's full queue should wait. */
static int retry_after(const server *s, const vpool *vp)
{
    int64_t inst = vp->cfg.scaling.max < s->max_instances ? vp->cfg.scaling.max : s->max_instances;
    int64_t slots = inst * (vp->cfg.scaling.concurrency > 0 ? vp->cfg.scaling.concurrency : 1);
    return pool_retry_after_s(vp->n_queued, vp->reply_ewma_ns,
                              slots > INT32_MAX ? INT32_MAX : (int)slots);
}

/* Ends a call; takes res->fd and res->body. */
static void call_end(server *s, call *c, const call_result *res)
{
    (void)s;
    http_req *req = c->req;
    if (!req) { /* the client went away: nobody to answer */
        if (res->fd >= 0) close(res->fd);
        free(res->body);
        call_free(c);
        return;
    }
    req->pending = NULL;
    if (res->error) {
        http_reply_error(req, res->status, "%s", res->error);
    } else {
        http_reply *r = &req->reply;
        free(r->body);
        r->body = NULL;
        r->len = 0;
        if (r->fd >= 0) close(r->fd);
        r->status = res->status;
        snprintf(r->content_type, sizeof(r->content_type), "%s",
                 res->content_type && res->content_type[0] ? res->content_type
                                                           : "application/json");
        r->fd = res->fd;
        r->fd_len = res->fd >= 0 ? res->len : 0;
        r->body = res->body;
        r->len = res->body ? res->len : 0;
        r->json_len = res->json_len;
        req->have_reply = true;
    }
    if (c->version > 0) req->reply.version = c->version;
    if (res->status == 429) req->reply.retry_after = c->vp ? retry_after(s, c->vp) : 1;
    if (res->start) snprintf(req->reply.start, sizeof(req->reply.start), "%s", res->start);
    if (res->timing) snprintf(req->reply.timing, sizeof(req->reply.timing), "%s", res->timing);
    http_req_resume(req);
    call_free(c);
}

static void call_fail(server *s, call *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void call_fail(server *s, call *c, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    call_result res = {.status = status, .fd = -1, .json_len = -1, .error = msg};
    call_end(s, c, &res);
}

static void queue_push(vpool *vp, call *c, bool front)
{
    c->inst = NULL;
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
    c->next = NULL;
    return c;
}

/* --- instances ------------------------------------------------------------- */

/* A serving instance (not a template, not a validator). */
static bool is_worker(const instance *i)
{
    return i->vp && !i->is_template;
}

static const char *kind_name(start_kind k)
{
    return k == START_ZERO ? "zero" : k == START_TEMPLATE ? "template" : "warm";
}

static int64_t eff_min(const vpool *vp)
{
    return vp->retired ? 0 : vp->cfg.scaling.min;
}

static void inst_close_socket(server *s, instance *inst)
{
    if (inst->sock < 0) return;
    epoll_ctl(s->epfd, EPOLL_CTL_DEL, inst->sock, NULL);
    close(inst->sock);
    inst->sock = -1;
}

/* Leaves the counted states (starting/ready) for stopping. */
static void inst_uncount(server *s, instance *inst)
{
    if (inst->state == INST_STOPPING) return;
    inst->state = INST_STOPPING;
    if (is_worker(inst)) {
        inst->vp->n_instances--;
        s->n_instances--;
    }
    if (inst->is_template && inst->vp && inst->vp->tmpl == inst) inst->vp->tmpl = NULL;
}

/* Takes the in-flight calls away from an instance (oldest first). */
static call *inst_take_inflight(instance *inst)
{
    call *list = inst->inflight;
    inst->inflight = inst->inflight_tail = NULL;
    inst->n_inflight = 0;
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
        queue_push(vp, rev, true);
        rev = n;
    }
}

static void inst_free(instance *inst)
{
    ipc_region_unmap(inst->region, inst->region_size);
    if (inst->region_fd >= 0) close(inst->region_fd);
    free(inst);
}

static instance *inst_new(server *s, vpool *vp, int sock)
{
    instance *inst = calloc(1, sizeof(*inst));
    if (!inst) return NULL;
    inst->tag.kind = EP_INSTANCE;
    inst->srv = s;
    inst->vp = vp;
    inst->sock = sock;
    inst->peer_fd = -1;
    inst->region_fd = -1;
    inst->state = INST_STARTING;
    inst->started_ns = rouse_now_ns();
    fcntl(sock, F_SETFL, fcntl(sock, F_GETFL) | O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &inst->tag};
    epoll_ctl(s->epfd, EPOLL_CTL_ADD, sock, &ev);
    inst->next = s->instances;
    s->instances = inst;
    return inst;
}

typedef enum exec_mode { EXEC_CHECK, EXEC_TEMPLATE } exec_mode;

#define WORKER_ARGV_MAX 18

/* The arguments of `rouse __template` for a model, or of `rouse __instance
 * --check` (EXEC_CHECK); argv[0] is the executable, ver the room for the
 * version. digest: the model blob's sha256 in hex, or NULL. Returns argc. */
static int worker_argv(server *s, const char *model_path, const char *name, int64_t version,
                       const char *digest, exec_mode mode, char ver[32],
                       char *argv[WORKER_ARGV_MAX])
{
    snprintf(ver, 32, "%" PRId64, version);
    char *head[] = {s->exe,         mode == EXEC_TEMPLATE ? "__template" : "__instance",
                    "--fd",         "3",
                    "--model",      (char *)model_path,
                    "--name",       (char *)name,
                    "--version",    ver,
                    "--plan-cache", s->plan_dir,
                    "--log-level",  s->log_level};
    int argc = (int)(sizeof(head) / sizeof(head[0]));
    memcpy(argv, head, sizeof(head));
    if (mode == EXEC_CHECK) argv[argc++] = "--check";
    /* A template is told its blob's digest, so that it opens the cached
     * plan without hashing the model file again. */
    if (mode == EXEC_TEMPLATE && digest) {
        argv[argc++] = "--sha256";
        argv[argc++] = (char *)digest;
    }
    argv[argc] = NULL;
    return argc;
}

/* The model digest of a version's config ("sha256:HEX"), or NULL. */
static const char *config_digest(const fn_config *cfg)
{
    return strncmp(cfg->model, "sha256:", 7) == 0 ? cfg->model + 7 : NULL;
}

/* fork+exec of `rouse __instance --check` (deploy validation, which also
 * compiles the plan), or the start of `rouse __template` for a pool: forked
 * by the zygote, exec'd without one. */
static int spawn_exec(server *s, vpool *vp, const char *model_path, const char *name,
                      int64_t version, exec_mode mode, instance **out, rouse_errbuf *eb)
{
    uint64_t t0 = rouse_now_ns();
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return rouse_err_set(eb, ROUSE_EIO, "socketpair: %s", strerror(errno));
    char ver[32];
    char *argv[WORKER_ARGV_MAX];
    int argc = worker_argv(s, model_path, name, version, vp ? config_digest(&vp->cfg) : NULL, mode,
                           ver, argv);
    pid_t pid = 0;
    bool forked =
        mode == EXEC_TEMPLATE && zygote_fork_template(s, argc - 1, argv + 1, sv[1], &pid) == 0;
    if (!forked && mode == EXEC_TEMPLATE) {
        /* Whatever a lost zygote may still do with the old socket, the
         * exec'd template gets a new one. */
        close(sv[0]);
        close(sv[1]);
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
            return rouse_err_set(eb, ROUSE_EIO, "socketpair: %s", strerror(errno));
    }
    if (!forked && server_fork_exec(s, argv, sv[1], -1, &pid, eb) < 0) {
        close(sv[0]);
        close(sv[1]);
        return eb->code;
    }
    close(sv[1]);
    instance *inst = inst_new(s, vp, sv[0]);
    if (!inst) {
        kill(pid, SIGKILL);
        close(sv[0]);
        return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    }
    inst->pid = pid;
    inst->is_template = mode == EXEC_TEMPLATE;
    inst->forked = forked;
    inst->started_ns = inst->last_used_ns = t0; /* the start includes the fork or exec */
    if (mode == EXEC_CHECK)
        LOG_INFO(MOD, "function %s: checking a new model in process %d", name, (int)pid);
    else
        LOG_INFO(MOD, "function %s v%" PRId64 ": template %d starting (%s)", name, version,
                 (int)pid, forked ? "forked by the zygote" : "exec");
    *out = inst;
    return 0;
}

static int inst_free_slots(const instance *inst)
{
    if (inst->state != INST_READY || inst->sock < 0 || !is_worker(inst)) return 0;
    int c = (int)inst->vp->cfg.scaling.concurrency;
    return c > inst->n_inflight ? c - inst->n_inflight : 0;
}

static void kill_instance(server *s, instance *inst, const char *why)
{
    LOG_WARN(MOD, "killing %s %d: %s", inst->is_template ? "template" : "instance", (int)inst->pid,
             why);
    if (inst->pid > 0) kill(inst->pid, SIGKILL);
    inst_uncount(s, inst);
    inst_close_socket(s, inst);
}

/* Stops an instance gently: it exits at end of stream. */
static void stop_instance(server *s, instance *inst, const char *why)
{
    if (is_worker(inst))
        LOG_INFO(MOD, "function %s v%" PRId64 ": stopping %s instance %d (%s)", inst->vp->name,
                 inst->vp->version, inst->n_inflight ? "busy" : "idle", (int)inst->pid, why);
    else if (inst->vp)
        LOG_INFO(MOD, "function %s v%" PRId64 ": stopping template %d (%s)", inst->vp->name,
                 inst->vp->version, (int)inst->pid, why);
    inst_uncount(s, inst);
    inst_close_socket(s, inst);
}

/* Makes inst's region hold at least `need` bytes: a new, bigger one replaces
 * it (sent with the next request that uses it). */
static int region_fit(instance *inst, uint64_t need, rouse_errbuf *eb)
{
    if (inst->region && need <= inst->region_size) return 0;
    uint64_t size = REGION_MIN_BYTES;
    while (size < need)
        size *= 2;
    int fd;
    void *map;
    int rc = ipc_region_create(size, &fd, &map, eb);
    if (rc < 0) return rc;
    LOG_DEBUG(MOD, "instance %d: shared region of %" PRIu64 " bytes", (int)inst->pid, size);
    ipc_region_unmap(inst->region, inst->region_size);
    if (inst->region_fd >= 0) close(inst->region_fd);
    inst->region = map;
    inst->region_size = size;
    inst->region_fd = fd;
    return 0;
}

/* Puts c's body where inst will read it: into the shared region when the
 * region is free and the body (and the biggest reply seen) fits under
 * REGION_MAX_BYTES, else into a memfd of its own. Sets m's flags and the
 * descriptor to pass (-1 for none). */
static int place_body(instance *inst, call *c, ipc_msg *m, int *pass_fd, rouse_errbuf *eb)
{
    *pass_fd = c->body_fd;
    if (!c->body) return 0; /* spilled into a memfd, or no body */
    uint64_t need = c->body_len > inst->reply_hint ? c->body_len : inst->reply_hint;
    if (!inst->region_call && need <= REGION_MAX_BYTES && region_fit(inst, need, eb) == 0) {
        if (c->body_len > 0) memcpy(inst->region, c->body, c->body_len);
        m->flags |= IPC_F_IN_REGION;
        if (inst->region_fd >= 0) {
            m->flags |= IPC_F_REGION;
            m->region_size = inst->region_size;
            *pass_fd = inst->region_fd;
        }
        inst->region_call = c;
        return 0;
    }
    if (c->body_fd < 0) {
        int rc = ipc_memfd_from(c->body, c->body_len, &c->body_fd, eb);
        if (rc < 0) return rc;
    }
    *pass_fd = c->body_fd;
    return 0;
}

/* Sends c to inst; on failure the instance is broken: kill it and requeue. */
static void dispatch(server *s, instance *inst, call *c)
{
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    ipc_msg m;
    ipc_msg_init(&m, (ipc_type)c->type, c->id);
    m.json_len = c->json_len;
    m.body_len = c->body_len;
    m.version = c->version;
    /* How soon this instance's next request usually comes after a reply. */
    vpool *pv = inst->vp;
    if (inst->n_inflight == 0 && inst->served_first) {
        uint64_t gap = rouse_now_ns() - inst->idle_since_ns;
        pv->gap_ewma_ns = pv->gap_ewma_ns ? (pv->gap_ewma_ns * 7 + gap) / 8 : gap;
    }
    if (pv->gap_ewma_ns && pv->gap_ewma_ns <= POLL_GAP_MAX_NS)
        m.poll_us = (uint32_t)((2 * pv->gap_ewma_ns + POLL_SLACK_NS) / 1000u);
    int fd;
    if (place_body(inst, c, &m, &fd, &eb) < 0) {
        /* Nothing was sent: the instance is fine, the request cannot go. */
        call_fail(s, c, 500, "%s", eb.msg);
        return;
    }
    c->inst = inst;
    c->next = NULL;
    c->dispatch_ns = rouse_now_ns();
    server_expect_reply(s, inst->vp, c->dispatch_ns);
    c->first = !inst->served_first;
    inst->served_first = true;
    if (inst->inflight_tail)
        inst->inflight_tail->next = c;
    else
        inst->inflight = c;
    inst->inflight_tail = c;
    inst->n_inflight++;
    int rc = ipc_send(inst->sock, &m, fd, &eb);
    if (m.flags & IPC_F_REGION) { /* the instance has its own descriptor now */
        close(inst->region_fd);
        inst->region_fd = -1;
    }
    if (rc < 0) {
        vpool *vp = inst->vp;
        kill_instance(s, inst, eb.msg);
        call *list = inst_take_inflight(inst);
        for (call *k = list; k; k = k->next)
            k->first = false;
        requeue(vp, list);
    }
}

static void fail_queue(server *s, vpool *vp, int status, const char *msg)
{
    call *c;
    while ((c = queue_pop(vp)))
        call_fail(s, c, status, "%s", msg);
}

static pool_view view_of(const server *s, const vpool *vp)
{
    pool_view v = {.concurrency = (int)vp->cfg.scaling.concurrency,
                   .max = (int)vp->cfg.scaling.max,
                   .n_queued = vp->n_queued,
                   .queue_depth = (int)vp->cfg.scaling.queue_depth,
                   .global_instances = s->n_instances,
                   .global_max = s->max_instances};
    for (const instance *i = s->instances; i; i = i->next) {
        if (i->vp != vp || !is_worker(i) || i->state == INST_STOPPING) continue;
        v.n_instances++;
        if (i->state == INST_STARTING) v.n_starting++;
        v.free_slots += inst_free_slots(i);
    }
    return v;
}

/* The view for the newest waiting call (it is already in the queue). */
static pool_view waiting_view(const server *s, const vpool *vp)
{
    pool_view v = view_of(s, vp);
    if (v.n_queued > 0) v.n_queued--;
    return v;
}

/* Pools that hold instances or have requests waiting share the global cap. */
static int fair_share(const server *s)
{
    int n = 0;
    for (const vpool *vp = s->pools; vp; vp = vp->next)
        if (vp->n_instances > 0 || vp->n_queued > 0) n++;
    return pool_fair_share(s->max_instances, n);
}

static int n_starved_except(const server *s, const vpool *except, int share)
{
    int n = 0;
    for (const vpool *vp = s->pools; vp; vp = vp->next) {
        if (vp == except || vp->n_queued == 0) continue;
        pool_view v = waiting_view(s, vp);
        if (pool_is_starved(&v, share)) n++;
    }
    return n;
}

/* Asks the template for one instance. A failure breaks the template: kill it
 * (the instance's socket then ends and the instance is dropped). */
static void send_spawn(server *s, instance *inst)
{
    instance *t = inst->tmpl;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    ipc_msg m;
    inst->spawn_id = s->next_spawn_id++;
    ipc_msg_init(&m, IPC_SPAWN, inst->spawn_id);
    inst->spawn_ns = t->last_used_ns = rouse_now_ns();
    int rc = ipc_send(t->sock, &m, inst->peer_fd, &eb);
    close(inst->peer_fd);
    inst->peer_fd = -1;
    if (rc < 0) kill_instance(s, t, eb.msg);
}

static int start_instance(server *s, vpool *vp)
{
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    int rc;
    if (!vp->tmpl) {
        instance *t;
        rc = spawn_exec(s, vp, vp->model_path, vp->name, vp->version, EXEC_TEMPLATE, &t, &eb);
        if (rc < 0) {
            LOG_ERROR(MOD, "cannot start a template of %s: %s", vp->name, eb.msg);
            return rc;
        }
        vp->tmpl = t;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        LOG_ERROR(MOD, "socketpair: %s", strerror(errno));
        return ROUSE_EIO;
    }
    instance *inst = inst_new(s, vp, sv[0]);
    if (!inst) {
        close(sv[0]);
        close(sv[1]);
        return ROUSE_ENOMEM;
    }
    inst->peer_fd = sv[1];
    inst->tmpl = vp->tmpl;
    inst->kind = vp->tmpl->state == INST_READY ? START_TEMPLATE : START_ZERO;
    vp->n_instances++;
    s->n_instances++;
    if (vp->tmpl->state == INST_READY) send_spawn(s, inst);
    return 0;
}

/* Makes room under the global cap for for_vp: stops the instance of another
 * pool that has been idle the longest, among those the policy lets go: for
 * waiting requests, as far as the fair shares allow (pool_may_evict); for
 * for_vp's min, any held beyond its own pool's min (pool_may_evict_for_min). */
static bool evict_idle(server *s, const vpool *for_vp, bool for_min)
{
    int share = fair_share(s);
    instance *victim = NULL;
    for (instance *i = s->instances; i; i = i->next) {
        if (!is_worker(i) || i->vp == for_vp || i->state != INST_READY || i->n_inflight > 0)
            continue;
        int n = i->vp->n_instances, min = (int)eff_min(i->vp);
        if (for_min ? !pool_may_evict_for_min(n, min)
                    : !pool_may_evict(for_vp->n_instances, share, n, min, share))
            continue;
        if (!victim || i->idle_since_ns < victim->idle_since_ns) victim = i;
    }
    if (!victim) return false;
    stop_instance(s, victim,
                  for_min ? "making room for another function's min"
                          : "making room under the global cap");
    return true;
}

/* Starts what `min` asks for (not while backing off after a failure). */
static void ensure_min(server *s, vpool *vp)
{
    if (rouse_now_ns() < vp->no_start_until_ns) return;
    int want = (int)eff_min(vp) - vp->n_instances;
    /* min is a reservation: what the cap lacks comes from idle instances. */
    while (want > 0 && s->max_instances - s->n_instances < want && evict_idle(s, vp, true)) {
    }
    int n = pool_missing_warm(vp->n_instances, (int)eff_min(vp), s->n_instances, s->max_instances);
    for (int k = 0; k < n; k++)
        if (start_instance(s, vp) < 0) break;
}

/* Moves waiting calls to free slots, keeps min warm, and starts instances
 * while the queue holds more than the capacity on its way. */
static void pump(server *s, vpool *vp)
{
    while (vp->queue) {
        instance *best = NULL;
        for (instance *i = s->instances; i; i = i->next) {
            if (i->vp != vp || inst_free_slots(i) == 0) continue;
            if (!best || i->n_inflight < best->n_inflight) best = i;
        }
        if (!best) break;
        dispatch(s, best, queue_pop(vp));
    }
    ensure_min(s, vp);
    while (vp->queue) {
        pool_view v = waiting_view(s, vp);
        if (pool_blocked_by_global_cap(&v) && evict_idle(s, vp, false)) v = waiting_view(s, vp);
        if (pool_decide(&v) != POOL_START_QUEUE) break;
        if (start_instance(s, vp) < 0) {
            if (vp->n_instances == 0)
                fail_queue(s, vp, 503, "cannot start an instance of this function");
            break;
        }
    }
}

static void pump_all(server *s)
{
    for (vpool *vp = s->pools; vp; vp = vp->next)
        pump(s, vp);
}

static vpool *find_pool(server *s, const char *name, int64_t version)
{
    for (vpool *vp = s->pools; vp; vp = vp->next)
        if (vp->version == version && strcmp(vp->name, name) == 0) return vp;
    return NULL;
}

static int load_config(server *s, const char *name, int64_t version, fn_config *cfg,
                       char *model_path, size_t cap, rouse_errbuf *eb)
{
    store_version sv;
    memset(&sv, 0, sizeof(sv));
    int rc = store_version_get(s->st, name, version, &sv, eb);
    if (rc < 0) return rc;
    rc = fn_config_load(sv.config_json, strlen(sv.config_json), cfg, eb);
    if (rc == 0 && model_path) rc = blob_path(s->blobs, sv.model_digest, model_path, cap);
    free(sv.config_json);
    if (rc < 0)
        return rouse_err_wrap(eb, ROUSE_EINTERNAL, "stored config of %s v%" PRId64, name, version);
    return 0;
}

/* A new pool of name/version, with its config and model path as the caller
 * read them, or read from the store when cfg is NULL. */
static int make_pool(server *s, const char *name, int64_t version, const fn_config *cfg,
                     const char *model_path, vpool **out, rouse_errbuf *eb)
{
    vpool *vp = calloc(1, sizeof(*vp));
    if (!vp) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    if (cfg) {
        vp->cfg = *cfg;
        snprintf(vp->model_path, sizeof(vp->model_path), "%s", model_path);
    } else {
        int rc =
            load_config(s, name, version, &vp->cfg, vp->model_path, sizeof(vp->model_path), eb);
        if (rc < 0) {
            free(vp);
            return rc;
        }
    }
    snprintf(vp->name, sizeof(vp->name), "%s", name);
    vp->version = version;
    vp->last_request_ns = rouse_now_ns();
    vp->next = s->pools;
    s->pools = vp;
    *out = vp;
    return 0;
}

int pool_submit(server *s, http_req *req, const char *name, int64_t version, int type, char *body,
                int body_fd, uint64_t body_len, int64_t json_len)
{
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    vpool *vp = find_pool(s, name, version);
    int rc;
    if (!vp && (rc = make_pool(s, name, version, NULL, NULL, &vp, &eb)) < 0) {
        if (body_fd >= 0) close(body_fd);
        free(body);
        http_reply_error(req, http_status_of(rc), "%s", eb.msg);
        return rc;
    }
    vp->retired = false; /* asked for by name: it serves again */
    vp->last_request_ns = rouse_now_ns();
    pool_view v = view_of(s, vp);
    pool_decision d = pool_decide(&v);
    if (d == POOL_REJECT) {
        if (body_fd >= 0) close(body_fd);
        free(body);
        http_reply_error(req, 429,
                         "function %s version %" PRId64 " is overloaded (%d requests waiting)",
                         name, version, vp->n_queued);
        req->reply.retry_after = retry_after(s, vp);
        req->reply.version = version;
        return ROUSE_EBUSY;
    }
    call *c = calloc(1, sizeof(*c));
    if (!c) {
        if (body_fd >= 0) close(body_fd);
        free(body);
        http_reply_error(req, 500, "out of memory");
        return ROUSE_ENOMEM;
    }
    c->req = req;
    c->vp = vp;
    c->id = s->next_call_id++;
    c->type = type;
    c->body = body;
    c->body_fd = body_fd;
    c->body_len = body_len;
    c->json_len = json_len;
    c->version = version;
    c->enq_ns = rouse_now_ns();
    c->deadline_ns = c->enq_ns + (uint64_t)vp->cfg.timeout_ms * 1000000ull;
    req->pending = c;
    queue_push(vp, c, false);
    pump(s, vp);
    return 0;
}

bool pool_cancel(server *s, http_req *req)
{
    (void)s;
    call *c = req->pending;
    req->pending = NULL;
    if (!c) return false;
    if (c->inst) {
        c->req = NULL; /* its reply is discarded */
        return false;
    }
    vpool *vp = c->vp;
    call *prev = NULL;
    for (call *k = vp->queue; k; prev = k, k = k->next) {
        if (k != c) continue;
        if (prev)
            prev->next = c->next;
        else
            vp->queue = c->next;
        if (vp->queue_tail == c) vp->queue_tail = prev;
        vp->n_queued--;
        break;
    }
    call_free(c);
    return true;
}

int pool_validate(server *s, http_req *req, const char *model_path, rouse_errbuf *eb)
{
    instance *inst;
    int rc = spawn_exec(s, NULL, model_path, req->r.name, 0, EXEC_CHECK, &inst, eb);
    if (rc < 0) return rc;
    inst->validate_req = req;
    return 0;
}

/* Whether a version is named by any alias of the function. */
static bool aliased(const store_function *f, int64_t version)
{
    for (int i = 0; i < f->n_aliases; i++)
        for (int j = 0; j < f->aliases[i].n_routes; j++)
            if (f->aliases[i].routes[j].version == version) return true;
    return false;
}

/* The pools of f after its aliases changed: versions no alias names finish
 * what they hold, then stop (a version an alias names again keeps its min
 * again), every routed version with a min gets a pool, whose warm
 * instances the next pump starts, not its first request, and every other
 * routed version without a pool gets its kernels generated in the zygote. */
/* True when route j of alias i names a version an earlier route of f
 * (in alias order) already names: "latest" and "prod" often agree. */
static bool routed_before(const store_function *f, int i, int j)
{
    int64_t version = f->aliases[i].routes[j].version;
    for (int a = 0; a <= i; a++)
        for (int r = 0; r < (a < i ? f->aliases[a].n_routes : j); r++)
            if (f->aliases[a].routes[r].version == version) return true;
    return false;
}

static void apply_routes(server *s, const store_function *f)
{
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    for (vpool *vp = s->pools; vp; vp = vp->next)
        if (strcmp(vp->name, f->name) == 0) vp->retired = !aliased(f, vp->version);
    for (int i = 0; i < f->n_aliases; i++) {
        for (int j = 0; j < f->aliases[i].n_routes; j++) {
            int64_t version = f->aliases[i].routes[j].version;
            fn_config cfg;
            vpool *vp;
            char model_path[PATH_MAX];
            if (find_pool(s, f->name, version) || routed_before(f, i, j)) continue;
            if (load_config(s, f->name, version, &cfg, model_path, sizeof(model_path), &eb) < 0 ||
                (cfg.scaling.min > 0 &&
                 make_pool(s, f->name, version, &cfg, model_path, &vp, &eb) < 0)) {
                LOG_ERROR(MOD, "function %s v%" PRId64 ": %s", f->name, version, eb.msg);
                continue;
            }
            if (cfg.scaling.min > 0) continue; /* its template starts now */
            /* Routed but at zero (a deploy, a rollback, a restart): its
             * kernels are generated now, in the zygote, not at its first
             * request. A version warmed before costs the zygote a lookup. */
            char ver[32];
            char *argv[WORKER_ARGV_MAX];
            int argc = worker_argv(s, model_path, f->name, version, config_digest(&cfg),
                                   EXEC_TEMPLATE, ver, argv);
            zygote_warm(s, argc - 1, argv + 1);
        }
    }
}

void pool_deployed(server *s, const char *name, int64_t version)
{
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    fn_config cfg;
    store_function f;
    memset(&f, 0, sizeof(f));
    if (load_config(s, name, version, &cfg, NULL, 0, &eb) < 0 ||
        store_function_get(s->st, name, &f, &eb) < 0) {
        LOG_ERROR(MOD, "function %s v%" PRId64 ": %s", name, version, eb.msg);
        store_function_fini(&f);
        return;
    }
    /* The newest pool of the same model (same memory) that no alias names
     * any more takes the new config: a scaling change applies live, with
     * its instances, template and waiting requests. */
    vpool *same = NULL;
    if (!find_pool(s, name, version)) {
        for (vpool *vp = s->pools; vp; vp = vp->next) {
            if (strcmp(vp->name, name) != 0 || aliased(&f, vp->version)) continue;
            if (strcmp(vp->cfg.model, cfg.model) != 0 || vp->cfg.memory_mb != cfg.memory_mb)
                continue;
            if (!same || vp->version > same->version) same = vp;
        }
    }
    if (same) {
        LOG_INFO(MOD, "function %s: v%" PRId64 " takes over the instances of v%" PRId64, name,
                 version, same->version);
        same->version = version;
        same->cfg = cfg;
        same->retired = false;
    }
    apply_routes(s, &f);
    store_function_fini(&f);
    pump_all(s);
}

void pool_routes_changed(server *s, const char *name)
{
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    store_function f;
    memset(&f, 0, sizeof(f));
    if (store_function_get(s->st, name, &f, &eb) < 0)
        LOG_ERROR(MOD, "function %s: %s", name, eb.msg);
    else
        apply_routes(s, &f);
    store_function_fini(&f);
    pump_all(s);
}

static int restore_one(void *user, const store_function *f)
{
    apply_routes(user, f);
    return 0;
}

int pool_restore(server *s, rouse_errbuf *eb)
{
    int rc = store_function_list(s->st, restore_one, s, eb);
    pump_all(s);
    return rc;
}

/* --- events from instances and templates ----------------------------------- */

/* The "error" member of a JSON error body, into msg. */
static void error_text(int fd, uint64_t len, char *msg, size_t cap)
{
    snprintf(msg, cap, "(no message)");
    const void *map = NULL;
    if (ipc_map(fd, len, &map, NULL) < 0 || !map) return;
    rouse_arena a;
    rouse_arena_init(&a, 0);
    json_value *v;
    const char *e;
    if (json_parse(map, len, &a, &v, NULL) == 0 && (e = json_as_string(json_get(v, "error"))))
        snprintf(msg, cap, "%s", e);
    rouse_arena_fini(&a);
    ipc_unmap(map, len);
}

/* status 0: the model loaded; otherwise the HTTP status to answer with. */
static void validator_done(server *s, instance *inst, int status, const char *msg)
{
    (void)s;
    http_req *req = inst->validate_req;
    inst->validate_req = NULL;
    if (req) api_admin_validated(req, status, msg);
}

static void on_exit_status(server *s, instance *inst, int wstatus, bool no_process);

/* Learns an instance's pid; false when that process already ended (it was
 * reaped before and has now been settled: inst is freed). */
static bool learn_pid(server *s, instance *inst, pid_t pid)
{
    if (inst->pid > 0 || pid <= 0) return true;
    inst->pid = pid;
    for (int k = 0; k < ORPHANS_KEPT; k++) {
        if (s->orphans[k].pid != pid) continue;
        s->orphans[k].pid = 0;
        on_exit_status(s, inst, s->orphans[k].wstatus, false);
        return false;
    }
    return true;
}

/* The pool cannot start instances for now: fail what waits on it. */
static void start_failed(server *s, vpool *vp, const char *msg)
{
    vp->no_start_until_ns = rouse_now_ns() + 1000000000ull;
    if (vp->n_instances == 0 && vp->queue) {
        char text[400];
        snprintf(text, sizeof(text), "instance failed to start: %s", msg);
        fail_queue(s, vp, 500, text);
    }
}

static void unlink_instance(server *s, instance *inst)
{
    for (instance **p = &s->instances; *p; p = &(*p)->next) {
        if (*p == inst) {
            *p = inst->next;
            return;
        }
    }
}

/* Unlinks a settled instance; pool_collect frees it after the epoll batch. */
static void bury(server *s, instance *inst)
{
    unlink_instance(s, inst);
    inst->dead = true;
    inst->next = s->dead;
    s->dead = inst;
}

void pool_collect(server *s)
{
    while (s->dead) {
        instance *n = s->dead->next;
        inst_free(s->dead);
        s->dead = n;
    }
}

/* A template is gone or broken: instances still waiting for it have no
 * process and never will. */
static void orphan_waiters(server *s, instance *t)
{
    for (instance *i = s->instances, *nx; i; i = nx) {
        nx = i->next;
        if (i->tmpl != t) continue;
        i->tmpl = NULL;
        if (i->peer_fd >= 0) {
            close(i->peer_fd);
            i->peer_fd = -1;
            on_exit_status(s, i, 0, true);
        }
    }
}

static void on_template_ready(server *s, instance *t, const ipc_msg *m, int fd)
{
    vpool *vp = t->vp;
    if (m->status != 0) {
        error_text(fd, m->body_len, t->fail_msg, sizeof(t->fail_msg));
        if (vp) LOG_ERROR(MOD, "template of %s failed to load: %s", vp->name, t->fail_msg);
        inst_uncount(s, t);
        orphan_waiters(s, t);
        if (vp) start_failed(s, vp, t->fail_msg);
        return;
    }
    if (t->state != INST_STARTING) return;
    t->state = INST_READY;
    t->ready_ns = t->last_used_ns = rouse_now_ns();
    t->plan_ns = m->dur_ns[0];
    t->prepare_ns = m->dur_ns[1];
    t->plan_cached = m->dur_ns[2] != 0;
    if (vp)
        LOG_INFO(MOD,
                 "function %s v%" PRId64 ": template %d ready in %.1f ms (plan %s %.1f ms, "
                 "prepare %.1f ms)",
                 vp->name, vp->version, (int)t->pid, rouse_ns_to_ms(t->ready_ns - t->started_ns),
                 t->plan_cached ? "opened in" : "compiled in", rouse_ns_to_ms(t->plan_ns),
                 rouse_ns_to_ms(t->prepare_ns));
    for (instance *i = s->instances; i; i = i->next) {
        if (i->tmpl != t || i->peer_fd < 0) continue;
        i->tmpl_start_ns = t->ready_ns - t->started_ns;
        i->tmpl_plan_ns = t->plan_ns;
        i->tmpl_prepare_ns = t->prepare_ns;
        i->tmpl_forked = t->forked;
        send_spawn(s, i);
        if (t->sock < 0) break; /* the template broke: orphaned at its reap */
    }
}

static void on_spawned(server *s, instance *t, const ipc_msg *m, int fd)
{
    instance *inst = s->instances;
    while (inst && !(inst->tmpl == t && inst->spawn_id == m->id && !inst->is_template))
        inst = inst->next;
    if (m->status != 0) {
        char msg[256];
        error_text(fd, m->body_len, msg, sizeof(msg));
        LOG_ERROR(MOD, "template %d: %s", (int)t->pid, msg);
        return; /* its socket ends and the instance is dropped */
    }
    if (!inst) return;
    inst->fork_ns = m->dur_ns[0];
    learn_pid(s, inst, (pid_t)m->pid);
}

/* Returns false when inst was settled and freed (its process had ended). */
static bool on_ready(server *s, instance *inst, const ipc_msg *m, int fd)
{
    if (m->status != 0) {
        error_text(fd, m->body_len, inst->fail_msg, sizeof(inst->fail_msg));
        if (inst->validate_req) {
            validator_done(s, inst, m->status == 507 ? 507 : 400, inst->fail_msg);
        } else if (inst->vp) {
            vpool *vp = inst->vp;
            LOG_ERROR(MOD, "instance %d of %s failed to load: %s", (int)inst->pid, vp->name,
                      inst->fail_msg);
            inst_uncount(s, inst);
            start_failed(s, vp, inst->fail_msg);
        }
        return true;
    }
    if (inst->validate_req) {
        validator_done(s, inst, 0, NULL);
        inst_close_socket(s, inst);
        return true;
    }
    if (!learn_pid(s, inst, (pid_t)m->pid)) return false;
    if (inst->state != INST_STARTING || !inst->vp) return true;
    inst->state = INST_READY;
    inst->ready_ns = inst->idle_since_ns = rouse_now_ns();
    LOG_DEBUG(MOD, "function %s v%" PRId64 ": instance %d ready in %.2f ms (%s)", inst->vp->name,
              inst->vp->version, (int)inst->pid, rouse_ns_to_ms(inst->ready_ns - inst->started_ns),
              kind_name(inst->kind));
    pump(s, inst->vp);
    return true;
}

static void record_cold_start(server *s, const instance *inst, const call *c, uint64_t infer_ns)
{
    cold_start *r = &s->cold[s->cold_head];
    s->cold_head = (s->cold_head + 1) % COLD_STARTS_KEPT;
    if (s->n_cold < COLD_STARTS_KEPT) s->n_cold++;
    memset(r, 0, sizeof(*r));
    snprintf(r->name, sizeof(r->name), "%s", inst->vp->name);
    r->version = c->version;
    r->pid = (int)inst->pid;
    r->kind = inst->kind;
    r->at_ms = rouse_wall_ms();
    r->queue_ms = rouse_ns_to_ms(c->dispatch_ns - c->enq_ns);
    if (inst->kind == START_ZERO) {
        r->template_ms = rouse_ns_to_ms(inst->tmpl_start_ns);
        r->plan_open_ms = rouse_ns_to_ms(inst->tmpl_plan_ns);
        r->prepare_ms = rouse_ns_to_ms(inst->tmpl_prepare_ns);
        r->template_forked = inst->tmpl_forked;
    }
    r->spawn_ms = rouse_ns_to_ms(inst->ready_ns - inst->spawn_ns);
    r->fork_ms = rouse_ns_to_ms(inst->fork_ns);
    r->first_infer_ms = rouse_ns_to_ms(infer_ns);
}

/* An instance of a pool above its fair share just went idle while another
 * pool starves: it stops and its place goes to the starving pool. */
static bool maybe_yield(server *s, instance *inst)
{
    if (inst->n_inflight > 0 || inst->state != INST_READY) return false;
    vpool *vp = inst->vp;
    int share = fair_share(s);
    int starved = n_starved_except(s, vp, share);
    if (!pool_should_yield(vp->n_instances, (int)eff_min(vp), share, starved)) return false;
    stop_instance(s, inst, "another function needs its share of the instance cap");
    return true;
}

static void on_reply(server *s, instance *inst, const ipc_msg *m, int *fd)
{
    call *c = inst->inflight;
    if (!c || c->id != m->id) {
        LOG_ERROR(MOD, "instance %d answered request %" PRIu64 " out of order", (int)inst->pid,
                  m->id);
        return;
    }
    inst->inflight = c->next;
    if (!inst->inflight) inst->inflight_tail = NULL;
    inst->n_inflight--;
    uint64_t now = rouse_now_ns();
    /* An exponential average over about eight replies. */
    uint64_t took = now - c->dispatch_ns;
    c->vp->reply_ewma_ns = c->vp->reply_ewma_ns ? (c->vp->reply_ewma_ns * 7 + took) / 8 : took;
    if (inst->n_inflight == 0) inst->idle_since_ns = now;
    /* Server-Timing: the wait, split into the part spent starting this
     * request's instance and the rest; the instance's own time. */
    uint64_t wait = c->dispatch_ns - c->enq_ns, start = 0;
    /* Cold for this request only when it waited for its instance to start
     * (an instance that min kept warm was ready before it came). */
    bool cold = c->first && inst->kind != START_WARM && inst->ready_ns > c->enq_ns;
    if (c->first) record_cold_start(s, inst, c, m->dur_ns[0]);
    if (cold) {
        uint64_t from = inst->started_ns > c->enq_ns ? inst->started_ns : c->enq_ns;
        start = inst->ready_ns > from ? inst->ready_ns - from : 0;
        if (start > wait) start = wait;
    }
    /* Milliseconds with three decimals, in integers: this runs per request. */
    unsigned long long q_us = (wait - start + 500) / 1000, s_us = (start + 500) / 1000,
                       i_us = (m->dur_ns[0] + 500) / 1000;
    char timing[96];
    snprintf(timing, sizeof(timing),
             "queue;dur=%llu.%03llu, start;dur=%llu.%03llu, infer;dur=%llu.%03llu", q_us / 1000,
             q_us % 1000, s_us / 1000, s_us % 1000, i_us / 1000, i_us % 1000);
    call_result res = {.status = m->status,
                       .content_type = m->content_type,
                       .fd = *fd,
                       .len = m->body_len,
                       .json_len = m->json_len,
                       .start = cold ? kind_name(inst->kind) : "warm",
                       .timing = timing};
    *fd = -1;
    /* The reply gives the region back. A reply in it is copied out now: the
     * next request may be written there as soon as this returns. */
    bool lent = inst->region_call == c;
    if (lent) inst->region_call = NULL;
    if (m->flags & IPC_F_IN_REGION) {
        char *body = NULL;
        if (lent && m->body_len <= inst->region_size && (body = malloc(m->body_len + 1))) {
            memcpy(body, inst->region, m->body_len);
            res.body = body;
        } else {
            res.error = !lent || m->body_len > inst->region_size
                            ? "the instance sent a reply outside its shared region"
                            : "out of memory";
            res.status = 500;
        }
        if (res.fd >= 0) close(res.fd);
        res.fd = -1;
    } else if (lent && m->body_len > inst->region_size && m->body_len > inst->reply_hint &&
               m->body_len <= REGION_MAX_BYTES) {
        inst->reply_hint = m->body_len; /* the next region holds replies this big */
    }
    vpool *vp = c->vp;
    call_end(s, c, &res);
    if (maybe_yield(s, inst))
        pump_all(s); /* the starving pools first take the freed place */
    else
        pump(s, vp);
}

/* Reads every packet waiting on an instance's or template's socket. */
static void drain(server *s, instance *inst)
{
    while (inst->sock >= 0) {
        ipc_msg m;
        int fd = -1;
        rouse_errbuf eb;
        rouse_errbuf_clear(&eb);
        int rc = ipc_recv(inst->sock, &m, &fd, &eb);
        if (rc == ROUSE_EBUSY) return;
        if (rc < 0) {
            if (rc != ROUSE_ENOTFOUND) LOG_WARN(MOD, "instance %d: %s", (int)inst->pid, eb.msg);
            if (rc == ROUSE_EFORMAT) continue;
            inst_close_socket(s, inst);
            /* Gone: the reap (SIGCHLD) settles its calls, unless it never
             * had a process that serve knows of. */
            if (inst->pid == 0) on_exit_status(s, inst, 0, true);
            return;
        }
        if (inst->is_template) {
            if (m.type == IPC_READY)
                on_template_ready(s, inst, &m, fd);
            else if (m.type == IPC_REPLY)
                on_spawned(s, inst, &m, fd);
        } else if (m.type == IPC_READY) {
            if (!on_ready(s, inst, &m, fd)) { /* settled and freed */
                if (fd >= 0) close(fd);
                return;
            }
        } else if (m.type == IPC_REPLY) {
            on_reply(s, inst, &m, &fd);
            /* Nothing more is due from an idle instance: skip the read that
             * would only say so (epoll is level-triggered and reports any
             * packet or end of stream that is there after all). */
            if (fd < 0 && inst->n_inflight == 0 && inst->state == INST_READY) return;
        }
        if (fd >= 0) close(fd);
    }
}

void pool_on_instance(server *s, instance *inst, uint32_t events)
{
    (void)events;
    if (inst->dead) return;
    drain(s, inst);
}

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

/* A template process ended. Its instances live on (they are serve's now);
 * the next start needs a new template. */
static void template_exited(server *s, instance *t, const char *how)
{
    vpool *vp = t->vp;
    bool was_starting = t->state == INST_STARTING;
    if (t->state != INST_STOPPING || t->fail_msg[0])
        LOG_WARN(MOD, "template %d ended (%s)", (int)t->pid, how);
    inst_close_socket(s, t);
    inst_uncount(s, t);
    orphan_waiters(s, t);
    if (vp && was_starting && !t->fail_msg[0]) {
        char msg[160];
        snprintf(msg, sizeof(msg), "its template ended while loading (%s)", how);
        start_failed(s, vp, msg);
    }
    bury(s, t);
    if (vp) pump(s, vp);
}

/* An instance process ended (or, no_process, will never exist): settle
 * what it held, forget it. */
static void on_exit_status(server *s, instance *inst, int wstatus, bool no_process)
{
    char how[96];
    describe_status(wstatus, no_process, how, sizeof(how));
    if (inst->is_template) {
        template_exited(s, inst, how);
        return;
    }
    if (!no_process) drain(s, inst); /* replies it sent before it died still count */
    inst_close_socket(s, inst);
    if (inst->peer_fd >= 0) close(inst->peer_fd);
    bool was_starting = inst->state == INST_STARTING;
    vpool *vp = inst->vp;
    inst_uncount(s, inst);
    if (inst->validate_req) {
        char msg[160];
        snprintf(msg, sizeof(msg), "the model loader crashed (%s)", how);
        validator_done(s, inst, 400, msg);
    }
    call *c = inst_take_inflight(inst);
    /* A load failure was already reported with its message. */
    bool clean =
        no_process || (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) || inst->fail_msg[0];
    if (c || !clean) {
        LOG_WARN(MOD, "instance %d %s (%s)", (int)inst->pid,
                 inst->killed_timeout ? "killed after a timeout" : "ended", how);
    }
    while (c) {
        call *n = c->next;
        int sig = !no_process && WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : 0;
        if (sig)
            call_fail(s, c, 500,
                      "instance crashed (signal %d) while running this request; the next "
                      "request gets a fresh instance",
                      sig);
        else
            call_fail(s, c, 500, "instance ended (%s) while running this request", how);
        c = n;
    }
    if (vp && was_starting && !no_process && !inst->fail_msg[0]) {
        char msg[160];
        snprintf(msg, sizeof(msg), "it ended while starting (%s)", how);
        start_failed(s, vp, msg);
    }
    bury(s, inst);
    if (vp) pump(s, vp);
}

void pool_reap(server *s)
{
    /* Pids of fresh instances may still sit in their templates' replies. */
    for (instance *t = s->instances, *nx; t; t = nx) {
        nx = t->next;
        if (t->is_template) drain(s, t);
    }
    for (;;) {
        int wstatus;
        pid_t pid = waitpid(-1, &wstatus, WNOHANG);
        if (pid <= 0) return;
        if (zygote_reaped(s, pid, wstatus)) continue;
        instance *inst = s->instances;
        while (inst && inst->pid != pid)
            inst = inst->next;
        if (inst) {
            on_exit_status(s, inst, wstatus, false);
        } else {
            s->orphans[s->orphan_head].pid = pid;
            s->orphans[s->orphan_head].wstatus = wstatus;
            s->orphan_head = (s->orphan_head + 1) % ORPHANS_KEPT;
        }
    }
}

/* --- time ------------------------------------------------------------------ */

static void note_deadline(int64_t *next, uint64_t at, uint64_t now)
{
    int64_t ms = at <= now ? 0 : (int64_t)((at - now) / 1000000ull) + 1;
    if (*next < 0 || ms < *next) *next = ms;
}

/* Waiting calls past their deadline get 504 (deadlines need not ascend: a
 * live change may alter timeout_ms). */
static void expire_queue(server *s, vpool *vp, uint64_t now, int64_t *next)
{
    call *prev = NULL;
    for (call *c = vp->queue, *n; c; c = n) {
        n = c->next;
        if (!pool_deadline_passed(now, c->deadline_ns)) {
            note_deadline(next, c->deadline_ns, now);
            if (c->req && c->req->watch_fd < 0) {
                if (now - c->enq_ns >= WATCH_AFTER_NS)
                    http_req_watch(c->req);
                else
                    note_deadline(next, c->enq_ns + WATCH_AFTER_NS, now);
            }
            prev = c;
            continue;
        }
        if (prev)
            prev->next = n;
        else
            vp->queue = n;
        if (vp->queue_tail == c) vp->queue_tail = prev;
        vp->n_queued--;
        c->next = NULL;
        call_fail(s, c, 504,
                  "deadline of %" PRId64 " ms (timeout_ms) passed while waiting for an instance",
                  vp->cfg.timeout_ms);
    }
}

int pool_tick(server *s)
{
    uint64_t now = rouse_now_ns();
    int64_t next = -1;
    for (vpool *vp = s->pools; vp; vp = vp->next) {
        expire_queue(s, vp, now, &next);
        if ((int)eff_min(vp) > vp->n_instances) {
            ensure_min(s, vp);
            if (vp->no_start_until_ns > now) note_deadline(&next, vp->no_start_until_ns, now);
        }
    }
    for (instance *inst = s->instances, *nx; inst; inst = nx) {
        nx = inst->next;
        if (inst->validate_req) {
            if (now - inst->started_ns > VALIDATE_TIMEOUT_NS) {
                kill_instance(s, inst, "model check took too long");
                validator_done(s, inst, 400, "loading the model took longer than 600 s");
            } else {
                note_deadline(&next, inst->started_ns + VALIDATE_TIMEOUT_NS, now);
            }
            continue;
        }
        if (inst->state != INST_READY || !inst->vp) continue;
        vpool *vp = inst->vp;
        if (inst->is_template) {
            uint64_t used =
                inst->last_used_ns > vp->last_request_ns ? inst->last_used_ns : vp->last_request_ns;
            int64_t ttl = vp->retired ? 0 : vp->cfg.scaling.template_ttl_ms;
            int waiting = 0;
            for (const instance *i = s->instances; i; i = i->next)
                if (i->tmpl == inst && i->pid == 0) waiting++;
            if (pool_should_stop_template(waiting, (long long)((now - used) / 1000000ull), ttl))
                stop_instance(s, inst, "unused for template_ttl_ms");
            else
                note_deadline(&next, used + (uint64_t)ttl * 1000000ull, now);
            continue;
        }
        call *late = NULL;
        for (call *c = inst->inflight; c; c = c->next) {
            if (c->deadline_ns <= now) {
                late = c;
                break;
            }
            note_deadline(&next, c->deadline_ns, now);
        }
        if (late) {
            /* The instance cannot be interrupted mid-run: kill it. Its other
             * calls did nothing wrong and go back to the queue. */
            inst->killed_timeout = true;
            kill_instance(s, inst, "a request exceeded timeout_ms");
            call *list = inst_take_inflight(inst);
            call *keep = NULL, **tail = &keep;
            for (call *c = list, *n; c; c = n) {
                n = c->next;
                if (c == late) {
                    call_fail(s, c, 504,
                              "request exceeded the function's timeout_ms (%" PRId64
                              " ms); its instance was stopped",
                              vp->cfg.timeout_ms);
                } else {
                    c->next = NULL;
                    c->first = false;
                    *tail = c;
                    tail = &c->next;
                }
            }
            requeue(vp, keep);
            pump(s, vp);
            continue;
        }
        if (inst->n_inflight == 0) {
            long long idle_ms = (long long)((now - inst->idle_since_ns) / 1000000ull);
            int64_t timeout = vp->retired ? 0 : vp->cfg.scaling.idle_timeout_ms;
            if (pool_over_max(vp->n_instances, (int)vp->cfg.scaling.max)) {
                stop_instance(s, inst, "above scaling.max");
            } else if (pool_should_stop_idle(vp->n_instances, (int)eff_min(vp), idle_ms, timeout)) {
                stop_instance(s, inst, vp->retired ? "its version was replaced" : "idle");
            } else if (vp->n_instances > eff_min(vp)) {
                note_deadline(&next, inst->idle_since_ns + (uint64_t)timeout * 1000000ull, now);
            }
        }
    }
    return next > INT32_MAX ? INT32_MAX : (int)next;
}

/* --- bulk operations -------------------------------------------------------- */

static void free_pool(server *s, vpool *vp, int status, const char *why)
{
    fail_queue(s, vp, status, why);
    for (instance *inst = s->instances; inst; inst = inst->next) {
        if (inst->vp != vp) continue;
        call *c = inst_take_inflight(inst);
        /* Busy instances cannot be interrupted: kill them. Idle ones and
         * templates exit when their socket closes. */
        if (c && inst->state != INST_STOPPING) kill_instance(s, inst, why);
        inst_uncount(s, inst);
        inst_close_socket(s, inst);
        while (c) {
            call *n = c->next;
            call_fail(s, c, status, "%s", why);
            c = n;
        }
        inst->vp = NULL;
    }
    for (vpool **p = &s->pools; *p; p = &(*p)->next) {
        if (*p == vp) {
            *p = vp->next;
            break;
        }
    }
    free(vp);
}

void pool_forget_function(server *s, const char *name)
{
    for (vpool *vp = s->pools, *n; vp; vp = n) {
        n = vp->next;
        if (strcmp(vp->name, name) == 0) free_pool(s, vp, 503, "the function was deleted");
    }
}

int pool_pending(const server *s)
{
    int n = 0;
    for (const vpool *vp = s->pools; vp; vp = vp->next)
        n += vp->n_queued;
    for (const instance *i = s->instances; i; i = i->next)
        n += i->n_inflight + (i->validate_req ? 1 : 0);
    return n;
}

void pool_fail_all(server *s, const char *why)
{
    for (instance *inst = s->instances; inst; inst = inst->next) {
        if (inst->validate_req) {
            kill_instance(s, inst, why);
            validator_done(s, inst, 503, why);
        }
    }
    while (s->pools)
        free_pool(s, s->pools, 503, why);
}

void pool_stop_all(server *s)
{
    zygote_stop(s);
    pool_fail_all(s, "server is shutting down");
    pool_collect(s);
    for (instance **p = &s->instances; *p;) {
        instance *inst = *p;
        inst_close_socket(s, inst);
        if (inst->peer_fd >= 0) close(inst->peer_fd);
        inst->peer_fd = -1;
        if (inst->pid <= 0) { /* no process serve knows of */
            *p = inst->next;
            inst_free(inst);
            continue;
        }
        p = &inst->next;
    }
    /* Instances exit at end of stream; give them a moment, then insist. */
    uint64_t until = rouse_now_ns() + 2000000000ull;
    while (s->instances) {
        int wstatus;
        pid_t pid = waitpid(-1, &wstatus, WNOHANG);
        if (pid > 0) {
            instance *inst = s->instances;
            while (inst && inst->pid != pid)
                inst = inst->next;
            if (inst) {
                unlink_instance(s, inst);
                inst_free(inst);
            }
            continue;
        }
        if (pid < 0 && errno == ECHILD) break;
        if (rouse_now_ns() > until) {
            for (instance *inst = s->instances; inst; inst = inst->next)
                kill(inst->pid, SIGKILL);
            until = UINT64_MAX;
        }
        usleep(2000);
    }
    while (s->instances) {
        instance *n = s->instances->next;
        inst_free(s->instances);
        s->instances = n;
    }
    pool_collect(s);
    s->n_instances = 0;
}

static const char *state_name(const instance *i)
{
    if (i->state == INST_STARTING) return "starting";
    if (i->state == INST_STOPPING) return i->n_inflight > 0 ? "draining" : "stopping";
    if (i->is_template) return "ready";
    return i->n_inflight > 0 ? "busy" : "idle";
}

int pool_describe(const server *s, const char *name, rouse_buf *out)
{
    int rc = 0;
    for (int pass = 0; pass < 2 && rc == 0; pass++) {
        rc = rouse_buf_append_str(out, pass == 0 ? "\"instances\":[" : ",\"templates\":[");
        bool first = true;
        for (const instance *i = s->instances; rc == 0 && i; i = i->next) {
            if (!i->vp || strcmp(i->vp->name, name) != 0 || i->is_template != (pass == 1)) continue;
            rc = rouse_buf_appendf(out, "%s{\"version\":%" PRId64 ",\"pid\":%d,\"state\":\"%s\"",
                                   first ? "" : ",", i->vp->version, (int)i->pid, state_name(i));
            if (rc == 0 && pass == 0)
                rc = rouse_buf_appendf(out, ",\"start\":\"%s\",\"in_flight\":%d",
                                       kind_name(i->kind), i->n_inflight);
            if (rc == 0) rc = rouse_buf_append_str(out, "}");
            first = false;
        }
        if (rc == 0) rc = rouse_buf_append_str(out, "]");
    }
    int queued = 0;
    for (const vpool *vp = s->pools; vp; vp = vp->next)
        if (strcmp(vp->name, name) == 0) queued += vp->n_queued;
    if (rc == 0) rc = rouse_buf_appendf(out, ",\"queued\":%d,\"cold_starts\":[", queued);
    /* The most recent ten, newest first. */
    bool first = true;
    int shown = 0;
    for (int k = 1; rc == 0 && k <= s->n_cold && shown < 10; k++) {
        const cold_start *c = &s->cold[(s->cold_head - k + COLD_STARTS_KEPT) % COLD_STARTS_KEPT];
        if (strcmp(c->name, name) != 0) continue;
        rc = rouse_buf_appendf(
            out,
            "%s{\"version\":%" PRId64 ",\"pid\":%d,\"start\":\"%s\",\"at_ms\":%" PRId64
            ",\"queue_ms\":%.3f,\"template_ms\":%.3f,\"plan_open_ms\":%.3f,\"prepare_ms\":%.3f,"
            "\"spawn_ms\":%.3f,\"fork_ms\":%.3f,\"first_infer_ms\":%.3f%s}",
            first ? "" : ",", c->version, c->pid, kind_name(c->kind), c->at_ms, c->queue_ms,
            c->template_ms, c->plan_open_ms, c->prepare_ms, c->spawn_ms, c->fork_ms,
            c->first_infer_ms,
            c->kind != START_ZERO ? ""
            : c->template_forked  ? ",\"template_start\":\"zygote\""
                                  : ",\"template_start\":\"exec\"");
        first = false;
        shown++;
    }
    if (rc == 0) rc = rouse_buf_append_str(out, "]");
    return rc;
}
