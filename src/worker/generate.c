/*
 * The generation loop (generate.h). Invariants between steps: the cache
 * buffers are laid out for `bucket` positions per head ([heads, bucket,
 * head_dim]) and hold the sequence in slots [0, n); n < bucket before a
 * decode step when the model takes position_ids, n == bucket without them.
 */
#include "worker/generate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/timeutil.h"
#include "worker/fault.h"

#define BUCKET_MIN 16
#define PREFILL_STEP 8

struct gen {
    gen_model m;
    int n_in;         /* 3 (or 2) + 2 x layers */
    rouse_tensor *in; /* input_ids, attention_mask, [position_ids], past k/v... */
    char (*names)[GEN_NAME_MAX];
    int out_logits;
    int *out_present; /* 2 x layers: output index of present.N.key / .value */
    float **cache;    /* 2 x layers buffers of heads x max_context x head_dim, or NULL */
    int bucket, n;
    int64_t *ids, *mask, *pos; /* max_context + 1 each (mask: + GEN_PREFILL_CHUNK) */
    const int32_t *prompt;     /* a prefill in chunks: the prompt, borrowed */
    int n_prompt, pre;         /* its length, and the tokens prefilled so far */
    int64_t *gids, *gmask, *gpos; /* a group's prefill: GEN_STREAMS_MAX x GEN_PREFILL_CHUNK */
    int g_rows, g_seq;            /* its run's shape */
    int g_len[GEN_STREAMS_MAX];   /* each prompt's length */
    sampler_scratch sc;
};

static int find_input(const rouse_model *m, const char *name, rouse_tensor_info *ti)
{
    for (int i = 0; i < rouse_model_n_inputs(m); i++)
        if (rouse_model_input(m, i, ti) == 0 && strcmp(ti->name, name) == 0) return i;
    return -1;
}

static int find_output(const rouse_model *m, const char *name, rouse_tensor_info *ti)
{
    for (int i = 0; i < rouse_model_n_outputs(m); i++)
        if (rouse_model_output(m, i, ti) == 0 && strcmp(ti->name, name) == 0) return i;
    return -1;
}

#define LAYOUT_HINT                                                                                \
    "text-generation needs Hugging Face's decoder layout: input_ids, attention_mask, "             \
    "[position_ids], past_key_values.N.key/.value -> logits, present.N.key/.value"

int gen_model_check(const rouse_model *m, int max_context, gen_model *out, rouse_errbuf *eb)
{
    memset(out, 0, sizeof(*out));
    out->max_context = max_context > 0 ? max_context : 1024;
    out->streams = 1;
    rouse_tensor_info ti;
    static const char *const need[] = {"input_ids", "attention_mask"};
    for (int i = 0; i < 2; i++) {
        if (find_input(m, need[i], &ti) < 0)
            return rouse_err_set(eb, ROUSE_EINVAL, "the model has no input '%s' (%s)", need[i],
                                 LAYOUT_HINT);
        if (ti.dtype != ROUSE_DT_INT64 || ti.rank != 2)
            return rouse_err_set(eb, ROUSE_EINVAL, "input '%s' must be int64 [batch, sequence]",
                                 need[i]);
    }
    out->has_position_ids = find_input(m, "position_ids", &ti) >= 0;
    if (out->has_position_ids && (ti.dtype != ROUSE_DT_INT64 || ti.rank != 2))
        return rouse_err_set(eb, ROUSE_EINVAL,
                             "input 'position_ids' must be int64 [batch, sequence]");
    if (find_output(m, "logits", &ti) < 0)
        return rouse_err_set(eb, ROUSE_EINVAL, "the model has no output 'logits' (%s)",
                             LAYOUT_HINT);
    if (ti.rank != 3 || ti.shape[2] <= 0 || ti.dtype != ROUSE_DT_FLOAT)
        return rouse_err_set(eb, ROUSE_EINVAL,
                             "output 'logits' must be float [batch, sequence, vocab] with a fixed "
                             "vocab");
    out->vocab = (int)ti.shape[2];
    char name[GEN_NAME_MAX];
    for (int l = 0;; l++) {
        snprintf(name, sizeof(name), "past_key_values.%d.key", l);
        if (find_input(m, name, &ti) < 0) break;
        if (l == GEN_MAX_LAYERS)
            return rouse_err_set(eb, ROUSE_EINVAL, "more than %d layers", GEN_MAX_LAYERS);
        for (int kv = 0; kv < 2; kv++) {
            snprintf(name, sizeof(name), "past_key_values.%d.%s", l, kv ? "value" : "key");
            if (find_input(m, name, &ti) < 0)
                return rouse_err_set(eb, ROUSE_EINVAL, "the model has no input '%s' (%s)", name,
                                     LAYOUT_HINT);
            if (ti.rank != 4 || ti.shape[1] <= 0 || ti.shape[3] <= 0 || ti.dtype != ROUSE_DT_FLOAT)
                return rouse_err_set(eb, ROUSE_EINVAL,
                                     "input '%s' must be float [batch, heads, past, head_dim] with "
                                     "fixed heads and head_dim",
                                     name);
            if (l == 0 && kv == 0) {
                out->n_heads = (int)ti.shape[1];
                out->head_dim = (int)ti.shape[3];
            } else if (ti.shape[1] != out->n_heads || ti.shape[3] != out->head_dim) {
                return rouse_err_set(eb, ROUSE_EINVAL,
                                     "input '%s' has %lld heads of %lld, the first layer %d of %d",
                                     name, (long long)ti.shape[1], (long long)ti.shape[3],
                                     out->n_heads, out->head_dim);
            }
            snprintf(name, sizeof(name), "present.%d.%s", l, kv ? "value" : "key");
            if (find_output(m, name, &ti) < 0)
                return rouse_err_set(eb, ROUSE_EINVAL, "the model has no output '%s' (%s)", name,
                                     LAYOUT_HINT);
        }
        out->n_layers = l + 1;
    }
    if (out->n_layers == 0)
        return rouse_err_set(eb, ROUSE_EINVAL,
                             "the model has no input 'past_key_values.0.key' (%s)", LAYOUT_HINT);
    int fed = 2 + (out->has_position_ids ? 1 : 0) + 2 * out->n_layers;
    if (rouse_model_n_inputs(m) != fed) {
        for (int i = 0; i < rouse_model_n_inputs(m); i++) {
            rouse_model_input(m, i, &ti);
            if (strcmp(ti.name, "input_ids") && strcmp(ti.name, "attention_mask") &&
                strcmp(ti.name, "position_ids") && strncmp(ti.name, "past_key_values.", 16))
                return rouse_err_set(
                    eb, ROUSE_EINVAL,
                    "the model also has input '%s', which generation cannot fill (%s)", ti.name,
                    LAYOUT_HINT);
        }
        return rouse_err_set(eb, ROUSE_EINVAL,
                             "the past_key_values inputs are not numbered from 0 "
                             "without gaps (%s)",
                             LAYOUT_HINT);
    }
    return 0;
}

