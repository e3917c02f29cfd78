/*
 * The instance main loop (see instance.h). Invariants: exactly one reply per
 * request, in order; per-request memory lives in one arena reset between
 * requests; every error becomes a JSON {"error": ...} reply. The shared
 * region (ipc.h) is mapped once and kept until serve passes a bigger one;
 * it is written only while serve has lent it to the request being answered,
 * and only after that request's body is no longer read.
 */
#include "worker/instance.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/arena.h"
#include "common/buf.h"
#include "common/json.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "rouse/engine.h"
#include "worker/batch.h"
#include "worker/fault.h"
#include "worker/gen_streams.h"
#include "worker/generate.h"
#include "worker/ipc.h"
#include "worker/oip.h"
#include "worker/openai.h"
#include "worker/plan_load.h"

#define MOD "instance"
/* Arena memory an instance keeps between requests: a squeezenet1_1 JSON
 * request (1.8 MB) needs 9 MB; a larger one beyond this is freed after it. */
#define INSTANCE_ARENA_KEEP ((size_t)32 << 20)

/* Set once after the fork that made this process (worker_set_pid); -1:
 * getpid(). */
static int64_t own_pid = -1;

void worker_set_pid(int64_t pid)
{
    own_pid = pid;
}

static uint32_t pid_for_serve(void)
{
    return (uint32_t)(own_pid >= 0 ? own_pid : getpid());
}

/* Sends one message whose body is body[0..len): written into `region`
 * (IPC_F_IN_REGION) when given, else passed in a memfd of its own. */
static int send_msg(int sock, int type, uint64_t id, int status, const char *content_type,
                    const void *body, size_t len, int64_t json_len, const uint64_t *dur_ns,
                    void *region, const char *warning, uint32_t flags, const openai_reply *gr)
{
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    ipc_msg m;
    ipc_msg_init(&m, (ipc_type)type, id);
    m.status = status;
    m.pid = pid_for_serve();
    m.json_len = json_len;
    m.body_len = len;
    if (dur_ns) memcpy(m.dur_ns, dur_ns, sizeof(m.dur_ns));
    snprintf(m.content_type, sizeof(m.content_type), "%s", content_type);
    if (warning) snprintf(m.warning, sizeof(m.warning), "%s", warning);
    if (gr) {
        m.prefill_chunks = gr->prefill_chunks;
        m.prefill_steps = gr->prefill_steps;
        m.prefill_group = gr->prefill_group;
    }
    int fd = -1, rc;
    m.flags = flags;
    if (region) {
        if (len > 0) memcpy(region, body, len);
        m.flags |= IPC_F_IN_REGION;
    } else if (len > 0 && (rc = ipc_memfd_from(body, len, &fd, &eb)) < 0) {
        LOG_ERROR(MOD, "%s", eb.msg);
        return rc;
    }
    rc = ipc_send(sock, &m, fd, &eb);
    if (fd >= 0) close(fd);
    if (rc < 0) LOG_ERROR(MOD, "%s", eb.msg);
    return rc;
}

int worker_send_reply(int sock, int type, uint64_t id, int status, const char *content_type,
                      const void *body, size_t len, int64_t json_len, const uint64_t *dur_ns)
{
    return send_msg(sock, type, id, status, content_type, body, len, json_len, dur_ns, NULL, NULL,
                    0, NULL);
}

int worker_send_ready(int sock, const uint64_t dur_ns[3], uint64_t mem_bytes)
{
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    ipc_msg m;
    ipc_msg_init(&m, IPC_READY, 0);
    m.pid = pid_for_serve();
    memcpy(m.dur_ns, dur_ns, sizeof(m.dur_ns));
    m.mem_bytes = mem_bytes;
    int rc = ipc_send(sock, &m, -1, &eb);
    if (rc < 0) LOG_ERROR(MOD, "%s", eb.msg);
    return rc;
}

/* {"error": msg} into b. */
static int error_body(rouse_buf *b, const char *msg)
{
    int rc = rouse_buf_append_str(b, "{\"error\":");
    if (rc == 0) rc = json_write_string(b, msg, strlen(msg));
    if (rc == 0) rc = rouse_buf_append_str(b, "}");
    return rc;
}

