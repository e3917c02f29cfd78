/*
 * Window attributes shared by the described convolution-like ops (see
 * window.h): the ONNX rules for kernel_shape, strides, dilations, pads and
 * auto_pad, checked once at load.
 */
#include "engine/ops/window.h"

#include <stdio.h>

static int agree(const eng_attr_ctx *c, const char *name, int count, int mul, int *n_spatial)
{
    char what[128];
    if (count < 0) return 0;
    if (count % mul) {
        snprintf(what, sizeof(what), "must have an even number of values, got %d", count);
        return eng_attr_err(c, ROUSE_EFORMAT, name, what);
    }
    int n = count / mul;
    if (n == 0) return eng_attr_err(c, ROUSE_EFORMAT, name, "must not be empty");
    if (*n_spatial == 0) {
        if (n > ENG_MAX_SPATIAL) {
            snprintf(what, sizeof(what), "has %d spatial dimensions, at most %d are supported", n,
                     ENG_MAX_SPATIAL);
            return eng_attr_err(c, ROUSE_EUNSUPPORTED, name, what);
        }
        *n_spatial = n;
        return 0;
    }
    if (n != *n_spatial) {
        snprintf(what, sizeof(what), "must have %d values, got %d", *n_spatial * mul, count);
        return eng_attr_err(c, ROUSE_EFORMAT, name, what);
    }
    return 0;
}

static int in_range(const eng_attr_ctx *c, const char *name, const int64_t *v, int count,
                    int64_t lo)
{
    for (int i = 0; i < count; i++) {
        if (v[i] < lo || v[i] > WINDOW_MAX_DIM) {
            char what[128];
            snprintf(what, sizeof(what), "has invalid value %lld at index %d (must be %s)",
                     (long long)v[i], i, lo > 0 ? ">= 1" : ">= 0");
            return eng_attr_err(c, ROUSE_EFORMAT, name, what);
        }
    }
    return 0;
}

int window_parse(const eng_attr_ctx *c, eng_conv_attrs *a, bool need_kernel, bool has_dilations,
                 bool has_group)
{
    enum { MAXV = 2 * ENG_MAX_RANK };
    static const char *const pads[] = {"NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID", NULL};
    int64_t k[MAXV], s[MAXV], d[MAXV], p[MAXV];
    int nk, ns, nd = -1, np, rc;

    if ((rc = eng_attr_ints(c, "kernel_shape", MAXV, &nk, k)) < 0) return rc;
    if ((rc = eng_attr_ints(c, "strides", MAXV, &ns, s)) < 0) return rc;
    if (has_dilations && (rc = eng_attr_ints(c, "dilations", MAXV, &nd, d)) < 0) return rc;
    if ((rc = eng_attr_ints(c, "pads", MAXV, &np, p)) < 0) return rc;
    if (need_kernel && nk < 0) return eng_attr_err(c, ROUSE_EFORMAT, "kernel_shape", "is required");
    a->n_spatial = 0;
    if ((rc = agree(c, "kernel_shape", nk, 1, &a->n_spatial)) < 0 ||
        (rc = agree(c, "strides", ns, 1, &a->n_spatial)) < 0 ||
        (rc = agree(c, "dilations", nd, 1, &a->n_spatial)) < 0 ||
        (rc = agree(c, "pads", np, 2, &a->n_spatial)) < 0)
        return rc;
    if ((rc = in_range(c, "kernel_shape", k, nk, 1)) < 0 ||
        (rc = in_range(c, "strides", s, ns, 1)) < 0 ||
        (rc = in_range(c, "dilations", d, nd, 1)) < 0 || (rc = in_range(c, "pads", p, np, 0)) < 0)
        return rc;
    int n = a->n_spatial;
    for (int i = 0; i < ENG_MAX_SPATIAL; i++) {
        a->kernel[i] = nk > 0 && i < n ? k[i] : 0;
        a->stride[i] = ns > 0 && i < n ? s[i] : 1;
        a->dilation[i] = nd > 0 && i < n ? d[i] : 1;
        a->pad_begin[i] = np > 0 && i < n ? p[i] : 0;
        a->pad_end[i] = np > 0 && i < n ? p[n + i] : 0;
    }
    a->group = 1;
    if (has_group) {
        if ((rc = eng_attr_int(c, "group", 1, &a->group)) < 0) return rc;
        if (a->group < 1 || a->group > WINDOW_MAX_DIM) {
            char what[96];
            snprintf(what, sizeof(what), "must be >= 1, got %lld", (long long)a->group);
            return eng_attr_err(c, ROUSE_EFORMAT, "group", what);
        }
    }
    return eng_attr_choice(c, "auto_pad", pads, ENG_AUTOPAD_NOTSET, &a->auto_pad);
}

bool window_valid(const eng_conv_attrs *a)
{
    if (a->n_spatial < 0 || a->n_spatial > ENG_MAX_SPATIAL || a->group < 1 ||
        a->group > WINDOW_MAX_DIM || a->auto_pad < ENG_AUTOPAD_NOTSET ||
        a->auto_pad > ENG_AUTOPAD_VALID)
        return false;
    for (int i = 0; i < ENG_MAX_SPATIAL; i++) {
        /* kernel 0 = taken from the weight shape at inference */
        if (a->kernel[i] < 0 || a->kernel[i] > WINDOW_MAX_DIM) return false;
        if (a->stride[i] < 1 || a->stride[i] > WINDOW_MAX_DIM) return false;
        if (a->dilation[i] < 1 || a->dilation[i] > WINDOW_MAX_DIM) return false;
        if (a->pad_begin[i] < 0 || a->pad_begin[i] > WINDOW_MAX_DIM) return false;
        if (a->pad_end[i] < 0 || a->pad_end[i] > WINDOW_MAX_DIM) return false;
    }
    return true;
}

int window_out(eng_infer_ctx *c, int dim, int64_t size, int64_t kernel, int64_t stride,
               int64_t dilation, int auto_pad, int64_t *pad_begin, int64_t *pad_end, int64_t *out)
{
    int64_t ext = (kernel - 1) * dilation + 1;
    if (auto_pad == ENG_AUTOPAD_SAME_UPPER || auto_pad == ENG_AUTOPAD_SAME_LOWER) {
        int64_t o = size / stride + (size % stride != 0);
        int64_t total = o > 0 ? (o - 1) * stride + ext - size : 0;
        if (total < 0) total = 0;
        int64_t small = total / 2, big = total - total / 2;
        *pad_begin = auto_pad == ENG_AUTOPAD_SAME_UPPER ? small : big;
        *pad_end = auto_pad == ENG_AUTOPAD_SAME_UPPER ? big : small;
        *out = o;
        return 0;
    }
    if (auto_pad == ENG_AUTOPAD_VALID) *pad_begin = *pad_end = 0;
    int64_t padded;
    if (__builtin_add_overflow(size, *pad_begin + *pad_end, &padded))
        return eng_infer_fail(c, ROUSE_EINVAL, "spatial dim %d of input '%s' is too large", dim,
                              eng_infer_in_name(c, 0));
    if (padded < ext)
        return eng_infer_fail(c, ROUSE_EMISMATCH,
                              "input '%s' has size %lld (padded %lld) at spatial dim %d, smaller "
                              "than the kernel extent %lld",
                              eng_infer_in_name(c, 0), (long long)size, (long long)padded, dim,
                              (long long)ext);
    *out = (padded - ext) / stride + 1;
    return 0;
}
