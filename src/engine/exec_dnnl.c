/*
 * oneDNN kernel builders for execution plans.
 *
 * Each builder decides whether its node fits a oneDNN primitive (float
 * data, constant weights, shapes the primitive supports) and otherwise
 * returns 0 so that the node runs on the reference kernels. Activation
 * layouts are left to oneDNN (format_tag_any) and flow from producer to
 * consumer; weights are reordered once, here, into the layout the chosen
 * implementation wants. A Conv whose only reader is an Add of a same-shape
 * value absorbs it as a sum post-op (and the activation after it), writing
 * in place over the addend when that value has no other reader.
 */
#include "engine/exec_int.h"

#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef exec_dnnl_arg argspec;

static int dnnl_fail(rouse_errbuf *eb, const eng_node *n, const char *what, dnnl_status_t st)
{
    return rouse_err_set(eb, ROUSE_EINTERNAL, "node '%s' (%s): oneDNN %s failed (status %d)",
                         n ? n->name : "", n ? eng_op_name(n->op) : "reorder", what, (int)st);
}

static bool is_const_value(const eng_plan *p, int v)
{
    return v >= 0 && p->g->values[v].const_data != NULL;
}

static float finite_or(float x, float big)
{
    return isinf(x) ? big : x;
}

static int eltwise_alg(eng_op op, float *alpha, float *beta, dnnl_alg_kind_t *alg)
{
    switch (op) {
    case ENG_OP_RELU:
        *alg = dnnl_eltwise_relu;
        *alpha = 0;
        *beta = 0;
        return 0;
    case ENG_OP_LEAKY_RELU:
        *alg = dnnl_eltwise_relu;
        *beta = 0;
        return 0;
    case ENG_OP_SIGMOID:
        *alg = dnnl_eltwise_logistic;
        *alpha = *beta = 0;
        return 0;
    case ENG_OP_TANH:
        *alg = dnnl_eltwise_tanh;
        *alpha = *beta = 0;
        return 0;
    case ENG_OP_SQRT:
        *alg = dnnl_eltwise_sqrt;
        *alpha = *beta = 0;
        return 0;
    case ENG_OP_GELU:
        *alg = dnnl_eltwise_gelu_erf;
        *alpha = *beta = 0;
        return 0;
    case ENG_OP_CLIP:
        *alg = dnnl_eltwise_clip;
        *alpha = finite_or(*alpha, -FLT_MAX);
        *beta = finite_or(*beta, FLT_MAX);
        return 0;
    case ENG_OP_ELU:
        *alg = dnnl_eltwise_elu;
        *beta = 0;
        return 0;
    case ENG_OP_HARD_SWISH: /* x * relu6(x + 3) / 6, ONNX's definition */
        *alg = dnnl_eltwise_hardswish;
        *alpha = *beta = 0;
        return 0;
    case ENG_OP_SOFTPLUS: /* log(1 + exp(x)) */
        *alg = dnnl_eltwise_soft_relu;
        *alpha = *beta = 0;
        return 0;
    case ENG_OP_ABS:
        *alg = dnnl_eltwise_abs;
        *alpha = *beta = 0;
        return 0;
    default:
        return ROUSE_EUNSUPPORTED;
    }
}

/* Appends activation `op` to po: one oneDNN eltwise, or for HardSigmoid
 * (no single oneDNN algorithm) linear(alpha, beta) then clip(0, 1). */
static int append_eltwise(dnnl_post_ops_t po, eng_op op, float alpha, float beta)
{
    dnnl_alg_kind_t alg;
    if (op == ENG_OP_HARD_SIGMOID) {
        if (dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_linear, alpha, beta) !=
                dnnl_success ||
            dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_clip, 0.0f, 1.0f) != dnnl_success)
            return ROUSE_EUNSUPPORTED;
        return 0;
    }
    if (eltwise_alg(op, &alpha, &beta, &alg) < 0 ||
        dnnl_post_ops_append_eltwise(po, 1.0f, alg, alpha, beta) != dnnl_success)
        return ROUSE_EUNSUPPORTED;
    return 0;
}

/* Attributes: user scratchpad (no allocation while running) and post-ops. */
static int make_attr(int n_post, const eng_postop *post, dnnl_primitive_attr_t *out)
{
    dnnl_primitive_attr_t attr;
    if (dnnl_primitive_attr_create(&attr) != dnnl_success) return ROUSE_ENOMEM;
    dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    if (n_post) {
        dnnl_post_ops_t po;
        if (dnnl_post_ops_create(&po) != dnnl_success) {
            dnnl_primitive_attr_destroy(attr);
            return ROUSE_ENOMEM;
        }
        for (int i = 0; i < n_post; i++) {
            if (post[i].kind == ENG_POST_SUM) {
                dnnl_post_ops_append_sum(po, 1.0f);
                continue;
            }
            if (append_eltwise(po, post[i].eltwise, post[i].alpha, post[i].beta) < 0) {
                dnnl_post_ops_destroy(po);
                dnnl_primitive_attr_destroy(attr);
                return ROUSE_EUNSUPPORTED;
            }
        }
        dnnl_primitive_attr_set_post_ops(attr, po);
        dnnl_post_ops_destroy(po);
    }
    *out = attr;
    return 0;
}

/* New prepared value with layout md. */
static int new_pv_md(eng_plan *p, const eng_tensor *shape, const dnnl_memory_desc_t *md, int *out)
{
    int rc = plan_new_pv(p, shape, out);
    if (rc < 0) return rc;
    exec_pv *v = &p->pvs[*out];
    dnnl_memory_desc_t plain;
    v->plain = plan_md_plain(shape->dtype, shape->rank, shape->shape, &plain) == 0 &&
               dnnl_memory_desc_equal(&plain, md);
    v->md = *md;
    v->has_md = true;
    return 0;
}

/* Creates the primitive and appends its step. Takes ownership of pd. */
static int add_prim_step(eng_plan *p, const eng_node *n, const eng_attrs *resolved,
                         dnnl_primitive_desc_t pd, const argspec *a, int n_a, int write_pv,
                         rouse_errbuf *eb)
{
    dnnl_primitive_t prim;
    dnnl_status_t st = dnnl_primitive_create(&prim, pd);
    if (st != dnnl_success) {
        dnnl_primitive_desc_destroy(pd);
        return dnnl_fail(eb, n, "primitive creation", st);
    }
    /* The kernel's scratchpad: bytes of the arena that live at this step
     * only, placed by the memory planner among the activations (oneDNN's
     * user scratchpad mode; none passed when the kernel needs none). */
    int scratch_pv = -1;
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t scratch = smd ? dnnl_memory_desc_get_size(smd) : 0;
    dnnl_primitive_desc_destroy(pd);
    int rc = scratch ? plan_scratch_pv(p, scratch, &scratch_pv) : 0;
    exec_step *s = NULL;
    if (rc == 0) rc = plan_add_step(p, &s);
    if (rc < 0) {
        dnnl_primitive_destroy(prim);
        return rouse_err_set(eb, rc, "out of memory");
    }
    s->kind = STEP_DNNL;
    s->node = n;
    if (resolved) s->resolved = *resolved;
    s->prim = prim;
    s->args = rouse_arena_alloc(&p->mem, sizeof(*s->args) * (size_t)(n_a + 1), 8);
    s->arg_pv = rouse_arena_alloc(&p->mem, sizeof(int) * (size_t)(n_a + 1), 8);
    s->reads = rouse_arena_alloc(&p->mem, sizeof(int) * (size_t)(n_a + 2), 8);
    if (!s->args || !s->arg_pv || !s->reads) return rouse_err_set(eb, ROUSE_ENOMEM, "oom");
    int nr = 0;
    for (int i = 0; i < n_a; i++) {
        s->args[i].arg = a[i].arg;
        s->arg_pv[i] = a[i].pv;
        if (a[i].pv == ARG_FIXED)
            s->args[i].memory = a[i].fixed;
        else
            s->reads[nr++] = a[i].pv;
    }
    s->n_args = n_a;
    if (scratch_pv >= 0) {
        s->args[n_a].arg = DNNL_ARG_SCRATCHPAD;
        s->arg_pv[n_a] = scratch_pv;
        s->n_args = n_a + 1;
        s->reads[nr++] = scratch_pv; /* alive at this step alone */
    }
    s->reads[nr] = -1;
    s->write = write_pv;
    p->stats.n_dnnl++;
    return 0;
}

/* Reorders data (layout `from`) into dst_mem now. */
static dnnl_status_t reorder_now(eng_plan *p, const eng_node *n, const dnnl_memory_desc_t *from,
                                 const void *data, const dnnl_memory_desc_t *to,
                                 dnnl_memory_t dst_mem, rouse_errbuf *eb)
{
    dnnl_memory_t src_mem;
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t prim;
    dnnl_status_t st = dnnl_memory_create(&src_mem, from, p->ctx->engine, (void *)data);
    if (st != dnnl_success) {
        rouse_err_set(eb, ROUSE_EINTERNAL, "oneDNN: cannot create a memory");
        return st;
    }
    st = dnnl_reorder_primitive_desc_create(&pd, from, p->ctx->engine, to, p->ctx->engine, NULL);
    if (st == dnnl_success) {
        st = dnnl_primitive_create(&prim, pd);
        dnnl_primitive_desc_destroy(pd);
    }
    if (st == dnnl_success) {
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, src_mem}, {DNNL_ARG_TO, dst_mem}};
        st = dnnl_primitive_execute(prim, p->ctx->stream, 2, args);
        dnnl_stream_wait(p->ctx->stream);
        dnnl_primitive_destroy(prim);
    }
    dnnl_memory_destroy(src_mem);
    if (st != dnnl_success) dnnl_fail(eb, n, "weight reorder", st);
    return st;
}

/* Reorders constant data (plain layout `from`) into layout `to`, now, unless
 * the plan was offered constant `value` already in layout `to` (a compiled
 * plan's weights) or made it for another node: then that memory is used in
 * place. value is -1 for data
 * that is not a graph constant as it stands (scaled weights). The result is
 * owned by the plan or by the offer. */