int worker_send_error(int sock, int type, uint64_t id, int status, const char *msg)
{
    rouse_buf b;
    rouse_buf_init(&b);
    int rc = error_body(&b, msg);
    if (rc == 0)
        rc = worker_send_reply(sock, type, id, status, "application/json", b.data, b.len, -1, NULL);
    rouse_buf_fini(&b);
    return rc;
}

/* The shared region as this instance has it mapped, and whether serve lent
 * it to the request being handled. */
typedef struct region {
    void *map;
    uint64_t size;
    bool lent;
    ino_t ino; /* its memfd's, to know it when passed again */
} region;

/* Replies through the region when it is lent and the body fits, else
 * through a memfd of its own. */
/* The CPU time of this process (every engine thread), when serve asks
 * for it (IPC_F_CPU, auto batching's cost per request): a system call, so
 * not on every request. */
static uint64_t process_cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) < 0) return 0;
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The CPU time of a batching instance between its messages: read after
 * each reply (since), the time until the next message came (its polling
 * for it, its wake-up) is what a message costs in waiting, which a batch
 * divides among its calls (batch_aimd_observe in serve). */
typedef struct idle_cpu {
    uint64_t since; /* the process's CPU time after the last reply (0: not read) */
    uint64_t spent; /* from then to this message's start (0: not known) */
} idle_cpu;

/* dur_ns[1] gets the CPU time since cpu0 when cpu0 is not 0, and dur_ns[2]
 * the CPU time the instance spent waiting for the message (idle->spent). */
static int send_reply_idle(int sock, const region *rg, uint64_t id, int status,
                           const char *content_type, const void *body, size_t len, int64_t json_len,
                           uint64_t t0, uint64_t cpu0, uint32_t flags, const idle_cpu *idle)
{
    uint64_t dur[3] = {t0 ? rouse_now_ns() - t0 : 0, 0, 0};
    if (cpu0) {
        uint64_t c = process_cpu_ns();
        dur[1] = c > cpu0 ? c - cpu0 : 1;
        if (idle) dur[2] = idle->spent;
    }
    return send_msg(sock, IPC_REPLY, id, status, content_type, body, len, json_len, t0 ? dur : NULL,
                    rg->lent && len <= rg->size ? rg->map : NULL, NULL, flags, NULL);
}

static int send_reply(int sock, const region *rg, uint64_t id, int status, const char *content_type,
                      const void *body, size_t len, int64_t json_len, uint64_t t0)
{
    return send_reply_idle(sock, rg, id, status, content_type, body, len, json_len, t0, 0, 0, NULL);
}

static int send_error(int sock, const region *rg, uint64_t id, int status, const char *msg)
{
    rouse_buf b;
    rouse_buf_init(&b);
    int rc = error_body(&b, msg);
    if (rc == 0) rc = send_reply(sock, rg, id, status, "application/json", b.data, b.len, -1, 0);
    rouse_buf_fini(&b);
    return rc;
}

/* A generator of the instance's model: checked and made on its first
 * request (its KV cache on the first generation). */
typedef struct gen_slot {
    gen *g;
    char error[sizeof(((rouse_errbuf *)0)->msg)]; /* why the model cannot generate, once tried */
} gen_slot;

static int handle_generate(const instance_opts *o, int sock, const ipc_msg *req, const void *body,
                           region *rg, rouse_model *m, rouse_session *s, gen_slot *gs,
                           rouse_arena *arena, rouse_buf *out, uint64_t t0)
{
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    if (o->max_context <= 0)
        return send_error(sock, rg, req->id, 400,
                          "this function is not a text generator (its config has no \"task\": "
                          "\"text-generation\")");
    if (!gs->g && !gs->error[0]) {
        gen_model gm;
        int rc = gen_model_check(m, o->max_context, &gm, &eb);
        if (rc == 0) rc = gen_create(m, &gm, &gs->g, &eb);
        if (rc < 0) snprintf(gs->error, sizeof(gs->error), "%s", eb.msg);
    }
    if (!gs->g) return send_error(sock, rg, req->id, 400, gs->error);
    openai_reply rep;
    int rc = openai_generate(sock, req, body, o->name, gs->g, o->tok, s, arena, out, &rep);
    if (rc < 0) return rc;
    uint64_t dur[3] = {rouse_now_ns() - t0, rep.ttft_ns, rep.itl_ns};
    return send_msg(sock, IPC_REPLY, req->id, rep.status, rep.content_type, out->data, out->len, -1,
                    dur, rg->lent && out->len <= rg->size ? rg->map : NULL, rep.warning, 0, &rep);
}

