/*
 * Helpers shared by the operator families (ops/ops_int.h): window geometry
 * for Conv and the pools, lists of axes, shape text, and the sentences of
 * reference-kernel failures.
 *
 * Guarantees: a window that passes ops_check_window has every kernel,
 * stride, dilation and pad within [0 or 1, 2^31], so ops_window_out's
 * arithmetic cannot overflow except through the input size, which it
 * checks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/ops/ops_int.h"

/* Settles n_spatial from the first list that gives it and checks that the
 * others agree; `expect_mul` is 2 for pads ([begin..., end...]). */
static int agree_count(const eng_attr_ctx *c, const char *name, int count, int expect_mul,
                       int *n_spatial)
{
    if (count < 0) return 0;
    if (count % expect_mul) {
        char what[96];
        snprintf(what, sizeof(what), "must have an even number of values, got %d", count);
        return eng_attr_err(c, ROUSE_EFORMAT, name, what);
    }
    int n = count / expect_mul;
    if (n == 0) return eng_attr_err(c, ROUSE_EFORMAT, name, "must not be empty");
    if (*n_spatial == 0) {
        if (n > ENG_MAX_SPATIAL) {
            char what[128];
            snprintf(what, sizeof(what), "has %d spatial dimensions, at most %d are supported", n,
                     ENG_MAX_SPATIAL);
            return eng_attr_err(c, ROUSE_EUNSUPPORTED, name, what);
        }
        *n_spatial = n;
        return 0;
    }
    if (n != *n_spatial) {
        char what[96];
        snprintf(what, sizeof(what), "must have %d values, got %d", *n_spatial * expect_mul, count);
        return eng_attr_err(c, ROUSE_EFORMAT, name, what);
    }
    return 0;
}

static const char *range_word(int64_t lo)
{
    return lo > 0 ? ">= 1" : ">= 0";
}

int ops_parse_window(const eng_attr_ctx *c, const struct ops_window *w, bool need_kernel,
                     bool has_dilations)
{
    /* Room for more values than any supported window, so that a wrong count
     * is reported as such rather than as a generic limit. */
    enum { MAXV = 2 * ENG_MAX_RANK };
    int64_t k[MAXV], s[MAXV], d[MAXV], p[MAXV];
    int nk, ns, nd = -1, np, rc;

    if ((rc = eng_attr_ints(c, "kernel_shape", MAXV, &nk, k)) < 0) return rc;
    if ((rc = eng_attr_ints(c, "strides", MAXV, &ns, s)) < 0) return rc;
    if (has_dilations && (rc = eng_attr_ints(c, "dilations", MAXV, &nd, d)) < 0) return rc;
    if ((rc = eng_attr_ints(c, "pads", MAXV, &np, p)) < 0) return rc;

    if (need_kernel && nk < 0) return eng_attr_err(c, ROUSE_EFORMAT, "kernel_shape", "is required");
    *w->n_spatial = 0;
    if ((rc = agree_count(c, "kernel_shape", nk, 1, w->n_spatial)) < 0) return rc;
    if ((rc = agree_count(c, "strides", ns, 1, w->n_spatial)) < 0) return rc;
    if ((rc = agree_count(c, "dilations", nd, 1, w->n_spatial)) < 0) return rc;
    if ((rc = agree_count(c, "pads", np, 2, w->n_spatial)) < 0) return rc;
    /* In the record, kernel 0 stands for "absent" (Conv takes it from the
     * weight): an explicit 0 must not pass for that. The other ranges are
     * the check's (ops_check_window), which sees the same values. */
    for (int i = 0; i < nk; i++) {
        if (k[i] < 1) {
            char what[128];
            snprintf(what, sizeof(what), "has invalid value %lld at index %d (must be >= 1)",
                     (long long)k[i], i);
            return eng_attr_err(c, ROUSE_EFORMAT, "kernel_shape", what);
        }
    }

    int n = *w->n_spatial;
    for (int i = 0; i < ENG_MAX_SPATIAL; i++) {
        w->kernel[i] = nk > 0 && i < n ? k[i] : 0;
        w->stride[i] = ns > 0 && i < n ? s[i] : 1;
        w->dilation[i] = nd > 0 && i < n ? d[i] : 1;
        w->pad_begin[i] = np > 0 && i < n ? p[i] : 0;
        w->pad_end[i] = np > 0 && i < n ? p[n + i] : 0;
    }
    return 0;
}

int ops_parse_auto_pad(const eng_attr_ctx *c, int *out)
{
    /* Indexed by eng_auto_pad. */
    static const char *const names[] = {"NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID", NULL};
    return eng_attr_choice(c, "auto_pad", names, ENG_AUTOPAD_NOTSET, out);
}

/* One list of a stored window: v[i] in [lo, 2^31] for every dim; the
 * first_index is where v[0] sat in the ONNX list (pads: begin at i, end at n + i). */
static int check_list(const eng_node *n, rouse_errbuf *eb, const char *name, const int64_t *v,
                      int64_t lo, int first_index)
{
    for (int i = 0; i < ENG_MAX_SPATIAL; i++) {
        if (v[i] < lo || v[i] > OPS_MAX_DIM)
            return eng_check_fail(n, eb, ROUSE_EFORMAT, name,
                                  "has invalid value %lld at index %d (must be %s)",
                                  (long long)v[i], first_index + i, range_word(lo));
    }
    return 0;
}

