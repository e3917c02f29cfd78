/*
 * Reference Gemm and MatMul. Floating-point products are summed in double
 * (over column tiles kept on the stack, so that B is read along its rows);
 * integer products wrap modulo 2^64 and are truncated to the element type,
 * which is what two's-complement hardware and numpy give on overflow.
 */
#include "engine/ref/ref.h"

#include <string.h>

#include "engine/ref/ref_util.h"
#include "rouse/err.h"

enum { MM_TILE = 64 };

/* y[i, j] = alpha * sum_k a(i, k) * b(k, j) + beta * c(i, j) for an
 * [m, n] row-major y, where a(i, k) = a[i * a_rs + k * a_cs] and likewise
 * for b and c (c may be NULL, and its strides may be 0 for broadcasting). */
static void mm_f32(int64_t m, int64_t n, int64_t k, const float *a, int64_t a_rs, int64_t a_cs,
                   const float *b, int64_t b_rs, int64_t b_cs, double alpha, double beta,
                   const float *c, int64_t c_rs, int64_t c_cs, float *y)
{
    double acc[MM_TILE];
    for (int64_t i = 0; i < m; i++) {
        for (int64_t j0 = 0; j0 < n; j0 += MM_TILE) {
            int64_t jn = n - j0 < MM_TILE ? n - j0 : MM_TILE;
            for (int64_t jj = 0; jj < jn; jj++)
                acc[jj] = 0.0;
            for (int64_t kk = 0; kk < k; kk++) {
                double av = a[i * a_rs + kk * a_cs];
                const float *br = b + kk * b_rs + j0 * b_cs;
                for (int64_t jj = 0; jj < jn; jj++)
                    acc[jj] += av * (double)br[jj * b_cs];
            }
            for (int64_t jj = 0; jj < jn; jj++) {
                double v = alpha * acc[jj];
                if (c) v += beta * (double)c[i * c_rs + (j0 + jj) * c_cs];
                y[i * n + j0 + jj] = (float)v;
            }
        }
    }
}

/* Row-major y[m, n] = a[m, k] * b[k, n] in double, with the same tiling. */
static void mm_f64(int64_t m, int64_t n, int64_t k, const double *a, const double *b, double *y)
{
    double acc[MM_TILE];
    for (int64_t i = 0; i < m; i++) {
        for (int64_t j0 = 0; j0 < n; j0 += MM_TILE) {
            int64_t jn = n - j0 < MM_TILE ? n - j0 : MM_TILE;
            for (int64_t jj = 0; jj < jn; jj++)
                acc[jj] = 0.0;
            for (int64_t kk = 0; kk < k; kk++) {
                double av = a[i * k + kk];
                const double *br = b + kk * n + j0;
                for (int64_t jj = 0; jj < jn; jj++)
                    acc[jj] += av * br[jj];
            }
            memcpy(y + i * n + j0, acc, (size_t)jn * sizeof(*acc));
        }
    }
}

/* Integer matmuls: sums in uint64 so that overflow wraps instead of being
 * undefined, then truncated to the element type. */
#define DEFINE_MM_INT(name, T)                                                                     \
    static void name(int64_t m, int64_t n, int64_t k, const T *a, const T *b, T *y)                \
    {                                                                                              \
        for (int64_t i = 0; i < m; i++)                                                            \
            for (int64_t j = 0; j < n; j++) {                                                      \
                uint64_t acc = 0;                                                                  \
                for (int64_t kk = 0; kk < k; kk++)                                                 \
                    acc += (uint64_t)a[i * k + kk] * (uint64_t)b[kk * n + j];                      \
                y[i * n + j] = (T)acc;                                                             \
            }                                                                                      \
    }
DEFINE_MM_INT(mm_i32, int32_t)
DEFINE_MM_INT(mm_i64, int64_t)
DEFINE_MM_INT(mm_u32, uint32_t)
DEFINE_MM_INT(mm_u64, uint64_t)
#undef DEFINE_MM_INT

int ref_gemm(const eng_gemm_attrs *a, const eng_tensor *A, const eng_tensor *B, const eng_tensor *C,
             eng_tensor *Y)
{
    if (A->dtype != ENG_DT_FLOAT || B->dtype != ENG_DT_FLOAT || Y->dtype != ENG_DT_FLOAT ||
        (C && C->dtype != ENG_DT_FLOAT))
        return ROUSE_EUNSUPPORTED;
    if (A->rank != 2 || B->rank != 2 || Y->rank != 2) return ROUSE_EMISMATCH;
    int64_t m = a->trans_a ? A->shape[1] : A->shape[0];
    int64_t k = a->trans_a ? A->shape[0] : A->shape[1];
    int64_t kb = a->trans_b ? B->shape[1] : B->shape[0];
    int64_t n = a->trans_b ? B->shape[0] : B->shape[1];
    if (k != kb || Y->shape[0] != m || Y->shape[1] != n) return ROUSE_EMISMATCH;

    /* C's strides as seen from Y: 0 along a broadcast dim. */
    int64_t cs[2] = {0, 0};
    if (C) {
        int rc = ref_bcast_strides(C->rank, C->shape, 2, Y->shape, cs);
        if (rc < 0) return rc;
    }
    mm_f32(m, n, k, A->data, a->trans_a ? 1 : k, a->trans_a ? m : 1, B->data, a->trans_b ? 1 : n,
           a->trans_b ? k : 1, a->alpha, a->beta, C ? C->data : NULL, cs[0], cs[1], Y->data);
    return 0;
}

