/*
 * int8 patterns that leave no float value behind, run on u8 data while a
 * plan is prepared (see exec_int.h):
 *
 *   DQ(aq), DQ(bq) -> Add [-> Relu] -> Q   one oneDNN binary add of the u8
 *                                          tensors, with scales and post-ops
 *   DQ(xq) -> AveragePool | GlobalAveragePool -> Q
 *                                          one u8 pooling (same scale and
 *                                          zero point in and out, as the
 *                                          int8 quantizer writes them)
 *
 * This is the QDQ form quantizers write around residual Adds and average
 * pooling, and the form `rouse compile --precision int8` writes too, so the
 * plan and the QDQ file stay standard ONNX and run alike.
 *
 * Every check that depends only on the graph is made when the patterns are
 * found; the pattern's DequantizeLinear nodes (when every reader of their
 * output is such a pattern), its Relu and its QuantizeLinear are skipped by
 * the node loop. What depends on the prepared values (u8 data, equal
 * shapes, a oneDNN kernel for the layout) is checked when the centre node
 * is reached: if the u8 kernel cannot be made, exec.c builds the skipped
 * nodes one by one as any others, so the pattern only ever changes speed.
 *
 * The binary add computes, in float and then rounded and saturated as the
 * reference's QuantizeLinear does,
 *   y = [relu]((sa/sy) * a + (sb/sy) * b - (sa*za + sb*zb)/sy) + zy
 * which is Q(relu(DQ(a) + DQ(b))) up to the rounding of the last step.
 */
#include "engine/exec_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Element 0 of a one-element constant of type float or u8; NAN otherwise. */
static double scalar(const eng_graph *g, int v)
{
    if (v < 0) return NAN;
    const eng_value *c = &g->values[v];
    if (!c->const_data || c->rank < 0 || eng_shape_numel(c->rank, c->shape) != 1) return NAN;
    if (c->dtype == ENG_DT_FLOAT) {
        float f;
        memcpy(&f, c->const_data, 4);
        return f;
    }
    if (c->dtype == ENG_DT_UINT8) return *(const uint8_t *)c->const_data;
    return NAN;
}

/* Per-tensor constant parameters of a QuantizeLinear or DequantizeLinear:
 * scale float, finite and > 0, zero point given, u8. */
static bool u8_params(const eng_graph *g, const eng_node *n, double *scale, double *zp)
{
    if (n->n_in < 3 || n->in[1] < 0 || n->in[2] < 0) return false;
    if (g->values[n->in[1]].dtype != ENG_DT_FLOAT || g->values[n->in[2]].dtype != ENG_DT_UINT8)
        return false;
    *scale = scalar(g, n->in[1]);
    *zp = scalar(g, n->in[2]);
    return *scale > 0 && isfinite(*scale) && !isnan(*zp);
}

static const eng_node *live_producer(const eng_graph *g, int v)
{
    if (v < 0 || g->values[v].producer < 0) return NULL;
    const eng_node *n = &g->nodes[g->values[v].producer];
    return n->dead ? NULL : n;
}

/* The only live reader of v (read once), when v is not a graph output. */
static int sole_reader(const eng_plan *p, int v)
{
    const eng_graph *g = p->g;
    if (v < 0 || g->values[v].is_output || p->uses_left[v] != 1) return -1;
    for (int i = 0; i < g->n_nodes; i++) {
        const eng_node *n = &g->nodes[i];
        if (n->dead) continue;
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] == v) return i;
    }
    return -1;
}

/* The DequantizeLinear producing v from a computed u8 tensor, per tensor:
 * its node index, else -1. */
static int dq_of(const eng_plan *p, int v)
{
    const eng_graph *g = p->g;
    const eng_node *d = live_producer(g, v);
    double s, z;
    if (!d || d->op != ENG_OP_DEQUANTIZE_LINEAR || d->n_post || d->n_out != 1 || d->in[0] < 0 ||
        g->values[d->in[0]].const_data || !u8_params(g, d, &s, &z))
        return -1;
    return (int)(d - g->nodes);
}

/* The pattern centred on node i, if the graph has it. */
static bool find_one(const eng_plan *p, int i, exec_qpat *qp)
{
    const eng_graph *g = p->g;
    const eng_node *n = &g->nodes[i];
    if (n->dead || n->n_post || n->n_out != 1 || n->out[0] < 0) return false;
    bool add = n->op == ENG_OP_ADD;
    if (add) {
        if (n->n_in != 2 || n->in[0] == n->in[1]) return false;
    } else if (n->op == ENG_OP_AVGPOOL || n->op == ENG_OP_GLOBAL_AVGPOOL) {
        if (n->n_in != 1) return false;
    } else {
        return false;
    }
    qp->center = i;
    qp->dq[0] = dq_of(p, n->in[0]);
    qp->dq[1] = add ? dq_of(p, n->in[1]) : -1;
    if (qp->dq[0] < 0 || (add && qp->dq[1] < 0)) return false;
    qp->relu = -1;
    int r = sole_reader(p, n->out[0]);
    if (r < 0) return false;
    int y = n->out[0];
    if (add && g->nodes[r].op == ENG_OP_RELU) {
        const eng_node *rl = &g->nodes[r];
        if (rl->n_post || rl->n_in != 1 || rl->in[0] != y || rl->n_out != 1 || rl->out[0] < 0)
            return false;
        qp->relu = r;
        y = rl->out[0];
        if ((r = sole_reader(p, y)) < 0) return false;
    }
    const eng_node *q = &g->nodes[r];
    double s, z;
    if (q->op != ENG_OP_QUANTIZE_LINEAR || q->n_post || q->in[0] != y || q->n_out != 1 ||
        q->out[0] < 0 || !u8_params(g, q, &s, &z))
        return false;
    qp->q = r;
    return true;
}