static int reorder_const(eng_plan *p, const eng_node *n, int value, const dnnl_memory_desc_t *from,
                         const void *data, const dnnl_memory_desc_t *to, dnnl_memory_t *out,
                         rouse_errbuf *eb)
{
    for (int i = 0; value >= 0 && p->packed && i < p->packed->n; i++) {
        const eng_packed *pk = &p->packed->items[i];
        if (pk->value != value) continue;
        const dnnl_memory_desc_t *md = pk->md;
        if (dnnl_memory_desc_equal(md, to) && dnnl_memory_desc_get_size(to) == pk->size) {
            if (plan_fixed_mem(p, to, (void *)pk->data, out) < 0)
                return rouse_err_set(eb, ROUSE_EINTERNAL, "oneDNN: cannot create a memory");
            return 0;
        }
        /* Another layout (other shapes than compiled for, or another
         * kernel): look further; failing that, the plain copy below is the
         * source (a stored layout is never trusted as one). */
    }
    /* A constant read by several nodes in one layout (a shared weight) is
     * reordered once: the nodes share the memory. */
    for (int i = 0; value >= 0 && i < p->n_made; i++) {
        const eng_packed *pk = &p->made[i];
        if (pk->value != value || !dnnl_memory_desc_equal(pk->md, to)) continue;
        if (plan_fixed_mem(p, to, (void *)pk->data, out) < 0)
            return rouse_err_set(eb, ROUSE_EINTERNAL, "oneDNN: cannot create a memory");
        return 0;
    }
    /* A graph constant a kernel reads as it lies (a MatMul's plain
     * weights) is used in place: the model's or the plan file's pages,
     * shared by every plan of every session and process, rather than a copy
     * per plan (each prepared shape of a decoder would copy all of its
     * weights again). */
    if (value >= 0 && dnnl_memory_desc_equal(from, to) && data == p->g->values[value].const_data &&
        (uintptr_t)data % sizeof(float) == 0) {
        if (plan_fixed_mem(p, to, (void *)data, out) < 0)
            return rouse_err_set(eb, ROUSE_EINTERNAL, "oneDNN: cannot create a memory");
        return 0;
    }
    size_t sz = dnnl_memory_desc_get_size(to);
    void *buf = plan_weight_alloc(p, sz);
    if (!buf) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory for weights");
    dnnl_memory_t dst_mem;
    if (plan_fixed_mem(p, to, buf, &dst_mem) < 0)
        return rouse_err_set(eb, ROUSE_EINTERNAL, "oneDNN: cannot create a memory");
    if (dnnl_memory_desc_equal(from, to)) {
        memcpy(buf, data, sz);
    } else {
        /* One thread, from creation on (a primitive keeps the team size it
         * was created with): preparing must never start an OpenMP team, so
         * that a prepared process can fork() instances safely (libgomp does
         * not survive fork after a multi-threaded region). The kernels
         * created after this still see the session's thread count. */
        int team = omp_get_max_threads();
        omp_set_num_threads(1);
        dnnl_status_t st = reorder_now(p, n, from, data, to, dst_mem, eb);
        omp_set_num_threads(team);
        if (st != dnnl_success) return ROUSE_EINTERNAL;
    }
    p->stats.weight_bytes += sz;
    if (value >= 0) {
        /* Remember it for compiled plans. */
        if (p->n_made == p->cap_made) {
            int cap = p->cap_made ? p->cap_made * 2 : 32;
            eng_packed *m = realloc(p->made, sizeof(*m) * (size_t)cap);
            if (m) p->made = m;
            dnnl_memory_desc_t *md = realloc(p->made_md, sizeof(*md) * (size_t)cap);
            if (md) p->made_md = md;
            if (!m || !md) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
            p->cap_made = cap;
            for (int i = 0; i < p->n_made; i++)
                p->made[i].md = &p->made_md[i];
        }
        p->made_md[p->n_made] = *to;
        p->made[p->n_made] = (eng_packed){value, &p->made_md[p->n_made], buf, sz};
        p->n_made++;
    }
    *out = dst_mem;
    return 0;
}

/* --- Conv (+ fused residual Add and activation) ------------------------------------ */

/* The live node after `from` that reads value v, or -1. */
static int find_consumer(const eng_plan *p, int from, int v)
{
    for (int i = from + 1; i < p->g->n_nodes; i++) {
        const eng_node *c = &p->g->nodes[i];
        if (c->dead || p->skip[i]) continue;
        for (int k = 0; k < c->n_in; k++)
            if (c->in[k] == v) return i;
    }
    return -1;
}

static bool eltwise_fusable(const eng_plan *p, const eng_node *c, eng_postop *po)
{
    po->kind = ENG_POST_ELTWISE;
    po->eltwise = c->op;
    po->alpha = po->beta = 0;
    switch (c->op) {
    case ENG_OP_RELU:
    case ENG_OP_SIGMOID:
    case ENG_OP_TANH:
    case ENG_OP_GELU:
    case ENG_OP_HARD_SWISH:
    case ENG_OP_SOFTPLUS:
    case ENG_OP_ABS:
        return true;
    case ENG_OP_LEAKY_RELU:
        po->alpha = c->attrs.alpha.alpha;
        return true;
    case ENG_OP_ELU:
    case ENG_OP_HARD_SIGMOID:
        po->alpha = c->attrs.act.params.alpha;
        po->beta = c->attrs.act.params.beta;
        return true;
    case ENG_OP_CLIP:
        if (c->opset < 11) {
            po->alpha = c->attrs.clip.has_min ? (float)c->attrs.clip.min : -INFINITY;
            po->beta = c->attrs.clip.has_max ? (float)c->attrs.clip.max : INFINITY;
            return true;
        }
        for (int k = 1; k < 3; k++) {
            float *dst = k == 1 ? &po->alpha : &po->beta;
            *dst = k == 1 ? -INFINITY : INFINITY;
            if (c->n_in <= k || c->in[k] < 0) continue;
            const eng_value *v = &p->g->values[c->in[k]];
            if (!v->const_data || v->dtype != ENG_DT_FLOAT ||
                eng_shape_numel(v->rank, v->shape) != 1)
                return false;
            *dst = *(const float *)v->const_data;
        }
        return true;
    default:
        return false;
    }
}

typedef struct sum_fusion {
    int addend_value; /* graph value added, -1 when no fusion */
    int final_value;  /* graph value the conv now produces */
} sum_fusion;

static void plan_sum_fusion(eng_plan *p, const eng_node *n, const eng_tensor *out, eng_postop *post,
                            int *n_post, sum_fusion *f)
{
    const eng_graph *g = p->g;
    int self = (int)(n - g->nodes);
    int v = n->out[0];
    f->addend_value = -1;
    f->final_value = v;
    if (*n_post >= ENG_MAX_POSTOPS - 1 || g->values[v].is_output || p->uses_left[v] != 1) return;
    int ci = find_consumer(p, self, v);
    if (ci < 0) return;
    const eng_node *add = &g->nodes[ci];
    if (add->op != ENG_OP_ADD || add->n_in != 2 || add->in[0] == add->in[1]) return;
    int other = add->in[0] == v ? add->in[1] : add->in[0];
    int opv = p->val_pv[other];
    if (opv < 0) return; /* computed after this conv */
    const exec_pv *o = &p->pvs[opv];
    if (o->t.dtype != ENG_DT_FLOAT ||
        !eng_shape_equal(o->t.rank, o->t.shape, out->rank, out->shape))
        return;
    post[(*n_post)++] = (eng_postop){.kind = ENG_POST_SUM};
    f->addend_value = other;
    f->final_value = add->out[0];
    p->skip[ci] = true;
    p->uses_left[v]--;
    p->uses_left[other]--;
    p->stats.n_sum_fused++;

    /* An activation right after the Add joins too. */
    int av = add->out[0];
    if (*n_post >= ENG_MAX_POSTOPS || g->values[av].is_output || p->uses_left[av] != 1) return;
    int ri = find_consumer(p, ci, av);
    if (ri < 0) return;
    eng_postop po;
    if (!eltwise_fusable(p, &g->nodes[ri], &po) || g->nodes[ri].in[0] != av) return;
    post[(*n_post)++] = po;
    f->final_value = g->nodes[ri].out[0];
    p->skip[ri] = true;
    p->uses_left[av]--;
}

/* True when no graph value held in `storage` will be read again: then a
 * kernel may overwrite it. Temporaries (reorders) are read only by the step
 * they were made for, which is already planned. */
static bool storage_dead_after(const eng_plan *p, int storage)
{
    for (int i = 0; i < p->n_pvs; i++) {
        const exec_pv *q = &p->pvs[i];
        if (q->storage != storage || q->value < 0) continue;
        if (p->uses_left[q->value] != 0 || p->g->values[q->value].is_output) return false;
    }
    return true;
}

/* The type convolutions, inner products and matrix products compute in:
 * bf16 plans keep their activations in bf16 from one such kernel to the
 * next (eltwise, pooling, binary and concat follow their input's type), so
 * values change type only where a kernel that takes fp32 only reads them
 * (plan_pv_plain: the reference kernels, graph outputs). Weights are
 * reordered to bf16 once, when prepared, and stored so in compiled plans;
 * biases and accumulation stay fp32. */
static dnnl_data_type_t compute_dt(const eng_plan *p)
{
    return p->g->precision == ENG_PRECISION_BF16 ? dnnl_bf16 : dnnl_f32;
}

int exec_dnnl_conv_dims(const eng_conv_attrs *a, int rank, const int64_t *src, const int64_t *dst,
                        const int64_t *w, dnnl_dims_t src_d, dnnl_dims_t wei_d, dnnl_dims_t dst_d,
                        dnnl_dims_t strides, dnnl_dims_t dil, dnnl_dims_t pl, dnnl_dims_t pr)
{
    int64_t group = a->group;
    for (int i = 0; i < rank; i++) {
        src_d[i] = src[i];
        dst_d[i] = dst[i];
    }
    int wnd = group > 1 ? rank + 1 : rank;
    if (group > 1) {
        wei_d[0] = group;
        wei_d[1] = w[0] / group;
        for (int i = 1; i < rank; i++)
            wei_d[i + 1] = w[i];
    } else {
        for (int i = 0; i < rank; i++)
            wei_d[i] = w[i];
    }
    for (int i = 0; i < a->n_spatial; i++) {
        strides[i] = a->stride[i];
        dil[i] = a->dilation[i] - 1;
        pl[i] = a->pad_begin[i];
        pr[i] = a->pad_end[i];
    }
    return wnd;
}

