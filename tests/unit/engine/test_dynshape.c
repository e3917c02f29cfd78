/*
 * Dynamic shapes: one session serves many input shapes through its plan
 * cache, shape arithmetic is folded while preparing, symbolic dims are named
 * in errors and must agree between inputs, and compiled plans specialise for
 * each shape they meet.
 *
 * The image model (Conv+Relu, strided Conv+Relu, GlobalAveragePool) takes
 * [1, 3, height, width]; the text model (Gather embedding, MatMul, a mask,
 * a Reshape whose target shape is computed by Gather/Unsqueeze/Mul/Concat,
 * Softmax) takes ids [batch, seq]. Outputs are compared with a fresh session
 * prepared for that one shape, and the text model with a plain C computation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "onnx_builder.h"
#include "rouse/engine.h"
#include "tmp_dir.h"

static float *rand_floats(int64_t n, uint32_t seed)
{
    float *p = malloc(sizeof(float) * (size_t)n);
    assert_non_null(p);
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (float)(seed >> 8) / (float)(1u << 24) - 0.5f;
    }
    return p;
}

static void add_weight(ob_model *m, const char *name, int rank, const int64_t *d, uint32_t seed)
{
    int64_t n = 1;
    for (int i = 0; i < rank; i++)
        n *= d[i];
    float *w = rand_floats(n, seed);
    ob_initializer(m, name, ROUSE_DT_FLOAT, rank, d, w, sizeof(float) * (size_t)n);
    free(w);
}

static void add_ints(ob_model *m, const char *name, int rank, const int64_t *d, const int64_t *v,
                     size_t n)
{
    ob_initializer(m, name, ROUSE_DT_INT64, rank, d, v, sizeof(int64_t) * n);
}

static rouse_model *load(rouse_buf *b)
{
    rouse_model *m = NULL;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    int rc = rouse_model_load_memory(b->data, b->len, &m, &eb);
    if (rc < 0) fail_msg("load: %s", eb.msg);
    return m;
}

/* --- the image model ------------------------------------------------------------ */

/* x [1, 3, height, width] -> conv 3x3 (8) + relu -> conv 3x3 stride 2 (8) +
 * relu -> feat; gap = GlobalAveragePool(feat). Outputs feat and gap. */
static void image_model(rouse_buf *out)
{
    ob_model *m = ob_model_new(13);
    int64_t xd[4] = {1, 3, -1, -1}, w0[4] = {8, 3, 3, 3}, w1[4] = {8, 8, 3, 3}, bd[1] = {8};
    int64_t k[2] = {3, 3}, pads[4] = {1, 1, 1, 1}, s2[2] = {2, 2};
    const char *names[4] = {NULL, NULL, "height", "width"};
    ob_input_named(m, "x", ROUSE_DT_FLOAT, 4, xd, names);
    add_weight(m, "w0", 4, w0, 11);
    add_weight(m, "b0", 1, bd, 12);
    add_weight(m, "w1", 4, w1, 13);
    add_weight(m, "b1", 1, bd, 14);
    const char *c0_in[3] = {"x", "w0", "b0"}, *c0 = "c0", *r0 = "r0";
    ob_node *n = ob_add_node(m, "Conv", "conv0", 3, c0_in, 1, &c0);
    ob_attr_ints(n, "kernel_shape", 2, k);
    ob_attr_ints(n, "pads", 4, pads);
    ob_add_node(m, "Relu", "relu0", 1, &c0, 1, &r0);
    const char *c1_in[3] = {"r0", "w1", "b1"}, *c1 = "c1", *feat = "feat", *gap = "gap";
    n = ob_add_node(m, "Conv", "conv1", 3, c1_in, 1, &c1);
    ob_attr_ints(n, "kernel_shape", 2, k);
    ob_attr_ints(n, "pads", 4, pads);
    ob_attr_ints(n, "strides", 2, s2);
    ob_add_node(m, "Relu", "relu1", 1, &c1, 1, &feat);
    ob_add_node(m, "GlobalAveragePool", "gap", 1, &feat, 1, &gap);
    int64_t fd[4] = {1, 8, -1, -1}, gd[4] = {1, 8, 1, 1};
    ob_output(m, "feat", ROUSE_DT_FLOAT, 4, fd);
    ob_output(m, "gap", ROUSE_DT_FLOAT, 4, gd);
    rouse_buf_init(out);
    ob_serialize(m, out);
    ob_model_free(m);
}