/* One [m, k] x [k, n] product of element type dtype (already validated). */
static void mm_one(int dtype, int64_t m, int64_t n, int64_t k, const void *a, const void *b,
                   void *y)
{
    switch (dtype) {
    case ENG_DT_FLOAT:
        mm_f32(m, n, k, a, k, 1, b, n, 1, 1.0, 0.0, NULL, 0, 0, y);
        break;
    case ENG_DT_DOUBLE:
        mm_f64(m, n, k, a, b, y);
        break;
    case ENG_DT_INT32:
        mm_i32(m, n, k, a, b, y);
        break;
    case ENG_DT_INT64:
        mm_i64(m, n, k, a, b, y);
        break;
    case ENG_DT_UINT32:
        mm_u32(m, n, k, a, b, y);
        break;
    case ENG_DT_UINT64:
        mm_u64(m, n, k, a, b, y);
        break;
    default:
        break;
    }
}

int ref_matmul(const eng_tensor *a, const eng_tensor *b, eng_tensor *y)
{
    switch (a->dtype) {
    case ENG_DT_FLOAT:
    case ENG_DT_DOUBLE:
    case ENG_DT_INT32:
    case ENG_DT_INT64:
    case ENG_DT_UINT32:
    case ENG_DT_UINT64:
        break;
    default:
        return ROUSE_EUNSUPPORTED;
    }
    if (b->dtype != a->dtype || y->dtype != a->dtype) return ROUSE_EUNSUPPORTED;
    if (a->rank < 1 || b->rank < 1) return ROUSE_EMISMATCH;

    /* numpy promotion: a 1-D a is a row [1, K], a 1-D b a column [K, 1],
     * and the promoted dim is dropped from the result. */
    const bool a_mat = a->rank >= 2, b_mat = b->rank >= 2;
    const int64_t m = a_mat ? a->shape[a->rank - 2] : 1;
    const int64_t k = a->shape[a->rank - 1];
    const int64_t kb = b_mat ? b->shape[b->rank - 2] : b->shape[0];
    const int64_t n = b_mat ? b->shape[b->rank - 1] : 1;
    if (k != kb) return ROUSE_EMISMATCH;
    const int ra = a_mat ? a->rank - 2 : 0, rb = b_mat ? b->rank - 2 : 0;

    int rbatch;
    int64_t batch[ENG_MAX_RANK];
    int rc = ref_bcast_shape(ra, a->shape, rb, b->shape, &rbatch, batch);
    if (rc < 0) return rc;
    if (y->rank != rbatch + a_mat + b_mat) return ROUSE_EMISMATCH;
    if (!eng_shape_equal(rbatch, batch, rbatch, y->shape)) return ROUSE_EMISMATCH;
    if (a_mat && y->shape[rbatch] != m) return ROUSE_EMISMATCH;
    if (b_mat && y->shape[y->rank - 1] != n) return ROUSE_EMISMATCH;

    /* Batch strides are counted in whole matrices. */
    int64_t sa[ENG_MAX_RANK], sb[ENG_MAX_RANK], sy[ENG_MAX_RANK];
    if ((rc = ref_bcast_strides(ra, a->shape, rbatch, batch, sa)) < 0) return rc;
    if ((rc = ref_bcast_strides(rb, b->shape, rbatch, batch, sb)) < 0) return rc;
    if ((rc = ref_bcast_strides(rbatch, batch, rbatch, batch, sy)) < 0) return rc;
    if (eng_shape_numel(rbatch, batch) == 0 || m == 0 || n == 0) return 0;

    const size_t es = eng_dtype_size(a->dtype);
    const int64_t *const strides[3] = {sa, sb, sy};
    int64_t idx[ENG_MAX_RANK] = {0}, off[3] = {0, 0, 0};
    do {
        mm_one(a->dtype, m, n, k, (const char *)a->data + (size_t)(off[0] * m * k) * es,
               (const char *)b->data + (size_t)(off[1] * k * n) * es,
               (char *)y->data + (size_t)(off[2] * m * n) * es);
    } while (ref_index_next(rbatch, batch, idx, 3, strides, off));
    return 0;
}
