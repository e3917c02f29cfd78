/*
 * Bad models and bad inputs through the public engine API: each must fail
 * with the right code and a message that names the node, field or tensor at
 * fault, and never crash.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_builder.h"
#include "rouse/engine.h"

static void serialize(ob_model *m, rouse_buf *out)
{
    rouse_buf_init(out);
    ob_serialize(m, out);
    ob_model_free(m);
}

static int load(const rouse_buf *b, rouse_model **m, rouse_errbuf *eb)
{
    rouse_errbuf_clear(eb);
    return rouse_model_load_memory(b->data, b->len, m, eb);
}

static void expect_load_error(ob_model *om, int code, const char *fragment)
{
    rouse_buf b;
    serialize(om, &b);
    rouse_model *m = NULL;
    rouse_errbuf eb;
    int rc = load(&b, &m, &eb);
    if (rc != code)
        fail_msg("expected %s, got %s: %s", rouse_err_name(code), rouse_err_name(rc), eb.msg);
    if (!strstr(eb.msg, fragment)) fail_msg("message '%s' lacks '%s'", eb.msg, fragment);
    rouse_buf_fini(&b);
}

static void unsupported_operator_is_named(void **state)
{
    (void)state;
    ob_model *m = ob_model_new(13);
    int64_t d[2] = {1, 4};
    ob_input(m, "x", ROUSE_DT_FLOAT, 2, d);
    const char *in = "x", *out = "y";
    ob_add_node(m, "Foo", "bar", 1, &in, 1, &out);
    ob_output_any(m, "y", ROUSE_DT_FLOAT);
    expect_load_error(m, ROUSE_EUNSUPPORTED, "unsupported operator Foo (opset 13) at node 'bar'");

    m = ob_model_new(19);
    ob_input(m, "x", ROUSE_DT_FLOAT, 2, d);
    ob_add_node(m, "Relu", "r", 1, &in, 1, &out);
    ob_output_any(m, "y", ROUSE_DT_FLOAT);
    expect_load_error(m, ROUSE_EUNSUPPORTED, "unsupported operator Relu (opset 19) at node 'r'");
}

/* A model with several gaps names them all in one message, grouped by
 * operator with counts and the first nodes, so that a user learns at once
 * everything that stands between the model and the engine. */
static void every_unsupported_operator_is_named_at_once(void **state)
{
    (void)state;
    ob_model *m = ob_model_new(13);
    int64_t d[2] = {1, 4};
    ob_input(m, "x", ROUSE_DT_FLOAT, 2, d);
    const char *names[] = {"f1", "r1", "f2", "b1", "f3", "f4"};
    const char *ops[] = {"Foo", "Relu", "Foo", "Bar", "Foo", "Foo"};
    const char *in = "x";
    char outs[6][8];
    for (int i = 0; i < 6; i++) {
        snprintf(outs[i], sizeof(outs[i]), "y%d", i);
        const char *out = outs[i];
        ob_add_node(m, ops[i], names[i], 1, &in, 1, &out);
        in = outs[i];
    }
    ob_output_any(m, "y5", ROUSE_DT_FLOAT);
    expect_load_error(m, ROUSE_EUNSUPPORTED,
                      "unsupported operators: Foo (opset 13) x4 at nodes 'f1', 'f2', 'f3'...; "
                      "Bar (opset 13) x1 at node 'b1'");

    /* Two nodes of one operator: both named, no ellipsis. (A single gap
     * keeps the one-node sentence, above.) */
    m = ob_model_new(13);
    ob_input(m, "x", ROUSE_DT_FLOAT, 2, d);
    const char *x = "x", *y = "y", *z = "z";
    ob_add_node(m, "Foo", "a", 1, &x, 1, &y);
    ob_add_node(m, "Foo", "b", 1, &y, 1, &z);
    ob_output_any(m, "z", ROUSE_DT_FLOAT);
    expect_load_error(m, ROUSE_EUNSUPPORTED,
                      "unsupported operators: Foo (opset 13) x2 at nodes 'a', 'b'");
}

static void dangling_names_and_cycles(void **state)
{
    (void)state;
    int64_t d[2] = {1, 4};
    ob_model *m = ob_model_new(13);
    ob_input(m, "x", ROUSE_DT_FLOAT, 2, d);
    const char *in = "nowhere", *out = "y";
    ob_add_node(m, "Relu", "r0", 1, &in, 1, &out);
    ob_output_any(m, "y", ROUSE_DT_FLOAT);
    expect_load_error(m, ROUSE_EFORMAT, "input 'nowhere'");

    m = ob_model_new(13);
    ob_input(m, "x", ROUSE_DT_FLOAT, 2, d);
    const char *a_in[2] = {"x", "b"}, *a_out = "a";
    const char *b_in = "a", *b_out = "b";
    ob_add_node(m, "Add", "add_a", 2, a_in, 1, &a_out);
    ob_add_node(m, "Relu", "relu_b", 1, &b_in, 1, &b_out);
    ob_output_any(m, "b", ROUSE_DT_FLOAT);
    expect_load_error(m, ROUSE_EFORMAT, "cycle");

    m = ob_model_new(13);
    ob_input(m, "x", ROUSE_DT_FLOAT, 2, d);
    const char *x = "x", *y = "y";
    ob_add_node(m, "Relu", "r0", 1, &x, 1, &y);
    ob_add_node(m, "Relu", "r1", 1, &x, 1, &y);
    ob_output_any(m, "y", ROUSE_DT_FLOAT);
    expect_load_error(m, ROUSE_EFORMAT, "already defined");

    m = ob_model_new(13);
    ob_input(m, "x", ROUSE_DT_FLOAT, 2, d);
    ob_add_node(m, "Relu", "r0", 1, &x, 1, &y);
    ob_output_any(m, "z", ROUSE_DT_FLOAT);
    expect_load_error(m, ROUSE_EFORMAT, "graph output 'z'");
}

