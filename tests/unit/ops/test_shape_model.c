/*
 * The shape and index ops end to end: one model built in C that chains
 * them (DepthToSpace -> Slice with a negative step -> reflect Pad -> Trilu
 * -> Tile, the gathers and scatters, the ops folded at load from constants),
 * run from the .onnx and from its compiled plan (whose attribute records
 * the plan reader re-checks), with hand-computed results; and an index out
 * of range at run time, reported by node.
 *
 *   unit_ops_shape_model --write-seed FILE   writes the model (the fuzz seed
 *                                            fuzz/corpus/onnx_load/shape_ops.onnx)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "engine/tensor.h"
#include "onnx_builder.h"
#include "rouse/engine.h"
#include "tmp_dir.h"

#define S(...)                                                                                     \
    (const char *const[])                                                                          \
    {                                                                                              \
        __VA_ARGS__                                                                                \
    }
#define NS(...) (int)(sizeof(S(__VA_ARGS__)) / sizeof(const char *))
#define NODE(op, ins, outs) ob_add_node(m, op, "", NS ins, S ins, NS outs, S outs)
#define INIT(name, dt, rank, dims, T, ...)                                                         \
    ob_initializer(m, name, dt, rank, dims, (const T[]){__VA_ARGS__},                              \
                   sizeof((const T[]){__VA_ARGS__}))
#define D(...)                                                                                     \
    (const int64_t[])                                                                              \
    {                                                                                              \
        __VA_ARGS__                                                                                \
    }

enum {
    OUT_SHAPE,
    OUT_SIZE,
    OUT_D2S_CRD,
    OUT_S2D,
    OUT_TILED,
    OUT_PART1,
    OUT_GATHERED,
    OUT_SCATTERED,
    OUT_GATHERED_ND,
    OUT_SCATTERED_ND,
    OUT_RANGE,
    OUT_ONEHOT,
    OUT_NONZERO,
    OUT_COMPRESSED,
    OUT_REVERSED,
    OUT_EYE,
    OUT_FILLED,
    N_OUT
};

static void build_model(rouse_buf *out)
{
    ob_model *m = ob_model_new(16);
    ob_input(m, "X", ENG_DT_FLOAT, 4, D(1, 4, 2, 2));
    INIT("sl_starts", ENG_DT_INT64, 1, D(1), int64_t, -1);
    INIT("sl_ends", ENG_DT_INT64, 1, D(1), int64_t, INT64_MIN);
    INIT("sl_axes", ENG_DT_INT64, 1, D(1), int64_t, -1);
    INIT("sl_steps", ENG_DT_INT64, 1, D(1), int64_t, -2);
    INIT("pads", ENG_DT_INT64, 1, D(8), int64_t, 0, 0, 1, 1, 0, 0, 1, 1);
    INIT("k", ENG_DT_INT64, 0, NULL, int64_t, 1);
    INIT("reps", ENG_DT_INT64, 1, D(4), int64_t, 1, 2, 1, 1);
    INIT("eshape", ENG_DT_INT64, 1, D(4), int64_t, 2, 1, 1, 1);
    INIT("split", ENG_DT_INT64, 1, D(2), int64_t, 1, 1);
    INIT("ge_idx", ENG_DT_INT64, 4, D(1, 4, 2, 1), int64_t, 0, 1, -1, 0, 1, 1, 0, 0);
    INIT("se_upd", ENG_DT_FLOAT, 4, D(1, 4, 2, 1), float, 1, 2, 3, 4, 5, 6, 7, 8);
    INIT("nd_idx", ENG_DT_INT64, 2, D(2, 2), int64_t, 0, 1, 0, 3);
    INIT("snd_idx", ENG_DT_INT64, 2, D(1, 2), int64_t, 0, 2);
    INIT("snd_upd", ENG_DT_FLOAT, 3, D(1, 2, 2), float, 2, 2, 2, 2);
    INIT("r0", ENG_DT_FLOAT, 0, NULL, float, 0);
    INIT("r1", ENG_DT_FLOAT, 0, NULL, float, 1);
    INIT("rd", ENG_DT_FLOAT, 0, NULL, float, 0.25f);
    INIT("oh_idx", ENG_DT_INT64, 1, D(3), int64_t, 0, 3, -1);
    INIT("depth", ENG_DT_INT64, 1, D(1), int64_t, 4);
    INIT("oh_val", ENG_DT_FLOAT, 1, D(2), float, 0, 1);
    INIT("nz_in", ENG_DT_INT32, 2, D(2, 3), int32_t, 0, 1, 2, 0, 0, 3);
    INIT("cond", ENG_DT_BOOL, 1, D(4), uint8_t, 1, 0, 1, 1);
    INIT("rs_in", ENG_DT_FLOAT, 2, D(3, 2), float, 1, 2, 3, 4, 5, 6);
    INIT("rs_len", ENG_DT_INT64, 1, D(2), int64_t, 3, 1);
    INIT("cos_shape", ENG_DT_INT64, 1, D(2), int64_t, 2, 2);

    NODE("Shape", ("X"), ("shape"));
    NODE("Size", ("X"), ("size"));
    ob_attr_int(NODE("DepthToSpace", ("X"), ("d2s")), "blocksize", 2);
    ob_node *n = NODE("DepthToSpace", ("X"), ("d2s_crd"));
    ob_attr_int(n, "blocksize", 2);
    ob_attr_string(n, "mode", "CRD");
    ob_attr_int(NODE("SpaceToDepth", ("d2s"), ("s2d")), "blocksize", 2);
    NODE("Slice", ("d2s", "sl_starts", "sl_ends", "sl_axes", "sl_steps"), ("sliced"));
    ob_attr_string(NODE("Pad", ("sliced", "pads"), ("padded")), "mode", "reflect");
    ob_attr_int(NODE("Trilu", ("padded", "k"), ("tri")), "upper", 0);
    NODE("Tile", ("tri", "reps"), ("tiled"));
    NODE("Expand", ("X", "eshape"), ("expanded"));
    ob_attr_int(NODE("Split", ("expanded", "split"), ("part0", "part1")), "axis", 0);
    ob_attr_int(NODE("GatherElements", ("X", "ge_idx"), ("gathered")), "axis", 3);
    n = NODE("ScatterElements", ("X", "ge_idx", "se_upd"), ("scattered"));
    ob_attr_int(n, "axis", 3);
    ob_attr_string(n, "reduction", "add");
    NODE("GatherND", ("X", "nd_idx"), ("gathered_nd"));
    ob_attr_string(NODE("ScatterND", ("X", "snd_idx", "snd_upd"), ("scattered_nd")), "reduction",
                   "mul");
    NODE("Range", ("r0", "r1", "rd"), ("range"));
    ob_attr_int(NODE("OneHot", ("oh_idx", "depth", "oh_val"), ("onehot")), "axis", 0);
    NODE("NonZero", ("nz_in"), ("nonzero"));
    ob_attr_int(NODE("Compress", ("X", "cond"), ("compressed")), "axis", 1);
    NODE("ReverseSequence", ("rs_in", "rs_len"), ("reversed"));
    ob_attr_int(NODE("EyeLike", ("rs_in"), ("eye")), "k", -1);
    NODE("ConstantOfShape", ("cos_shape"), ("filled"));

    static const char *const outs[N_OUT] = {
        "shape",    "size",       "d2s_crd",     "s2d",          "tiled", "part1",
        "gathered", "scattered",  "gathered_nd", "scattered_nd", "range", "onehot",
        "nonzero",  "compressed", "reversed",    "eye",          "filled"};
    for (int i = 0; i < N_OUT; i++)
        ob_output_any(m, outs[i],
                      i == OUT_SHAPE || i == OUT_SIZE || i == OUT_NONZERO ? ENG_DT_INT64
                                                                          : ENG_DT_FLOAT);
    rouse_buf_init(out);
    ob_serialize(m, out);
    ob_model_free(m);
}

static const float x_vals[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

/* Runs m once on x_vals; the session is returned for its outputs. */
static rouse_session *run_once(rouse_model *m)
{
    rouse_errbuf eb;
    rouse_session *s;
    if (rouse_session_create(m, NULL, &s, &eb) < 0) fail_msg("session: %s", eb.msg);
    rouse_tensor x = {.name = "X",
                      .dtype = ROUSE_DT_FLOAT,
                      .rank = 4,
                      .shape = {1, 4, 2, 2},
                      .data = x_vals,
                      .nbytes = sizeof(x_vals)};
    if (rouse_session_run(s, &x, 1, &eb) < 0) fail_msg("run: %s", eb.msg);
    return s;
}

