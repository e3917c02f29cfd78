/*
 * The instance process: loads one model, then answers requests from serve
 * over its socket (ipc.h) one at a time until serve closes the socket.
 *
 * Tensors are decoded and encoded here (oip.h), never in serve. Bad input
 * is answered with a 400 and a message naming the tensor; the instance
 * never exits because of a request.
 */
#ifndef ROUSE_WORKER_INSTANCE_H
#define ROUSE_WORKER_INSTANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "worker/plan_load.h"
#include "worker/tok_files.h"

typedef struct instance_opts {
    int fd;                     /* the SOCK_SEQPACKET end inherited from serve */
    const char *model_path;     /* the model file (a blob) */
    const char *name;           /* function name, echoed as model_name */
    const char *version;        /* version, echoed as model_version */
    int threads;                /* kernel threads; 0 means 1 */
    bool check_only;            /* load, report READY or the error, exit: deploy validation */
    const char *plan_cache;     /* directory of compiled plans (compiled when missing), or NULL */
    worker_precision prec;      /* what the plan is compiled at */
    int max_context;            /* > 0: a text generator (openai.h) of this many positions */
    worker_tok_paths tok_paths; /* its tokenizer's files (none: bytes are the tokens) */
    const tok_tokenizer *tok;   /* loaded by the template (borrowed), else NULL */
    int memory_mb;              /* the function's memory_mb: bounds activation memory; 0: none */
    int max_batch;              /* dynamic batching's largest batch (worker/batch.h), 0: none */
    int streams;          /* a generator's streams decoded together (gen_streams.h); <= 1: one */
    int prefill_batch;    /* of those, prefilled together at most (gen_streams_opts) */
    int prefill_delay_us; /* and a new stream's wait for company */
    struct gen *gen;      /* a generator made and warmed ahead (a spare's), or NULL: the
                             instance takes it over (instance_serve frees it) */
    struct rouse_arena *arena; /* the request arena and the reply buffer made and */
    struct rouse_buf *out;     /* touched ahead (a spare's, instance_rehearse), or NULL:
                                  the instance takes them over (and finishes them) */
} instance_opts;

/* Prepared plans a generator's session keeps: one per bucket of past
 * lengths and per bucket of prompt lengths (generate.h). */
#define WORKER_GEN_PLAN_CACHE 32

/* The prepared plans a generator's session keeps for max_context
 * positions and `streams` streams: WORKER_GEN_PLAN_CACHE, and with several
 * streams one more per batch size and bucket, and one per bucket for a
 * prefill chunk. */
int worker_gen_plan_cache(int max_context, int streams);

/* Runs the instance until its socket closes. Returns the process exit
 * status: 0 after a clean end, 1 when the model failed to load (already
 * reported to serve), 2 when the socket itself failed. */
int instance_main(const instance_opts *o);

struct rouse_model;
struct rouse_session;

/* The serving loop of an instance whose model and session are ready (an
 * exec'd instance after loading, or a child forked from a template): sends
 * IPC_READY on sock, then answers requests until the socket closes. Borrows
 * m and s. Returns the exit status as instance_main does. */
int instance_serve(const instance_opts *o, int sock, struct rouse_model *m,
                   struct rouse_session *s);

struct rouse_arena;
struct rouse_buf;
struct rouse_errbuf;

/* A spare's rehearsal of its first request: makes the arena requests
 * decode into and the buffer replies are encoded in (*arena, *out: the
 * caller hands them to instance_serve through instance_opts, or
 * finishes them), then runs a binary OIP request of zeros at the model's
 * declared shapes through them (decode, run, encode; nothing sent). The
 * first real request then finds, as a warm instance's does, its memory
 * written (the tensors' aligned copies, the reply), its code mapped and
 * the kernels initialized, instead of a page fault per 4 KiB of each.
 * A model with dynamic input shapes runs rouse_session_warm_up instead. */
int instance_rehearse(const instance_opts *o, struct rouse_model *m, struct rouse_session *s,
                      struct rouse_arena *arena, struct rouse_buf *out, struct rouse_errbuf *eb);

/* The pid this process's messages to serve carry (ipc_msg.pid): its own
 * getpid() unless set. A process forked into a tenant's pid namespace sets
 * the pid serve knows it by (a spare, told by its template), or 0 when it
 * does not know it (an instance: serve learns it from the template). Set
 * once, right after the fork, before any message. */
void worker_set_pid(int64_t pid);

/* Sends a reply packet of `type` whose body is body[0..len) (may be empty);
 * dur_ns (3 values, or NULL) goes into the header. 0 or < 0 (logged). */
int worker_send_reply(int sock, int type, uint64_t id, int status, const char *content_type,
                      const void *body, size_t len, int64_t json_len, const uint64_t *dur_ns);

/* Sends a template's IPC_READY: its phase times and the activation memory
 * of its largest batch (ipc_msg.mem_bytes). */
int worker_send_ready(int sock, const uint64_t dur_ns[3], uint64_t mem_bytes);

/* Sends a {"error": msg} reply packet of `type`. */
int worker_send_error(int sock, int type, uint64_t id, int status, const char *msg);

/* Loads the model at path at `precision` (through the plan cache when
 * plan_cache is set, opening the plan by sha256 when that is known; see
 * plan_load.h) and prepares a session for
 * `threads`, keeping plan_cache_size prepared plans (0: the engine's
 * default), whose plans may take at most memory_mb MiB of activation
 * memory (0: only the machine's memory bounds them; a model over it at its
 * declared shapes fails here naming both numbers, a request over it gets
 * 413 before that memory is allocated); with max_batch > 0 the model must
 * pass rouse_model_batch_check and the session takes batches along dim 0
 * (and room for their plans); streams > 1 (a generator's streams
 * decoded together) lets MatMuls of that many rows read their weights in
 * place (rouse_session_options.gemv_max_rows). dur gets the load and prepare times in ns and
 * 1 in dur[2] when the plan came from the cache. On failure, sends serve IPC_READY with 400
 * and the engine's message (without the blob's path, which is serve's
 * business: the user knows the digest) and returns negative. */
int worker_open_model(int sock, const char *path, const char *sha256, const char *plan_cache,
                      const worker_precision *prec, int threads, int plan_cache_size, int memory_mb,
                      int max_batch, int streams, struct rouse_model **m, struct rouse_session **s,
                      uint64_t dur[3]);

#endif
