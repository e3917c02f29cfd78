/*
 * Open Inference Protocol v2 codec (see oip.h).
 *
 * Decoding checks everything the engine would check, and more, before any
 * tensor reaches it, so that a client gets one sentence naming its input:
 * names against the model, datatypes, shapes against the declared ones,
 * element counts, binary sizes against the body, and each element's value
 * against its datatype. Decoded tensors are listed in the model's input
 * order. JSON data is converted into arena buffers; binary data is used in
 * place when it is aligned for its element type (else copied into the
 * arena). Binary data and binary outputs are little-endian, the byte order
 * of every host rouse runs on.
 *
 * Error codes: ROUSE_EFORMAT for malformed JSON or request structure
 * (missing or mistyped fields), ROUSE_EINVAL for unknown, repeated or
 * missing input and output names, ROUSE_EMISMATCH for datatype, shape,
 * size and element-value problems.
 */
#include "worker/oip.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"

/* ---- datatypes ------------------------------------------------------------ */

static const struct {
    const char *name;
    int dtype;
} dtype_names[] = {
    {"BOOL", ROUSE_DT_BOOL},     {"UINT8", ROUSE_DT_UINT8},   {"UINT16", ROUSE_DT_UINT16},
    {"UINT32", ROUSE_DT_UINT32}, {"UINT64", ROUSE_DT_UINT64}, {"INT8", ROUSE_DT_INT8},
    {"INT16", ROUSE_DT_INT16},   {"INT32", ROUSE_DT_INT32},   {"INT64", ROUSE_DT_INT64},
    {"FP16", ROUSE_DT_FLOAT16},  {"FP32", ROUSE_DT_FLOAT},    {"FP64", ROUSE_DT_DOUBLE},
    {"BF16", ROUSE_DT_BFLOAT16},
};

const char *oip_datatype_name(int dtype)
{
    for (size_t i = 0; i < sizeof(dtype_names) / sizeof(dtype_names[0]); i++)
        if (dtype_names[i].dtype == dtype) return dtype_names[i].name;
    return NULL;
}

int oip_datatype_parse(const char *name)
{
    if (!name) return -1;
    for (size_t i = 0; i < sizeof(dtype_names) / sizeof(dtype_names[0]); i++)
        if (strcmp(dtype_names[i].name, name) == 0) return dtype_names[i].dtype;
    return -1;
}

static const char *dt_name(int dtype)
{
    const char *n = oip_datatype_name(dtype);
    return n ? n : rouse_dtype_name(dtype);
}

/* ---- small-float conversions ----------------------------------------------- */

/* Rounds a finite double to a binary float with `mbits` mantissa bits and
 * normal exponents emin..emax (FP16: 10, -14, 15; BF16: 7, -126, 127),
 * round-to-nearest-even in one step. False when it overflows to infinity.
 * Scaling by powers of two is exact, so nearbyint does the only rounding. */
static bool round_small_float(double d, int mbits, int emin, int emax, uint16_t *out)
{
    const uint16_t sign = signbit(d) ? 0x8000 : 0; /* both formats are 16 bits wide */
    double a = fabs(d);
    uint32_t bits;
    if (a < ldexp(1.0, emin)) {
        /* Subnormal (may round up to the smallest normal, whose bits follow). */
        bits = (uint32_t)nearbyint(ldexp(a, mbits - emin));
    } else {
        int ex;
        frexp(a, &ex);
        int e = ex - 1; /* a in [2^e, 2^(e+1)) */
        double r = nearbyint(ldexp(a, mbits - e));
        if (r >= ldexp(1.0, mbits + 1)) {
            r = ldexp(r, -1);
            e++;
        }
        if (e > emax) return false;
        bits = (uint32_t)(e - emin + 1) << mbits | ((uint32_t)r - (1u << mbits));
    }
    *out = (uint16_t)(sign | bits);
    return true;
}

static bool double_to_half(double d, uint16_t *out)
{
    return round_small_float(d, 10, -14, 15, out);
}

static bool double_to_bf16(double d, uint16_t *out)
{
    return round_small_float(d, 7, -126, 127, out);
}

static float half_to_float(uint16_t h)
{
    unsigned e = h >> 10 & 0x1F, m = h & 0x3FF;
    float v;
    if (e == 0) {
        v = ldexpf((float)m, -24);
    } else if (e == 31) {
        v = m ? NAN : INFINITY;
    } else {
        v = ldexpf((float)(m | 0x400), (int)e - 25);
    }
    return h & 0x8000 ? -v : v;
}

static float bf16_to_float(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof(f));
    return f;
}

/* ---- decoding helpers -------------------------------------------------------- */

