/*
 * Instance pools: one per function version that has been called, each with
 * its instances (worker processes) and a FIFO of waiting requests. The
 * decisions (dispatch, start, queue, reject, stop idle) come from the pure
 * policy in pool_policy.c; this file does the mechanics: spawning,
 * talking IPC, deadlines, reaping, crash and timeout handling.
 *
 * Invariants:
 * - Every call ends exactly once (call_end): reply set, connection resumed,
 *   body memfd closed, call freed.
 * - A call is either in its pool's queue or in one instance's in-flight
 *   list, never both; in-flight order is reply order.
 * - vp->n_instances and s->n_instances count starting and ready instances;
 *   stopping ones (closed or killed, not yet reaped) are not counted.
 * - An instance is freed only after waitpid reaped it, so a pid is never
 *   confused with a later process.
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
#include "worker/ipc.h"

#define MOD "pool"
#define VALIDATE_TIMEOUT_NS (600ull * 1000000000ull)

static void pump(server *s, vpool *vp);

/* --- calls ----------------------------------------------------------------- */

static void call_end(server *s, call *c, const call_result *res)
{
    (void)s;
    http_req *req = c->req;
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
        r->fd_len = res->len;
        r->json_len = res->json_len;
        req->have_reply = true;
    }
    if (c->vp) req->reply.version = c->vp->version;
    if (res->status == 429) req->reply.retry_after = 1;
    if (c->body_fd >= 0) close(c->body_fd);
    http_req_resume(req);
    free(c);
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
    if (inst->vp) {
        inst->vp->n_instances--;
        s->n_instances--;
    }
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

static int spawn(server *s, vpool *vp, const char *model_path, const char *name, int64_t version,
                 bool check, instance **out, rouse_errbuf *eb)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return rouse_err_set(eb, ROUSE_EIO, "socketpair: %s", strerror(errno));
    char ver[32];
    snprintf(ver, sizeof(ver), "%" PRId64, version);
    char *argv[] = {s->exe,
                    "__instance",
                    "--fd",
                    "3",
                    "--model",
                    (char *)model_path,
                    "--name",
                    (char *)name,
                    "--version",
                    ver,
                    "--log-level",
                    s->log_level,
                    check ? "--check" : NULL,
                    NULL};
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(sv[0]);
        close(sv[1]);
        return rouse_err_set(eb, ROUSE_EIO, "fork: %s", strerror(e));
    }
    if (pid == 0) {
        /* Child: only async-signal-safe calls until exec. */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(1);
        if (sv[1] == 3)
            fcntl(3, F_SETFD, 0);
        else if (dup2(sv[1], 3) < 0)
            _exit(1);
        execv(s->exe, argv);
        _exit(127);
    }
    close(sv[1]);
    fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
    instance *inst = calloc(1, sizeof(*inst));
    if (!inst) {
        kill(pid, SIGKILL);
        close(sv[0]);
        return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    }
    inst->tag.kind = EP_INSTANCE;
    inst->srv = s;
    inst->vp = vp;
    inst->pid = pid;
    inst->sock = sv[0];
    inst->state = INST_STARTING;
    inst->started_ns = rouse_now_ns();
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &inst->tag};
    epoll_ctl(s->epfd, EPOLL_CTL_ADD, inst->sock, &ev);
    inst->next = s->instances;
    s->instances = inst;
    if (vp) {
        vp->n_instances++;
        s->n_instances++;
    }
    if (check)
        LOG_INFO(MOD, "function %s: checking a new model in process %d", name, (int)pid);
    else
        LOG_INFO(MOD, "function %s v%" PRId64 ": instance %d starting", name, version, (int)pid);
    *out = inst;
    return 0;
}

static int inst_free_slots(const instance *inst)
{
    if (inst->state != INST_READY || inst->sock < 0) return 0;
    int c = (int)inst->vp->cfg.scaling.concurrency;
    return c > inst->n_inflight ? c - inst->n_inflight : 0;
}

