/*
 * QDQ models (QuantizeLinear / DequantizeLinear pairs around the products,
 * the format quantizers write) turned into int8 products at load; see
 * optimize_qdq.h.
 *
 *   Conv(DQ(xq), DQ(wq), [bias]) [-> Relu | Clip] -> Q   =>  QLinearConv
 *   MatMul(DQ(aq), DQ(bq))                         -> Q   =>  QLinearMatMul
 *   Gemm(DQ(xq), DQ(wq), [C])    [-> Relu | Clip] -> Q   =>  Reshape ->
 *                               QLinearConv (1x1) -> Reshape
 *
 * The rewritten node reads the quantized tensors directly and writes the Q
 * node's output, so consecutive layers pass int8 data without a float
 * round trip; the DequantizeLinear nodes stay for any other reader and
 * disappear otherwise (dead). Conditions: the weights and every scale and
 * zero point are constants; activation parameters per tensor; weight
 * parameters per tensor or along the output channel (axis 0 for Conv,
 * axis 1 for MatMul); the intermediate values have no other reader and are
 * not graph outputs. A bias (a DequantizeLinear of int32, or a float
 * constant) becomes int32 at scale x_scale * w_scale[oc]. An activation
 * between the product and Q is dropped only where the saturation of Q
 * already computes it (Relu with the zero point at the type's minimum;
 * Clip when Q(min) and Q(max) lie at or beyond the type's limits).
 *
 * A Gemm runs as the 1x1 convolution rouse's quantizer makes of one: its
 * input [M, K] viewed as [M, K, 1, 1], the weights as [N, K, 1, 1] (the
 * same bytes with transB, a transposed copy without), per-channel scales
 * along B's output axis (0 with transB, 1 without), alpha > 0 folded into
 * the weight scales, beta into the int32 bias, C of N values ([N] or
 * [1, N]) or one. A Gemm in QDQ form that does not fit (transA, alpha <= 0,
 * C varying along the rows, weight scales along K, a non-constant or
 * non-int8 B, no QuantizeLinear reading it alone) stays float with the
 * reason logged at info level.
 */
#include "engine/optimize_qdq.h"

#include "common/log.h"
#include "engine/op.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is_const(const eng_graph *g, int v)
{
    return v >= 0 && g->values[v].const_data;
}

static int64_t numel(const eng_graph *g, int v)
{
    const eng_value *c = &g->values[v];
    return c->rank < 0 ? -1 : eng_shape_numel(c->rank, c->shape);
}

/* Element k of a constant as a double (unaligned data allowed). */
static double cval(const eng_graph *g, int v, int64_t k)
{
    const eng_value *c = &g->values[v];
    const char *d = c->const_data;
    switch (c->dtype) {
    case ENG_DT_FLOAT: {
        float f;
        memcpy(&f, d + k * 4, 4);
        return f;
    }
    case ENG_DT_INT8:
        return (int8_t)d[k];
    case ENG_DT_UINT8:
        return (uint8_t)d[k];
    case ENG_DT_INT32: {
        int32_t i;
        memcpy(&i, d + k * 4, 4);
        return i;
    }
    default:
        return NAN;
    }
}

static eng_node *producer_of(eng_graph *g, int v)
{
    if (v < 0 || g->values[v].producer < 0) return NULL;
    eng_node *n = &g->nodes[g->values[v].producer];
    return n->dead ? NULL : n;
}

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

static int in_at(const eng_node *n, int k)
{
    return k < n->n_in ? n->in[k] : -1;
}

static bool is_q8(int dt)
{
    return dt == ENG_DT_INT8 || dt == ENG_DT_UINT8;
}

/* --- load-time checks of every Q / DQ node with constant parameters ------------------ */

static int qfail(const eng_node *n, rouse_errbuf *eb, const char *fmt, double a, double b)
{
    char msg[200];
    snprintf(msg, sizeof(msg), fmt, a, b);
    return rouse_err_set(eb, ROUSE_EFORMAT, "node '%s' (%s): %s", n->name, eng_op_name(n->op), msg);
}

