/*
 * The template process of one function version: opens the model's compiled
 * plan, prepares a session (every kernel created, no OpenMP team started),
 * reports IPC_READY with the phase times, then only forks instances when
 * serve asks (IPC_SPAWN over its control socket; see ipc.h).
 *
 * Each instance is forked twice over (an intermediate child forks it and
 * exits at once) so that it is reparented to serve, which is a child
 * subreaper: serve reaps it and learns how it ended, and the instance keeps
 * serving when its template is killed. The instance uses the prepared
 * session directly; its activation memory is its own (copy-on-write pages)
 * and the plan's weights stay in the shared read-only file mapping.
 *
 * With o->sandbox on, the template enters its sandbox (sandbox.h) once its
 * kernels are prepared, before it says READY and forks anything; each
 * instance and spare takes its control groups, the tenant's ids and the
 * instance's filter right after its fork, before it touches its memory.
 */
#ifndef ROUSE_WORKER_TEMPLATE_H
#define ROUSE_WORKER_TEMPLATE_H

#include "worker/plan_load.h"
#include "worker/tok_files.h"
#include "worker/sandbox.h"

typedef struct template_opts {
    int fd;                   /* the control socket inherited from serve */
    const char *model_path;   /* the model file (a blob) */
    const char *plan_cache;   /* directory of compiled plans, or NULL to load the .onnx */
    const char *model_sha256; /* the model file's sha256 in hex when known, or NULL */
    const char *name;         /* function name, echoed as model_name by instances */
    const char *version;      /* version, echoed as model_version */
    int threads;              /* kernel threads of each instance; 0 means 1 */
    int weight_pages;         /* rouse_weight_pages: the copy template_warm keeps; 0 (4k): none */
    worker_precision prec;    /* what the plan is compiled at */
    int max_context;          /* > 0: its instances are text generators (instance_opts) */
    worker_tok_paths tok_paths; /* their tokenizer, loaded once here */
    const tok_tokenizer *tok;   /* set by template_main once loaded */
    int memory_mb;            /* the function's memory_mb: bounds activation memory; 0: none */
    int max_batch;            /* dynamic batching's largest batch: prepared before forking */
    int streams;              /* a generator's streams per instance (instance_opts) */
    int prefill_batch, prefill_delay_us; /* their prefill in groups (instance_opts) */
    sandbox_opts sandbox;     /* entered once prepared (isolation "sandbox"), or off */
} template_opts;

/* Runs the template until its control socket closes. Returns the process
 * exit status: 0 after a clean end, 1 when the model failed to load
 * (reported to serve), 2 when the socket failed. Returns in forked
 * instances too, with the instance's status. */
int template_main(const template_opts *o);

/* Prepares, in the calling process, the kernels a template of o would
 * create, and keeps the opened plan and the session (TEMPLATE_MODEL_KEPT,
 * TEMPLATE_GEN_KEPT, below): a template forked from the caller afterwards
 * takes them whole; one whose session was dropped since prepares from
 * oneDNN's primitive cache, which keeps the generated code. Only an
 * existing compiled plan is opened (worker_plan_path; never compiled
 * here). With o->weight_pages other than 4k it also keeps a copy of the
 * plan in huge pages (rouse/weight_pages.h), which templates forked
 * afterwards read instead of the file. 1 when it prepared or copied, 0
 * when the model is kept already (or, when its key does not fit, was
 * warmed before: the last TEMPLATE_WARM_KEPT are remembered) and its copy
 * kept, < 0 when it could not (no plan, a plan for another CPU). Starts no
 * OpenMP team. */
int template_warm(const template_opts *o);

#define TEMPLATE_WARM_KEPT 64

/* A generator (o->max_context > 0) is kept whole: template_warm keeps its
 * opened plan and its session with every generation plan prepared (and
 * reads the weights from the huge-page copy, made first), and a template
 * forked afterwards with the same plan, threads, max_context, streams and
 * memory_mb takes them instead of opening and preparing. At most this many
 * are kept, the oldest dropped first; their cost is the prepared plans'
 * memory in the zygote, shared with its forks until written. */
#define TEMPLATE_GEN_KEPT 2

/* Any other model is kept the same way (its session with every batch
 * size prepared), by plan, threads, max_batch and memory_mb: at most this
 * many, the oldest dropped first. A prepared session's own memory is its
 * kernels' and plan's bookkeeping (resnet18: about 1.4 MiB, what its
 * template holds of its own); the weights stay in the plan's mapping or
 * huge-page copy, shared. */
#define TEMPLATE_MODEL_KEPT 16

#endif
