/*
 * Load-time graph rewrites; see optimize.h. Every rewrite is local and
 * checks that the value it removes has no other reader and is not a graph
 * output, so the graph computes the same outputs before and after.
 */
#include "engine/optimize.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "engine/ref_dispatch.h"

#define ENG_FOLD_MAX_BYTES (16 << 20)

int eng_graph_count_uses(const eng_graph *g, int v)
{
    int uses = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const eng_node *n = &g->nodes[i];
        if (n->dead) continue;
        for (int k = 0; k < n->n_in; k++) uses += n->in[k] == v;
    }
    return uses;
}

static void replace_uses(eng_graph *g, int from, int to)
{
    for (int i = 0; i < g->n_nodes; i++) {
        eng_node *n = &g->nodes[i];
        if (n->dead) continue;
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] == from) n->in[k] = to;
    }
}

static bool is_const(const eng_graph *g, int v)
{
    return v >= 0 && g->values[v].const_data;
}

/* Only the first output of Identity/Dropout carries data; Dropout's mask and
 * training-mode input keep the node. */
static int remove_identities(eng_graph *g, eng_opt_stats *st)
{
    for (int i = 0; i < g->n_nodes; i++) {
        eng_node *n = &g->nodes[i];
        if (n->dead || (n->op != ENG_OP_IDENTITY && n->op != ENG_OP_DROPOUT)) continue;
        if (n->op == ENG_OP_DROPOUT) {
            if (n->n_in > 2 && n->in[2] >= 0) continue;
            if (n->n_out > 1 && n->out[1] >= 0 &&
                (g->values[n->out[1]].is_output || eng_graph_count_uses(g, n->out[1])))
                continue;
        }
        int src = n->in[0], dst = n->out[0];
        if (src < 0 || dst < 0) continue;
        if (!g->values[dst].is_output) {
            replace_uses(g, dst, src);
        } else {
            /* The output name must survive: let the producer of src write dst. */
            eng_value *sv = &g->values[src];
            if (sv->is_input || sv->is_output || sv->const_data || sv->producer < 0) continue;
            eng_node *p = &g->nodes[sv->producer];
            for (int k = 0; k < p->n_out; k++)
                if (p->out[k] == src) p->out[k] = dst;
            g->values[dst].producer = sv->producer;
            sv->producer = -1;
            n->dead = true; /* before replace_uses, so this node is not rewritten */
            replace_uses(g, src, dst);
        }
        n->dead = true;
        st->removed_identity++;
    }
    return 0;
}

static int fold_constants(eng_graph *g, eng_opt_stats *st, rouse_errbuf *eb)
{
    for (int i = 0; i < g->n_nodes; i++) {
        eng_node *n = &g->nodes[i];
        if (n->dead) continue;
        bool all_const = true;
        for (int k = 0; k < n->n_in && all_const; k++)
            all_const = n->in[k] < 0 || is_const(g, n->in[k]);
        if (!all_const || n->n_in == 0) continue;

        eng_tensor in_t[16], out_t[4];
        const eng_tensor *in_p[16];
        eng_tensor *out_p[4];
        if (n->n_in > 16 || n->n_out > 4) continue;
        for (int k = 0; k < n->n_in; k++) {
            in_p[k] = NULL;
            if (n->in[k] < 0) continue;
            if (!eng_graph_const_aligned(g, n->in[k], eb)) return ROUSE_ENOMEM;
            const eng_value *v = &g->values[n->in[k]];
            in_t[k].dtype = v->dtype;
            in_t[k].rank = v->rank;
            memcpy(in_t[k].shape, v->shape, sizeof(v->shape));
            in_t[k].data = (void *)v->const_data;
            in_p[k] = &in_t[k];
        }
        memset(out_t, 0, sizeof(out_t));
        eng_attrs resolved;
        int rc = eng_infer_node(n, in_p, out_t, &resolved, eb);
        if (rc < 0) return rc;
        for (int k = 0; k < n->n_out; k++) {
            out_p[k] = NULL;
            if (n->out[k] < 0) continue;
            int64_t nbytes = eng_tensor_nbytes(&out_t[k]);
            if (nbytes < 0)
                return rouse_err_set(eb, ROUSE_EUNSUPPORTED,
                                     "node '%s' (%s): output %d has no fixed size", n->name,
                                     eng_op_name(n->op), k);
            /* A constant that would grow the model a lot is computed at run
             * time instead (and a hostile file cannot make loading allocate
             * gigabytes). */
            if (nbytes > ENG_FOLD_MAX_BYTES) goto next_node;
            out_t[k].data = rouse_arena_alloc(&g->arena, (size_t)nbytes, 64);
            if (!out_t[k].data) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory folding");
            out_p[k] = &out_t[k];
        }
        if ((rc = eng_ref_run_node(n, &resolved, in_p, out_p, eb)) < 0) return rc;
        for (int k = 0; k < n->n_out; k++) {
            if (n->out[k] < 0) continue;
            eng_value *v = &g->values[n->out[k]];
            v->dtype = out_t[k].dtype;
            v->rank = out_t[k].rank;
            memcpy(v->shape, out_t[k].shape, sizeof(v->shape));
            v->const_data = out_t[k].data;
            v->producer = -1;
        }
        n->dead = true;
        st->folded_constants++;
    next_node:;
    }
    return 0;
}

