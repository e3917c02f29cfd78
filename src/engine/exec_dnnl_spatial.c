/*
 * oneDNN kernel builders for the spatial ops: Resize and Upsample as the
 * resampling primitive, ConvTranspose as deconvolution (float only).
 *
 * A builder takes a node only where oneDNN computes what ONNX specifies;
 * everything else runs on the reference kernels in ops/spatial*.c, which
 * the tests compare these kernels against. oneDNN's resampling samples at
 * (o + 0.5) * in / out - 0.5, rounding half away from zero for nearest.
 * That is ONNX's half_pixel (and pytorch_half_pixel, outputs of more than
 * one element) whenever the scale is exactly out / in; for nearest it also
 * equals asymmetric coordinates with floor (and the pre-opset-11 rule)
 * when every factor is an integer, which is what exporters write for
 * nn.Upsample. Other modes (align_corners, cubic, tf_crop_and_resize,
 * fractional nearest factors) stay on the reference kernel.
 */
#include "engine/exec_int.h"

#include <string.h>

static bool is_const(const eng_plan *p, int v)
{
    return v >= 0 && p->g->values[v].const_data != NULL;
}

/* The resampling algorithm that computes node n's Resize exactly, or false. */
static bool resize_fits(const eng_resize_attrs *r, const eng_tensor *x, const eng_tensor *y,
                        dnnl_alg_kind_t *alg)
{
    int rank = x->rank;
    if (rank < 3 || rank > 5 || y->rank != rank || r->n_scales != rank) return false;
    if (y->shape[0] != x->shape[0] || y->shape[1] != x->shape[1]) return false;
    bool all_big = true, integral = true;
    for (int d = 2; d < rank; d++) {
        int64_t in = x->shape[d], out = y->shape[d];
        if (in < 1 || out < 1) return false;
        /* The coordinate transform divides by the scale; oneDNN by out / in. */
        if (r->scales[d] * (double)in != (double)out) return false;
        all_big &= out > 1;
        integral &= out % in == 0;
    }
    bool half =
        r->coord == ENG_COORD_HALF_PIXEL || (r->coord == ENG_COORD_PYTORCH_HALF_PIXEL && all_big);
    if (r->mode == ENG_RESIZE_LINEAR && half) {
        *alg = dnnl_resampling_linear;
        return true;
    }
    if (r->mode != ENG_RESIZE_NEAREST || !integral) return false;
    /* With an integer factor F, (o + 0.5) / F - 0.5 lies strictly within
     * 0.5 of floor(o / F): rounding it either way, or flooring o / F, picks
     * the same input element. */
    bool rounds =
        r->nearest == ENG_NEAREST_ROUND_PREFER_FLOOR || r->nearest == ENG_NEAREST_ROUND_PREFER_CEIL;
    bool floors = r->nearest == ENG_NEAREST_FLOOR || r->nearest == ENG_NEAREST_SIMPLE;
    if ((half && rounds) || (r->coord == ENG_COORD_ASYMMETRIC && floors)) {
        *alg = dnnl_resampling_nearest;
        return true;
    }
    return false;
}

static int build_resize(eng_plan *p, const eng_node *n, const eng_attrs *ra, const int *in,
                        const eng_tensor *outs, int *out_pv, rouse_errbuf *eb)
{
    const exec_pv *x = &p->pvs[in[0]];
    dnnl_alg_kind_t alg;
    if (!x->has_md || x->t.dtype != ENG_DT_FLOAT ||
        !resize_fits(&ra->spatial.resize, &x->t, &outs[0], &alg))
        return 0;
    dnnl_dims_t dd;
    for (int i = 0; i < outs[0].rank; i++)
        dd[i] = outs[0].shape[i];
    dnnl_memory_desc_t dst_any;
    dnnl_memory_desc_init_by_tag(&dst_any, outs[0].rank, dd, dnnl_f32, dnnl_format_tag_any);
    dnnl_resampling_desc_t rd;
    if (dnnl_resampling_forward_desc_init(&rd, dnnl_forward_inference, alg, NULL, &x->md,
                                          &dst_any) != dnnl_success)
        return 0;
    dnnl_primitive_desc_t pd;
    int rc = exec_dnnl_create_pd(p, &rd, &pd, eb);
    if (rc <= 0) return rc;
    return exec_dnnl_src_dst_step(p, n, ra, pd, in[0], &outs[0], out_pv, eb);
}