int exec_qfuse_find(eng_plan *p)
{
    const eng_graph *g = p->g;
    p->n_qpats = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        exec_qpat qp;
        if (!find_one(p, i, &qp)) continue;
        if (!p->qpats) {
            p->qpats = malloc(sizeof(exec_qpat) * (size_t)g->n_nodes);
            p->qpat_of = malloc(sizeof(int) * (size_t)g->n_nodes);
            if (!p->qpats || !p->qpat_of) return ROUSE_ENOMEM;
            for (int k = 0; k < g->n_nodes; k++)
                p->qpat_of[k] = -1;
        }
        p->qpat_of[i] = p->n_qpats;
        p->qpats[p->n_qpats++] = qp;
        if (qp.relu >= 0) p->skip[qp.relu] = true;
        p->skip[qp.q] = true;
    }
    /* A DequantizeLinear whose output only pattern centres read is skipped:
     * built later only if a pattern falls back. */
    for (int k = 0; k < p->n_qpats; k++)
        for (int j = 0; j < 2; j++) {
            int d = p->qpats[k].dq[j];
            if (d < 0 || p->skip[d]) continue;
            int v = g->nodes[d].out[0], reads = 0;
            if (g->values[v].is_output) continue;
            for (int m = 0; m < p->n_qpats; m++) {
                const eng_node *c = &g->nodes[p->qpats[m].center];
                for (int e = 0; e < c->n_in; e++)
                    reads += c->in[e] == v;
            }
            if (reads == p->uses_left[v]) p->skip[d] = true;
        }
    return 0;
}

/* The layout of a u8 prepared value. */
static bool u8_md(eng_plan *p, int pv, dnnl_memory_desc_t *md)
{
    const exec_pv *x = &p->pvs[pv];
    if (x->t.dtype != ENG_DT_UINT8) return false;
    if (x->has_md) {
        *md = x->md;
        return true;
    }
    return plan_md_plain(ENG_DT_UINT8, x->t.rank, x->t.shape, md) == 0;
}

static int build_add(eng_plan *p, const exec_qpat *qp, int *dst_pv, rouse_errbuf *eb)
{
    const eng_graph *g = p->g;
    const eng_node *n = &g->nodes[qp->center], *q = &g->nodes[qp->q];
    const eng_node *da = &g->nodes[qp->dq[0]], *db = &g->nodes[qp->dq[1]];
    int a = p->val_pv[da->in[0]], b = p->val_pv[db->in[0]];
    if (a < 0 || b < 0) return 0;
    dnnl_memory_desc_t md0, md1;
    if (!u8_md(p, a, &md0) || !u8_md(p, b, &md1)) return 0;
    const eng_tensor *ta = &p->pvs[a].t, *tb = &p->pvs[b].t;
    if (ta->rank < 1 || ta->rank > 6 || !eng_shape_equal(ta->rank, ta->shape, tb->rank, tb->shape))
        return 0;
    double sa, za, sb, zb, sy, zy;
    u8_params(g, da, &sa, &za);
    u8_params(g, db, &sb, &zb);
    u8_params(g, q, &sy, &zy);
    float s0 = (float)(sa / sy), s1 = (float)(sb / sy);
    float c = (float)(-(sa * za + sb * zb) / sy);
    dnnl_primitive_attr_t attr;
    dnnl_post_ops_t po;
    if (dnnl_primitive_attr_create(&attr) != dnnl_success)
        return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    if (dnnl_post_ops_create(&po) != dnnl_success) {
        dnnl_primitive_attr_destroy(attr);
        return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    }
    bool ok =
        dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) == dnnl_success &&
        dnnl_primitive_attr_set_scales(attr, DNNL_ARG_SRC_0, 1, 0, &s0) == dnnl_success &&
        dnnl_primitive_attr_set_scales(attr, DNNL_ARG_SRC_1, 1, 0, &s1) == dnnl_success;
    if (qp->relu >= 0) {
        ok =
            ok &&
            dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_linear, 1.0f, c) == dnnl_success &&
            dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f) == dnnl_success &&
            (zy == 0 || dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_linear, 1.0f,
                                                     (float)zy) == dnnl_success);
    } else {
        ok = ok && dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_linear, 1.0f,
                                                c + (float)zy) == dnnl_success;
    }
    ok = ok && dnnl_primitive_attr_set_post_ops(attr, po) == dnnl_success;
    dnnl_post_ops_destroy(po);
    dnnl_binary_desc_t bd;
    dnnl_primitive_desc_t pd = NULL;
    /* The second operand takes the first's layout (one reorder if not). */
    md1 = md0;
    ok = ok && dnnl_binary_desc_init(&bd, dnnl_binary_add, &md0, &md1, &md0) == dnnl_success &&
         dnnl_primitive_desc_create(&pd, &bd, attr, p->ctx->engine, NULL) == dnnl_success;
    dnnl_primitive_attr_destroy(attr);
    if (!ok) return 0;
    const char *impl = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success && impl &&
        strncmp(impl, "ref", 3) == 0) {
        /* Element by element: the float path's reorders and binary are faster. */
        dnnl_primitive_desc_destroy(pd);
        return 0;
    }
    int src0 = plan_pv_as(p, a, &md0, eb), src1 = src0 < 0 ? src0 : plan_pv_as(p, b, &md1, eb);
    if (src0 < 0 || src1 < 0) {
        dnnl_primitive_desc_destroy(pd);
        return src0 < 0 ? src0 : src1;
    }
    eng_tensor out = *ta;
    out.data = NULL;
    int dst, rc;
    if ((rc = exec_dnnl_new_pv(p, &out, &md0, &dst)) < 0) {
        dnnl_primitive_desc_destroy(pd);
        return rouse_err_set(eb, rc, "out of memory");
    }
    exec_dnnl_arg args[3] = {
        {DNNL_ARG_SRC_0, src0, NULL}, {DNNL_ARG_SRC_1, src1, NULL}, {DNNL_ARG_DST, dst, NULL}};
    if ((rc = exec_dnnl_add_step(p, n, &n->attrs, pd, args, 3, dst, eb)) < 0) return rc;
    *dst_pv = dst;
    return 1;
}