static int build_conv(eng_plan *p, const eng_node *n, const eng_attrs *ra, const int *in,
                      const eng_tensor *outs, int *out_pv, rouse_errbuf *eb)
{
    const dnnl_data_type_t dt = compute_dt(p);
    const eng_graph *g = p->g;
    const eng_conv_attrs *a = &ra->conv;
    if (n->n_in < 2 || !is_const_value(p, n->in[1])) return 0;
    bool has_bias = n->n_in > 2 && n->in[2] >= 0;
    if (has_bias && !is_const_value(p, n->in[2])) return 0;
    const exec_pv *x = &p->pvs[in[0]];
    int rank = x->t.rank;
    if (x->t.dtype != ENG_DT_FLOAT || rank < 3 || rank > 5 || a->n_spatial != rank - 2) return 0;
    const eng_value *w = &g->values[n->in[1]];
    if (w->dtype != ENG_DT_FLOAT) return 0;

    eng_postop post[ENG_MAX_POSTOPS];
    int n_post = n->n_post;
    memcpy(post, n->post, sizeof(post[0]) * (size_t)n_post);
    sum_fusion fus;
    plan_sum_fusion(p, n, &outs[0], post, &n_post, &fus);

    dnnl_dims_t src_d, wei_d, dst_d, bias_d, strides, dil, pl, pr;
    int wnd = exec_dnnl_conv_dims(a, rank, x->t.shape, outs[0].shape, w->shape, src_d, wei_d, dst_d,
                                  strides, dil, pl, pr);
    bias_d[0] = w->shape[0];
    dnnl_memory_desc_t src_any, wei_any, dst_any, bias_md, wei_plain;
    dnnl_memory_desc_init_by_tag(&src_any, rank, src_d, dt, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&wei_any, wnd, wei_d, dt, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&dst_any, rank, dst_d, dt, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&bias_md, 1, bias_d, dnnl_f32, dnnl_a);
    {
        dnnl_dims_t ws;
        int64_t s = 1;
        for (int i = wnd - 1; i >= 0; i--) {
            ws[i] = s;
            s *= wei_d[i];
        }
        dnnl_memory_desc_init_by_strides(&wei_plain, wnd, wei_d, dnnl_f32, ws);
    }
    /* See plan_prefers_blocked(): blocked channels-of-16 layouts let every
     * eligible 3x3 convolution run as Winograd. */
    if (p->blocked_convs && rank == 4) {
        if (src_d[1] % 16 == 0)
            dnnl_memory_desc_init_by_tag(&src_any, rank, src_d, dt, dnnl_aBcd16b);
        if (dst_d[1] % 16 == 0)
            dnnl_memory_desc_init_by_tag(&dst_any, rank, dst_d, dt, dnnl_aBcd16b);
    }
    /* With a fused sum, the destination takes the addend's layout so that it
     * can be written in place. */
    int addend_pv = fus.addend_value >= 0 ? p->val_pv[fus.addend_value] : -1;
    if (addend_pv >= 0 && p->pvs[addend_pv].has_md) dst_any = p->pvs[addend_pv].md;

    dnnl_convolution_desc_t cd;
    dnnl_primitive_attr_t attr;
    if (make_attr(n_post, post, &attr) < 0) return rouse_err_set(eb, ROUSE_ENOMEM, "oom");
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t st = dnnl_success;
    if (dt == dnnl_f32 && exec_conv_winograd_eligible(rank, a, src_d[1], dst_d[1])) {
        /* Winograd F(4x4,3x3) or F(2x2,3x3) needs about half the
         * multiplications; oneDNN declines shapes it cannot run that way. */
        st = dnnl_dilated_convolution_forward_desc_init(
            &cd, dnnl_forward_inference, dnnl_convolution_winograd, &src_any, &wei_any,
            has_bias ? &bias_md : NULL, &dst_any, strides, dil, pl, pr);
        if (st == dnnl_success &&
            dnnl_primitive_desc_create(&pd, &cd, attr, p->ctx->engine, NULL) != dnnl_success)
            pd = NULL;
        /* Its scratchpad lives in the arena at this step (add_prim_step):
         * one larger than the largest value the model computes would set
         * the arena's size by itself, and every instance would touch it
         * (resnet18's 28x28 convolutions ask 10.5 MB for F(4x4,3x3)
         * against its 3.2 MB largest value: 3.5 MiB more per instance).
         * Direct then: at 28x28 about 0.55 ms more per convolution, 1.18x
         * resnet18's kernel time (docs/measurements.md), while the Winograd
         * scratchpads of its other stages (0.2-2.1 MB) fit the arena's dead
         * space at their step. */
        const dnnl_memory_desc_t *smd =
            pd ? dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0) : NULL;
        if (smd && dnnl_memory_desc_get_size(smd) > p->largest_value) {
            dnnl_primitive_desc_destroy(pd);
            pd = NULL;
        }
    }
    if (!pd) {
        st = dnnl_dilated_convolution_forward_desc_init(
            &cd, dnnl_forward_inference, dnnl_convolution_direct, &src_any, &wei_any,
            has_bias ? &bias_md : NULL, &dst_any, strides, dil, pl, pr);
        if (st != dnnl_success) {
            dnnl_primitive_attr_destroy(attr);
            return dnnl_fail(eb, n, "convolution descriptor", st);
        }
        st = dnnl_primitive_desc_create(&pd, &cd, attr, p->ctx->engine, NULL);
    }
    dnnl_primitive_attr_destroy(attr);
    if (st != dnnl_success) return dnnl_fail(eb, n, "convolution", st);

    const dnnl_memory_desc_t *src_md = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    const dnnl_memory_desc_t *wei_md = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *dst_md = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    dnnl_memory_t wei_mem, bias_mem = NULL;
    int rc;
    if ((rc = reorder_const(p, n, n->in[1], &wei_plain, w->const_data, wei_md, &wei_mem, eb)) < 0 ||
        (has_bias && (rc = reorder_const(p, n, -1, &bias_md, g->values[n->in[2]].const_data,
                                         &bias_md, &bias_mem, eb)) < 0)) {
        dnnl_primitive_desc_destroy(pd);
        return rc;
    }
    int src = plan_pv_as(p, in[0], src_md, eb);
    if (src < 0) {
        dnnl_primitive_desc_destroy(pd);
        return src;
    }
    int dst;
    if (addend_pv >= 0) {
        const exec_pv *o = &p->pvs[addend_pv];
        bool in_place = o->storage >= 0 && o->has_md && dnnl_memory_desc_equal(&o->md, dst_md) &&
                        src != addend_pv && storage_dead_after(p, o->storage);
        if (in_place) {
            int storage = o->storage;
            if ((rc = new_pv_md(p, &outs[0], dst_md, &dst)) < 0) goto out_nomem;
            p->n_st--;
            p->pvs[dst].storage = storage;
            p->st[storage].n_pvs++;
        } else {
            /* Copy the addend into the destination first: it is read later. */
            int tmp;
            if ((rc = plan_reorder_new(p, addend_pv, dst_md, &tmp, eb)) < 0) {
                dnnl_primitive_desc_destroy(pd);
                return rc;
            }
            dst = tmp;
        }
    } else {
        if ((rc = new_pv_md(p, &outs[0], dst_md, &dst)) < 0) goto out_nomem;
    }
    argspec args[5];
    int na = 0;
    args[na++] = (argspec){DNNL_ARG_SRC, src, NULL};
    args[na++] = (argspec){DNNL_ARG_WEIGHTS, ARG_FIXED, wei_mem};
    if (has_bias) args[na++] = (argspec){DNNL_ARG_BIAS, ARG_FIXED, bias_mem};
    args[na++] = (argspec){DNNL_ARG_DST, dst, NULL};
    if ((rc = add_prim_step(p, n, ra, pd, args, na, dst, eb)) < 0) return rc;
    plan_bind_value(p, fus.final_value, dst);
    out_pv[0] = dst;
    return 1;
out_nomem:
    dnnl_primitive_desc_destroy(pd);
    return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
}

/* --- Gemm as inner product ----------------------------------------------------------- */

static int build_gemm(eng_plan *p, const eng_node *n, const eng_attrs *ra, const int *in,
                      const eng_tensor *outs, int *out_pv, rouse_errbuf *eb)
{
    const eng_graph *g = p->g;
    const eng_gemm_attrs *a = &ra->gemm;
    const exec_pv *A = &p->pvs[in[0]];
    if (A->t.dtype != ENG_DT_FLOAT || A->t.rank != 2 || a->trans_a) return 0;
    if (!is_const_value(p, n->in[1])) return 0;
    const eng_value *B = &g->values[n->in[1]];
    if (B->dtype != ENG_DT_FLOAT || B->rank != 2) return 0;
    int64_t M = A->t.shape[0], K = A->t.shape[1], N = outs[0].shape[1];
    bool has_c = n->n_in > 2 && n->in[2] >= 0 && a->beta != 0.0f;
    if (has_c) {
        if (!is_const_value(p, n->in[2])) return 0;
        const eng_value *C = &g->values[n->in[2]];
        if (C->dtype != ENG_DT_FLOAT) return 0;
        bool row = (C->rank == 1 && C->shape[0] == N) ||
                   (C->rank == 2 && C->shape[0] == 1 && C->shape[1] == N);
        if (!row) return 0;
    }
    /* Weights as [N, K]: B is [N, K] with transB, [K, N] (so strided) without. */
    dnnl_dims_t wd = {N, K}, ws = {a->trans_b ? K : 1, a->trans_b ? 1 : N};
    dnnl_dims_t sd = {M, K}, dd = {M, N}, bd = {N};
    dnnl_memory_desc_t src_md, wei_plain, wei_any, dst_any, bias_md;
    const dnnl_data_type_t dt = compute_dt(p);
    dnnl_memory_desc_init_by_tag(&src_md, 2, sd, dt, dnnl_ab);
    dnnl_memory_desc_init_by_strides(&wei_plain, 2, wd, dnnl_f32, ws);
    dnnl_memory_desc_init_by_tag(&wei_any, 2, wd, dt, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&dst_any, 2, dd, dt, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&bias_md, 1, bd, dnnl_f32, dnnl_a);
    dnnl_inner_product_desc_t ipd;
    dnnl_status_t st = dnnl_inner_product_forward_desc_init(
        &ipd, dnnl_forward_inference, &src_md, &wei_any, has_c ? &bias_md : NULL, &dst_any);
    if (st != dnnl_success) return 0;
    dnnl_primitive_attr_t attr;
    if (make_attr(n->n_post, n->post, &attr) < 0) return rouse_err_set(eb, ROUSE_ENOMEM, "oom");
    dnnl_primitive_desc_t pd;
    st = dnnl_primitive_desc_create(&pd, &ipd, attr, p->ctx->engine, NULL);
    dnnl_primitive_attr_destroy(attr);
    if (st != dnnl_success) return 0;
    const dnnl_memory_desc_t *wei_md = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *dst_md = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    const dnnl_memory_desc_t *src_q = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);

    /* alpha scales the weights and beta the bias, once, here. */
    const float *wdata = B->const_data;
    float *scaled = NULL, *bias = NULL;
    int rc;
    if (a->alpha != 1.0f) {
        scaled = malloc(sizeof(float) * (size_t)(N * K));
        if (!scaled || plan_own(p, scaled) < 0) {
            free(scaled);
            goto out_nomem;
        }
        memcpy(scaled, wdata, sizeof(float) * (size_t)(N * K)); /* wdata may be misaligned */
        for (int64_t i = 0; i < N * K; i++)
            scaled[i] *= a->alpha;
        wdata = scaled;
    }
    dnnl_memory_t wei_mem, bias_mem = NULL;
    if ((rc = reorder_const(p, n, a->alpha == 1.0f ? n->in[1] : -1, &wei_plain, wdata, wei_md,
                            &wei_mem, eb)) < 0) {
        dnnl_primitive_desc_destroy(pd);
        return rc;
    }
    if (has_c) {
        const float *c = g->values[n->in[2]].const_data;
        bias = malloc(sizeof(float) * (size_t)N);
        if (!bias || plan_own(p, bias) < 0) {
            free(bias);
            goto out_nomem;
        }
        memcpy(bias, c, sizeof(float) * (size_t)N); /* c may be misaligned */
        for (int64_t i = 0; i < N; i++)
            bias[i] *= a->beta;
        if (plan_fixed_mem(p, &bias_md, bias, &bias_mem) < 0) goto out_nomem;
    }
    int src = plan_pv_as(p, in[0], src_q, eb);
    if (src < 0) {
        dnnl_primitive_desc_destroy(pd);
        return src;
    }
    int dst;
    if ((rc = new_pv_md(p, &outs[0], dst_md, &dst)) < 0) goto out_nomem;
    argspec args[4];
    int na = 0;
    args[na++] = (argspec){DNNL_ARG_SRC, src, NULL};
    args[na++] = (argspec){DNNL_ARG_WEIGHTS, ARG_FIXED, wei_mem};
    if (has_c) args[na++] = (argspec){DNNL_ARG_BIAS, ARG_FIXED, bias_mem};
    args[na++] = (argspec){DNNL_ARG_DST, dst, NULL};
    if ((rc = add_prim_step(p, n, ra, pd, args, na, dst, eb)) < 0) return rc;
    plan_bind_value(p, n->out[0], dst);
    out_pv[0] = dst;
    return 1;
