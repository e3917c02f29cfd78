/* The operator table: names, domains and opsets, and the exact sentences a
 * user sees for operators the engine does not run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "engine/graph.h"
#include "engine/op.h"

static void every_op_round_trips_through_its_name(void **state)
{
    (void)state;
    for (int i = 0; i < ENG_OP_COUNT; i++) {
        rouse_errbuf eb;
        if (i == ENG_OP_LAYERNORM || i == ENG_OP_GELU) continue; /* internal: below */
        const eng_op_desc *d = eng_op_desc_get((eng_op)i);
        if (i > ENG_OP_GELU && !d) continue; /* declared, not implemented yet */
        eng_op op = ENG_OP_COUNT;
        if (d && d->since > 17) { /* Mish (18): beyond the opsets loaded today */
            assert_int_equal(eng_op_lookup(d->name, "", 17, "n", &op, &eb), ROUSE_EUNSUPPORTED);
            continue;
        }
        const char *name = eng_op_name((eng_op)i);
        assert_non_null(name);
        /* Reshape only exists from opset 5 in the form we implement. */
        if (!d || d->since <= 13) {
            assert_int_equal(eng_op_lookup(name, "", 13, "n", &op, &eb), 0);
            assert_int_equal(op, i);
        }
        assert_int_equal(eng_op_lookup(name, "ai.onnx", 17, "n", &op, &eb), 0);
        assert_int_equal(op, i);
    }
    assert_string_equal(eng_op_name(ENG_OP_BATCHNORM), "BatchNormalization");
    assert_string_equal(eng_op_name(ENG_OP_AVGPOOL), "AveragePool");
    assert_string_equal(eng_op_name(ENG_OP_COUNT), "Unknown");
}

/* The optimizer's fused ops carry ONNX-like names for messages, but a model
 * cannot name them: ONNX's own LayerNormalization (opset 17) is a separate
 * op with more outputs, and Gelu differs. */
static void internal_ops_are_not_looked_up(void **state)
{
    (void)state;
    rouse_errbuf eb;
    eng_op op = ENG_OP_COUNT;
    assert_string_equal(eng_op_name(ENG_OP_LAYERNORM), "LayerNormalization");
    assert_string_equal(eng_op_name(ENG_OP_GELU), "Gelu");
    assert_int_equal(eng_op_lookup("LayerNormalization", "", 17, "ln", &op, &eb), 0);
    assert_int_equal(op, ENG_OP_LAYER_NORMALIZATION);
    assert_int_equal(eng_op_lookup("LayerNormalization", "", 16, "ln", &op, &eb),
                     ROUSE_EUNSUPPORTED);
    assert_string_equal(eb.msg, "unsupported operator LayerNormalization (opset 16) at node 'ln'");
    assert_int_equal(eng_op_lookup("Gelu", "", 13, "g", &op, &eb), ROUSE_EUNSUPPORTED);
}

struct lookup_case {
    const char *op_type, *domain;
    int64_t opset;
    const char *node;
    int rc;
    eng_op op;
    const char *msg;
};

