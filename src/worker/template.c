/*
 * The template process (see template.h). Invariants: the template never
 * runs the model (so no OpenMP team exists when it forks: it stays single-
 * threaded, as worker_fork_sibling needs); every IPC_SPAWN gets exactly
 * one reply from the template (the instance's pid, or an error); what it
 * forks is serve's child (CLONE_PARENT), so it never holds zombies.
 */
#include "worker/template.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/arena.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "rouse/engine.h"
#include "rouse/weight_pages.h"
#include "worker/batch.h"
#include "worker/detach.h"
#include "worker/fault.h"
#include "worker/generate.h"
#include "worker/instance.h"
#include "worker/ipc.h"
#include "worker/plan_load.h"
#include "worker/tok_keep.h"

#define MOD "template"

/* How long a template with generation plans left waits for serve's word
 * (IPC_SPARE) before preparing them anyway. */
#define GEN_PREPARE_WAIT_MS 5000

/* A model and session opened and prepared by the zygote (template_warm):
 * a generator's with every generation plan, any other's with every batch
 * size, and kept there, so that a template forked from it afterwards takes
 * them (kept_take) instead of opening the plan and preparing: a template
 * then starts in a fork. Found by the plan's path and what the session is
 * made with. Generators have slots of their own (their plans are large). */
typedef struct kept_session {
    char key[PATH_MAX + 64];
    rouse_model *m;
    rouse_session *s;
    uint64_t mem_bytes; /* the largest batch's activations (max_batch > 0) */
    unsigned long age;
} kept_session;

static kept_session kept[TEMPLATE_GEN_KEPT + TEMPLATE_MODEL_KEPT];
static unsigned long kept_clock;

/* The key of o's session over the plan at path; false when it does not
 * fit. */
static bool kept_key(const template_opts *o, const char *path, char *key, size_t cap)
{
    int threads = o->threads > 0 ? o->threads : 1, n;
    if (o->max_context > 0)
        n = snprintf(key, cap, "g|%s|%d|%d|%d|%d", path, threads, o->max_context, o->streams,
                     o->memory_mb);
    else
        n = snprintf(key, cap, "m|%s|%d|%d|%d", path, threads, o->max_batch, o->memory_mb);
    return n > 0 && (size_t)n < cap;
}

static kept_session *kept_find(const char *key)
{
    for (int i = 0; i < TEMPLATE_GEN_KEPT + TEMPLATE_MODEL_KEPT; i++)
        if (kept[i].m && strcmp(kept[i].key, key) == 0) return &kept[i];
    return NULL;
}

/* Keeps m and s (owned now) under key, dropping the oldest kept of its
 * kind (generators or the others). */
static void kept_put(const char *key, bool generator, rouse_model *m, rouse_session *s,
                     uint64_t mem_bytes)
{
    int from = generator ? 0 : TEMPLATE_GEN_KEPT;
    int to = generator ? TEMPLATE_GEN_KEPT : TEMPLATE_GEN_KEPT + TEMPLATE_MODEL_KEPT;
    kept_session *k = &kept[from];
    for (int i = from + 1; i < to; i++)
        if (!kept[i].m || (k->m && kept[i].age < k->age)) k = &kept[i];
    rouse_session_destroy(k->s);
    rouse_model_destroy(k->m);
    snprintf(k->key, sizeof(k->key), "%s", key);
    k->m = m;
    k->s = s;
    k->mem_bytes = mem_bytes;
    k->age = ++kept_clock;
}

/* In a template forked from the zygote: the kept model and session of o,
 * taken out of this process's keep (the zygote keeps its own). True when
 * there was one. */
static bool kept_take(const template_opts *o, rouse_model **m, rouse_session **s,
                      uint64_t *mem_bytes)
{
    char path[PATH_MAX], key[PATH_MAX + 64];
    if (!o->plan_cache || !o->model_sha256 ||
        worker_plan_path(o->plan_cache, o->model_sha256, &o->prec, path, sizeof(path)) < 0 ||
        !kept_key(o, path, key, sizeof(key)))
        return false;
    kept_session *k = kept_find(key);
    if (!k) return false;
    *m = k->m;
    *s = k->s;
    *mem_bytes = k->mem_bytes;
    k->m = NULL;
    k->s = NULL;
    /* The others are the zygote's: this process never uses them. */
    return true;
}