/* Runs the image model at h x w; returns malloc'd copies of both outputs. */
static void run_image(rouse_session *s, int64_t h, int64_t w, float **feat, float **gap)
{
    int64_t n = 3 * h * w;
    float *x = rand_floats(n, (uint32_t)(h * 1000 + w));
    rouse_tensor in = {.name = "x",
                       .dtype = ROUSE_DT_FLOAT,
                       .rank = 4,
                       .shape = {1, 3, h, w},
                       .data = x,
                       .nbytes = sizeof(float) * (size_t)n};
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    int rc = rouse_session_run(s, &in, 1, &eb);
    if (rc < 0) fail_msg("run %lldx%lld: %s", (long long)h, (long long)w, eb.msg);
    rouse_tensor f, g;
    assert_int_equal(rouse_session_output(s, 0, &f), 0);
    assert_int_equal(rouse_session_output(s, 1, &g), 0);
    assert_int_equal(f.rank, 4);
    assert_int_equal(f.shape[1], 8);
    assert_int_equal(f.shape[2], (h + 1) / 2);
    assert_int_equal(f.shape[3], (w + 1) / 2);
    assert_int_equal(g.nbytes, sizeof(float) * 8);
    *feat = malloc(f.nbytes);
    *gap = malloc(g.nbytes);
    assert_non_null(*feat);
    assert_non_null(*gap);
    memcpy(*feat, f.data, f.nbytes);
    memcpy(*gap, g.data, g.nbytes);
    free(x);
}

static void check_image_shapes(rouse_model *m, rouse_session *s, const int64_t (*order)[2], int n)
{
    for (int i = 0; i < n; i++) {
        int64_t h = order[i][0], w = order[i][1];
        float *feat, *gap, *feat1, *gap1;
        run_image(s, h, w, &feat, &gap);
        /* A fresh session prepared for this shape alone. */
        rouse_session *fresh = NULL;
        rouse_errbuf eb;
        assert_int_equal(rouse_session_create(m, NULL, &fresh, &eb), 0);
        run_image(fresh, h, w, &feat1, &gap1);
        size_t fb = sizeof(float) * 8 * (size_t)((h + 1) / 2) * (size_t)((w + 1) / 2);
        assert_memory_equal(feat, feat1, fb);
        assert_memory_equal(gap, gap1, sizeof(float) * 8);
        rouse_session_destroy(fresh);
        free(feat);
        free(gap);
        free(feat1);
        free(gap1);
    }
}

static void image_model_serves_many_shapes(void **state)
{
    (void)state;
    rouse_buf b;
    image_model(&b);
    rouse_model *m = load(&b);
    rouse_tensor_info ti;
    assert_int_equal(rouse_model_input(m, 0, &ti), 0);
    assert_null(ti.dim_names[0]);
    assert_string_equal(ti.dim_names[2], "height");
    assert_string_equal(ti.dim_names[3], "width");

    rouse_session *s = NULL;
    rouse_errbuf eb;
    assert_int_equal(rouse_session_create(m, NULL, &s, &eb), 0);
    rouse_session_stats st;
    assert_int_equal(rouse_session_get_stats(s, &st), ROUSE_ESTATE); /* nothing prepared yet */
    const int64_t order[][2] = {{320, 480}, {640, 640}, {320, 480}, {640, 640}, {640, 640},
                                {320, 480}};
    check_image_shapes(m, s, order, 6);
    rouse_plan_cache_stats cs;
    rouse_session_get_plan_cache(s, &cs);
    assert_int_equal(cs.capacity, ROUSE_PLAN_CACHE_DEFAULT);
    assert_int_equal(cs.entries, 2);
    assert_int_equal(cs.misses, 2);
    assert_int_equal(cs.hits, 4);
    assert_int_equal(cs.evictions, 0);
    rouse_session_destroy(s);

    /* The other order, through a session that holds one plan at a time. */
    rouse_session_options so = {.plan_cache_size = 1};
    assert_int_equal(rouse_session_create(m, &so, &s, &eb), 0);
    const int64_t order2[][2] = {{640, 640}, {320, 480}, {640, 640}};
    check_image_shapes(m, s, order2, 3);
    rouse_session_get_plan_cache(s, &cs);
    assert_int_equal(cs.capacity, 1);
    assert_int_equal(cs.entries, 1);
    assert_int_equal(cs.misses, 3);
    assert_int_equal(cs.evictions, 2);
    rouse_session_destroy(s);

    so.plan_cache_size = -1;
    assert_int_equal(rouse_session_create(m, &so, &s, &eb), ROUSE_EINVAL);
    assert_non_null(strstr(eb.msg, "plan_cache_size"));

    /* A wrong shape names the symbolic dims. */
    assert_int_equal(rouse_session_create(m, NULL, &s, &eb), 0);
    float x[2 * 8 * 8] = {0};
    rouse_tensor in = {.name = "x",
                       .dtype = ROUSE_DT_FLOAT,
                       .rank = 4,
                       .shape = {1, 2, 8, 8},
                       .data = x,
                       .nbytes = sizeof(x)};
    assert_int_equal(rouse_session_run(s, &in, 1, &eb), ROUSE_EMISMATCH);
    assert_non_null(strstr(eb.msg, "input 'x' must have shape [1, 3, height, width], got "
                                   "[1, 2, 8, 8]"));
    rouse_session_destroy(s);
    rouse_model_destroy(m);
    rouse_buf_fini(&b);
}