out_nomem:
    dnnl_primitive_desc_destroy(pd);
    return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
}

/* --- MatMul (+ fused bias, scaling, Adds and activation) ---------------------------- */

/* What a MatMul absorbs from the nodes after it, in order: the Linear
 * layer's constant bias, then post-ops: Div/Mul by a constant scalar
 * (attention's 1/sqrt(d)), Add of an already computed value that
 * broadcasts into the result (attention mask, residual), and an
 * activation (GELU). */
#define MM_MAX_FUSED 6

typedef struct mm_fused {
    int node;     /* fused node */
    int in_value; /* the value of the chain it read */
    int other;    /* its other input value (bias, addend, scalar), or -1 */
    int kind;     /* MM_BIAS, MM_LINEAR, MM_ADD, MM_ELTWISE */
    float alpha, beta;
    eng_op eltwise;
    int addend_pv; /* MM_ADD */
} mm_fused;

enum { MM_BIAS, MM_LINEAR, MM_ADD, MM_ELTWISE };

typedef struct mm_chain {
    int n;
    mm_fused f[MM_MAX_FUSED];
    int final_value; /* graph value the MatMul now produces */
} mm_chain;

/* A constant float with one element: its value. */
static bool const_scalar_value(const eng_plan *p, int v, float *out)
{
    if (!is_const_value(p, v)) return false;
    const eng_value *c = &p->g->values[v];
    if (c->dtype != ENG_DT_FLOAT || eng_shape_numel(c->rank, c->shape) != 1) return false;
    memcpy(out, c->const_data, sizeof(float)); /* may be misaligned */
    return true;
}

/* A value that broadcasts into shape out[r] (numpy rules, no growth). */
static bool broadcasts_into(const exec_pv *x, const eng_tensor *out)
{
    if (x->t.rank > out->rank) return false;
    for (int i = 0; i < x->t.rank; i++) {
        int64_t d = x->t.shape[x->t.rank - 1 - i], o = out->shape[out->rank - 1 - i];
        if (d != o && d != 1) return false;
    }
    return true;
}

static void mm_chain_plan(eng_plan *p, const eng_node *n, const eng_tensor *out, bool allow_bias,
                          mm_chain *c)
{
    const eng_graph *g = p->g;
    c->n = 0;
    c->final_value = n->out[0];
    int at = (int)(n - g->nodes);
    while (c->n < MM_MAX_FUSED) {
        int v = c->final_value;
        if (g->values[v].is_output || p->uses_left[v] != 1) return;
        int ci = find_consumer(p, at, v);
        if (ci < 0) return;
        const eng_node *x = &g->nodes[ci];
        mm_fused f = {.node = ci, .in_value = v, .other = -1, .addend_pv = -1};
        if (x->op == ENG_OP_ADD && x->n_in == 2 && x->in[0] != x->in[1] && !x->n_post) {
            int other = x->in[0] == v ? x->in[1] : x->in[0];
            const eng_value *b = &g->values[other];
            int64_t nn = out->shape[out->rank - 1];
            if (allow_bias && c->n == 0 && is_const_value(p, other) && b->dtype == ENG_DT_FLOAT &&
                b->rank >= 1 && b->rank <= out->rank && b->shape[b->rank - 1] == nn &&
                eng_shape_numel(b->rank, b->shape) == nn) {
                f.kind = MM_BIAS;
            } else {
                int opv = p->val_pv[other];
                if (is_const_value(p, other) || opv < 0) return; /* computed later */
                const exec_pv *o = &p->pvs[opv];
                if (o->t.dtype != ENG_DT_FLOAT || !o->has_md || !broadcasts_into(o, out)) return;
                f.kind = MM_ADD;
                f.addend_pv = opv;
            }
            f.other = other;
        } else if ((x->op == ENG_OP_DIV || x->op == ENG_OP_MUL) && x->n_in == 2 && x->in[0] == v &&
                   x->in[1] != v && !x->n_post) {
            float k;
            if (!const_scalar_value(p, x->in[1], &k) || !isfinite(k) || k == 0.0f) return;
            f.kind = MM_LINEAR;
            f.alpha = x->op == ENG_OP_DIV ? 1.0f / k : k;
            f.other = x->in[1];
        } else if (x->n_in >= 1 && x->in[0] == v) {
            eng_postop po;
            if (!eltwise_fusable(p, x, &po)) return;
            f.kind = MM_ELTWISE;
            f.eltwise = po.eltwise;
            f.alpha = po.alpha;
            f.beta = po.beta;
        } else {
            return;
        }
        /* Clip's bound inputs are not read by the fused form either. */
        for (int k = 0; k < x->n_in; k++) {
            int u = x->in[k];
            if (u >= 0 && u != v && u != f.other) p->uses_left[u]--;
        }
        p->skip[ci] = true;
        p->uses_left[v]--;
        if (f.other >= 0) p->uses_left[f.other]--;
        c->f[c->n++] = f;
        c->final_value = x->out[0];
        at = ci;
    }
}

static void mm_chain_undo(eng_plan *p, mm_chain *c)
{
    const eng_graph *g = p->g;
    for (int i = c->n - 1; i >= 0; i--) {
        const mm_fused *f = &c->f[i];
        const eng_node *x = &g->nodes[f->node];
        for (int k = 0; k < x->n_in; k++) {
            int u = x->in[k];
            if (u >= 0 && u != f->in_value && u != f->other) p->uses_left[u]++;
        }
        p->skip[f->node] = false;
        p->uses_left[f->in_value]++;
        if (f->other >= 0) p->uses_left[f->other]++;
    }
    c->n = 0;
}

/* Post-ops of the chain (everything after the bias), with the memory
 * descriptors of the Adds' operands. */
static int mm_chain_attr(eng_plan *p, const mm_chain *c, int r, dnnl_primitive_attr_t *out)
{
    dnnl_primitive_attr_t attr;
    dnnl_post_ops_t po;
    if (dnnl_primitive_attr_create(&attr) != dnnl_success) return ROUSE_ENOMEM;
    dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    if (dnnl_post_ops_create(&po) != dnnl_success) {
        dnnl_primitive_attr_destroy(attr);
        return ROUSE_ENOMEM;
    }
    int rc = 0;
    for (int i = 0; i < c->n && !rc; i++) {
        const mm_fused *f = &c->f[i];
        float alpha = f->alpha, beta = f->beta;
        switch (f->kind) {
        case MM_BIAS:
            break;
        case MM_LINEAR:
            dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_linear, alpha, 0.0f);
            break;
        case MM_ELTWISE:
            rc = append_eltwise(po, f->eltwise, alpha, beta);
            break;
        case MM_ADD: {
            const exec_pv *o = &p->pvs[f->addend_pv];
            int64_t bd[ENG_MAX_RANK];
            for (int k = 0; k < r; k++)
                bd[k] = k < r - o->t.rank ? 1 : o->t.shape[k - (r - o->t.rank)];
            dnnl_memory_desc_t md;
            if (plan_md_plain(ENG_DT_FLOAT, r, bd, &md) < 0)
                rc = ROUSE_EUNSUPPORTED;
            else if (dnnl_post_ops_append_binary(po, dnnl_binary_add, &md) != dnnl_success)
                rc = ROUSE_EUNSUPPORTED;
            break;
        }
        }
    }
    if (!rc) dnnl_primitive_attr_set_post_ops(attr, po);
    dnnl_post_ops_destroy(po);
    if (rc) {
        dnnl_primitive_attr_destroy(attr);
        return rc;
    }
    *out = attr;
    return 0;
}

/* A MatMul activation operand: as it is when strided, else plain. */
static int matmul_operand(eng_plan *p, int pv, rouse_errbuf *eb)
{
    if (p->pvs[pv].has_md && plan_md_strided(&p->pvs[pv].md)) return pv;
    return plan_pv_plain(p, pv, eb);
}

static bool impl_is_reference(const_dnnl_primitive_desc_t pd)
{
    const char *impl = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) != dnnl_success || !impl)
        return false;
    return strncmp(impl, "ref", 3) == 0;
}

/* When the only reader of the MatMul's result v is a Transpose (merging
 * attention heads back), the MatMul writes v in the layout whose transpose
 * is plain: the Transpose then becomes a free view (see
 * build_transpose_view) and the Reshape after it too. */