/* Forks an instance for req (its socket to serve: sock) as serve's child
 * (worker_fork_sibling) and replies with its pid. In the template: returns
 * 0. In the instance: serves and returns its exit status (*is_instance
 * set). */
static int fork_instance(const template_opts *o, int ctl, const ipc_msg *req, int sock,
                         rouse_model *m, rouse_session *s, uint64_t t0, int spare_chan, sandbox *sb,
                         bool *is_instance)
{
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    char msg[sizeof(eb.msg) + 64];
    if (sandbox_before_fork(sb, &eb) < 0) {
        snprintf(msg, sizeof(msg), "an instance's control groups: %s", eb.msg);
        worker_send_error(ctl, IPC_REPLY, req->id, 500, msg);
        return 0;
    }
    pid_t pid = worker_fork_sibling();
    if (pid == 0) {
        *is_instance = true;
        close(ctl);
        if (spare_chan >= 0) close(spare_chan); /* the spare must see EOF when the template ends */
        /* In the tenant's pid namespace getpid() is not the pid serve
         * knows: serve learns that from the template's reply. */
        if (sb->pidns) worker_set_pid(0);
        int rc = sandbox_instance_enter(sb, &eb);
        if (rc < 0) {
            LOG_ERROR(MOD, "%s", eb.msg);
            worker_send_error(sock, IPC_READY, 0, 500, eb.msg);
            return 1;
        }
        instance_opts io = {.fd = sock,
                            .name = o->name,
                            .version = o->version,
                            .threads = o->threads,
                            .max_context = o->max_context,
                            .tok = o->tok,
                            .memory_mb = o->memory_mb,
                            .max_batch = o->max_batch,
                            .streams = o->streams,
                            .prefill_batch = o->prefill_batch,
                            .prefill_delay_us = o->prefill_delay_us};
        return instance_serve(&io, sock, m, s);
    }
    uint64_t dur[3] = {rouse_now_ns() - t0, 0, 0};
    sandbox_after_fork(sb, pid);
    if (pid < 0) {
        snprintf(msg, sizeof(msg), "fork of an instance failed: %s", strerror(errno));
        worker_send_error(ctl, IPC_REPLY, req->id, 500, msg);
        return 0;
    }
    ipc_msg r;
    ipc_msg_init(&r, IPC_REPLY, req->id);
    r.pid = (uint32_t)pid;
    memcpy(r.dur_ns, dur, sizeof(dur));
    if (ipc_send(ctl, &r, -1, &eb) < 0) LOG_WARN(MOD, "%s", eb.msg);
    return 0;
}

/* Tokens of a generator spare's warm-up prompt: the shortest prompts'
 * prefill (generate.h pads a prompt to a multiple of 8), then one decode step. */
#define SPARE_GEN_PROMPT 8

static bool spare_gen_emit(void *user, int token)
{
    (void)user;
    (void)token;
    return false;
}

/* A generator spare's warm-up: what a short request runs (the prefill of
 * the shortest prompts and the first decode step) on a generator that the
 * instance then takes over, so that the request finds its plans' memory,
 * its KV cache and the model's weights touched in this process, as a warm
 * instance does. Not the session's current plan (rouse_session_warm_up):
 * that is whichever plan the template prepared last, often a long
 * prompt's. NULL when the model cannot generate (the instance says why). */
static gen *spare_gen_warm_up(const template_opts *o, rouse_model *m, rouse_session *s)
{
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    gen_model gm;
    gen *g = NULL;
    int rc = gen_model_check(m, o->max_context, &gm, &eb);
    if (rc == 0) rc = gen_create(m, &gm, &g, &eb);
    if (rc == 0 && gm.max_context > SPARE_GEN_PROMPT + 1) {
        int32_t prompt[SPARE_GEN_PROMPT] = {0};
        gen_params p = {.max_tokens = 2}; /* greedy */
        gen_stats st;
        rc = gen_run(g, s, prompt, SPARE_GEN_PROMPT, &p, spare_gen_emit, NULL, &st, &eb);
    }
    if (rc < 0) {
        LOG_DEBUG(MOD, "spare warm-up: %s", eb.msg);
        gen_destroy(g);
        return NULL;
    }
    return g;
}

