/*
 * ONNX ModelProto / TensorProto decoder over the protobuf reader in pb.h.
 *
 * Each message is read in two passes: the first validates the wire structure,
 * picks up scalar fields and counts the repeated ones; the second fills arrays
 * sized by those counts. Nesting is fixed (model > graph > node > attribute >
 * tensor), so there is no recursion: GRAPH attributes are noted, not decoded.
 *
 * Invariants: every count stored in an int has been checked against INT_MAX;
 * every array is written only below the size the first pass counted; every
 * error leaves a message in the errbuf that names the message and the field.
 * Tensor payloads stay in the caller's buffer whenever their wire encoding is
 * already the in-memory layout (raw_data, one packed float_data/double_data).
 */
#include "engine/onnx/onnx.h"

#include <limits.h>
#include <string.h>
#include <sys/mman.h>

#include "engine/onnx/pb.h"
#include "engine/tensor.h"

/* In-place tensor data is little-endian on the wire; it is only usable as-is
 * on a little-endian host. */
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the ONNX decoder assumes a little-endian host"
#endif

/* Names longer than this are cut in error messages so that the cause, which
 * follows the context, still fits in the errbuf. */
#define NAME_FMT "%.80s"

typedef struct dec {
    rouse_arena *arena;
    rouse_errbuf *eb;
} dec;

static int nomem(dec *d, const char *what)
{
    return rouse_err_set(d->eb, ROUSE_ENOMEM, "out of memory decoding %s", what);
}

static int expect(dec *d, const pb_field *f, const char *field, int wire)
{
    if (f->wire == wire) return 0;
    return rouse_err_set(d->eb, ROUSE_EFORMAT,
                         "%s (field %u) at offset %zu has wire type %s, expected %s", field, f->num,
                         f->off, pb_wire_name(f->wire), pb_wire_name(wire));
}

/* A singular message field seen twice would have to be merged under protobuf
 * rules; no exporter writes that, so it is more likely corruption. */
static int once(dec *d, bool *seen, const pb_field *f, const char *field)
{
    if (*seen)
        return rouse_err_set(d->eb, ROUSE_EFORMAT,
                             "%s (field %u) appears twice, again at offset %zu", field, f->num,
                             f->off);
    *seen = true;
    return 0;
}

/* Identifiers (names, op types, domains, dim params) are compared as C
 * strings later, so an embedded NUL would make two names alias. */
static int get_ident(dec *d, const pb_field *f, const char *field, const char **out)
{
    int rc;
    if ((rc = expect(d, f, field, PB_LEN)) < 0) return rc;
    if (memchr(f->data, 0, f->len))
        return rouse_err_set(d->eb, ROUSE_EFORMAT, "%s at offset %zu contains a NUL byte", field,
                             f->off);
    char *s = rouse_arena_strndup(d->arena, (const char *)f->data, f->len);
    if (!s) return nomem(d, field);
    *out = s;
    return 0;
}

static int get_int64(dec *d, const pb_field *f, const char *field, int64_t *out)
{
    int rc;
    if ((rc = expect(d, f, field, PB_VARINT)) < 0) return rc;
    *out = (int64_t)f->u;
    return 0;
}

static int get_int32(dec *d, const pb_field *f, const char *field, int32_t *out)
{
    int64_t v;
    int rc;
    if ((rc = get_int64(d, f, field, &v)) < 0) return rc;
    if (v < INT32_MIN || v > INT32_MAX)
        return rouse_err_set(d->eb, ROUSE_EFORMAT, "%s at offset %zu: %lld does not fit in int32",
                             field, f->off, (long long)v);
    *out = (int32_t)v;
    return 0;
}

/* Adds k to a count that must stay within int. */
static int add_count(dec *d, size_t *n, size_t k, const char *field)
{
    if (k > (size_t)INT_MAX - *n)
        return rouse_err_set(d->eb, ROUSE_EFORMAT, "%s has more than %d entries", field, INT_MAX);
    *n += k;
    return 0;
}

/* Counts one record of a repeated field: messages and strings count 1 each,
 * scalars may be packed. */
static int count_scalars(dec *d, const pb_field *f, int elem_wire, size_t *n, const char *field)
{
    size_t k;
    int rc;
    if ((rc = pb_count(f, elem_wire, &k, d->eb)) < 0) return rouse_err_wrap(d->eb, rc, "%s", field);
    return add_count(d, n, k, field);
}

static int count_msgs(dec *d, const pb_field *f, size_t *n, const char *field)
{
    int rc;
    if ((rc = expect(d, f, field, PB_LEN)) < 0) return rc;
    return add_count(d, n, 1, field);
}

/* Arena array of n elements; a unique non-NULL pointer when n is 0 so that
 * callers may memcpy from it without a special case. */
static void *alloc_array(dec *d, size_t n, size_t size, const char *field, int *rc)
{
    void *p = rouse_arena_calloc(d->arena, n, size, 16);
    if (!p) *rc = nomem(d, field);
    return p;
}

static void store_le(uint8_t *dst, uint64_t v, size_t width)
{
    for (size_t i = 0; i < width; i++)
        dst[i] = (uint8_t)(v >> (8 * i));
}

/* ---- TensorProto ------------------------------------------------------- */

enum {
    T_DIMS = 1,
    T_DATA_TYPE = 2,
    T_FLOAT_DATA = 4,
    T_INT32_DATA = 5,
    T_STRING_DATA = 6,
    T_INT64_DATA = 7,
    T_NAME = 8,
    T_RAW_DATA = 9,
    T_DOUBLE_DATA = 10,
    T_UINT64_DATA = 11,
    T_EXTERNAL_DATA = 13,
    T_DATA_LOCATION = 14,
};

/* The typed repeated fields a tensor's values may come in. */
typedef struct typed_src {
    uint32_t num;
    const char *name;
    int elem_wire;
} typed_src;