static const struct lookup_case lookup_cases[] = {
    {"Conv", "", 1, "c", 0, ENG_OP_CONV, NULL},
    {"Conv", "", 17, "c", 0, ENG_OP_CONV, NULL},
    {"GlobalAveragePool", "ai.onnx", 9, "g", 0, ENG_OP_GLOBAL_AVGPOOL, NULL},
    {"Reshape", "", 5, "r", 0, ENG_OP_RESHAPE, NULL},
    {"Reshape", "", 4, "r", ROUSE_EUNSUPPORTED, 0,
     "unsupported operator Reshape (opset 4) at node 'r'"},
    {"Conv", "", 19, "conv1", ROUSE_EUNSUPPORTED, 0,
     "unsupported operator Conv (opset 19) at node 'conv1'"},
    {"Conv", "", 18, "conv1", ROUSE_EUNSUPPORTED, 0,
     "unsupported operator Conv (opset 18) at node 'conv1'"},
    {"Conv", "", 0, "conv1", ROUSE_EUNSUPPORTED, 0,
     "unsupported operator Conv (opset 0) at node 'conv1'"},
    {"Foo", "", 19, "bar", ROUSE_EUNSUPPORTED, 0,
     "unsupported operator Foo (opset 19) at node 'bar'"},
    {"Foo", "", 13, "bar", ROUSE_EUNSUPPORTED, 0,
     "unsupported operator Foo (opset 13) at node 'bar'"},
    {"LSTM", "ai.onnx", 13, "rnn", ROUSE_EUNSUPPORTED, 0,
     "unsupported operator LSTM (opset 13) at node 'rnn'"},
    {"Foo", "com.microsoft", 1, "bar", ROUSE_EUNSUPPORTED, 0,
     "unsupported operator com.microsoft.Foo (opset 1) at node 'bar'"},
    /* A known op name in another domain is still another op. */
    {"Conv", "com.microsoft", 1, "c", ROUSE_EUNSUPPORTED, 0,
     "unsupported operator com.microsoft.Conv (opset 1) at node 'c'"},
    /* Names are case-sensitive in ONNX. */
    {"conv", "", 13, "c", ROUSE_EUNSUPPORTED, 0,
     "unsupported operator conv (opset 13) at node 'c'"},
    {"Relu", "", 13, "", 0, ENG_OP_RELU, NULL},
    {"Cast", "", 6, "c", 0, ENG_OP_CAST, NULL},
    {"Cast", "", 5, "c", ROUSE_EUNSUPPORTED, 0, "unsupported operator Cast (opset 5) at node 'c'"},
    {"Erf", "", 9, "e", 0, ENG_OP_ERF, NULL},
    {"Erf", "", 8, "e", ROUSE_EUNSUPPORTED, 0, "unsupported operator Erf (opset 8) at node 'e'"},
    {"Gather", "", 13, "g", 0, ENG_OP_GATHER, NULL},
    {"Pow", "", 15, "p", 0, ENG_OP_POW, NULL},
    {"Pow", "", 6, "p", ROUSE_EUNSUPPORTED, 0, "unsupported operator Pow (opset 6) at node 'p'"},
    {"ReduceMean", "", 17, "r", 0, ENG_OP_REDUCE_MEAN, NULL},
    {"ReduceMean", "", 18, "r", ROUSE_EUNSUPPORTED, 0,
     "unsupported operator ReduceMean (opset 18) at node 'r'"},
    {"Sqrt", "", 13, "s", 0, ENG_OP_SQRT, NULL},
    {"Unsqueeze", "", 11, "u", 0, ENG_OP_UNSQUEEZE, NULL},
    {"Unsqueeze", "", 13, "u", 0, ENG_OP_UNSQUEEZE, NULL},
    {"Squeeze", "", 13, "s", 0, ENG_OP_SQUEEZE, NULL},
    {"Where", "", 16, "w", 0, ENG_OP_WHERE, NULL},
    {"Where", "", 8, "w", ROUSE_EUNSUPPORTED, 0,
     "unsupported operator Where (opset 8) at node 'w'"},
};

static void lookup_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(lookup_cases) / sizeof(lookup_cases[0]); i++) {
        const struct lookup_case *c = &lookup_cases[i];
        rouse_errbuf eb;
        rouse_errbuf_clear(&eb);
        eng_op op = ENG_OP_COUNT;
        int rc = eng_op_lookup(c->op_type, c->domain, c->opset, c->node, &op, &eb);
        if (rc != c->rc) print_error("case %zu (%s): rc %d, msg %s\n", i, c->op_type, rc, eb.msg);
        assert_int_equal(rc, c->rc);
        if (c->rc == 0) {
            assert_int_equal(op, c->op);
        } else {
            assert_int_equal(eb.code, c->rc);
            assert_string_equal(eb.msg, c->msg);
            assert_int_equal(op, ENG_OP_COUNT); /* untouched on failure */
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_op_round_trips_through_its_name),
        cmocka_unit_test(internal_ops_are_not_looked_up),
        cmocka_unit_test(lookup_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
