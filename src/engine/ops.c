/*
 * The operator table: ONNX op_type names <-> eng_op, and which opsets of the
 * default domain the engine implements.
 *
 * Guarantees: eng_op_lookup() accepts an op only when its semantics at the
 * model's opset are the ones the rest of the engine implements; anything else
 * is ROUSE_EUNSUPPORTED with one sentence naming the operator, the opset and
 * the node, so that a user sees at load time which part of the model is out
 * of reach.
 */
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "engine/graph.h"
#include "engine/op.h"

/* The default-domain opsets the engine was written against. */
#define OPS_MIN_OPSET 1
#define OPS_MAX_OPSET 17

struct op_row {
    const char *name;
    int since;     /* first opset whose semantics we implement */
    bool internal; /* made by the optimizer only: never matched by name */
};

/* Indexed by eng_op. Reshape before opset 5 took its shape as an attribute,
 * which the engine does not model, so it starts at 5. Cast before opset 6
 * named its target type with a string; Pow before 7 had the legacy
 * broadcast attributes; Erf and Where arrived in opset 9. ReduceMean keeps
 * its axes an attribute through opset 17 (the input form is opset 18). */
static const struct op_row op_table[ENG_OP_COUNT] = {
    [ENG_OP_CONV] = {"Conv", 1, false},
    [ENG_OP_GEMM] = {"Gemm", 1, false},
    [ENG_OP_MATMUL] = {"MatMul", 1, false},
    [ENG_OP_RELU] = {"Relu", 1, false},
    [ENG_OP_CLIP] = {"Clip", 1, false},
    [ENG_OP_LEAKY_RELU] = {"LeakyRelu", 1, false},
    [ENG_OP_SIGMOID] = {"Sigmoid", 1, false},
    [ENG_OP_TANH] = {"Tanh", 1, false},
    [ENG_OP_ADD] = {"Add", 1, false},
    [ENG_OP_SUB] = {"Sub", 1, false},
    [ENG_OP_MUL] = {"Mul", 1, false},
    [ENG_OP_DIV] = {"Div", 1, false},
    [ENG_OP_MAXPOOL] = {"MaxPool", 1, false},
    [ENG_OP_AVGPOOL] = {"AveragePool", 1, false},
    [ENG_OP_GLOBAL_AVGPOOL] = {"GlobalAveragePool", 1, false},
    [ENG_OP_FLATTEN] = {"Flatten", 1, false},
    [ENG_OP_RESHAPE] = {"Reshape", 5, false},
    [ENG_OP_TRANSPOSE] = {"Transpose", 1, false},
    [ENG_OP_CONCAT] = {"Concat", 1, false},
    [ENG_OP_BATCHNORM] = {"BatchNormalization", 1, false},
    [ENG_OP_SOFTMAX] = {"Softmax", 1, false},
    [ENG_OP_IDENTITY] = {"Identity", 1, false},
    [ENG_OP_DROPOUT] = {"Dropout", 1, false},
    [ENG_OP_CONSTANT] = {"Constant", 1, false},
    [ENG_OP_CAST] = {"Cast", 6, false},
    [ENG_OP_ERF] = {"Erf", 9, false},
    [ENG_OP_GATHER] = {"Gather", 1, false},
    [ENG_OP_POW] = {"Pow", 7, false},
    [ENG_OP_REDUCE_MEAN] = {"ReduceMean", 1, false},
    [ENG_OP_SQRT] = {"Sqrt", 1, false},
    [ENG_OP_UNSQUEEZE] = {"Unsqueeze", 1, false},
    [ENG_OP_SQUEEZE] = {"Squeeze", 1, false},
    [ENG_OP_WHERE] = {"Where", 9, false},
    /* ONNX has ops of these names in later opsets (LayerNormalization 17,
     * Gelu 20) with more inputs and attributes than the fused forms. */
    [ENG_OP_LAYERNORM] = {"LayerNormalization", 1, true},
    [ENG_OP_GELU] = {"Gelu", 1, true},
};

/* The families of described ops (engine/op.h), each NULL-terminated. */
static const eng_op_desc *const *const families[] = {
    eng_ops_logic, eng_ops_math,  eng_ops_reduce,  eng_ops_norm,
    eng_ops_shape, eng_ops_index, eng_ops_spatial, eng_ops_quant, eng_ops_act,
    eng_ops_einsum,
    eng_ops_shape_slice,
    eng_ops_spatial_conv,
};

static const eng_op_desc *descs[ENG_OP_COUNT];
static pthread_once_t descs_once = PTHREAD_ONCE_INIT;

static void descs_init(void)
{
    for (size_t f = 0; f < sizeof(families) / sizeof(families[0]); f++)
        for (const eng_op_desc *const *d = families[f]; *d; d++)
            if ((int)(*d)->op >= 0 && (*d)->op < ENG_OP_COUNT) descs[(*d)->op] = *d;
}

const eng_op_desc *eng_op_desc_get(eng_op op)
{
    if ((int)op < 0 || op >= ENG_OP_COUNT) return NULL;
    pthread_once(&descs_once, descs_init);
    return descs[op];
}

const char *eng_op_name(eng_op op)
{
    if ((int)op < 0 || op >= ENG_OP_COUNT) return "Unknown";
    const eng_op_desc *d = eng_op_desc_get(op);
    if (d) return d->name;
    return op_table[op].name ? op_table[op].name : "Unknown";
}

static bool is_default_domain(const char *domain)
{
    return !domain || !domain[0] || !strcmp(domain, "ai.onnx");
}

int eng_op_lookup(const char *op_type, const char *domain, int64_t opset, const char *node_name,
                  eng_op *op, rouse_errbuf *eb)
{
    const char *name = op_type ? op_type : "";
    const char *node = node_name ? node_name : "";

    if (!is_default_domain(domain))
        return rouse_err_set(eb, ROUSE_EUNSUPPORTED,
                             "unsupported operator %s.%s (opset %lld) at node '%s'", domain, name,
                             (long long)opset, node);
    if (opset >= OPS_MIN_OPSET && opset <= OPS_MAX_OPSET) {
        for (int i = 0; i < ENG_OP_COUNT; i++) {
            if (!op_table[i].name || op_table[i].internal || strcmp(op_table[i].name, name) != 0)
                continue;
            if (opset < op_table[i].since) break;
            *op = (eng_op)i;
            return 0;
        }
        for (int i = 0; i < ENG_OP_COUNT; i++) {
            const eng_op_desc *d = eng_op_desc_get((eng_op)i);
            if (!d || d->internal || strcmp(d->name, name) != 0) continue;
            if (opset < d->since) break;
            *op = (eng_op)i;
            return 0;
        }
    }
    return rouse_err_set(eb, ROUSE_EUNSUPPORTED,
                         "unsupported operator %s (opset %lld) at node '%s'", name,
                         (long long)opset, node);
}
