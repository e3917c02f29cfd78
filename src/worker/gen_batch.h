/*
 * Continuous batching of a generator's decode steps: the streams an
 * instance serves at once (scaling.concurrency) decode together, one run
 * of the model per step for all of them, as one batch of rows.
 *
 * Each stream is prefilled alone (gen_prefill, batch 1) and then joins:
 * its keys and values are copied once from the generator's cache into its
 * row of the batch's cache, one buffer per layer and K/V laid out
 * [rows, heads, bucket, head_dim] (buckets as generate.h's, a power of two
 * up to max_context). A step runs input_ids [B, 1], attention_mask
 * [B, bucket + 1], position_ids [B, 1] (each row its own position) and the
 * cache as the past in place, B the smallest prepared batch size that
 * holds the active rows (gen_batch_sizes; the rows past them are padding
 * that attends only to itself). All rows share the next free slot P: each
 * row's new keys and values go there, and each row's mask covers exactly
 * the slots its own sequence filled. A row that joined with a shorter
 * sequence than P has a gap of masked slots; attention does not depend on
 * where a key lies (positions come from position_ids), so a stream decodes
 * the same tokens as alone, up to the order of floating-point sums.
 *
 * When P reaches the bucket, the cache is laid out for the next bucket
 * (once per doubling), or compacted (every row's slots moved to its
 * front, P the longest row) when the gaps are half the bucket or it is
 * max_context already. A stream that finishes leaves: the last row moves
 * into its place, once.
 *
 * Needs the model's position_ids input (gen_model.has_position_ids).
 */
#ifndef ROUSE_WORKER_GEN_BATCH_H
#define ROUSE_WORKER_GEN_BATCH_H

#include <stdint.h>

#include "rouse/engine.h"
#include "worker/generate.h"

typedef struct gen_batch gen_batch;

/* A batch of up to gm->streams rows for model m (gen_model_check passed);
 * the cache is allocated on the first join. Owned: free with
 * gen_batch_destroy. ROUSE_EINVAL without position_ids. */
int gen_batch_create(const rouse_model *m, const gen_model *gm, gen_batch **out, rouse_errbuf *eb);
void gen_batch_destroy(gen_batch *b);

/* Rows active now. */
int gen_batch_rows(const gen_batch *b);

/* Adds the sequence g holds (just prefilled: gen_prefill) as the last row;
 * *row gets its index. ROUSE_EBUSY when every row is taken. */
int gen_batch_join(gen_batch *b, const gen *g, int *row, rouse_errbuf *eb);

/* Removes row r. The last row moves into its place: returns its old index
 * (whose stream is now row r), or -1 when r was the last. */
int gen_batch_leave(gen_batch *b, int r);

/* One decode step of every row: tokens[r] is row r's last token (at its
 * next position). *logits then points at [rows, vocab] floats, row r's
 * next-token logits at r x vocab (valid until the next run on s). Every
 * row must still have room: its length + 1 <= max_context. */
int gen_batch_step(gen_batch *b, rouse_session *s, const int32_t *tokens, const float **logits,
                   rouse_errbuf *eb);

/* Checks the invariants above (a test hook): 0, or -1 with eb saying which. */
int gen_batch_check(const gen_batch *b, rouse_errbuf *eb);

#endif
