/*
 * Load-time graph rewrites; see optimize.h. Every rewrite is local and
 * checks that the value it removes has no other reader and is not a graph
 * output, so the graph computes the same outputs before and after.
 */
#include "engine/optimize.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "engine/optimize_qdq.h"
#include "engine/ref_dispatch.h"

#define ENG_FOLD_MAX_BYTES (16 << 20)

int eng_graph_count_uses(const eng_graph *g, int v)
{
    int uses = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const eng_node *n = &g->nodes[i];
        if (n->dead) continue;
        for (int k = 0; k < n->n_in; k++)
            uses += n->in[k] == v;
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
            for (int k = 1; k < bn->n_out; k++)
                extra |= bn->out[k] >= 0;
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
        for (int k = 1; k < 5; k++)
            ok &= const_float_vector(g, bn->in[k], m);
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
            for (int64_t j = 0; j < per; j++)
                w1[o * per + j] = w0[o * per + j] * s;
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
        case ENG_OP_TANH:
        case ENG_OP_GELU:
        case ENG_OP_HARD_SWISH:
        case ENG_OP_SOFTPLUS:
        case ENG_OP_ABS:
            break;
        case ENG_OP_LEAKY_RELU:
            po.alpha = act->attrs.alpha.alpha;
            break;
        case ENG_OP_ELU:
        case ENG_OP_HARD_SIGMOID:
            po.alpha = act->attrs.act.params.alpha;
            po.beta = act->attrs.act.params.beta;
            break;
        case ENG_OP_CLIP:
            if (act->opset < 11) {
                po.alpha = act->attrs.clip.has_min ? (float)act->attrs.clip.min : -INFINITY;
                po.beta = act->attrs.clip.has_max ? (float)act->attrs.clip.max : INFINITY;
            } else if (!clip_bound(g, act, 1, -INFINITY, &po.alpha) ||
                       !clip_bound(g, act, 2, INFINITY, &po.beta)) {
                continue;
            }
            break;
        default:
            continue;
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

/* --- LayerNorm and GELU: the decomposed forms exporters write ----------------- */

/* The live node producing v, or NULL. */
static eng_node *producer_of(eng_graph *g, int v)
{
    if (v < 0 || g->values[v].producer < 0) return NULL;
    eng_node *n = &g->nodes[g->values[v].producer];
    return n->dead ? NULL : n;
}

/* The only live node reading v (in one input slot), when v is not a graph
 * output: the value can then disappear inside a fused node. */
static eng_node *sole_reader(eng_graph *g, int v)
{
    if (v < 0 || g->values[v].is_output || eng_graph_count_uses(g, v) != 1) return NULL;
    for (int i = 0; i < g->n_nodes; i++) {
        eng_node *n = &g->nodes[i];
        if (n->dead) continue;
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] == v) return n;
    }
    return NULL;
}

/* A plain two-input op node (no fused post-ops, one output). */
static bool is_binary(const eng_node *n, eng_op op)
{
    return n && !n->dead && n->op == op && n->n_in == 2 && n->n_out == 1 && n->n_post == 0 &&
           n->in[0] >= 0 && n->in[1] >= 0;
}

static bool const_scalar(const eng_graph *g, int v, float *out)
{
    if (!is_const(g, v)) return false;
    const eng_value *c = &g->values[v];
    if (c->dtype != ENG_DT_FLOAT || c->rank < 0 || eng_shape_numel(c->rank, c->shape) != 1)
        return false;
    memcpy(out, c->const_data, sizeof(float)); /* may sit misaligned in the file */
    return true;
}

/* For a commutative op node reading v: the other operand's value id. */
static int other_input(const eng_node *n, int v)
{
    if (n->in[0] == v && n->in[1] != v) return n->in[1];
    if (n->in[1] == v && n->in[0] != v) return n->in[0];
    return -1;
}

/* A float constant of rank <= 1 (LayerNorm scale or bias). */
static bool const_vector(const eng_graph *g, int v)
{
    return is_const(g, v) && g->values[v].dtype == ENG_DT_FLOAT && g->values[v].rank <= 1;
}

/* ReduceMean over the last dim only, keeping it: axes [-1], or [r-1] when
 * the rank r of x (whose shape the input has) is known here. */