int gen_batch_sizes(int streams, int sizes[8])
{
    int n = 0;
    for (int b = 2; b < streams && n < 7; b *= 2)
        sizes[n++] = b;
    if (streams > 1) sizes[n++] = streams;
    return n;
}

int gen_batch_size(int streams, int active)
{
    if (active <= 1) return 1;
    int sizes[8], n = gen_batch_sizes(streams, sizes);
    for (int i = 0; i < n; i++)
        if (sizes[i] >= active) return sizes[i];
    return active;
}

int gen_run_shapes(const gen_model *gm, int rows, int seq, int past, rouse_tensor *in,
                   char (*names)[GEN_NAME_MAX])
{
    int k = 0;
    const char *heads[3] = {"input_ids", "attention_mask", "position_ids"};
    const int64_t cols[3] = {seq, (int64_t)past + seq, seq};
    for (int i = 0; i < (gm->has_position_ids ? 3 : 2); i++, k++) {
        snprintf(names[k], GEN_NAME_MAX, "%s", heads[i]);
        in[k] = (rouse_tensor){.name = names[k], .dtype = ROUSE_DT_INT64, .rank = 2};
        in[k].shape[0] = rows;
        in[k].shape[1] = cols[i];
        in[k].nbytes = (size_t)rows * (size_t)cols[i] * sizeof(int64_t);
    }
    for (int l = 0; l < gm->n_layers; l++)
        for (int kv = 0; kv < 2; kv++, k++) {
            snprintf(names[k], GEN_NAME_MAX, "past_key_values.%d.%s", l, kv ? "value" : "key");
            in[k] = (rouse_tensor){.name = names[k], .dtype = ROUSE_DT_FLOAT, .rank = 4};
            in[k].shape[0] = rows;
            in[k].shape[1] = gm->n_heads;
            in[k].shape[2] = past;
            in[k].shape[3] = gm->head_dim;
            in[k].nbytes = (size_t)rows * (size_t)gm->n_heads * (size_t)past *
                           (size_t)gm->head_dim * sizeof(float);
        }
    return k;
}

