/*
 * Text generation inside an instance: a decoder with a KV cache in the
 * layout Hugging Face's ONNX exports use (input_ids, attention_mask,
 * optionally position_ids, past_key_values.N.key/.value [batch, heads,
 * past, head_dim] -> logits, present.N.key/.value), run as one prefill of
 * the prompt and then one decode step per token.
 *
 * The cache: one buffer per layer and K/V, allocated once per instance for
 * max_context positions and reused by every request. It is handed to the
 * engine as the past input in place (inputs are read where they lie), laid
 * out for a bucket of positions (a power of two, at least 16, at most
 * max_context) of which the first n hold the sequence and the rest are
 * masked out through attention_mask. Each step then copies only the new
 * position's keys and values from present.N into slot n (heads x head_dim
 * floats per layer, never the cache); when n reaches the bucket, the
 * buffer is laid out again for the next one (once per doubling). Fixed
 * bucket shapes let the session keep one prepared plan per bucket instead
 * of preparing one per step. This needs the model's position_ids input
 * (positions do not follow from the padded past length); a model without
 * it runs with the exact past length, which lays the cache out again at
 * every step.
 */
#ifndef ROUSE_WORKER_GENERATE_H
#define ROUSE_WORKER_GENERATE_H

#include <stdbool.h>
#include <stdint.h>

#include "rouse/engine.h"
#include "worker/sampler.h"

#define GEN_MAX_LAYERS 128

/* What a model looks like as a generator, found by gen_model_check. */
typedef struct gen_model {
    int n_layers, n_heads, head_dim, vocab;
    bool has_position_ids;
    int max_context;
    /* Streams an instance decodes together (gen_batch.h), set by the
     * caller after gen_model_check (which sets 1); at most GEN_STREAMS_MAX. */
    int streams;
} gen_model;

/* The most streams one instance decodes together (scaling.concurrency). */
#define GEN_STREAMS_MAX 32
#define GEN_NAME_MAX 48

/* The decode batch sizes prepared for `streams` streams: the powers of two
 * below it, then streams itself (2, 4, 6 for 6). sizes[] has room for 8;
 * returns the count. A batch of b active streams runs at the smallest size
 * >= b (gen_batch_size; one stream runs alone, as gen_run's steps). */
int gen_batch_sizes(int streams, int sizes[8]);
int gen_batch_size(int streams, int active);

/* The model's inputs for a run of `rows` sequences of `seq` new tokens
 * over a past of `past` positions per head, in the order gen_run feeds
 * them (input_ids, attention_mask, [position_ids], past k/v per layer):
 * names, dtypes and shapes set, data NULL, nbytes for the shape. in[] and
 * names[] have 3 + 2 x layers entries; returns how many were set. */
int gen_run_shapes(const gen_model *gm, int rows, int seq, int past, rouse_tensor *in,
                   char (*names)[GEN_NAME_MAX]);

/* The cache's layout size (positions per head) for a sequence that must
 * hold `need` positions: a power of two from 16 up to max_context with
 * position_ids, exactly `need` without. */
int gen_bucket_for(const gen_model *gm, int need);

/* Checks that m has the KV-cache layout: every input and output named
 * above, with consistent heads and head_dim; the error names what is
 * missing or wrong. max_context 0 means 1024. */
int gen_model_check(const rouse_model *m, int max_context, gen_model *out, rouse_errbuf *eb);

/* The deploy check of a generator (gen_model_check first): prepares s's
 * plans for the largest runs max_context allows (a prefill of the whole
 * context, a decode step over a full cache) and adds the KV cache an
 * instance allocates for max_context positions. 0 when that fits in
 * memory_mb (0: no limit); ROUSE_ETOOBIG with both numbers in eb when it
 * does not; another error when a plan cannot be prepared. */
int gen_check_memory(const gen_model *gm, rouse_session *s, int memory_mb, rouse_errbuf *eb);

typedef struct gen gen;

/* A generator for a checked model; the cache is allocated on first use.
 * Owned: free with gen_destroy. */
int gen_create(const rouse_model *m, const gen_model *gm, gen **out, rouse_errbuf *eb);
void gen_destroy(gen *g);
const gen_model *gen_model_of(const gen *g);

/* Prefill lengths prepared ahead by gen_prepare: every padded length up
 * to this many tokens. */
#define GEN_PREFILL_AHEAD 64