/* Maps the region passed as fd (size bytes) in place of rg's, unless it
 * is the one already mapped: serve passes a held spare's region ahead
 * (IPC_REGION) and again with the first request that uses it. */
static int region_take(int fd, uint64_t size, region *rg, rouse_errbuf *eb)
{
    struct stat st;
    if (fstat(fd, &st) < 0) return rouse_err_set(eb, ROUSE_EIO, "shared region: %s", strerror(errno));
    if (rg->map && st.st_ino == rg->ino && size == rg->size) return 0;
    void *map;
    int rc = ipc_region_map(fd, size, &map, eb);
    if (rc < 0) return rc;
    ipc_region_unmap(rg->map, rg->size);
    rg->map = map;
    rg->size = size;
    rg->ino = st.st_ino;
    return 0;
}

/* IPC_REGION: mapped now, off the path of the request that first uses it.
 * One that cannot be mapped is tried again with that request. */
static void take_region(const ipc_msg *req, int fd, region *rg)
{
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    if (!(req->flags & IPC_F_REGION) || fd < 0 || region_take(fd, req->region_size, rg, &eb) < 0)
        LOG_DEBUG(MOD, "shared region not mapped ahead: %s", eb.msg[0] ? eb.msg : "none passed");
}

/* Takes a region passed with the request (replacing the old one) and finds
 * the body: in the region or in a memfd of its own. */
static int request_body(const ipc_msg *req, int body_fd, region *rg, const void **body,
                        rouse_errbuf *eb)
{
    *body = NULL;
    rg->lent = false;
    if (req->flags & IPC_F_REGION) {
        int rc = region_take(body_fd, req->region_size, rg, eb);
        if (rc < 0) return rc;
    }
    if (!(req->flags & IPC_F_IN_REGION)) return ipc_map(body_fd, req->body_len, body, eb);
    if (!rg->map || req->body_len > rg->size)
        return rouse_err_set(eb, ROUSE_EFORMAT,
                             "request body of %llu bytes is not in the shared region",
                             (unsigned long long)req->body_len);
    rg->lent = true;
    *body = rg->map;
    return 0;
}

/* Handles one request; the reply (success or error) is already sent when it
 * returns 0. A negative return means the socket failed. */