int gen_check_memory(const gen_model *gm, rouse_session *s, int memory_mb, rouse_errbuf *eb)
{
    if (memory_mb <= 0) return 0;
    /* The largest runs gen_run makes: with position_ids a prefill padded
     * up to max_context and a decode over a cache laid out for
     * max_context; without, a prompt and a past of max_context - 1 at most
     * (prompt + max_tokens <= max_context). Several streams add a decode
     * step of all of them together over a full cache. */
    int P = gm->has_position_ids ? gm->max_context : gm->max_context - 1;
    int n_in = 3 + 2 * gm->n_layers;
    rouse_tensor *in = calloc((size_t)n_in, sizeof(*in));
    char(*names)[GEN_NAME_MAX] = calloc((size_t)n_in, sizeof(*names));
    if (!in || !names) {
        free(in);
        free(names);
        return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    }
    const double MiB = 1 << 20;
    uint64_t limit = (uint64_t)memory_mb << 20, act = 0;
    int rc = 0;
    static const char *const what[3] = {"a prefill", "a decode step",
                                        "a decode step of every stream"};
    int runs = gm->streams > 1 ? 3 : 2;
    for (int r = 0; r < runs && rc == 0; r++) {
        int n = r == 0   ? gen_run_shapes(gm, 1, P, 0, in, names)
                : r == 1 ? gen_run_shapes(gm, 1, 1, P, in, names)
                         : gen_run_shapes(gm, gm->streams, 1, P, in, names);
        rouse_errbuf peb;
        rouse_errbuf_clear(&peb);
        rc = rouse_session_prepare(s, in, n, &peb);
        rouse_session_stats st;
        if (rc == 0 && rouse_session_get_stats(s, &st) == 0 && st.arena_bytes > act)
            act = st.arena_bytes;
        else if (rc == ROUSE_ETOOBIG)
            rc = rouse_err_set(eb, rc,
                               "text generation at its max_context of %d positions (%s): %s "
                               "(the function's memory_mb)",
                               gm->max_context, what[r], peb.msg);
        else if (rc < 0)
            rc = rouse_err_set(eb, rc, "text generation at its max_context of %d positions (%s): %s",
                               gm->max_context, what[r], peb.msg);
    }
    free(in);
    free(names);
    if (rc < 0) return rc;
    /* One cache per stream, plus the one a prefill fills (a stream's
     * cache is copied into its row of the batch's, gen_batch.h). */
    uint64_t caches = gm->streams > 1 ? (uint64_t)gm->streams + 1 : 1;
    uint64_t kv = caches * 2ull * (uint64_t)gm->n_layers * (uint64_t)gm->n_heads *
                  ((uint64_t)gm->max_context + 1) * (uint64_t)gm->head_dim * sizeof(float);
    if (act + kv > limit) {
        if (gm->streams > 1)
            return rouse_err_set(
                eb, ROUSE_ETOOBIG,
                "text generation of %d streams (scaling.concurrency) at its max_context of %d "
                "positions needs %.0f MiB (%.0f MiB of activations, %.0f MiB of KV cache: %d "
                "caches of %.0f MiB), more than the memory limit of %d MiB (the function's "
                "memory_mb)",
                gm->streams, gm->max_context, (double)(act + kv) / MiB, (double)act / MiB,
                (double)kv / MiB, (int)caches, (double)kv / (double)caches / MiB, memory_mb);
        return rouse_err_set(eb, ROUSE_ETOOBIG,
                             "text generation at its max_context of %d positions needs %.0f MiB "
                             "(%.0f MiB of activations, %.0f MiB of KV cache), more than the "
                             "memory limit of %d MiB (the function's memory_mb)",
                             gm->max_context, (double)(act + kv) / MiB, (double)act / MiB,
                             (double)kv / MiB, memory_mb);
    }
    return 0;
}

const gen_model *gen_model_of(const gen *g)
{
    return &g->m;
}

void gen_destroy(gen *g)
{
    if (!g) return;
    for (int i = 0; g->cache && i < 2 * g->m.n_layers; i++)
        free(g->cache[i]);
    free(g->cache);
    free(g->in);
    free(g->names);
    free(g->out_present);
    free(g->ids);
    free(g->mask);
    free(g->pos);
    free(g->gids);
    free(g->gmask);
    free(g->gpos);
    free(g->sc.idx);
    free(g->sc.prob);
    free(g);
}