/* Scales finite and > 0; an int32 DequantizeLinear's zero point 0; per-axis
 * parameters as long as the axis of a constant input (or of a known static
 * shape). */
static int check_qnode(const eng_graph *g, const eng_node *n, rouse_errbuf *eb)
{
    int s = in_at(n, 1), z = in_at(n, 2), x = in_at(n, 0);
    if (s >= 0 && is_const(g, s) && g->values[s].dtype == ENG_DT_FLOAT) {
        int64_t c = numel(g, s);
        for (int64_t i = 0; i < c; i++) {
            double v = cval(g, s, i);
            if (!(v > 0) || !isfinite(v))
                return qfail(n, eb, "scale %g (element %.0f) must be positive and finite", v,
                             (double)i);
        }
        if (c > 1 && x >= 0 && g->values[x].rank > 0) {
            int64_t ax = n->attrs.quant.q.axis;
            int r = g->values[x].rank;
            if (ax < 0) ax += r;
            int64_t len = ax >= 0 && ax < r ? g->values[x].shape[ax] : -1;
            if (len > 0 && len != c)
                return rouse_err_set(eb, ROUSE_EMISMATCH,
                                     "node '%s' (%s): input '%s' must hold 1 value or %lld (one "
                                     "per element of the axis), has %lld",
                                     n->name, eng_op_name(n->op),
                                     eng_op_desc_get(n->op)->in_names[1], (long long)len,
                                     (long long)c);
        }
        if (z >= 0 && is_const(g, z) && numel(g, z) != c)
            return qfail(n, eb, "has %.0f scales and %.0f zero points", (double)c,
                         (double)numel(g, z));
    }
    /* A zero point out of the input's range comes with a type other than
     * the input's (ONNX wants the same): said at load where the input's
     * type is known (a constant or a graph input). */
    if (n->op == ENG_OP_DEQUANTIZE_LINEAR && x >= 0 && z >= 0 && is_const(g, z) &&
        (is_const(g, x) || g->values[x].is_input) && g->values[x].dtype &&
        g->values[z].dtype != g->values[x].dtype) {
        int64_t c = numel(g, z);
        double lo = g->values[x].dtype == ENG_DT_UINT8  ? 0
                    : g->values[x].dtype == ENG_DT_INT8 ? -128
                                                        : -2147483648.0;
        double hi = g->values[x].dtype == ENG_DT_UINT8  ? 255
                    : g->values[x].dtype == ENG_DT_INT8 ? 127
                                                        : 2147483647.0;
        const eng_op_desc *d = eng_op_desc_get(n->op);
        const char *zt = eng_dtype_name(g->values[z].dtype),
                   *xt = eng_dtype_name(g->values[x].dtype);
        for (int64_t i = 0; i < c; i++) {
            double v = cval(g, z, i);
            if (v < lo || v > hi)
                return rouse_err_set(eb, ROUSE_EMISMATCH,
                                     "node '%s' (%s): zero point %g (element %lld) is out of the "
                                     "range of %s '%s' (input '%s' is %s, input '%s' is %s)",
                                     n->name, eng_op_name(n->op), v, (long long)i, xt,
                                     g->values[x].name, d->in_names[2], zt, d->in_names[0], xt);
        }
        return rouse_err_set(eb, ROUSE_EMISMATCH,
                             "node '%s' (%s): input '%s' is %s, input '%s' is %s ('%s'; ONNX wants "
                             "the same type)",
                             n->name, eng_op_name(n->op), d->in_names[2], zt, d->in_names[0], xt,
                             g->values[x].name);
    }
    if (n->op == ENG_OP_DEQUANTIZE_LINEAR && x >= 0 && g->values[x].dtype == ENG_DT_INT32 &&
        z >= 0 && is_const(g, z)) {
        int64_t c = numel(g, z);
        for (int64_t i = 0; i < c; i++)
            if (cval(g, z, i) != 0)
                return qfail(n, eb, "an int32 input needs zero point 0, got %g (element %.0f)",
                             cval(g, z, i), (double)i);
    }
    return 0;
}

/* --- fusion ---------------------------------------------------------------------------- */