static bool const_float_vector(const eng_graph *g, int v, int64_t len)
{
    if (!is_const(g, v)) return false;
    const eng_value *val = &g->values[v];
    return val->dtype == ENG_DT_FLOAT && eng_shape_numel(val->rank, val->shape) == len &&
           val->rank == 1;
}

/* Conv(x, W, B) -> BN(scale, bias, mean, var) becomes Conv(x, W', B'). */
static int fold_batchnorm(eng_graph *g, eng_opt_stats *st, rouse_errbuf *eb)
{
    for (int i = 0; i < g->n_nodes; i++) {
        eng_node *bn = &g->nodes[i];
        if (bn->dead || bn->op != ENG_OP_BATCHNORM || bn->n_in < 5) continue;
        if (bn->n_out > 1) {
            bool extra = false;
            for (int k = 1; k < bn->n_out; k++) extra |= bn->out[k] >= 0;
            if (extra) continue;
        }
        int x = bn->in[0];
        if (x < 0 || g->values[x].producer < 0) continue;
        eng_node *cv = &g->nodes[g->values[x].producer];
        if (cv->dead || cv->op != ENG_OP_CONV || cv->n_post || g->values[x].is_output ||
            eng_graph_count_uses(g, x) != 1)
            continue;
        int w = cv->in[1];
        if (!is_const(g, w) || g->values[w].dtype != ENG_DT_FLOAT || g->values[w].rank < 3)
            continue;
        int64_t m = g->values[w].shape[0];
        int b = cv->n_in > 2 ? cv->in[2] : -1;
        if (b >= 0 && !const_float_vector(g, b, m)) continue;
        bool ok = true;
        for (int k = 1; k < 5; k++) ok &= const_float_vector(g, bn->in[k], m);
        if (!ok) continue;

        int ids[6] = {bn->in[1], bn->in[2], bn->in[3], bn->in[4], w, b};
        for (int k = 0; k < 6; k++)
            if (ids[k] >= 0 && !eng_graph_const_aligned(g, ids[k], eb)) return ROUSE_ENOMEM;
        const float *scale = g->values[bn->in[1]].const_data;
        const float *beta = g->values[bn->in[2]].const_data;
        const float *mean = g->values[bn->in[3]].const_data;
        const float *var = g->values[bn->in[4]].const_data;
        const float *w0 = g->values[w].const_data;
        const float *b0 = b >= 0 ? g->values[b].const_data : NULL;
        int64_t per = eng_shape_numel(g->values[w].rank, g->values[w].shape) / (m ? m : 1);
        float *w1 = rouse_arena_alloc(&g->arena, sizeof(float) * (size_t)(m * per + 1), 64);
        float *b1 = rouse_arena_alloc(&g->arena, sizeof(float) * (size_t)(m + 1), 64);
        if (!w1 || !b1) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory folding BN");
        float eps = bn->attrs.bn.epsilon;
        for (int64_t o = 0; o < m; o++) {
            float s = scale[o] / sqrtf(var[o] + eps);
            for (int64_t j = 0; j < per; j++) w1[o * per + j] = w0[o * per + j] * s;
            b1[o] = ((b0 ? b0[o] : 0.0f) - mean[o]) * s + beta[o];
        }
        int w_id, b_id;
        char *wn = rouse_arena_alloc(&g->arena, strlen(g->values[w].name) + 16, 1);
        char *bname = rouse_arena_alloc(&g->arena, strlen(g->values[w].name) + 16, 1);
        if (!wn || !bname) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory folding BN");
        sprintf(wn, "%s.bn_folded", g->values[w].name);
        sprintf(bname, "%s.bn_bias", g->values[w].name);
        int rc;
        if ((rc = eng_graph_add_value(g, wn, ENG_DT_FLOAT, &w_id)) < 0 ||
            (rc = eng_graph_add_value(g, bname, ENG_DT_FLOAT, &b_id)) < 0)
            return rouse_err_set(eb, rc, "out of memory folding BN");
        eng_value *wv = &g->values[w_id];
        wv->rank = g->values[w].rank;
        memcpy(wv->shape, g->values[w].shape, sizeof(wv->shape));
        wv->const_data = w1;
        eng_value *bv = &g->values[b_id];
        bv->rank = 1;
        bv->shape[0] = m;
        bv->const_data = b1;

        if (cv->n_in < 3) {
            int *in = rouse_arena_alloc(&g->arena, sizeof(int) * 3, 8);
            if (!in) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory folding BN");
            in[0] = cv->in[0];
            cv->in = in;
            cv->n_in = 3;
        }
        cv->in[1] = w_id;
        cv->in[2] = b_id;
        cv->out[0] = bn->out[0];
        g->values[bn->out[0]].producer = (int)(cv - g->nodes);
        g->values[x].producer = -1;
        bn->dead = true;
        st->folded_batchnorm++;
    }
    return 0;
}