/* --- the text model ------------------------------------------------------------- */

#define VOCAB 50
#define DIM 16
#define HEADS 2

/* ids [batch, seq] (int64), mask [batch, seq] (float):
 *   h = (Gather(E, ids) @ W) * Unsqueeze(mask, 2)              [B, S, DIM]
 *   shape4 = Concat(b, s, HEADS, DIM/HEADS)                      (b, s read from `dims`)
 *   p = Softmax(Reshape(h, shape4), -1)                          [B, S, HEADS, DIM/HEADS]
 *   y = Reshape(p, Concat(Mul(b, s), DIM))                       [B*S, DIM]
 * `dims` is a graph input holding [batch, seq]: its values key the plan
 * through the folded Gather/Unsqueeze/Mul/Concat chain. With shape_op,
 * dims = Shape(ids) instead, as exporters write it, and only ids and mask
 * are inputs. */
static void text_model_with(rouse_buf *out, bool shape_op)
{
    ob_model *m = ob_model_new(13);
    int64_t id_d[2] = {-1, -1}, two[1] = {2}, ed[2] = {VOCAB, DIM}, wd[2] = {DIM, DIM};
    const char *names[2] = {"batch", "seq"};
    ob_input_named(m, "ids", ROUSE_DT_INT64, 2, id_d, names);
    ob_input_named(m, "mask", ROUSE_DT_FLOAT, 2, id_d, names);
    if (!shape_op) ob_input(m, "dims", ROUSE_DT_INT64, 1, two);
    add_weight(m, "E", 2, ed, 21);
    add_weight(m, "W", 2, wd, 22);
    int64_t scalar_d[1] = {0}, one_d[1] = {1}, zero = 0, one = 1, heads = HEADS,
            hd = DIM / HEADS, dim = DIM, ax2 = 2;
    add_ints(m, "i0", 0, scalar_d, &zero, 1);
    add_ints(m, "i1", 0, scalar_d, &one, 1);
    add_ints(m, "ax0", 1, one_d, &zero, 1);
    add_ints(m, "ax2", 1, one_d, &ax2, 1);
    add_ints(m, "heads", 1, one_d, &heads, 1);
    add_ints(m, "hd", 1, one_d, &hd, 1);
    add_ints(m, "dim", 1, one_d, &dim, 1);

    const char *g_in[2] = {"E", "ids"}, *emb = "emb";
    ob_attr_int(ob_add_node(m, "Gather", "embed", 2, g_in, 1, &emb), "axis", 0);
    const char *mm_in[2] = {"emb", "W"}, *mm = "mm";
    ob_add_node(m, "MatMul", "proj", 2, mm_in, 1, &mm);
    const char *um_in[2] = {"mask", "ax2"}, *um = "mask3";
    ob_add_node(m, "Unsqueeze", "mask_unsq", 2, um_in, 1, &um);
    const char *h_in[2] = {"mm", "mask3"}, *h = "h";
    ob_add_node(m, "Mul", "apply_mask", 2, h_in, 1, &h);

    if (shape_op) {
        const char *ids = "ids", *dims = "dims";
        ob_add_node(m, "Shape", "shape", 1, &ids, 1, &dims);
    }
    const char *gb_in[2] = {"dims", "i0"}, *gb = "b", *gs_in[2] = {"dims", "i1"}, *gs = "s";
    ob_attr_int(ob_add_node(m, "Gather", "take_b", 2, gb_in, 1, &gb), "axis", 0);
    ob_attr_int(ob_add_node(m, "Gather", "take_s", 2, gs_in, 1, &gs), "axis", 0);
    const char *ub_in[2] = {"b", "ax0"}, *ub = "b1", *us_in[2] = {"s", "ax0"}, *us = "s1";
    ob_add_node(m, "Unsqueeze", "unsq_b", 2, ub_in, 1, &ub);
    ob_add_node(m, "Unsqueeze", "unsq_s", 2, us_in, 1, &us);
    const char *c4_in[4] = {"b1", "s1", "heads", "hd"}, *c4 = "shape4";
    ob_attr_int(ob_add_node(m, "Concat", "cat4", 4, c4_in, 1, &c4), "axis", 0);
    const char *r4_in[2] = {"h", "shape4"}, *r4 = "h4";
    ob_add_node(m, "Reshape", "split_heads", 2, r4_in, 1, &r4);
    const char *p = "p";
    ob_attr_int(ob_add_node(m, "Softmax", "softmax", 1, &r4, 1, &p), "axis", -1);
    const char *bs_in[2] = {"b1", "s1"}, *bs = "bs";
    ob_add_node(m, "Mul", "rows", 2, bs_in, 1, &bs);
    const char *c2_in[2] = {"bs", "dim"}, *c2 = "shape2";
    ob_attr_int(ob_add_node(m, "Concat", "cat2", 2, c2_in, 1, &c2), "axis", 0);
    const char *r2_in[2] = {"p", "shape2"}, *y = "y";
    ob_add_node(m, "Reshape", "merge", 2, r2_in, 1, &y);
    int64_t yd[2] = {-1, DIM};
    ob_output(m, "y", ROUSE_DT_FLOAT, 2, yd);
    rouse_buf_init(out);
    ob_serialize(m, out);
    ob_model_free(m);
}