int gen_create(const rouse_model *m, const gen_model *gm, gen **out, rouse_errbuf *eb)
{
    *out = NULL;
    gen *g = calloc(1, sizeof(*g));
    if (!g) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    g->m = *gm;
    int L = gm->n_layers;
    g->n_in = 2 + (gm->has_position_ids ? 1 : 0) + 2 * L;
    size_t ctx = (size_t)gm->max_context + 1;
    g->in = calloc((size_t)g->n_in, sizeof(*g->in));
    g->names = calloc((size_t)g->n_in, sizeof(*g->names));
    g->out_present = calloc((size_t)(2 * L), sizeof(int));
    g->cache = calloc((size_t)(2 * L), sizeof(float *));
    g->ids = calloc(ctx, sizeof(int64_t));
    g->mask = calloc(ctx + GEN_PREFILL_CHUNK, sizeof(int64_t));
    g->pos = calloc(ctx, sizeof(int64_t));
    g->sc.idx = calloc((size_t)gm->vocab, sizeof(int));
    g->sc.prob = calloc((size_t)gm->vocab, sizeof(float));
    if (!g->in || !g->names || !g->out_present || !g->cache || !g->ids || !g->mask || !g->pos ||
        !g->sc.idx || !g->sc.prob) {
        gen_destroy(g);
        return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    }
    int k = 0;
    snprintf(g->names[k++], GEN_NAME_MAX, "input_ids");
    snprintf(g->names[k++], GEN_NAME_MAX, "attention_mask");
    if (gm->has_position_ids) snprintf(g->names[k++], GEN_NAME_MAX, "position_ids");
    rouse_tensor_info ti;
    g->out_logits = find_output(m, "logits", &ti);
    for (int l = 0; l < L; l++)
        for (int kv = 0; kv < 2; kv++) {
            snprintf(g->names[k++], GEN_NAME_MAX, "past_key_values.%d.%s", l, kv ? "value" : "key");
            char name[GEN_NAME_MAX];
            snprintf(name, sizeof(name), "present.%d.%s", l, kv ? "value" : "key");
            g->out_present[2 * l + kv] = find_output(m, name, &ti);
        }
    for (int i = 0; i < g->n_in; i++)
        g->in[i].name = g->names[i];
    *out = g;
    return 0;
}

int gen_bucket_for(const gen_model *gm, int need)
{
    if (!gm->has_position_ids) return need;
    int b = BUCKET_MIN;
    while (b < need && b < gm->max_context)
        b *= 2;
    return b > gm->max_context ? gm->max_context : b;
}

static int bucket_for(const gen *g, int need)
{
    return gen_bucket_for(&g->m, need);
}

static int cache_alloc(gen *g, rouse_errbuf *eb)
{
    if (g->cache[0]) return 0;
    size_t n = (size_t)g->m.n_heads * ((size_t)g->m.max_context + 1) * (size_t)g->m.head_dim;
    for (int i = 0; i < 2 * g->m.n_layers; i++)
        if (!(g->cache[i] = calloc(n, sizeof(float))))
            return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory for the KV cache (%zu MiB)",
                                 2 * (size_t)g->m.n_layers * n * sizeof(float) >> 20);
    return 0;
}

/* Lays the cache out for `to` positions per head, keeping slots [0, n). */
static void relayout(gen *g, int to)
{
    int from = g->bucket;
    if (to == from) return;
    size_t D = (size_t)g->m.head_dim, row = (size_t)g->n * D;
    for (int i = 0; i < 2 * g->m.n_layers; i++) {
        float *c = g->cache[i];
        if (to > from) /* the last head first: destinations lie above sources */
            for (int h = g->m.n_heads - 1; h > 0; h--)
                memmove(c + (size_t)h * (size_t)to * D, c + (size_t)h * (size_t)from * D,
                        row * sizeof(float));
        else
            for (int h = 1; h < g->m.n_heads; h++)
                memmove(c + (size_t)h * (size_t)to * D, c + (size_t)h * (size_t)from * D,
                        row * sizeof(float));
    }
    g->bucket = to;
}

static void set_2d(rouse_tensor *t, const int64_t *data, int64_t cols)
{
    t->dtype = ROUSE_DT_INT64;
    t->rank = 2;
    t->shape[0] = 1;
    t->shape[1] = cols;
    t->data = data;
    t->nbytes = (size_t)cols * sizeof(int64_t);
}

/* The inputs of a run: `seq` new tokens in g->ids/pos over a past of
 * `past` positions per head (the cache as laid out now, or empty), total
 * mask length past + seq in g->mask. */
static void set_inputs(gen *g, int seq, int past)
{
    int k = 0;
    set_2d(&g->in[k++], g->ids, seq);
    set_2d(&g->in[k++], g->mask, past + seq);
    if (g->m.has_position_ids) set_2d(&g->in[k++], g->pos, seq);
    for (int i = 0; i < 2 * g->m.n_layers; i++) {
        rouse_tensor *t = &g->in[k++];
        t->dtype = ROUSE_DT_FLOAT;
        t->rank = 4;
        t->shape[0] = 1;
        t->shape[1] = g->m.n_heads;
        t->shape[2] = past;
        t->shape[3] = g->m.head_dim;
        t->data = g->cache[i];
        t->nbytes = (size_t)g->m.n_heads * (size_t)past * (size_t)g->m.head_dim * sizeof(float);
    }
}