static void assert_out(const rouse_session *s, int i, const void *want, size_t nbytes)
{
    rouse_tensor t;
    assert_int_equal(rouse_session_output(s, i, &t), 0);
    assert_int_equal(t.nbytes, nbytes);
    assert_memory_equal(t.data, want, nbytes);
}
#define OUT_EQ(s, i, T, ...)                                                                       \
    assert_out((s), (i), (const T[]){__VA_ARGS__}, sizeof((const T[]){__VA_ARGS__}))

static void check_outputs(const rouse_session *s)
{
    OUT_EQ(s, OUT_SHAPE, int64_t, 1, 4, 2, 2);
    OUT_EQ(s, OUT_SIZE, int64_t, 16);
    OUT_EQ(s, OUT_D2S_CRD, float, 0, 4, 1, 5, 8, 12, 9, 13, 2, 6, 3, 7, 10, 14, 11, 15);
    assert_out(s, OUT_S2D, x_vals, sizeof(x_vals));
    /* d2s [[0,4,1,5],[8,12,9,13],[2,6,3,7],[10,14,11,15]], columns 3 and 1,
     * reflect-padded by one, lower triangle from k = 1, tiled twice. */
#define TRI 12, 13, 0, 0, 4, 5, 4, 0, 12, 13, 12, 13, 6, 7, 6, 7, 14, 15, 14, 15, 6, 7, 6, 7
    OUT_EQ(s, OUT_TILED, float, TRI, TRI);
#undef TRI
    assert_out(s, OUT_PART1, x_vals, sizeof(x_vals));
    OUT_EQ(s, OUT_GATHERED, float, 0, 3, 5, 6, 9, 11, 12, 14);
    OUT_EQ(s, OUT_SCATTERED, float, 1, 1, 2, 5, 4, 8, 10, 7, 8, 14, 10, 17, 19, 13, 22, 15);
    OUT_EQ(s, OUT_GATHERED_ND, float, 4, 5, 6, 7, 12, 13, 14, 15);
    OUT_EQ(s, OUT_SCATTERED_ND, float, 0, 1, 2, 3, 4, 5, 6, 7, 16, 18, 20, 22, 12, 13, 14, 15);
    OUT_EQ(s, OUT_RANGE, float, 0, 0.25f, 0.5f, 0.75f);
    OUT_EQ(s, OUT_ONEHOT, float, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1);
    OUT_EQ(s, OUT_NONZERO, int64_t, 0, 0, 1, 1, 2, 2);
    OUT_EQ(s, OUT_COMPRESSED, float, 0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 15);
    OUT_EQ(s, OUT_REVERSED, float, 5, 2, 3, 4, 1, 6);
    OUT_EQ(s, OUT_EYE, float, 0, 0, 1, 0, 0, 1);
    OUT_EQ(s, OUT_FILLED, float, 0, 0, 0, 0);
}