static void matmul_dst_for_transpose(eng_plan *p, int self, int v, dnnl_memory_desc_t *dst_md)
{
    const eng_graph *g = p->g;
    if (g->values[v].is_output || p->uses_left[v] != 1) return;
    int ci = find_consumer(p, self, v);
    if (ci < 0) return;
    const eng_node *t = &g->nodes[ci];
    int r = dst_md->ndims;
    if (t->op != ENG_OP_TRANSPOSE || t->in[0] != v || t->attrs.transpose.n_perm != r) return;
    int64_t tdims[DNNL_MAX_NDIMS], ts[DNNL_MAX_NDIMS];
    bool seen[DNNL_MAX_NDIMS] = {false};
    for (int i = 0; i < r; i++) {
        int64_t k = t->attrs.transpose.perm[i];
        if (k < 0 || k >= r || seen[k]) return;
        seen[k] = true;
        tdims[i] = dst_md->dims[k];
    }
    int64_t s = 1;
    for (int i = r - 1; i >= 0; i--) {
        ts[i] = s;
        s *= tdims[i];
    }
    dnnl_dims_t strides;
    for (int i = 0; i < r; i++)
        strides[t->attrs.transpose.perm[i]] = ts[i];
    dnnl_memory_desc_t md;
    if (dnnl_memory_desc_init_by_strides(&md, r, dst_md->dims, dnnl_f32, strides) == dnnl_success)
        *dst_md = md;
}

/* A constant's floats as a kernel reads them: its own bytes when they
 * are aligned (the plan file's pages), else a copy in the plan's weights
 * (a model loaded from memory keeps large misaligned payloads in place). */
static const float *const_floats(eng_plan *p, const eng_value *v, int64_t n)
{
    if ((uintptr_t)v->const_data % sizeof(float) == 0) return v->const_data;
    void *copy = plan_weight_alloc(p, (size_t)n * sizeof(float));
    if (copy) memcpy(copy, v->const_data, (size_t)n * sizeof(float));
    return copy;
}

/* A one-row MatMul with a constant rank-2 B in an fp32 plan, its fused
 * tail at most a bias and one residual Add of the row's size: a GEMV step
 * (exec_gemv.c) reading B where it lies. 1 when built, 0 when it does not
 * apply (nothing changed), negative on error. */
static int build_matmul_gemv(eng_plan *p, const eng_node *n, const eng_attrs *ra, int a_pv,
                             const mm_chain *c, const eng_tensor *out, int *out_pv,
                             rouse_errbuf *eb)
{
    const eng_graph *g = p->g;
    const eng_value *bv = &g->values[n->in[1]];
    const exec_pv *A = &p->pvs[a_pv];
    if (compute_dt(p) != dnnl_f32 || bv->rank != 2 || bv->dtype != ENG_DT_FLOAT || !bv->const_data)
        return 0;
    const int64_t K = bv->shape[0], N = bv->shape[1];
    if (K <= 0 || A->t.shape[A->t.rank - 1] != K || eng_tensor_numel(&A->t) % K != 0) return 0;
    const int64_t M = eng_tensor_numel(&A->t) / K;
    if (M < 1 || M > p->ctx->gemv_max_rows || eng_tensor_numel(out) != M * N ||
        out->shape[out->rank - 1] != N)
        return 0;
    const eng_value *biasv = NULL;
    int addend = -1;
    for (int i = 0; i < c->n; i++) {
        const mm_fused *f = &c->f[i];
        if (f->kind == MM_BIAS && !biasv && g->values[f->other].dtype == ENG_DT_FLOAT &&
            eng_shape_numel(g->values[f->other].rank, g->values[f->other].shape) == N)
            biasv = &g->values[f->other];
        else if (f->kind == MM_ADD && addend < 0 &&
                 eng_tensor_numel(&p->pvs[f->addend_pv].t) == M * N)
            addend = f->addend_pv;
        else
            return 0;
    }
    const float *w = const_floats(p, bv, K * N), *bias = biasv ? const_floats(p, biasv, N) : NULL;
    if (!w || (biasv && !bias)) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory for weights");
    if ((a_pv = plan_pv_plain(p, a_pv, eb)) < 0) return a_pv;
    if (addend >= 0 && (addend = plan_pv_plain(p, addend, eb)) < 0) return addend;
    int dst, rc = exec_gemv_add_step(p, n, ra, a_pv, w, M, K, N, bias, addend, out, &dst);
    if (rc < 0) return rouse_err_set(eb, rc, "out of memory");
    plan_bind_value(p, c->final_value, dst);
    out_pv[0] = dst;
    return 1;
}

/* MatMul of float tensors of rank >= 2 as a oneDNN matmul: batch dims
 * broadcast, a constant B reordered once into the layout the primitive
 * wants (a Linear layer), or two activations (attention scores and
 * context), which may be transposed views. A rank-2 constant B is seen as
 * [1, ..., K, N]. 1-D operands (numpy promotion) run on the reference
 * kernel. */
static int build_matmul(eng_plan *p, const eng_node *n, const eng_attrs *ra, const int *in,
                        const eng_tensor *outs, int *out_pv, rouse_errbuf *eb)
{
    const eng_graph *g = p->g;
    if (n->n_in < 2 || in[1] < 0 || n->n_post) return 0;
    const exec_pv *A = &p->pvs[in[0]], *B = &p->pvs[in[1]];
    const int r = outs[0].rank;
    if (A->t.dtype != ENG_DT_FLOAT || B->t.dtype != ENG_DT_FLOAT || A->t.rank < 2 ||
        B->t.rank < 2 || A->t.rank != r || r > DNNL_MAX_NDIMS)
        return 0;
    const bool b_const = is_const_value(p, n->in[1]);
    if (!b_const && B->t.rank != r) return 0;
    if (eng_tensor_numel(&outs[0]) == 0 || eng_tensor_numel(&A->t) == 0) return 0;

    /* Activations in a strided layout (a transposed view: attention heads)
     * are read in place; blocked ones are made plain first. */
    int a_pv = matmul_operand(p, in[0], eb);
    if (a_pv < 0) return a_pv;
    int b_pv = -1;
    if (!b_const && (b_pv = matmul_operand(p, in[1], eb)) < 0) return b_pv;

    dnnl_dims_t wd, dd, bd;
    const int rb = B->t.rank;
    for (int i = 0; i < r; i++) {
        wd[i] = i < r - rb ? 1 : B->t.shape[i - (r - rb)];
        dd[i] = outs[0].shape[i];
        bd[i] = i == r - 1 ? dd[i] : 1;
    }
    mm_chain chain;
    mm_chain_plan(p, n, &outs[0], b_const, &chain);
    int bias_v = chain.n && chain.f[0].kind == MM_BIAS ? chain.f[0].other : -1;
    if (b_const) {
        int rc = build_matmul_gemv(p, n, ra, a_pv, &chain, &outs[0], out_pv, eb);
        if (rc != 0) {
            if (rc < 0) mm_chain_undo(p, &chain);
            return rc;
        }
    }

    /* A Linear layer on a sequence-first activation ([S, 1, K] x [K, N]:
     * nn.MultiheadAttention's in-projection, as torchvision's ViT exports
     * it) is to oneDNN S products of one row each, every one reading the
     * whole weight: 50x slower than one [S, K] x [K, N] product. When B is
     * a constant without batch dims and A is dense in the arena, A's
     * leading dims fold into its rows, over the same bytes (views, no
     * copy); a fused residual Add keeps the unfolded form (its operand has
     * the output's dims). */
    const eng_tensor *mo = &outs[0];
    eng_tensor folded_out;
    bool fold = b_const && r > 2 && p->pvs[a_pv].plain && p->pvs[a_pv].storage >= 0;
    int64_t lead = 1;
    for (int i = 0; fold && i < r - 2; i++) {
        fold = wd[i] == 1;
        lead *= A->t.shape[i];
    }
    for (int i = 0; fold && i < chain.n; i++)
        fold = chain.f[i].kind != MM_ADD;
    if (fold && lead > 1) {
        eng_tensor fa = p->pvs[a_pv].t;
        folded_out = outs[0];
        for (int i = 0; i < r - 2; i++)
            fa.shape[i] = folded_out.shape[i] = 1;
        fa.shape[r - 2] *= lead;
        folded_out.shape[r - 2] *= lead;
        int rc = plan_view_pv(p, a_pv, &fa, &a_pv);
        if (rc < 0) {
            mm_chain_undo(p, &chain);
            return rouse_err_set(eb, rc, "out of memory");
        }
        A = &p->pvs[in[0]]; /* plan_view_pv may move p->pvs */
        B = &p->pvs[in[1]];
        mo = &folded_out;
    } else {
        fold = false;
    }
    dnnl_memory_desc_t src_md, wei_md, dst_md, bias_md;
    int a_src = a_pv; /* A as the primitive reads it */
    if (bias_v >= 0) plan_md_plain(ENG_DT_FLOAT, r, bd, &bias_md);
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t st = dnnl_unimplemented;
    for (int attempt = 0; attempt < 2 && st != dnnl_success; attempt++) {
        if (attempt == 1) {
            /* oneDNN's fast kernels declined a strided layout: plain
             * operands then, rather than its slow reference kernel. */
            if (p->pvs[a_pv].plain && (b_pv < 0 || p->pvs[b_pv].plain)) break;
            if ((a_pv = plan_pv_plain(p, a_pv, eb)) < 0 ||
                (b_pv >= 0 && (b_pv = plan_pv_plain(p, b_pv, eb)) < 0)) {
                mm_chain_undo(p, &chain);
                return a_pv < 0 ? a_pv : b_pv;
            }
        }
        src_md = p->pvs[a_pv].md;
        a_src = a_pv;
        if (b_const && compute_dt(p) == dnnl_bf16 && src_md.data_type == dnnl_f32) {
            /* A Linear layer of a bf16 plan: its input in bf16, same layout;
             * the result stays fp32 (the views and fusions after a MatMul
             * read it in place). */
            src_md.data_type = dnnl_bf16;
            if ((a_src = plan_pv_as(p, a_pv, &src_md, eb)) < 0) {
                mm_chain_undo(p, &chain);
                return a_src;
            }
        }
        if (b_const)
            dnnl_memory_desc_init_by_tag(&wei_md, r, wd, compute_dt(p), dnnl_format_tag_any);
        else
            wei_md = p->pvs[b_pv].md;
        if (plan_md_plain(ENG_DT_FLOAT, r, mo->shape, &dst_md) < 0) break;
        if (attempt == 0 && !fold)
            matmul_dst_for_transpose(p, (int)(n - g->nodes), chain.final_value, &dst_md);
        dnnl_matmul_desc_t md;
        dnnl_primitive_attr_t attr = NULL;
        st = dnnl_matmul_desc_init(&md, &src_md, &wei_md, bias_v >= 0 ? &bias_md : NULL, &dst_md);
        if (st != dnnl_success) continue;
        int rc = mm_chain_attr(p, &chain, r, &attr);
        if (rc == ROUSE_ENOMEM) {
            mm_chain_undo(p, &chain);
            return rouse_err_set(eb, rc, "oom");
        }
        if (rc < 0) {
            st = dnnl_unimplemented;
            break;
        }
        st = dnnl_primitive_desc_create(&pd, &md, attr, p->ctx->engine, NULL);
        dnnl_primitive_attr_destroy(attr);
        if (st == dnnl_success && impl_is_reference(pd)) {
            dnnl_primitive_desc_destroy(pd);
            pd = NULL;
            st = dnnl_unimplemented;
        }
    }
    if (st != dnnl_success) {
        /* The fused nodes run on their own. */
        mm_chain_undo(p, &chain);
        return 0;
    }

    int rc;
    dnnl_memory_t wei_mem = NULL, bias_mem = NULL;
    if (b_const) {
        const eng_value *bv = &g->values[n->in[1]];
        dnnl_memory_desc_t wei_plain;
        plan_md_plain(ENG_DT_FLOAT, r, wd, &wei_plain);
        const dnnl_memory_desc_t *want = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
        if ((rc = reorder_const(p, n, n->in[1], &wei_plain, bv->const_data, want, &wei_mem, eb)) <
            0) {
            dnnl_primitive_desc_destroy(pd);
            return rc;
        }
    }
    if (bias_v >= 0 && (rc = reorder_const(p, n, bias_v, &bias_md, g->values[bias_v].const_data,
                                           &bias_md, &bias_mem, eb)) < 0) {
        dnnl_primitive_desc_destroy(pd);
        return rc;
    }
    int dst;
    if ((rc = new_pv_md(p, mo, &dst_md, &dst)) < 0) {
        dnnl_primitive_desc_destroy(pd);
        return rouse_err_set(eb, rc, "out of memory");
    }
    argspec args[4 + MM_MAX_FUSED];
    int na = 0;
    args[na++] = (argspec){DNNL_ARG_SRC, a_src, NULL};
    args[na++] = b_const ? (argspec){DNNL_ARG_WEIGHTS, ARG_FIXED, wei_mem}
                         : (argspec){DNNL_ARG_WEIGHTS, b_pv, NULL};
    if (bias_v >= 0) args[na++] = (argspec){DNNL_ARG_BIAS, ARG_FIXED, bias_mem};
    for (int i = 0, k = 0; i < chain.n; i++) {
        if (chain.f[i].kind == MM_BIAS) continue;
        /* Post-op k: the primitive counts post-ops, not fused nodes. */
        if (chain.f[i].kind == MM_ADD)
            args[na++] = (argspec){DNNL_ARG_ATTR_MULTIPLE_POST_OP(k) | DNNL_ARG_SRC_1,
                                   plan_pv_plain(p, chain.f[i].addend_pv, eb), NULL};
        k++;
    }
    args[na++] = (argspec){DNNL_ARG_DST, dst, NULL};
    for (int i = 0; i < na; i++)
        if (args[i].pv < 0 && args[i].pv != ARG_FIXED) {
            dnnl_primitive_desc_destroy(pd);
            return args[i].pv;
        }
    if ((rc = add_prim_step(p, n, ra, pd, args, na, dst, eb)) < 0) return rc;
    if (fold && (rc = plan_view_pv(p, dst, &outs[0], &dst)) < 0)
        return rouse_err_set(eb, rc, "out of memory");
    plan_bind_value(p, chain.final_value, dst);
    out_pv[0] = dst;
    return 1;
}