static int handle(const instance_opts *o, int sock, const ipc_msg *req, int body_fd, region *rg,
                  rouse_model *m, rouse_session *s, gen_slot *gs, rouse_arena *arena,
                  rouse_buf *out, worker_batch_times *times, idle_cpu *idle)
{
    uint64_t t0 = rouse_now_ns(), cpu0 = req->flags & IPC_F_CPU ? process_cpu_ns() : 0;
    idle->spent = cpu0 && idle->since && cpu0 > idle->since ? cpu0 - idle->since : 0;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    const void *body = NULL;
    int rc = request_body(req, body_fd, rg, &body, &eb);
    if (rc < 0) return send_error(sock, rg, req->id, 500, eb.msg);
    /* A body of its own is unmapped once done with; the region stays. */
    const void *own = rg->lent ? NULL : body;
    rouse_arena_reset(arena);
    rouse_buf_clear(out);
    if (req->type == IPC_META) {
        int n = (int)(req->body_len / sizeof(int64_t));
        int64_t *versions = rouse_arena_calloc(arena, (size_t)n + 1, sizeof(int64_t), 8);
        if (versions && n > 0) memcpy(versions, body, (size_t)n * sizeof(int64_t));
        rc = versions ? oip_model_metadata(m, o->name, versions, n, out) : ROUSE_ENOMEM;
        ipc_unmap(own, req->body_len);
        if (rc < 0) return send_error(sock, rg, req->id, 500, rouse_strerror(rc));
        return send_reply(sock, rg, req->id, 200, "application/json", out->data, out->len, -1, t0);
    }
    if (req->type == IPC_GENERATE) {
        rc = handle_generate(o, sock, req, body, rg, m, s, gs, arena, out, t0);
        ipc_unmap(own, req->body_len);
        return rc;
    }
    if (req->type == IPC_BATCH) {
        /* The region's room past the bodies holds the concatenated inputs. */
        uint64_t used = (req->body_len + 63) & ~63ull;
        char ver[24];
        snprintf(ver, sizeof(ver), "%lld", (long long)req->version);
        worker_batch_ctx bc = {.name = o->name,
                               .version = req->version > 0 ? ver : o->version,
                               .m = m,
                               .s = s,
                               .max_batch = o->max_batch,
                               .arena = arena,
                               .scratch =
                                   rg->lent && used < rg->size ? (char *)rg->map + used : NULL,
                               .scratch_len = rg->lent && used < rg->size ? rg->size - used : 0,
                               .times = times};
        rc = worker_run_batch(&bc, body, req->body_len, out, &eb);
        ipc_unmap(own, req->body_len);
        if (rc < 0) return send_error(sock, rg, req->id, 500, eb.msg);
        return send_reply_idle(sock, rg, req->id, 200, "", out->data, out->len, -1, t0, cpu0,
                               IPC_F_BATCH, idle);
    }
    if (req->type != IPC_INFER) {
        ipc_unmap(own, req->body_len);
        return send_error(sock, rg, req->id, 500, "unknown request type");
    }
    oip_request oreq;
    memset(&oreq, 0, sizeof(oreq));
    int64_t json_len = -1;
    if ((rc = oip_decode_request(body, req->body_len, req->json_len, m, arena, &oreq, &eb)) < 0) {
        if (arena->over) {
            rc = ROUSE_ETOOBIG;
            rouse_err_set(&eb, rc,
                          "decoding this request would take more than %zu MiB, half of the "
                          "function's memory_mb of %d; send large tensors in the binary tensor "
                          "extension (binary_data_size) or raise memory_mb",
                          arena->limit >> 20, o->memory_mb);
        }
        goto out_error;
    }
    worker_fault_hook(oreq.id);
    uint64_t tr = rouse_now_ns();
    if ((rc = rouse_session_run(s, oreq.inputs, oreq.n_inputs, &eb)) < 0) goto out_error;
    /* A batching function's lone request is a run of its size too. */
    if (o->max_batch > 0 && oreq.n_inputs > 0 && oreq.inputs[0].rank > 0)
        worker_batch_time(times, oreq.inputs[0].shape[0], rouse_now_ns() - tr);
    /* A pool renamed by a live scaling change names its current version. */
    char ver[24];
    snprintf(ver, sizeof(ver), "%lld", (long long)req->version);
    if ((rc = oip_encode_response(&oreq, o->name, req->version > 0 ? ver : o->version, m, s, out,
                                  &json_len, &eb)) < 0)
        goto out_error;
    ipc_unmap(own, req->body_len);
    return send_reply_idle(sock, rg, req->id, 200,
                           json_len >= 0 ? "application/octet-stream" : "application/json",
                           out->data, out->len, json_len, t0, cpu0, 0, idle);
out_error:
    ipc_unmap(own, req->body_len);
    return send_error(sock, rg, req->id, rouse_err_http_status(rc),
                      eb.msg[0] ? eb.msg : rouse_strerror(rc));
}

int worker_gen_plan_cache(int max_context, int streams)
{
    int sizes[8], n = gen_batch_sizes(streams, sizes), buckets = 1;
    for (int b = 16; b < max_context; b *= 2)
        buckets++;
    /* Several streams: each bucket's decode step per batch size, and its
     * prefill chunk (gen_prefill_next). */
    return WORKER_GEN_PLAN_CACHE + (n + (streams > 1 ? 1 : 0)) * buckets;
}

