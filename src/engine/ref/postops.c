/*
 * Reference post-ops: the element-wise tail fused onto a Conv or Gemm,
 * applied in order to the node's float result in place. They compute
 * exactly what the unfused Relu/Clip/LeakyRelu/Sigmoid/Tanh/Add would.
 */
#include "engine/ref/ref.h"

#include "engine/ref/ref_util.h"
#include "rouse/err.h"

int ref_postops(int n_post, const eng_postop *post, const eng_tensor *sum_src, eng_tensor *y)
{
    if (y->dtype != ENG_DT_FLOAT) return ROUSE_EUNSUPPORTED;
    if (n_post < 0 || n_post > ENG_MAX_POSTOPS) return ROUSE_EINVAL;
    const int64_t n = eng_tensor_numel(y);
    if (n < 0) return ROUSE_EMISMATCH;

    /* Check them all first so that a bad list leaves y untouched. */
    for (int p = 0; p < n_post; p++) {
        if (post[p].kind == ENG_POST_ELTWISE) {
            if (!ref_act_supported(post[p].eltwise)) return ROUSE_EUNSUPPORTED;
        } else if (post[p].kind == ENG_POST_SUM) {
            if (!sum_src) return ROUSE_EINVAL;
            if (sum_src->dtype != ENG_DT_FLOAT) return ROUSE_EUNSUPPORTED;
            if (!eng_shape_equal(sum_src->rank, sum_src->shape, y->rank, y->shape))
                return ROUSE_EMISMATCH;
        } else {
            return ROUSE_EUNSUPPORTED;
        }
    }

    float *yd = y->data;
    for (int p = 0; p < n_post; p++) {
        const eng_postop *po = &post[p];
        if (po->kind == ENG_POST_SUM) {
            const float *s = sum_src->data;
            for (int64_t i = 0; i < n; i++)
                yd[i] += s[i];
        } else {
            for (int64_t i = 0; i < n; i++)
                yd[i] = ref_act_f32(po->eltwise, po->alpha, po->beta, yd[i]);
        }
    }
    return 0;
}
