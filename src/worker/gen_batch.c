/*
 * Continuous batching of decode steps (gen_batch.h). Invariants between
 * steps, for active rows r < rows: len[r] of the row's mask entries in
 * [0, P) are 1, those at P and above are 0; P < bucket or P == bucket
 * (the next step makes room first); the cache buffers and the mask are
 * laid out for `bucket` (row strides heads x bucket x head_dim floats and
 * bucket + 1 entries). rows == 0 means bucket == 0 and P == 0.
 */
#include "worker/gen_batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

struct gen_batch {
    gen_model m;
    int cap; /* rows allocated: m.streams */
    int n_in;
    rouse_tensor *in;
    char (*names)[GEN_NAME_MAX];
    int out_logits;
    int *out_present; /* 2 x layers output indices */
    float **cache;    /* 2 x layers buffers of cap x heads x max_context x head_dim, or NULL */
    int64_t *ids, *pos, *mask;
    int *len;  /* positions row r holds */
    int *slot; /* scratch for compaction: max_context */
    int rows, bucket, P;
};

static int find_output(const rouse_model *m, const char *name)
{
    rouse_tensor_info ti;
    for (int i = 0; i < rouse_model_n_outputs(m); i++)
        if (rouse_model_output(m, i, &ti) == 0 && strcmp(ti.name, name) == 0) return i;
    return -1;
}

void gen_batch_destroy(gen_batch *b)
{
    if (!b) return;
    for (int i = 0; b->cache && i < 2 * b->m.n_layers; i++)
        free(b->cache[i]);
    free(b->cache);
    free(b->in);
    free(b->names);
    free(b->out_present);
    free(b->ids);
    free(b->pos);
    free(b->mask);
    free(b->len);
    free(b->slot);
    free(b);
}

int gen_batch_create(const rouse_model *m, const gen_model *gm, gen_batch **out, rouse_errbuf *eb)
{
    *out = NULL;
    if (!gm->has_position_ids)
        return rouse_err_set(eb, ROUSE_EINVAL,
                             "decoding several streams together (scaling.concurrency > 1) needs "
                             "the model's position_ids input");
    if (gm->streams < 1 || gm->streams > GEN_STREAMS_MAX)
        return rouse_err_set(eb, ROUSE_EINVAL, "streams must be from 1 to %d", GEN_STREAMS_MAX);
    gen_batch *b = calloc(1, sizeof(*b));
    if (!b) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    b->m = *gm;
    b->cap = gm->streams;
    int L = gm->n_layers;
    b->n_in = 3 + 2 * L;
    size_t ctx = (size_t)gm->max_context + 1, cap = (size_t)b->cap;
    b->in = calloc((size_t)b->n_in, sizeof(*b->in));
    b->names = calloc((size_t)b->n_in, sizeof(*b->names));
    b->out_present = calloc((size_t)(2 * L), sizeof(int));
    b->cache = calloc((size_t)(2 * L), sizeof(float *));
    b->ids = calloc(cap, sizeof(int64_t));
    b->pos = calloc(cap, sizeof(int64_t));
    b->mask = calloc(cap * ctx, sizeof(int64_t));
    b->len = calloc(cap, sizeof(int));
    b->slot = calloc(ctx, sizeof(int));
    if (!b->in || !b->names || !b->out_present || !b->cache || !b->ids || !b->pos || !b->mask ||
        !b->len || !b->slot) {
        gen_batch_destroy(b);
        return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    }
    b->out_logits = find_output(m, "logits");
    for (int l = 0; l < L; l++)
        for (int kv = 0; kv < 2; kv++) {
            char name[GEN_NAME_MAX];
            snprintf(name, sizeof(name), "present.%d.%s", l, kv ? "value" : "key");
            b->out_present[2 * l + kv] = find_output(m, name);
        }
    if (b->out_logits < 0) {
        gen_batch_destroy(b);
        return rouse_err_set(eb, ROUSE_EINVAL, "the model has no output 'logits'");
    }
    *out = b;
    return 0;
}

int gen_batch_rows(const gen_batch *b)
{
    return b->rows;
}

static int cache_alloc(gen_batch *b, rouse_errbuf *eb)
{
    if (b->cache[0]) return 0;
    size_t n =
        (size_t)b->cap * (size_t)b->m.n_heads * (size_t)b->m.max_context * (size_t)b->m.head_dim;
    for (int i = 0; i < 2 * b->m.n_layers; i++)
        if (!(b->cache[i] = calloc(n, sizeof(float))))
            return rouse_err_set(eb, ROUSE_ENOMEM,
                                 "out of memory for the KV cache of %d streams (%zu MiB)", b->cap,
                                 2 * (size_t)b->m.n_layers * n * sizeof(float) >> 20);
    return 0;
}

/* Lays cache and mask out for `to` positions per head (to > bucket),
 * keeping slots [0, P) of every active row; the mask's new slots are 0. */