/* "[1,-1,3]" (or "[?]" for an undeclared rank) into buf. */
static const char *shape_str(int rank, const int64_t *shape, char *buf, size_t len)
{
    if (rank < 0) {
        snprintf(buf, len, "[?]");
        return buf;
    }
    size_t o = 0;
    o += (size_t)snprintf(buf + o, len - o, "[");
    for (int i = 0; i < rank && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s%lld", i ? "," : "", (long long)shape[i]);
    if (o < len) snprintf(buf + o, len - o, "]");
    return buf;
}

/* "'x', 'y'" (the model's input or output names) into buf. */
static const char *names_str(const rouse_model *m, bool outputs, char *buf, size_t len)
{
    int n = outputs ? rouse_model_n_outputs(m) : rouse_model_n_inputs(m);
    size_t o = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && o < len; i++) {
        rouse_tensor_info ti;
        if ((outputs ? rouse_model_output(m, i, &ti) : rouse_model_input(m, i, &ti)) < 0) break;
        o += (size_t)snprintf(buf + o, len - o, "%s'%s'", i ? ", " : "", ti.name);
    }
    return buf;
}

static int find_name(const rouse_model *m, bool outputs, const char *name)
{
    int n = outputs ? rouse_model_n_outputs(m) : rouse_model_n_inputs(m);
    for (int i = 0; i < n; i++) {
        rouse_tensor_info ti;
        if ((outputs ? rouse_model_output(m, i, &ti) : rouse_model_input(m, i, &ti)) == 0 &&
            strcmp(ti.name, name) == 0)
            return i;
    }
    return -1;
}

/* Why element `index` (the JSON value v) cannot become dtype. */
static int element_error(rouse_errbuf *eb, const char *input, size_t index, const json_value *v,
                         int dtype)
{
    if (dtype == ROUSE_DT_BOOL)
        return rouse_err_set(eb, ROUSE_EMISMATCH,
                             "input '%s': element %zu is %s, but BOOL needs true or false", input,
                             index, json_type_name(v->type));
    if (v->type != JSON_NUMBER)
        return rouse_err_set(eb, ROUSE_EMISMATCH, "input '%s': element %zu is %s, not a number",
                             input, index, json_type_name(v->type));
    char num[40];
    if (v->u.num.is_int) {
        snprintf(num, sizeof(num), "%lld", (long long)v->u.num.i);
    } else if (v->u.num.is_uint) {
        snprintf(num, sizeof(num), "%llu", (unsigned long long)(uint64_t)v->u.num.i);
    } else {
        /* The shortest form that reads back as the same double. */
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(num, sizeof(num), "%.*g", prec, v->u.num.d);
            if (strtod(num, NULL) == v->u.num.d) break;
        }
    }
    const double d = v->u.num.d;
    bool int_type = dtype != ROUSE_DT_FLOAT && dtype != ROUSE_DT_DOUBLE &&
                    dtype != ROUSE_DT_FLOAT16 && dtype != ROUSE_DT_BFLOAT16;
    if (int_type && d != floor(d))
        return rouse_err_set(eb, ROUSE_EMISMATCH,
                             "input '%s': element %zu: %s is not an integer (%s)", input, index,
                             num, dt_name(dtype));
    /* Only INT64 and UINT64 hold integral doubles that still fail: beyond
     * 2^53, only an integer literal is exact. */
    if (int_type && !v->u.num.is_int && !v->u.num.is_uint &&
        ((dtype == ROUSE_DT_INT64 && d >= -9223372036854775808.0 && d < 9223372036854775808.0) ||
         (dtype == ROUSE_DT_UINT64 && d >= 0 && d < 18446744073709551616.0)))
        return rouse_err_set(eb, ROUSE_EMISMATCH,
                             "input '%s': element %zu: %s is not exact for %s (write large "
                             "integers without a fraction or exponent)",
                             input, index, num, dt_name(dtype));
    return rouse_err_set(eb, ROUSE_EMISMATCH, "input '%s': element %zu: %s is out of range for %s",
                         input, index, num, dt_name(dtype));
}