/* The spare: an instance forked ahead of need. It warms up (one run on zeros:
 * its memory touched, its kernels initialized; a generator's short-request
 * path, spare_gen_warm_up; else a rehearsal of a binary request of zeros,
 * instance_rehearse), says so on its channel, and
 * waits there for the socket of its first request; a template asked to spawn
 * hands it that socket, so the request finds an instance that runs like a
 * warm one. EOF on the channel (the template ended) ends the spare. */
static int spare_main(const template_opts *o, int ctl, int chan, rouse_model *m, rouse_session *s,
                      sandbox *sb)
{
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    /* Its limits hold before the warm-up touches its memory. */
    if (sandbox_instance_enter(sb, &eb) < 0) {
        LOG_ERROR(MOD, "spare: %s", eb.msg);
        return 1;
    }
    /* Its pid as serve knows it (getpid() answers in the tenant's pid
     * namespace): the template's first word on the channel. */
    ipc_msg msg;
    int fd = -1;
    if (ipc_recv(chan, &msg, &fd, &eb) < 0) return 0;
    if (fd >= 0) close(fd);
    pid_t own = (pid_t)msg.pid;
    worker_set_pid(own);
    /* Warm up on idle CPU only: a template starting from zero forks its
     * spare while the instance for the waiting request runs, and the spare
     * must not slow that one down. Only root may come back from SCHED_IDLE
     * for sure (and a sandboxed spare, whose RLIMIT_NICE allows it), so
     * other users warm up at normal priority. */
    struct sched_param prio = {0};
    bool idle_prio =
        (geteuid() == 0 || sb->can_renice) && sched_setscheduler(0, SCHED_IDLE, &prio) == 0;
    gen *g = NULL;
    if (o->max_context > 0) g = spare_gen_warm_up(o, m, s);
    instance_opts ao = {.name = o->name,
                        .version = o->version,
                        .max_context = o->max_context,
                        .memory_mb = o->memory_mb};
    rouse_arena arena;
    rouse_buf out;
    /* A generator's arena and buffer are instance_serve's own (below: NULL);
     * these two are then left empty. */
    rouse_arena_init(&arena, 0);
    rouse_buf_init(&out);
    if (o->max_context <= 0 && instance_rehearse(&ao, m, s, &arena, &out, &eb) < 0)
        LOG_DEBUG(MOD, "spare warm-up: %s", eb.msg);
    /* Warm: back to normal priority before waiting, so that a request
     * handed over is not starved behind other work (at SCHED_IDLE, a busy
     * machine can hold it off for seconds). */
    if (idle_prio && sched_setscheduler(0, SCHED_OTHER, &prio) < 0)
        LOG_WARN(MOD, "spare: cannot leave idle priority: %s", strerror(errno));
    /* The template first, then serve: once serve knows the spare is warm
     * (and sends the next spawn with its request right behind it), the
     * template finds it ready and hands it over. */
    ipc_msg_init(&msg, IPC_READY, 0);
    if (ipc_send(chan, &msg, -1, &eb) < 0) goto out_gen;
    ipc_msg_init(&msg, IPC_READY, 0);
    msg.flags = IPC_F_SPARE;
    msg.pid = (uint32_t)own;
    /* serve counts and lists spares: it learns this one's pid here. */
    if (ipc_send(ctl, &msg, -1, &eb) < 0) goto out_gen;
    int sock = -1;
    if (ipc_recv(chan, &msg, &sock, &eb) < 0 || sock < 0) goto out_gen;
    close(chan);
    ipc_msg r;
    ipc_msg_init(&r, IPC_REPLY, msg.id);
    r.pid = (uint32_t)own;
    uint64_t now = rouse_now_ns();
    r.dur_ns[0] = now > msg.dur_ns[0] ? now - msg.dur_ns[0] : 0; /* the template's clock */
    int rc = ipc_send(ctl, &r, -1, &eb);
    close(ctl);
    if (rc < 0) {
        close(sock);
        gen_destroy(g);
        rouse_arena_fini(&arena);
        rouse_buf_fini(&out);
        return 1;
    }
    instance_opts io = {.fd = sock,
                        .name = o->name,
                        .version = o->version,
                        .threads = o->threads,
                        .max_context = o->max_context,
                        .tok = o->tok,
                        .memory_mb = o->memory_mb,
                        .max_batch = o->max_batch,
                        .streams = o->streams,
                        .prefill_batch = o->prefill_batch,
                        .prefill_delay_us = o->prefill_delay_us,
                        .gen = g,
                        .arena = o->max_context > 0 ? NULL : &arena,
                        .out = &out};
    return instance_serve(&io, sock, m, s);
out_gen:
    gen_destroy(g);
    rouse_arena_fini(&arena);
    rouse_buf_fini(&out);
    return 0;
}

