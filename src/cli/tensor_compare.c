/*
 * Tolerance comparison of tensors (see tensor_compare.h for the rule).
 * Elements are read with memcpy because engine outputs and decoded .pb data
 * carry no alignment promise.
 */
#include "cli/tensor_compare.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    uint32_t bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else {
            /* Subnormal: normalise the mantissa into a float exponent. */
            exp = 127 - 15 + 1;
            while (!(mant & 0x400)) {
                mant <<= 1;
                exp--;
            }
            bits = sign | exp << 23 | (mant & 0x3ff) << 13;
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | mant << 13;
    } else {
        bits = sign | (exp + 127 - 15) << 23 | mant << 13;
    }
    float f;
    memcpy(&f, &bits, sizeof(f));
    return f;
}

double cli_elem_as_double(int dtype, const void *data, int64_t i)
{
    const unsigned char *p = data;
    switch (dtype) {
    case ROUSE_DT_FLOAT: {
        float f;
        memcpy(&f, p + (size_t)i * 4, 4);
        return f;
    }
    case ROUSE_DT_DOUBLE: {
        double d;
        memcpy(&d, p + (size_t)i * 8, 8);
        return d;
    }
    case ROUSE_DT_FLOAT16: {
        uint16_t h;
        memcpy(&h, p + (size_t)i * 2, 2);
        return half_to_float(h);
    }
    case ROUSE_DT_BFLOAT16: {
        uint16_t h;
        memcpy(&h, p + (size_t)i * 2, 2);
        uint32_t bits = (uint32_t)h << 16;
        float f;
        memcpy(&f, &bits, sizeof(f));
        return f;
    }
    default:
        return 0;
    }
}

static bool is_float_type(int dtype)
{
    return dtype == ROUSE_DT_FLOAT || dtype == ROUSE_DT_DOUBLE || dtype == ROUSE_DT_FLOAT16 ||
           dtype == ROUSE_DT_BFLOAT16;
}

/* Integer and bool elements widened so that every value of every type
 * compares exactly: signed ones into int64, unsigned ones into uint64. */
typedef struct int_elem {
    bool is_unsigned;
    int64_t s;
    uint64_t u;
} int_elem;

static int_elem int_elem_at(int dtype, const void *data, int64_t i)
{
    const unsigned char *p = data;
    int_elem e = {0};
    switch (dtype) {
    case ROUSE_DT_INT8: {
        int8_t v;
        memcpy(&v, p + i, 1);
        e.s = v;
        break;
    }
    case ROUSE_DT_INT16: {
        int16_t v;
        memcpy(&v, p + (size_t)i * 2, 2);
        e.s = v;
        break;
    }
    case ROUSE_DT_INT32: {
        int32_t v;
        memcpy(&v, p + (size_t)i * 4, 4);
        e.s = v;
        break;
    }
    case ROUSE_DT_INT64:
        memcpy(&e.s, p + (size_t)i * 8, 8);
        break;
    case ROUSE_DT_BOOL:
    case ROUSE_DT_UINT8:
        e.u = p[i], e.is_unsigned = true;
        break;
    case ROUSE_DT_UINT16: {
        uint16_t v;
        memcpy(&v, p + (size_t)i * 2, 2);
        e.u = v, e.is_unsigned = true;
        break;
    }
    case ROUSE_DT_UINT32: {
        uint32_t v;
        memcpy(&v, p + (size_t)i * 4, 4);
        e.u = v, e.is_unsigned = true;
        break;
    }
    case ROUSE_DT_UINT64:
        memcpy(&e.u, p + (size_t)i * 8, 8), e.is_unsigned = true;
        break;
    default:
        break;
    }
    return e;
}

static double int_elem_double(int_elem e)
{
    return e.is_unsigned ? (double)e.u : (double)e.s;
}

static void int_elem_str(int dtype, int_elem e, char *buf, size_t len)
{
    if (dtype == ROUSE_DT_BOOL)
        snprintf(buf, len, "%s", e.u ? "true" : "false");
    else if (e.is_unsigned)
        snprintf(buf, len, "%llu", (unsigned long long)e.u);
    else
        snprintf(buf, len, "%lld", (long long)e.s);
}

char *cli_shape_str(int rank, const int64_t *shape, char *buf, size_t buf_len)
{
    if (!buf_len) return buf;
    size_t off = (size_t)snprintf(buf, buf_len, "[");
    for (int i = 0; i < rank && off < buf_len; i++)
        off += (size_t)snprintf(buf + off, buf_len - off, "%s%lld", i ? ", " : "",
                                (long long)shape[i]);
    if (off < buf_len) snprintf(buf + off, buf_len - off, "]");
    return buf;
}

/* Multi-index of flat index i, as "[0, 17]". */
static void index_str(int rank, const int64_t *shape, int64_t i, char *buf, size_t len)
{
    int64_t idx[ROUSE_MAX_RANK];
    for (int d = rank - 1; d >= 0; d--) {
        idx[d] = shape[d] ? i % shape[d] : 0;
        i = shape[d] ? i / shape[d] : 0;
    }
    cli_shape_str(rank, idx, buf, len);
}