static const typed_src tensor_srcs[] = {
    {T_FLOAT_DATA, "float_data", PB_I32},      {T_INT32_DATA, "int32_data", PB_VARINT},
    {T_INT64_DATA, "int64_data", PB_VARINT},   {T_DOUBLE_DATA, "double_data", PB_I64},
    {T_UINT64_DATA, "uint64_data", PB_VARINT},
};

static const typed_src *find_src(uint32_t num)
{
    for (size_t i = 0; i < sizeof(tensor_srcs) / sizeof(tensor_srcs[0]); i++)
        if (tensor_srcs[i].num == num) return &tensor_srcs[i];
    return NULL;
}

/* Which typed field the ONNX spec assigns to each data type. */
static bool src_holds(uint32_t num, int dt)
{
    switch (num) {
    case T_FLOAT_DATA:
        return dt == ENG_DT_FLOAT;
    case T_INT32_DATA:
        return dt == ENG_DT_INT32 || dt == ENG_DT_INT16 || dt == ENG_DT_INT8 ||
               dt == ENG_DT_UINT16 || dt == ENG_DT_UINT8 || dt == ENG_DT_BOOL ||
               dt == ENG_DT_FLOAT16 || dt == ENG_DT_BFLOAT16;
    case T_INT64_DATA:
        return dt == ENG_DT_INT64;
    case T_DOUBLE_DATA:
        return dt == ENG_DT_DOUBLE;
    case T_UINT64_DATA:
        return dt == ENG_DT_UINT32 || dt == ENG_DT_UINT64;
    default:
        return false;
    }
}

/* What the first pass over a TensorProto learns. */
typedef struct tensor_scan {
    size_t n_dims;
    int32_t data_type;
    int64_t data_location;
    bool has_external, has_strings, has_raw;
    const char *location; /* external_data entries */
    const char *offset, *length;
    pb_field raw;
    const typed_src *src; /* the typed field in use, or NULL */
    size_t n_vals;        /* values across all its records */
    size_t n_recs;        /* records of it */
    pb_field first;       /* its first record */
} tensor_scan;

/* One StringStringEntryProto of external_data: key 1, value 2. The keys
 * the engine uses are kept (the last one wins); others (checksum) are
 * ignored. */
static int external_entry(dec *d, const pb_field *msg, tensor_scan *s)
{
    pb_reader r;
    pb_field f;
    const char *key = NULL, *value = NULL;
    int rc;
    if ((rc = expect(d, msg, "external_data", PB_LEN)) < 0) return rc;
    pb_reader_sub(&r, msg);
    while (pb_more(&r)) {
        if ((rc = pb_next(&r, &f, d->eb)) < 0) return rouse_err_wrap(d->eb, rc, "external_data");
        if (f.num == 1 && (rc = get_ident(d, &f, "external_data.key", &key)) < 0) return rc;
        if (f.num == 2 && (rc = get_ident(d, &f, "external_data.value", &value)) < 0) return rc;
    }
    if (!key || !value)
        return rouse_err_set(d->eb, ROUSE_EFORMAT, "external_data entry at offset %zu lacks a %s",
                             msg->off, key ? "value" : "key");
    if (!strcmp(key, "location")) s->location = value;
    else if (!strcmp(key, "offset")) s->offset = value;
    else if (!strcmp(key, "length")) s->length = value;
    return 0;
}

/* A decimal external_data number: digits only, at most INT64_MAX. */
static int external_number(dec *d, const char *key, const char *text, int64_t *out)
{
    int64_t v = 0;
    if (!text[0]) goto bad;
    for (const char *c = text; *c; c++) {
        if (*c < '0' || *c > '9' || v > (INT64_MAX - (*c - '0')) / 10) goto bad;
        v = v * 10 + (*c - '0');
    }
    *out = v;
    return 0;
bad:
    return rouse_err_set(d->eb, ROUSE_EFORMAT,
                         "external_data '%s' is \"" NAME_FMT "\", not a byte count", key, text);
}

static int tensor_scan_fields(dec *d, const pb_field *msg, onnx_tensor *t, tensor_scan *s)
{
    pb_reader r;
    pb_field f;
    int rc;
    pb_reader_sub(&r, msg);
    while (pb_more(&r)) {
        if ((rc = pb_next(&r, &f, d->eb)) < 0) return rc;
        switch (f.num) {
        case T_DIMS:
            if ((rc = count_scalars(d, &f, PB_VARINT, &s->n_dims, "dims")) < 0) return rc;
            break;
        case T_DATA_TYPE:
            if ((rc = get_int32(d, &f, "data_type", &s->data_type)) < 0) return rc;
            break;
        case T_STRING_DATA:
            s->has_strings = true;
            break;
        case T_NAME:
            if ((rc = get_ident(d, &f, "name", &t->name)) < 0) return rc;
            break;
        case T_RAW_DATA:
            /* bytes field: the last occurrence wins, as in protobuf. */
            if ((rc = expect(d, &f, "raw_data", PB_LEN)) < 0) return rc;
            s->raw = f;
            s->has_raw = true;
            break;
        case T_EXTERNAL_DATA:
            s->has_external = true;
            if ((rc = external_entry(d, &f, s)) < 0) return rc;
            break;
        case T_DATA_LOCATION:
            if ((rc = get_int64(d, &f, "data_location", &s->data_location)) < 0) return rc;
            break;
        default: {
            const typed_src *src = find_src(f.num);
            if (!src) break; /* unknown or unused (doc_string, segment...): skip */
            if (s->src && s->src != src)
                return rouse_err_set(d->eb, ROUSE_EFORMAT, "both %s and %s hold values",
                                     s->src->name, src->name);
            if ((rc = count_scalars(d, &f, src->elem_wire, &s->n_vals, src->name)) < 0) return rc;
            if (!s->n_recs) s->first = f;
            s->n_recs++;
            s->src = src;
        }
        }
    }
    return 0;
}