int worker_open_model(int sock, const char *path, const char *sha256, const char *plan_cache,
                      const worker_precision *prec, int threads, int plan_cache_size, int memory_mb,
                      int max_batch, int streams, rouse_model **m, rouse_session **s,
                      uint64_t dur[3])
{
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    *m = NULL;
    *s = NULL;
    int from_cache = 0;
    uint64_t t0 = rouse_now_ns();
    int rc = worker_load_plan(path, sha256, plan_cache, prec, m, &from_cache, &eb);
    uint64_t t1 = rouse_now_ns();
    /* A batching function's model must take any batch along dim 0: the
     * deploy check's 400 names the node that pins it. */
    if (rc == 0 && max_batch > 0 && (rc = rouse_model_batch_check(*m, &eb)) < 0)
        rouse_err_wrap(&eb, rc, "batching");
    if (rc == 0) {
        rouse_session_options so = {.threads = threads > 0 ? threads : 1,
                                    .plan_cache_size = plan_cache_size,
                                    .max_activation_bytes = (uint64_t)memory_mb << 20};
        worker_batch_session_options(max_batch, &so);
        /* A generator's decode step of several streams reads the weights
         * in place, as one stream's does. */
        so.gemv_max_rows = streams;
        rc = rouse_session_create(*m, &so, s, &eb);
    }
    if (rc < 0) {
        const char *msg = eb.msg[0] ? eb.msg : rouse_strerror(rc);
        size_t pl = strlen(path);
        if (strncmp(msg, path, pl) == 0 && strncmp(msg + pl, ": ", 2) == 0) msg += pl + 2;
        char why[sizeof(eb.msg) + 96];
        if (rc == ROUSE_ETOOBIG && memory_mb > 0 && strstr(msg, "memory limit")) {
            snprintf(why, sizeof(why),
                     "at its declared input shapes, %s (the function's memory_mb)", msg);
            msg = why;
        }
        /* A model that does not load is the model's fault (400), except
         * when the plan could not be stored: that is serve's storage (507). */
        int status = rc == ROUSE_ENOSPACE ? rouse_err_http_status(rc) : 400;
        worker_send_error(sock, IPC_READY, 0, status, msg);
        rouse_model_destroy(*m);
        *m = NULL;
        return rc;
    }
    dur[0] = t1 - t0;
    dur[1] = rouse_now_ns() - t1;
    dur[2] = from_cache ? 1u : 0u;
    return 0;
}

/* A stream's final reply: through the region when it is lent to the
 * stream and the body fits. */
typedef struct stream_ctx {
    int sock;
    region *rg;
} stream_ctx;

static int stream_reply(void *user, uint64_t id, bool lent, const openai_reply *rep,
                        const rouse_buf *out, uint64_t t0)
{
    stream_ctx *c = user;
    uint64_t dur[3] = {rouse_now_ns() - t0, rep->ttft_ns, rep->itl_ns};
    return send_msg(c->sock, IPC_REPLY, id, rep->status, rep->content_type, out->data, out->len, -1,
                    dur, lent && out->len <= c->rg->size ? c->rg->map : NULL, rep->warning, 0, rep);
}

/* The loop of a generator serving several streams at once (gen_streams.h):
 * between decode steps, every message waiting is taken without blocking
 * (a new stream is prefilled and joins, a cancel ends its stream); with no
 * stream active it blocks for the next message. Other requests are
 * answered as handle() does. */
static int serve_streams(const instance_opts *o, int sock, region *rg, rouse_model *m,
                         rouse_session *s, rouse_arena *arena, rouse_buf *out,
                         worker_batch_times *times)
{
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    gen_model gm;
    gen_streams *gs = NULL;
    stream_ctx ctx = {sock, rg};
    gen_streams_opts so = {.sock = sock,
                           .name = o->name,
                           .tok = o->tok,
                           .arena_limit = o->memory_mb > 0 ? ((size_t)o->memory_mb << 20) / 2 : 0,
                           .reply = stream_reply,
                           .user = &ctx,
                           .prefill_batch = o->prefill_batch,
                           .prefill_delay_ns = (uint64_t)o->prefill_delay_us * 1000u};
    int rc = gen_model_check(m, o->max_context, &gm, &eb);
    gm.streams = o->streams > GEN_STREAMS_MAX ? GEN_STREAMS_MAX : o->streams;
    if (rc == 0) rc = gen_streams_create(m, s, &gm, &so, &gs, &eb);
    if (rc < 0) {
        LOG_ERROR(MOD, "%s", eb.msg);
        return 2;
    }
    gen_slot none = {NULL, "text generation runs as streams here"};
    int status = 0;
    for (;;) {
        ipc_msg req;
        int body_fd = -1;
        bool busy = gen_streams_active(gs) > 0;
        /* Streams that wait for company and nothing else: a message, or
         * the end of their wait (then the step prefills them). */
        uint64_t idle = busy ? gen_streams_idle_ns(gs) : 0;
        if (idle > 0) {
            struct pollfd pf = {.fd = sock, .events = POLLIN};
            struct timespec ts = {(time_t)(idle / 1000000000u), (long)(idle % 1000000000u)};
            if (ppoll(&pf, 1, &ts, NULL) == 0) continue;
        }
        rc =
            busy ? ipc_recv_nowait(sock, &req, &body_fd, &eb) : ipc_recv(sock, &req, &body_fd, &eb);
        if (rc == ROUSE_EBUSY) {
            if (gen_streams_step(gs) < 0) {
                status = 2;
                break;
            }
            continue;
        }
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
        if (req.type == IPC_REGION) {
            take_region(&req, body_fd, rg);
            if (body_fd >= 0) close(body_fd);
            continue;
        }
        if (req.type == IPC_CANCEL) {
            if (body_fd >= 0) close(body_fd);
            rc = gen_streams_cancel(gs, &req);
        } else if (req.type == IPC_GENERATE) {
            const void *body = NULL;
            rc = request_body(&req, body_fd, rg, &body, &eb);
            if (rc < 0) {
                rc = send_error(sock, rg, req.id, 500, eb.msg);
            } else {
                bool lent = rg->lent;
                rc = gen_streams_start(gs, &req, body, lent);
                if (!lent) ipc_unmap(body, req.body_len);
            }
            if (body_fd >= 0) close(body_fd);
        } else {
            idle_cpu no_idle = {0, 0}; /* generators do not batch this way */
            rc = handle(o, sock, &req, body_fd, rg, m, s, &none, arena, out, times, &no_idle);
            if (body_fd >= 0) close(body_fd);
        }
        if (rc < 0) {
            status = 2;
            break;
        }
    }
    gen_streams_destroy(gs);
    return status;
}