static void text_model(rouse_buf *out)
{
    text_model_with(out, false);
}

/* The text model in plain C, for ids/mask of [b, s]. */
static void text_expected(const int64_t *ids, const float *mask, int64_t b, int64_t s, float *y)
{
    float *E = rand_floats(VOCAB * DIM, 21), *W = rand_floats(DIM * DIM, 22);
    for (int64_t r = 0; r < b * s; r++) {
        float h[DIM];
        for (int j = 0; j < DIM; j++) {
            float acc = 0;
            for (int k = 0; k < DIM; k++)
                acc += E[ids[r] * DIM + k] * W[k * DIM + j];
            h[j] = acc * mask[r];
        }
        for (int g = 0; g < HEADS; g++) {
            float mx = -INFINITY, sum = 0;
            const int hd = DIM / HEADS;
            for (int j = 0; j < hd; j++)
                mx = fmaxf(mx, h[g * hd + j]);
            for (int j = 0; j < hd; j++)
                sum += expf(h[g * hd + j] - mx);
            for (int j = 0; j < hd; j++)
                y[r * DIM + g * hd + j] = expf(h[g * hd + j] - mx) / sum;
        }
    }
    free(E);
    free(W);
}

static int run_text(rouse_session *s, int64_t b, int64_t q, const int64_t dims[2], bool check,
                    rouse_errbuf *eb)
{
    int64_t n = b * q;
    int64_t *ids = malloc(sizeof(int64_t) * (size_t)n);
    float *mask = malloc(sizeof(float) * (size_t)n), *want = malloc(sizeof(float) * (size_t)n * DIM);
    assert_non_null(ids);
    assert_non_null(mask);
    assert_non_null(want);
    for (int64_t i = 0; i < n; i++) {
        ids[i] = (i * 7 + b * 3 + q) % VOCAB;
        mask[i] = (i % 5 == 4) ? 0.0f : 1.0f;
    }
    rouse_tensor in[3] = {
        {.name = "ids", .dtype = ROUSE_DT_INT64, .rank = 2, .shape = {b, q}, .data = ids,
         .nbytes = sizeof(int64_t) * (size_t)n},
        {.name = "mask", .dtype = ROUSE_DT_FLOAT, .rank = 2, .shape = {b, q}, .data = mask,
         .nbytes = sizeof(float) * (size_t)n},
        {.name = "dims", .dtype = ROUSE_DT_INT64, .rank = 1, .shape = {2}, .data = dims,
         .nbytes = sizeof(int64_t) * 2},
    };
    int rc = rouse_session_run(s, in, dims ? 3 : 2, eb);
    if (rc == 0 && check) {
        rouse_tensor o;
        assert_int_equal(rouse_session_output(s, 0, &o), 0);
        assert_int_equal(o.rank, 2);
        assert_int_equal(o.shape[0], n);
        assert_int_equal(o.shape[1], DIM);
        text_expected(ids, mask, b, q, want);
        const float *got = o.data;
        for (int64_t i = 0; i < n * DIM; i++)
            if (fabsf(got[i] - want[i]) > 1e-5f + 1e-4f * fabsf(want[i]))
                fail_msg("b=%lld s=%lld: y[%lld] = %g, want %g", (long long)b, (long long)q,
                         (long long)i, (double)got[i], (double)want[i]);
    }
    free(ids);
    free(mask);
    free(want);
    return rc;
}

