/*
 * The streams of a generating instance that serves several at once
 * (scaling.concurrency N > 1): each OpenAI-style request (openai.h) is
 * prefilled alone, in chunks of GEN_PREFILL_CHUNK tokens (generate.h), then
 * decodes in the instance's batch (gen_batch.h) with the others, one step
 * for all of them at a time. A request that comes while others decode
 * waits in arrival order; each step of the batch is followed by one chunk
 * of the first waiting prompt, so a long prompt delays the others' next
 * token by one chunk's run, not by its whole prefill. Each
 * stream keeps its own sampler and seed, stop strings, max_tokens and
 * usage counts, and ends on its own: its final reply goes out through the
 * caller's reply function as soon as it is done, while the others go on.
 *
 * The instance's loop (instance.c) reads serve's messages between steps
 * without blocking while streams are active: a new request starts a
 * stream, IPC_CANCEL ends the stream it names (and only that one).
 */
#ifndef ROUSE_WORKER_GEN_STREAMS_H
#define ROUSE_WORKER_GEN_STREAMS_H

#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "rouse/engine.h"
#include "text/tokenizer.h"
#include "worker/generate.h"
#include "worker/ipc.h"
#include "worker/openai_request.h"

/* Sends the final reply of request id: status, content type, warning and
 * timings in rep, body out (lent: the shared region is lent to it). t0:
 * when the request came. < 0 when the socket failed. */
typedef int (*gen_reply_fn)(void *user, uint64_t id, bool lent, const openai_reply *rep,
                            const rouse_buf *out, uint64_t t0);

typedef struct gen_streams_opts {
    int sock;
    const char *name; /* the function's, as the model's name */
    const tok_tokenizer *tok;
    size_t arena_limit; /* per request's parsed body (0: none) */
    /* The function's "batching" (prefill_batch > 1): a new stream waits up
     * to prefill_delay_ns after its arrival for company, and the waiting
     * streams whose prompts fit one chunk are prefilled together, up to
     * prefill_batch of them in one run (gen_prefill_group). */
    int prefill_batch;
    uint64_t prefill_delay_ns;
    gen_reply_fn reply;
    void *user;
} gen_streams_opts;

typedef struct gen_streams gen_streams;

/* Streams for model m on session s (both borrowed), gm from
 * gen_model_check with gm->streams > 1. Owned: gen_streams_destroy. */
int gen_streams_create(const rouse_model *m, rouse_session *s, const gen_model *gm,
                       const gen_streams_opts *o, gen_streams **out, rouse_errbuf *eb);
void gen_streams_destroy(gen_streams *g);

/* Streams decoding now or waiting to join. */
int gen_streams_active(const gen_streams *g);

/* A new request (IPC_GENERATE; body borrowed for the call; lent: it came
 * in the shared region): decoded (a bad one is answered here) and queued
 * to be prefilled by the next steps. 0, or < 0 when the socket failed. */
int gen_streams_start(gen_streams *g, const ipc_msg *req, const void *body, bool lent);

/* How long the instance may wait for a message before it has work to do
 * (0: it has some now): while the streams that wait for company (above)
 * are all there is. */
uint64_t gen_streams_idle_ns(const gen_streams *g);

/* IPC_CANCEL m for request m->id: its stream ends now, decoding or still
 * waiting: the client left (finish reason "cancelled"), or with status 504
 * its deadline passed (the error, the function's timeout_ms in json_len).
 * Nothing when no stream has that id. < 0: socket failed. */
int gen_streams_cancel(gen_streams *g, const ipc_msg *m);

/* One decode step of every active stream, then one chunk of the first
 * waiting stream's prefill (which joins the batch after its last), or the
 * prefill of a group of waiting streams together; the streams that end
 * are answered. < 0 when the socket failed. */
int gen_streams_step(gen_streams *g);

#endif
