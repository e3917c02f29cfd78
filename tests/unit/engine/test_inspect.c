/*
 * rouse_model_inspect on models built here: declared dims with their
 * symbolic names, the operator histogram with support, weight bytes, and
 * multiply-accumulates counted by hand at given and default shapes; and a
 * report, not an error, for a model with unsupported operators.
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

#include "onnx_builder.h"
#include "rouse/inspect.h"
#include "tmp_dir.h"

static char *write_model(ob_model *om, const char *tag)
{
    rouse_buf b;
    rouse_buf_init(&b);
    ob_serialize(om, &b);
    ob_model_free(om);
    char *path = malloc(4096);
    assert_non_null(path);
    snprintf(path, 4096, "%s/rouse-inspect-%d-%s.onnx", test_tmp_dir(), (int)getpid(), tag);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b.data, 1, b.len, f), b.len);
    fclose(f);
    rouse_buf_fini(&b);
    return path;
}

/* x [N, 3, 16, 16] -> Conv 8x3x3x3 (pads 1, kernel from the weight) ->
 * GlobalAveragePool -> Flatten -> MatMul [8, 10]. */
static void conv_and_matmul_costs(void **state)
{
    (void)state;
    ob_model *m = ob_model_new(13);
    int64_t xd[4] = {-1, 3, 16, 16}, wd[4] = {8, 3, 3, 3}, md[2] = {8, 10}, pads[4] = {1, 1, 1, 1};
    static float w[8 * 27], mm[80];
    ob_input(m, "x", ROUSE_DT_FLOAT, 4, xd);
    ob_initializer(m, "w", ROUSE_DT_FLOAT, 4, wd, w, sizeof(w));
    ob_initializer(m, "m", ROUSE_DT_FLOAT, 2, md, mm, sizeof(mm));
    const char *cin[2] = {"x", "w"}, *c = "c", *p = "p", *f = "f", *y = "y";
    ob_node *n = ob_add_node(m, "Conv", "conv", 2, cin, 1, &c);
    ob_attr_ints(n, "pads", 4, pads);
    ob_add_node(m, "GlobalAveragePool", "gap", 1, &c, 1, &p);
    ob_add_node(m, "Flatten", "flat", 1, &p, 1, &f);
    const char *min[2] = {"f", "m"};
    ob_add_node(m, "MatMul", "fc", 2, min, 1, &y);
    ob_output_any(m, "y", ROUSE_DT_FLOAT);
    char *path = write_model(m, "costs");

    rouse_errbuf eb;
    rouse_inspect_report *r;
    rouse_tensor shape = {.name = "x", .rank = 4, .shape = {2, 3, 16, 16}};
    if (rouse_model_inspect(path, &shape, 1, &r, &eb) < 0) fail_msg("inspect: %s", eb.msg);
    assert_int_equal(r->n_inputs, 1); /* initializers are not inputs */
    assert_string_equal(r->inputs[0].name, "x");
    assert_int_equal(r->inputs[0].rank, 4);
    assert_int_equal(r->inputs[0].dims[0], -1);
    assert_string_equal(r->inputs[0].dim_names[0], "d0");
    assert_null(r->inputs[0].dim_names[1]);
    assert_int_equal(r->n_ops, 4);
    assert_string_equal(r->ops[0].op_type, "Conv");
    assert_true(r->ops[0].supported);
    assert_int_equal(r->n_unsupported, 0);
    assert_int_equal(r->n_weights, 2);
    assert_int_equal(r->weight_bytes, sizeof(w) + sizeof(mm));
    if (!r->shapes_known || !r->arena_known) fail_msg("not computed: %s", r->why_unknown);
    /* Conv: 2 x 8 x 16 x 16 outputs, 27 products each; MatMul: 2 x 10 x 8. */
    assert_int_equal(r->macs, 2ull * 8 * 16 * 16 * 27 + 2 * 10 * 8);
    assert_int_equal(r->outputs[0].shape_rank, 2);
    assert_int_equal(r->outputs[0].shape[0], 2);
    assert_int_equal(r->outputs[0].shape[1], 10);
    assert_true(r->arena_bytes > 0);
    rouse_inspect_report_destroy(r);

    /* Default shapes: the dynamic batch counts as 1. */
    if (rouse_model_inspect(path, NULL, 0, &r, &eb) < 0) fail_msg("inspect: %s", eb.msg);
    assert_int_equal(r->macs, 8ull * 16 * 16 * 27 + 10 * 8);
    rouse_inspect_report_destroy(r);

    /* Shapes that contradict the model: a report saying why. */
    shape.shape[2] = 1;
    shape.shape[1] = 4;
    assert_int_equal(rouse_model_inspect(path, &shape, 1, &r, &eb), 0);
    assert_false(r->shapes_known);
    assert_non_null(strstr(r->why_unknown, "dim 1 fixed at 3"));
    rouse_inspect_report_destroy(r);
    unlink(path);
    free(path);
}

static void unsupported_operators_are_reported(void **state)
{
    (void)state;
    ob_model *m = ob_model_new(13);
    int64_t d[2] = {1, 4};
    ob_input(m, "x", ROUSE_DT_FLOAT, 2, d);
    const char *x = "x", *a = "a", *b = "b", *y = "y";
    ob_add_node(m, "Foo", "f1", 1, &x, 1, &a);
    ob_add_node(m, "Relu", "r", 1, &a, 1, &b);
    ob_add_node(m, "Foo", "f2", 1, &b, 1, &y);
    ob_output_any(m, "y", ROUSE_DT_FLOAT);
    char *path = write_model(m, "unsupported");
    rouse_errbuf eb;
    rouse_inspect_report *r;
    assert_int_equal(rouse_model_inspect(path, NULL, 0, &r, &eb), 0);
    assert_int_equal(r->n_nodes, 3);
    assert_int_equal(r->n_ops, 2);
    assert_string_equal(r->ops[0].op_type, "Foo");
    assert_int_equal(r->ops[0].count, 2);
    assert_false(r->ops[0].supported);
    assert_true(r->ops[1].supported);
    assert_int_equal(r->n_unsupported, 1);
    assert_false(r->shapes_known);
    assert_false(r->arena_known);
    rouse_inspect_report_destroy(r);

    assert_int_equal(rouse_model_inspect("/nonexistent/model.onnx", NULL, 0, &r, &eb),
                     ROUSE_ENOTFOUND);
    unlink(path);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(conv_and_matmul_costs),
        cmocka_unit_test(unsupported_operators_are_reported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