/* Stores element `index` of type dtype from a JSON value, with range checks. */
static int convert_element(const json_value *v, int dtype, void *dst, size_t index,
                           const char *input, rouse_errbuf *eb)
{
    if (dtype == ROUSE_DT_BOOL) {
        bool b;
        if (!json_as_bool(v, &b)) return element_error(eb, input, index, v, dtype);
        ((uint8_t *)dst)[index] = b;
        return 0;
    }
    if (v->type != JSON_NUMBER) return element_error(eb, input, index, v, dtype);
    const double d = v->u.num.d;
    int64_t i, lo, hi;
    switch (dtype) {
    case ROUSE_DT_FLOAT: {
        float f = (float)d;
        if (isinf(f)) return element_error(eb, input, index, v, dtype);
        memcpy((float *)dst + index, &f, sizeof(f));
        return 0;
    }
    case ROUSE_DT_DOUBLE:
        memcpy((double *)dst + index, &d, sizeof(d));
        return 0;
    case ROUSE_DT_FLOAT16:
    case ROUSE_DT_BFLOAT16: {
        uint16_t h;
        bool ok = dtype == ROUSE_DT_FLOAT16 ? double_to_half(d, &h) : double_to_bf16(d, &h);
        if (!ok) return element_error(eb, input, index, v, dtype);
        memcpy((uint16_t *)dst + index, &h, sizeof(h));
        return 0;
    }
    case ROUSE_DT_UINT64: {
        uint64_t u;
        if (!json_as_uint64(v, &u)) return element_error(eb, input, index, v, dtype);
        memcpy((uint64_t *)dst + index, &u, sizeof(u));
        return 0;
    }
    case ROUSE_DT_INT8:
        lo = INT8_MIN, hi = INT8_MAX;
        break;
    case ROUSE_DT_UINT8:
        lo = 0, hi = UINT8_MAX;
        break;
    case ROUSE_DT_INT16:
        lo = INT16_MIN, hi = INT16_MAX;
        break;
    case ROUSE_DT_UINT16:
        lo = 0, hi = UINT16_MAX;
        break;
    case ROUSE_DT_INT32:
        lo = INT32_MIN, hi = INT32_MAX;
        break;
    case ROUSE_DT_UINT32:
        lo = 0, hi = UINT32_MAX;
        break;
    case ROUSE_DT_INT64:
        lo = INT64_MIN, hi = INT64_MAX;
        break;
    default:
        return rouse_err_set(eb, ROUSE_EMISMATCH, "input '%s': datatype %s is not supported", input,
                             dt_name(dtype));
    }
    if (!json_as_int64(v, &i) || i < lo || i > hi) return element_error(eb, input, index, v, dtype);
    switch (dtype) {
    case ROUSE_DT_INT8:
        ((int8_t *)dst)[index] = (int8_t)i;
        break;
    case ROUSE_DT_UINT8:
        ((uint8_t *)dst)[index] = (uint8_t)i;
        break;
    case ROUSE_DT_INT16:
        memcpy((int16_t *)dst + index, &(int16_t){(int16_t)i}, 2);
        break;
    case ROUSE_DT_UINT16:
        memcpy((uint16_t *)dst + index, &(uint16_t){(uint16_t)i}, 2);
        break;
    case ROUSE_DT_INT32:
        memcpy((int32_t *)dst + index, &(int32_t){(int32_t)i}, 4);
        break;
    case ROUSE_DT_UINT32:
        memcpy((uint32_t *)dst + index, &(uint32_t){(uint32_t)i}, 4);
        break;
    default:
        memcpy((int64_t *)dst + index, &i, 8);
        break;
    }
    return 0;
}

typedef struct data_ctx {
    const char *input;
    int dtype;
    int rank;
    const int64_t *shape;
    void *dst;
    size_t next; /* flat index of the next element */
    rouse_errbuf *eb;
} data_ctx;

/* Walks nested `data` that must match the shape level by level; with no
 * destination yet it only checks the structure. */
static int decode_nested(data_ctx *c, const json_value *v, int level)
{
    char sh[128];
    if (level == c->rank) {
        if (v->type == JSON_ARRAY)
            return rouse_err_set(c->eb, ROUSE_EMISMATCH,
                                 "input '%s': nested 'data' is deeper than shape %s", c->input,
                                 shape_str(c->rank, c->shape, sh, sizeof(sh)));
        int rc = c->dst ? convert_element(v, c->dtype, c->dst, c->next, c->input, c->eb) : 0;
        c->next++;
        return rc;
    }
    if (v->type != JSON_ARRAY || (int64_t)v->u.arr.n != c->shape[level])
        return rouse_err_set(c->eb, ROUSE_EMISMATCH,
                             "input '%s': nested 'data' does not match shape %s (an array at depth "
                             "%d has %s%zu elements, expected %lld)",
                             c->input, shape_str(c->rank, c->shape, sh, sizeof(sh)), level + 1,
                             v->type == JSON_ARRAY ? "" : "no array but ",
                             v->type == JSON_ARRAY ? v->u.arr.n : 0, (long long)c->shape[level]);
    for (size_t i = 0; i < v->u.arr.n; i++) {
        int rc = decode_nested(c, v->u.arr.items[i], level + 1);
        if (rc < 0) return rc;
    }
    return 0;
}

/* Converts `data` into a new arena buffer (c->dst), allocated only once the
 * element count is known to match, so a huge shape cannot claim memory that
 * the body does not back. */