/* u8 pooling with the input's scale and zero point kept: the average of
 * the u8 values, rounded, is Q(average of DQ(x)) when Q's parameters are
 * DQ's. */
static int build_pool(eng_plan *p, const exec_qpat *qp, int *dst_pv, rouse_errbuf *eb)
{
    const eng_graph *g = p->g;
    const eng_node *n = &g->nodes[qp->center], *d = &g->nodes[qp->dq[0]], *q = &g->nodes[qp->q];
    double sx, zx, sy, zy;
    if (!u8_params(g, d, &sx, &zx) || !u8_params(g, q, &sy, &zy)) return 0;
    if ((float)sx != (float)sy || zx != zy) return 0;
    int x = p->val_pv[d->in[0]];
    if (x < 0 || p->pvs[x].t.dtype != ENG_DT_UINT8 || !p->pvs[x].has_md) return 0;
    /* Shapes as the float node infers them. */
    eng_tensor tin = p->pvs[x].t, out[1];
    tin.dtype = ENG_DT_FLOAT;
    tin.data = NULL;
    const eng_tensor *in_p[1] = {&tin};
    eng_attrs resolved;
    rouse_errbuf scratch;
    memset(out, 0, sizeof(out));
    if (eng_infer_node(n, in_p, out, &resolved, &scratch) < 0) return 0;
    out[0].dtype = ENG_DT_UINT8;
    int in[1] = {x}, out_pv[1];
    int rc = exec_dnnl_build(p, n, &resolved, in, out, out_pv, eb);
    if (rc <= 0) return rc;
    *dst_pv = out_pv[0];
    return 1;
}

int exec_qfuse_build(eng_plan *p, const exec_qpat *qp, rouse_errbuf *eb)
{
    const eng_graph *g = p->g;
    const eng_node *n = &g->nodes[qp->center], *q = &g->nodes[qp->q];
    int dst = -1;
    int rc = n->op == ENG_OP_ADD ? build_add(p, qp, &dst, eb) : build_pool(p, qp, &dst, eb);
    if (rc <= 0) return rc;
    plan_bind_value(p, q->out[0], dst);
    /* The reads of the nodes this step replaced are planned. */
    for (int k = 0; k < n->n_in; k++)
        p->uses_left[n->in[k]]--;
    for (int j = 0; j < 2; j++) {
        int di = qp->dq[j];
        if (di < 0 || !p->skip[di]) continue;
        const eng_node *d = &g->nodes[di];
        /* Its input is read here; the node itself will never be built once
         * no reader of its output is left. */
        if (p->uses_left[d->out[0]] == 0 && p->val_pv[d->out[0]] < 0)
            for (int k = 0; k < d->n_in; k++)
                if (d->in[k] >= 0) p->uses_left[d->in[k]]--;
    }
    if (qp->relu >= 0) p->uses_left[g->nodes[qp->relu].in[0]]--;
    for (int k = 0; k < q->n_in; k++)
        if (q->in[k] >= 0) p->uses_left[q->in[k]]--;
    p->stats.n_qfused++;
    return 1;
}
