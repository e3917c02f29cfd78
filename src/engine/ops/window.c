/*
 * Window attributes of the described convolution-like ops with an
 * eng_conv_attrs record (see window.h), on the shared window geometry of
 * ops/common.c.
 */
#include "engine/ops/window.h"

int window_parse(const eng_attr_ctx *c, eng_conv_attrs *a, bool need_kernel, bool has_dilations,
                 bool has_group)
{
    struct ops_window w = {&a->n_spatial, a->kernel,    a->stride,
                           a->dilation,   a->pad_begin, a->pad_end};
    int rc;
    if ((rc = ops_parse_window(c, &w, need_kernel, has_dilations)) < 0) return rc;
    a->group = 1;
    if (has_group && (rc = eng_attr_int(c, "group", 1, &a->group)) < 0) return rc;
    return ops_parse_auto_pad(c, &a->auto_pad);
}

int window_check(const eng_node *n, rouse_errbuf *eb, const eng_conv_attrs *a, bool need_kernel)
{
    int rc = ops_check_window(n, eb, a->n_spatial, a->kernel, a->stride, a->dilation, a->pad_begin,
                              a->pad_end, a->auto_pad, need_kernel);
    if (rc < 0) return rc;
    if (a->group < 1 || a->group > OPS_MAX_DIM)
        return eng_check_fail(n, eb, ROUSE_EFORMAT, "group", "must be >= 1, got %lld",
                              (long long)a->group);
    return 0;
}

int window_out(eng_infer_ctx *c, int dim, int64_t size, int64_t kernel, int64_t stride,
               int64_t dilation, int auto_pad, int64_t *pad_begin, int64_t *pad_end, int64_t *out)
{
    struct ops_window_dim w = {kernel, stride, dilation, pad_begin, pad_end, auto_pad, 0};
    return ops_window_out(c, dim, size, &w, out);
}