/* Reads a scalar float bound of Clip (opset >= 11 input). */
static bool clip_bound(const eng_graph *g, const eng_node *n, int k, float dflt, float *out)
{
    if (n->n_in <= k || n->in[k] < 0) {
        *out = dflt;
        return true;
    }
    const eng_value *v = &g->values[n->in[k]];
    if (!v->const_data || v->dtype != ENG_DT_FLOAT || eng_shape_numel(v->rank, v->shape) != 1)
        return false;
    *out = *(const float *)v->const_data;
    return true;
}

static int fuse_activations(eng_graph *g, eng_opt_stats *st)
{
    for (int i = 0; i < g->n_nodes; i++) {
        eng_node *act = &g->nodes[i];
        if (act->dead) continue;
        eng_postop po = {.kind = ENG_POST_ELTWISE, .eltwise = act->op};
        switch (act->op) {
        case ENG_OP_RELU:
        case ENG_OP_SIGMOID:
        case ENG_OP_TANH: break;
        case ENG_OP_LEAKY_RELU: po.alpha = act->attrs.alpha.alpha; break;
        case ENG_OP_CLIP:
            if (act->opset < 11) {
                po.alpha = act->attrs.clip.has_min ? (float)act->attrs.clip.min : -INFINITY;
                po.beta = act->attrs.clip.has_max ? (float)act->attrs.clip.max : INFINITY;
            } else if (!clip_bound(g, act, 1, -INFINITY, &po.alpha) ||
                       !clip_bound(g, act, 2, INFINITY, &po.beta)) {
                continue;
            }
            break;
        default: continue;
        }
        int x = act->in[0];
        if (x < 0 || g->values[x].producer < 0 || g->values[x].is_output) continue;
        eng_node *p = &g->nodes[g->values[x].producer];
        if (p->dead || (p->op != ENG_OP_CONV && p->op != ENG_OP_GEMM) ||
            p->n_post >= ENG_MAX_POSTOPS || eng_graph_count_uses(g, x) != 1)
            continue;
        p->post[p->n_post++] = po;
        p->out[0] = act->out[0];
        g->values[act->out[0]].producer = (int)(p - g->nodes);
        g->values[x].producer = -1;
        act->dead = true;
        st->fused_activations++;
    }
    return 0;
}

static void remove_dead(eng_graph *g, eng_opt_stats *st)
{
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        eng_node *n = &g->nodes[i];
        if (n->dead) continue;
        bool used = false;
        for (int k = 0; k < n->n_out && !used; k++) {
            int v = n->out[k];
            used = v >= 0 && (g->values[v].is_output || eng_graph_count_uses(g, v));
        }
        if (!used) {
            n->dead = true;
            st->removed_dead++;
        }
    }
}

int eng_graph_optimize(eng_graph *g, eng_opt_stats *stats, rouse_errbuf *eb)
{
    eng_opt_stats local;
    eng_opt_stats *st = stats ? stats : &local;
    memset(st, 0, sizeof(*st));
    int rc;
    if ((rc = remove_identities(g, st)) < 0) return rc;
    if ((rc = fold_constants(g, st, eb)) < 0) return rc;
    if ((rc = fold_batchnorm(g, st, eb)) < 0) return rc;
    if ((rc = fuse_activations(g, st)) < 0) return rc;
    remove_dead(g, st);
    return 0;
}