static int decode_data(const json_value *data, data_ctx *c, size_t numel, size_t nbytes,
                       rouse_arena *arena)
{
    char sh[128];
    if (data->type != JSON_ARRAY)
        return rouse_err_set(c->eb, ROUSE_EFORMAT, "input '%s': 'data' must be an array, got %s",
                             c->input, json_type_name(data->type));
    bool nested = data->u.arr.n > 0 && data->u.arr.items[0]->type == JSON_ARRAY;
    if (nested) {
        if (c->rank < 2)
            return rouse_err_set(c->eb, ROUSE_EMISMATCH,
                                 "input '%s': nested 'data' is deeper than shape %s", c->input,
                                 shape_str(c->rank, c->shape, sh, sizeof(sh)));
        c->dst = NULL;
        int rc = decode_nested(c, data, 0);
        if (rc < 0) return rc;
        if (!(c->dst = rouse_arena_alloc(arena, nbytes, 64)))
            return rouse_err_set(c->eb, ROUSE_ENOMEM, "out of memory for input '%s'", c->input);
        c->next = 0;
        return decode_nested(c, data, 0);
    }
    if (data->u.arr.n != numel)
        return rouse_err_set(
            c->eb, ROUSE_EMISMATCH, "input '%s': 'data' has %zu elements, but shape %s needs %zu",
            c->input, data->u.arr.n, shape_str(c->rank, c->shape, sh, sizeof(sh)), numel);
    if (!(c->dst = rouse_arena_alloc(arena, nbytes, 64)))
        return rouse_err_set(c->eb, ROUSE_ENOMEM, "out of memory for input '%s'", c->input);
    json_value *const *items = data->u.arr.items;
    if (c->dtype == ROUSE_DT_FLOAT) {
        /* The common case (images), without the per-element dispatch. */
        float *dst = c->dst;
        for (size_t i = 0; i < numel; i++) {
            const json_value *v = items[i];
            float f;
            if (v->type != JSON_NUMBER || isinf(f = (float)v->u.num.d))
                return convert_element(v, c->dtype, c->dst, i, c->input, c->eb);
            dst[i] = f;
        }
        return 0;
    }
    for (size_t i = 0; i < numel; i++) {
        int rc = convert_element(items[i], c->dtype, c->dst, i, c->input, c->eb);
        if (rc < 0) return rc;
    }
    return 0;
}

/* The request's shape of one input, checked against the model's. */
static int decode_shape(const json_value *item, const char *name, const rouse_tensor_info *ti,
                        rouse_tensor *t, size_t *numel, rouse_errbuf *eb)
{
    const json_value *sv = json_get(item, "shape");
    if (!sv || sv->type != JSON_ARRAY)
        return rouse_err_set(eb, ROUSE_EFORMAT, "input '%s' has no 'shape' array", name);
    if (sv->u.arr.n > ROUSE_MAX_RANK)
        return rouse_err_set(eb, ROUSE_EMISMATCH, "input '%s': shape has %zu dims, at most %d",
                             name, sv->u.arr.n, ROUSE_MAX_RANK);
    t->rank = (int)sv->u.arr.n;
    /* Element counts stay far below SIZE_MAX / 8 so that byte sizes cannot
     * overflow either. */
    const uint64_t limit = (uint64_t)1 << 56;
    uint64_t n = 1;
    bool too_big = false;
    for (int k = 0; k < t->rank; k++) {
        int64_t dim;
        if (!json_as_int64(sv->u.arr.items[k], &dim) || dim < 0)
            return rouse_err_set(eb, ROUSE_EFORMAT,
                                 "input '%s': shape[%d] must be a non-negative integer", name, k);
        t->shape[k] = dim;
        if (dim > 0 && n > limit / (uint64_t)dim) too_big = true;
        if (!too_big) n *= (uint64_t)dim;
    }
    char want[128], got[128];
    bool ok = ti->rank < 0 || ti->rank == t->rank;
    for (int k = 0; ok && k < t->rank && ti->rank >= 0; k++)
        ok = ti->shape[k] < 0 || ti->shape[k] == t->shape[k];
    if (!ok)
        return rouse_err_set(eb, ROUSE_EMISMATCH,
                             "input '%s': shape %s does not match the model's %s", name,
                             shape_str(t->rank, t->shape, got, sizeof(got)),
                             shape_str(ti->rank, ti->shape, want, sizeof(want)));
    /* A zero dim makes the tensor empty whatever the other dims say. */
    for (int k = 0; k < t->rank; k++)
        if (t->shape[k] == 0) too_big = false, n = 0;
    if (too_big)
        return rouse_err_set(eb, ROUSE_EMISMATCH, "input '%s': shape %s has too many elements",
                             name, shape_str(t->rank, t->shape, got, sizeof(got)));
    *numel = (size_t)n;
    return 0;
}

/* One entry of "inputs": checks it and fills t (data decoded or pointing
 * into the binary part at *bin_off, which advances). */