/* After a fork under the sandbox: moves the template into fresh control
 * groups for its next fork (sandbox_next), unless a message from serve is
 * already waiting: that is answered first, and a process forked for it
 * gets groups made for it (sandbox_before_fork). */
static void next_groups(sandbox *sb, int ctl)
{
    struct pollfd pf = {.fd = ctl, .events = POLLIN};
    if (poll(&pf, 1, 0) > 0) return;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    if (sandbox_next(sb, &eb) < 0)
        LOG_WARN(MOD, "%s; the next instance makes its own groups (slower)", eb.msg);
}

/* Forks a spare as serve's child (worker_fork_sibling) and tells it its
 * pid. In the template: sets *chan, returns 0. In the spare: returns its
 * exit status with *is_spare set. */
static int spare_start(const template_opts *o, int ctl, rouse_model *m, rouse_session *s,
                       sandbox *sb, int *chan, bool *is_spare)
{
    int sv[2];
    *chan = -1;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) return 0;
    if (sandbox_before_fork(sb, &eb) < 0) {
        LOG_WARN(MOD, "spare: %s", eb.msg);
        close(sv[0]);
        close(sv[1]);
        return 0;
    }
    pid_t pid = worker_fork_sibling();
    if (pid == 0) {
        *is_spare = true;
        close(sv[0]);
        return spare_main(o, ctl, sv[1], m, s, sb);
    }
    close(sv[1]);
    sandbox_after_fork(sb, pid);
    ipc_msg msg;
    ipc_msg_init(&msg, IPC_READY, 0);
    msg.pid = (uint32_t)pid;
    if (pid < 0 || ipc_send(sv[0], &msg, -1, &eb) < 0) { /* EOF ends the spare */
        close(sv[0]);
        return 0;
    }
    *chan = sv[0];
    return 0;
}

/* Hands the spawn request to the spare when it is warm. True when it took it. */
static bool spare_take(int *chan, bool *ready, ipc_msg *req, int sock, uint64_t f0)
{
    rouse_errbuf eb;
    if (*chan < 0) return false;
    if (!*ready) {
        ipc_msg m;
        int fd = -1;
        if (ipc_recv_nowait(*chan, &m, &fd, &eb) == 0 && m.type == IPC_READY) *ready = true;
        if (fd >= 0) close(fd);
        if (!*ready) return false; /* still warming up: fork directly this time */
    }
    req->dur_ns[0] = f0;
    bool ok = ipc_send(*chan, req, sock, &eb) == 0;
    close(*chan);
    *chan = -1;
    *ready = false;
    return ok;
}

/* The stdout and stderr of the template and of every instance it forks go
 * to a pipe whose read end serve takes (IPC_OUTPUT) and reads into the
 * function's log. If that cannot be set up they stay serve's. */
static void capture_output(int ctl)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0) return;
    ipc_msg m;
    ipc_msg_init(&m, IPC_OUTPUT, 0);
    rouse_errbuf eb;
    if (ipc_send(ctl, &m, fds[0], &eb) == 0) {
        fflush(stdout);
        fflush(stderr);
        if (dup2(fds[1], STDOUT_FILENO) >= 0) setvbuf(stdout, NULL, _IOLBF, 0);
        dup2(fds[1], STDERR_FILENO);
    }
    close(fds[0]);
    close(fds[1]);
}

/* A generator's plans (gen_prepare_step) on s, up to `limit` of them (-1:
 * all). With `left`, a generator for the rest goes there (NULL when none
 * is left). */
