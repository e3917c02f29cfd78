/*
 * The optimizer's fused ops (ops/fused.c): LayerNorm and Gelu against
 * hand-computed values, their internal status (a model cannot name them),
 * and LayerNorm's check on a stored record.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "ops_test.h"

static void layernorm_over_the_last_dim(void **state)
{
    (void)state;
    ot_node t;
    ot_init(&t, ENG_OP_LAYERNORM, 13, 3, 1);
    t.n.attrs.norm = (eng_norm_attrs){.axis = -1, .epsilon = 0.0f};
    assert_int_equal(ot_check(&t), 0);
    /* Rows {1, 3} and {0, 4}: mean 2 for both, biased variance 1 and 4. */
    static const float x[4] = {1, 3, 0, 4}, sc[2] = {2, 2}, b[1] = {1};
    eng_tensor tx = ot_tensor(ENG_DT_FLOAT, 2, (int64_t[]){2, 2}, x);
    eng_tensor ts = ot_tensor(ENG_DT_FLOAT, 1, (int64_t[]){2}, sc);
    eng_tensor tb = ot_tensor(ENG_DT_FLOAT, 1, (int64_t[]){1}, b);
    const eng_tensor *in[3] = {&tx, &ts, &tb};
    if (ot_run(&t, in) < 0) fail_msg("%s", t.eb.msg);
    /* (x - mean) / std * 2 + 1: row 0 std 1, row 1 std 2. */
    static const float want[4] = {-1, 3, -1, 3};
    for (int i = 0; i < 4; i++)
        assert_true(fabsf(((float *)t.out[0].data)[i] - want[i]) < 1e-5f);
    ot_fini(&t);
    tb.shape[0] = 3;
    assert_int_equal(ot_run(&t, in), ROUSE_EMISMATCH);
    ot_fini(&t);
    t.n.attrs.norm.epsilon = NAN;
    assert_int_equal(ot_check(&t), ROUSE_EFORMAT);
    assert_string_equal(t.eb.msg,
                        "node 't' (LayerNormalization): attribute 'epsilon' must be finite");
}

static void gelu_values(void **state)
{
    (void)state;
    ot_node t;
    ot_init(&t, ENG_OP_GELU, 13, 1, 1);
    static const float x[3] = {-1, 0, 1};
    eng_tensor tx = ot_tensor(ENG_DT_FLOAT, 1, (int64_t[]){3}, x);
    const eng_tensor *in[1] = {&tx};
    if (ot_run(&t, in) < 0) fail_msg("%s", t.eb.msg);
    const float *y = t.out[0].data;
    assert_true(fabsf(y[0] - -0.15865525f) < 1e-6f);
    assert_true(fabsf(y[1]) < 1e-7f);
    assert_true(fabsf(y[2] - 0.84134475f) < 1e-6f);
    ot_fini(&t);
}

static void internal_ops_have_descriptors_but_no_names(void **state)
{
    (void)state;
    const eng_op_desc *ln = eng_op_desc_get(ENG_OP_LAYERNORM), *g = eng_op_desc_get(ENG_OP_GELU);
    assert_non_null(ln);
    assert_non_null(g);
    assert_true(ln->internal && g->internal);
    eng_op op;
    assert_int_equal(eng_op_lookup("Gelu", "", 13, "g", &op, NULL), ROUSE_EUNSUPPORTED);
    /* Every op the engine had before the families is described. */
    for (int i = ENG_OP_CONV; i <= ENG_OP_GELU; i++) {
        const eng_op_desc *d = eng_op_desc_get((eng_op)i);
        assert_non_null(d);
        assert_int_equal(d->op, i);
        assert_non_null(d->infer);
        if (i != ENG_OP_CONSTANT) assert_non_null(d->run);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(layernorm_over_the_last_dim),
        cmocka_unit_test(gelu_values),
        cmocka_unit_test(internal_ops_have_descriptors_but_no_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