static int run(gen *g, rouse_session *s, int seq, int past, rouse_errbuf *eb)
{
    set_inputs(g, seq, past);
    return rouse_session_run(s, g->in, g->n_in, eb);
}

/* Plan k of the ones generation uses, as (rows, seq, past): 0 the
 * prefill of the shortest padded prompt, 1 the decode step of the first
 * bucket, then with several streams the decode step of each batch size
 * (gen_batch_sizes) at the first bucket, then the other prefill lengths up
 * to GEN_PREFILL_AHEAD, then the other buckets up to max_context (each
 * with its batch sizes). False past the last. */
static bool plan_shape(const gen *g, int k, int *rows, int *seq, int *past)
{
    if (!g->m.has_position_ids) return false;
    const int ctx = g->m.max_context, first = bucket_for(g, 1);
    const int n_prefill = (GEN_PREFILL_AHEAD < ctx ? GEN_PREFILL_AHEAD : ctx) / PREFILL_STEP;
    if (n_prefill < 1) return false;
    int sizes[8], n_sizes = gen_batch_sizes(g->m.streams, sizes);
    *rows = 1;
    if (k == 0 || k == 1) {
        *seq = k == 0 ? PREFILL_STEP : 1;
        *past = k == 0 ? 0 : first;
        return true;
    }
    k -= 2;
    *seq = 1;
    if (k < n_sizes) {
        *rows = sizes[k];
        *past = first;
        return true;
    }
    k -= n_sizes;
    if (k < n_prefill - 1) {
        *seq = (k + 2) * PREFILL_STEP;
        *past = 0;
        return true;
    }
    k -= n_prefill - 1;
    /* Then each further bucket: the step of one stream, then of each batch size. */
    int per = 1 + n_sizes, n_buckets = 0;
    for (int B = first; B < ctx; B = B * 2 > ctx ? ctx : B * 2)
        n_buckets++;
    if (k < n_buckets * per) {
        int B = first;
        for (int i = 0; i <= k / per; i++)
            B = B * 2 > ctx ? ctx : B * 2;
        *rows = k % per == 0 ? 1 : sizes[k % per - 1];
        *past = B;
        return true;
    }
    k -= n_buckets * per;
    /* Then, with several streams, a prefill chunk after the first over
     * each bucket that can hold one (gen_prefill_next). */
    if (g->m.streams < 2 || ctx <= GEN_PREFILL_CHUNK) return false;
    int B = bucket_for(g, GEN_PREFILL_CHUNK + 1);
    for (int i = 0; i < k; i++) {
        if (B >= ctx) return false;
        B = B * 2 > ctx ? ctx : B * 2;
    }
    *seq = GEN_PREFILL_CHUNK;
    *past = B;
    return true;
}

int gen_prepare_step(gen *g, rouse_session *s, int *k, rouse_errbuf *eb)
{
    int rows, seq, past;
    if (!plan_shape(g, *k, &rows, &seq, &past)) return 0;
    gen_run_shapes(&g->m, rows, seq, past, g->in, g->names);
    int rc = rouse_session_prepare(s, g->in, g->n_in, eb);
    if (rc < 0) {
        if (rows > 1)
            return rouse_err_wrap(
                eb, rc, "preparing the decode step of %d streams over %d positions", rows, past);
        if (past && seq > 1)
            return rouse_err_wrap(eb, rc, "preparing a prefill chunk of %d tokens over %d positions",
                                  seq, past);
        return past ? rouse_err_wrap(eb, rc, "preparing the decode step over %d positions", past)
                    : rouse_err_wrap(eb, rc, "preparing the prefill of %d tokens", seq);
    }
    ++*k;
    return 1;
}

/* The output tensor at index i after a run, checked against its expected
 * shape: [1, heads, total, head_dim] for present, [1, seq, vocab] for logits. */
static int present_of(const gen *g, rouse_session *s, int i, int total, rouse_tensor *t,
                      rouse_errbuf *eb)
{
    int rc = rouse_session_output(s, g->out_present[i], t);
    if (rc < 0) return rouse_err_set(eb, rc, "no present output");
    if (t->rank != 4 || t->shape[0] != 1 || t->shape[1] != g->m.n_heads || t->shape[2] != total ||
        t->shape[3] != g->m.head_dim)
        return rouse_err_set(
            eb, ROUSE_EMISMATCH, "%s has shape [%lld, %lld, %lld, %lld], expected [1, %d, %d, %d]",
            t->name, (long long)t->shape[0], (long long)t->shape[1], (long long)t->shape[2],
            (long long)t->shape[3], g->m.n_heads, total, g->m.head_dim);
    return 0;
}