static void grow(gen_batch *b, int to)
{
    const int from = b->bucket, H = b->m.n_heads;
    const size_t D = (size_t)b->m.head_dim, keep = (size_t)b->P * D;
    /* The last block first: every destination lies at or above its source. */
    for (int i = 0; i < 2 * b->m.n_layers; i++) {
        float *c = b->cache[i];
        for (int blk = b->rows * H - 1; blk > 0; blk--)
            memmove(c + (size_t)blk * (size_t)to * D, c + (size_t)blk * (size_t)from * D,
                    keep * sizeof(float));
    }
    for (int r = b->rows - 1; r >= 0; r--) {
        int64_t *dst = b->mask + (size_t)r * (size_t)(to + 1);
        memmove(dst, b->mask + (size_t)r * (size_t)(from + 1), (size_t)b->P * sizeof(int64_t));
        memset(dst + b->P, 0, (size_t)(to + 1 - b->P) * sizeof(int64_t));
    }
    b->bucket = to;
}

/* Moves every row's filled slots to its front, in order: P becomes the
 * longest row. */
static void compact(gen_batch *b)
{
    const int B = b->bucket, H = b->m.n_heads;
    const size_t D = (size_t)b->m.head_dim;
    int P = 0;
    for (int r = 0; r < b->rows; r++) {
        int64_t *mk = b->mask + (size_t)r * (size_t)(B + 1);
        int n = 0;
        for (int j = 0; j < b->P; j++)
            if (mk[j]) b->slot[n++] = j;
        for (int i = 0; i < 2 * b->m.n_layers; i++)
            for (int h = 0; h < H; h++) {
                float *c = b->cache[i] + ((size_t)r * (size_t)H + (size_t)h) * (size_t)B * D;
                for (int k = 0; k < n; k++)
                    if (b->slot[k] != k)
                        memmove(c + (size_t)k * D, c + (size_t)b->slot[k] * D, D * sizeof(float));
            }
        for (int j = 0; j <= B; j++)
            mk[j] = j < n;
        b->len[r] = n;
        if (n > P) P = n;
    }
    b->P = P;
}

int gen_batch_join(gen_batch *b, const gen *g, int *row, rouse_errbuf *eb)
{
    if (b->rows == b->cap)
        return rouse_err_set(eb, ROUSE_EBUSY, "all %d streams of the instance are taken", b->cap);
    int rc = cache_alloc(b, eb);
    if (rc < 0) return rc;
    int gb, L;
    gen_cache(g, 0, &gb, &L);
    if (L < 1 || L >= b->m.max_context)
        return rouse_err_set(eb, ROUSE_EINVAL, "a sequence of %d positions cannot decode", L);
    if (b->rows == 0) {
        b->bucket = gen_bucket_for(&b->m, L + 1);
        b->P = 0;
    }
    int need = (L > b->P ? L : b->P) + 1;
    if (need > b->bucket && gen_bucket_for(&b->m, need) > b->bucket)
        grow(b, gen_bucket_for(&b->m, need));
    const int r = b->rows, B = b->bucket, H = b->m.n_heads;
    const size_t D = (size_t)b->m.head_dim;
    for (int i = 0; i < 2 * b->m.n_layers; i++) {
        const float *src = gen_cache(g, i, &gb, &L);
        for (int h = 0; h < H; h++)
            memcpy(b->cache[i] + ((size_t)r * (size_t)H + (size_t)h) * (size_t)B * D,
                   src + (size_t)h * (size_t)gb * D, (size_t)L * D * sizeof(float));
    }
    int64_t *mk = b->mask + (size_t)r * (size_t)(B + 1);
    for (int j = 0; j <= B; j++)
        mk[j] = j < L;
    b->len[r] = L;
    if (L > b->P) b->P = L;
    b->rows++;
    *row = r;
    return 0;
}

int gen_batch_leave(gen_batch *b, int r)
{
    int last = b->rows - 1;
    if (r < 0 || r > last) return -1;
    b->rows--;
    if (b->rows == 0) {
        b->bucket = 0;
        b->P = 0;
        return -1;
    }
    if (r == last) return -1;
    const int B = b->bucket, H = b->m.n_heads;
    const size_t D = (size_t)b->m.head_dim, row = (size_t)H * (size_t)B * D;
    for (int i = 0; i < 2 * b->m.n_layers; i++)
        memcpy(b->cache[i] + (size_t)r * row, b->cache[i] + (size_t)last * row,
               row * sizeof(float));
    memcpy(b->mask + (size_t)r * (size_t)(B + 1), b->mask + (size_t)last * (size_t)(B + 1),
           (size_t)(B + 1) * sizeof(int64_t));
    b->len[r] = b->len[last];
    return last;
}

