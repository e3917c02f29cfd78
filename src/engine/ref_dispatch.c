/* Node -> reference kernel dispatch. */
#include "engine/ref_dispatch.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "engine/op.h"
#include "engine/ref/ref.h"

static int run_kernel(const eng_node *n, const eng_attrs *a, const eng_tensor *const *in,
                      eng_tensor *const *out, int64_t *bad_index)
{
    switch (n->op) {
    case ENG_OP_CONV:
        return ref_conv(&a->conv, in[0], in[1], n->n_in > 2 ? in[2] : NULL, out[0]);
    case ENG_OP_GEMM:
        return ref_gemm(&a->gemm, in[0], in[1], n->n_in > 2 ? in[2] : NULL, out[0]);
    case ENG_OP_MATMUL:
        return ref_matmul(in[0], in[1], out[0]);
    case ENG_OP_RELU:
    case ENG_OP_CLIP:
    case ENG_OP_LEAKY_RELU:
    case ENG_OP_SIGMOID:
    case ENG_OP_TANH:
    case ENG_OP_ERF:
    case ENG_OP_SQRT:
    case ENG_OP_GELU:
        return ref_unary(n->op, a, in[0], out[0]);
    case ENG_OP_LAYERNORM:
        return ref_layernorm(a->norm.axis, a->norm.epsilon, in[0], n->n_in > 1 ? in[1] : NULL,
                             n->n_in > 2 ? in[2] : NULL, out[0]);
    case ENG_OP_POW:
        return ref_pow(in[0], in[1], out[0]);
    case ENG_OP_CAST:
        return ref_cast(a->cast.to, in[0], out[0]);
    case ENG_OP_GATHER:
        return ref_gather(a->axis.axis, in[0], in[1], out[0], bad_index);
    case ENG_OP_WHERE:
        return ref_where(in[0], in[1], in[2], out[0]);
    case ENG_OP_REDUCE_MEAN:
        return ref_reduce_mean(a->axes.n_axes, a->axes.axes, a->axes.keepdims, in[0], out[0]);
    case ENG_OP_ADD:
    case ENG_OP_SUB:
    case ENG_OP_MUL:
    case ENG_OP_DIV:
        return ref_binary(n->op, in[0], in[1], out[0]);
    case ENG_OP_MAXPOOL:
        return ref_maxpool(&a->pool, in[0], out[0], n->n_out > 1 ? out[1] : NULL);
    case ENG_OP_AVGPOOL:
        return ref_avgpool(&a->pool, in[0], out[0]);
    case ENG_OP_GLOBAL_AVGPOOL:
        return ref_global_avgpool(in[0], out[0]);
    case ENG_OP_TRANSPOSE: {
        int64_t perm[ENG_MAX_RANK];
        int r = in[0]->rank;
        for (int i = 0; i < r; i++)
            perm[i] = a->transpose.n_perm ? a->transpose.perm[i] : r - 1 - i;
        return ref_transpose(perm, in[0], out[0]);
    }
    case ENG_OP_CONCAT: {
        int64_t axis = a->axis.axis < 0 ? a->axis.axis + out[0]->rank : a->axis.axis;
        return ref_concat(axis, n->n_in, in, out[0]);
    }
    case ENG_OP_BATCHNORM:
        return ref_batchnorm(a->bn.epsilon, in[0], in[1], in[2], in[3], in[4], out[0]);
    case ENG_OP_SOFTMAX: {
        int64_t axis = a->axis.axis < 0 ? a->axis.axis + in[0]->rank : a->axis.axis;
        return ref_softmax(axis, a->axis.legacy, in[0], out[0]);
    }
    case ENG_OP_FLATTEN:
    case ENG_OP_RESHAPE:
    case ENG_OP_UNSQUEEZE:
    case ENG_OP_SQUEEZE:
    case ENG_OP_IDENTITY:
        return ref_copy(in[0], out[0]);
    case ENG_OP_DROPOUT: {
        int rc = ref_copy(in[0], out[0]);
        if (rc == 0 && n->n_out > 1 && out[1]) {
            int64_t cnt = eng_tensor_numel(out[1]);
            memset(out[1]->data, 1, (size_t)(cnt > 0 ? cnt : 0)); /* mask: all kept */
        }
        return rc;
    }
    default: /* Constant is folded at load; described ops run through their descriptor */
        break;
    }
    return ROUSE_EUNSUPPORTED;
}

int eng_ref_run_node(const eng_node *n, const eng_attrs *resolved, const eng_tensor *const *in,
                     eng_tensor *const *out, rouse_errbuf *eb)
{
    if (n->op == ENG_OP_DROPOUT && n->n_in > 2 && in[2] && in[2]->data &&
        *(const uint8_t *)in[2]->data && resolved->dropout.ratio > 0.0f)
        return rouse_err_set(eb, ROUSE_EUNSUPPORTED,
                             "node '%s' (Dropout): training mode with ratio %g is random and "
                             "not supported for inference",
                             n->name, (double)resolved->dropout.ratio);
    const eng_op_desc *d = eng_op_desc_get(n->op);
    int64_t bad = 0;
    int rc;
    if (d) {
        if (!d->run)
            return rouse_err_set(eb, ROUSE_EUNSUPPORTED, "node '%s' (%s): no reference kernel",
                                 n->name, d->name);
        rc = d->run(n, resolved, in, out, eb);
        if (rc < 0) return rc;
        goto postops;
    }
    rc = run_kernel(n, resolved, in, out, &bad);
    if (rc == ROUSE_ERANGE && n->op == ENG_OP_GATHER)
        return rouse_err_set(eb, rc,
                             "node '%s' (Gather): index %lld of input 'indices' is out of range "
                             "for axis %lld of input 'data' (size %lld)",
                             n->name, (long long)bad, (long long)resolved->axis.axis,
                             (long long)in[0]->shape[resolved->axis.axis]);
    if (rc == ROUSE_EUNSUPPORTED)
        return rouse_err_set(eb, rc, "node '%s' (%s): element type %s is not supported", n->name,
                             eng_op_name(n->op), eng_dtype_name(in[0] ? in[0]->dtype : 0));
    if (rc < 0)
        return rouse_err_set(eb, rc, "node '%s' (%s): %s", n->name, eng_op_name(n->op),
                             rouse_strerror(rc));
postops:
    if (n->n_post) {
        const eng_tensor *sum_src = NULL;
        for (int i = 0; i < n->n_post; i++)
            if (n->post[i].kind == ENG_POST_SUM) sum_src = in[n->post[i].sum_input];
        rc = ref_postops(n->n_post, n->post, sum_src, out[0]);
        if (rc < 0)
            return rouse_err_set(eb, rc, "node '%s' (%s): fused operations failed: %s", n->name,
                                 eng_op_name(n->op), rouse_strerror(rc));
    }
    return 0;
}

int eng_run_fail(const eng_node *n, rouse_errbuf *eb, int rc, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return rouse_err_set(eb, rc, "node '%s' (%s): %s", n->name ? n->name : "", eng_op_name(n->op),
                         msg);
}