/* A DequantizeLinear producing v with a per-tensor constant scale and
 * constant zero point (or none) of an 8-bit input: the node, else NULL. */
static eng_node *dq_act(eng_graph *g, int v)
{
    eng_node *d = producer_of(g, v);
    if (!d || d->op != ENG_OP_DEQUANTIZE_LINEAR || d->n_post) return NULL;
    int x = in_at(d, 0), s = in_at(d, 1), z = in_at(d, 2);
    /* A node output's type is known only when a session prepares; the zero
     * point has the input's type. */
    if (x < 0 || z < 0 || !is_const(g, s) || numel(g, s) != 1) return NULL;
    if (!is_const(g, z) || numel(g, z) != 1 || !is_q8(g->values[z].dtype)) return NULL;
    return d;
}

/* A DequantizeLinear of constant s8 weights of rank `rank` (or at least 3
 * when rank is 0), per tensor or along `axis`. */
static eng_node *dq_weights(eng_graph *g, int v, int axis, int rank)
{
    eng_node *d = producer_of(g, v);
    if (!d || d->op != ENG_OP_DEQUANTIZE_LINEAR || d->n_post) return NULL;
    int x = in_at(d, 0), s = in_at(d, 1), z = in_at(d, 2);
    if (!is_const(g, x) || g->values[x].dtype != ENG_DT_INT8 || !is_const(g, s)) return NULL;
    int r = g->values[x].rank;
    if (rank ? r != rank : r < 3) return NULL;
    if (z >= 0 && !is_const(g, z)) return NULL;
    int64_t c = numel(g, s);
    if (c != 1) {
        int64_t ax = d->attrs.quant.q.axis;
        if (ax < 0) ax += r;
        if (ax != axis || c != g->values[x].shape[axis]) return NULL;
    }
    return d;
}

/* A QuantizeLinear reading v (its only reader), per tensor, constant
 * parameters, 8-bit output. */
static eng_node *q_after(eng_graph *g, int v)
{
    eng_node *q = sole_reader(g, v);
    if (!q || q->op != ENG_OP_QUANTIZE_LINEAR || q->n_post || q->in[0] != v) return NULL;
    int s = in_at(q, 1), z = in_at(q, 2);
    if (!is_const(g, s) || numel(g, s) != 1) return NULL;
    if (z >= 0 && (!is_const(g, z) || numel(g, z) != 1)) return NULL;
    if (q->out[0] < 0) return NULL;
    return q;
}

/* Whether quantizing with q saturates at least as far as act clamps: the
 * activation can go. */
static bool absorbed(const eng_graph *g, const eng_node *act, const eng_node *q)
{
    int z = in_at(q, 2);
    int dt = z >= 0 ? g->values[z].dtype : ENG_DT_UINT8;
    double zp = z >= 0 ? cval(g, z, 0) : 0, s = cval(g, q->in[1], 0);
    double qmin = dt == ENG_DT_UINT8 ? 0 : -128, qmax = dt == ENG_DT_UINT8 ? 255 : 127;
    double lo, hi;
    if (act->op == ENG_OP_RELU) {
        lo = 0;
        hi = INFINITY;
    } else if (act->op == ENG_OP_CLIP) {
        if (act->opset < 11) {
            lo = act->attrs.clip.has_min ? act->attrs.clip.min : -INFINITY;
            hi = act->attrs.clip.has_max ? act->attrs.clip.max : INFINITY;
        } else {
            int a = in_at(act, 1), b = in_at(act, 2);
            if ((a >= 0 && (!is_const(g, a) || numel(g, a) != 1)) ||
                (b >= 0 && (!is_const(g, b) || numel(g, b) != 1)))
                return false;
            lo = a >= 0 ? cval(g, a, 0) : -INFINITY;
            hi = b >= 0 ? cval(g, b, 0) : INFINITY;
        }
    } else {
        return false;
    }
    return nearbyint(lo / s) + zp <= qmin && (isinf(hi) || nearbyint(hi / s) + zp >= qmax);
}