static void mismatched_weights_are_rejected_at_prepare(void **state)
{
    (void)state;
    ob_model *m = ob_model_new(13);
    int64_t xd[4] = {1, 3, 8, 8}, wd[4] = {4, 5, 3, 3};
    ob_input(m, "x", ROUSE_DT_FLOAT, 4, xd);
    float w[4 * 5 * 9] = {0};
    ob_initializer(m, "w", ROUSE_DT_FLOAT, 4, wd, w, sizeof(w));
    const char *ins[2] = {"x", "w"}, *out = "y";
    ob_add_node(m, "Conv", "conv_bad", 2, ins, 1, &out);
    ob_output_any(m, "y", ROUSE_DT_FLOAT);
    rouse_buf b;
    serialize(m, &b);
    rouse_model *model;
    rouse_errbuf eb;
    assert_int_equal(load(&b, &model, &eb), 0);
    rouse_session *s;
    int rc = rouse_session_create(model, NULL, &s, &eb);
    assert_int_equal(rc, ROUSE_EMISMATCH);
    assert_non_null(strstr(eb.msg, "conv_bad"));
    rouse_model_destroy(model);
    rouse_buf_fini(&b);
}

/* Pads within the attribute bounds (2^31) but absurd for the input: the
 * output is petabytes. Preparing must say so; oneDNN, which computes some
 * sizes in 32 bits, once divided by zero creating the kernel. */
static void absurd_pads_are_refused_at_prepare(void **state)
{
    (void)state;
    ob_model *m = ob_model_new(13);
    int64_t xd[4] = {1, 3, 8, 8}, wd[4] = {4, 3, 3, 3};
    int64_t pads[4] = {0, 0, (int64_t)1 << 16, (int64_t)1 << 31};
    ob_input(m, "x", ROUSE_DT_FLOAT, 4, xd);
    float w[4 * 3 * 9] = {0};
    ob_initializer(m, "w", ROUSE_DT_FLOAT, 4, wd, w, sizeof(w));
    const char *ins[2] = {"x", "w"}, *out = "y";
    ob_node *n = ob_add_node(m, "Conv", "conv_huge", 2, ins, 1, &out);
    ob_attr_ints(n, "pads", 4, pads);
    ob_output_any(m, "y", ROUSE_DT_FLOAT);
    rouse_buf b;
    serialize(m, &b);
    rouse_model *model;
    rouse_errbuf eb;
    assert_int_equal(load(&b, &model, &eb), 0);
    rouse_session *s;
    int rc = rouse_session_create(model, NULL, &s, &eb);
    if (rc != ROUSE_ETOOBIG) fail_msg("expected ETOOBIG, got %d: %s", rc, eb.msg);
    /* Refused either when the node's output is inferred (larger than the
     * machine) or when the activation arena is planned. */
    if (!strstr(eb.msg, "more than this machine has") && !strstr(eb.msg, "activation memory"))
        fail_msg("unexpected message: %s", eb.msg);
    rouse_model_destroy(model);
    rouse_buf_fini(&b);
}