static void model_runs_from_onnx_and_plan(void **state)
{
    (void)state;
    rouse_buf b;
    rouse_errbuf eb;
    rouse_model *m, *pm;
    build_model(&b);
    if (rouse_model_load_memory(b.data, b.len, &m, &eb) < 0) fail_msg("load: %s", eb.msg);
    rouse_session *s = run_once(m);
    check_outputs(s);
    rouse_session_destroy(s);

    char path[4096];
    snprintf(path, sizeof(path), "%s/rouse-shape-ops-%d.plan", test_tmp_dir(), (int)getpid());
    if (rouse_model_compile(m, path, &eb) < 0) fail_msg("compile: %s", eb.msg);
    int rc = rouse_model_open_plan(path, &pm, &eb);
    unlink(path);
    if (rc < 0) fail_msg("open plan: %s", eb.msg);
    s = run_once(pm);
    check_outputs(s);
    rouse_session_destroy(s);
    rouse_model_destroy(pm);
    rouse_model_destroy(m);
    rouse_buf_fini(&b);
}

/* Indices fed at run time are checked there: the error names the node. */
static void runtime_index_out_of_range(void **state)
{
    (void)state;
    ob_model *m = ob_model_new(13);
    ob_input(m, "data", ENG_DT_FLOAT, 2, D(2, 3));
    ob_input(m, "idx", ENG_DT_INT64, 2, D(2, 1));
    ob_output(m, "y", ENG_DT_FLOAT, 2, D(2, 3));
    ob_add_node(m, "ScatterND", "scatter_rows", 3, S("data", "idx", "data"), 1, S("y"));
    rouse_buf b;
    rouse_buf_init(&b);
    ob_serialize(m, &b);
    ob_model_free(m);
    rouse_errbuf eb;
    rouse_model *model;
    rouse_session *s;
    if (rouse_model_load_memory(b.data, b.len, &model, &eb) < 0) fail_msg("load: %s", eb.msg);
    assert_int_equal(rouse_session_create(model, NULL, &s, &eb), 0);
    const float data[6] = {1, 2, 3, 4, 5, 6};
    int64_t idx[2] = {1, 0};
    rouse_tensor in[2] = {{.name = "data",
                           .dtype = ROUSE_DT_FLOAT,
                           .rank = 2,
                           .shape = {2, 3},
                           .data = data,
                           .nbytes = sizeof(data)},
                          {.name = "idx",
                           .dtype = ROUSE_DT_INT64,
                           .rank = 2,
                           .shape = {2, 1},
                           .data = idx,
                           .nbytes = sizeof(idx)}};
    assert_int_equal(rouse_session_run(s, in, 2, &eb), 0);
    rouse_tensor y;
    assert_int_equal(rouse_session_output(s, 0, &y), 0);
    const float swapped[6] = {4, 5, 6, 1, 2, 3};
    assert_memory_equal(y.data, swapped, sizeof(swapped));

    idx[0] = 2;
    assert_int_equal(rouse_session_run(s, in, 2, &eb), ROUSE_ERANGE);
    assert_non_null(strstr(eb.msg, "node 'scatter_rows' (ScatterND): index 2 of input 'indices' "
                                   "is out of range for dim 0 of input 'data' (size 2)"));
    idx[0] = -3;
    assert_int_equal(rouse_session_run(s, in, 2, &eb), ROUSE_ERANGE);
    rouse_session_destroy(s);
    rouse_model_destroy(model);
    rouse_buf_fini(&b);
}

