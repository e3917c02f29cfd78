/*
 * Precisions by name, sample sets (the inputs calibration and accuracy
 * checks run on), and the comparison of a lower-precision run's outputs
 * with fp32's. Samples are checked against the model when added, so a
 * sample set that exists fits its model: a wrong name, type, shape or
 * count is an error naming the input, never a failed run later.
 */
#include <dnnl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/precision.h"
#include "engine/quantize.h"
#include "engine/tensor.h"

static const char *const names[] = {"fp32", "bf16", "int8"};

const char *rouse_precision_name(int precision)
{
    return precision >= 0 && precision < 3 ? names[precision] : NULL;
}

int rouse_precision_parse(const char *s, int *out)
{
    for (int i = 0; s && i < 3; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = i;
            return 0;
        }
    }
    return ROUSE_EINVAL;
}

bool eng_bf16_native(void)
{
    unsigned isa = (unsigned)dnnl_get_effective_cpu_isa();
    return (isa & (unsigned)dnnl_cpu_isa_avx512_core_bf16) == (unsigned)dnnl_cpu_isa_avx512_core_bf16;
}

/* --- samples ------------------------------------------------------------------------------ */

int rouse_samples_create(const rouse_model *m, rouse_samples **out, rouse_errbuf *eb)
{
    rouse_samples *s = calloc(1, sizeof(*s));
    if (!s) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    s->n_inputs = rouse_model_n_inputs(m);
    *out = s;
    return 0;
}

void rouse_samples_destroy(rouse_samples *s)
{
    if (!s) return;
    for (int i = 0; i < s->n_samples * s->n_inputs; i++) {
        free((void *)s->t[i].data);
        free((void *)s->t[i].name);
    }
    free(s->t);
    free(s);
}

static void shape_str(int rank, const int64_t *shape, char *buf, size_t len)
{
    eng_shape_str(rank, shape, buf, len);
}

/* Checks that t (dtype, rank, shape) fits model input `ti`. `row` >= 0 names
 * the row of stacked samples in the message. */
static int check_fits(const rouse_tensor_info *ti, int dtype, int rank, const int64_t *shape,
                      rouse_errbuf *eb)
{
    if (dtype != ti->dtype && !(ti->dtype == ROUSE_DT_FLOAT && dtype == ROUSE_DT_DOUBLE))
        return rouse_err_set(eb, ROUSE_EINVAL, "input '%s': samples of type %s, the model takes %s",
                             ti->name, rouse_dtype_name(dtype), rouse_dtype_name(ti->dtype));
    char got[128], want[128];
    shape_str(rank, shape, got, sizeof(got));
    bool ok = ti->rank < 0 || ti->rank == rank;
    for (int k = 0; ok && ti->rank >= 0 && k < rank; k++)
        ok = ti->shape[k] < 0 || ti->shape[k] == shape[k];
    if (!ok) {
        shape_str(ti->rank, ti->shape, want, sizeof(want));
        return rouse_err_set(eb, ROUSE_EINVAL,
                             "input '%s': a sample of shape %s, the model takes %s (-1: any size)",
                             ti->name, got, want);
    }
    return 0;
}

static int find_input(const rouse_model *m, const char *name)
{
    rouse_tensor_info ti;
    for (int i = 0; i < rouse_model_n_inputs(m); i++)
        if (rouse_model_input(m, i, &ti) == 0 && name && strcmp(ti.name, name) == 0) return i;
    return -1;
}

/* Matches inputs[0..n) to the model's inputs: order[k] is the index into
 * inputs of model input k. */