static void serve_text(rouse_model *m, int cache_size, bool with_dims)
{
    rouse_session_options so = {.plan_cache_size = cache_size};
    rouse_session *s = NULL;
    rouse_errbuf eb;
    assert_int_equal(rouse_session_create(m, &so, &s, &eb), 0);
    /* Sequence lengths 8, 32, 128 and batches 1-8, interleaved, twice. */
    static const int64_t runs[][2] = {{1, 8},   {8, 128}, {3, 32}, {1, 8},  {5, 128}, {2, 8},
                                      {8, 128}, {4, 32},  {7, 8},  {6, 32}, {3, 32},  {1, 128}};
    const int n_runs = (int)(sizeof(runs) / sizeof(runs[0]));
    for (int rep = 0; rep < 2; rep++) {
        for (int i = 0; i < n_runs; i++) {
            int64_t dims[2] = {runs[i][0], runs[i][1]};
            if (run_text(s, runs[i][0], runs[i][1], with_dims ? dims : NULL, true, &eb) < 0)
                fail_msg("b=%lld s=%lld: %s", (long long)runs[i][0], (long long)runs[i][1],
                         eb.msg);
        }
    }
    rouse_plan_cache_stats cs;
    rouse_session_get_plan_cache(s, &cs);
    assert_int_equal(cs.hits + cs.misses, 2 * n_runs);
    assert_int_equal(cs.entries, cache_size < 9 ? cache_size : 9); /* 9 distinct signatures */
    if (cache_size >= 9) assert_int_equal(cs.misses, 9);
    else assert_true(cs.evictions > 0);
    rouse_session_stats st;
    assert_int_equal(rouse_session_get_stats(s, &st), 0);
    assert_true(st.folded >= 7); /* take_b/s, unsq_b/s, cat4, rows, cat2 */
    rouse_session_destroy(s);
}

static void text_model_serves_batches_and_lengths(void **state)
{
    (void)state;
    rouse_buf b;
    text_model(&b);
    rouse_model *m = load(&b);
    serve_text(m, 16, true);
    serve_text(m, 3, true);
    rouse_model_destroy(m);
    rouse_buf_fini(&b);

    /* The same with dims = Shape(ids), once the engine has Shape. */
    text_model_with(&b, true);
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    int rc = rouse_model_load_memory(b.data, b.len, &m, &eb);
    if (rc == ROUSE_EUNSUPPORTED && strstr(eb.msg, "unsupported operator Shape")) {
        print_message("Shape is not implemented yet: its variant is skipped\n");
    } else {
        if (rc < 0) fail_msg("load: %s", eb.msg);
        serve_text(m, 16, false);
        serve_text(m, 3, false);
        rouse_model_destroy(m);
    }
    rouse_buf_fini(&b);
}

