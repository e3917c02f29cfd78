/*
 * Dynamic batching inside the instance and its template: the batch sizes a
 * template prepares before it forks, and running one IPC_BATCH message
 * (worker/ipc.h) as engine runs concatenated along dim 0.
 *
 * Requests of a batch message are decoded one by one; one that does not
 * decode (wrong shape or dtype) gets its own error and joins no run.
 * Requests whose inputs agree in dtype and in every dim but the first run
 * together (others in runs of their own: no padding of sequence lengths);
 * every run uses a plan the template prepared (a power of two): a run's
 * rows are padded with zeros up to the next power of two when that costs
 * less than cutting it to the largest power of two that fits and running
 * the rest after it, by the engine's run times at those sizes measured so
 * far in this instance; until they are known, padding when it wastes at
 * most a quarter of the run.
 * Each request gets its own rows of every output, encoded as an unbatched
 * reply would be.
 */
#ifndef ROUSE_WORKER_BATCH_H
#define ROUSE_WORKER_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/arena.h"
#include "common/buf.h"
#include "rouse/engine.h"

/* Session options of a function that batches up to max_batch (0: none):
 * dim 0 of the inputs free, and room in the plan cache for every batch
 * size prepared plus the default's for other shapes. */
void worker_batch_session_options(int max_batch, rouse_session_options *so);

/* Prepares s for batches of 1, 2, 4 ... max_batch rows at the model's
 * declared shapes, without running anything (the template forks after),
 * largest last; *mem_bytes gets that plan's activation memory. A model
 * with another dynamic dim (a sequence length) prepares nothing (its
 * shapes are known only from requests) and *mem_bytes stays 0. */
int worker_prepare_batches(rouse_model *m, rouse_session *s, int max_batch, uint64_t *mem_bytes,
                           rouse_errbuf *eb);

/* Prepared sizes 1, 2, 4 ... 256 (FN_BATCH_MAX). */
#define WORKER_BATCH_SIZES 9

/* The engine's run time at each prepared size (index log2 of the rows), a
 * moving average, 0 until measured: kept by the instance across messages. */
typedef struct worker_batch_times {
    uint64_t ns[WORKER_BATCH_SIZES];
} worker_batch_times;

/* Records a run of `rows` rows that took ns (rows not a prepared size:
 * nothing). */
void worker_batch_time(worker_batch_times *t, int64_t rows, uint64_t ns);

/* Whether a run of r rows (not a power of two) is padded up to the next
 * power of two p rather than cut to p / 2 with the rest run after it: the
 * cheaper by t's times when they are known (t may be NULL), else when the
 * padding wastes at most a quarter of p. */
bool worker_batch_pad(const worker_batch_times *t, int64_t r);

typedef struct worker_batch_ctx {
    const char *name, *version; /* echoed in each response */
    rouse_model *m;
    rouse_session *s;
    int max_batch;
    rouse_arena *arena; /* per message: decoded requests, concatenated inputs */
    /* Spare room of the shared region past the request bodies (NULL when
     * the message came in a memfd): concatenated inputs go there first. */
    void *scratch;
    size_t scratch_len;
    worker_batch_times *times; /* the instance's, updated by each run */
} worker_batch_ctx;

/* Runs the batch message body[0..len): appends the reply body (an
 * ipc_batch_head, the results, the reply bodies) to out. < 0 only for a
 * malformed message (its table does not fit the body), with eb set. */
int worker_run_batch(worker_batch_ctx *c, const void *body, uint64_t len, rouse_buf *out,
                     rouse_errbuf *eb);

#endif