static void kill_instance(server *s, instance *inst, const char *why)
{
    LOG_WARN(MOD, "killing instance %d: %s", (int)inst->pid, why);
    kill(inst->pid, SIGKILL);
    inst_uncount(s, inst);
    inst_close_socket(s, inst);
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
    c->inst = inst;
    c->next = NULL;
    if (inst->inflight_tail)
        inst->inflight_tail->next = c;
    else
        inst->inflight = c;
    inst->inflight_tail = c;
    inst->n_inflight++;
    if (ipc_send(inst->sock, &m, c->body_fd, &eb) < 0) {
        vpool *vp = inst->vp;
        kill_instance(s, inst, eb.msg);
        requeue(vp, inst_take_inflight(inst));
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
        if (i->vp != vp || i->state == INST_STOPPING) continue;
        v.n_instances++;
        if (i->state == INST_STARTING) v.n_starting++;
        v.free_slots += inst_free_slots(i);
    }
    return v;
}

static int start_instance(server *s, vpool *vp)
{
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    instance *inst;
    int rc = spawn(s, vp, vp->model_path, vp->name, vp->version, false, &inst, &eb);
    if (rc < 0) LOG_ERROR(MOD, "cannot start an instance of %s: %s", vp->name, eb.msg);
    return rc;
}

/* Makes room under the global cap: stops the instance of another pool that
 * has been idle the longest (never below that pool's min). */
static bool evict_idle(server *s, const vpool *for_vp)
{
    instance *victim = NULL;
    for (instance *i = s->instances; i; i = i->next) {
        if (!i->vp || i->vp == for_vp || i->state != INST_READY || i->n_inflight > 0) continue;
        if (i->vp->n_instances <= i->vp->cfg.scaling.min) continue;
        if (!victim || i->idle_since_ns < victim->idle_since_ns) victim = i;
    }
    if (!victim) return false;
    LOG_INFO(MOD, "function %s v%" PRId64 ": stopping idle instance %d to make room",
             victim->vp->name, victim->vp->version, (int)victim->pid);
    inst_uncount(s, victim);
    inst_close_socket(s, victim);
    return true;
}

/* Moves waiting calls to free slots, and starts instances while the queue
 * holds more than the capacity on its way. */
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
    while (vp->queue) {
        pool_view v = view_of(s, vp);
        v.n_queued--; /* the policy asks about the newest waiting call */
        if (pool_blocked_by_global_cap(&v) && evict_idle(s, vp)) v = view_of(s, vp), v.n_queued--;
        if (pool_decide(&v) != POOL_START_QUEUE) break;
        if (start_instance(s, vp) < 0) {
            if (vp->n_instances == 0)
                fail_queue(s, vp, 503, "cannot start an instance of this function");
            break;
        }
    }
}

static vpool *find_pool(server *s, const char *name, int64_t version)
{
    for (vpool *vp = s->pools; vp; vp = vp->next)
        if (vp->version == version && strcmp(vp->name, name) == 0) return vp;
    return NULL;
}

static int make_pool(server *s, const char *name, int64_t version, vpool **out, rouse_errbuf *eb)
{
    store_version sv;
    memset(&sv, 0, sizeof(sv));
    int rc = store_version_get(s->st, name, version, &sv, eb);
    if (rc < 0) return rc;
    vpool *vp = calloc(1, sizeof(*vp));
    if (!vp) {
        free(sv.config_json);
        return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    }
    rc = fn_config_parse(sv.config_json, strlen(sv.config_json), &vp->cfg, eb);
    if (rc == 0) rc = blob_path(s->blobs, sv.model_digest, vp->model_path, sizeof(vp->model_path));
    free(sv.config_json);
    if (rc < 0) {
        free(vp);
        return rouse_err_wrap(eb, ROUSE_EINTERNAL, "stored config of %s v%" PRId64, name, version);
    }
    snprintf(vp->name, sizeof(vp->name), "%s", name);
    vp->version = version;
    vp->next = s->pools;
    s->pools = vp;
    *out = vp;
    return 0;
}