static int match_names(const rouse_model *m, const rouse_tensor *inputs, int n, int *order,
                       rouse_errbuf *eb)
{
    int n_in = rouse_model_n_inputs(m);
    for (int k = 0; k < n_in; k++)
        order[k] = -1;
    for (int j = 0; j < n; j++) {
        int k = find_input(m, inputs[j].name);
        if (k < 0) {
            rouse_tensor_info ti;
            rouse_model_input(m, 0, &ti);
            return rouse_err_set(eb, ROUSE_EINVAL,
                                 "samples for '%s', which is no input of the model (its first "
                                 "input is '%s')",
                                 inputs[j].name ? inputs[j].name : "", n_in ? ti.name : "");
        }
        if (order[k] >= 0)
            return rouse_err_set(eb, ROUSE_EINVAL, "input '%s': samples given twice",
                                 inputs[j].name);
        order[k] = j;
    }
    for (int k = 0; k < n_in; k++) {
        if (order[k] < 0) {
            rouse_tensor_info ti;
            rouse_model_input(m, k, &ti);
            return rouse_err_set(eb, ROUSE_EINVAL, "input '%s': no samples given (%d of %d inputs "
                                 "have them)", ti.name, n, n_in);
        }
    }
    return 0;
}

static int grow(rouse_samples *s, rouse_errbuf *eb)
{
    if (s->n_samples < s->cap_samples) return 0;
    int cap = s->cap_samples ? s->cap_samples * 2 : 16;
    rouse_tensor *t = realloc(s->t, sizeof(*t) * (size_t)cap * (size_t)(s->n_inputs ? s->n_inputs : 1));
    if (!t) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory for samples");
    s->t = t;
    s->cap_samples = cap;
    return 0;
}

/* Copies `count` elements of src (of dtype `from`) into a new tensor of
 * model input ti's type: float64 samples of a float input are narrowed. */
static int copy_in(rouse_tensor *dst, const rouse_tensor_info *ti, int from, const void *src,
                   int rank, const int64_t *shape, rouse_errbuf *eb)
{
    int64_t count = eng_shape_numel(rank, shape);
    size_t es = rouse_dtype_size(ti->dtype);
    if (count < 0 || !es || (uint64_t)count > SIZE_MAX / 2 / es)
        return rouse_err_set(eb, ROUSE_ETOOBIG, "input '%s': sample too large", ti->name);
    size_t nb = (size_t)count * es;
    void *data = malloc(nb ? nb : 1);
    char *name = strdup(ti->name);
    if (!data || !name) {
        free(data);
        free(name);
        return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory for samples");
    }
    if (from == ti->dtype) {
        if (nb) memcpy(data, src, nb);
    } else { /* double -> float (check_fits allows no other) */
        const double *d = src;
        float *f = data;
        for (int64_t i = 0; i < count; i++)
            f[i] = (float)d[i];
    }
    *dst = (rouse_tensor){.name = name, .dtype = ti->dtype, .rank = rank, .data = data,
                          .nbytes = nb};
    memcpy(dst->shape, shape, sizeof(int64_t) * (size_t)rank);
    return 0;
}

static int check_nbytes(const rouse_tensor *t, rouse_errbuf *eb)
{
    int64_t nb = eng_shape_numel(t->rank, t->shape);
    size_t es = rouse_dtype_size(t->dtype);
    if (t->rank < 0 || t->rank > ROUSE_MAX_RANK || !es || nb < 0 ||
        (uint64_t)nb > SIZE_MAX / es || (size_t)nb * es != t->nbytes)
        return rouse_err_set(eb, ROUSE_EINVAL, "input '%s': %zu bytes of data for its shape",
                             t->name ? t->name : "", t->nbytes);
    return 0;
}

static void drop_last(rouse_samples *s, int filled)
{
    rouse_tensor *row = &s->t[(size_t)s->n_samples * (size_t)s->n_inputs];
    for (int k = 0; k < filled; k++) {
        free((void *)row[k].data);
        free((void *)row[k].name);
    }
}