/* A new constant value in the graph's arena. */
static int new_const(eng_graph *g, const char *base, int dtype, int rank, const int64_t *shape,
                     size_t bytes, void **data, int *id, rouse_errbuf *eb)
{
    char name[256];
    snprintf(name, sizeof(name), "%s/int32", base);
    const char *nm = rouse_arena_strdup(&g->arena, name);
    void *d = rouse_arena_alloc(&g->arena, bytes ? bytes : 1, 64);
    if (!nm || !d || eng_graph_add_value(g, nm, dtype, id) < 0)
        return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory fusing a quantized node");
    eng_value *v = &g->values[*id];
    v->rank = rank;
    memcpy(v->shape, shape, sizeof(int64_t) * (size_t)rank);
    v->const_data = d;
    v->producer = -1;
    *data = d;
    return 0;
}

/* The bias of the fused conv as int32 at scale sx * sw[oc], times beta:
 * from a DequantizeLinear of int32 (exact when its scale is that product,
 * as quantizers write it) or from float constants. A Gemm's C (`gemm`) may
 * also be [1, m] or one value for every column. -1 in *out when absent;
 * false when it cannot be made. */
static int fused_bias_gemm(eng_graph *g, const eng_node *conv, double sx, int sw, int64_t m,
                           double beta, bool gemm, int *out, bool *ok, rouse_errbuf *eb)
{
    *out = -1;
    *ok = true;
    int b = in_at(conv, 2);
    if (b < 0 || beta == 0) return 0;
    int bq = -1, bs = -1;
    eng_node *d = producer_of(g, b);
    if (d && d->op == ENG_OP_DEQUANTIZE_LINEAR && is_const(g, in_at(d, 0)) &&
        g->values[in_at(d, 0)].dtype == ENG_DT_INT32 && is_const(g, in_at(d, 1)) &&
        (numel(g, in_at(d, 1)) == 1 || numel(g, in_at(d, 1)) == m)) {
        bq = in_at(d, 0);
        bs = in_at(d, 1);
    } else if (!is_const(g, b) || g->values[b].dtype != ENG_DT_FLOAT) {
        *ok = false;
        return 0;
    }
    int src = bq >= 0 ? bq : b;
    const eng_value *sv = &g->values[src];
    int64_t nb = numel(g, src);
    bool fits =
        nb == m && (!gemm || (sv->rank >= 1 && sv->rank <= 2 && sv->shape[sv->rank - 1] == m));
    if (!fits && !(gemm && nb == 1 && sv->rank <= 2)) {
        *ok = false;
        return 0;
    }
    int32_t *data = NULL;
    int64_t shape[1] = {m};
    int rc = new_const(g, g->values[src].name, ENG_DT_INT32, 1, shape, sizeof(int32_t) * (size_t)m,
                       (void **)&data, out, eb);
    if (rc < 0) return rc;
    int64_t nsw = numel(g, sw);
    for (int64_t i = 0; i < m; i++) {
        int64_t k = nb == 1 ? 0 : i;
        double f = beta * (bq >= 0 ? cval(g, bq, k) * cval(g, bs, numel(g, bs) == 1 ? 0 : k)
                                   : cval(g, b, k));
        double scale = sx * (double)(float)cval(g, sw, nsw == 1 ? 0 : i);
        double q = nearbyint(f / scale);
        if (!(fabs(q) < 2147483647.0)) {
            *ok = false;
            return 0;
        }
        data[i] = (int32_t)q;
    }
    return 0;
}

static int fused_bias(eng_graph *g, const eng_node *conv, double sx, int sw, int64_t m, int *out,
                      bool *ok, rouse_errbuf *eb)
{
    return fused_bias_gemm(g, conv, sx, sw, m, 1.0, false, out, ok, eb);
}

static int set_inputs(eng_graph *g, eng_node *n, int n_in, const int *in, rouse_errbuf *eb)
{
    int *ins = rouse_arena_alloc(&g->arena, sizeof(int) * (size_t)n_in, 8);
    if (!ins) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory fusing a quantized node");
    memcpy(ins, in, sizeof(int) * (size_t)n_in);
    n->in = ins;
    n->n_in = n_in;
    return 0;
}

