/*
 * oneDNN builders of the reductions and normalizations described in
 * src/engine/ops/reduce.c and ops/norm.c:
 *   ReduceSum/Max/Min/Prod/L1/L2/SumSquare -> the reduction primitive (which
 *     keeps the rank: without keepdims the output is a view of its result);
 *   LayerNormalization -> layer normalization (the kernel of the
 *     optimizer's fused LayerNorm) over X viewed as [outer, inner], when
 *     only Y is wanted and scale and bias hold one value or one per
 *     normalized element;
 *   InstanceNormalization of a batch of one -> batch normalization with
 *     statistics computed per call (per channel over the spatial dims).
 * Everything else (other types, empty tensors, scale or bias that are not
 * constants, the log forms) returns 0 and runs on the reference kernels,
 * which define the results these builders are tested against.
 */
#include "engine/exec_int.h"

#include <string.h>

#include "engine/op.h"

static bool float_pv(const eng_plan *p, int pv)
{
    return pv >= 0 && p->pvs[pv].has_md && p->pvs[pv].t.dtype == ENG_DT_FLOAT &&
           p->pvs[pv].t.rank >= 1 && p->pvs[pv].t.rank <= DNNL_MAX_NDIMS &&
           eng_tensor_numel(&p->pvs[pv].t) > 0;
}

/* A float constant of c values (or one, repeated c times) as a oneDNN
 * memory; 0 when the value is not such a constant. */
static int const_vector(eng_plan *p, int v, int64_t c, dnnl_memory_t *out, rouse_errbuf *eb)
{
    if (v < 0) return 0;
    const eng_value *cv = &p->g->values[v];
    if (!cv->const_data || cv->dtype != ENG_DT_FLOAT || cv->rank < 0) return 0;
    /* Shape inference checked that it broadcasts to the normalized dims:
     * c values are those dims' own, one value is repeated. */
    int64_t n = eng_shape_numel(cv->rank, cv->shape);
    if (n != c && n != 1) return 0;
    float *buf = plan_weight_alloc(p, sizeof(float) * (size_t)c);
    if (!buf) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    if (n == c) {
        memcpy(buf, cv->const_data, sizeof(float) * (size_t)c); /* may be misaligned */
    } else {
        float one;
        memcpy(&one, cv->const_data, sizeof(one));
        for (int64_t i = 0; i < c; i++)
            buf[i] = one;
    }
    dnnl_memory_desc_t md;
    dnnl_dims_t d = {c};
    dnnl_memory_desc_init_by_tag(&md, 1, d, dnnl_f32, dnnl_a);
    if (plan_fixed_mem(p, &md, buf, out) < 0)
        return rouse_err_set(eb, ROUSE_EINTERNAL, "oneDNN: cannot create a memory");
    return 1;
}

/* A step reading src (and fixed scale/shift), writing a new value of
 * shape out with layout dst_md. Takes ownership of pd. */
static int norm_step(eng_plan *p, const eng_node *n, const eng_attrs *ra, dnnl_primitive_desc_t pd,
                     int src, dnnl_memory_t scale, dnnl_memory_t shift, const eng_tensor *out,
                     const dnnl_memory_desc_t *dst_md, int *out_pv, rouse_errbuf *eb)
{
    int dst, rc;
    if ((rc = exec_dnnl_new_pv(p, out, dst_md, &dst)) < 0) {
        dnnl_primitive_desc_destroy(pd);
        return rouse_err_set(eb, rc, "out of memory");
    }
    exec_dnnl_arg args[4];
    int na = 0;
    args[na++] = (exec_dnnl_arg){DNNL_ARG_SRC, src, NULL};
    if (scale) args[na++] = (exec_dnnl_arg){DNNL_ARG_SCALE, ARG_FIXED, scale};
    if (shift) args[na++] = (exec_dnnl_arg){DNNL_ARG_SHIFT, ARG_FIXED, shift};
    args[na++] = (exec_dnnl_arg){DNNL_ARG_DST, dst, NULL};
    if ((rc = exec_dnnl_add_step(p, n, ra, pd, args, na, dst, eb)) < 0) return rc;
    plan_bind_value(p, n->out[0], dst);
    out_pv[0] = dst;
    return 1;
}

static bool only_first_output(const eng_node *n)
{
    for (int k = 1; k < n->n_out; k++)
        if (n->out[k] >= 0) return false;
    return true;
}