int rouse_samples_add(rouse_samples *s, const rouse_model *m, const rouse_tensor *inputs, int n,
                      rouse_errbuf *eb)
{
    int n_in = s->n_inputs;
    int *order = calloc((size_t)n_in + 1, sizeof(int));
    if (!order) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    int rc = match_names(m, inputs, n, order, eb);
    for (int k = 0; rc == 0 && k < n_in; k++) {
        rouse_tensor_info ti;
        rouse_model_input(m, k, &ti);
        const rouse_tensor *t = &inputs[order[k]];
        if ((rc = check_nbytes(t, eb)) == 0) rc = check_fits(&ti, t->dtype, t->rank, t->shape, eb);
    }
    if (rc == 0) rc = grow(s, eb);
    int filled = 0;
    rouse_tensor *row = rc == 0 ? &s->t[(size_t)s->n_samples * (size_t)n_in] : NULL;
    for (int k = 0; rc == 0 && k < n_in; k++, filled++) {
        rouse_tensor_info ti;
        rouse_model_input(m, k, &ti);
        const rouse_tensor *t = &inputs[order[k]];
        rc = copy_in(&row[k], &ti, t->dtype, t->data, t->rank, t->shape, eb);
    }
    if (rc < 0 && row) drop_last(s, filled);
    if (rc == 0) s->n_samples++;
    free(order);
    return rc;
}

int rouse_samples_add_stacked(rouse_samples *s, const rouse_model *m, const rouse_tensor *inputs,
                              int n, rouse_errbuf *eb)
{
    int n_in = s->n_inputs;
    int *order = calloc((size_t)n_in + 1, sizeof(int));
    if (!order) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    int rc = match_names(m, inputs, n, order, eb);
    int64_t rows = -1;
    for (int k = 0; rc == 0 && k < n_in; k++) {
        rouse_tensor_info ti;
        rouse_model_input(m, k, &ti);
        const rouse_tensor *t = &inputs[order[k]];
        if ((rc = check_nbytes(t, eb)) < 0) break;
        if (t->rank < 1) {
            rc = rouse_err_set(eb, ROUSE_EINVAL,
                               "input '%s': stacked samples need a batch axis (the array is a "
                               "scalar)", ti.name);
            break;
        }
        if (rows >= 0 && t->shape[0] != rows) {
            rc = rouse_err_set(eb, ROUSE_EINVAL,
                               "input '%s': %lld samples, the other inputs have %lld", ti.name,
                               (long long)t->shape[0], (long long)rows);
            break;
        }
        rows = t->shape[0];
        int64_t one[ROUSE_MAX_RANK];
        memcpy(one, t->shape, sizeof(int64_t) * (size_t)t->rank);
        one[0] = 1;
        rc = check_fits(&ti, t->dtype, t->rank, one, eb);
    }
    if (rc == 0 && rows == 0) rc = rouse_err_set(eb, ROUSE_EINVAL, "no samples (0 rows)");
    for (int64_t r = 0; rc == 0 && r < rows; r++) {
        if ((rc = grow(s, eb)) < 0) break;
        rouse_tensor *row = &s->t[(size_t)s->n_samples * (size_t)n_in];
        int filled = 0;
        for (int k = 0; rc == 0 && k < n_in; k++, filled++) {
            rouse_tensor_info ti;
            rouse_model_input(m, k, &ti);
            const rouse_tensor *t = &inputs[order[k]];
            int64_t one[ROUSE_MAX_RANK];
            memcpy(one, t->shape, sizeof(int64_t) * (size_t)t->rank);
            one[0] = 1;
            size_t row_bytes = t->nbytes / (size_t)rows;
            rc = copy_in(&row[k], &ti, t->dtype, (const char *)t->data + (size_t)r * row_bytes,
                         t->rank, one, eb);
        }
        if (rc < 0) drop_last(s, filled);
        else s->n_samples++;
    }
    free(order);
    return rc;
}

/* --- accuracy ----------------------------------------------------------------------------- */