int pool_submit(server *s, http_req *req, const char *name, int64_t version, int type, int body_fd,
                uint64_t body_len, int64_t json_len)
{
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    vpool *vp = find_pool(s, name, version);
    int rc;
    if (!vp && (rc = make_pool(s, name, version, &vp, &eb)) < 0) {
        if (body_fd >= 0) close(body_fd);
        http_reply_error(req, http_status_of(rc), "%s", eb.msg);
        return rc;
    }
    pool_view v = view_of(s, vp);
    pool_decision d = pool_decide(&v);
    if (d == POOL_REJECT) {
        if (body_fd >= 0) close(body_fd);
        http_reply_error(req, 429,
                         "function %s version %" PRId64 " is overloaded (%d requests waiting)",
                         name, version, vp->n_queued);
        req->reply.retry_after = 1;
        req->reply.version = version;
        return ROUSE_EBUSY;
    }
    call *c = calloc(1, sizeof(*c));
    if (!c) {
        if (body_fd >= 0) close(body_fd);
        http_reply_error(req, 500, "out of memory");
        return ROUSE_ENOMEM;
    }
    c->req = req;
    c->vp = vp;
    c->id = s->next_call_id++;
    c->type = type;
    c->body_fd = body_fd;
    c->body_len = body_len;
    c->json_len = json_len;
    c->deadline_ns = rouse_now_ns() + (uint64_t)vp->cfg.timeout_ms * 1000000ull;
    queue_push(vp, c, false);
    pump(s, vp);
    return 0;
}

int pool_validate(server *s, http_req *req, const char *model_path, rouse_errbuf *eb)
{
    instance *inst;
    int rc = spawn(s, NULL, model_path, req->r.name, 0, true, &inst, eb);
    if (rc < 0) return rc;
    inst->validate_req = req;
    return 0;
}

/* --- events from instances ------------------------------------------------- */

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

static void on_ready(server *s, instance *inst, const ipc_msg *m, int fd)
{
    if (m->status != 0) {
        error_text(fd, m->body_len, inst->fail_msg, sizeof(inst->fail_msg));
        if (inst->validate_req) {
            validator_done(s, inst, 400, inst->fail_msg);
        } else if (inst->vp) {
            vpool *vp = inst->vp;
            LOG_ERROR(MOD, "instance %d of %s failed to load: %s", (int)inst->pid, vp->name,
                      inst->fail_msg);
            inst_uncount(s, inst);
            if (vp->n_instances == 0) {
                char msg[400];
                snprintf(msg, sizeof(msg), "instance failed to start: %s", inst->fail_msg);
                fail_queue(s, vp, 500, msg);
            }
        }
        return;
    }
    if (inst->validate_req) {
        validator_done(s, inst, 0, NULL);
        inst_close_socket(s, inst);
        return;
    }
    if (inst->state != INST_STARTING || !inst->vp) return;
    inst->state = INST_READY;
    inst->ready_ns = inst->idle_since_ns = rouse_now_ns();
    LOG_INFO(MOD, "function %s v%" PRId64 ": instance %d ready in %.1f ms", inst->vp->name,
             inst->vp->version, (int)inst->pid, rouse_ns_to_ms(inst->ready_ns - inst->started_ns));
    pump(s, inst->vp);
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
    if (inst->n_inflight == 0) inst->idle_since_ns = rouse_now_ns();
    call_result res = {.status = m->status,
                       .content_type = m->content_type,
                       .fd = *fd,
                       .len = m->body_len,
                       .json_len = m->json_len};
    *fd = -1;
    vpool *vp = c->vp;
    call_end(s, c, &res);
    pump(s, vp);
}

/* Reads every packet waiting on an instance's socket. */
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
            /* Gone: the reap (SIGCHLD) will settle its calls. */
            inst_close_socket(s, inst);
            return;
        }
        if (m.type == IPC_READY)
            on_ready(s, inst, &m, fd);
        else if (m.type == IPC_REPLY)
            on_reply(s, inst, &m, &fd);
        if (fd >= 0) close(fd);
    }
}

void pool_on_instance(server *s, instance *inst, uint32_t events)
{
    (void)events;
    drain(s, inst);
}

