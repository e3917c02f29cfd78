/*
 * Whether a model can run batches along dim 0 of its inputs (dynamic
 * batching in serve): shape inference over the whole graph at two batch
 * sizes, comparing every value's shape between them.
 *
 * A value "carries the batch" when its dim 0 follows the batch size (2 and
 * 3) and its other dims stay put; it is "static" when its shape is the same
 * at both sizes. The model is batch-agnostic when every graph output
 * carries the batch. Otherwise the node to blame is the first (in
 * topological order) that reads a value carrying the batch and writes one
 * that neither carries it nor stays static (a Reshape to [1, -1] turns
 * [B, 784] into [1, B*784]), or that turns it static (a reduction over the
 * batch, a Reshape back to 1); Shape and Size are exempt, they only read
 * shapes. A node whose shape inference fails at batch 2 or 3 (a Reshape to
 * a constant [1, 32, 2, 64] of a [B, 32, 128] input) is named with the
 * inference's own message.
 *
 * Values small enough are computed on the way with the reference kernels,
 * as preparing folds them, so that shape arithmetic (Shape -> Gather ->
 * Concat -> Reshape) resolves at each batch size.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/exec.h"
#include "engine/graph.h"
#include "engine/op.h"
#include "engine/quantize.h"
#include "engine/ref_dispatch.h"
#include "engine/tensor.h"
#include "rouse/engine.h"

#define FOLD_MAX_BYTES (64 * 1024)
/* The size every other dynamic dim takes while checking (sequence length,
 * image sides): neither 1 (broadcasting) nor a batch size tried. */
#define OTHER_DIM 8

typedef struct walk {
    eng_tensor *vals;
    void **owned;
    bool *known;
} walk;

static void walk_fini(const eng_graph *g, walk *w)
{
    for (int i = 0; w->owned && i < g->n_values; i++)
        free(w->owned[i]);
    free(w->owned);
    free(w->known);
    free(w->vals);
}

/* Shape inference of g with dim 0 of every input at `batch`. */
static int walk_at(const eng_graph *g, int64_t batch, walk *w, rouse_errbuf *eb)
{
    w->vals = calloc((size_t)g->n_values + 1, sizeof(*w->vals));
    w->known = calloc((size_t)g->n_values + 1, sizeof(bool));
    w->owned = calloc((size_t)g->n_values + 1, sizeof(void *));
    if (!w->vals || !w->known || !w->owned) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    for (int i = 0; i < g->n_values; i++) {
        const eng_value *v = &g->values[i];
        if (!v->const_data) continue;
        w->vals[i] = (eng_tensor){.dtype = v->dtype, .rank = v->rank, .data = (void *)v->const_data};
        memcpy(w->vals[i].shape, v->shape, sizeof(v->shape));
        w->known[i] = true;
    }
    for (int i = 0; i < g->n_inputs; i++) {
        const eng_value *v = &g->values[g->inputs[i]];
        eng_tensor *t = &w->vals[g->inputs[i]];
        t->dtype = v->dtype;
        t->rank = v->rank;
        for (int d = 0; d < v->rank; d++)
            t->shape[d] = d == 0 ? batch : v->shape[d] < 0 ? OTHER_DIM : v->shape[d];
        w->known[g->inputs[i]] = true;
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const eng_node *n = &g->nodes[i];
        if (n->dead) continue;
        const eng_tensor *in[64];
        eng_tensor out[8], *outp[8];
        if (n->n_in > 64 || n->n_out > 8)
            return rouse_err_set(eb, ROUSE_EUNSUPPORTED, "node '%s' has too many inputs or outputs",
                                 n->name);
        bool shape_only = n->op == ENG_OP_SHAPE || n->op == ENG_OP_SIZE;
        bool all_data = true;
        for (int k = 0; k < n->n_in; k++) {
            in[k] = n->in[k] >= 0 ? &w->vals[n->in[k]] : NULL;
            if (in[k] && !in[k]->data && !shape_only) all_data = false;
        }
        memset(out, 0, sizeof(out));
        eng_attrs res;
        int rc = eng_infer_node(n, in, out, &res, eb);
        if (rc < 0) return rc;
        const eng_op_desc *d = eng_op_desc_get(n->op);
        int64_t bytes = 0;
        for (int k = 0; k < n->n_out; k++)
            if (n->out[k] >= 0) bytes += eng_tensor_nbytes(&out[k]);
        bool fold = all_data && d && d->run && bytes <= FOLD_MAX_BYTES;
        for (int k = 0; k < n->n_out; k++) {
            outp[k] = NULL;
            if (n->out[k] < 0) continue;
            out[k].data = NULL;
            if (fold) {
                w->owned[n->out[k]] = calloc(1, (size_t)eng_tensor_nbytes(&out[k]) + 16);
                if (!w->owned[n->out[k]]) fold = false;
                out[k].data = w->owned[n->out[k]];
            }
            w->vals[n->out[k]] = out[k];
            w->known[n->out[k]] = true;
            outp[k] = &w->vals[n->out[k]];
        }
        rouse_errbuf ignored;
        if (fold && eng_ref_run_node(n, &res, in, outp, &ignored) < 0)
            for (int k = 0; k < n->n_out; k++)
                if (n->out[k] >= 0) w->vals[n->out[k]].data = NULL;
    }
    return 0;
}