static int prepare_generator(const template_opts *o, rouse_model *m, rouse_session *s, int limit,
                             gen **left, int *k, rouse_errbuf *eb)
{
    gen_model gm;
    gen *g = NULL;
    *k = 0;
    if (left) *left = NULL;
    int rc = gen_model_check(m, o->max_context, &gm, eb);
    gm.streams = o->streams > 1 && gm.has_position_ids ? o->streams : 1;
    if (gm.streams > GEN_STREAMS_MAX) gm.streams = GEN_STREAMS_MAX;
    if (rc == 0) rc = gen_create(m, &gm, &g, eb);
    while (rc == 0 && (limit < 0 || *k < limit) && (rc = gen_prepare_step(g, s, k, eb)) == 1)
        rc = 0;
    if (rc == 0 && left && limit >= 0 && *k == limit) {
        *left = g;
        return 0;
    }
    gen_destroy(g);
    return rc < 0 ? rc : 0;
}

/* Whether serve sent something the template should handle now. */
static bool ctl_pending(int ctl)
{
    struct pollfd pfd = {.fd = ctl, .events = POLLIN};
    return poll(&pfd, 1, 0) != 0;
}

int template_main(const template_opts *given)
{
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    template_opts to = *given;
    const template_opts *o = &to;
    int ctl = o->fd;
    bool is_instance = false,
         is_spare = false; /* this process became one (fork_instance, spare_start) */
    /* Serve may die without closing us: die with it. Instances (reparented
     * to serve) end when their own socket closes. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    capture_output(ctl);

    rouse_model *m;
    rouse_session *s;
    uint64_t dur[3] = {0, 0, 1};
    /* A model the zygote kept opened and prepared: nothing to open,
     * nothing to prepare. */
    uint64_t kept_mem = 0;
    bool from_zygote = kept_take(o, &m, &s, &kept_mem);
    if (from_zygote) dur[2] = 2; /* READY says so: plan opened, session prepared, both kept */
    if (!from_zygote &&
        worker_open_model(
            ctl, o->model_path, o->model_sha256, o->plan_cache, &o->prec, o->threads,
            o->max_context > 0 ? worker_gen_plan_cache(o->max_context, o->streams) : 0,
            o->memory_mb, o->max_batch, o->max_context > 0 ? o->streams : 0, &m, &s, dur) < 0)
        return 1;
    /* A generator's tokenizer, loaded once: every instance forked shares it. */
    tok_tokenizer *tok = NULL;
    uint64_t tok0 = rouse_now_ns();
    if (o->max_context > 0 && worker_tok_take(&o->tok_paths, &tok, &eb) < 0) {
        worker_send_error(ctl, IPC_READY, 0, 400, eb.msg);
        rouse_session_destroy(s);
        rouse_model_destroy(m);
        return 1;
    }
    to.tok = tok;
    if (tok)
        LOG_DEBUG(MOD, "%s: tokenizer loaded in %.2f ms", o->name,
                  rouse_ns_to_ms(rouse_now_ns() - tok0));
    LOG_DEBUG(MOD, "weights of %s read from %s pages%s", o->name,
              rouse_weight_pages_name(rouse_model_weight_pages(m)),
              from_zygote ? ", its session prepared by the zygote" : "");
    int status = 0, rc;
    gen *gen_left = NULL; /* a generator's plans still to prepare */
    int gen_k = 0;
    sandbox sb;
    sandbox_init(&sb);
    /* Every batch size an instance will run is prepared before the first
     * fork: no kernel is made on a request's path. */
    uint64_t mem_bytes = kept_mem;
    if (o->max_batch > 0 && !from_zygote) {
        uint64_t p0 = rouse_now_ns();
        if (worker_prepare_batches(m, s, o->max_batch, &mem_bytes, &eb) < 0) {
            worker_send_error(ctl, IPC_READY, 0, 400, eb.msg);
            status = 1;
            goto out_session;
        }
        dur[1] += rouse_now_ns() - p0;
        LOG_DEBUG(MOD, "%s: batches up to %d prepared, %llu bytes of activations for the largest",
                  o->name, o->max_batch, (unsigned long long)mem_bytes);
    }
    /* A generator's plans: what a short request needs before the first
     * fork, the others while the template waits (between forks, never
     * delaying one). Failing is not fatal: an instance prepares what is
     * missing, and says what is wrong with the model when a request comes. */
    if (o->max_context > 0 && !from_zygote) {
        uint64_t p0 = rouse_now_ns();
        if (prepare_generator(o, m, s, GEN_PREPARE_FIRST, &gen_left, &gen_k, &eb) < 0) {
            LOG_WARN(MOD, "%s: generation plans not prepared ahead: %s", o->name, eb.msg);
            rouse_errbuf_clear(&eb);
        }
        /* Inherited from the zygote when it warmed the model (then this
         * costs a tenth of a millisecond), else made here once for every
         * instance. */
        rouse_engine_warm_gemv();
        dur[1] += rouse_now_ns() - p0;
    }
    /* Kernels prepared (every batch size too), nothing forked yet: into
     * the sandbox, or not at all (serve hears why and the function does
     * not start). */
    worker_fault_prepare();
    if (sandbox_template_enter(&sb, &o->sandbox, &eb) < 0) {
        LOG_ERROR(MOD, "%s", eb.msg);
        worker_send_error(ctl, IPC_READY, 0, 500, eb.msg);
        status = 1;
        goto out_session;
    }
    if (sb.on) {
        uint64_t all = 0;
        for (int i = 0; i < SANDBOX_N_STEPS; i++)
            all += sb.step_ns[i];
        LOG_DEBUG(MOD,
                  "%s: sandbox entered in %.3f ms (pid namespace %.3f, unshare %.3f, root %.3f, "
                  "limits %.3f, compile %.3f, privileges %.3f, groups %.3f more; their move "
                  "%.3f, overlapped)",
                  o->name, (double)all / 1e6, (double)sb.step_ns[SANDBOX_STEP_PIDNS] / 1e6,
                  (double)sb.step_ns[SANDBOX_STEP_UNSHARE] / 1e6,
                  (double)sb.step_ns[SANDBOX_STEP_ROOT] / 1e6,
                  (double)sb.step_ns[SANDBOX_STEP_LIMITS] / 1e6,
                  (double)sb.step_ns[SANDBOX_STEP_COMPILE] / 1e6,
                  (double)sb.step_ns[SANDBOX_STEP_PRIVS] / 1e6,
                  (double)sb.step_ns[SANDBOX_STEP_GROUPS] / 1e6, (double)sb.moved_ns / 1e6);
    }
    if (worker_send_ready(ctl, dur, mem_bytes) < 0) {
        status = 2;
        goto out_session;
    }
    /* A spare is kept only while serve says so (IPC_SPARE): it counts
     * against serve's instance cap, and goes first when the cap is full. */
    int spare_chan = -1;
    bool spare_ready = false, spare_wanted = false, gen_go = false;
    for (;;) {
        ipc_msg req;
        int sock = -1;
        /* Fresh control groups for the next fork, off any request's path. */
        if (sb.on && !sb.no_prejoin && !sb.next[0]) next_groups(&sb, ctl);
        /* The generator's other plans wait until the instances started
         * first have their first token (serve's IPC_SPARE says so, sent
         * once no instance of the function is on its first call) or
         * nothing came from serve for GEN_PREPARE_WAIT_MS: preparing
         * copies weights and faults memory in, which on a small machine
         * takes the CPU from that first token. */
        if (gen_left && !gen_go) {
            struct pollfd pf = {.fd = ctl, .events = POLLIN};
            int n = poll(&pf, 1, GEN_PREPARE_WAIT_MS);
            if (n == 0) gen_go = true;
            if (n < 0 && errno != EINTR) gen_go = true;
        }
        if (gen_left && gen_go && !ctl_pending(ctl)) {
            uint64_t p0 = rouse_now_ns();
            rc = gen_prepare_step(gen_left, s, &gen_k, &eb);
            if (rc <= 0) {
                if (rc < 0)
                    LOG_WARN(MOD, "%s: generation plans not prepared ahead: %s", o->name, eb.msg);
                else
                    LOG_DEBUG(MOD, "%s: %d generation plans prepared", o->name, gen_k);
                gen_destroy(gen_left);
                gen_left = NULL;
            } else {
                LOG_DEBUG(MOD, "%s: generation plan %d prepared in %.2f ms", o->name, gen_k,
                          rouse_ns_to_ms(rouse_now_ns() - p0));
            }
            continue;
        }
        rc = ipc_recv(ctl, &req, &sock, &eb);
        if (rc == ROUSE_ENOTFOUND) break; /* serve closed the socket: we are done */
        if (rc == ROUSE_EFORMAT) {
            LOG_WARN(MOD, "%s", eb.msg);
            continue;
        }
        if (rc < 0) {
            LOG_ERROR(MOD, "%s", eb.msg);
            status = 2;
            break;
        }
        if (req.type == IPC_SPARE) {
            if (sock >= 0) close(sock);
            gen_go = true;
            spare_wanted = req.status != 0;
            if (!spare_wanted && spare_chan >= 0) { /* EOF on its channel ends it */
                close(spare_chan);
                spare_chan = -1;
                spare_ready = false;
            } else if (spare_wanted && spare_chan < 0) {
                status = spare_start(o, ctl, m, s, &sb, &spare_chan, &is_spare);
                if (is_spare) goto out_session;
            }
            continue;
        }
        if (req.type != IPC_SPAWN || sock < 0) {
            if (sock >= 0) close(sock);
            worker_send_error(ctl, IPC_REPLY, req.id, 500, "template: expected a spawn request");
            continue;
        }
        uint64_t f0 = rouse_now_ns();
        if (spare_take(&spare_chan, &spare_ready, &req, sock, f0)) {
            /* The next spare waits until serve asks again (it says
             * IPC_SPARE off right behind the spawn), once the request
             * handed over is answered: forked now, its fork and its
             * cgroup's setup took both cores from that request
             * (resnet18: 5-9 ms of start on a hand-off that is three
             * wake-ups). */
            close(sock);
            spare_wanted = false;
            continue;
        }
        status = fork_instance(o, ctl, &req, sock, m, s, f0, spare_chan, &sb, &is_instance);
        close(sock);
        if (is_instance) goto out_session;    /* only the instance gets here */
        if (spare_wanted && spare_chan < 0) { /* the spare was lost: make another */
            status = spare_start(o, ctl, m, s, &sb, &spare_chan, &is_spare);
            if (is_spare) goto out_session;
        }
    }
out_session:
#if !defined(__SANITIZE_ADDRESS__)
    /* An instance or spare that has served ends here, without undoing
     * what it shares with the template: the session's free()s, and the
     * libraries' destructors after it (OpenSSL, GnuTLS, Kerberos, oneDNN:
     * everything the binary links), write into copy-on-write pages, each
     * a fault with a TLB flush on this hypervisor: measured 4-5 ms of CPU
     * per mlp instance's end, as much as its start. The kernel releases
     * what it holds; its output is flushed. Sanitizer builds keep the
     * teardown, so that their leak check covers the instance's code. */
    if (is_instance || is_spare) {
        fflush(NULL);
        _exit(status);
    }
#endif
    gen_destroy(gen_left);
    tok_free(tok);
    sandbox_fini(&sb);
    rouse_session_destroy(s);
    rouse_model_destroy(m);
    return status;
}

