/*
 * The reduce family (src/engine/ops/reduce.c, reduce_einsum.c) against
 * hand-computed values: every reduction kind, axes as attribute and as
 * input, keepdims, noop_with_empty_axes, empty reduced sets, integer wrap
 * and half types; ArgMax/ArgMin with select_last_index; TopK order and
 * ties; CumSum's exclusive and reverse forms; Einsum's matmul, diagonal,
 * trace, ellipsis and implicit output. Then the error paths: bad attributes
 * at load, out-of-range axes and k at prepare, malformed equations, and the
 * check hooks the plan reader runs on stored records.
 */
#include "reduce_harness.h"

#include <unistd.h>

#include "engine/op.h"
#include "tmp_dir.h"

static const int64_t S1[1] = {1};

/* A float input x of shape [2, 2] = [[1, -2], [3, 4]]. */
static const float X22[4] = {1, -2, 3, 4};

static h_node reduce_node(const char *op, int opset, const float *x, int rank, const int64_t *shape)
{
    h_node n = {.opset = opset, .op = op, .n_in = 1, .n_out = 1};
    n.in[0] = (h_in){.name = "x", .dtype = ROUSE_DT_FLOAT, .rank = rank, .data = x};
    memcpy(n.in[0].shape, shape, sizeof(int64_t) * (size_t)rank);
    n.out[0] = "y";
    n.out_dtype[0] = ROUSE_DT_FLOAT;
    return n;
}

static void add_ints(h_node *n, const char *name, int count, const int64_t *v)
{
    h_attr *a = &n->attr[n->n_attr++];
    *a = (h_attr){.name = name, .kind = 'l', .n = count};
    memcpy(a->ints, v, sizeof(int64_t) * (size_t)count);
}

static void add_int(h_node *n, const char *name, int64_t v)
{
    n->attr[n->n_attr++] = (h_attr){.name = name, .kind = 'i', .i = v};
}