/* --- shared tails of the single-input builders ------------------------------------------ */

/* Primitive descriptor for op_desc with the plan's default attributes (user
 * scratchpad, no post-ops). 1 when created, 0 when oneDNN declines (the
 * node then runs on the reference kernel), negative on error. */
static int create_pd(eng_plan *p, const_dnnl_op_desc_t op_desc, dnnl_primitive_desc_t *pd,
                     rouse_errbuf *eb)
{
    dnnl_primitive_attr_t attr;
    if (make_attr(0, NULL, &attr) < 0) return rouse_err_set(eb, ROUSE_ENOMEM, "oom");
    dnnl_status_t st = dnnl_primitive_desc_create(pd, op_desc, attr, p->ctx->engine, NULL);
    dnnl_primitive_attr_destroy(attr);
    return st == dnnl_success;
}

/* One src -> one dst step from pd: the output value gets layout dst_md (the
 * primitive's own when NULL). Takes ownership of pd. Returns 1. */
static int src_dst_step(eng_plan *p, const eng_node *n, const eng_attrs *ra,
                        dnnl_primitive_desc_t pd, int src, const eng_tensor *out,
                        const dnnl_memory_desc_t *dst_md, int *out_pv, rouse_errbuf *eb)
{
    if (!dst_md) dst_md = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    int dst, rc;
    if ((rc = new_pv_md(p, out, dst_md, &dst)) < 0) {
        dnnl_primitive_desc_destroy(pd);
        return rouse_err_set(eb, rc, "out of memory");
    }
    argspec args[2] = {{DNNL_ARG_SRC, src, NULL}, {DNNL_ARG_DST, dst, NULL}};
    if ((rc = add_prim_step(p, n, ra, pd, args, 2, dst, eb)) < 0) return rc;
    plan_bind_value(p, n->out[0], dst);
    out_pv[0] = dst;
    return 1;
}

/* --- pooling ----------------------------------------------------------------------------- */

static int build_pool(eng_plan *p, const eng_node *n, const eng_attrs *ra, const int *in,
                      const eng_tensor *outs, int *out_pv, rouse_errbuf *eb)
{
    const exec_pv *x = &p->pvs[in[0]];
    int rank = x->t.rank;
    /* u8 / s8 max pooling is exact (the int8 quantizer's, over u8 data);
     * average pooling of u8 data is built for a DequantizeLinear ->
     * AveragePool -> QuantizeLinear pattern (exec_dnnl_qfuse.c). */
    bool int8 = x->t.dtype == ENG_DT_UINT8 || x->t.dtype == ENG_DT_INT8;
    if (!x->has_md || (x->t.dtype != ENG_DT_FLOAT && !int8) || rank < 3 || rank > 5) return 0;
    if (n->n_out > 1 && n->out[1] >= 0) return 0; /* MaxPool indices: reference kernel */
    int nsp = rank - 2;
    dnnl_dims_t strides, kernel, dil, pl, pr, dd;
    dnnl_alg_kind_t alg;
    for (int i = 0; i < rank; i++)
        dd[i] = outs[0].shape[i];
    if (n->op == ENG_OP_GLOBAL_AVGPOOL) {
        alg = dnnl_pooling_avg_exclude_padding;
        for (int i = 0; i < nsp; i++) {
            strides[i] = 1;
            kernel[i] = x->t.shape[i + 2];
            dil[i] = pl[i] = pr[i] = 0;
        }
    } else {
        const eng_pool_attrs *a = &ra->pool;
        if (a->n_spatial != nsp) return 0;
        alg = n->op == ENG_OP_MAXPOOL ? dnnl_pooling_max
              : a->count_include_pad  ? dnnl_pooling_avg_include_padding
                                      : dnnl_pooling_avg_exclude_padding;
        for (int i = 0; i < nsp; i++) {
            strides[i] = a->stride[i];
            kernel[i] = a->kernel[i];
            dil[i] = n->op == ENG_OP_MAXPOOL ? a->dilation[i] - 1 : 0;
            pl[i] = a->pad_begin[i];
            /* Right padding that makes oneDNN's output size equal the inferred
             * one (ceil_mode adds to it). */
            int64_t span = (kernel[i] - 1) * (dil[i] + 1) + 1;
            pr[i] = (dd[i + 2] - 1) * strides[i] + span - x->t.shape[i + 2] - pl[i];
            if (pr[i] < 0) return 0;
            /* Padding that ceil_mode adds must never be counted. */
            if (alg == dnnl_pooling_avg_include_padding && pr[i] != a->pad_end[i]) return 0;
            if (n->op == ENG_OP_AVGPOOL && a->dilation[i] != 1) return 0;
        }
    }
    dnnl_memory_desc_t dst_any;
    dnnl_memory_desc_init_by_tag(&dst_any, rank, dd, x->md.data_type, dnnl_format_tag_any);
    dnnl_pooling_v2_desc_t pdsc;
    if (dnnl_pooling_v2_forward_desc_init(&pdsc, dnnl_forward_inference, alg, &x->md, &dst_any,
                                          strides, kernel, dil, pl, pr) != dnnl_success)
        return 0;
    dnnl_primitive_desc_t pd;
    int rc = create_pd(p, &pdsc, &pd, eb);
    if (rc <= 0) return rc;
    return src_dst_step(p, n, ra, pd, in[0], &outs[0], NULL, out_pv, eb);
}

/* --- element-wise, binary, concat -------------------------------------------------------- */

static int build_eltwise(eng_plan *p, const eng_node *n, const eng_attrs *ra, const int *in,
                         const eng_tensor *outs, int *out_pv, rouse_errbuf *eb)
{
    const exec_pv *x = &p->pvs[in[0]];
    if (!x->has_md || x->t.dtype != ENG_DT_FLOAT) return 0;
    float alpha = 0, beta = 0;
    if (n->op == ENG_OP_LEAKY_RELU) alpha = ra->alpha.alpha;
    if (n->op == ENG_OP_ELU) alpha = ra->act.params.alpha;
    if (n->op == ENG_OP_CLIP) {
        alpha = ra->clip.has_min ? (float)ra->clip.min : -INFINITY;
        beta = ra->clip.has_max ? (float)ra->clip.max : INFINITY;
    }
    dnnl_alg_kind_t alg;
    if (eltwise_alg(n->op, &alpha, &beta, &alg) < 0) return 0;
    dnnl_eltwise_desc_t ed;
    if (dnnl_eltwise_forward_desc_init(&ed, dnnl_forward_inference, alg, &x->md, alpha, beta) !=
        dnnl_success)
        return 0;
    dnnl_primitive_desc_t pd;
    int rc = create_pd(p, &ed, &pd, eb);
    if (rc <= 0) return rc;
    return src_dst_step(p, n, ra, pd, in[0], &outs[0], NULL, out_pv, eb);
}

/* Add/Sub/Mul/Div of float values. src1 may broadcast into src0's shape
 * (a bias, a LayerNorm mean or scale, an attention mask): oneDNN binary
 * stretches src1's dims of size 1. When only src0 broadcasts, Add and Mul
 * swap their operands. A broadcast src1 that is not a constant must have
 * the output's rank and a plain layout; src0 may be blocked (a
 * convolution's output scaled per channel by a squeeze-excitation gate). */