static void text_model_errors(void **state)
{
    (void)state;
    rouse_buf b;
    text_model(&b);
    rouse_model *m = load(&b);
    rouse_session *s = NULL;
    rouse_errbuf eb;
    assert_int_equal(rouse_session_create(m, NULL, &s, &eb), 0);
    /* Same shapes, other values of the shape-feeding input: another plan. */
    int64_t dims[2] = {2, 8};
    assert_int_equal(run_text(s, 2, 8, dims, true, &eb), 0);
    int64_t bad[2] = {2, 9};
    assert_int_equal(run_text(s, 2, 8, bad, false, &eb), ROUSE_EMISMATCH);
    assert_non_null(strstr(eb.msg, "split_heads"));
    assert_int_equal(run_text(s, 2, 8, dims, true, &eb), 0);
    rouse_plan_cache_stats cs;
    rouse_session_get_plan_cache(s, &cs);
    assert_int_equal(cs.misses, 2);
    assert_int_equal(cs.hits, 1);

    /* Two inputs naming the same dim must agree on it. */
    int64_t ids[16] = {0};
    float mask[18] = {0};
    rouse_tensor in[3] = {
        {.name = "ids", .dtype = ROUSE_DT_INT64, .rank = 2, .shape = {2, 8}, .data = ids,
         .nbytes = sizeof(ids)},
        {.name = "mask", .dtype = ROUSE_DT_FLOAT, .rank = 2, .shape = {2, 9}, .data = mask,
         .nbytes = sizeof(mask)},
        {.name = "dims", .dtype = ROUSE_DT_INT64, .rank = 1, .shape = {2}, .data = dims,
         .nbytes = sizeof(dims)},
    };
    assert_int_equal(rouse_session_run(s, in, 3, &eb), ROUSE_EMISMATCH);
    assert_non_null(strstr(eb.msg, "dim 'seq' is 9 in input 'mask' (dim 1) but 8 in input 'ids'"));
    rouse_session_destroy(s);
    rouse_model_destroy(m);
    rouse_buf_fini(&b);
}

/* --- compiled plans --------------------------------------------------------------- */

static void compiled_plans_specialise_per_shape(void **state)
{
    (void)state;
    char dir[256], path[512];
    snprintf(dir, sizeof(dir), "%s/rouse-dynshape-XXXXXX", test_tmp_dir());
    assert_non_null(mkdtemp(dir));
    rouse_errbuf eb;

    /* Image: compiling prepares at the placeholder size 1x1 (fine with
     * pads 1); the plan must serve every size. */
    rouse_buf b;
    image_model(&b);
    rouse_model *src = load(&b);
    snprintf(path, sizeof(path), "%s/image.plan", dir);
    if (rouse_model_compile(src, path, &eb) < 0) fail_msg("compile: %s", eb.msg);
    rouse_model *pm = NULL;
    if (rouse_model_open_plan(path, &pm, &eb) < 0) fail_msg("open: %s", eb.msg);
    rouse_tensor_info ti;
    assert_int_equal(rouse_model_input(pm, 0, &ti), 0); /* the plan keeps the dims' names */
    assert_null(ti.dim_names[1]);
    assert_string_equal(ti.dim_names[2], "height");
    assert_string_equal(ti.dim_names[3], "width");
    rouse_session *ps = NULL, *os = NULL;
    assert_int_equal(rouse_session_create(pm, NULL, &ps, &eb), 0);
    assert_int_equal(rouse_session_create(src, NULL, &os, &eb), 0);
    const int64_t order[][2] = {{320, 480}, {640, 640}, {320, 480}};
    for (int i = 0; i < 3; i++) {
        float *f0, *g0, *f1, *g1;
        run_image(ps, order[i][0], order[i][1], &f0, &g0);
        run_image(os, order[i][0], order[i][1], &f1, &g1);
        size_t fb = sizeof(float) * 8 * (size_t)((order[i][0] + 1) / 2) *
                    (size_t)((order[i][1] + 1) / 2);
        assert_memory_equal(f0, f1, fb);
        assert_memory_equal(g0, g1, sizeof(float) * 8);
        free(f0);
        free(g0);
        free(f1);
        free(g1);
    }
    rouse_plan_cache_stats cs;
    rouse_session_get_plan_cache(ps, &cs);
    assert_int_equal(cs.misses, 2);
    assert_int_equal(cs.hits, 1);
    rouse_session_destroy(ps);
    rouse_session_destroy(os);
    rouse_model_destroy(pm);
    rouse_model_destroy(src);
    rouse_buf_fini(&b);
    unlink(path);

    /* Text: shape arithmetic folded per shape from the plan's graph. */
    text_model(&b);
    src = load(&b);
    snprintf(path, sizeof(path), "%s/text.plan", dir);
    if (rouse_model_compile(src, path, &eb) < 0) fail_msg("compile: %s", eb.msg);
    if (rouse_model_open_plan(path, &pm, &eb) < 0) fail_msg("open: %s", eb.msg);
    assert_int_equal(rouse_session_create(pm, NULL, &ps, &eb), 0);
    static const int64_t runs[][2] = {{1, 8}, {8, 128}, {3, 32}, {1, 8}};
    for (int i = 0; i < 4; i++) {
        int64_t dims[2] = {runs[i][0], runs[i][1]};
        if (run_text(ps, runs[i][0], runs[i][1], dims, true, &eb) < 0) fail_msg("%s", eb.msg);
    }
    rouse_session_destroy(ps);
    rouse_model_destroy(pm);
    rouse_model_destroy(src);
    rouse_buf_fini(&b);
    unlink(path);
    rmdir(dir);
}

