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
#include <stdio.h>
#include <stdlib.h>
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
    eng_ops_index, eng_ops_spatial,     eng_ops_quant,   eng_ops_einsum, eng_ops_shape_slice,
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

static bool same_kind(const struct onnx_node *a, const struct onnx_node *b)
{
    const char *da = is_default_domain(a->domain) ? "" : a->domain;
    const char *db = is_default_domain(b->domain) ? "" : b->domain;
    return !strcmp(da, db) && !strcmp(a->op_type ? a->op_type : "", b->op_type ? b->op_type : "");
}

int eng_op_lookup_all(const struct onnx_graph *og, int64_t opset, rouse_errbuf *eb)
{
    int n = og->n_nodes, n_bad = 0, first = -1;
    eng_op op;
    for (int i = 0; i < n; i++) {
        const onnx_node *on = &og->nodes[i];
        if (eng_op_lookup(on->op_type, on->domain, opset, on->name, &op, NULL) < 0) {
            if (first < 0) first = i;
            n_bad++;
        }
    }
    if (n_bad == 0) return 0;
    const onnx_node *f = &og->nodes[first];
    if (n_bad == 1) return eng_op_lookup(f->op_type, f->domain, opset, f->name, &op, eb);

    /* One entry per operator, in order of first appearance: count and the
     * first few nodes. */
    bool *done = calloc((size_t)n + 1, sizeof(bool));
    if (!done) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    char msg[sizeof(((rouse_errbuf *)0)->msg)];
    size_t len = 0;
#define ADD(...)                                                                                   \
    do {                                                                                           \
        if (len < sizeof(msg)) {                                                                   \
            int w_ = snprintf(msg + len, sizeof(msg) - len, __VA_ARGS__);                          \
            len = w_ < 0 ? sizeof(msg) : len + (size_t)w_;                                         \
        }                                                                                          \
    } while (0)
    ADD("unsupported operators: ");
    for (int i = first; i < n; i++) {
        const onnx_node *on = &og->nodes[i];
        if (done[i] || eng_op_lookup(on->op_type, on->domain, opset, on->name, &op, NULL) == 0)
            continue;
        int count = 0;
        for (int j = i; j < n; j++)
            if (!done[j] && same_kind(on, &og->nodes[j])) done[j] = true, count++;
        if (i != first) ADD("; ");
        if (is_default_domain(on->domain))
            ADD("%s", on->op_type ? on->op_type : "");
        else
            ADD("%s.%s", on->domain, on->op_type ? on->op_type : "");
        ADD(" (opset %lld) x%d at node%s ", (long long)opset, count, count > 1 ? "s" : "");
        int shown = 0;
        for (int j = i; j < n && shown < 3; j++) {
            if (!same_kind(on, &og->nodes[j])) continue;
            const char *nm = og->nodes[j].name ? og->nodes[j].name : "";
            ADD("%s'%.40s'", shown ? ", " : "", nm);
            shown++;
        }
        if (count > shown) ADD("...");
    }
#undef ADD
    free(done);
    if (len >= sizeof(msg) && sizeof(msg) > 4) memcpy(msg + sizeof(msg) - 4, "...", 4);
    return rouse_err_set(eb, ROUSE_EUNSUPPORTED, "%s", msg);
}