static int tensor_read_dims(dec *d, const pb_field *msg, onnx_tensor *t, size_t n_dims)
{
    pb_reader r;
    pb_field f;
    int rc;
    size_t k = 0;
    t->dims = alloc_array(d, n_dims, sizeof(*t->dims), "dims", &rc);
    if (!t->dims) return rc;
    pb_reader_sub(&r, msg);
    while (pb_more(&r)) {
        if ((rc = pb_next(&r, &f, d->eb)) < 0) return rc;
        if (f.num != T_DIMS) continue;
        pb_iter it;
        uint64_t v;
        pb_iter_init(&it, &f, PB_VARINT);
        while ((rc = pb_iter_next(&it, &v, d->eb)) > 0) {
            if (k >= n_dims) return rouse_err_set(d->eb, ROUSE_EINTERNAL, "dims miscounted");
            if ((int64_t)v < 0)
                return rouse_err_set(d->eb, ROUSE_EFORMAT, "dims[%zu] is negative (%lld)", k,
                                     (long long)(int64_t)v);
            t->dims[k++] = (int64_t)v;
        }
        if (rc < 0) return rouse_err_wrap(d->eb, rc, "dims");
    }
    t->n_dims = (int)k;
    return 0;
}

/* Copies the values of a typed field into a dense little-endian array of
 * `width`-byte elements, truncating each wire value to that width (int32_data
 * carries int8/uint16/float16... values widened to int32). */
static int tensor_copy_typed(dec *d, const pb_field *msg, const tensor_scan *s, uint8_t *dst,
                             size_t width)
{
    pb_reader r;
    pb_field f;
    int rc;
    size_t k = 0;
    pb_reader_sub(&r, msg);
    while (pb_more(&r)) {
        if ((rc = pb_next(&r, &f, d->eb)) < 0) return rc;
        if (f.num != s->src->num) continue;
        pb_iter it;
        uint64_t v;
        pb_iter_init(&it, &f, s->src->elem_wire);
        while ((rc = pb_iter_next(&it, &v, d->eb)) > 0) {
            if (k >= s->n_vals)
                return rouse_err_set(d->eb, ROUSE_EINTERNAL, "%s miscounted", s->src->name);
            store_le(dst + k * width, v, width);
            k++;
        }
        if (rc < 0) return rouse_err_wrap(d->eb, rc, "%s", s->src->name);
    }
    return 0;
}

/* Decodes the TensorProto in msg's payload. Errors carry no tensor context:
 * the caller adds which tensor it was (t->name is set as early as possible). */
static int tensor_decode(dec *d, const pb_field *msg, onnx_tensor *t)
{
    tensor_scan s;
    char shape[128];
    int rc;
    memset(t, 0, sizeof(*t));
    memset(&s, 0, sizeof(s));
    if ((rc = tensor_scan_fields(d, msg, t, &s)) < 0) return rc;
    if (!t->name) t->name = "";

    bool external = s.data_location == 1;
    if (s.data_location != 0 && !external)
        return rouse_err_set(d->eb, ROUSE_EFORMAT, "data_location %lld is invalid",
                             (long long)s.data_location);
    if (external != s.has_external)
        return rouse_err_set(d->eb, ROUSE_EFORMAT,
                             external ? "data_location is EXTERNAL but external_data is empty"
                                      : "external_data is set but data_location is not EXTERNAL");
    if (s.data_type == ENG_DT_STRING || s.has_strings)
        return rouse_err_set(d->eb, ROUSE_EUNSUPPORTED, "string tensors are not supported");
    if (s.data_type <= 0)
        return rouse_err_set(d->eb, ROUSE_EFORMAT, "data_type %s (%d)",
                             s.data_type ? "is invalid" : "is missing", (int)s.data_type);
    size_t es = eng_dtype_size(s.data_type);
    if (!es)
        return rouse_err_set(d->eb, ROUSE_EUNSUPPORTED, "data_type %d (%s) is not supported",
                             (int)s.data_type, eng_dtype_name(s.data_type));
    t->data_type = s.data_type;
    if (s.n_dims > ONNX_MAX_RANK)
        return rouse_err_set(d->eb, ROUSE_EFORMAT, "rank %zu exceeds the limit of %d", s.n_dims,
                             ONNX_MAX_RANK);
    if ((rc = tensor_read_dims(d, msg, t, s.n_dims)) < 0) return rc;

    eng_shape_str(t->n_dims, t->dims, shape, sizeof(shape));
    int64_t n = eng_shape_numel(t->n_dims, t->dims);
    if (n < 0 || (uint64_t)n > SIZE_MAX / es || n > INT64_MAX / (int64_t)es)
        return rouse_err_set(d->eb, ROUSE_EFORMAT, "dims %s: element count overflows", shape);
    t->n_elems = n;
    t->nbytes = (size_t)n * es;

    if (external) {
        if (s.has_raw || s.src)
            return rouse_err_set(d->eb, ROUSE_EFORMAT, "external data and %s both hold values",
                                 s.has_raw ? "raw_data" : s.src->name);
        if (!s.location || !s.location[0])
            return rouse_err_set(d->eb, ROUSE_EFORMAT, "external_data has no 'location'");
        int64_t off = 0, len = -1;
        if (s.offset && (rc = external_number(d, "offset", s.offset, &off)) < 0) return rc;
        if (s.length && (rc = external_number(d, "length", s.length, &len)) < 0) return rc;
        if (len >= 0 && (uint64_t)len != (uint64_t)t->nbytes)
            return rouse_err_set(d->eb, ROUSE_EFORMAT,
                                 "external_data length %lld, dims %s need %zu bytes",
                                 (long long)len, shape, t->nbytes);
        t->location = s.location;
        t->ext_offset = (uint64_t)off;
        t->ext_length = len;
        return 0; /* data stays NULL until mapped */
    }
    if (s.has_raw && s.src)
        return rouse_err_set(d->eb, ROUSE_EFORMAT, "both raw_data and %s hold values", s.src->name);
    if (s.has_raw) {
        if (s.raw.len != t->nbytes)
            return rouse_err_set(d->eb, ROUSE_EFORMAT, "raw_data has %zu bytes, dims %s need %zu",
                                 s.raw.len, shape, t->nbytes);
        t->data = s.raw.data;
        t->in_place = true;
        return 0;
    }
    if (s.src) {
        if (!src_holds(s.src->num, t->data_type))
            return rouse_err_set(d->eb, ROUSE_EFORMAT, "%s cannot hold %s values", s.src->name,
                                 eng_dtype_name(t->data_type));
        if ((uint64_t)s.n_vals != (uint64_t)n)
            return rouse_err_set(d->eb, ROUSE_EFORMAT, "%s has %zu values, dims %s need %lld",
                                 s.src->name, s.n_vals, shape, (long long)n);
        /* One packed fixed-width record is already the dense layout. */
        if (s.src->elem_wire != PB_VARINT && s.n_recs == 1 && s.first.wire == PB_LEN) {
            t->data = s.first.data;
            t->in_place = true;
            return 0;
        }
        uint8_t *dst = alloc_array(d, t->nbytes, 1, s.src->name, &rc);
        if (!dst) return rc;
        if ((rc = tensor_copy_typed(d, msg, &s, dst, es)) < 0) return rc;
        t->data = dst;
        return 0;
    }
    if (n != 0)
        return rouse_err_set(d->eb, ROUSE_EFORMAT, "no data, dims %s need %lld values", shape,
                             (long long)n);
    t->data = alloc_array(d, 0, 1, "tensor", &rc);
    return t->data ? 0 : rc;
}