static int logits_row(const gen *g, rouse_session *s, int seq, int row, const float **out,
                      rouse_errbuf *eb)
{
    rouse_tensor t;
    int rc = rouse_session_output(s, g->out_logits, &t);
    if (rc < 0) return rouse_err_set(eb, rc, "no logits output");
    if (t.rank != 3 || t.shape[0] != 1 || t.shape[1] != seq || t.shape[2] != g->m.vocab)
        return rouse_err_set(eb, ROUSE_EMISMATCH, "logits have an unexpected shape");
    *out = (const float *)t.data + (size_t)row * (size_t)g->m.vocab;
    return 0;
}

/* Prefill: the prompt in one run (padded to a bucket when positions are
 * given), its keys and values into the cache laid out for n = L. */
static int prefill(gen *g, rouse_session *s, const int32_t *prompt, int L, const float **logits,
                   rouse_errbuf *eb)
{
    /* Padded to a multiple of PREFILL_STEP, not to a power of two: the
     * prefill computes every position's logits, so padding costs time in
     * proportion; plans for other lengths stay in the session's cache. */
    int Lb = L;
    if (g->m.has_position_ids) {
        Lb = (L + PREFILL_STEP - 1) / PREFILL_STEP * PREFILL_STEP;
        if (Lb > g->m.max_context) Lb = g->m.max_context;
    }
    for (int i = 0; i < Lb; i++) {
        g->ids[i] = i < L ? prompt[i] : 0;
        g->mask[i] = i < L;
        g->pos[i] = i;
    }
    int rc = run(g, s, Lb, 0, eb);
    if (rc < 0) return rc;
    if ((rc = logits_row(g, s, Lb, L - 1, logits, eb)) < 0) return rc;
    int B = bucket_for(g, L + (g->m.has_position_ids ? 1 : 0));
    size_t D = (size_t)g->m.head_dim;
    for (int i = 0; i < 2 * g->m.n_layers; i++) {
        rouse_tensor t;
        if ((rc = present_of(g, s, i, Lb, &t, eb)) < 0) return rc;
        const float *src = t.data;
        for (int h = 0; h < g->m.n_heads; h++)
            memcpy(g->cache[i] + (size_t)h * (size_t)B * D, src + (size_t)h * (size_t)Lb * D,
                   (size_t)L * D * sizeof(float));
    }
    g->bucket = B;
    g->n = L;
    return 0;
}

/* One decode step: token at position n; its keys and values go to slot n. */
static int decode(gen *g, rouse_session *s, int token, const float **logits, rouse_errbuf *eb)
{
    int n = g->n, rc;
    size_t D = (size_t)g->m.head_dim;
    g->ids[0] = token;
    g->pos[0] = n;
    if (!g->m.has_position_ids) {
        /* Exact past length: the whole present becomes the next past. */
        for (int j = 0; j <= n; j++)
            g->mask[j] = 1;
        if ((rc = run(g, s, 1, n, eb)) < 0) return rc;
        if ((rc = logits_row(g, s, 1, 0, logits, eb)) < 0) return rc;
        for (int i = 0; i < 2 * g->m.n_layers; i++) {
            rouse_tensor t;
            if ((rc = present_of(g, s, i, n + 1, &t, eb)) < 0) return rc;
            memcpy(g->cache[i], t.data, t.nbytes);
        }
        g->bucket = g->n = n + 1;
        return 0;
    }
    if (n >= g->bucket) relayout(g, bucket_for(g, n + 1));
    int B = g->bucket;
    for (int j = 0; j < B; j++)
        g->mask[j] = j < n;
    g->mask[B] = 1;
    if ((rc = run(g, s, 1, B, eb)) < 0) return rc;
    if ((rc = logits_row(g, s, 1, 0, logits, eb)) < 0) return rc;
    for (int i = 0; i < 2 * g->m.n_layers; i++) {
        rouse_tensor t;
        if ((rc = present_of(g, s, i, B + 1, &t, eb)) < 0) return rc;
        const float *src = t.data;
        for (int h = 0; h < g->m.n_heads; h++)
            memcpy(g->cache[i] + ((size_t)h * (size_t)B + (size_t)n) * D,
                   src + ((size_t)h * (size_t)(B + 1) + (size_t)B) * D, D * sizeof(float));
    }
    g->n = n + 1;
    return 0;
}