/* Makes `prod` (Conv or MatMul) write q's output and the nodes between
 * disappear. */
static void take_output(eng_graph *g, eng_node *prod, eng_node *act, eng_node *q)
{
    int pid = (int)(prod - g->nodes);
    g->values[prod->out[0]].producer = -1;
    if (act) {
        g->values[act->out[0]].producer = -1;
        act->dead = true;
    }
    prod->out[0] = q->out[0];
    g->values[q->out[0]].producer = pid;
    q->dead = true;
}

/* The nodes after a product: an optional absorbed activation, then Q. */
static eng_node *tail_q(eng_graph *g, eng_node *prod, eng_node **act)
{
    *act = NULL;
    int y = prod->out[0];
    if (prod->n_out != 1 || y < 0 || prod->n_post) return NULL;
    eng_node *r = sole_reader(g, y);
    if (!r) return NULL;
    if (r->op == ENG_OP_QUANTIZE_LINEAR) return q_after(g, y);
    if ((r->op != ENG_OP_RELU && r->op != ENG_OP_CLIP) || r->n_post || r->in[0] != y) return NULL;
    eng_node *q = q_after(g, r->out[0]);
    if (!q || !absorbed(g, r, q)) return NULL;
    *act = r;
    return q;
}

static int fuse_conv(eng_graph *g, eng_node *c, eng_opt_stats *st, rouse_errbuf *eb)
{
    if (c->n_in < 2) return 0;
    eng_node *dx = dq_act(g, c->in[0]), *dw = dq_weights(g, c->in[1], 0, 0), *act;
    if (!dx || !dw) return 0;
    int64_t m = g->values[dw->in[0]].shape[0];
    eng_node *q = tail_q(g, c, &act);
    if (!q) return 0;
    /* Omitted zero points are 0 of the input's type: QLinearConv needs them. */
    if (in_at(dx, 2) < 0 || in_at(dw, 2) < 0 || in_at(q, 2) < 0) return 0;
    double sx = (float)cval(g, dx->in[1], 0);
    int bias;
    bool ok;
    int rc = fused_bias(g, c, sx, dw->in[1], m, &bias, &ok, eb);
    if (rc < 0 || !ok) return rc;
    int in[9] = {dx->in[0],    dx->in[1], in_at(dx, 2), dw->in[0], dw->in[1],
                 in_at(dw, 2), q->in[1],  in_at(q, 2),  bias};
    eng_conv_attrs ca = c->attrs.conv;
    if ((rc = set_inputs(g, c, bias >= 0 ? 9 : 8, in, eb)) < 0) return rc;
    c->op = ENG_OP_QLINEAR_CONV;
    memset(&c->attrs, 0, sizeof(c->attrs));
    c->attrs.quant.conv = ca;
    take_output(g, c, act, q);
    st->fused_qdq++;
    return 0;
}

static int fuse_matmul(eng_graph *g, eng_node *mm, eng_opt_stats *st, rouse_errbuf *eb)
{
    if (mm->n_in != 2) return 0;
    eng_node *da = dq_act(g, mm->in[0]), *db = dq_weights(g, mm->in[1], 1, 2), *act;
    if (!da || !db) return 0;
    eng_node *q = tail_q(g, mm, &act);
    if (!q || act) return 0;
    int in[8] = {da->in[0], da->in[1],    in_at(da, 2), db->in[0],
                 db->in[1], in_at(db, 2), q->in[1],     in_at(q, 2)};
    if (in[2] < 0 || in[5] < 0 || in[7] < 0) return 0;
    int rc = set_inputs(g, mm, 8, in, eb);
    if (rc < 0) return rc;
    mm->op = ENG_OP_QLINEAR_MATMUL;
    memset(&mm->attrs, 0, sizeof(mm->attrs));
    take_output(g, mm, NULL, q);
    st->fused_qdq++;
    return 0;
}

/* --- Gemm as a 1x1 int8 convolution ------------------------------------------------------ */

/* base + suffix, unique among the graph's values and nodes (the QDQ file
 * written from the graph needs distinct names); NULL when out of memory. */