static int decode_input(const json_value *item, size_t pos, const char *body, size_t body_len,
                        size_t *bin_off, const rouse_model *m, rouse_arena *arena,
                        rouse_tensor *tensors, bool *given, rouse_errbuf *eb)
{
    char buf[256];
    if (item->type != JSON_OBJECT)
        return rouse_err_set(eb, ROUSE_EFORMAT, "inputs[%zu] must be an object, got %s", pos,
                             json_type_name(item->type));
    const char *name = json_as_string(json_get(item, "name"));
    if (!name) return rouse_err_set(eb, ROUSE_EFORMAT, "inputs[%zu] has no 'name' string", pos);
    int idx = find_name(m, false, name);
    if (idx < 0)
        return rouse_err_set(eb, ROUSE_EINVAL, "unknown input '%s' (the model's inputs are %s)",
                             name, names_str(m, false, buf, sizeof(buf)));
    if (given[idx]) return rouse_err_set(eb, ROUSE_EINVAL, "input '%s' is given twice", name);
    given[idx] = true;
    rouse_tensor_info ti;
    rouse_model_input(m, idx, &ti);
    rouse_tensor *t = &tensors[idx];
    t->name = ti.name;

    const char *dtn = json_as_string(json_get(item, "datatype"));
    if (!dtn) return rouse_err_set(eb, ROUSE_EFORMAT, "input '%s' has no 'datatype' string", name);
    int dtype = oip_datatype_parse(dtn);
    if (dtype < 0 && strcmp(dtn, "BYTES") == 0)
        return rouse_err_set(eb, ROUSE_EMISMATCH,
                             "input '%s': datatype BYTES is not supported (the model wants %s)",
                             name, dt_name(ti.dtype));
    if (dtype < 0)
        return rouse_err_set(eb, ROUSE_EFORMAT, "input '%s': unknown datatype '%s'", name, dtn);
    if (dtype != ti.dtype)
        return rouse_err_set(eb, ROUSE_EMISMATCH,
                             "input '%s': datatype %s does not match the model's %s", name, dtn,
                             dt_name(ti.dtype));
    t->dtype = dtype;

    size_t numel = 0;
    int rc = decode_shape(item, name, &ti, t, &numel, eb);
    if (rc < 0) return rc;
    const size_t esize = rouse_dtype_size(dtype);
    t->nbytes = numel * esize;

    const json_value *params = json_get(item, "parameters");
    if (params && params->type != JSON_OBJECT)
        return rouse_err_set(eb, ROUSE_EFORMAT, "input '%s': 'parameters' must be an object", name);
    const json_value *bds = json_get(params, "binary_data_size");
    const json_value *data = json_get(item, "data");
    if (bds) {
        uint64_t size;
        if (data)
            return rouse_err_set(eb, ROUSE_EFORMAT,
                                 "input '%s' has both 'data' and 'binary_data_size'", name);
        if (!json_as_uint64(bds, &size))
            return rouse_err_set(eb, ROUSE_EFORMAT,
                                 "input '%s': binary_data_size must be a non-negative integer",
                                 name);
        if (size != t->nbytes)
            return rouse_err_set(eb, ROUSE_EMISMATCH,
                                 "input '%s': binary_data_size is %llu bytes, but shape %s of %s "
                                 "needs %zu",
                                 name, (unsigned long long)size,
                                 shape_str(t->rank, t->shape, buf, sizeof(buf)), dtn, t->nbytes);
        if (size > body_len - *bin_off)
            return rouse_err_set(eb, ROUSE_EMISMATCH,
                                 "input '%s': its %llu bytes of binary data run past the end of "
                                 "the body (%zu bytes left)",
                                 name, (unsigned long long)size, body_len - *bin_off);
        const char *p = body + *bin_off;
        *bin_off += (size_t)size;
        if ((uintptr_t)p % 16 != 0) {
            /* Typed kernels need aligned data; the JSON header puts it anywhere. */
            char *copy = rouse_arena_alloc(arena, (size_t)size, 64);
            if (!copy) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
            memcpy(copy, p, (size_t)size);
            p = copy;
        }
        t->data = p;
        return 0;
    }
    if (!data) return rouse_err_set(eb, ROUSE_EFORMAT, "input '%s' has no 'data'", name);
    data_ctx c = {name, dtype, t->rank, t->shape, NULL, 0, eb};
    if ((rc = decode_data(data, &c, numel, t->nbytes, arena)) < 0) return rc;
    t->data = c.dst;
    return 0;
}

static int decode_outputs(const json_value *outs, const rouse_model *m, rouse_arena *arena,
                          oip_request *req, rouse_errbuf *eb)
{
    char buf[256];
    if (outs->type != JSON_ARRAY)
        return rouse_err_set(eb, ROUSE_EFORMAT, "'outputs' must be an array, got %s",
                             json_type_name(outs->type));
    size_t n = outs->u.arr.n;
    if (n > (size_t)rouse_model_n_outputs(m)) n = (size_t)rouse_model_n_outputs(m) + 1;
    req->outputs = rouse_arena_calloc(arena, n, sizeof(*req->outputs), _Alignof(oip_output_req));
    if (!req->outputs) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    for (size_t k = 0; k < outs->u.arr.n; k++) {
        const json_value *o = outs->u.arr.items[k];
        if (o->type != JSON_OBJECT)
            return rouse_err_set(eb, ROUSE_EFORMAT, "outputs[%zu] must be an object, got %s", k,
                                 json_type_name(o->type));
        const char *name = json_as_string(json_get(o, "name"));
        if (!name) return rouse_err_set(eb, ROUSE_EFORMAT, "outputs[%zu] has no 'name' string", k);
        int idx = find_name(m, true, name);
        if (idx < 0)
            return rouse_err_set(eb, ROUSE_EINVAL,
                                 "unknown output '%s' (the model's outputs are %s)", name,
                                 names_str(m, true, buf, sizeof(buf)));
        for (int j = 0; j < req->n_outputs; j++)
            if (strcmp(req->outputs[j].name, name) == 0)
                return rouse_err_set(eb, ROUSE_EINVAL, "output '%s' is requested twice", name);
        /* Every name is distinct and known, so k stays below n. */
        rouse_tensor_info ti;
        rouse_model_output(m, idx, &ti);
        oip_output_req *r = &req->outputs[req->n_outputs++];
        r->name = ti.name;
        r->binary = req->binary_default;
        const json_value *params = json_get(o, "parameters");
        if (params && params->type != JSON_OBJECT)
            return rouse_err_set(eb, ROUSE_EFORMAT, "output '%s': 'parameters' must be an object",
                                 name);
        const json_value *bd = json_get(params, "binary_data");
        if (bd && !json_as_bool(bd, &r->binary))
            return rouse_err_set(eb, ROUSE_EFORMAT,
                                 "output '%s': binary_data must be true or false", name);
    }
    return 0;
}

