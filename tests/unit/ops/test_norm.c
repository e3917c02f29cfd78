/*
 * The norm family (src/engine/ops/norm.c) against hand-computed values:
 * LayerNormalization with its Mean and InvStdDev outputs and broadcast
 * scale and bias, InstanceNormalization, LpNormalization (p = 1, 2) and
 * MeanVarianceNormalization; the error paths (bad attributes at load,
 * shapes that do not fit at prepare); and the oneDNN builders of
 * exec_dnnl_norm.c against the reference kernels, checking that oneDNN
 * ran them.
 */
#include "reduce_harness.h"

#include "engine/op.h"

static h_node norm_node(const char *op, int opset, const float *x, int rank, const int64_t *shape)
{
    h_node n = {.opset = opset, .op = op, .n_in = 1, .n_out = 1};
    n.in[0] = (h_in){.name = "x", .dtype = ROUSE_DT_FLOAT, .rank = rank, .data = x};
    memcpy(n.in[0].shape, shape, sizeof(int64_t) * (size_t)rank);
    n.out[0] = "y";
    n.out_dtype[0] = ROUSE_DT_FLOAT;
    return n;
}

static void add_const(h_node *n, const char *name, int rank, const int64_t *shape, const float *v)
{
    h_in *t = &n->in[n->n_in++];
    *t = (h_in){.name = name, .dtype = ROUSE_DT_FLOAT, .rank = rank, .data = v, .init = true};
    if (rank > 0) memcpy(t->shape, shape, sizeof(int64_t) * (size_t)rank);
}

static void layer_normalization_values(void **state)
{
    (void)state;
    /* Rows [1, 3] and [2, 6]: means 2 and 4, variances 1 and 4. */
    static const float x[4] = {1, 3, 2, 6}, scale[2] = {2, 1}, bias[2] = {1, 0};
    static const int64_t shape[2] = {2, 2}, s2[1] = {2}, st[2] = {2, 1};
    h_node n = norm_node("LayerNormalization", 17, x, 2, shape);
    add_const(&n, "scale", 1, s2, scale);
    add_const(&n, "bias", 1, s2, bias);
    n.attr[n.n_attr++] = (h_attr){.name = "epsilon", .kind = 'f', .f = 0};
    n.n_out = 3;
    n.out[1] = "mean";
    n.out[2] = "inv";
    n.out_dtype[1] = n.out_dtype[2] = ROUSE_DT_FLOAT;
    h_result r;
    h_ok(&n, &r);
    h_expect(&r, 0, ROUSE_DT_FLOAT, 2, shape, (double[]){-1, 1, -1, 1});
    h_expect(&r, 1, ROUSE_DT_FLOAT, 2, st, (double[]){2, 4});
    h_expect(&r, 2, ROUSE_DT_FLOAT, 2, st, (double[]){1, 0.5});
    h_free(&r);

    /* axis 0 of a [2, 2]: one set of four; a scalar scale broadcasts. */
    static const float one[1] = {3};
    n = norm_node("LayerNormalization", 17, x, 2, shape);
    add_const(&n, "scale", 0, NULL, one);
    n.attr[n.n_attr++] = (h_attr){.name = "axis", .kind = 'i', .i = 0};
    n.attr[n.n_attr++] = (h_attr){.name = "epsilon", .kind = 'f', .f = 0};
    h_ok(&n, &r);
    /* mean 3, variance (4 + 0 + 1 + 9) / 4 = 3.5 */
    double k = 3 / sqrt(3.5);
    h_expect(&r, 0, ROUSE_DT_FLOAT, 2, shape, (double[]){-2 * k, 0, -1 * k, 3 * k});
    h_free(&r);
}