static const char *uniq_name(eng_graph *g, const char *base, const char *suffix)
{
    return eng_graph_unique_name(g, base, "gemm", suffix);
}

/* A new value: a constant when data is given (copied unless `share`), else a
 * node output of type dtype. */
static int add_value(eng_graph *g, const char *base, const char *suffix, int dtype, int rank,
                     const int64_t *shape, const void *data, size_t bytes, bool share, int *id,
                     rouse_errbuf *eb)
{
    const char *nm = uniq_name(g, base, suffix);
    void *d = NULL;
    if (data && !share && !(d = rouse_arena_alloc(&g->arena, bytes ? bytes : 1, 64))) nm = NULL;
    if (!nm || eng_graph_add_value(g, nm, dtype, id) < 0)
        return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory fusing a quantized Gemm");
    eng_value *v = &g->values[*id];
    if (data) {
        if (d) memcpy(d, data, bytes);
        v->const_data = share ? data : d;
        v->rank = rank;
        memcpy(v->shape, shape, sizeof(int64_t) * (size_t)rank);
    }
    return 0;
}

/* Inserts n before node `at`; the nodes from `at` on move up by one. */
static int insert_node(eng_graph *g, int at, const eng_node *n, rouse_errbuf *eb)
{
    if (g->n_nodes == g->cap_nodes) {
        int cap = g->cap_nodes ? g->cap_nodes * 2 : 16;
        eng_node *a = realloc(g->nodes, sizeof(*a) * (size_t)cap);
        if (!a) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory fusing a quantized Gemm");
        g->nodes = a;
        g->cap_nodes = cap;
    }
    memmove(&g->nodes[at + 1], &g->nodes[at], sizeof(eng_node) * (size_t)(g->n_nodes - at));
    g->nodes[at] = *n;
    g->n_nodes++;
    for (int v = 0; v < g->n_values; v++)
        if (g->values[v].producer >= at) g->values[v].producer++;
    for (int k = 0; k < n->n_out; k++)
        if (n->out[k] >= 0) g->values[n->out[k]].producer = at;
    return 0;
}

/* Why a Gemm in QDQ form stays float (it still runs, as DequantizeLinear,
 * float Gemm and QuantizeLinear). */
static int gemm_stays_float(const eng_node *n, const char *why)
{
    LOG_INFO("engine", "Gemm '%s' in QDQ form runs in float: %s", n->name, why);
    return 0;
}

/*   Gemm(DQ(xq), DQ(wq), [C]) [-> Relu | Clip] -> Q   =>
 *   Reshape(xq, [0, K, 1, 1]) -> QLinearConv 1x1 -> Reshape([0, N])
 * as rouse's quantizer writes a Gemm. The weights become [N, K, 1, 1]
 * (transB: the same bytes; else a transposed copy), alpha > 0 joins the
 * weight scales, beta the bias. The Gemm at node `at` moves to at + 1. */