int oip_decode_request(const char *body, size_t body_len, int64_t json_len, const rouse_model *m,
                       rouse_arena *arena, oip_request *req, rouse_errbuf *eb)
{
    char buf[256];
    memset(req, 0, sizeof(*req));
    size_t jlen = body_len;
    if (json_len >= 0) {
        if ((uint64_t)json_len > body_len)
            return rouse_err_set(eb, ROUSE_EFORMAT,
                                 "the JSON header length %lld exceeds the body (%zu bytes)",
                                 (long long)json_len, body_len);
        jlen = (size_t)json_len;
    }
    json_value *root;
    int rc = json_parse(body, jlen, arena, &root, eb);
    if (rc < 0) return rc == ROUSE_EFORMAT ? rouse_err_wrap(eb, rc, "invalid JSON") : rc;
    if (root->type != JSON_OBJECT)
        return rouse_err_set(eb, ROUSE_EFORMAT, "the request must be a JSON object, got %s",
                             json_type_name(root->type));

    const json_value *id = json_get(root, "id");
    if (id && !(req->id = json_as_string(id)))
        return rouse_err_set(eb, ROUSE_EFORMAT, "'id' must be a string, got %s",
                             json_type_name(id->type));
    const json_value *params = json_get(root, "parameters");
    if (params && params->type != JSON_OBJECT)
        return rouse_err_set(eb, ROUSE_EFORMAT, "'parameters' must be an object, got %s",
                             json_type_name(params->type));
    const json_value *bdo = json_get(params, "binary_data_output");
    if (bdo && !json_as_bool(bdo, &req->binary_default))
        return rouse_err_set(eb, ROUSE_EFORMAT, "'binary_data_output' must be true or false");

    const json_value *inputs = json_get(root, "inputs");
    if (!inputs || inputs->type != JSON_ARRAY)
        return rouse_err_set(eb, ROUSE_EFORMAT, "the request has no 'inputs' array");
    const int n_model = rouse_model_n_inputs(m);
    rouse_tensor *tensors =
        rouse_arena_calloc(arena, (size_t)n_model, sizeof(*tensors), _Alignof(rouse_tensor));
    bool *given = rouse_arena_calloc(arena, (size_t)n_model, sizeof(*given), 1);
    if (!tensors || !given) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    size_t bin_off = jlen;
    for (size_t k = 0; k < inputs->u.arr.n; k++) {
        rc = decode_input(inputs->u.arr.items[k], k, body, body_len, &bin_off, m, arena, tensors,
                          given, eb);
        if (rc < 0) return rc;
    }
    if (bin_off != body_len)
        return rouse_err_set(eb, ROUSE_EMISMATCH,
                             "the inputs' binary_data_size values add up to %zu bytes, but the "
                             "body carries %zu bytes after the JSON",
                             bin_off - jlen, body_len - jlen);
    size_t o = 0;
    int missing = 0;
    for (int i = 0; i < n_model && o < sizeof(buf); i++) {
        rouse_tensor_info ti;
        if (given[i] || rouse_model_input(m, i, &ti) < 0) continue;
        o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s'%s'", missing ? ", " : "", ti.name);
        missing++;
    }
    if (missing)
        return rouse_err_set(eb, ROUSE_EINVAL, "missing input%s %s", missing > 1 ? "s" : "", buf);
    req->inputs = tensors;
    req->n_inputs = n_model;

    const json_value *outs = json_get(root, "outputs");
    if (outs && (rc = decode_outputs(outs, m, arena, req, eb)) < 0) return rc;
    return 0;
}

/* ---- encoding ----------------------------------------------------------------- */

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        if ((expr) < 0) goto out_nomem;                                                            \
    } while (0)