static int build_binary(eng_plan *p, const eng_node *n, const eng_attrs *ra, const int *in,
                        const eng_tensor *outs, int *out_pv, rouse_errbuf *eb)
{
    if (in[0] < 0 || in[1] < 0) return 0;
    int i0 = in[0], i1 = in[1], v1 = n->in[1];
    const exec_pv *a = &p->pvs[i0], *b = &p->pvs[i1];
    if (!a->has_md || !b->has_md || a->t.dtype != ENG_DT_FLOAT || b->t.dtype != ENG_DT_FLOAT)
        return 0;
    const eng_tensor *o = &outs[0];
    if (!eng_shape_equal(a->t.rank, a->t.shape, o->rank, o->shape)) {
        if ((n->op != ENG_OP_ADD && n->op != ENG_OP_MUL) ||
            !eng_shape_equal(b->t.rank, b->t.shape, o->rank, o->shape))
            return 0;
        i0 = in[1];
        i1 = in[0];
        v1 = n->in[0];
        a = &p->pvs[i0];
        b = &p->pvs[i1];
    }
    dnnl_alg_kind_t alg = n->op == ENG_OP_ADD   ? dnnl_binary_add
                          : n->op == ENG_OP_SUB ? dnnl_binary_sub
                          : n->op == ENG_OP_MUL ? dnnl_binary_mul
                                                : dnnl_binary_div;
    dnnl_memory_desc_t md0 = a->md, md1;
    int src1;
    dnnl_memory_t fixed1 = NULL;
    bool bcast = !eng_shape_equal(b->t.rank, b->t.shape, o->rank, o->shape);
    if (!bcast) {
        md1 = md0;
        src1 = plan_pv_as(p, i1, &md1, eb);
        if (src1 < 0) return src1;
    } else {
        if (o->rank < 1 || b->t.rank > o->rank) return 0;
        int64_t bd[ENG_MAX_RANK];
        for (int i = 0; i < o->rank; i++)
            bd[i] = i < o->rank - b->t.rank ? 1 : b->t.shape[i - (o->rank - b->t.rank)];
        if (plan_md_plain(ENG_DT_FLOAT, o->rank, bd, &md1) < 0) return 0;
        if (is_const_value(p, v1)) {
            src1 = ARG_FIXED;
        } else {
            if (b->t.rank != o->rank) return 0;
            if ((src1 = plan_pv_plain(p, i1, eb)) < 0) return src1;
        }
    }
    dnnl_binary_desc_t bdsc;
    if (dnnl_binary_desc_init(&bdsc, alg, &md0, &md1, &md0) != dnnl_success) return 0;
    dnnl_primitive_desc_t pd;
    int dst, rc = create_pd(p, &bdsc, &pd, eb);
    bool src0_plain = p->pvs[i0].plain;
    if (rc > 0 && bcast && impl_is_reference(pd)) {
        /* ref:any computes every element's offsets from scratch: on plain
         * operands broadcasting along a middle dim (Swin's window mask,
         * [1, W, H, 49, 49] + [1, W, 1, 49, 49]) the reference kernel's
         * broadcast walk is faster. */
        dnnl_primitive_desc_destroy(pd);
        rc = 0;
    }
    if (rc == 0 && bcast && !src0_plain) {
        /* The large operand arrives blocked (a convolution's output) or as
         * a transposed view (attention heads scaled by a constant), and
         * oneDNN has no vectorized kernel broadcasting onto that layout
         * (aBcd8b, or bac: only its element-by-element ref:any, 100x
         * slower): it takes the plain form, one reorder, still cheaper
         * than the reference kernel, which needs the plain form as well. */
        if ((i0 = plan_pv_plain(p, i0, eb)) < 0) return i0;
        md0 = p->pvs[i0].md;
        if (dnnl_binary_desc_init(&bdsc, alg, &md0, &md1, &md0) != dnnl_success) return 0;
        rc = create_pd(p, &bdsc, &pd, eb);
        if (rc > 0 && impl_is_reference(pd)) {
            dnnl_primitive_desc_destroy(pd);
            rc = 0;
        }
    }
    if (rc <= 0) return rc;
    if (src1 == ARG_FIXED) {
        /* A constant operand is used in place when aligned, else copied. */
        const eng_value *cv = &p->g->values[v1];
        if ((rc = reorder_const(p, n, v1, &md1, cv->const_data, &md1, &fixed1, eb)) < 0) {
            dnnl_primitive_desc_destroy(pd);
            return rc;
        }
    }
    if ((rc = new_pv_md(p, o, &md0, &dst)) < 0) {
        dnnl_primitive_desc_destroy(pd);
        return rouse_err_set(eb, rc, "out of memory");
    }
    argspec args[3] = {
        {DNNL_ARG_SRC_0, i0, NULL}, {DNNL_ARG_SRC_1, src1, fixed1}, {DNNL_ARG_DST, dst, NULL}};
    if ((rc = add_prim_step(p, n, ra, pd, args, 3, dst, eb)) < 0) return rc;
    plan_bind_value(p, n->out[0], dst);
    out_pv[0] = dst;
    return 1;
}

static int build_concat(eng_plan *p, const eng_node *n, const eng_attrs *ra, const int *in,
                        const eng_tensor *outs, int *out_pv, rouse_errbuf *eb)
{
    int k = n->n_in;
    if (k < 1 || k > 32) return 0;
    dnnl_memory_desc_t mds[32];
    for (int i = 0; i < k; i++) {
        if (in[i] < 0) return 0;
        const exec_pv *x = &p->pvs[in[i]];
        /* float, or u8 / s8 data of one quantization (the int8 quantizer's) */
        int dt = p->pvs[in[0]].t.dtype;
        if (!x->has_md || x->t.dtype != dt || x->t.rank < 1 ||
            (dt != ENG_DT_FLOAT && dt != ENG_DT_UINT8 && dt != ENG_DT_INT8))
            return 0;
        mds[i] = x->md;
    }
    int64_t axis = ra->axis.axis < 0 ? ra->axis.axis + outs[0].rank : ra->axis.axis;
    dnnl_primitive_attr_t attr;
    if (make_attr(0, NULL, &attr) < 0) return rouse_err_set(eb, ROUSE_ENOMEM, "oom");
    dnnl_primitive_desc_t pd;
    dnnl_status_t st =
        dnnl_concat_primitive_desc_create(&pd, NULL, k, (int)axis, mds, attr, p->ctx->engine);
    dnnl_primitive_attr_destroy(attr);
    if (st != dnnl_success) return 0;
    const dnnl_memory_desc_t *dst_md = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    int dst, rc;
    if ((rc = new_pv_md(p, &outs[0], dst_md, &dst)) < 0) {
        dnnl_primitive_desc_destroy(pd);
        return rouse_err_set(eb, rc, "out of memory");
    }
    argspec args[33];
    for (int i = 0; i < k; i++)
        args[i] = (argspec){DNNL_ARG_MULTIPLE_SRC + i, in[i], NULL};
    args[k] = (argspec){DNNL_ARG_DST, dst, NULL};
    if ((rc = add_prim_step(p, n, ra, pd, args, k + 1, dst, eb)) < 0) return rc;
    plan_bind_value(p, n->out[0], dst);
    out_pv[0] = dst;
    return 1;
}

/* --- LayerNorm, Softmax ------------------------------------------------------------- */

/* A LayerNorm scale or bias as a oneDNN memory of c floats: the constant
 * itself when it holds c values, else its one value repeated. */
static int norm_param(eng_plan *p, const eng_node *n, int v, int64_t c, dnnl_memory_t *out,
                      rouse_errbuf *eb)
{
    const eng_value *cv = &p->g->values[v];
    dnnl_memory_desc_t md;
    dnnl_dims_t d = {c};
    dnnl_memory_desc_init_by_tag(&md, 1, d, dnnl_f32, dnnl_a);
    if (eng_shape_numel(cv->rank, cv->shape) == c)
        return reorder_const(p, n, v, &md, cv->const_data, &md, out, eb);
    float *buf = plan_weight_alloc(p, sizeof(float) * (size_t)c);
    if (!buf) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    float one;
    memcpy(&one, cv->const_data, sizeof(one)); /* may be misaligned */
    for (int64_t i = 0; i < c; i++)
        buf[i] = one;
    if (plan_fixed_mem(p, &md, buf, out) < 0)
        return rouse_err_set(eb, ROUSE_EINTERNAL, "oneDNN: cannot create a memory");
    return 0;
}

/* LayerNorm over the last dim with constant scale and bias; normalizing
 * more dims than the last runs on the reference kernel. */
static int build_layernorm(eng_plan *p, const eng_node *n, const eng_attrs *ra, const int *in,
                           const eng_tensor *outs, int *out_pv, rouse_errbuf *eb)
{
    const exec_pv *x = &p->pvs[in[0]];
    int r = x->t.rank;
    if (!x->has_md || x->t.dtype != ENG_DT_FLOAT || r < 1 || r > DNNL_MAX_NDIMS ||
        ra->norm.axis != r - 1 || eng_tensor_numel(&x->t) == 0)
        return 0;
    int scale = n->n_in > 1 ? n->in[1] : -1, shift = n->n_in > 2 ? n->in[2] : -1;
    if ((scale >= 0 && !is_const_value(p, scale)) || (shift >= 0 && !is_const_value(p, shift)))
        return 0;
    int src = plan_pv_plain(p, in[0], eb);
    if (src < 0) return src;
    dnnl_memory_desc_t md = p->pvs[src].md;
    unsigned flags = (scale >= 0 ? dnnl_use_scale : 0) | (shift >= 0 ? dnnl_use_shift : 0);
    dnnl_layer_normalization_desc_t ld;
    if (dnnl_layer_normalization_forward_desc_init(&ld, dnnl_forward_inference, &md, NULL,
                                                   ra->norm.epsilon, flags) != dnnl_success)
        return 0;
    dnnl_primitive_desc_t pd;
    int rc = create_pd(p, &ld, &pd, eb);
    if (rc <= 0) return rc;
    int64_t c = x->t.shape[r - 1];
    dnnl_memory_t scale_mem = NULL, shift_mem = NULL;
    int dst;
    if ((scale >= 0 && (rc = norm_param(p, n, scale, c, &scale_mem, eb)) < 0) ||
        (shift >= 0 && (rc = norm_param(p, n, shift, c, &shift_mem, eb)) < 0) ||
        (rc = new_pv_md(p, &outs[0], &md, &dst)) < 0) {
        dnnl_primitive_desc_destroy(pd);
        return rc;
    }
    argspec args[4];
    int na = 0;
    args[na++] = (argspec){DNNL_ARG_SRC, src, NULL};
    if (scale_mem) args[na++] = (argspec){DNNL_ARG_SCALE, ARG_FIXED, scale_mem};
    if (shift_mem) args[na++] = (argspec){DNNL_ARG_SHIFT, ARG_FIXED, shift_mem};
    args[na++] = (argspec){DNNL_ARG_DST, dst, NULL};
    if ((rc = add_prim_step(p, n, ra, pd, args, na, dst, eb)) < 0) return rc;
    plan_bind_value(p, n->out[0], dst);
    out_pv[0] = dst;
    return 1;
}