static void instance_lp_mvn_values(void **state)
{
    (void)state;
    /* N = 1, C = 2, 2 values per channel: [1, 3] and [0, 4]. */
    static const float x[4] = {1, 3, 0, 4}, scale[2] = {1, 2}, bias[2] = {0, 1};
    static const int64_t shape[3] = {1, 2, 2}, s2[1] = {2};
    h_node n = norm_node("InstanceNormalization", 6, x, 3, shape);
    add_const(&n, "scale", 1, s2, scale);
    add_const(&n, "B", 1, s2, bias);
    n.attr[n.n_attr++] = (h_attr){.name = "epsilon", .kind = 'f', .f = 0};
    h_result r;
    h_ok(&n, &r);
    h_expect(&r, 0, ROUSE_DT_FLOAT, 3, shape, (double[]){-1, 1, -1, 3});
    h_free(&r);

    static const float v[4] = {1, 3, 3, 4};
    static const int64_t s22[2] = {2, 2};
    n = norm_node("LpNormalization", 1, v, 2, s22);
    n.attr[n.n_attr++] = (h_attr){.name = "p", .kind = 'i', .i = 1};
    h_ok(&n, &r);
    h_expect(&r, 0, ROUSE_DT_FLOAT, 2, s22, (double[]){0.25, 0.75, 3.0 / 7, 4.0 / 7});
    h_free(&r);
    n = norm_node("LpNormalization", 1, v, 2, s22);
    n.attr[n.n_attr++] = (h_attr){.name = "axis", .kind = 'i', .i = 0};
    h_ok(&n, &r);
    double a = sqrt(10), b = 5;
    h_expect(&r, 0, ROUSE_DT_FLOAT, 2, s22, (double[]){1 / a, 3 / b, 3 / a, 4 / b});
    h_free(&r);

    /* MVN over axis 1: rows [1, 3] -> (x - 2) / 1, [3, 4] -> (x - 3.5) / 0.5. */
    n = norm_node("MeanVarianceNormalization", 13, v, 2, s22);
    n.attr[n.n_attr++] = (h_attr){.name = "axes", .kind = 'l', .n = 1, .ints = {1}};
    h_ok(&n, &r);
    h_expect(&r, 0, ROUSE_DT_FLOAT, 2, s22, (double[]){-1, 1, -1, 1});
    h_free(&r);
}

static void half_types(void **state)
{
    (void)state;
    /* LpNormalization of float16 [3, 4] -> [0.6, 0.8]. */
    static const uint16_t x[2] = {0x4200, 0x4400};
    static const int64_t s[1] = {2};
    h_node n = norm_node("LpNormalization", 1, NULL, 1, s);
    n.in[0].dtype = n.out_dtype[0] = ROUSE_DT_FLOAT16;
    n.in[0].data = x;
    h_result r;
    h_ok(&n, &r);
    h_expect(&r, 0, ROUSE_DT_FLOAT16, 1, s, (double[]){0.6, 0.8});
    h_free(&r);
}