/* Prepares on s, without running, the plans generation uses (for a model
 * with position_ids), one per call: plan *k, then *k advances. 1 when one
 * was prepared, 0 when none is left, < 0 on error. The order: the prefill
 * of the shortest prompts (PREFILL_STEP tokens) and the decode step of
 * the first cache bucket (what a short request needs), with several
 * streams (gm.streams) the decode step of each batch size at that bucket,
 * then the prefill of every padded prompt length up to GEN_PREFILL_AHEAD,
 * then the decode steps of every bucket up to max_context (one stream,
 * then each batch size). A process forked afterwards
 * generates without preparing those (longer prompts still prepare their
 * prefill when they come). A model without position_ids runs exact
 * lengths: nothing to prepare. */
int gen_prepare_step(gen *g, rouse_session *s, int *k, rouse_errbuf *eb);
/* How many of them a template prepares before its first fork. */
#define GEN_PREPARE_FIRST 2

typedef struct gen_params {
    int max_tokens;
    sampler_params sp;
    uint64_t seed;
} gen_params;

/* Called with each generated token; returns true to stop there (a stop
 * string, a client that left). */
typedef bool (*gen_emit_fn)(void *user, int token);

typedef struct gen_stats {
    int prompt_tokens, completion_tokens;
    bool stopped;        /* emit asked to stop (else max_tokens was reached) */
    uint64_t prefill_ns; /* the prefill run, to the first token chosen */
    uint64_t decode_ns;  /* every decode step after it */
    uint64_t plans_prepared; /* engine plans prepared during the run (new buckets) */
} gen_stats;

/* Generates from prompt[0..n_prompt) (token ids, checked against the
 * vocabulary) on session s: prefill, then up to max_tokens tokens, each
 * passed to emit as soon as it is chosen. n_prompt + max_tokens must fit
 * max_context (the caller checks; ROUSE_EINVAL otherwise). */
int gen_run(gen *g, rouse_session *s, const int32_t *prompt, int n_prompt, const gen_params *p,
            gen_emit_fn emit, void *user, gen_stats *st, rouse_errbuf *eb);

/* The prefill alone, for a stream that then decodes in a batch
 * (gen_batch.h): checks the prompt as gen_run does, runs it, and points
 * *logits at the last position's logits (valid until the next run on s).
 * The sequence's keys and values are then in g's cache (gen_cache). */
int gen_prefill(gen *g, rouse_session *s, const int32_t *prompt, int n_prompt, int max_tokens,
                const float **logits, rouse_errbuf *eb);

/* Tokens of each prefill chunk after the first (gen_prefill_next). */
#define GEN_PREFILL_CHUNK 64

/* The prefill in chunks, for a generator that decodes several streams
 * (gen_streams.h), which runs the others' decode steps between the chunks
 * of a joining prompt. gen_prefill_begin checks the prompt as gen_prefill
 * does (the model must take position_ids); each gen_prefill_next then runs
 * the next chunk: the first takes the prompt's length modulo
 * GEN_PREFILL_CHUNK (a whole chunk when that is 0; the whole prompt when
 * it is no longer than one), padded to a multiple of 8 as a prefill is,
 * and every later one exactly GEN_PREFILL_CHUNK tokens over the cache as
 * the past (laid out for the bucket that holds them, the slots not yet
 * filled masked out). Returns 0 while chunks remain, 1 after the last,
 * with *logits then pointing at the last position's logits (valid until
 * the next run on s) and the sequence in g's cache as after gen_prefill;
 * < 0 on error. The prompt (borrowed) must stay valid until the last. */
int gen_prefill_begin(gen *g, const int32_t *prompt, int n_prompt, int max_tokens,
                      rouse_errbuf *eb);
int gen_prefill_next(gen *g, rouse_session *s, const float **logits, rouse_errbuf *eb);

/* The prefill of k prompts together (a group that arrived together, each
 * of at most GEN_PREFILL_CHUNK tokens): one run of `rows` rows (rows >= k,
 * a prepared batch size; the rows past k are padding), each prompt padded
 * to the longest, rounded up to a multiple of 8, and masked to its own
 * length. Each prompt is checked as gen_prefill checks it. Then
 * gen_prefill_take(j) puts prompt j's keys and values into g's cache (as
 * after gen_prefill: gen_cache) and points *logits at its last position's
 * (valid until the next run on s); take each j before the next run. */
int gen_prefill_group(gen *g, rouse_session *s, const int32_t *const *prompts, const int *lens,
                      const int *max_tokens, int k, int rows, rouse_errbuf *eb);
int gen_prefill_take(gen *g, rouse_session *s, int j, const float **logits, rouse_errbuf *eb);

/* Buffer i (2 x layer + 0 for keys, 1 for values) of g's cache, laid out
 * [heads, *bucket, head_dim], holding positions [0, *n). */
const float *gen_cache(const gen *g, int i, int *bucket, int *n);

#endif