static void every_reduction_kind(void **state)
{
    (void)state;
    static const int64_t shape[2] = {2, 2}, yshape[2] = {2, 1}, ax[1] = {1};
    static const struct {
        const char *op;
        double want[2];
    } cases[] = {
        {"ReduceMax", {1, 4}},
        {"ReduceMin", {-2, 3}},
        {"ReduceProd", {-2, 12}},
        {"ReduceL1", {3, 7}},
        {"ReduceL2", {2.2360679774997896, 5}},
        {"ReduceSumSquare", {5, 25}},
        {"ReduceLogSumExp", {1.0485873515737421, 4.3132616875182228}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        h_node n = reduce_node(cases[i].op, 13, X22, 2, shape);
        add_ints(&n, "axes", 1, ax);
        h_result r;
        h_ok(&n, &r);
        h_expect(&r, 0, ROUSE_DT_FLOAT, 2, yshape, cases[i].want);
        h_free(&r);
    }
    /* LogSum of positive values, every axis (no axes attribute), no keepdims. */
    static const float pos[4] = {1, 2, 3, 4};
    h_node n = reduce_node("ReduceLogSum", 13, pos, 2, shape);
    add_int(&n, "keepdims", 0);
    h_result r;
    h_ok(&n, &r);
    double want = log(10.0);
    h_expect(&r, 0, ROUSE_DT_FLOAT, 0, NULL, &want);
    h_free(&r);
}

static void reduce_sum_axes_input(void **state)
{
    (void)state;
    static const float x[6] = {1, 2, 3, 4, 5, 6};
    static const int64_t shape[2] = {2, 3};
    static const int64_t axes[1] = {-1};
    h_node n = reduce_node("ReduceSum", 13, x, 2, shape);
    n.n_in = 2;
    n.in[1] = (h_in){.name = "axes", .dtype = ROUSE_DT_INT64, .rank = 1, .shape = {1},
                     .data = axes, .init = true};
    add_int(&n, "keepdims", 0);
    h_result r;
    h_ok(&n, &r);
    static const int64_t ys[1] = {2};
    static const double want[2] = {6, 15};
    h_expect(&r, 0, ROUSE_DT_FLOAT, 1, ys, want);
    h_free(&r);

    /* The same axes given as a graph input (known when preparing). */
    n.in[1].init = false;
    h_ok(&n, &r);
    h_expect(&r, 0, ROUSE_DT_FLOAT, 1, ys, want);
    h_free(&r);

    /* Empty axes with noop_with_empty_axes: the input unchanged. */
    n.in[1].shape[0] = 0;
    n.in[1].init = true;
    add_int(&n, "noop_with_empty_axes", 1);
    h_ok(&n, &r);
    static const double same[6] = {1, 2, 3, 4, 5, 6};
    h_expect(&r, 0, ROUSE_DT_FLOAT, 2, shape, same);
    h_free(&r);

    /* Empty axes without noop: every axis. */
    n.n_attr = 1;
    h_ok(&n, &r);
    static const double all = 21;
    h_expect(&r, 0, ROUSE_DT_FLOAT, 0, NULL, &all);
    h_free(&r);
}

static void empty_sets_give_the_identity(void **state)
{
    (void)state;
    static const int64_t shape[2] = {2, 0}, yshape[2] = {2, 1}, ax[1] = {1};
    static const struct {
        const char *op;
        int dtype;
        double want;
    } cases[] = {
        {"ReduceSum", ROUSE_DT_FLOAT, 0},       {"ReduceProd", ROUSE_DT_FLOAT, 1},
        {"ReduceMax", ROUSE_DT_FLOAT, -INFINITY}, {"ReduceMin", ROUSE_DT_FLOAT, INFINITY},
        {"ReduceLogSumExp", ROUSE_DT_FLOAT, -INFINITY}, {"ReduceL2", ROUSE_DT_FLOAT, 0},
        {"ReduceMax", ROUSE_DT_INT8, -128},     {"ReduceMin", ROUSE_DT_INT8, 127},
        {"ReduceMin", ROUSE_DT_UINT16, 65535},  {"ReduceProd", ROUSE_DT_INT32, 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        h_node n = reduce_node(cases[i].op, 11, NULL, 2, shape);
        n.in[0].dtype = n.out_dtype[0] = cases[i].dtype;
        add_ints(&n, "axes", 1, ax);
        h_result r;
        h_ok(&n, &r);
        double want[2] = {cases[i].want, cases[i].want};
        h_expect(&r, 0, cases[i].dtype, 2, yshape, want);
        h_free(&r);
    }
}

static void integer_and_half_types(void **state)
{
    (void)state;
    /* int8 sums wrap modulo 256, as numpy's. */
    static const int8_t x8[2] = {100, 100};
    h_node n = reduce_node("ReduceSum", 11, NULL, 1, (int64_t[]){2});
    n.in[0].dtype = n.out_dtype[0] = ROUSE_DT_INT8;
    n.in[0].data = x8;
    h_result r;
    h_ok(&n, &r);
    double want = -56;
    h_expect(&r, 0, ROUSE_DT_INT8, 1, S1, &want);
    h_free(&r);

    /* uint64 maxima compare unsigned. */
    static const uint64_t xu[3] = {1, UINT64_C(1) << 63, 7};
    n = reduce_node("ReduceMax", 13, NULL, 1, (int64_t[]){3});
    n.in[0].dtype = n.out_dtype[0] = ROUSE_DT_UINT64;
    n.in[0].data = xu;
    h_ok(&n, &r);
    want = 9223372036854775808.0;
    h_expect(&r, 0, ROUSE_DT_UINT64, 1, S1, &want);
    h_free(&r);

    /* float16 through float: 1.5 + 2.25 = 3.75. */
    static const uint16_t xh[2] = {0x3e00, 0x4080};
    n = reduce_node("ReduceSum", 11, NULL, 1, (int64_t[]){2});
    n.in[0].dtype = n.out_dtype[0] = ROUSE_DT_FLOAT16;
    n.in[0].data = xh;
    h_ok(&n, &r);
    want = 3.75;
    h_expect(&r, 0, ROUSE_DT_FLOAT16, 1, S1, &want);
    h_free(&r);
}

static void argmax_argmin(void **state)
{
    (void)state;
    static const float x[8] = {1, 3, 3, 2, 5, 0, 0, 5};
    static const int64_t shape[2] = {2, 4}, ys[2] = {2, 1}, ys0[1] = {2};
    h_node n = reduce_node("ArgMax", 13, x, 2, shape);
    n.out_dtype[0] = ROUSE_DT_INT64;
    add_int(&n, "axis", -1);
    h_result r;
    h_ok(&n, &r);
    h_expect(&r, 0, ROUSE_DT_INT64, 2, ys, (double[]){1, 0});
    h_free(&r);
    add_int(&n, "select_last_index", 1);
    h_ok(&n, &r);
    h_expect(&r, 0, ROUSE_DT_INT64, 2, ys, (double[]){2, 3});
    h_free(&r);

    n = reduce_node("ArgMin", 13, x, 2, shape);
    n.out_dtype[0] = ROUSE_DT_INT64;
    add_int(&n, "axis", 1);
    add_int(&n, "keepdims", 0);
    h_ok(&n, &r);
    h_expect(&r, 0, ROUSE_DT_INT64, 1, ys0, (double[]){0, 1});
    h_free(&r);
    add_int(&n, "select_last_index", 1);
    h_ok(&n, &r);
    h_expect(&r, 0, ROUSE_DT_INT64, 1, ys0, (double[]){0, 2});
    h_free(&r);
}

static h_node topk_node(const float *x, int64_t len, const int64_t *k)
{
    h_node n = reduce_node("TopK", 11, x, 1, (int64_t[]){len});
    n.n_in = 2;
    n.in[1] = (h_in){.name = "k", .dtype = ROUSE_DT_INT64, .rank = 1, .shape = {1}, .data = k,
                     .init = true};
    n.n_out = 2;
    n.out[1] = "i";
    n.out_dtype[1] = ROUSE_DT_INT64;
    return n;
}

static void topk_order_and_ties(void **state)
{
    (void)state;
    static const float x[5] = {3, 1, 3, 2, 1};
    static const int64_t k2 = 2, k3 = 3, k9 = 9;
    h_node n = topk_node(x, 5, &k2);
    h_result r;
    h_ok(&n, &r);
    static const int64_t s2[1] = {2}, s3[1] = {3};
    h_expect(&r, 0, ROUSE_DT_FLOAT, 1, s2, (double[]){3, 3});
    h_expect(&r, 1, ROUSE_DT_INT64, 1, s2, (double[]){0, 2});
    h_free(&r);

    n = topk_node(x, 5, &k3);
    add_int(&n, "largest", 0);
    h_ok(&n, &r);
    h_expect(&r, 0, ROUSE_DT_FLOAT, 1, s3, (double[]){1, 1, 2});
    h_expect(&r, 1, ROUSE_DT_INT64, 1, s3, (double[]){1, 4, 3});
    h_free(&r);

    n = topk_node(x, 5, &k9);
    h_err(&n, ROUSE_EMISMATCH, "k = 9 is out of range for axis 0 of input 'X' (size 5)");
}

static void cumsum_forms(void **state)
{
    (void)state;
    static const int32_t x[3] = {1, 2, 3};
    static const int64_t axis = 0;
    static const int64_t s3[1] = {3};
    static const struct {
        int exclusive, reverse;
        double want[3];
    } cases[] = {
        {0, 0, {1, 3, 6}},
        {1, 0, {0, 1, 3}},
        {0, 1, {6, 5, 3}},
        {1, 1, {5, 3, 0}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        h_node n = reduce_node("CumSum", 14, NULL, 1, s3);
        n.in[0].dtype = n.out_dtype[0] = ROUSE_DT_INT32;
        n.in[0].data = x;
        n.n_in = 2;
        n.in[1] = (h_in){.name = "axis", .dtype = ROUSE_DT_INT64, .rank = 0, .data = &axis,
                         .init = true};
        add_int(&n, "exclusive", cases[i].exclusive);
        add_int(&n, "reverse", cases[i].reverse);
        h_result r;
        h_ok(&n, &r);
        h_expect(&r, 0, ROUSE_DT_INT32, 1, s3, cases[i].want);
        h_free(&r);
    }
}

static h_node einsum_node(const char *eq, int n_in, const float *const *x, const int *rank,
                          const int64_t (*shape)[3])
{
    static const char *names[3] = {"a", "b", "c"};
    h_node n = {.opset = 12, .op = "Einsum", .n_in = n_in, .n_out = 1};
    for (int i = 0; i < n_in; i++) {
        n.in[i] = (h_in){.name = names[i], .dtype = ROUSE_DT_FLOAT, .rank = rank[i], .data = x[i]};
        memcpy(n.in[i].shape, shape[i], sizeof(int64_t) * 3);
    }
    n.out[0] = "y";
    n.out_dtype[0] = ROUSE_DT_FLOAT;
    n.attr[n.n_attr++] = (h_attr){.name = "equation", .kind = 's', .s = eq};
    return n;
}

static void einsum_forms(void **state)
{
    (void)state;
    static const float a[6] = {1, 2, 3, 4, 5, 6}; /* [2, 3] */
    static const float b[6] = {1, 0, 0, 1, 1, 1}; /* [3, 2] */
    static const float sq[4] = {1, 2, 3, 4};      /* [2, 2] */
    h_result r;

    /* Matrix product. */
    h_node n = einsum_node("ij,jk->ik", 2, (const float *[]){a, b}, (int[]){2, 2},
                           (const int64_t[][3]){{2, 3}, {3, 2}});
    h_ok(&n, &r);
    h_expect(&r, 0, ROUSE_DT_FLOAT, 2, (int64_t[]){2, 2}, (double[]){4, 5, 10, 11});
    h_free(&r);

    /* Same, implicit output (j used twice: summed; i, k in order), spaces. */
    n = einsum_node("ij, jk", 2, (const float *[]){a, b}, (int[]){2, 2},
                    (const int64_t[][3]){{2, 3}, {3, 2}});
    h_ok(&n, &r);
    h_expect(&r, 0, ROUSE_DT_FLOAT, 2, (int64_t[]){2, 2}, (double[]){4, 5, 10, 11});
    h_free(&r);

    /* Diagonal, trace (implicit: a scalar), sum of everything. */
    n = einsum_node("ii->i", 1, (const float *[]){sq}, (int[]){2}, (const int64_t[][3]){{2, 2}});
    h_ok(&n, &r);
    h_expect(&r, 0, ROUSE_DT_FLOAT, 1, (int64_t[]){2}, (double[]){1, 4});
    h_free(&r);
    n = einsum_node("ii", 1, (const float *[]){sq}, (int[]){2}, (const int64_t[][3]){{2, 2}});
    h_ok(&n, &r);
    h_expect(&r, 0, ROUSE_DT_FLOAT, 0, NULL, (double[]){5});
    h_free(&r);
    n = einsum_node("ij->", 1, (const float *[]){a}, (int[]){2}, (const int64_t[][3]){{2, 3}});
    h_ok(&n, &r);
    h_expect(&r, 0, ROUSE_DT_FLOAT, 0, NULL, (double[]){21});
    h_free(&r);

    /* Ellipsis: a batched transpose, and broadcasting of the batch dims. */
    n = einsum_node("...ij->...ji", 1, (const float *[]){a}, (int[]){3},
                    (const int64_t[][3]){{1, 2, 3}});
    h_ok(&n, &r);
    h_expect(&r, 0, ROUSE_DT_FLOAT, 3, (int64_t[]){1, 3, 2}, (double[]){1, 4, 2, 5, 3, 6});
    h_free(&r);
    n = einsum_node("...i,...i->...", 2, (const float *[]){a, b}, (int[]){2, 1},
                    (const int64_t[][3]){{2, 3}, {3}});
    h_ok(&n, &r);
    h_expect(&r, 0, ROUSE_DT_FLOAT, 1, (int64_t[]){2}, (double[]){1, 4});
    h_free(&r);

    /* Three int32 operands: sum of cubes, 1 + 8 + 27. */
    static const int32_t v[3] = {1, 2, 3};
    n = einsum_node("i,i,i->", 3, (const float *[]){NULL, NULL, NULL}, (int[]){1, 1, 1},
                    (const int64_t[][3]){{3}, {3}, {3}});
    for (int i = 0; i < 3; i++) {
        n.in[i].dtype = ROUSE_DT_INT32;
        n.in[i].data = v;
    }
    n.out_dtype[0] = ROUSE_DT_INT32;
    h_ok(&n, &r);
    h_expect(&r, 0, ROUSE_DT_INT32, 0, NULL, (double[]){36});
    h_free(&r);

    /* Errors: sizes that disagree, characters that are not labels, a
     * repeated output label, more operands than inputs. */
    n = einsum_node("ij,jk->ik", 2, (const float *[]){a, a}, (int[]){2, 2},
                    (const int64_t[][3]){{2, 3}, {2, 3}});
    h_err(&n, ROUSE_EMISMATCH, "gives one label two different sizes");
    n = einsum_node("i$j", 1, (const float *[]){a}, (int[]){2}, (const int64_t[][3]){{2, 3}});
    h_err(&n, ROUSE_EFORMAT, "attribute 'equation' has a character that is not a letter");
    n = einsum_node("ij->ii", 1, (const float *[]){a}, (int[]){2}, (const int64_t[][3]){{2, 3}});
    h_err(&n, ROUSE_EFORMAT, "repeats a label in the output");
    n = einsum_node("ij,jk", 1, (const float *[]){a}, (int[]){2}, (const int64_t[][3]){{2, 3}});
    h_err(&n, ROUSE_EMISMATCH, "names a different number of operands");
    n = einsum_node("...j->j", 1, (const float *[]){a}, (int[]){2}, (const int64_t[][3]){{2, 3}});
    h_err(&n, ROUSE_EMISMATCH, "has broadcast dims ('...') in its inputs but none in its output");
    n = einsum_node("ijk", 1, (const float *[]){a}, (int[]){2}, (const int64_t[][3]){{2, 3}});
    h_err(&n, ROUSE_EMISMATCH, "does not match the operand's rank");
}

static void bad_attributes_and_shapes(void **state)
{
    (void)state;
    static const int64_t shape[2] = {2, 2};
    h_node n = reduce_node("ReduceMax", 13, X22, 2, shape);
    add_ints(&n, "axes", 1, (int64_t[]){2});
    h_err(&n, ROUSE_EMISMATCH, "node 'node0' (ReduceMax): axis 2 is out of range for input 'data'");

    n = reduce_node("ReduceMax", 13, X22, 2, shape);
    add_ints(&n, "axes", 2, (int64_t[]){1, -1});
    h_err(&n, ROUSE_EFORMAT, "axis -1 is given twice");

    n = reduce_node("ReduceMin", 13, X22, 2, shape);
    add_int(&n, "keepdims", 2);
    h_err(&n, ROUSE_EFORMAT, "node 'node0' (ReduceMin): attribute 'keepdims' must be 0 or 1");

    n = reduce_node("ReduceL1", 13, X22, 2, shape);
    add_ints(&n, "axes", 1, (int64_t[]){100});
    h_err(&n, ROUSE_EFORMAT, "attribute 'axes' value 100 is out of range");

    n = reduce_node("ArgMax", 13, X22, 2, shape);
    n.out_dtype[0] = ROUSE_DT_INT64;
    add_int(&n, "axis", 9);
    h_err(&n, ROUSE_EFORMAT, "node 'node0' (ArgMax): attribute 'axis' is out of range");

    n = reduce_node("ArgMin", 13, NULL, 2, (int64_t[]){2, 0});
    n.out_dtype[0] = ROUSE_DT_INT64;
    add_int(&n, "axis", 1);
    h_err(&n, ROUSE_EMISMATCH, "axis 1 of input 'data' is empty: there is no minimum");

    /* TopK's k must be known when preparing, one value, not negative. */
    static const float x[3] = {1, 2, 3};
    static const int64_t kneg = -1;
    n = topk_node(x, 3, &kneg);
    h_err(&n, ROUSE_EMISMATCH, "k = -1 is out of range");
    static const int64_t k = 1;
    n = topk_node(x, 3, &k);
    n.in[1].init = false;
    h_result r;
    h_ok(&n, &r); /* a graph input: its value keys the plan */
    h_free(&r);

    /* CumSum's axis must be a scalar in range. */
    static const int64_t ax5 = 5;
    n = reduce_node("CumSum", 14, x, 1, (int64_t[]){3});
    n.n_in = 2;
    n.in[1] = (h_in){.name = "axis", .dtype = ROUSE_DT_INT64, .rank = 0, .data = &ax5,
                     .init = true};
    h_err(&n, ROUSE_EMISMATCH, "axis 5 is out of range");

    /* Reductions of strings or other unsupported types are refused by name. */
    n = reduce_node("ReduceSum", 11, NULL, 1, (int64_t[]){2});
    n.in[0].dtype = n.out_dtype[0] = ROUSE_DT_BOOL;
    static const uint8_t bools[2] = {1, 0};
    n.in[0].data = bools;
    h_err(&n, ROUSE_EUNSUPPORTED, "element type bool of input 'data' is not supported");
}

/* The plan reader runs the check hooks on stored records: out-of-range
 * values must be refused, not trusted. */
static void check_hooks_refuse_bad_records(void **state)
{
    (void)state;
    eng_node n = {.name = "n", .opset = 13};
    n.op = ENG_OP_REDUCE_SUM;
    const eng_op_desc *d = eng_op_desc_get(n.op);
    assert_non_null(d);
    n.attrs.reduce.red = (eng_reduce_axes_attrs){.n_axes = 1, .axes = {0}, .keepdims = 1};
    assert_int_equal(d->check(&n, NULL), 0);
    n.attrs.reduce.red.n_axes = ENG_MAX_RANK + 1;
    assert_int_equal(d->check(&n, NULL), ROUSE_EFORMAT);
    n.attrs.reduce.red = (eng_reduce_axes_attrs){.n_axes = 1, .axes = {-100}, .keepdims = 1};
    assert_int_equal(d->check(&n, NULL), ROUSE_EFORMAT);
    n.attrs.reduce.red = (eng_reduce_axes_attrs){.n_axes = -1, .keepdims = 3};
    assert_int_equal(d->check(&n, NULL), ROUSE_EFORMAT);

    n.op = ENG_OP_TOPK;
    n.attrs.reduce.topk = (eng_topk_attrs){.axis = 1000, .largest = 1, .sorted = 1, .k = -1};
    assert_int_equal(eng_op_desc_get(n.op)->check(&n, NULL), ROUSE_EFORMAT);

    n.op = ENG_OP_EINSUM;
    memset(n.attrs.reduce.einsum.equation, 'a', ENG_EINSUM_EQ_MAX);
    assert_int_equal(eng_op_desc_get(n.op)->check(&n, NULL), ROUSE_EFORMAT);
    strcpy(n.attrs.reduce.einsum.equation, "ij,jk->ik");
    assert_int_equal(eng_op_desc_get(n.op)->check(&n, NULL), 0);
    strcpy(n.attrs.reduce.einsum.equation, "i..j");
    assert_int_equal(eng_op_desc_get(n.op)->check(&n, NULL), ROUSE_EFORMAT);
}

/* ReduceSum/Max/Min/Prod/L1/L2/SumSquare on oneDNN agree with the
 * reference kernels (with and without keepdims, several axis sets, odd
 * shapes). */
static void reductions_dnnl_match_reference(void **state)
{
    (void)state;
    static const char *ops[] = {"ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd",
                                "ReduceL1",  "ReduceL2",  "ReduceSumSquare"};
    static const int64_t shape[3] = {3, 5, 7};
    static const struct {
        int n;
        int64_t axes[3];
    } sets[] = {{1, {2}}, {1, {0}}, {2, {0, 2}}, {3, {0, 1, 2}}, {1, {-2}}};
    float *x = h_rand(3 * 5 * 7);
    for (size_t o = 0; o < sizeof(ops) / sizeof(ops[0]); o++) {
        for (size_t s = 0; s < sizeof(sets) / sizeof(sets[0]); s++) {
            for (int keep = 0; keep < 2; keep++) {
                h_node n = reduce_node(ops[o], 13, x, 3, shape);
                if (!strcmp(ops[o], "ReduceSum")) n.opset = 11; /* the attribute form */
                add_ints(&n, "axes", sets[s].n, sets[s].axes);
                add_int(&n, "keepdims", keep);
                rouse_session_stats st = h_both(&n);
                assert_int_equal(st.dnnl_steps, 1);
                assert_int_equal(st.ref_steps, 0);
            }
        }
    }
    free(x);
}

/* A reduction without keepdims is a view of oneDNN's result: a second
 * reduction (oneDNN) and a graph output read it correctly. */
static void reduction_views_chain(void **state)
{
    (void)state;
    ob_model *m = ob_model_new(11);
    int64_t xs[3] = {3, 5, 7}, a2[1] = {2}, a1[1] = {1};
    ob_input(m, "x", ROUSE_DT_FLOAT, 3, xs);
    ob_node *n = ob_add_node(m, "ReduceSum", "s", 1, (const char *[]){"x"}, 1, (const char *[]){"s"});
    ob_attr_ints(n, "axes", 1, a2);
    ob_attr_int(n, "keepdims", 0);
    n = ob_add_node(m, "ReduceMax", "m", 1, (const char *[]){"s"}, 1, (const char *[]){"y"});
    ob_attr_ints(n, "axes", 1, a1);
    ob_attr_int(n, "keepdims", 0);
    ob_output_any(m, "s", ROUSE_DT_FLOAT);
    ob_output_any(m, "y", ROUSE_DT_FLOAT);
    rouse_buf b;
    rouse_buf_init(&b);
    ob_serialize(m, &b);
    ob_model_free(m);
    float *x = h_rand(105);
    rouse_tensor in = {.name = "x", .dtype = ROUSE_DT_FLOAT, .rank = 3, .shape = {3, 5, 7},
                       .data = x, .nbytes = sizeof(float) * 105};
    rouse_errbuf eb;
    rouse_model *model;
    rouse_session *fast;
    rouse_session_options fo = {.threads = 1};
    if (rouse_model_load_memory(b.data, b.len, &model, &eb) < 0) fail_msg("load: %s", eb.msg);
    if (rouse_session_create(model, &fo, &fast, &eb) < 0) fail_msg("session: %s", eb.msg);
    if (rouse_session_run(fast, &in, 1, &eb) < 0) fail_msg("run: %s", eb.msg);
    rouse_tensor ts, ty;
    assert_int_equal(rouse_session_output(fast, 0, &ts), 0);
    assert_int_equal(rouse_session_output(fast, 1, &ty), 0);
    assert_int_equal(ts.rank, 2);
    assert_int_equal(ty.rank, 1);
    assert_int_equal(ty.shape[0], 3);
    for (int i = 0; i < 3; i++) {
        double best = -INFINITY;
        for (int j = 0; j < 5; j++) {
            double sum = 0;
            for (int k = 0; k < 7; k++)
                sum += x[(i * 5 + j) * 7 + k];
            float got = ((const float *)ts.data)[i * 5 + j];
            if (fabs(got - sum) > 1e-5) fail_msg("s[%d][%d]: %g, want %g", i, j, got, sum);
            if (sum > best) best = sum;
        }
        float got = ((const float *)ty.data)[i];
        if (fabs(got - best) > 1e-5) fail_msg("y[%d]: %g, want %g", i, got, best);
    }
    rouse_session_stats st;
    assert_int_equal(rouse_session_get_stats(fast, &st), 0);
    assert_int_equal(st.dnnl_steps, 2);
    rouse_session_destroy(fast);
    rouse_model_destroy(model);
    rouse_buf_fini(&b);
    free(x);
}

/* One model with every op of the family that a fuzzer should start from
 * (fuzz/corpus/onnx_load/reduce_norm_ops.onnx holds these bytes, written
 * with ROUSE_SEED_OUT set, and fuzz/corpus/plan_open/reduce_norm_ops.plan
 * their compiled plan): both kernel sets agree on each of its ten outputs,
 * and so does the model compiled to a plan and opened again. */
static void seed_model_runs(void **state)
{
    (void)state;
    ob_model *m = ob_model_new(17);
    int64_t xs[3] = {2, 3, 4}, s4[1] = {4}, s3[1] = {3}, s1[1] = {1};
    ob_input(m, "x", ROUSE_DT_FLOAT, 3, xs);
    float sc4[4] = {1, 2, 3, 4}, b4[4] = {0, 0.5f, 0, 0}, sc3[3] = {1, 1, 2}, b3[3] = {0, 1, 0};
    int64_t axes1[1] = {1}, k2[1] = {2}, ax2 = 2, ax2l[1] = {2}, ax02[2] = {0, 2};
    ob_initializer(m, "axes", ROUSE_DT_INT64, 1, s1, axes1, 8);
    ob_initializer(m, "scale", ROUSE_DT_FLOAT, 1, s4, sc4, 16);
    ob_initializer(m, "bias", ROUSE_DT_FLOAT, 1, s4, b4, 16);
    ob_initializer(m, "k", ROUSE_DT_INT64, 1, s1, k2, 8);
    ob_initializer(m, "cax", ROUSE_DT_INT64, 0, NULL, &ax2, 8);
    ob_initializer(m, "is", ROUSE_DT_FLOAT, 1, s3, sc3, 12);
    ob_initializer(m, "ib", ROUSE_DT_FLOAT, 1, s3, b3, 12);
    ob_node *n;
    n = ob_add_node(m, "ReduceSum", "rs", 2, (const char *[]){"x", "axes"}, 1, (const char *[]){"r"});
    n = ob_add_node(m, "LayerNormalization", "ln", 3, (const char *[]){"x", "scale", "bias"}, 1,
                    (const char *[]){"l"});
    ob_attr_float(n, "epsilon", 1e-3f);
    n = ob_add_node(m, "TopK", "tk", 2, (const char *[]){"l", "k"}, 2, (const char *[]){"v", "vi"});
    ob_attr_int(n, "largest", 0);
    n = ob_add_node(m, "ArgMax", "am", 1, (const char *[]){"x"}, 1, (const char *[]){"a"});
    ob_attr_int(n, "axis", 2);
    ob_attr_int(n, "select_last_index", 1);
    n = ob_add_node(m, "CumSum", "cs", 2, (const char *[]){"x", "cax"}, 1, (const char *[]){"c"});
    ob_attr_int(n, "reverse", 1);
    n = ob_add_node(m, "Einsum", "es", 1, (const char *[]){"x"}, 1, (const char *[]){"e"});
    ob_attr_string(n, "equation", "...ij->...ji");
    n = ob_add_node(m, "ReduceLogSumExp", "lse", 1, (const char *[]){"x"}, 1, (const char *[]){"lse"});
    ob_attr_ints(n, "axes", 1, ax2l);
    ob_attr_int(n, "keepdims", 0);
    ob_add_node(m, "InstanceNormalization", "inorm", 3, (const char *[]){"x", "is", "ib"}, 1,
                (const char *[]){"in"});
    n = ob_add_node(m, "LpNormalization", "lp", 1, (const char *[]){"x"}, 1, (const char *[]){"lp"});
    ob_attr_int(n, "p", 1);
    n = ob_add_node(m, "MeanVarianceNormalization", "mvn", 1, (const char *[]){"x"}, 1,
                    (const char *[]){"mvn"});
    ob_attr_ints(n, "axes", 2, ax02);
    static const char *outs[10] = {"r", "v", "vi", "a", "c", "e", "lse", "in", "lp", "mvn"};
    static const int dts[10] = {1, 1, 7, 7, 1, 1, 1, 1, 1, 1};
    for (int i = 0; i < 10; i++)
        ob_output_any(m, outs[i], dts[i]);
    rouse_buf b;
    rouse_buf_init(&b);
    ob_serialize(m, &b);
    ob_model_free(m);
    /* ROUSE_SEED_OUT=FILE writes the model, to refresh the fuzz seed. */
    const char *seed_out = getenv("ROUSE_SEED_OUT");
    if (seed_out) {
        FILE *f = fopen(seed_out, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(b.data, 1, b.len, f), b.len);
        assert_int_equal(fclose(f), 0);
    }

    float *x = h_rand(24);
    rouse_tensor in = {.name = "x", .dtype = ROUSE_DT_FLOAT, .rank = 3, .shape = {2, 3, 4},
                       .data = x, .nbytes = sizeof(float) * 24};
    rouse_errbuf eb;
    rouse_model *model;
    rouse_session *fast, *ref;
    rouse_session_options fo = {.threads = 1}, ro = {.threads = 1, .reference_kernels = 1};
    if (rouse_model_load_memory(b.data, b.len, &model, &eb) < 0) fail_msg("load: %s", eb.msg);
    if (rouse_session_create(model, &fo, &fast, &eb) < 0) fail_msg("session: %s", eb.msg);
    if (rouse_session_create(model, &ro, &ref, &eb) < 0) fail_msg("session: %s", eb.msg);
    if (rouse_session_run(fast, &in, 1, &eb) < 0) fail_msg("run: %s", eb.msg);
    if (rouse_session_run(ref, &in, 1, &eb) < 0) fail_msg("run: %s", eb.msg);
    assert_int_equal(rouse_model_n_outputs(model), 10);
    for (int i = 0; i < 10; i++) {
        rouse_tensor ta, tb;
        assert_int_equal(rouse_session_output(fast, i, &ta), 0);
        assert_int_equal(rouse_session_output(ref, i, &tb), 0);
        assert_int_equal(ta.nbytes, tb.nbytes);
        assert_true(ta.nbytes > 0);
        if (dts[i] == ROUSE_DT_INT64) {
            assert_memory_equal(ta.data, tb.data, ta.nbytes);
            continue;
        }
        const float *pa = ta.data, *pb = tb.data;
        for (size_t j = 0; j < ta.nbytes / 4; j++)
            if (!(fabsf(pa[j] - pb[j]) <= 1e-4f + 1e-3f * fabsf(pb[j])))
                fail_msg("output %s element %zu: %g vs %g", outs[i], j, (double)pa[j],
                         (double)pb[j]);
    }
    rouse_session_stats st;
    assert_int_equal(rouse_session_get_stats(fast, &st), 0);
    assert_int_equal(st.dnnl_steps, 2); /* ReduceSum, LayerNormalization (a batch of 2 keeps
                                           InstanceNormalization on the reference) */

    /* Through a compiled plan: every record is kept (and passes its check
     * when read back), and the outputs are the same bytes. */
    char path[4096];
    snprintf(path, sizeof(path), "%s/rouse_reduce_plan_XXXXXX", test_tmp_dir());
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    rouse_model *planned;
    rouse_session *ps;
    if (rouse_model_compile(model, path, &eb) < 0) fail_msg("compile: %s", eb.msg);
    if (rouse_model_open_plan(path, &planned, &eb) < 0) fail_msg("open plan: %s", eb.msg);
    if (rouse_session_create(planned, &fo, &ps, &eb) < 0) fail_msg("plan session: %s", eb.msg);
    if (rouse_session_run(ps, &in, 1, &eb) < 0) fail_msg("plan run: %s", eb.msg);
    for (int i = 0; i < 10; i++) {
        rouse_tensor ta, tp;
        assert_int_equal(rouse_session_output(fast, i, &ta), 0);
        assert_int_equal(rouse_session_output(ps, i, &tp), 0);
        assert_int_equal(ta.nbytes, tp.nbytes);
        assert_memory_equal(ta.data, tp.data, ta.nbytes);
    }
    rouse_session_destroy(ps);
    rouse_model_destroy(planned);
    unlink(path);
    rouse_session_destroy(fast);
    rouse_session_destroy(ref);
    rouse_model_destroy(model);
    rouse_buf_fini(&b);
    free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_reduction_kind),
        cmocka_unit_test(reduce_sum_axes_input),
        cmocka_unit_test(empty_sets_give_the_identity),
        cmocka_unit_test(integer_and_half_types),
        cmocka_unit_test(argmax_argmin),
        cmocka_unit_test(topk_order_and_ties),
        cmocka_unit_test(cumsum_forms),
        cmocka_unit_test(einsum_forms),
        cmocka_unit_test(bad_attributes_and_shapes),
        cmocka_unit_test(check_hooks_refuse_bad_records),
        cmocka_unit_test(reductions_dnnl_match_reference),
        cmocka_unit_test(reduction_views_chain),
        cmocka_unit_test(seed_model_runs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