static int fuse_gemm(eng_graph *g, int at, bool *fused, eng_opt_stats *st, rouse_errbuf *eb)
{
    *fused = false;
    eng_node *gm = &g->nodes[at];
    if (gm->n_in < 2 || gm->n_out != 1 || gm->out[0] < 0) return 0;
    const eng_node *pa = producer_of(g, gm->in[0]), *pb = producer_of(g, gm->in[1]);
    if (!(pa && pa->op == ENG_OP_DEQUANTIZE_LINEAR) && !(pb && pb->op == ENG_OP_DEQUANTIZE_LINEAR))
        return 0; /* a float Gemm */
    const eng_gemm_attrs ga = gm->attrs.gemm;
    char why[200];
    if (ga.trans_a) return gemm_stays_float(gm, "transA = 1 (A would need a transpose)");
    if (!(ga.alpha > 0) || !isfinite(ga.alpha)) {
        snprintf(why, sizeof(why), "alpha %g (an int8 product scales by a positive alpha only)",
                 (double)ga.alpha);
        return gemm_stays_float(gm, why);
    }
    eng_node *dx = dq_act(g, gm->in[0]);
    if (!dx)
        return gemm_stays_float(gm, "A is not a DequantizeLinear of 8-bit data with a constant "
                                    "per-tensor scale and zero point");
    int xr = g->values[dx->in[0]].rank;
    if (xr >= 0 && xr != 2) return gemm_stays_float(gm, "A is not a matrix");
    int wax = ga.trans_b ? 0 : 1;
    eng_node *dw = dq_weights(g, gm->in[1], wax, 2);
    if (!dw || in_at(dw, 2) < 0) {
        snprintf(why, sizeof(why),
                 "B is not a DequantizeLinear of a constant int8 matrix with a zero point and "
                 "scales per tensor or along its axis %d (the output columns)",
                 wax);
        return gemm_stays_float(gm, why);
    }
    eng_node *act, *q = tail_q(g, gm, &act);
    if (!q || in_at(q, 2) < 0)
        return gemm_stays_float(gm, "its output is not read by one per-tensor QuantizeLinear "
                                    "with a constant scale and zero point alone (after at most a "
                                    "Relu or Clip that the quantization's saturation computes)");
    const eng_value *w = &g->values[dw->in[0]];
    int64_t nn = ga.trans_b ? w->shape[0] : w->shape[1],
            kk = ga.trans_b ? w->shape[1] : w->shape[0];
    if (nn <= 0 || kk <= 0) return gemm_stays_float(gm, "B is empty");
    double sx = (float)cval(g, dx->in[1], 0);

    /* The weight scales times alpha. */
    int sw = dw->in[1], rc;
    if (ga.alpha != 1.0f) {
        int64_t c = numel(g, sw);
        if (c < 1) return gemm_stays_float(gm, "B's scale holds no value");
        float *f = malloc(sizeof(float) * (size_t)c);
        if (!f) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory fusing a quantized Gemm");
        for (int64_t i = 0; i < c; i++)
            f[i] = (float)(cval(g, sw, i) * (double)ga.alpha);
        int64_t d1[1] = {c};
        rc = add_value(g, g->values[sw].name, "/alpha", ENG_DT_FLOAT, 1, d1, f,
                       sizeof(float) * (size_t)c, false, &sw, eb);
        free(f);
        if (rc < 0) return rc;
    }
    int bias;
    bool ok;
    if ((rc = fused_bias_gemm(g, gm, sx, sw, nn, ga.beta, true, &bias, &ok, eb)) < 0) return rc;
    if (!ok)
        return gemm_stays_float(gm, "C is not a constant (or a DequantizeLinear of a constant "
                                    "int32) of one value per column or one in all, or does not "
                                    "fit int32 at the scale of the product");

    /* Weights [N, K, 1, 1]. */
    int w4;
    int64_t s4w[4] = {nn, kk, 1, 1};
    const char *wname = g->values[dw->in[0]].name;
    if (ga.trans_b) {
        rc = add_value(g, wname, "/conv", ENG_DT_INT8, 4, s4w, g->values[dw->in[0]].const_data,
                       (size_t)(nn * kk), true, &w4, eb);
    } else {
        int8_t *t = malloc((size_t)(nn * kk));
        if (!t) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory fusing a quantized Gemm");
        const int8_t *src = g->values[dw->in[0]].const_data;
        for (int64_t i = 0; i < kk; i++)
            for (int64_t j = 0; j < nn; j++)
                t[j * kk + i] = src[i * nn + j];
        rc =
            add_value(g, wname, "/conv", ENG_DT_INT8, 4, s4w, t, (size_t)(nn * kk), false, &w4, eb);
        free(t);
    }
    if (rc < 0) return rc;

    /* The reshapes' shapes and the 4-D views of the input and output. */
    const char *base = *gm->name ? gm->name : g->values[gm->out[0]].name;
    int64_t shp_in[4] = {0, kk, 1, 1}, shp_out[2] = {0, nn}, d4[1] = {4}, d2[1] = {2};
    int s_in, s_out, x4, y4;
    int xdt = g->values[dx->in[0]].dtype, ydt = g->values[in_at(q, 2)].dtype;
    if ((rc = add_value(g, base, "/shape_in", ENG_DT_INT64, 1, d4, shp_in, sizeof(shp_in), false,
                        &s_in, eb)) < 0 ||
        (rc = add_value(g, base, "/shape_out", ENG_DT_INT64, 1, d2, shp_out, sizeof(shp_out), false,
                        &s_out, eb)) < 0 ||
        (rc = add_value(g, base, "/input_4d", is_q8(xdt) ? xdt : ENG_DT_UNDEFINED, 0, NULL, NULL, 0,
                        false, &x4, eb)) < 0 ||
        (rc = add_value(g, base, "/output_4d", ydt, 0, NULL, NULL, 0, false, &y4, eb)) < 0)
        return rc;

    /* Gemm -> QLinearConv writing y4. */
    int in[9] = {x4, dx->in[1], in_at(dx, 2), w4, sw, in_at(dw, 2), q->in[1], in_at(q, 2), bias};
    if ((rc = set_inputs(g, gm, bias >= 0 ? 9 : 8, in, eb)) < 0) return rc;
    g->values[gm->out[0]].producer = -1;
    gm->out[0] = y4;
    g->values[y4].producer = at;
    gm->op = ENG_OP_QLINEAR_CONV;
    memset(&gm->attrs, 0, sizeof(gm->attrs));
    eng_conv_attrs *ca = &gm->attrs.quant.conv;
    ca->n_spatial = 2;
    for (int i = 0; i < ENG_MAX_SPATIAL; i++) /* unused slots as the parser leaves them */
        ca->kernel[i] = ca->stride[i] = ca->dilation[i] = 1;
    ca->group = 1;

    /* The activation goes; Q -> Reshape(y4) writing Q's output. */
    if (act) {
        g->values[act->out[0]].producer = -1;
        act->dead = true;
    }
    int rin[2] = {y4, s_out};
    if ((rc = set_inputs(g, q, 2, rin, eb)) < 0) return rc;
    q->op = ENG_OP_RESHAPE;
    memset(&q->attrs, 0, sizeof(q->attrs)); /* allowzero 0 */
    const char *qname = uniq_name(g, base, "/reshape_out");
    if (!qname) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory fusing a quantized Gemm");
    q->name = qname;

    /* Reshape(xq) -> x4, before the product. */
    eng_node r;
    memset(&r, 0, sizeof(r));
    r.name = uniq_name(g, base, "/reshape_in");
    r.op = ENG_OP_RESHAPE;
    r.opset = gm->opset;
    r.n_in = 2;
    r.in = rouse_arena_alloc(&g->arena, sizeof(int) * 2, 8);
    r.n_out = 1;
    r.out = rouse_arena_alloc(&g->arena, sizeof(int), 8);
    if (!r.name || !r.in || !r.out)
        return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory fusing a quantized Gemm");
    r.in[0] = dx->in[0];
    r.in[1] = s_in;
    r.out[0] = x4;
    if ((rc = insert_node(g, at, &r, eb)) < 0) return rc;
    st->fused_qdq++;
    *fused = true;
    return 0;
}

int eng_graph_fuse_qdq(eng_graph *g, eng_opt_stats *st, rouse_errbuf *eb)
{
    int rc;
    for (int i = 0; i < g->n_nodes; i++) {
        const eng_node *n = &g->nodes[i];
        if (n->dead) continue;
        if ((n->op == ENG_OP_QUANTIZE_LINEAR || n->op == ENG_OP_DEQUANTIZE_LINEAR) &&
            (rc = check_qnode(g, n, eb)) < 0)
            return rc;
    }
    for (int i = 0; i < g->n_nodes; i++) {
        eng_node *n = &g->nodes[i];
        if (n->dead) continue;
        if (n->op == ENG_OP_CONV) {
            rc = fuse_conv(g, n, st, eb);
        } else if (n->op == ENG_OP_MATMUL) {
            rc = fuse_matmul(g, n, st, eb);
        } else if (n->op == ENG_OP_GEMM) {
            bool moved;
            rc = fuse_gemm(g, i, &moved, st, eb);
            i += moved; /* past the inserted Reshape */
        } else {
            continue;
        }
        if (rc < 0) return rc;
    }
    return 0;
}