static void bad_attributes_and_shapes(void **state)
{
    (void)state;
    static const float x[4] = {1, 2, 3, 4}, two[2] = {1, 1}, three[3] = {1, 1, 1};
    static const int64_t shape[2] = {2, 2}, s2[1] = {2}, s3[1] = {3};

    h_node n = norm_node("LayerNormalization", 17, x, 2, shape);
    add_const(&n, "scale", 1, s3, three);
    h_err(&n, ROUSE_EMISMATCH,
          "node 'node0' (LayerNormalization): input 'Scale' of shape [3] does not broadcast");

    n = norm_node("LayerNormalization", 17, x, 2, shape);
    add_const(&n, "scale", 1, s2, two);
    n.attr[n.n_attr++] = (h_attr){.name = "stash_type", .kind = 'i', .i = 11};
    h_err(&n, ROUSE_EUNSUPPORTED, "attribute 'stash_type' must be 1");

    n = norm_node("LayerNormalization", 17, x, 2, shape);
    add_const(&n, "scale", 1, s2, two);
    n.attr[n.n_attr++] = (h_attr){.name = "axis", .kind = 'i', .i = 2};
    h_err(&n, ROUSE_EMISMATCH, "axis 2 is out of range for input 'X' of rank 2");

    n = norm_node("LayerNormalization", 17, x, 2, shape);
    add_const(&n, "scale", 1, s2, two);
    n.attr[n.n_attr++] = (h_attr){.name = "epsilon", .kind = 'f', .f = -1};
    h_err(&n, ROUSE_EFORMAT, "attribute 'epsilon' must not be negative");

    /* LayerNormalization is opset 17: earlier models do not have it. */
    n = norm_node("LayerNormalization", 16, x, 2, shape);
    add_const(&n, "scale", 1, s2, two);
    h_err(&n, ROUSE_EUNSUPPORTED, "unsupported operator LayerNormalization (opset 16)");

    n = norm_node("InstanceNormalization", 6, x, 2, shape);
    add_const(&n, "scale", 1, s3, three);
    add_const(&n, "B", 1, s3, three);
    h_err(&n, ROUSE_EMISMATCH, "input 'scale' must hold one value per channel (2)");

    n = norm_node("LpNormalization", 1, x, 2, shape);
    n.attr[n.n_attr++] = (h_attr){.name = "p", .kind = 'i', .i = 3};
    h_err(&n, ROUSE_EFORMAT, "node 'node0' (LpNormalization): attribute 'p' must be 1 or 2");

    n = norm_node("MeanVarianceNormalization", 13, x, 2, shape);
    h_err(&n, ROUSE_EMISMATCH, "axis 2 is out of range"); /* default axes 0, 2, 3 */

    n = norm_node("MeanVarianceNormalization", 13, x, 2, shape);
    n.attr[n.n_attr++] = (h_attr){.name = "axes", .kind = 'l', .n = 2, .ints = {1, 1}};
    h_err(&n, ROUSE_EFORMAT, "axis 1 is given twice");

    /* Stored records are checked again. */
    eng_node nd = {.name = "n", .opset = 17, .op = ENG_OP_LAYER_NORMALIZATION};
    nd.attrs.reduce.lnorm = (eng_lnorm_attrs){.axis = -1, .epsilon = 1e-5f, .stash_type = 1};
    assert_int_equal(eng_op_desc_get(nd.op)->check(&nd, NULL), 0);
    nd.attrs.reduce.lnorm.epsilon = NAN;
    assert_int_equal(eng_op_desc_get(nd.op)->check(&nd, NULL), ROUSE_EFORMAT);
    nd.op = ENG_OP_LP_NORMALIZATION;
    nd.attrs.reduce.lpnorm = (eng_lpnorm_attrs){.axis = 0, .p = 7};
    assert_int_equal(eng_op_desc_get(nd.op)->check(&nd, NULL), ROUSE_EFORMAT);
    nd.op = ENG_OP_MEAN_VARIANCE_NORMALIZATION;
    nd.attrs.reduce.mvn = (eng_mvn_attrs){.n_axes = 99};
    assert_int_equal(eng_op_desc_get(nd.op)->check(&nd, NULL), ROUSE_EFORMAT);
}

/* LayerNormalization over the last dim and InstanceNormalization of one
 * image run on oneDNN and agree with the reference kernels. */
static void dnnl_builders_match_reference(void **state)
{
    (void)state;
    static const int64_t shape[3] = {3, 5, 17}, c[1] = {17};
    float *x = h_rand(3 * 5 * 17), *scale = h_rand(17), *bias = h_rand(17);
    h_node n = norm_node("LayerNormalization", 17, x, 3, shape);
    add_const(&n, "scale", 1, c, scale);
    add_const(&n, "bias", 1, c, bias);
    rouse_session_stats st = h_both(&n);
    assert_int_equal(st.dnnl_steps, 1);
    assert_int_equal(st.ref_steps, 0);

    /* Without bias; normalizing over two dims of a graph input (which has
     * no view: the reference kernel). */
    n.n_in = 2;
    st = h_both(&n);
    assert_int_equal(st.dnnl_steps, 1);
    static const int64_t c2[2] = {5, 17};
    float *scale2 = h_rand(5 * 17);
    n = norm_node("LayerNormalization", 17, x, 3, shape);
    add_const(&n, "scale", 2, c2, scale2);
    n.attr[n.n_attr++] = (h_attr){.name = "axis", .kind = 'i', .i = 1};
    st = h_both(&n);
    assert_int_equal(st.ref_steps, 1);

    static const int64_t ishape[4] = {1, 5, 3, 17}, ch[1] = {5};
    n = norm_node("InstanceNormalization", 6, x, 4, ishape);
    add_const(&n, "scale", 1, ch, scale);
    add_const(&n, "B", 1, ch, bias);
    st = h_both(&n);
    assert_int_equal(st.dnnl_steps, 1);
    assert_int_equal(st.ref_steps, 0);

    /* A batch of three runs on the reference kernel, same results. */
    static const int64_t ishape3[4] = {3, 5, 1, 17};
    n.in[0].rank = 4;
    memcpy(n.in[0].shape, ishape3, sizeof(ishape3));
    st = h_both(&n);
    assert_int_equal(st.ref_steps, 1);
    free(x);
    free(scale);
    free(scale2);
    free(bias);
}