/* External data is for initializers: a tensor anywhere else must hold its
 * values. */
static int not_external(dec *d, const onnx_tensor *t)
{
    if (!t->location) return 0;
    return rouse_err_set(d->eb, ROUSE_EUNSUPPORTED,
                         "external data is supported for initializers only");
}

/* "<what> '<name>'" when the tensor has a name, "<what> <idx>" otherwise. */
static int wrap_tensor(dec *d, int rc, const char *what, int idx, const onnx_tensor *t)
{
    if (t->name && t->name[0]) return rouse_err_wrap(d->eb, rc, "%s '" NAME_FMT "'", what, t->name);
    return rouse_err_wrap(d->eb, rc, "%s %d", what, idx);
}

/* ---- AttributeProto ---------------------------------------------------- */

enum {
    A_NAME = 1,
    A_F = 2,
    A_I = 3,
    A_S = 4,
    A_T = 5,
    A_G = 6,
    A_FLOATS = 7,
    A_INTS = 8,
    A_STRINGS = 9,
    A_TENSORS = 10,
    A_GRAPHS = 11,
    A_TYPE = 20,
    A_REF_ATTR_NAME = 21,
};

typedef struct attr_scan {
    size_t n_floats, n_ints, n_strings, n_tensors;
    bool has_f, has_i, has_s, has_t, has_g, has_graphs;
    pb_field s, t;
    int32_t type;
} attr_scan;

static int attr_scan_fields(dec *d, const pb_field *msg, onnx_attr *a, attr_scan *s)
{
    pb_reader r;
    pb_field f;
    int rc;
    pb_reader_sub(&r, msg);
    while (pb_more(&r)) {
        if ((rc = pb_next(&r, &f, d->eb)) < 0) return rc;
        switch (f.num) {
        case A_NAME:
            if ((rc = get_ident(d, &f, "name", &a->name)) < 0) return rc;
            break;
        case A_TYPE:
            if ((rc = get_int32(d, &f, "type", &s->type)) < 0) return rc;
            break;
        case A_F: {
            if ((rc = expect(d, &f, "f", PB_I32)) < 0) return rc;
            uint32_t bits = (uint32_t)f.u;
            memcpy(&a->f, &bits, sizeof(a->f));
            s->has_f = true;
            break;
        }
        case A_I:
            if ((rc = get_int64(d, &f, "i", &a->i)) < 0) return rc;
            s->has_i = true;
            break;
        case A_S:
            if ((rc = expect(d, &f, "s", PB_LEN)) < 0) return rc;
            s->s = f;
            s->has_s = true;
            break;
        case A_T:
            if ((rc = expect(d, &f, "t", PB_LEN)) < 0) return rc;
            if ((rc = once(d, &s->has_t, &f, "t")) < 0) return rc;
            s->t = f;
            break;
        case A_G:
            if ((rc = expect(d, &f, "g", PB_LEN)) < 0) return rc;
            s->has_g = true;
            break;
        case A_FLOATS:
            if ((rc = count_scalars(d, &f, PB_I32, &s->n_floats, "floats")) < 0) return rc;
            break;
        case A_INTS:
            if ((rc = count_scalars(d, &f, PB_VARINT, &s->n_ints, "ints")) < 0) return rc;
            break;
        case A_STRINGS:
            if ((rc = count_msgs(d, &f, &s->n_strings, "strings")) < 0) return rc;
            break;
        case A_TENSORS:
            if ((rc = count_msgs(d, &f, &s->n_tensors, "tensors")) < 0) return rc;
            break;
        case A_GRAPHS:
            if ((rc = expect(d, &f, "graphs", PB_LEN)) < 0) return rc;
            s->has_graphs = true;
            break;
        case A_REF_ATTR_NAME:
            return rouse_err_set(d->eb, ROUSE_EUNSUPPORTED,
                                 "ref_attr_name (a reference to a function attribute) is not "
                                 "supported");
        default:
            break;
        }
    }
    return 0;
}

/* The type a writer that left `type` at 0 meant, from the populated field. */
static int attr_infer_type(const attr_scan *s)
{
    if (s->has_t) return ONNX_ATTR_TENSOR;
    if (s->has_g) return ONNX_ATTR_GRAPH;
    if (s->n_floats) return ONNX_ATTR_FLOATS;
    if (s->n_ints) return ONNX_ATTR_INTS;
    if (s->n_strings) return ONNX_ATTR_STRINGS;
    if (s->n_tensors) return ONNX_ATTR_TENSORS;
    if (s->has_graphs) return ONNX_ATTR_GRAPHS;
    if (s->has_s) return ONNX_ATTR_STRING;
    if (s->has_f) return ONNX_ATTR_FLOAT;
    if (s->has_i) return ONNX_ATTR_INT;
    return ONNX_ATTR_UNDEFINED;
}