/* After a private huge-page copy is made: one child forked from here
 * reads every 4 KiB of it once and exits. Measured on a 622 MiB plan (the
 * virtual machines this runs on): the first process forked after the copy
 * spends 130-270 ms of CPU on its first pass over the copy, every later one
 * 8-11 ms (against 95-400 ms each over the file mapping); without this the
 * first template of a deploy, on a request's path, would be that process. */
static void first_read(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) < 0) return;
    size_t len;
    rouse_weight_pages kind;
    const unsigned char *p = rouse_weight_pages_find(
        (unsigned long)sb.st_dev, (unsigned long)sb.st_ino, (long long)sb.st_size,
        (long long)sb.st_mtim.tv_sec * 1000000000ll + sb.st_mtim.tv_nsec, &len, &kind);
    if (!p) return;
    pid_t pid = fork();
    if (pid == 0) {
        volatile unsigned char sum = 0;
        for (size_t i = 0; i < len; i += 4096)
            sum += p[i];
        (void)sum;
        _exit(0);
    }
    int ws;
    while (pid > 0 && waitpid(pid, &ws, 0) < 0 && errno == EINTR)
        ;
    rouse_weight_pages_release(p);
}

/* Keeps the huge-page copy of the plan at path that o asks for. 1 when one
 * was made now. */