int instance_main(const instance_opts *o)
{
    /* Serve may die without closing us: die with it. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    rouse_model *m;
    rouse_session *s;
    uint64_t dur[3];
    if (worker_open_model(
            o->fd, o->model_path, NULL, o->plan_cache, &o->prec, o->threads,
            o->max_context > 0 ? worker_gen_plan_cache(o->max_context, o->streams) : 0,
            o->memory_mb, o->max_batch, o->max_context > 0 ? o->streams : 0, &m, &s, dur) < 0)
        return 1;
    /* Exec'd (the deploy check, or without a template): the tokenizer is
     * loaded here; a template loads it once for all its instances. */
    instance_opts io = *o;
    tok_tokenizer *tok = NULL;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    if (o->max_context > 0 && worker_tok_load(&o->tok_paths, &tok, &eb) < 0) {
        worker_send_error(o->fd, IPC_READY, 0, 400, eb.msg);
        rouse_session_destroy(s);
        rouse_model_destroy(m);
        return 1;
    }
    io.tok = tok;
    int status = instance_serve(&io, o->fd, m, s);
    tok_free(tok);
    rouse_session_destroy(s);
    rouse_model_destroy(m);
    return status;
}

static void arena_setup(rouse_arena *a, const instance_opts *o)
{
    rouse_arena_init(a, 0);
    /* Requests decode into the arena (a large JSON body builds megabytes of
     * values): keeping its blocks spares the next request the page faults. */
    rouse_arena_keep(a, INSTANCE_ARENA_KEEP);
    /* A JSON body decodes into a tree of values (32-40 bytes per number,
     * about 13 times the text of a float tensor): the decode may take half
     * of memory_mb, the rest is for activations and the body itself. */
    if (o->memory_mb > 0) rouse_arena_set_limit(a, ((size_t)o->memory_mb << 20) / 2);
}

/* The bytes of input i at the model's declared shape; 0 when dynamic. */
static size_t fixed_input_bytes(const rouse_model *m, int i, rouse_tensor_info *ti)
{
    if (rouse_model_input(m, i, ti) < 0 || ti->rank < 0) return 0;
    size_t nb = rouse_dtype_size(ti->dtype);
    for (int d = 0; d < ti->rank && nb; d++)
        nb = ti->shape[d] > 0 && (uint64_t)ti->shape[d] <= SIZE_MAX / nb ? nb * (size_t)ti->shape[d]
                                                                         : 0;
    return nb;
}

/* The JSON header of a binary OIP request of zeros at the model's declared
 * shapes (*data_len: the tensors' bytes that follow it), of a length that
 * leaves them unaligned, as most requests' are (copied into the arena like
 * theirs), asking for binary outputs. 0, or < 0 when an input's shape is
 * dynamic or memory runs out. */