/* The prompt and max_tokens checked against the model. */
static int check_prompt(const gen *g, const int32_t *prompt, int n_prompt, int max_tokens,
                        rouse_errbuf *eb)
{
    if (n_prompt < 1 || max_tokens < 1 || n_prompt + max_tokens > g->m.max_context)
        return rouse_err_set(eb, ROUSE_EINVAL,
                             "%d prompt tokens and %d new ones do not fit the context of %d",
                             n_prompt, max_tokens, g->m.max_context);
    for (int i = 0; i < n_prompt; i++)
        if (prompt[i] < 0 || prompt[i] >= g->m.vocab)
            return rouse_err_set(eb, ROUSE_EINVAL, "token %d is outside the vocabulary of %d",
                                 prompt[i], g->m.vocab);
    return 0;
}

int gen_prefill(gen *g, rouse_session *s, const int32_t *prompt, int n_prompt, int max_tokens,
                const float **logits, rouse_errbuf *eb)
{
    int rc = check_prompt(g, prompt, n_prompt, max_tokens, eb);
    if (rc == 0) rc = cache_alloc(g, eb);
    if (rc == 0) rc = prefill(g, s, prompt, n_prompt, logits, eb);
    return rc;
}

int gen_prefill_begin(gen *g, const int32_t *prompt, int n_prompt, int max_tokens,
                      rouse_errbuf *eb)
{
    if (!g->m.has_position_ids)
        return rouse_err_set(eb, ROUSE_EINVAL,
                             "a prefill in chunks needs the model's position_ids input");
    int rc = check_prompt(g, prompt, n_prompt, max_tokens, eb);
    if (rc == 0) rc = cache_alloc(g, eb);
    if (rc < 0) return rc;
    g->prompt = prompt;
    g->n_prompt = n_prompt;
    g->pre = 0;
    return 0;
}

int gen_prefill_next(gen *g, rouse_session *s, const float **logits, rouse_errbuf *eb)
{
    const int L = g->n_prompt, s0 = g->pre, C = GEN_PREFILL_CHUNK;
    int rc;
    if (s0 == 0) {
        /* The first chunk takes the odd part, so that every later one is
         * a whole chunk (one prepared plan per bucket) and nothing but
         * the first is padded. */
        int c = L <= C ? L : L % C ? L % C : C;
        if ((rc = prefill(g, s, g->prompt, c, logits, eb)) < 0) return rc;
        g->pre = c;
        return c == L;
    }
    /* C more over the s0 in the cache: laid out for a bucket that holds
     * them all; slots [s0, B) are masked out of the past. */
    int B = bucket_for(g, s0 + C);
    if (B > g->bucket) relayout(g, B);
    B = g->bucket;
    for (int i = 0; i < C; i++) {
        g->ids[i] = g->prompt[s0 + i];
        g->pos[i] = s0 + i;
        g->mask[B + i] = 1;
    }
    for (int j = 0; j < B; j++)
        g->mask[j] = j < s0;
    if ((rc = run(g, s, C, B, eb)) < 0) return rc;
    size_t D = (size_t)g->m.head_dim;
    for (int i = 0; i < 2 * g->m.n_layers; i++) {
        rouse_tensor t;
        if ((rc = present_of(g, s, i, B + C, &t, eb)) < 0) return rc;
        const float *src = t.data;
        for (int h = 0; h < g->m.n_heads; h++)
            memcpy(g->cache[i] + ((size_t)h * (size_t)B + (size_t)s0) * D,
                   src + ((size_t)h * (size_t)(B + C) + (size_t)B) * D,
                   (size_t)C * D * sizeof(float));
    }
    g->n = g->pre = s0 + C;
    if (g->pre < L) return 0;
    if ((rc = logits_row(g, s, C, C - 1, logits, eb)) < 0) return rc;
    return 1;
}

