/*
 * The pool's statistics: the last cold starts with their phase times, the
 * Server-Timing of a reply, and the description of a function's processes
 * (GET /v1/functions/{name}). Read-only over the pool; the scheduler calls
 * it to record, nothing here calls back.
 */
#ifndef ROUSE_SERVER_POOL_STATS_H
#define ROUSE_SERVER_POOL_STATS_H

#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

/* How an instance came to be, for Rouse-Start and the cold-start record. */
typedef enum start_kind {
    START_WARM = 0, /* (a request served by an instance that was already up) */
    START_TEMPLATE, /* forked from a template that was ready */
    START_ZERO,     /* its template had to be started first */
} start_kind;

const char *start_kind_name(start_kind k);

/* One recorded cold start. */
typedef struct cold_start {
    char name[STORE_NAME_MAX + 1];
    int64_t version;
    int pid;
    start_kind kind;
    int64_t at_ms; /* wall clock */
    double queue_ms, template_ms, plan_open_ms, prepare_ms, spawn_ms, fork_ms, first_infer_ms;
    bool template_forked; /* START_ZERO: the template came from the zygote */
    bool template_kept;   /* START_ZERO: with its session opened and prepared there */
} cold_start;

#define COLD_STARTS_KEPT 64

typedef struct cold_log {
    cold_start ring[COLD_STARTS_KEPT]; /* newest at head - 1 */
    int head, n;
} cold_log;

/* Keeps a copy of c, dropping the oldest beyond COLD_STARTS_KEPT. */
void stats_record_cold(cold_log *log, const cold_start *c);

/* Server-Timing: the wait, split into the part spent starting the
 * request's instance and the rest, and the instance's own time. */
void stats_timing(char out[96], uint64_t queue_ns, uint64_t start_ns, uint64_t infer_ns);
/* stats_timing and the batch size the call ran in (Server-Timing
 * `batch;desc=N`), for a batching function's calls. */
void stats_timing_batch(char out[128], uint64_t queue_ns, uint64_t start_ns, uint64_t infer_ns,
                        int batch);

#endif