static int attr_fill(dec *d, const pb_field *msg, onnx_attr *a, const attr_scan *s)
{
    pb_reader r;
    pb_field f;
    pb_iter it;
    uint64_t v;
    int rc;
    size_t nf = 0, ni = 0, ns = 0, nt = 0;
    if (!(a->floats = alloc_array(d, s->n_floats, sizeof(*a->floats), "floats", &rc))) return rc;
    if (!(a->ints = alloc_array(d, s->n_ints, sizeof(*a->ints), "ints", &rc))) return rc;
    if (!(a->strings = alloc_array(d, s->n_strings, sizeof(*a->strings), "strings", &rc)))
        return rc;
    if (!(a->tensors = alloc_array(d, s->n_tensors, sizeof(*a->tensors), "tensors", &rc)))
        return rc;
    pb_reader_sub(&r, msg);
    while (pb_more(&r)) {
        if ((rc = pb_next(&r, &f, d->eb)) < 0) return rc;
        switch (f.num) {
        case A_FLOATS:
            pb_iter_init(&it, &f, PB_I32);
            while ((rc = pb_iter_next(&it, &v, d->eb)) > 0 && nf < s->n_floats) {
                uint32_t bits = (uint32_t)v;
                memcpy(&a->floats[nf++], &bits, sizeof(bits));
            }
            if (rc < 0) return rouse_err_wrap(d->eb, rc, "floats");
            break;
        case A_INTS:
            pb_iter_init(&it, &f, PB_VARINT);
            while ((rc = pb_iter_next(&it, &v, d->eb)) > 0 && ni < s->n_ints)
                a->ints[ni++] = (int64_t)v;
            if (rc < 0) return rouse_err_wrap(d->eb, rc, "ints");
            break;
        case A_STRINGS: {
            /* Attribute strings are data, not identifiers: NULs are allowed. */
            char *str = rouse_arena_strndup(d->arena, (const char *)f.data, f.len);
            if (!str) return nomem(d, "strings");
            if (ns < s->n_strings) a->strings[ns++] = str;
            break;
        }
        case A_TENSORS:
            if (nt >= s->n_tensors) break;
            if ((rc = tensor_decode(d, &f, &a->tensors[nt])) < 0 ||
                (rc = not_external(d, &a->tensors[nt])) < 0)
                return wrap_tensor(d, rc, "tensors", (int)nt, &a->tensors[nt]);
            nt++;
            break;
        default:
            break;
        }
    }
    /* The first pass counted exactly what this pass decodes; a shortfall
     * would mean a varint that failed to decode, already reported above. */
    if (nf != s->n_floats || ni != s->n_ints || ns != s->n_strings || nt != s->n_tensors)
        return rouse_err_set(d->eb, ROUSE_EINTERNAL, "attribute values miscounted");
    a->n_floats = (int)nf;
    a->n_ints = (int)ni;
    a->n_strings = (int)ns;
    a->n_tensors = (int)nt;
    return 0;
}

static int attr_decode(dec *d, const pb_field *msg, onnx_attr *a)
{
    attr_scan s;
    int rc;
    memset(a, 0, sizeof(*a));
    memset(&s, 0, sizeof(s));
    if ((rc = attr_scan_fields(d, msg, a, &s)) < 0) return rc;
    if (!a->name || !a->name[0]) return rouse_err_set(d->eb, ROUSE_EFORMAT, "name is missing");
    a->type = s.type ? s.type : attr_infer_type(&s);
    a->has_graph = s.has_g || s.has_graphs;
    if (s.has_s) {
        char *str = rouse_arena_strndup(d->arena, (const char *)s.s.data, s.s.len);
        if (!str) return nomem(d, "s");
        a->s = str;
        a->s_len = s.s.len;
    }
    if (s.has_t) {
        onnx_tensor *t = rouse_arena_calloc(d->arena, 1, sizeof(*t), 16);
        if (!t) return nomem(d, "t");
        if ((rc = tensor_decode(d, &s.t, t)) < 0 || (rc = not_external(d, t)) < 0)
            return wrap_tensor(d, rc, "t", 0, t);
        a->t = t;
    }
    return attr_fill(d, msg, a, &s);
}

/* ---- NodeProto --------------------------------------------------------- */

enum { N_INPUT = 1, N_OUTPUT = 2, N_NAME = 3, N_OP_TYPE = 4, N_ATTRIBUTE = 5, N_DOMAIN = 7 };