int gen_prefill_group(gen *g, rouse_session *s, const int32_t *const *prompts, const int *lens,
                      const int *max_tokens, int k, int rows, rouse_errbuf *eb)
{
    if (k < 1 || rows < k || rows > GEN_STREAMS_MAX || !g->m.has_position_ids)
        return rouse_err_set(eb, ROUSE_EINVAL, "a group of %d prompts in %d rows", k, rows);
    int rc = cache_alloc(g, eb), longest = 0;
    for (int j = 0; rc == 0 && j < k; j++) {
        rc = check_prompt(g, prompts[j], lens[j], max_tokens[j], eb);
        if (rc == 0 && lens[j] > GEN_PREFILL_CHUNK)
            rc = rouse_err_set(eb, ROUSE_EINVAL, "a prompt of %d tokens in a group", lens[j]);
        if (lens[j] > longest) longest = lens[j];
    }
    size_t n = (size_t)GEN_STREAMS_MAX * GEN_PREFILL_CHUNK;
    if (rc == 0 && !g->gids) {
        g->gids = calloc(n, sizeof(int64_t));
        g->gmask = calloc(n, sizeof(int64_t));
        g->gpos = calloc(n, sizeof(int64_t));
        if (!g->gids || !g->gmask || !g->gpos) rc = rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    }
    if (rc < 0) return rc;
    const int Lb = (longest + PREFILL_STEP - 1) / PREFILL_STEP * PREFILL_STEP;
    for (int j = 0; j < rows; j++) {
        /* Padding rows attend to their first position only. */
        int len = j < k ? lens[j] : 1;
        for (int i = 0; i < Lb; i++) {
            size_t at = (size_t)j * (size_t)Lb + (size_t)i;
            g->gids[at] = j < k && i < len ? prompts[j][i] : 0;
            g->gmask[at] = i < len;
            g->gpos[at] = i;
        }
        g->g_len[j] = len;
    }
    g->g_rows = rows;
    g->g_seq = Lb;
    gen_run_shapes(&g->m, rows, Lb, 0, g->in, g->names);
    g->in[0].data = g->gids;
    g->in[1].data = g->gmask;
    g->in[2].data = g->gpos;
    for (int i = 0; i < 2 * g->m.n_layers; i++)
        g->in[3 + i].data = g->cache[i];
    return rouse_session_run(s, g->in, g->n_in, eb);
}

int gen_prefill_take(gen *g, rouse_session *s, int j, const float **logits, rouse_errbuf *eb)
{
    const int R = g->g_rows, Lb = g->g_seq, L = g->g_len[j], H = g->m.n_heads;
    const size_t D = (size_t)g->m.head_dim;
    rouse_tensor t;
    int rc = rouse_session_output(s, g->out_logits, &t);
    if (rc < 0) return rouse_err_set(eb, rc, "no logits output");
    if (t.rank != 3 || t.shape[0] != R || t.shape[1] != Lb || t.shape[2] != g->m.vocab)
        return rouse_err_set(eb, ROUSE_EMISMATCH, "logits have an unexpected shape");
    *logits = (const float *)t.data + ((size_t)j * (size_t)Lb + (size_t)(L - 1)) * (size_t)g->m.vocab;
    const int B = bucket_for(g, L + 1);
    for (int i = 0; i < 2 * g->m.n_layers; i++) {
        if ((rc = rouse_session_output(s, g->out_present[i], &t)) < 0)
            return rouse_err_set(eb, rc, "no present output");
        if (t.rank != 4 || t.shape[0] != R || t.shape[1] != H || t.shape[2] != Lb ||
            t.shape[3] != g->m.head_dim)
            return rouse_err_set(eb, ROUSE_EMISMATCH, "%s has an unexpected shape", t.name);
        const float *src = t.data;
        for (int h = 0; h < H; h++)
            memcpy(g->cache[i] + (size_t)h * (size_t)B * D,
                   src + ((size_t)j * (size_t)H + (size_t)h) * (size_t)Lb * D,
                   (size_t)L * D * sizeof(float));
    }
    g->bucket = B;
    g->n = L;
    return 0;
}

const float *gen_cache(const gen *g, int i, int *bucket, int *n)
{
    *bucket = g->bucket;
    *n = g->n;
    return g->cache[i];
}

int gen_run(gen *g, rouse_session *s, const int32_t *prompt, int n_prompt, const gen_params *p,
            gen_emit_fn emit, void *user, gen_stats *st, rouse_errbuf *eb)
{
    memset(st, 0, sizeof(*st));
    st->prompt_tokens = n_prompt;
    int rc = check_prompt(g, prompt, n_prompt, p->max_tokens, eb);
    if (rc < 0) return rc;
    if ((rc = cache_alloc(g, eb)) < 0) return rc;
    sampler_rng rng;
    sampler_rng_seed(&rng, p->seed);
    rouse_plan_cache_stats pc0, pc1;
    rouse_session_get_plan_cache(s, &pc0);
    uint64_t t0 = rouse_now_ns();
    const float *logits;
    if ((rc = prefill(g, s, prompt, n_prompt, &logits, eb)) < 0) return rc;
    for (int i = 0;; i++) {
        int tok = sampler_pick(logits, g->m.vocab, &p->sp, &rng, &g->sc);
        uint64_t t = rouse_now_ns();
        if (i == 0)
            st->prefill_ns = t - t0;
        else
            st->decode_ns = t - t0 - st->prefill_ns;
        st->completion_tokens = i + 1;
        rouse_session_get_plan_cache(s, &pc1);
        st->plans_prepared = pc1.misses - pc0.misses;
        if (emit(user, tok)) {
            st->stopped = true;
            return 0;
        }
        if (i + 1 == p->max_tokens) return 0;
        worker_fault_step();
        if ((rc = decode(g, s, tok, &logits, eb)) < 0) return rc;
    }
}