static int build_deconv(eng_plan *p, const eng_node *n, const eng_attrs *ra, const int *in,
                        const eng_tensor *outs, int *out_pv, rouse_errbuf *eb)
{
    const eng_graph *g = p->g;
    const eng_convtr_attrs *a = &ra->spatial.convtr;
    if (n->n_in < 2 || !is_const(p, n->in[1])) return 0;
    bool has_bias = n->n_in > 2 && n->in[2] >= 0;
    if (has_bias && !is_const(p, n->in[2])) return 0;
    const exec_pv *x = &p->pvs[in[0]];
    const eng_value *w = &g->values[n->in[1]];
    int rank = x->t.rank, ns = rank - 2;
    if (x->t.dtype != ENG_DT_FLOAT || w->dtype != ENG_DT_FLOAT || rank < 3 || rank > 5 ||
        a->w.n_spatial != ns)
        return 0;

    int64_t group = a->w.group, cg = w->shape[0] / group, mg = w->shape[1];
    dnnl_dims_t src_d, dst_d, wei_d, wst, bias_d, strides, dil, pl, pr;
    for (int i = 0; i < rank; i++) {
        src_d[i] = x->t.shape[i];
        dst_d[i] = outs[0].shape[i];
    }
    int64_t ksp = 1;
    for (int i = 0; i < ns; i++) {
        int64_t k = w->shape[2 + i];
        strides[i] = a->w.stride[i];
        dil[i] = a->w.dilation[i] - 1;
        pl[i] = a->w.pad_begin[i];
        /* The right padding that gives the inferred extent (output_padding
         * and output_shape included). */
        pr[i] =
            (src_d[2 + i] - 1) * strides[i] + (k - 1) * a->w.dilation[i] + 1 - pl[i] - dst_d[2 + i];
        if (pl[i] < 0) return 0;
        ksp *= k;
    }
    /* ONNX keeps W as [C, M/group, k...]; oneDNN wants (G,) O, I, k...: the
     * same bytes described with permuted strides. */
    int wnd = 0;
    if (group > 1) {
        wei_d[wnd] = group;
        wst[wnd++] = cg * mg * ksp;
    }
    wei_d[wnd] = mg;
    wst[wnd++] = ksp;
    wei_d[wnd] = cg;
    wst[wnd++] = mg * ksp;
    int64_t s = ksp;
    for (int i = 0; i < ns; i++) {
        s /= w->shape[2 + i];
        wei_d[wnd] = w->shape[2 + i];
        wst[wnd++] = s;
    }
    bias_d[0] = dst_d[1];
    dnnl_memory_desc_t wei_plain, wei_any, src_any, dst_any, bias_md;
    if (dnnl_memory_desc_init_by_strides(&wei_plain, wnd, wei_d, dnnl_f32, wst) != dnnl_success)
        return 0;
    /* Layouts left to oneDNN: its direct (blocked) kernels are much faster
     * than the gemm fallback it takes for plain activations. */
    dnnl_memory_desc_init_by_tag(&src_any, rank, src_d, dnnl_f32, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&wei_any, wnd, wei_d, dnnl_f32, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&dst_any, rank, dst_d, dnnl_f32, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&bias_md, 1, bias_d, dnnl_f32, dnnl_a);
    dnnl_deconvolution_desc_t dd;
    if (dnnl_dilated_deconvolution_forward_desc_init(
            &dd, dnnl_forward_inference, dnnl_deconvolution_direct, &src_any, &wei_any,
            has_bias ? &bias_md : NULL, &dst_any, strides, dil, pl, pr) != dnnl_success)
        return 0;
    dnnl_primitive_desc_t pd;
    int rc = exec_dnnl_create_pd(p, &dd, &pd, eb);
    if (rc <= 0) return rc;
    const dnnl_memory_desc_t *wei_md = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    dnnl_memory_t wei_mem, bias_mem = NULL;
    if ((rc = exec_dnnl_const_mem(p, n, n->in[1], &wei_plain, w->const_data, wei_md, &wei_mem,
                                  eb)) < 0 ||
        (has_bias && (rc = exec_dnnl_const_mem(p, n, -1, &bias_md, g->values[n->in[2]].const_data,
                                               &bias_md, &bias_mem, eb)) < 0)) {
        dnnl_primitive_desc_destroy(pd);
        return rc;
    }
    int src = plan_pv_as(p, in[0], dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0), eb);
    if (src < 0) {
        dnnl_primitive_desc_destroy(pd);
        return src;
    }
    return exec_dnnl_weights_step(p, n, ra, pd, src, wei_mem, bias_mem, &outs[0], out_pv, eb);
}

int exec_dnnl_build_spatial(eng_plan *p, const eng_node *n, const eng_attrs *resolved,
                            const int *in, const eng_tensor *out_shapes, int *out_pv,
                            rouse_errbuf *eb)
{
    switch (n->op) {
    case ENG_OP_RESIZE:
    case ENG_OP_UPSAMPLE:
        return build_resize(p, n, resolved, in, out_shapes, out_pv, eb);
    case ENG_OP_CONV_TRANSPOSE:
        return build_deconv(p, n, resolved, in, out_shapes, out_pv, eb);
    default:
        return 0;
    }
}
