/*
 * The operator table: every op's descriptor (engine/op.h), gathered from
 * the family tables under src/engine/ops/, and the lookup of ONNX op_type
 * names at the opsets of the default domain the engine implements.
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

/* The families of described ops (engine/op.h), each NULL-terminated. */
static const eng_op_desc *const *const families[] = {
    eng_ops_nn,    eng_ops_elementwise, eng_ops_tensor,  eng_ops_fused, eng_ops_logic,
    eng_ops_math,  eng_ops_act,         eng_ops_reduce,  eng_ops_norm,  eng_ops_shape,
    eng_ops_index, eng_ops_spatial,     eng_ops_quant,
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
    return d ? d->name : "Unknown";
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