/* Makes slot P free inside the bucket. */
static int make_room(gen_batch *b, rouse_errbuf *eb)
{
    if (b->P < b->bucket) return 0;
    int longest = 0;
    for (int r = 0; r < b->rows; r++)
        if (b->len[r] > longest) longest = b->len[r];
    if (b->bucket >= b->m.max_context || longest <= b->bucket / 2) {
        int was = b->P;
        compact(b);
        LOG_DEBUG("generate", "batch of %d streams compacted from %d to %d positions", b->rows, was,
                  b->P);
    } else
        grow(b, gen_bucket_for(&b->m, b->P + 1));
    if (b->P >= b->bucket)
        return rouse_err_set(eb, ROUSE_EINVAL,
                             "a stream of %d positions has no room left in the context of %d",
                             longest, b->m.max_context);
    return 0;
}

int gen_batch_step(gen_batch *b, rouse_session *s, const int32_t *tokens, const float **logits,
                   rouse_errbuf *eb)
{
    if (b->rows < 1) return rouse_err_set(eb, ROUSE_EINVAL, "no stream to decode");
    int rc = make_room(b, eb);
    if (rc < 0) return rc;
    const int rows = b->rows, Bp = gen_batch_size(b->cap, rows), B = b->bucket, P = b->P;
    const int H = b->m.n_heads;
    const size_t D = (size_t)b->m.head_dim;
    for (int r = 0; r < Bp; r++) {
        int64_t *mk = b->mask + (size_t)r * (size_t)(B + 1);
        if (r >= rows) { /* padding: attends to itself only */
            memset(mk, 0, (size_t)B * sizeof(int64_t));
            b->ids[r] = 0;
            b->pos[r] = 0;
        } else {
            b->ids[r] = tokens[r];
            b->pos[r] = b->len[r];
        }
        mk[B] = 1;
    }
    gen_run_shapes(&b->m, Bp, 1, B, b->in, b->names);
    b->in[0].data = b->ids;
    b->in[1].data = b->mask;
    b->in[2].data = b->pos;
    for (int i = 0; i < 2 * b->m.n_layers; i++)
        b->in[3 + i].data = b->cache[i];
    if ((rc = rouse_session_run(s, b->in, b->n_in, eb)) < 0) return rc;
    rouse_tensor t;
    if ((rc = rouse_session_output(s, b->out_logits, &t)) < 0)
        return rouse_err_set(eb, rc, "no logits output");
    if (t.rank != 3 || t.shape[0] != Bp || t.shape[1] != 1 || t.shape[2] != b->m.vocab)
        return rouse_err_set(eb, ROUSE_EMISMATCH, "logits have an unexpected shape");
    *logits = t.data;
    for (int i = 0; i < 2 * b->m.n_layers; i++) {
        rouse_tensor p;
        if ((rc = rouse_session_output(s, b->out_present[i], &p)) < 0)
            return rouse_err_set(eb, rc, "no present output");
        if (p.rank != 4 || p.shape[0] != Bp || p.shape[1] != H || p.shape[2] != B + 1 ||
            p.shape[3] != (int64_t)D)
            return rouse_err_set(eb, ROUSE_EMISMATCH,
                                 "%s has shape [%lld, %lld, %lld, %lld], expected [%d, %d, %d, %d]",
                                 p.name, (long long)p.shape[0], (long long)p.shape[1],
                                 (long long)p.shape[2], (long long)p.shape[3], Bp, H, B + 1,
                                 (int)D);
        const float *src = p.data;
        for (int r = 0; r < rows; r++)
            for (int h = 0; h < H; h++) {
                size_t blk = (size_t)r * (size_t)H + (size_t)h;
                memcpy(b->cache[i] + (blk * (size_t)B + (size_t)P) * D,
                       src + (blk * (size_t)(B + 1) + (size_t)B) * D, D * sizeof(float));
            }
    }
    for (int r = 0; r < rows; r++) {
        int64_t *mk = b->mask + (size_t)r * (size_t)(B + 1);
        mk[P] = 1;
        mk[B] = 0;
        b->len[r]++;
    }
    b->P = P + 1;
    return 0;
}

int gen_batch_check(const gen_batch *b, rouse_errbuf *eb)
{
    if (b->rows == 0) {
        if (b->bucket || b->P)
            return rouse_err_set(eb, ROUSE_EINTERNAL, "an empty batch keeps a layout");
        return 0;
    }
    if (b->P > b->bucket || b->bucket > b->m.max_context)
        return rouse_err_set(eb, ROUSE_EINTERNAL, "P %d past the bucket %d", b->P, b->bucket);
    for (int r = 0; r < b->rows; r++) {
        const int64_t *mk = b->mask + (size_t)r * (size_t)(b->bucket + 1);
        int n = 0;
        for (int j = 0; j <= b->bucket; j++) {
            if (mk[j] && j >= b->P)
                return rouse_err_set(eb, ROUSE_EINTERNAL, "row %d: slot %d past P", r, j);
            n += mk[j] != 0;
        }
        if (n != b->len[r])
            return rouse_err_set(eb, ROUSE_EINTERNAL, "row %d: %d slots for %d positions", r, n,
                                 b->len[r]);
    }
    return 0;
}