static int node_decode(dec *d, const pb_field *msg, onnx_node *n)
{
    pb_reader r;
    pb_field f;
    int rc;
    size_t n_in = 0, n_out = 0, n_attr = 0;
    memset(n, 0, sizeof(*n));
    pb_reader_sub(&r, msg);
    while (pb_more(&r)) {
        if ((rc = pb_next(&r, &f, d->eb)) < 0) return rc;
        switch (f.num) {
        case N_INPUT:
            rc = count_msgs(d, &f, &n_in, "input");
            break;
        case N_OUTPUT:
            rc = count_msgs(d, &f, &n_out, "output");
            break;
        case N_ATTRIBUTE:
            rc = count_msgs(d, &f, &n_attr, "attribute");
            break;
        case N_NAME:
            rc = get_ident(d, &f, "name", &n->name);
            break;
        case N_OP_TYPE:
            rc = get_ident(d, &f, "op_type", &n->op_type);
            break;
        case N_DOMAIN:
            rc = get_ident(d, &f, "domain", &n->domain);
            break;
        default:
            break;
        }
        if (rc < 0) return rc;
    }
    if (!n->name) n->name = "";
    if (!n->domain) n->domain = "";
    if (!n->op_type || !n->op_type[0])
        return rouse_err_set(d->eb, ROUSE_EFORMAT, "op_type is missing");
    if (!(n->inputs = alloc_array(d, n_in, sizeof(*n->inputs), "input", &rc))) return rc;
    if (!(n->outputs = alloc_array(d, n_out, sizeof(*n->outputs), "output", &rc))) return rc;
    if (!(n->attrs = alloc_array(d, n_attr, sizeof(*n->attrs), "attribute", &rc))) return rc;

    pb_reader_sub(&r, msg);
    while (pb_more(&r)) {
        if ((rc = pb_next(&r, &f, d->eb)) < 0) return rc;
        if (f.num == N_INPUT && (size_t)n->n_inputs < n_in) {
            if ((rc = get_ident(d, &f, "input", &n->inputs[n->n_inputs])) < 0)
                return rouse_err_wrap(d->eb, rc, "input %d", n->n_inputs);
            n->n_inputs++;
        } else if (f.num == N_OUTPUT && (size_t)n->n_outputs < n_out) {
            if ((rc = get_ident(d, &f, "output", &n->outputs[n->n_outputs])) < 0)
                return rouse_err_wrap(d->eb, rc, "output %d", n->n_outputs);
            n->n_outputs++;
        } else if (f.num == N_ATTRIBUTE && (size_t)n->n_attrs < n_attr) {
            onnx_attr *a = &n->attrs[n->n_attrs];
            if ((rc = attr_decode(d, &f, a)) < 0) {
                if (a->name && a->name[0])
                    return rouse_err_wrap(d->eb, rc, "attribute '" NAME_FMT "'", a->name);
                return rouse_err_wrap(d->eb, rc, "attribute %d", n->n_attrs);
            }
            n->n_attrs++;
        }
    }
    return 0;
}

/* ---- ValueInfoProto / TypeProto ---------------------------------------- */

enum { VI_NAME = 1, VI_TYPE = 2 };
enum { TP_TENSOR = 1, TP_SEQUENCE = 4, TP_MAP = 5, TP_SPARSE = 8, TP_OPTIONAL = 9 };
enum { TT_ELEM_TYPE = 1, TT_SHAPE = 2 };
enum { SH_DIM = 1 };
enum { DIM_VALUE = 1, DIM_PARAM = 2 };

static int dim_decode(dec *d, const pb_field *msg, onnx_dim *dim)
{
    pb_reader r;
    pb_field f;
    int rc;
    dim->value = -1;
    dim->param = NULL;
    pb_reader_sub(&r, msg);
    while (pb_more(&r)) {
        if ((rc = pb_next(&r, &f, d->eb)) < 0) return rc;
        /* dim_value and dim_param are a oneof: the last one wins. */
        if (f.num == DIM_VALUE) {
            int64_t v;
            if ((rc = get_int64(d, &f, "dim_value", &v)) < 0) return rc;
            /* Some old exporters write -1 for "unknown"; that is what -1 means here too. */
            dim->value = v < 0 ? -1 : v;
            dim->param = NULL;
        } else if (f.num == DIM_PARAM) {
            if ((rc = get_ident(d, &f, "dim_param", &dim->param)) < 0) return rc;
            dim->value = -1;
        }
    }
    return 0;
}

static int shape_decode(dec *d, const pb_field *msg, onnx_value_info *vi)
{
    pb_reader r;
    pb_field f;
    int rc;
    size_t n = 0;
    pb_reader_sub(&r, msg);
    while (pb_more(&r)) {
        if ((rc = pb_next(&r, &f, d->eb)) < 0) return rc;
        if (f.num == SH_DIM && (rc = count_msgs(d, &f, &n, "dim")) < 0) return rc;
    }
    if (n > ONNX_MAX_RANK)
        return rouse_err_set(d->eb, ROUSE_EFORMAT, "rank %zu exceeds the limit of %d", n,
                             ONNX_MAX_RANK);
    if (!(vi->dims = alloc_array(d, n, sizeof(*vi->dims), "dim", &rc))) return rc;
    size_t k = 0;
    pb_reader_sub(&r, msg);
    while (pb_more(&r)) {
        if ((rc = pb_next(&r, &f, d->eb)) < 0) return rc;
        if (f.num != SH_DIM || k >= n) continue;
        if ((rc = dim_decode(d, &f, &vi->dims[k])) < 0)
            return rouse_err_wrap(d->eb, rc, "dim %zu", k);
        k++;
    }
    vi->rank = (int)k;
    return 0;
}

static int tensor_type_decode(dec *d, const pb_field *msg, onnx_value_info *vi)
{
    pb_reader r;
    pb_field f, shape;
    bool has_shape = false;
    int rc;
    memset(&shape, 0, sizeof(shape));
    pb_reader_sub(&r, msg);
    while (pb_more(&r)) {
        if ((rc = pb_next(&r, &f, d->eb)) < 0) return rc;
        if (f.num == TT_ELEM_TYPE) {
            if ((rc = get_int32(d, &f, "elem_type", &vi->elem_type)) < 0) return rc;
        } else if (f.num == TT_SHAPE) {
            if ((rc = expect(d, &f, "shape", PB_LEN)) < 0) return rc;
            if ((rc = once(d, &has_shape, &f, "shape")) < 0) return rc;
            shape = f;
        }
    }
    vi->is_tensor = true;
    if (!has_shape) return 0;
    if ((rc = shape_decode(d, &shape, vi)) < 0) return rouse_err_wrap(d->eb, rc, "shape");
    return 0;
}