/* Softmax along one axis of a plain float tensor. The legacy form (opset
 * < 13) coerces the input to 2-D at the axis, which is the same as the
 * single-axis form when the axis is the last; other legacy axes run on the
 * reference kernel. */
static int build_softmax(eng_plan *p, const eng_node *n, const eng_attrs *ra, const int *in,
                         const eng_tensor *outs, int *out_pv, rouse_errbuf *eb)
{
    const exec_pv *x = &p->pvs[in[0]];
    int r = x->t.rank, axis = (int)ra->axis.axis;
    if (!x->has_md || x->t.dtype != ENG_DT_FLOAT || r < 1 || r > DNNL_MAX_NDIMS ||
        eng_tensor_numel(&x->t) == 0 || (ra->axis.legacy && axis != r - 1))
        return 0;
    int src = plan_pv_plain(p, in[0], eb);
    if (src < 0) return src;
    dnnl_memory_desc_t md = p->pvs[src].md;
    dnnl_softmax_v2_desc_t sd;
    if (dnnl_softmax_v2_forward_desc_init(&sd, dnnl_forward_inference, dnnl_softmax_accurate, &md,
                                          &md, axis) != dnnl_success)
        return 0;
    dnnl_primitive_desc_t pd;
    int rc = create_pd(p, &sd, &pd, eb);
    if (rc <= 0) return rc;
    return src_dst_step(p, n, ra, pd, src, &outs[0], &md, out_pv, eb);
}

/* --- services of the builders in other files (exec_int.h) -------------------------- */

int exec_dnnl_pd(eng_plan *p, const_dnnl_op_desc_t op_desc, dnnl_primitive_desc_t *pd,
                 rouse_errbuf *eb)
{
    return create_pd(p, op_desc, pd, eb);
}

int exec_dnnl_new_pv(eng_plan *p, const eng_tensor *shape, const dnnl_memory_desc_t *md, int *out)
{
    return new_pv_md(p, shape, md, out);
}

int exec_dnnl_add_step(eng_plan *p, const eng_node *n, const eng_attrs *resolved,
                       dnnl_primitive_desc_t pd, const exec_dnnl_arg *a, int n_a, int write_pv,
                       rouse_errbuf *eb)
{
    return add_prim_step(p, n, resolved, pd, a, n_a, write_pv, eb);
}

/* oneDNN's kernels compute offsets and blocking in 32-bit ints in places:
 * a tensor of 2^31 or more elements (or a window of absurd extent, which
 * a hostile model can state within the attribute bounds) makes primitive
 * creation divide by zero. Such nodes take the reference kernels, which
 * index in 64 bits (and memory planning refuses what cannot fit). */
#define DNNL_SAFE_ELEMS ((int64_t)INT32_MAX)
#define DNNL_SAFE_WINDOW ((int64_t)1 << 16)

static bool window_in_range(const int64_t *k, const int64_t *s, const int64_t *d, const int64_t *pb,
                            const int64_t *pe)
{
    for (int i = 0; i < ENG_MAX_SPATIAL; i++)
        if (k[i] > DNNL_SAFE_WINDOW || s[i] > DNNL_SAFE_WINDOW || d[i] > DNNL_SAFE_WINDOW ||
            pb[i] > DNNL_SAFE_WINDOW || pe[i] > DNNL_SAFE_WINDOW)
            return false;
    return true;
}

static bool sizes_in_range(const eng_plan *p, const eng_node *n, const eng_attrs *ra, const int *in,
                           const eng_tensor *outs)
{
    for (int k = 0; k < n->n_in; k++) {
        if (in[k] < 0) continue;
        int64_t c = eng_tensor_numel(&p->pvs[in[k]].t);
        if (c < 0 || c > DNNL_SAFE_ELEMS) return false;
    }
    for (int k = 0; k < n->n_out; k++) {
        if (n->out[k] < 0) continue;
        int64_t c = eng_tensor_numel(&outs[k]);
        if (c < 0 || c > DNNL_SAFE_ELEMS) return false;
    }
    if (n->op == ENG_OP_CONV) {
        const eng_conv_attrs *a = &ra->conv;
        return window_in_range(a->kernel, a->stride, a->dilation, a->pad_begin, a->pad_end);
    }
    if (n->op == ENG_OP_QLINEAR_CONV || n->op == ENG_OP_CONV_INTEGER) {
        const eng_conv_attrs *a = &ra->quant.conv;
        return window_in_range(a->kernel, a->stride, a->dilation, a->pad_begin, a->pad_end);
    }
    if (n->op == ENG_OP_MAXPOOL || n->op == ENG_OP_AVGPOOL) {
        const eng_pool_attrs *a = &ra->pool;
        return window_in_range(a->kernel, a->stride, a->dilation, a->pad_begin, a->pad_end);
    }
    return true;
}

int exec_dnnl_build(eng_plan *p, const eng_node *n, const eng_attrs *resolved, const int *in,
                    const eng_tensor *out_shapes, int *out_pv, rouse_errbuf *eb)
{
    if (n->n_in < 1 || in[0] < 0) return 0;
    if (!sizes_in_range(p, n, resolved, in, out_shapes)) return 0;
    int rc = exec_dnnl_norm_build(p, n, resolved, in, out_shapes, out_pv, eb);
    if (rc != 0) return rc;
    switch (n->op) {
    case ENG_OP_CONV:
        return build_conv(p, n, resolved, in, out_shapes, out_pv, eb);
    case ENG_OP_GEMM:
        return build_gemm(p, n, resolved, in, out_shapes, out_pv, eb);
    case ENG_OP_MATMUL:
        return build_matmul(p, n, resolved, in, out_shapes, out_pv, eb);
    case ENG_OP_MAXPOOL:
    case ENG_OP_AVGPOOL:
    case ENG_OP_GLOBAL_AVGPOOL:
        return build_pool(p, n, resolved, in, out_shapes, out_pv, eb);
    case ENG_OP_RELU:
    case ENG_OP_CLIP:
    case ENG_OP_LEAKY_RELU:
    case ENG_OP_SIGMOID:
    case ENG_OP_TANH:
    case ENG_OP_SQRT:
    case ENG_OP_GELU:
    case ENG_OP_ELU:
    case ENG_OP_HARD_SWISH:
    case ENG_OP_SOFTPLUS:
    case ENG_OP_ABS:
        return build_eltwise(p, n, resolved, in, out_shapes, out_pv, eb);
    case ENG_OP_LAYERNORM:
        return build_layernorm(p, n, resolved, in, out_shapes, out_pv, eb);
    case ENG_OP_SOFTMAX:
        return build_softmax(p, n, resolved, in, out_shapes, out_pv, eb);
    case ENG_OP_ADD:
    case ENG_OP_SUB:
    case ENG_OP_MUL:
    case ENG_OP_DIV:
        return build_binary(p, n, resolved, in, out_shapes, out_pv, eb);
    case ENG_OP_CONCAT:
        return build_concat(p, n, resolved, in, out_shapes, out_pv, eb);
    case ENG_OP_RESIZE:
    case ENG_OP_UPSAMPLE:
    case ENG_OP_CONV_TRANSPOSE:
        return exec_dnnl_build_spatial(p, n, resolved, in, out_shapes, out_pv, eb);
    case ENG_OP_QLINEAR_CONV:
    case ENG_OP_CONV_INTEGER:
    case ENG_OP_QLINEAR_MATMUL:
    case ENG_OP_MATMUL_INTEGER:
    case ENG_OP_QUANTIZE_LINEAR:
    case ENG_OP_DEQUANTIZE_LINEAR:
        return exec_dnnl_build_quant(p, n, resolved, in, out_shapes, out_pv, eb);
    default:
        return 0;
    }
}

/* --- services for the builders in other files (exec_int.h) ----------------------------- */

int exec_dnnl_create_pd(eng_plan *p, const_dnnl_op_desc_t op_desc, dnnl_primitive_desc_t *pd,
                        rouse_errbuf *eb)
{
    return create_pd(p, op_desc, pd, eb);
}

int exec_dnnl_src_dst_step(eng_plan *p, const eng_node *n, const eng_attrs *ra,
                           dnnl_primitive_desc_t pd, int src, const eng_tensor *out, int *out_pv,
                           rouse_errbuf *eb)
{
    return src_dst_step(p, n, ra, pd, src, out, NULL, out_pv, eb);
}

int exec_dnnl_const_mem(eng_plan *p, const eng_node *n, int value, const dnnl_memory_desc_t *from,
                        const void *data, const dnnl_memory_desc_t *to, dnnl_memory_t *out,
                        rouse_errbuf *eb)
{
    return reorder_const(p, n, value, from, data, to, out, eb);
}

int exec_dnnl_weights_step(eng_plan *p, const eng_node *n, const eng_attrs *ra,
                           dnnl_primitive_desc_t pd, int src, dnnl_memory_t wei, dnnl_memory_t bias,
                           const eng_tensor *out, int *out_pv, rouse_errbuf *eb)
{
    const dnnl_memory_desc_t *dst_md = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    int dst, rc;
    if ((rc = new_pv_md(p, out, dst_md, &dst)) < 0) {
        dnnl_primitive_desc_destroy(pd);
        return rouse_err_set(eb, rc, "out of memory");
    }
    argspec args[4];
    int na = 0;
    args[na++] = (argspec){DNNL_ARG_SRC, src, NULL};
    args[na++] = (argspec){DNNL_ARG_WEIGHTS, ARG_FIXED, wei};
    if (bias) args[na++] = (argspec){DNNL_ARG_BIAS, ARG_FIXED, bias};
    args[na++] = (argspec){DNNL_ARG_DST, dst, NULL};
    if ((rc = add_prim_step(p, n, ra, pd, args, na, dst, eb)) < 0) return rc;
    plan_bind_value(p, n->out[0], dst);
    out_pv[0] = dst;
    return 1;
}