static bool reduces_last_dim(const eng_graph *g, const eng_node *m, int x)
{
    if (m->op != ENG_OP_REDUCE_MEAN || m->n_in != 1 || m->n_out != 1 || m->n_post ||
        !m->attrs.axes.keepdims || m->attrs.axes.n_axes != 1)
        return false;
    int64_t ax = m->attrs.axes.axes[0];
    int r = x >= 0 ? g->values[x].rank : -1;
    return ax == -1 || (r > 0 && ax == r - 1);
}

/* Rewrites node `last` into `op` reading n_in inputs; the nodes in
 * dead[0..n_dead) disappear. `last` is the pattern's final node, so every
 * input of the fused op is available where it stands. */
static int rewrite_as(eng_graph *g, eng_node *last, eng_op op, int n_in, const int *in,
                      eng_node **dead, int n_dead, rouse_errbuf *eb)
{
    int *ins = rouse_arena_alloc(&g->arena, sizeof(int) * (size_t)n_in, 8);
    if (!ins) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory fusing nodes");
    memcpy(ins, in, sizeof(int) * (size_t)n_in);
    for (int i = 0; i < n_dead; i++) {
        for (int k = 0; k < dead[i]->n_out; k++)
            if (dead[i]->out[k] >= 0) g->values[dead[i]->out[k]].producer = -1;
        dead[i]->dead = true;
    }
    last->op = op;
    last->in = ins;
    last->n_in = n_in;
    memset(&last->attrs, 0, sizeof(last->attrs));
    return 0;
}

/* mean = ReduceMean(x); d = x - mean; v = ReduceMean(d^2); y = d / sqrt(v + eps),
 * then optionally y * scale and + bias (constant vectors), over the last
 * dim. d^2 is Pow(d, 2) or Mul(d, d). Every intermediate must be read by the
 * pattern alone. */
static int fuse_layernorm(eng_graph *g, eng_opt_stats *st, rouse_errbuf *eb)
{
    for (int i = 0; i < g->n_nodes; i++) {
        eng_node *m1 = &g->nodes[i];
        if (m1->dead || !reduces_last_dim(g, m1, m1->in[0])) continue;
        int x = m1->in[0], mean = m1->out[0];
        eng_node *sub = sole_reader(g, mean);
        if (!is_binary(sub, ENG_OP_SUB) || sub->in[0] != x || sub->in[1] != mean) continue;
        int d = sub->out[0];
        if (d < 0 || g->values[d].is_output) continue;
        /* d feeds the square and the final Div, nothing else. */
        eng_node *sq = NULL, *div = NULL;
        int d_uses = eng_graph_count_uses(g, d);
        for (int k = 0; k < g->n_nodes; k++) {
            eng_node *n = &g->nodes[k];
            if (n->dead) continue;
            if (is_binary(n, ENG_OP_POW) && n->in[0] == d)
                sq = n;
            else if (is_binary(n, ENG_OP_MUL) && n->in[0] == d && n->in[1] == d)
                sq = n;
            else if (is_binary(n, ENG_OP_DIV) && n->in[0] == d && n->in[1] != d)
                div = n;
        }
        if (!sq || !div) continue;
        float two;
        if (sq->op == ENG_OP_POW ? !const_scalar(g, sq->in[1], &two) || two != 2.0f || d_uses != 2
                                 : d_uses != 3)
            continue;
        eng_node *m2 = sole_reader(g, sq->out[0]);
        if (!m2 || m2->dead || !reduces_last_dim(g, m2, x) ||
            m2->attrs.axes.axes[0] != m1->attrs.axes.axes[0])
            continue;
        eng_node *add = sole_reader(g, m2->out[0]);
        float eps;
        if (!is_binary(add, ENG_OP_ADD) || !const_scalar(g, other_input(add, m2->out[0]), &eps))
            continue;
        eng_node *sqrt_n = sole_reader(g, add->out[0]);
        if (!sqrt_n || sqrt_n->op != ENG_OP_SQRT || sqrt_n->n_post || sqrt_n->n_out != 1 ||
            sqrt_n->out[0] != div->in[1] || sole_reader(g, sqrt_n->out[0]) != div)
            continue;

        eng_node *last = div, *dead[8] = {m1, sub, sq, m2, add, sqrt_n};
        int n_dead = 6;
        int scale = -1, bias = -1;
        eng_node *mul = sole_reader(g, div->out[0]);
        if (is_binary(mul, ENG_OP_MUL) && const_vector(g, other_input(mul, div->out[0]))) {
            scale = other_input(mul, div->out[0]);
            dead[n_dead++] = last;
            last = mul;
        }
        eng_node *badd = sole_reader(g, last->out[0]);
        if (is_binary(badd, ENG_OP_ADD) && const_vector(g, other_input(badd, last->out[0]))) {
            bias = other_input(badd, last->out[0]);
            dead[n_dead++] = last;
            last = badd;
        }
        int in[3] = {x, scale, bias};
        int rc = rewrite_as(g, last, ENG_OP_LAYERNORM,
                            bias >= 0    ? 3
                            : scale >= 0 ? 2
                                         : 1,
                            in, dead, n_dead, eb);
        if (rc < 0) return rc;
        last->attrs.norm.axis = -1;
        last->attrs.norm.epsilon = eps;
        st->fused_layernorm++;
    }
    return 0;
}