/* The flat JSON array of a tensor's elements. */
static int write_data(rouse_buf *b, const rouse_tensor *t)
{
    const size_t es = rouse_dtype_size(t->dtype);
    const size_t n = es ? t->nbytes / es : 0;
    const unsigned char *p = t->data;
    if (rouse_buf_append_byte(b, '[') < 0) return ROUSE_ENOMEM;
    for (size_t i = 0; i < n; i++, p += es) {
        int rc = 0;
        if (i && rouse_buf_append_byte(b, ',') < 0) return ROUSE_ENOMEM;
        switch (t->dtype) {
        case ROUSE_DT_BOOL:
            rc = rouse_buf_append_str(b, *p ? "true" : "false");
            break;
        case ROUSE_DT_FLOAT: {
            float f;
            memcpy(&f, p, 4);
            rc = json_write_float(b, f);
            break;
        }
        case ROUSE_DT_DOUBLE: {
            double d;
            memcpy(&d, p, 8);
            rc = json_write_double(b, d);
            break;
        }
        case ROUSE_DT_FLOAT16:
        case ROUSE_DT_BFLOAT16: {
            uint16_t h;
            memcpy(&h, p, 2);
            rc = json_write_float(b, t->dtype == ROUSE_DT_FLOAT16 ? half_to_float(h)
                                                                  : bf16_to_float(h));
            break;
        }
        case ROUSE_DT_INT8:
            rc = json_write_int64(b, *(const int8_t *)p);
            break;
        case ROUSE_DT_UINT8:
            rc = json_write_int64(b, *p);
            break;
        case ROUSE_DT_INT16: {
            int16_t v;
            memcpy(&v, p, 2);
            rc = json_write_int64(b, v);
            break;
        }
        case ROUSE_DT_UINT16: {
            uint16_t v;
            memcpy(&v, p, 2);
            rc = json_write_int64(b, v);
            break;
        }
        case ROUSE_DT_INT32: {
            int32_t v;
            memcpy(&v, p, 4);
            rc = json_write_int64(b, v);
            break;
        }
        case ROUSE_DT_UINT32: {
            uint32_t v;
            memcpy(&v, p, 4);
            rc = json_write_int64(b, v);
            break;
        }
        case ROUSE_DT_INT64: {
            int64_t v;
            memcpy(&v, p, 8);
            rc = json_write_int64(b, v);
            break;
        }
        case ROUSE_DT_UINT64: {
            uint64_t v;
            memcpy(&v, p, 8);
            rc = json_write_uint64(b, v);
            break;
        }
        default:
            return ROUSE_EUNSUPPORTED;
        }
        if (rc < 0) return ROUSE_ENOMEM;
    }
    return rouse_buf_append_byte(b, ']') < 0 ? ROUSE_ENOMEM : 0;
}

/* The i-th output of the response: model output index and binary flag. */
static int selected_output(const oip_request *req, const rouse_model *m, int k, int *idx,
                           bool *binary, rouse_errbuf *eb)
{
    if (req && req->n_outputs > 0) {
        *idx = find_name(m, true, req->outputs[k].name);
        *binary = req->outputs[k].binary;
        if (*idx < 0)
            return rouse_err_set(eb, ROUSE_EINVAL, "unknown output '%s'", req->outputs[k].name);
    } else {
        *idx = k;
        *binary = req && req->binary_default;
    }
    return 0;
}

int oip_encode_response(const oip_request *req, const char *model_name, const char *model_version,
                        const rouse_model *m, const rouse_session *s, rouse_buf *out,
                        int64_t *json_len, rouse_errbuf *eb)
{
    int n = rouse_model_n_outputs(m);
    rouse_tensor outs[OIP_MAX_OUTPUTS];
    if (n > OIP_MAX_OUTPUTS)
        return rouse_err_set(eb, ROUSE_EUNSUPPORTED, "the model has %d outputs, at most %d are served",
                             n, OIP_MAX_OUTPUTS);
    for (int i = 0; i < n; i++) {
        int rc = rouse_session_output(s, i, &outs[i]);
        if (rc < 0)
            return rouse_err_set(eb, rc, "output %d of the model is not available (%s)", i,
                                 rouse_strerror(rc));
    }
    return oip_encode_outputs(req, model_name, model_version, m, outs, out, json_len, eb);
}