/* Shape and Size are known once the input's shape is: the values computed
 * from them (a Reshape target, ConstantOfShape's shape, Range's limit) are
 * folded while preparing, for each input shape. */
static void shapes_fold_at_prepare(void **state)
{
    (void)state;
    ob_model *m = ob_model_new(13);
    ob_input(m, "X", ENG_DT_FLOAT, 3, D(-1, 3, 4));
    INIT("zero", ENG_DT_INT64, 1, D(1), int64_t, 0);
    INIT("one", ENG_DT_INT64, 1, D(1), int64_t, 1);
    INIT("minus_one", ENG_DT_INT64, 1, D(1), int64_t, -1);
    INIT("start", ENG_DT_INT64, 0, NULL, int64_t, 0);
    INIT("delta", ENG_DT_INT64, 0, NULL, int64_t, 5);
    NODE("Shape", ("X"), ("shape"));
    NODE("Size", ("X"), ("size"));
    NODE("Slice", ("shape", "zero", "one"), ("batch"));
    ob_attr_int(NODE("Concat", ("batch", "minus_one"), ("target")), "axis", 0);
    NODE("Reshape", ("X", "target"), ("flat"));
    NODE("ConstantOfShape", ("shape"), ("zeros"));
    NODE("Range", ("start", "size", "delta"), ("steps"));
    ob_output_any(m, "flat", ENG_DT_FLOAT);
    ob_output_any(m, "zeros", ENG_DT_FLOAT);
    ob_output_any(m, "steps", ENG_DT_INT64);
    rouse_buf b;
    rouse_buf_init(&b);
    ob_serialize(m, &b);
    ob_model_free(m);

    rouse_errbuf eb;
    rouse_model *model;
    rouse_session *s;
    if (rouse_model_load_memory(b.data, b.len, &model, &eb) < 0) fail_msg("load: %s", eb.msg);
    assert_int_equal(rouse_session_create(model, NULL, &s, &eb), 0);
    static float x[3 * 12];
    for (int batch = 1; batch <= 3; batch += 2) {
        rouse_tensor in = {.name = "X",
                           .dtype = ROUSE_DT_FLOAT,
                           .rank = 3,
                           .shape = {batch, 3, 4},
                           .data = x,
                           .nbytes = sizeof(float) * 12 * (size_t)batch};
        if (rouse_session_run(s, &in, 1, &eb) < 0) fail_msg("run (batch %d): %s", batch, eb.msg);
        rouse_tensor flat, zeros, steps;
        assert_int_equal(rouse_session_output(s, 0, &flat), 0);
        assert_int_equal(flat.rank, 2);
        assert_int_equal(flat.shape[0], batch);
        assert_int_equal(flat.shape[1], 12);
        assert_int_equal(rouse_session_output(s, 1, &zeros), 0);
        assert_int_equal(zeros.rank, 3);
        assert_int_equal(zeros.shape[0], batch);
        assert_int_equal(rouse_session_output(s, 2, &steps), 0);
        assert_int_equal(steps.shape[0], (12 * batch + 4) / 5);
        assert_int_equal(((const int64_t *)steps.data)[steps.shape[0] - 1],
                         5 * (steps.shape[0] - 1));
    }
    rouse_session_destroy(s);
    rouse_model_destroy(model);
    rouse_buf_fini(&b);
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--write-seed")) {
        rouse_buf b;
        build_model(&b);
        FILE *f = fopen(argv[2], "wb");
        int ok = f && fwrite(b.data, 1, b.len, f) == b.len;
        if (f && fclose(f) != 0) ok = 0;
        rouse_buf_fini(&b);
        return ok ? 0 : 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(model_runs_from_onnx_and_plan),
        cmocka_unit_test(runtime_index_out_of_range),
        cmocka_unit_test(shapes_fold_at_prepare),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