static int keep_weights(const template_opts *o, const char *path)
{
    if (o->weight_pages == ROUSE_WEIGHT_PAGES_4K) return 0;
    uint64_t t0 = rouse_now_ns();
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    rouse_weight_pages got;
    int rc = rouse_weight_pages_keep(path, (rouse_weight_pages)o->weight_pages, &got, &eb);
    if (rc < 0)
        LOG_WARN(MOD, "weights of %s stay in the file mapping (4 KiB pages): %s", path, eb.msg);
    if (rc > 0 && got == ROUSE_WEIGHT_PAGES_THP) first_read(path);
    if (rc > 0)
        LOG_INFO(MOD, "weights of %s copied into %s pages in %.2f ms (%zu MiB kept)", path,
                 rouse_weight_pages_name(got), rouse_ns_to_ms(rouse_now_ns() - t0),
                 rouse_weight_pages_kept_bytes() >> 20);
    return rc > 0;
}

int template_warm(const template_opts *o)
{
    /* Models warmed before, by plan and thread count (a kernel is made for
     * a team size). A model evicted from oneDNN's cache since is warmed
     * again only after TEMPLATE_WARM_KEPT others: rare, and harmless. */
    static char warmed[TEMPLATE_WARM_KEPT][PATH_MAX + 16];
    static int next;
    if (!o->plan_cache || !o->model_sha256) return ROUSE_EINVAL;
    char path[PATH_MAX], key[PATH_MAX + 16];
    int threads = o->threads > 0 ? o->threads : 1;
    if (worker_plan_path(o->plan_cache, o->model_sha256, &o->prec, path, sizeof(path)) < 0 ||
        (size_t)snprintf(key, sizeof(key), "%s|%d|%d", path, threads, o->max_batch) >= sizeof(key))
        return ROUSE_EINVAL;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    /* A generator's tokenizer too: its templates take the copy they
     * inherit instead of parsing the files again. */
    if (o->max_context > 0 && worker_tok_keep(&o->tok_paths, &eb) < 0) {
        LOG_DEBUG(MOD, "tokenizer of %s not kept: %s", o->name, eb.msg);
        rouse_errbuf_clear(&eb);
    }
    char kkey[PATH_MAX + 64];
    bool keep = kept_key(o, path, kkey, sizeof(kkey));
    if (keep && kept_find(kkey)) return 0;
    for (int i = 0; !keep && i < TEMPLATE_WARM_KEPT; i++)
        if (strcmp(warmed[i], key) == 0) return keep_weights(o, path);
    /* A kept session reads its weights from the copy, which is made first. */
    if (keep) keep_weights(o, path);
    uint64_t t0 = rouse_now_ns();
    rouse_model *m = NULL;
    rouse_session *s = NULL;
    rouse_session_options so = {.threads = threads,
                                .max_activation_bytes = (uint64_t)o->memory_mb << 20};
    worker_batch_session_options(o->max_batch, &so);
    if (o->max_context > 0) {
        so.plan_cache_size = worker_gen_plan_cache(o->max_context, o->streams);
        so.gemv_max_rows = o->streams;
    }
    int rc = rouse_model_open_plan(path, &m, &eb);
    if (rc == 0) rc = rouse_session_create(m, &so, &s, &eb);
    uint64_t mem_bytes = 0;
    if (rc == 0 && o->max_batch > 0 && (rc = rouse_model_batch_check(m, &eb)) == 0)
        rc = worker_prepare_batches(m, s, o->max_batch, &mem_bytes, &eb);
    /* A generator's kernels too: its templates then find them in oneDNN's
     * cache. */
    int gen_k;
    if (rc == 0 && o->max_context > 0) rc = prepare_generator(o, m, s, -1, NULL, &gen_k, &eb);
    if (rc == 0 && o->max_context > 0) rouse_engine_warm_gemv();
    if (rc == 0 && keep) {
        kept_put(kkey, o->max_context > 0, m, s, mem_bytes);
        LOG_DEBUG(MOD, "%s %s opened and prepared in %.2f ms, kept for its templates",
                  o->max_context > 0 ? "generator" : "model", path,
                  rouse_ns_to_ms(rouse_now_ns() - t0));
        return 1;
    }
    rouse_session_destroy(s);
    rouse_model_destroy(m);
    if (rc < 0) {
        LOG_DEBUG(MOD, "kernels of %s not warmed: %s", path, eb.msg);
        return rc;
    }
    snprintf(warmed[next], sizeof(warmed[next]), "%s", key);
    next = (next + 1) % TEMPLATE_WARM_KEPT;
    LOG_DEBUG(MOD, "kernels of %s warm in %.2f ms", path, rouse_ns_to_ms(rouse_now_ns() - t0));
    keep_weights(o, path);
    return 1;
}