int oip_encode_outputs(const oip_request *req, const char *model_name, const char *model_version,
                       const rouse_model *m, const rouse_tensor *outs, rouse_buf *out,
                       int64_t *json_len, rouse_errbuf *eb)
{
    const size_t start = out->len;
    const int n = req && req->n_outputs > 0 ? req->n_outputs : rouse_model_n_outputs(m);
    bool any_binary = false;
    int rc;
    TRY(rouse_buf_append_str(out, "{\"model_name\":"));
    TRY(json_write_string(out, model_name ? model_name : "", model_name ? strlen(model_name) : 0));
    if (model_version) {
        TRY(rouse_buf_append_str(out, ",\"model_version\":"));
        TRY(json_write_string(out, model_version, strlen(model_version)));
    }
    if (req && req->id) {
        TRY(rouse_buf_append_str(out, ",\"id\":"));
        TRY(json_write_string(out, req->id, strlen(req->id)));
    }
    TRY(rouse_buf_append_str(out, ",\"outputs\":["));
    for (int k = 0; k < n; k++) {
        int idx;
        bool binary;
        rouse_tensor t;
        if ((rc = selected_output(req, m, k, &idx, &binary, eb)) < 0) goto out_fail;
        t = outs[idx];
        const char *dtn = oip_datatype_name(t.dtype);
        if (!dtn) {
            rc = rouse_err_set(eb, ROUSE_EUNSUPPORTED,
                               "output '%s' has type %s, which the protocol cannot carry", t.name,
                               rouse_dtype_name(t.dtype));
            goto out_fail;
        }
        TRY(rouse_buf_append_str(out, k ? ",{\"name\":" : "{\"name\":"));
        TRY(json_write_string(out, t.name, strlen(t.name)));
        TRY(rouse_buf_appendf(out, ",\"datatype\":\"%s\",\"shape\":[", dtn));
        for (int d = 0; d < t.rank; d++) {
            if (d) TRY(rouse_buf_append_byte(out, ','));
            TRY(json_write_int64(out, t.shape[d]));
        }
        if (binary) {
            any_binary = true;
            TRY(rouse_buf_appendf(out, "],\"parameters\":{\"binary_data_size\":%zu}}", t.nbytes));
        } else {
            TRY(rouse_buf_append_str(out, "],\"data\":"));
            if ((rc = write_data(out, &t)) < 0) {
                if (rc == ROUSE_ENOMEM) goto out_nomem;
                rouse_err_set(eb, rc, "output '%s': cannot write %s data", t.name, dtn);
                goto out_fail;
            }
            TRY(rouse_buf_append_byte(out, '}'));
        }
    }
    TRY(rouse_buf_append_str(out, "]}"));
    *json_len = -1;
    if (any_binary) {
        *json_len = (int64_t)(out->len - start);
        for (int k = 0; k < n; k++) {
            int idx;
            bool binary;
            rouse_tensor t;
            if ((rc = selected_output(req, m, k, &idx, &binary, eb)) < 0) goto out_fail;
            if (!binary) continue;
            t = outs[idx];
            TRY(rouse_buf_append(out, t.data, t.nbytes));
        }
    }
    return 0;
out_nomem:
    rc = rouse_err_set(eb, ROUSE_ENOMEM, "out of memory while encoding the response");
out_fail:
    out->len = start;
    if (out->data) out->data[start] = '\0';
    return rc;
}

int oip_model_metadata(const rouse_model *m, const char *name, const int64_t *versions,
                       int n_versions, rouse_buf *out)
{
    const size_t start = out->len;
    TRY(rouse_buf_append_str(out, "{\"name\":"));
    TRY(json_write_string(out, name ? name : "", name ? strlen(name) : 0));
    TRY(rouse_buf_append_str(out, ",\"versions\":["));
    for (int i = 0; i < n_versions; i++)
        TRY(rouse_buf_appendf(out, "%s\"%lld\"", i ? "," : "", (long long)versions[i]));
    TRY(rouse_buf_append_str(out, "],\"platform\":\"onnx\""));
    for (int io = 0; io < 2; io++) {
        int n = io ? rouse_model_n_outputs(m) : rouse_model_n_inputs(m);
        TRY(rouse_buf_append_str(out, io ? ",\"outputs\":[" : ",\"inputs\":["));
        for (int i = 0; i < n; i++) {
            rouse_tensor_info ti;
            if ((io ? rouse_model_output(m, i, &ti) : rouse_model_input(m, i, &ti)) < 0) {
                out->len = start;
                if (out->data) out->data[start] = '\0';
                return ROUSE_EINTERNAL;
            }
            const char *dtn = oip_datatype_name(ti.dtype);
            TRY(rouse_buf_append_str(out, i ? ",{\"name\":" : "{\"name\":"));
            TRY(json_write_string(out, ti.name, strlen(ti.name)));
            /* A type the protocol has no name for is reported by its ONNX name. */
            TRY(rouse_buf_appendf(out, ",\"datatype\":\"%s\",\"shape\":[",
                                  dtn ? dtn : rouse_dtype_name(ti.dtype)));
            if (ti.rank < 0) TRY(rouse_buf_append_str(out, "-1"));
            for (int d = 0; d < ti.rank; d++)
                TRY(rouse_buf_appendf(out, "%s%lld", d ? "," : "", (long long)ti.shape[d]));
            TRY(rouse_buf_append_str(out, "]}"));
        }
        TRY(rouse_buf_append_byte(out, ']'));
    }
    TRY(rouse_buf_append_byte(out, '}'));
    return 0;
out_nomem:
    out->len = start;
    if (out->data) out->data[start] = '\0';
    return ROUSE_ENOMEM;
}