static int rehearsal_header(const rouse_model *m, rouse_buf *b, size_t *data_len)
{
    int n = rouse_model_n_inputs(m);
    size_t data = 0;
    rouse_tensor_info ti;
    if (rouse_buf_append_str(b, "{\"id\":\"warm-up\",\"inputs\":[") < 0) return ROUSE_ENOMEM;
    for (int i = 0; i < n; i++) {
        size_t nb = fixed_input_bytes(m, i, &ti);
        if (nb == 0 || nb > INSTANCE_ARENA_KEEP) return ROUSE_EINVAL;
        int rc = rouse_buf_append_str(b, i ? ",{\"name\":" : "{\"name\":");
        if (rc == 0) rc = json_write_string(b, ti.name, strlen(ti.name));
        if (rc == 0) rc = rouse_buf_append_str(b, ",\"shape\":[");
        for (int d = 0; rc == 0 && d < ti.rank; d++)
            rc = rouse_buf_appendf(b, d ? ",%lld" : "%lld", (long long)ti.shape[d]);
        if (rc == 0)
            rc = rouse_buf_appendf(
                b, "],\"datatype\":\"%s\",\"parameters\":{\"binary_data_size\":%zu}}",
                oip_datatype_name(ti.dtype), nb);
        if (rc < 0) return ROUSE_ENOMEM;
        data += nb;
    }
    if (rouse_buf_append_str(b, "],\"parameters\":{\"binary_data_output\":true}}") < 0)
        return ROUSE_ENOMEM;
    /* Unaligned for sure: a header that happens to end on 16 bytes gets a space. */
    if (b->len % 16 == 0 && rouse_buf_append_byte(b, ' ') < 0) return ROUSE_ENOMEM;
    *data_len = data;
    return 0;
}

int instance_rehearse(const instance_opts *o, rouse_model *m, rouse_session *s, rouse_arena *arena,
                      rouse_buf *out, rouse_errbuf *eb)
{
    arena_setup(arena, o);
    rouse_buf_init(out);
    rouse_buf head;
    rouse_buf_init(&head);
    size_t data = 0;
    int rc = rehearsal_header(m, &head, &data);
    /* One allocation, freed whole (a large one goes back to the system at
     * once instead of staying in the heap as a grown buffer's steps would). */
    char *body = rc == 0 ? calloc(1, head.len + data) : NULL;
    if (!body) {
        rouse_buf_fini(&head);
        /* Dynamic shapes: the run at the prepared ones still warms the kernels. */
        return rouse_session_warm_up(s, eb);
    }
    memcpy(body, head.data, head.len);
    int64_t json_len = (int64_t)head.len;
    rouse_buf_fini(&head);
    oip_request oreq;
    memset(&oreq, 0, sizeof(oreq));
    rc = oip_decode_request(body, (size_t)json_len + data, json_len, m, arena, &oreq, eb);
    if (rc == 0) rc = rouse_session_run(s, oreq.inputs, oreq.n_inputs, eb);
    int64_t out_json = -1;
    if (rc == 0) rc = oip_encode_response(&oreq, o->name, o->version, m, s, out, &out_json, eb);
    free(body);
    rouse_arena_reset(arena);
    rouse_buf_clear(out);
    return rc;
}