/* --- reductions --------------------------------------------------------------------- */

static bool reduction_alg(eng_op op, dnnl_alg_kind_t *alg, float *pw)
{
    *pw = 0.0f;
    switch (op) {
    case ENG_OP_REDUCE_SUM:
        *alg = dnnl_reduction_sum;
        return true;
    case ENG_OP_REDUCE_MAX:
        *alg = dnnl_reduction_max;
        return true;
    case ENG_OP_REDUCE_MIN:
        *alg = dnnl_reduction_min;
        return true;
    case ENG_OP_REDUCE_PROD:
        *alg = dnnl_reduction_mul;
        return true;
    case ENG_OP_REDUCE_L1:
        *alg = dnnl_reduction_norm_lp_sum;
        *pw = 1.0f;
        return true;
    case ENG_OP_REDUCE_L2:
        *alg = dnnl_reduction_norm_lp_sum;
        *pw = 2.0f;
        return true;
    case ENG_OP_REDUCE_SUM_SQUARE:
        *alg = dnnl_reduction_norm_lp_power_p_sum;
        *pw = 2.0f;
        return true;
    default:
        return false;
    }
}

static int build_reduction(eng_plan *p, const eng_node *n, const eng_attrs *ra, const int *in,
                           const eng_tensor *outs, int *out_pv, rouse_errbuf *eb)
{
    dnnl_alg_kind_t alg;
    float pw;
    const eng_reduce_axes_attrs *r = &ra->reduce.red;
    if (!reduction_alg(n->op, &alg, &pw) || !float_pv(p, in[0]) || r->n_axes <= 0) return 0;
    const exec_pv *x = &p->pvs[in[0]];
    if (eng_tensor_numel(&outs[0]) <= 0) return 0;
    /* The primitive keeps the rank; without keepdims the output is a view
     * of its plain result. */
    eng_tensor kept = x->t;
    kept.data = NULL;
    for (int i = 0; i < r->n_axes; i++)
        kept.shape[r->axes[i]] = 1;
    int src = plan_pv_plain(p, in[0], eb);
    if (src < 0) return src;
    dnnl_memory_desc_t src_md = p->pvs[src].md, dst_md;
    if (plan_md_plain(ENG_DT_FLOAT, kept.rank, kept.shape, &dst_md) < 0) return 0;
    dnnl_reduction_desc_t rd;
    if (dnnl_reduction_desc_init(&rd, alg, &src_md, &dst_md, pw, 0.0f) != dnnl_success) return 0;
    dnnl_primitive_desc_t pd;
    int rc = exec_dnnl_pd(p, &rd, &pd, eb);
    if (rc <= 0) return rc;
    if ((rc = norm_step(p, n, ra, pd, src, NULL, NULL, &kept, &dst_md, out_pv, eb)) < 0)
        return rc;
    if (outs[0].rank == kept.rank) return 1;
    int view;
    if ((rc = plan_view_pv(p, out_pv[0], &outs[0], &view)) < 0)
        return rouse_err_set(eb, rc, "out of memory");
    plan_bind_value(p, n->out[0], view);
    out_pv[0] = view;
    return 1;
}

/* --- LayerNormalization ----------------------------------------------------------------- */