static int type_decode(dec *d, const pb_field *msg, onnx_value_info *vi)
{
    pb_reader r;
    pb_field f, tensor;
    uint32_t kind = 0;
    int rc;
    memset(&tensor, 0, sizeof(tensor));
    pb_reader_sub(&r, msg);
    while (pb_more(&r)) {
        if ((rc = pb_next(&r, &f, d->eb)) < 0) return rc;
        switch (f.num) {
        case TP_TENSOR:
        case TP_SEQUENCE:
        case TP_MAP:
        case TP_SPARSE:
        case TP_OPTIONAL:
            /* A oneof: the last member present wins. */
            if ((rc = expect(d, &f, "value type", PB_LEN)) < 0) return rc;
            kind = f.num;
            tensor = f;
            break;
        default:
            break;
        }
    }
    if (kind != TP_TENSOR) return 0;
    if ((rc = tensor_type_decode(d, &tensor, vi)) < 0)
        return rouse_err_wrap(d->eb, rc, "tensor_type");
    return 0;
}

static int value_info_decode(dec *d, const pb_field *msg, onnx_value_info *vi)
{
    pb_reader r;
    pb_field f, type;
    bool has_type = false;
    int rc;
    memset(&type, 0, sizeof(type));
    memset(vi, 0, sizeof(*vi));
    vi->rank = -1;
    pb_reader_sub(&r, msg);
    while (pb_more(&r)) {
        if ((rc = pb_next(&r, &f, d->eb)) < 0) return rc;
        if (f.num == VI_NAME) {
            if ((rc = get_ident(d, &f, "name", &vi->name)) < 0) return rc;
        } else if (f.num == VI_TYPE) {
            if ((rc = expect(d, &f, "type", PB_LEN)) < 0) return rc;
            if ((rc = once(d, &has_type, &f, "type")) < 0) return rc;
            type = f;
        }
    }
    if (!vi->name) vi->name = "";
    if (!has_type) return 0;
    if ((rc = type_decode(d, &type, vi)) < 0) return rouse_err_wrap(d->eb, rc, "type");
    return 0;
}

/* ---- GraphProto -------------------------------------------------------- */

enum {
    G_NODE = 1,
    G_NAME = 2,
    G_INITIALIZER = 5,
    G_INPUT = 11,
    G_OUTPUT = 12,
    G_VALUE_INFO = 13,
    G_SPARSE_INITIALIZER = 15,
};

static int wrap_named(dec *d, int rc, const char *what, int idx, const char *name)
{
    if (name && name[0])
        return rouse_err_wrap(d->eb, rc, "%s %d ('" NAME_FMT "')", what, idx, name);
    return rouse_err_wrap(d->eb, rc, "%s %d", what, idx);
}

static int graph_decode(dec *d, const pb_field *msg, onnx_graph *g)
{
    pb_reader r;
    pb_field f;
    int rc;
    size_t n_node = 0, n_init = 0, n_in = 0, n_out = 0, n_vi = 0;
    pb_reader_sub(&r, msg);
    while (pb_more(&r)) {
        if ((rc = pb_next(&r, &f, d->eb)) < 0) return rc;
        switch (f.num) {
        case G_NODE:
            rc = count_msgs(d, &f, &n_node, "node");
            break;
        case G_INITIALIZER:
            rc = count_msgs(d, &f, &n_init, "initializer");
            break;
        case G_INPUT:
            rc = count_msgs(d, &f, &n_in, "input");
            break;
        case G_OUTPUT:
            rc = count_msgs(d, &f, &n_out, "output");
            break;
        case G_VALUE_INFO:
            rc = count_msgs(d, &f, &n_vi, "value_info");
            break;
        case G_NAME:
            rc = get_ident(d, &f, "name", &g->name);
            break;
        case G_SPARSE_INITIALIZER:
            return rouse_err_set(d->eb, ROUSE_EUNSUPPORTED,
                                 "sparse_initializer is not supported (at offset %zu)", f.off);
        default:
            break;
        }
        if (rc < 0) return rc;
    }
    if (!g->name) g->name = "";
    if (!(g->nodes = alloc_array(d, n_node, sizeof(*g->nodes), "node", &rc))) return rc;
    if (!(g->initializers = alloc_array(d, n_init, sizeof(*g->initializers), "initializer", &rc)))
        return rc;
    if (!(g->inputs = alloc_array(d, n_in, sizeof(*g->inputs), "input", &rc))) return rc;
    if (!(g->outputs = alloc_array(d, n_out, sizeof(*g->outputs), "output", &rc))) return rc;
    if (!(g->value_infos = alloc_array(d, n_vi, sizeof(*g->value_infos), "value_info", &rc)))
        return rc;

    pb_reader_sub(&r, msg);
    while (pb_more(&r)) {
        if ((rc = pb_next(&r, &f, d->eb)) < 0) return rc;
        if (f.num == G_NODE && (size_t)g->n_nodes < n_node) {
            onnx_node *n = &g->nodes[g->n_nodes];
            if ((rc = node_decode(d, &f, n)) < 0)
                return wrap_named(d, rc, "node", g->n_nodes, n->name);
            g->n_nodes++;
        } else if (f.num == G_INITIALIZER && (size_t)g->n_initializers < n_init) {
            onnx_tensor *t = &g->initializers[g->n_initializers];
            if ((rc = tensor_decode(d, &f, t)) < 0)
                return wrap_tensor(d, rc, "initializer", g->n_initializers, t);
            g->n_initializers++;
        } else if (f.num == G_INPUT && (size_t)g->n_inputs < n_in) {
            onnx_value_info *vi = &g->inputs[g->n_inputs];
            if ((rc = value_info_decode(d, &f, vi)) < 0)
                return wrap_named(d, rc, "input", g->n_inputs, vi->name);
            g->n_inputs++;
        } else if (f.num == G_OUTPUT && (size_t)g->n_outputs < n_out) {
            onnx_value_info *vi = &g->outputs[g->n_outputs];
            if ((rc = value_info_decode(d, &f, vi)) < 0)
                return wrap_named(d, rc, "output", g->n_outputs, vi->name);
            g->n_outputs++;
        } else if (f.num == G_VALUE_INFO && (size_t)g->n_value_infos < n_vi) {
            onnx_value_info *vi = &g->value_infos[g->n_value_infos];
            if ((rc = value_info_decode(d, &f, vi)) < 0)
                return wrap_named(d, rc, "value_info", g->n_value_infos, vi->name);
            g->n_value_infos++;
        }
    }
    return 0;
}