/* LayerNormalization over two dims of a value the plan computed runs on
 * oneDNN through views ([outer, inner]); the output matches the reference. */
static void layer_normalization_views(void **state)
{
    (void)state;
    ob_model *m = ob_model_new(17);
    int64_t xs[3] = {3, 5, 17}, ns[2] = {5, 17};
    ob_input(m, "x", ROUSE_DT_FLOAT, 3, xs);
    float *scale = h_rand(85), *bias = h_rand(85), *x = h_rand(255);
    ob_initializer(m, "s", ROUSE_DT_FLOAT, 2, ns, scale, sizeof(float) * 85);
    ob_initializer(m, "b", ROUSE_DT_FLOAT, 2, ns, bias, sizeof(float) * 85);
    ob_add_node(m, "Relu", "r", 1, (const char *[]){"x"}, 1, (const char *[]){"h"});
    ob_node *n = ob_add_node(m, "LayerNormalization", "ln", 3, (const char *[]){"h", "s", "b"}, 1,
                             (const char *[]){"y"});
    ob_attr_int(n, "axis", 1);
    ob_output_any(m, "y", ROUSE_DT_FLOAT);
    rouse_buf b;
    rouse_buf_init(&b);
    ob_serialize(m, &b);
    ob_model_free(m);
    rouse_tensor in = {.name = "x", .dtype = ROUSE_DT_FLOAT, .rank = 3, .shape = {3, 5, 17},
                       .data = x, .nbytes = sizeof(float) * 255};
    rouse_errbuf eb;
    rouse_model *model;
    rouse_session *fast, *ref;
    rouse_session_options fo = {.threads = 1}, ro = {.threads = 1, .reference_kernels = 1};
    if (rouse_model_load_memory(b.data, b.len, &model, &eb) < 0) fail_msg("load: %s", eb.msg);
    if (rouse_session_create(model, &fo, &fast, &eb) < 0) fail_msg("session: %s", eb.msg);
    if (rouse_session_create(model, &ro, &ref, &eb) < 0) fail_msg("session: %s", eb.msg);
    if (rouse_session_run(fast, &in, 1, &eb) < 0) fail_msg("run: %s", eb.msg);
    if (rouse_session_run(ref, &in, 1, &eb) < 0) fail_msg("run: %s", eb.msg);
    rouse_tensor ta, tb;
    assert_int_equal(rouse_session_output(fast, 0, &ta), 0);
    assert_int_equal(rouse_session_output(ref, 0, &tb), 0);
    assert_int_equal(ta.rank, 3);
    assert_int_equal(ta.nbytes, tb.nbytes);
    const float *pa = ta.data, *pb = tb.data;
    for (size_t i = 0; i < ta.nbytes / 4; i++)
        if (!(fabsf(pa[i] - pb[i]) <= 1e-4f + 1e-3f * fabsf(pb[i])))
            fail_msg("element %zu: %g vs %g", i, (double)pa[i], (double)pb[i]);
    rouse_session_stats st;
    assert_int_equal(rouse_session_get_stats(fast, &st), 0);
    assert_int_equal(st.dnnl_steps, 2);
    assert_int_equal(st.ref_steps, 0);
    rouse_session_destroy(fast);
    rouse_session_destroy(ref);
    rouse_model_destroy(model);
    rouse_buf_fini(&b);
    free(x);
    free(scale);
    free(bias);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(layer_normalization_values),
        cmocka_unit_test(instance_lp_mvn_values),
        cmocka_unit_test(half_types),
        cmocka_unit_test(bad_attributes_and_shapes),
        cmocka_unit_test(dnnl_builders_match_reference),
        cmocka_unit_test(layer_normalization_views),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