/* A float constant within a relative 1e-6 of `want`. */
static bool const_near(const eng_graph *g, int v, double want)
{
    float c;
    return const_scalar(g, v, &c) && fabs((double)c - want) <= 1e-6 * fabs(want);
}

/* GELU with erf, as x * 0.5 * (1 + erf(x / sqrt(2))) in any of the orders
 * exporters write: (x * 0.5) * a, (x * a) * 0.5 or x * (a * 0.5), with
 * a = erf(x / sqrt(2)) + 1 (or x * (1 / sqrt(2)) inside). */
static int fuse_gelu(eng_graph *g, eng_opt_stats *st, rouse_errbuf *eb)
{
    for (int i = 0; i < g->n_nodes; i++) {
        eng_node *erf = &g->nodes[i];
        if (erf->dead || erf->op != ENG_OP_ERF || erf->n_in != 1 || erf->n_out != 1 ||
            erf->n_post || erf->in[0] < 0)
            continue;
        eng_node *scl = producer_of(g, erf->in[0]);
        if (sole_reader(g, erf->in[0]) != erf) continue;
        int x;
        if (is_binary(scl, ENG_OP_DIV) && const_near(g, scl->in[1], 1.4142135623730951)) {
            x = scl->in[0];
        } else if (is_binary(scl, ENG_OP_MUL) && (const_near(g, scl->in[1], 0.7071067811865476) ||
                                                  const_near(g, scl->in[0], 0.7071067811865476))) {
            x = const_near(g, scl->in[1], 0.7071067811865476) ? scl->in[0] : scl->in[1];
        } else {
            continue;
        }
        if (is_const(g, x)) continue;
        eng_node *one = sole_reader(g, erf->out[0]);
        if (!is_binary(one, ENG_OP_ADD) || !const_near(g, other_input(one, erf->out[0]), 1.0))
            continue;
        int a = one->out[0];
        eng_node *m1 = sole_reader(g, a);
        if (!is_binary(m1, ENG_OP_MUL)) continue;
        int o = other_input(m1, a);
        eng_node *last = NULL, *mid = NULL;
        if (o == x) {
            /* (x * a) * 0.5 */
            eng_node *m2 = sole_reader(g, m1->out[0]);
            if (is_binary(m2, ENG_OP_MUL) && const_near(g, other_input(m2, m1->out[0]), 0.5)) {
                mid = m1;
                last = m2;
            }
        } else if (const_near(g, o, 0.5)) {
            /* x * (a * 0.5) */
            eng_node *m2 = sole_reader(g, m1->out[0]);
            if (is_binary(m2, ENG_OP_MUL) && other_input(m2, m1->out[0]) == x) {
                mid = m1;
                last = m2;
            }
        } else {
            /* (x * 0.5) * a */
            eng_node *h = producer_of(g, o);
            if (is_binary(h, ENG_OP_MUL) && sole_reader(g, o) == m1 && other_input(h, x) >= 0 &&
                const_near(g, other_input(h, x), 0.5)) {
                mid = h;
                last = m1;
            }
        }
        if (!last) continue;
        eng_node *dead[4] = {scl, erf, one, mid};
        int rc = rewrite_as(g, last, ENG_OP_GELU, 1, &x, dead, 4, eb);
        if (rc < 0) return rc;
        st->fused_gelu++;
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
    if ((rc = eng_graph_fuse_qdq(g, st, eb)) < 0) return rc;
    if ((rc = fold_constants(g, st, eb)) < 0) return rc;
    if ((rc = fold_batchnorm(g, st, eb)) < 0) return rc;
    if ((rc = fuse_layernorm(g, st, eb)) < 0) return rc;
    if ((rc = fuse_gelu(g, st, eb)) < 0) return rc;
    if ((rc = fuse_activations(g, st)) < 0) return rc;
    remove_dead(g, st);
    return 0;
}