enum { V_OTHER = 0, V_BATCH = 1, V_STATIC = 2 };

static int classify(const eng_tensor *a, const eng_tensor *b)
{
    if (a->rank != b->rank) return V_OTHER;
    if (eng_shape_equal(a->rank, a->shape, b->rank, b->shape)) return V_STATIC;
    if (a->rank < 1 || a->shape[0] != 2 || b->shape[0] != 3) return V_OTHER;
    for (int d = 1; d < a->rank; d++)
        if (a->shape[d] != b->shape[d]) return V_OTHER;
    return V_BATCH;
}

int rouse_model_batch_check(rouse_model *m, rouse_errbuf *eb)
{
    const eng_graph *g = eng_model_graph_view(m);
    if (g->n_inputs == 0) return rouse_err_set(eb, ROUSE_EINVAL, "the model has no inputs to batch");
    for (int i = 0; i < g->n_inputs; i++) {
        const eng_value *v = &g->values[g->inputs[i]];
        if (v->rank < 1)
            return rouse_err_set(eb, ROUSE_EINVAL,
                                 "input '%s' has no batch dim (it declares %s)", v->name,
                                 v->rank < 0 ? "no shape" : "a scalar");
        if (v->shape[0] >= 0 && v->shape[0] != 1)
            return rouse_err_set(eb, ROUSE_EINVAL,
                                 "input '%s' has its first dim fixed at %lld: not a batch dim (a "
                                 "dynamic first dim or a fixed 1 is)",
                                 v->name, (long long)v->shape[0]);
        if (eng_graph_input_value_matters(g, i))
            return rouse_err_set(eb, ROUSE_EINVAL,
                                 "shapes depend on the values of input '%s': its requests "
                                 "cannot be batched",
                                 v->name);
    }
    walk a = {0}, b = {0};
    int rc = walk_at(g, 2, &a, eb);
    if (rc == 0) rc = walk_at(g, 3, &b, eb);
    if (rc < 0) {
        rc = rouse_err_wrap(eb, ROUSE_EINVAL, "the batch dim cannot vary");
        goto out;
    }
    bool ok = true;
    for (int i = 0; i < g->n_outputs && ok; i++)
        ok = classify(&a.vals[g->outputs[i]], &b.vals[g->outputs[i]]) == V_BATCH;
    if (ok) goto out;
    rc = ROUSE_EINVAL;
    for (int i = 0; i < g->n_nodes; i++) {
        const eng_node *n = &g->nodes[i];
        if (n->dead || n->op == ENG_OP_SHAPE || n->op == ENG_OP_SIZE) continue;
        bool reads = false, pins = false;
        for (int k = 0; k < n->n_in; k++)
            reads |= n->in[k] >= 0 && classify(&a.vals[n->in[k]], &b.vals[n->in[k]]) == V_BATCH;
        for (int k = 0; k < n->n_out; k++)
            pins |= n->out[k] >= 0 && classify(&a.vals[n->out[k]], &b.vals[n->out[k]]) != V_BATCH;
        if (!reads || !pins) continue;
        rouse_err_set(eb, rc,
                      "node '%s' (%s) pins the batch dim: its input carries the batch in dim 0, "
                      "its output does not",
                      n->name, eng_op_name(n->op));
        goto out;
    }
    for (int i = 0; i < g->n_outputs; i++) {
        const eng_value *v = &g->values[g->outputs[i]];
        if (classify(&a.vals[g->outputs[i]], &b.vals[g->outputs[i]]) == V_BATCH) continue;
        rouse_err_set(eb, rc, "output '%s' does not follow the batch in its first dim", v->name);
        break;
    }
out:
    walk_fini(g, &a);
    walk_fini(g, &b);
    return rc;
}