static int check_size(const rouse_tensor *t, const char *which, int64_t *n, rouse_errbuf *eb)
{
    size_t es = rouse_dtype_size(t->dtype);
    if (t->rank < 0 || t->rank > ROUSE_MAX_RANK)
        return rouse_err_set(eb, ROUSE_EINVAL, "%s has rank %d", which, t->rank);
    int64_t count = 1;
    for (int d = 0; d < t->rank; d++) {
        if (t->shape[d] < 0 || (t->shape[d] && count > INT64_MAX / t->shape[d]))
            return rouse_err_set(eb, ROUSE_EINVAL, "%s has a bad shape", which);
        count *= t->shape[d];
    }
    if ((uint64_t)count > SIZE_MAX / es || (size_t)count * es != t->nbytes)
        return rouse_err_set(eb, ROUSE_EINVAL, "%s holds %zu bytes, its shape needs %lld x %zu",
                             which, t->nbytes, (long long)count, es);
    *n = count;
    return 0;
}

int cli_tensor_compare(const rouse_tensor *got, const rouse_tensor *ref, cli_tolerance tol,
                       cli_compare_result *res, rouse_errbuf *eb)
{
    memset(res, 0, sizeof(*res));
    res->first_bad = -1;
    char a[160], b[160];
    if (got->dtype != ref->dtype)
        return rouse_err_set(eb, ROUSE_EMISMATCH, "type %s differs from the reference type %s",
                             rouse_dtype_name(got->dtype), rouse_dtype_name(ref->dtype));
    if (rouse_dtype_size(ref->dtype) == 0)
        return rouse_err_set(eb, ROUSE_EUNSUPPORTED, "cannot compare elements of type %s",
                             rouse_dtype_name(ref->dtype));
    if (got->rank != ref->rank ||
        (ref->rank > 0 && memcmp(got->shape, ref->shape, sizeof(int64_t) * (size_t)ref->rank)))
        return rouse_err_set(eb, ROUSE_EMISMATCH, "shape %s differs from the reference shape %s",
                             cli_shape_str(got->rank, got->shape, a, sizeof(a)),
                             cli_shape_str(ref->rank, ref->shape, b, sizeof(b)));
    int64_t n;
    int rc;
    if ((rc = check_size(got, "the output", &n, eb)) < 0) return rc;
    if ((rc = check_size(ref, "the reference", &n, eb)) < 0) return rc;

    bool fp = is_float_type(ref->dtype);
    char got_s[48] = "", ref_s[48] = "";
    for (int64_t i = 0; i < n; i++) {
        double g, r;
        bool bad;
        if (fp) {
            g = cli_elem_as_double(got->dtype, got->data, i);
            r = cli_elem_as_double(ref->dtype, ref->data, i);
            if (isnan(g) || isnan(r)) {
                bad = !(isnan(g) && isnan(r));
            } else if (g == r) {
                bad = false; /* also equal infinities */
            } else {
                double d = fabs(g - r);
                if (isinf(d)) {
                    bad = true;
                } else {
                    if (d > res->max_abs) res->max_abs = d;
                    if (r != 0 && d / fabs(r) > res->max_rel) res->max_rel = d / fabs(r);
                    bad = d > tol.atol + tol.rtol * fabs(r);
                }
            }
        } else {
            int_elem ge = int_elem_at(got->dtype, got->data, i);
            int_elem re = int_elem_at(ref->dtype, ref->data, i);
            bad = ge.s != re.s || ge.u != re.u;
            g = int_elem_double(ge);
            r = int_elem_double(re);
            if (bad) {
                double d = fabs(g - r);
                if (d > res->max_abs) res->max_abs = d;
                if (r != 0 && d / fabs(r) > res->max_rel) res->max_rel = d / fabs(r);
            }
            if (bad && res->first_bad < 0) {
                int_elem_str(got->dtype, ge, got_s, sizeof(got_s));
                int_elem_str(ref->dtype, re, ref_s, sizeof(ref_s));
            }
        }
        if (!bad) continue;
        if (res->first_bad < 0) {
            res->first_bad = i;
            if (fp) {
                snprintf(got_s, sizeof(got_s), "%.9g", g);
                snprintf(ref_s, sizeof(ref_s), "%.9g", r);
            }
        }
        res->n_bad++;
    }
    if (res->n_bad == 0) return 0;
    index_str(ref->rank, ref->shape, res->first_bad, a, sizeof(a));
    return rouse_err_set(eb, ROUSE_EMISMATCH,
                         "%lld of %lld elements outside tolerance; first at index %lld %s: got %s "
                         "expected %s",
                         (long long)res->n_bad, (long long)n, (long long)res->first_bad, a, got_s,
                         ref_s);
}