/* ---- ModelProto -------------------------------------------------------- */

enum {
    M_IR_VERSION = 1,
    M_PRODUCER_NAME = 2,
    M_PRODUCER_VERSION = 3,
    M_GRAPH = 7,
    M_OPSET_IMPORT = 8,
    M_FUNCTIONS = 25,
};
enum { OS_DOMAIN = 1, OS_VERSION = 2 };

static int opset_decode(dec *d, const pb_field *msg, onnx_opset *o)
{
    pb_reader r;
    pb_field f;
    int rc;
    o->domain = NULL;
    o->version = 0;
    pb_reader_sub(&r, msg);
    while (pb_more(&r)) {
        if ((rc = pb_next(&r, &f, d->eb)) < 0) return rc;
        if (f.num == OS_DOMAIN) {
            if ((rc = get_ident(d, &f, "domain", &o->domain)) < 0) return rc;
        } else if (f.num == OS_VERSION) {
            if ((rc = get_int64(d, &f, "version", &o->version)) < 0) return rc;
        }
    }
    if (!o->domain) o->domain = "";
    return 0;
}

static int model_decode(dec *d, const uint8_t *buf, size_t len, onnx_model *m)
{
    pb_reader r;
    pb_field f, graph;
    bool has_graph = false;
    size_t n_opsets = 0;
    int rc;
    memset(&graph, 0, sizeof(graph));
    pb_reader_init(&r, buf, len, 0);
    while (pb_more(&r)) {
        if ((rc = pb_next(&r, &f, d->eb)) < 0) return rc;
        switch (f.num) {
        case M_IR_VERSION:
            rc = get_int64(d, &f, "ir_version", &m->ir_version);
            break;
        case M_PRODUCER_NAME:
            rc = get_ident(d, &f, "producer_name", &m->producer_name);
            break;
        case M_PRODUCER_VERSION:
            rc = get_ident(d, &f, "producer_version", &m->producer_version);
            break;
        case M_OPSET_IMPORT:
            rc = count_msgs(d, &f, &n_opsets, "opset_import");
            break;
        case M_GRAPH:
            if ((rc = expect(d, &f, "graph", PB_LEN)) < 0) break;
            rc = once(d, &has_graph, &f, "graph");
            graph = f;
            break;
        case M_FUNCTIONS:
            m->has_functions = true;
            break;
        default:
            break;
        }
        if (rc < 0) return rc;
    }
    if (!m->producer_name) m->producer_name = "";
    if (!m->producer_version) m->producer_version = "";
    if (!has_graph) return rouse_err_set(d->eb, ROUSE_EFORMAT, "model has no graph");

    if (!(m->opsets = alloc_array(d, n_opsets, sizeof(*m->opsets), "opset_import", &rc))) return rc;
    pb_reader_init(&r, buf, len, 0);
    while (pb_more(&r)) {
        if ((rc = pb_next(&r, &f, d->eb)) < 0) return rc;
        if (f.num != M_OPSET_IMPORT || (size_t)m->n_opsets >= n_opsets) continue;
        if ((rc = opset_decode(d, &f, &m->opsets[m->n_opsets])) < 0)
            return rouse_err_wrap(d->eb, rc, "opset_import %d", m->n_opsets);
        m->n_opsets++;
    }
    return graph_decode(d, &graph, &m->graph);
}

int onnx_model_decode(const uint8_t *buf, size_t len, onnx_model *m, rouse_errbuf *eb)
{
    if (!m || (!buf && len))
        return rouse_err_set(eb, ROUSE_EINVAL, "onnx_model_decode: no buffer or model");
    memset(m, 0, sizeof(*m));
    rouse_arena_init(&m->arena, 0);
    dec d = {&m->arena, eb};
    int rc = model_decode(&d, buf, len, m);
    if (rc < 0) {
        rouse_arena_fini(&m->arena);
        memset(m, 0, sizeof(*m));
        return rc;
    }
    return 0;
}

void onnx_model_fini(onnx_model *m)
{
    if (!m) return;
    for (int i = 0; i < m->n_maps; i++)
        munmap(m->maps[i].addr, m->maps[i].len);
    rouse_arena_fini(&m->arena);
    memset(m, 0, sizeof(*m));
}

int onnx_tensor_decode(const uint8_t *buf, size_t len, rouse_arena *arena, onnx_tensor *t,
                       rouse_errbuf *eb)
{
    if (!arena || !t || (!buf && len))
        return rouse_err_set(eb, ROUSE_EINVAL, "onnx_tensor_decode: no buffer, arena or tensor");
    dec d = {arena, eb};
    /* Present the whole buffer as the payload of a length-delimited field so
     * that the same code decodes standalone and embedded tensors. */
    pb_field whole;
    memset(&whole, 0, sizeof(whole));
    whole.wire = PB_LEN;
    whole.data = buf;
    whole.len = len;
    int rc = tensor_decode(&d, &whole, t);
    if (rc == 0) rc = not_external(&d, t);
    if (rc < 0) {
        if (t->name && t->name[0])
            rouse_err_wrap(eb, rc, "tensor '" NAME_FMT "'", t->name);
        else
            rouse_err_wrap(eb, rc, "tensor");
        memset(t, 0, sizeof(*t));
        return rc;
    }
    return 0;
}

int64_t onnx_model_default_opset(const onnx_model *m)
{
    for (int i = 0; i < m->n_opsets; i++) {
        const char *dom = m->opsets[i].domain;
        if (!dom[0] || !strcmp(dom, "ai.onnx")) return m->opsets[i].version;
    }
    return -1;
}

const onnx_attr *onnx_node_attr(const onnx_node *n, const char *name)
{
    for (int i = 0; i < n->n_attrs; i++)
        if (!strcmp(n->attrs[i].name, name)) return &n->attrs[i];
    return NULL;
}