int eng_acc_init(eng_acc *a, const rouse_model *m)
{
    memset(a, 0, sizeof(*a));
    a->n = rouse_model_n_outputs(m);
    a->out = calloc((size_t)a->n + 1, sizeof(*a->out));
    a->ref_max = calloc((size_t)a->n + 1, sizeof(double));
    a->rows = calloc((size_t)a->n + 1, sizeof(int64_t));
    a->agree = calloc((size_t)a->n + 1, sizeof(int64_t));
    if (!a->out || !a->ref_max || !a->rows || !a->agree) return ROUSE_ENOMEM;
    for (int i = 0; i < a->n; i++) {
        rouse_tensor_info ti;
        rouse_model_output(m, i, &ti);
        a->out[i].name = ti.name;
        a->out[i].top1 = -1;
    }
    return 0;
}

void eng_acc_fini(eng_acc *a)
{
    free(a->out);
    free(a->ref_max);
    free(a->rows);
    free(a->agree);
    memset(a, 0, sizeof(*a));
}

static double elem(const rouse_tensor *t, int64_t i)
{
    switch (t->dtype) {
    case ROUSE_DT_FLOAT: return ((const float *)t->data)[i];
    case ROUSE_DT_DOUBLE: return ((const double *)t->data)[i];
    case ROUSE_DT_INT64: return (double)((const int64_t *)t->data)[i];
    case ROUSE_DT_INT32: return ((const int32_t *)t->data)[i];
    case ROUSE_DT_INT8: return ((const int8_t *)t->data)[i];
    case ROUSE_DT_UINT8: return ((const uint8_t *)t->data)[i];
    case ROUSE_DT_BOOL: return ((const uint8_t *)t->data)[i];
    default: return 0;
    }
}

static bool classifier_shaped(const rouse_tensor *t)
{
    bool fl = t->dtype == ROUSE_DT_FLOAT || t->dtype == ROUSE_DT_DOUBLE;
    return fl && ((t->rank == 1 && t->shape[0] >= 2) || (t->rank == 2 && t->shape[1] >= 2));
}

int eng_acc_add(eng_acc *a, int i, const rouse_tensor *ref, const rouse_tensor *got,
                rouse_errbuf *eb)
{
    rouse_output_accuracy *o = &a->out[i];
    if (ref->dtype != got->dtype || !eng_shape_equal(ref->rank, ref->shape, got->rank, got->shape))
        return rouse_err_set(eb, ROUSE_EINTERNAL,
                             "output '%s': the %s run gives another type or shape than fp32",
                             o->name, rouse_precision_name(a->precision));
    int64_t n = eng_shape_numel(ref->rank, ref->shape);
    for (int64_t k = 0; k < n; k++) {
        double r = elem(ref, k), x = elem(got, k), d = fabs(x - r);
        if (isnan(d)) d = INFINITY; /* a NaN where fp32 has a number: as wrong as can be */
        if (d > o->max_abs) o->max_abs = d;
        if (fabs(r) > a->ref_max[i]) a->ref_max[i] = fabs(r);
    }
    if (classifier_shaped(ref)) {
        int64_t c = ref->shape[ref->rank - 1], rows = n / c;
        for (int64_t r = 0; r < rows; r++) {
            int64_t br = 0, bx = 0;
            for (int64_t k = 1; k < c; k++) {
                if (elem(ref, r * c + k) > elem(ref, r * c + br)) br = k;
                if (elem(got, r * c + k) > elem(got, r * c + bx)) bx = k;
            }
            a->agree[i] += br == bx;
        }
        a->rows[i] += rows;
    }
    return 0;
}

void eng_acc_finish(eng_acc *a)
{
    for (int i = 0; i < a->n; i++) {
        rouse_output_accuracy *o = &a->out[i];
        o->top1 = a->rows[i] ? (double)a->agree[i] / (double)a->rows[i] : -1.0;
        o->max_rel = a->ref_max[i] > 0 ? o->max_abs / a->ref_max[i] : (o->max_abs > 0 ? INFINITY : 0);
    }
}