static void describe_status(int wstatus, char *buf, size_t cap)
{
    if (WIFSIGNALED(wstatus))
        snprintf(buf, cap, "signal %d, %s", WTERMSIG(wstatus), strsignal(WTERMSIG(wstatus)));
    else if (WIFEXITED(wstatus))
        snprintf(buf, cap, "exit status %d", WEXITSTATUS(wstatus));
    else
        snprintf(buf, cap, "status %d", wstatus);
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

/* An instance process ended: settle what it held, forget it. */
static void on_exit_status(server *s, instance *inst, int wstatus)
{
    drain(s, inst); /* replies it sent before it died still count */
    inst_close_socket(s, inst);
    char how[96];
    describe_status(wstatus, how, sizeof(how));
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
    bool clean = (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) || inst->fail_msg[0];
    if (c || !clean) {
        LOG_WARN(MOD, "instance %d %s (%s)", (int)inst->pid,
                 inst->killed_timeout ? "killed after a timeout" : "ended", how);
    }
    while (c) {
        call *n = c->next;
        int sig = WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : 0;
        if (sig)
            call_fail(s, c, 500,
                      "instance crashed (signal %d) while running this request; the next "
                      "request gets a fresh instance",
                      sig);
        else
            call_fail(s, c, 500, "instance ended (%s) while running this request", how);
        c = n;
    }
    if (vp && was_starting && vp->n_instances == 0 && vp->queue) {
        char msg[400];
        snprintf(msg, sizeof(msg), "instance failed to start (%s)%s%s", how,
                 inst->fail_msg[0] ? ": " : "", inst->fail_msg);
        fail_queue(s, vp, 500, msg);
    }
    unlink_instance(s, inst);
    free(inst);
    if (vp) pump(s, vp);
}

void pool_reap(server *s)
{
    for (;;) {
        int wstatus;
        pid_t pid = waitpid(-1, &wstatus, WNOHANG);
        if (pid <= 0) return;
        instance *inst = s->instances;
        while (inst && inst->pid != pid)
            inst = inst->next;
        if (inst) on_exit_status(s, inst, wstatus);
    }
}

/* --- time ------------------------------------------------------------------ */

static void note_deadline(int64_t *next, uint64_t at, uint64_t now)
{
    int64_t ms = at <= now ? 0 : (int64_t)((at - now) / 1000000ull) + 1;
    if (*next < 0 || ms < *next) *next = ms;
}

int pool_tick(server *s)
{
    uint64_t now = rouse_now_ns();
    int64_t next = -1;
    for (vpool *vp = s->pools; vp; vp = vp->next) {
        /* Waiting calls past their deadline. The queue is FIFO with one
         * timeout per pool, so deadlines ascend: stop at the first live one. */
        while (vp->queue && vp->queue->deadline_ns <= now) {
            call *c = queue_pop(vp);
            call_fail(s, c, 504,
                      "deadline of %" PRId64
                      " ms (timeout_ms) passed while waiting for an instance",
                      vp->cfg.timeout_ms);
        }
        if (vp->queue) note_deadline(&next, vp->queue->deadline_ns, now);
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
            if (pool_should_stop_idle(vp->n_instances, (int)vp->cfg.scaling.min, idle_ms,
                                      vp->cfg.scaling.idle_timeout_ms)) {
                LOG_INFO(MOD, "function %s v%" PRId64 ": stopping idle instance %d", vp->name,
                         vp->version, (int)inst->pid);
                inst_uncount(s, inst);
                inst_close_socket(s, inst); /* it exits on end of stream */
            } else if (vp->n_instances > vp->cfg.scaling.min) {
                note_deadline(&next,
                              inst->idle_since_ns +
                                  (uint64_t)vp->cfg.scaling.idle_timeout_ms * 1000000ull,
                              now);
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
        /* Busy instances cannot be interrupted: kill them. Idle ones exit
         * when their socket closes. */
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
    pool_fail_all(s, "server is shutting down");
    for (instance *inst = s->instances; inst; inst = inst->next)
        inst_close_socket(s, inst);
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
                free(inst);
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
        free(s->instances);
        s->instances = n;
    }
    s->n_instances = 0;
}

static const char *state_name(const instance *i)
{
    if (i->state == INST_STARTING) return "starting";
    if (i->state == INST_STOPPING) return "stopping";
    return i->n_inflight > 0 ? "busy" : "idle";
}

int pool_describe(const server *s, const char *name, rouse_buf *out)
{
    int rc = rouse_buf_append_str(out, "[");
    bool first = true;
    for (const instance *i = s->instances; rc == 0 && i; i = i->next) {
        if (!i->vp || strcmp(i->vp->name, name) != 0) continue;
        rc = rouse_buf_appendf(out, "%s{\"version\":%" PRId64 ",\"pid\":%d,\"state\":\"%s\"}",
                               first ? "" : ",", i->vp->version, (int)i->pid, state_name(i));
        first = false;
    }
    if (rc == 0) rc = rouse_buf_append_str(out, "]");
    return rc;
}