int instance_serve(const instance_opts *o, int sock, rouse_model *m, rouse_session *s)
{
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    /* A spare's generator, warmed on the spare's short-request path: the
     * first request's prefill and decode step run as in a warm instance. */
    gen_slot gs = {o->gen, ""};
    rouse_arena arena;
    rouse_buf out;
    if (o->arena) { /* a spare's, touched by its rehearsal (instance_rehearse) */
        arena = *o->arena;
        out = *o->out;
    } else {
        arena_setup(&arena, o);
        rouse_buf_init(&out);
    }
    if (o->max_context > 0) {
        /* A generator's model must have the KV-cache layout: the deploy
         * check (check_only) refuses it here, naming what is missing. */
        gen_model gm;
        if (gen_model_check(m, o->max_context, &gm, &eb) < 0) {
            worker_send_error(sock, IPC_READY, 0, 400, eb.msg);
            gen_destroy(gs.g);
            rouse_arena_fini(&arena);
            rouse_buf_fini(&out);
            return 1;
        }
        if (o->streams > 1 && !gm.has_position_ids) {
            worker_send_error(sock, IPC_READY, 0, 400,
                              "scaling.concurrency: decoding several streams together needs the "
                              "model's position_ids input");
            gen_destroy(gs.g);
            rouse_arena_fini(&arena);
            rouse_buf_fini(&out);
            return 1;
        }
        if (o->tok && tok_vocab_size(o->tok) > (size_t)gm.vocab) {
            char msg[192];
            snprintf(msg, sizeof(msg),
                     "tokenizer: its vocabulary has %zu tokens, more than the model's logits (%d)",
                     tok_vocab_size(o->tok), gm.vocab);
            worker_send_error(sock, IPC_READY, 0, 400, msg);
            gen_destroy(gs.g);
            rouse_arena_fini(&arena);
            rouse_buf_fini(&out);
            return 1;
        }
    }
    if (o->check_only) {
        /* Memory is checked at the largest shapes the function will run:
         * a generator's at its max_context, a batching function's at its
         * largest prepared batch (static shapes were at the session's
         * creation). */
        int rc = 0;
        if (o->max_context > 0) {
            gen_model gm;
            rc = gen_model_check(m, o->max_context, &gm, &eb);
            gm.streams = o->streams > 1 ? o->streams : 1;
            if (rc == 0) rc = gen_check_memory(&gm, s, o->memory_mb, &eb);
        } else if (o->max_batch > 0) {
            uint64_t mem_bytes;
            rc = worker_prepare_batches(m, s, o->max_batch, &mem_bytes, &eb);
            if (rc == ROUSE_ETOOBIG)
                rouse_err_wrap(&eb, rc, "at its max_batch of %d (the function's memory_mb)",
                               o->max_batch);
        }
        if (rc < 0) {
            worker_send_error(sock, IPC_READY, 0, 400, eb.msg);
            gen_destroy(gs.g);
            rouse_arena_fini(&arena);
            rouse_buf_fini(&out);
            return 1;
        }
        /* A deploy check answers with the plan's accuracy figures, which
         * serve records with the version. */
        rouse_accuracy acc;
        rouse_model_accuracy(m, &acc);
        char *j = rouse_accuracy_json(&acc);
        rc = worker_send_reply(sock, IPC_READY, 0, 0, j ? "application/json" : "", j,
                               j ? strlen(j) : 0, -1, NULL);
        free(j);
        gen_destroy(gs.g);
        rouse_arena_fini(&arena);
        return rc < 0 ? 2 : 0;
    }
    if (worker_send_reply(sock, IPC_READY, 0, 0, "", NULL, 0, -1, NULL) < 0) {
        gen_destroy(gs.g);
        rouse_arena_fini(&arena);
        return 2;
    }

    region rg = {NULL, 0, false, 0};
    worker_batch_times times = {{0}};
    int status = 0;
    uint64_t poll_until = 0;
    idle_cpu idle = {0, 0};
    if (o->max_context > 0 && o->streams > 1) {
        status = serve_streams(o, sock, &rg, m, s, &arena, &out, &times);
        goto out;
    }
    for (;;) {
        ipc_msg req;
        int body_fd = -1;
        int rc = ROUSE_EBUSY;
        /* Serve asks for a short poll when its next request for us usually
         * follows within microseconds: a sleeping instance would make it
         * pay a wake-up, which on virtual machines costs more than a small
         * model's inference. Each round yields the CPU to whoever needs it. */
        while (poll_until && (rc = ipc_recv_nowait(sock, &req, &body_fd, &eb)) == ROUSE_EBUSY) {
            if (rouse_now_ns() >= poll_until) break;
            sched_yield();
        }
        poll_until = 0;
        if (rc == ROUSE_EBUSY) rc = ipc_recv(sock, &req, &body_fd, &eb);
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
        /* A cancel here is for a generation that already ended. */
        if (req.type == IPC_CANCEL || req.type == IPC_REGION) {
            if (req.type == IPC_REGION) take_region(&req, body_fd, &rg);
            if (body_fd >= 0) close(body_fd);
            continue;
        }
        rc = handle(o, sock, &req, body_fd, &rg, m, s, &gs, &arena, &out, &times, &idle);
        if (body_fd >= 0) close(body_fd);
        /* A batching instance reads its CPU clock after each message (a
         * system call): what it spends until the next is that one's wait. */
        if (o->max_batch > 0) idle.since = process_cpu_ns();
        if (req.poll_us > 0)
            poll_until =
                rouse_now_ns() + (uint64_t)(req.poll_us > 1000 ? 1000 : req.poll_us) * 1000u;
        if (rc < 0) {
            status = 2;
            break;
        }
    }
out:
    gen_destroy(gs.g);
    ipc_region_unmap(rg.map, rg.size);
    rouse_buf_fini(&out);
    rouse_arena_fini(&arena);
    return status;
}