/* A convolution without padding has no valid size 1 input: compiling
 * (which prepares at 1 for dynamic dims to lay out weights) still writes
 * a plan that serves real sizes. */
static void unpadded_conv_with_dynamic_size_compiles(void **state)
{
    (void)state;
    ob_model *om = ob_model_new(13);
    int64_t xd[4] = {1, 4, -1, -1}, wd[4] = {16, 4, 3, 3}, k[2] = {3, 3};
    ob_input(om, "x", ROUSE_DT_FLOAT, 4, xd);
    add_weight(om, "w", 4, wd, 31);
    const char *c_in[2] = {"x", "w"}, *y = "y";
    ob_attr_ints(ob_add_node(om, "Conv", "conv", 2, c_in, 1, &y), "kernel_shape", 2, k);
    int64_t yd[4] = {1, 16, -1, -1};
    ob_output(om, "y", ROUSE_DT_FLOAT, 4, yd);
    rouse_buf b;
    rouse_buf_init(&b);
    ob_serialize(om, &b);
    ob_model_free(om);
    rouse_model *src = load(&b);
    char path[4096];
    snprintf(path, sizeof(path), "%s/rouse-dynconv-XXXXXX", test_tmp_dir());
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    rouse_errbuf eb;
    if (rouse_model_compile(src, path, &eb) < 0) fail_msg("compile: %s", eb.msg);
    rouse_model *pm = NULL;
    if (rouse_model_open_plan(path, &pm, &eb) < 0) fail_msg("open: %s", eb.msg);
    rouse_session *s = NULL;
    assert_int_equal(rouse_session_create(pm, NULL, &s, &eb), 0);
    float *x = rand_floats(4 * 10 * 12, 32);
    rouse_tensor in = {.name = "x",
                       .dtype = ROUSE_DT_FLOAT,
                       .rank = 4,
                       .shape = {1, 4, 10, 12},
                       .data = x,
                       .nbytes = sizeof(float) * 4 * 10 * 12};
    if (rouse_session_run(s, &in, 1, &eb) < 0) fail_msg("run: %s", eb.msg);
    rouse_tensor o;
    assert_int_equal(rouse_session_output(s, 0, &o), 0);
    assert_int_equal(o.shape[2], 8);
    assert_int_equal(o.shape[3], 10);
    free(x);
    rouse_session_destroy(s);
    rouse_model_destroy(pm);
    rouse_model_destroy(src);
    rouse_buf_fini(&b);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(image_model_serves_many_shapes),
        cmocka_unit_test(text_model_serves_batches_and_lengths),
        cmocka_unit_test(text_model_errors),
        cmocka_unit_test(compiled_plans_specialise_per_shape),
        cmocka_unit_test(unpadded_conv_with_dynamic_size_compiles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