static void wrong_inputs_at_run_time(void **state)
{
    (void)state;
    ob_model *m = ob_model_new(13);
    int64_t d[2] = {-1, 4};
    ob_input(m, "x", ROUSE_DT_FLOAT, 2, d);
    const char *x = "x", *y = "y";
    ob_add_node(m, "Relu", "r0", 1, &x, 1, &y);
    ob_output_any(m, "y", ROUSE_DT_FLOAT);
    rouse_buf b;
    serialize(m, &b);
    rouse_model *model;
    rouse_session *s;
    rouse_errbuf eb;
    assert_int_equal(load(&b, &model, &eb), 0);
    assert_int_equal(rouse_session_create(model, NULL, &s, &eb), 0);

    rouse_tensor_info info;
    assert_int_equal(rouse_model_input(model, 0, &info), 0);
    assert_string_equal(info.name, "x");
    assert_int_equal(info.rank, 2);
    assert_int_equal(info.shape[0], -1);
    assert_int_equal(info.shape[1], 4);
    assert_int_equal(rouse_model_input(model, 1, &info), ROUSE_ERANGE);

    float data[12] = {-1, 2, -3, 4, 5, -6, 7, -8, 9, 10, -11, 12};
    rouse_tensor t = {.name = "x",
                      .dtype = ROUSE_DT_FLOAT,
                      .rank = 2,
                      .shape = {3, 4},
                      .data = data,
                      .nbytes = sizeof(data)};
    rouse_tensor out;
    assert_int_equal(rouse_session_output(s, 0, &out), ROUSE_ESTATE);

    rouse_tensor bad = t;
    bad.name = "nope";
    assert_int_equal(rouse_session_run(s, &bad, 1, &eb), ROUSE_EINVAL);
    assert_non_null(strstr(eb.msg, "unknown input 'nope'"));
    bad = t;
    bad.dtype = ROUSE_DT_INT64;
    assert_int_equal(rouse_session_run(s, &bad, 1, &eb), ROUSE_EMISMATCH);
    assert_non_null(strstr(eb.msg, "input 'x' must be float"));
    bad = t;
    bad.shape[1] = 5;
    bad.nbytes = 15 * 4;
    assert_int_equal(rouse_session_run(s, &bad, 1, &eb), ROUSE_EMISMATCH);
    assert_non_null(strstr(eb.msg, "input 'x' must have shape [d0, 4], got [3, 5]"));
    bad = t;
    bad.nbytes = 4;
    assert_int_equal(rouse_session_run(s, &bad, 1, &eb), ROUSE_EMISMATCH);
    assert_int_equal(rouse_session_run(s, NULL, 0, &eb), ROUSE_EINVAL);
    assert_non_null(strstr(eb.msg, "missing input 'x'"));
    rouse_tensor two[2] = {t, t};
    assert_int_equal(rouse_session_run(s, two, 2, &eb), ROUSE_EINVAL);
    assert_non_null(strstr(eb.msg, "given twice"));

    /* A good run after the bad ones, then a different batch size. */
    assert_int_equal(rouse_session_run(s, &t, 1, &eb), 0);
    assert_int_equal(rouse_session_output(s, 0, &out), 0);
    assert_int_equal(out.shape[0], 3);
    const float *o = out.data;
    for (int i = 0; i < 12; i++)
        assert_true(o[i] == (data[i] > 0 ? data[i] : 0));
    t.shape[0] = 1;
    t.nbytes = 16;
    assert_int_equal(rouse_session_run(s, &t, 1, &eb), 0);
    assert_int_equal(rouse_session_output(s, 0, &out), 0);
    assert_int_equal(out.shape[0], 1);
    assert_true(((const float *)out.data)[3] == 4.0f);

    rouse_session_destroy(s);
    rouse_model_destroy(model);
    rouse_buf_fini(&b);
}

static void truncated_models_never_crash(void **state)
{
    (void)state;
    ob_model *m = ob_model_new(13);
    int64_t xd[4] = {1, 2, 5, 5}, wd[4] = {3, 2, 3, 3};
    ob_input(m, "x", ROUSE_DT_FLOAT, 4, xd);
    float w[3 * 2 * 9];
    for (int i = 0; i < 54; i++)
        w[i] = (float)i / 54.0f;
    ob_initializer(m, "w", ROUSE_DT_FLOAT, 4, wd, w, sizeof(w));
    const char *ins[2] = {"x", "w"}, *c = "c", *y = "y";
    ob_node *n = ob_add_node(m, "Conv", "conv0", 2, ins, 1, &c);
    int64_t pads[4] = {1, 1, 1, 1};
    ob_attr_ints(n, "pads", 4, pads);
    ob_add_node(m, "Relu", "relu0", 1, &c, 1, &y);
    ob_output_any(m, "y", ROUSE_DT_FLOAT);
    rouse_buf b;
    serialize(m, &b);
    rouse_model *model;
    rouse_errbuf eb;
    for (size_t len = 0; len < b.len; len++) {
        int rc = rouse_model_load_memory(b.data, len, &model, &eb);
        if (rc == 0) {
            rouse_model_destroy(model);
            continue;
        }
        assert_true(rc < 0);
        assert_true(eb.msg[0] != '\0');
    }
    /* Every single-byte corruption either loads or fails cleanly. */
    for (size_t i = 0; i < b.len; i++) {
        unsigned char saved = (unsigned char)b.data[i];
        b.data[i] = (char)(saved ^ 0x5a);
        if (rouse_model_load_memory(b.data, b.len, &model, &eb) == 0) {
            rouse_session *s;
            if (rouse_session_create(model, NULL, &s, &eb) == 0) rouse_session_destroy(s);
            rouse_model_destroy(model);
        }
        b.data[i] = (char)saved;
    }
    rouse_buf_fini(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unsupported_operator_is_named),
        cmocka_unit_test(every_unsupported_operator_is_named_at_once),
        cmocka_unit_test(dangling_names_and_cycles),
        cmocka_unit_test(mismatched_weights_are_rejected_at_prepare),
        cmocka_unit_test(absurd_pads_are_refused_at_prepare),
        cmocka_unit_test(wrong_inputs_at_run_time),
        cmocka_unit_test(truncated_models_never_crash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