static int build_layer_normalization(eng_plan *p, const eng_node *n, const eng_attrs *ra,
                                     const int *in, const eng_tensor *outs, int *out_pv,
                                     rouse_errbuf *eb)
{
    const eng_lnorm_attrs *r = &ra->reduce.lnorm;
    if (!float_pv(p, in[0]) || !only_first_output(n)) return 0;
    const exec_pv *x = &p->pvs[in[0]];
    int rank = x->t.rank;
    if (r->axis < 0 || r->axis >= rank) return 0;
    /* oneDNN normalizes over the last dim: X is viewed as [outer, inner]. */
    eng_tensor flat = {.dtype = ENG_DT_FLOAT, .rank = 2, .shape = {1, 1}};
    for (int d = 0; d < rank; d++)
        flat.shape[d < r->axis ? 0 : 1] *= x->t.shape[d];
    int64_t c = flat.shape[1];
    dnnl_memory_t scale = NULL, shift = NULL;
    int rc = const_vector(p, n->in[1], c, &scale, eb);
    if (rc <= 0) return rc;
    if (n->n_in > 2 && n->in[2] >= 0 && (rc = const_vector(p, n->in[2], c, &shift, eb)) <= 0)
        return rc;
    int src = plan_pv_plain(p, in[0], eb);
    if (src < 0) return src;
    /* Over the last dim the primitive takes X as it is; over more dims it
     * reads a view of X, which only arena values have (not inputs or
     * constants: those stay on the reference kernel). */
    bool last = r->axis == rank - 1;
    if (!last && p->pvs[src].storage < 0) return 0;
    dnnl_memory_desc_t md = p->pvs[src].md;
    if (!last) {
        if ((rc = plan_view_pv(p, src, &flat, &src)) < 0)
            return rouse_err_set(eb, rc, "out of memory");
        if (plan_md_plain(ENG_DT_FLOAT, 2, flat.shape, &md) < 0) return 0;
    }
    unsigned flags = dnnl_use_scale | (shift ? dnnl_use_shift : 0);
    dnnl_layer_normalization_desc_t ld;
    if (dnnl_layer_normalization_forward_desc_init(&ld, dnnl_forward_inference, &md, NULL,
                                                   r->epsilon, flags) != dnnl_success)
        return 0;
    dnnl_primitive_desc_t pd;
    if ((rc = exec_dnnl_pd(p, &ld, &pd, eb)) <= 0) return rc;
    if ((rc = norm_step(p, n, ra, pd, src, scale, shift, last ? &outs[0] : &flat, &md, out_pv,
                        eb)) < 0)
        return rc;
    if (last) return 1;
    int view;
    if ((rc = plan_view_pv(p, out_pv[0], &outs[0], &view)) < 0)
        return rouse_err_set(eb, rc, "out of memory");
    plan_bind_value(p, n->out[0], view);
    out_pv[0] = view;
    return 1;
}

/* --- InstanceNormalization --------------------------------------------------------------- */

/* With one image, instance normalization is batch normalization whose
 * statistics are computed over the batch and spatial dims: oneDNN's
 * inference mode without global statistics. Any activation layout. */
static int build_instance_normalization(eng_plan *p, const eng_node *n, const eng_attrs *ra,
                                        const int *in, const eng_tensor *outs, int *out_pv,
                                        rouse_errbuf *eb)
{
    if (!float_pv(p, in[0])) return 0;
    const exec_pv *x = &p->pvs[in[0]];
    if (x->t.rank < 3 || x->t.shape[0] != 1) return 0;
    int64_t c = x->t.shape[1];
    dnnl_memory_t scale = NULL, shift = NULL;
    int rc;
    if ((rc = const_vector(p, n->in[1], c, &scale, eb)) <= 0) return rc;
    if ((rc = const_vector(p, n->in[2], c, &shift, eb)) <= 0) return rc;
    dnnl_memory_desc_t md = x->md;
    dnnl_batch_normalization_desc_t bd;
    if (dnnl_batch_normalization_forward_desc_init(&bd, dnnl_forward_inference, &md,
                                                   ra->reduce.inorm.epsilon,
                                                   dnnl_use_scale | dnnl_use_shift) != dnnl_success)
        return 0;
    dnnl_primitive_desc_t pd;
    if ((rc = exec_dnnl_pd(p, &bd, &pd, eb)) <= 0) return rc;
    return norm_step(p, n, ra, pd, in[0], scale, shift, &outs[0], &md, out_pv, eb);
}

int exec_dnnl_norm_build(eng_plan *p, const eng_node *n, const eng_attrs *resolved, const int *in,
                         const eng_tensor *out_shapes, int *out_pv, rouse_errbuf *eb)
{
    switch (n->op) {
    case ENG_OP_REDUCE_SUM:
    case ENG_OP_REDUCE_MAX:
    case ENG_OP_REDUCE_MIN:
    case ENG_OP_REDUCE_PROD:
    case ENG_OP_REDUCE_L1:
    case ENG_OP_REDUCE_L2:
    case ENG_OP_REDUCE_SUM_SQUARE:
        return build_reduction(p, n, resolved, in, out_shapes, out_pv, eb);
    case ENG_OP_LAYER_NORMALIZATION:
        return build_layer_normalization(p, n, resolved, in, out_shapes, out_pv, eb);
    case ENG_OP_INSTANCE_NORMALIZATION:
        return build_instance_normalization(p, n, resolved, in, out_shapes, out_pv, eb);
    default:
        return 0;
    }
}
