/*
 * Reference data-movement kernels: Transpose, Concat and the plain copy
 * behind Identity, Reshape, Flatten and inference-mode Dropout. They move
 * bytes and so work for any element type with a size.
 */
#include "engine/ref/ref.h"

#include <string.h>

#include "engine/ref/ref_util.h"
#include "rouse/err.h"

int ref_transpose(const int64_t *perm, const eng_tensor *x, eng_tensor *y)
{
    const size_t es = eng_dtype_size(x->dtype);
    if (es == 0 || y->dtype != x->dtype) return ROUSE_EUNSUPPORTED;
    const int r = x->rank;
    if (y->rank != r) return ROUSE_EMISMATCH;

    /* y's dim d is x's dim perm[d]; each x dim is used exactly once. */
    bool seen[ENG_MAX_RANK] = {false};
    int64_t xstride[ENG_MAX_RANK], sx[ENG_MAX_RANK], sy[ENG_MAX_RANK];
    int64_t step = 1;
    for (int d = r - 1; d >= 0; d--) {
        xstride[d] = step;
        step *= x->shape[d];
    }
    for (int d = 0; d < r; d++) {
        if (perm[d] < 0 || perm[d] >= r || seen[perm[d]]) return ROUSE_EINVAL;
        seen[perm[d]] = true;
    }
    for (int d = 0; d < r; d++) {
        if (y->shape[d] != x->shape[perm[d]]) return ROUSE_EMISMATCH;
        sx[d] = xstride[perm[d]];
    }
    step = 1;
    for (int d = r - 1; d >= 0; d--) {
        sy[d] = step;
        step *= y->shape[d];
    }
    if (eng_tensor_numel(y) == 0) return 0;

    const int64_t *const strides[2] = {sx, sy};
    int64_t idx[ENG_MAX_RANK] = {0}, off[2] = {0, 0};
    const char *xs = x->data;
    char *ys = y->data;
    do {
        memcpy(ys + (size_t)off[1] * es, xs + (size_t)off[0] * es, es);
    } while (ref_index_next(r, y->shape, idx, 2, strides, off));
    return 0;
}

int ref_concat(int64_t axis, int n, const eng_tensor *const *xs, eng_tensor *y)
{
    const size_t es = eng_dtype_size(y->dtype);
    if (es == 0) return ROUSE_EUNSUPPORTED;
    if (n < 1 || axis < 0 || axis >= y->rank) return ROUSE_EINVAL;

    /* Every input must match y except along the axis, where they add up. */
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        if (xs[i]->dtype != y->dtype) return ROUSE_EUNSUPPORTED;
        if (xs[i]->rank != y->rank) return ROUSE_EMISMATCH;
        for (int d = 0; d < y->rank; d++)
            if (d != axis && xs[i]->shape[d] != y->shape[d]) return ROUSE_EMISMATCH;
        total += xs[i]->shape[axis];
    }
    if (total != y->shape[axis]) return ROUSE_EMISMATCH;

    /* Viewed as [outer, axis * inner], each input contributes one
     * contiguous run per outer index. */
    const int64_t outer = eng_shape_numel((int)axis, y->shape);
    const int64_t inner = eng_shape_numel(y->rank - (int)axis - 1, y->shape + axis + 1);
    const size_t y_row = (size_t)(y->shape[axis] * inner) * es;
    size_t col = 0; /* byte offset of the current input within a y row */
    for (int i = 0; i < n; i++) {
        const size_t run = (size_t)(xs[i]->shape[axis] * inner) * es;
        const char *src = xs[i]->data;
        char *dst = (char *)y->data + col;
        if (run > 0) /* an empty input may have no buffer at all */
            for (int64_t o = 0; o < outer; o++)
                memcpy(dst + (size_t)o * y_row, src + (size_t)o * run, run);
        col += run;
    }
    return 0;
}

int ref_copy(const eng_tensor *x, eng_tensor *y)
{
    if (eng_dtype_size(x->dtype) == 0) return ROUSE_EUNSUPPORTED;
    const int64_t nb = eng_tensor_nbytes(x);
    if (nb < 0 || eng_tensor_nbytes(y) != nb) return ROUSE_EMISMATCH;
    if (y->data != x->data && nb > 0) memcpy(y->data, x->data, (size_t)nb);
    return 0;
}