int ops_check_window(const eng_node *n, rouse_errbuf *eb, int n_spatial, const int64_t *kernel,
                     const int64_t *stride, const int64_t *dilation, const int64_t *pad_begin,
                     const int64_t *pad_end, int auto_pad, bool need_kernel)
{
    int rc;
    if (n_spatial < (need_kernel ? 1 : 0) || n_spatial > ENG_MAX_SPATIAL)
        return eng_check_fail(n, eb, ROUSE_EFORMAT, "kernel_shape",
                              "describes %d spatial dimensions", n_spatial);
    if ((rc = check_list(n, eb, "kernel_shape", kernel, 0, 0)) < 0) return rc;
    for (int i = 0; need_kernel && i < n_spatial; i++)
        if (kernel[i] < 1)
            return eng_check_fail(n, eb, ROUSE_EFORMAT, "kernel_shape",
                                  "has invalid value %lld at index %d (must be >= 1)",
                                  (long long)kernel[i], i);
    if ((rc = check_list(n, eb, "strides", stride, 1, 0)) < 0) return rc;
    if ((rc = check_list(n, eb, "dilations", dilation, 1, 0)) < 0) return rc;
    if ((rc = check_list(n, eb, "pads", pad_begin, 0, 0)) < 0) return rc;
    if ((rc = check_list(n, eb, "pads", pad_end, 0, n_spatial)) < 0) return rc;
    if (auto_pad < ENG_AUTOPAD_NOTSET || auto_pad > ENG_AUTOPAD_VALID)
        return eng_check_fail(n, eb, ROUSE_EFORMAT, "auto_pad", "has unknown value %d", auto_pad);
    return 0;
}

int ops_window_out(eng_infer_ctx *c, int dim, int64_t size, const struct ops_window_dim *w,
                   int64_t *out)
{
    int64_t ext = (w->kernel - 1) * w->dilation + 1; /* dilated kernel extent */
    int64_t s = w->stride;

    if (w->auto_pad == ENG_AUTOPAD_SAME_UPPER || w->auto_pad == ENG_AUTOPAD_SAME_LOWER) {
        int64_t o = size / s + (size % s != 0);
        int64_t total = o > 0 ? (o - 1) * s + ext - size : 0;
        if (total < 0) total = 0;
        /* SAME_UPPER puts the odd pad at the end, SAME_LOWER at the start. */
        int64_t small = total / 2, big = total - total / 2;
        *w->pad_begin = w->auto_pad == ENG_AUTOPAD_SAME_UPPER ? small : big;
        *w->pad_end = w->auto_pad == ENG_AUTOPAD_SAME_UPPER ? big : small;
        *out = o;
        return 0;
    }
    if (w->auto_pad == ENG_AUTOPAD_VALID) *w->pad_begin = *w->pad_end = 0;

    int64_t padded;
    if (__builtin_add_overflow(size, *w->pad_begin + *w->pad_end, &padded))
        return eng_infer_fail(c, ROUSE_EINVAL, "spatial dim %d of input '%s' is too large", dim,
                              eng_infer_in_name(c, 0));
    if (padded < ext)
        return eng_infer_fail(c, ROUSE_EMISMATCH,
                              "input '%s' has size %lld (padded %lld) at spatial dim %d, smaller "
                              "than the kernel extent %lld",
                              eng_infer_in_name(c, 0), (long long)size, (long long)padded, dim,
                              (long long)ext);
    int64_t span = padded - ext;
    int64_t o = span / s + 1;
    if (w->ceil_mode && w->auto_pad == ENG_AUTOPAD_NOTSET && span % s) {
        o++;
        /* The last window must start inside the input or the left padding
         * (the ONNX and PyTorch rule); otherwise it would cover only padding. */
        if ((o - 1) * s >= size + *w->pad_begin) o--;
    }
    *out = o;
    return 0;
}

const char *ops_shp(struct ops_shapebuf *b, int slot, int rank, const int64_t *shape)
{
    return eng_shape_str(rank, shape, b->s[slot], sizeof(b->s[slot]));
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int ops_norm_axes(eng_infer_ctx *c, const char *what, int64_t *axes, int n, int rank)
{
    for (int i = 0; i < n; i++) {
        if (axes[i] < -(int64_t)rank || axes[i] >= rank)
            return eng_infer_fail(c, ROUSE_EMISMATCH, "%s %lld is out of range for rank %d", what,
                                  (long long)axes[i], rank);
        if (axes[i] < 0) axes[i] += rank;
    }
    qsort(axes, (size_t)n, sizeof(axes[0]), cmp_i64);
    for (int i = 1; i < n; i++)
        if (axes[i] == axes[i - 1])
            return eng_infer_fail(c, ROUSE_EMISMATCH, "%s %lld appears more than once", what,
                                  (long long)axes[i]);
    return 0;
}

int ops_ref_status(const eng_node *n, rouse_errbuf *eb, int rc, const eng_tensor *x)
{
    if (rc == ROUSE_EUNSUPPORTED)
        return eng_run_fail(n, eb, rc, "element type %s is not supported",
                            eng_dtype_name(x ? x->dtype : 0));
    return eng_run_fail(n, eb, rc, "%s", rouse_strerror(rc));
}

bool ops_bool_valid(const bool *b)
{
    unsigned char v;
    memcpy(&v, b, 1);
    return v <= 1;
}
