/*
 * Reading tensors from .npy and ONNX TensorProto (.pb) files.
 *
 * The .npy header is a Python dict literal such as
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (1, 784), }
 * padded with spaces and ended by '\n'. We parse exactly that grammar
 * (strings, True/False, tuples of integers) rather than searching for
 * substrings, so that a header we do not understand is an error instead of
 * a silently wrong tensor.
 */
#include "cli/tensor_file.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "engine/onnx/onnx.h"

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
#define TENSOR_ALIGN 64

void cli_tensor_fini(cli_tensor *t)
{
    if (!t) return;
    free(t->name);
    free(t->data);
    memset(t, 0, sizeof(*t));
}

/* Byte size of a dense tensor; ROUSE_ETOOBIG on overflow. Checked before any
 * allocation so that a header claiming a huge shape costs nothing. */
static int shape_nbytes(int dtype, int rank, const int64_t *shape, size_t *nbytes, rouse_errbuf *eb)
{
    size_t es = rouse_dtype_size(dtype);
    if (es == 0)
        return rouse_err_set(eb, ROUSE_EUNSUPPORTED, "element type %d has no fixed size", dtype);
    if (rank < 0 || rank > ROUSE_MAX_RANK)
        return rouse_err_set(eb, ROUSE_ERANGE, "rank %d is outside 0..%d", rank, ROUSE_MAX_RANK);
    size_t n = es;
    for (int i = 0; i < rank; i++) {
        if (shape[i] < 0)
            return rouse_err_set(eb, ROUSE_EINVAL, "dimension %d is negative (%lld)", i,
                                 (long long)shape[i]);
        if (shape[i] && n > SIZE_MAX / (size_t)shape[i])
            return rouse_err_set(eb, ROUSE_ETOOBIG, "tensor of that shape is too large");
        n *= (size_t)shape[i];
    }
    *nbytes = n;
    return 0;
}

int cli_tensor_alloc(cli_tensor *t, const char *name, int dtype, int rank, const int64_t *shape,
                     rouse_errbuf *eb)
{
    memset(t, 0, sizeof(*t));
    size_t nbytes;
    int rc = shape_nbytes(dtype, rank, shape, &nbytes, eb);
    if (rc < 0) return rc;
    if (nbytes > SIZE_MAX - TENSOR_ALIGN)
        return rouse_err_set(eb, ROUSE_ETOOBIG, "tensor of that shape is too large");
    t->dtype = dtype;
    t->rank = rank;
    for (int i = 0; i < rank; i++)
        t->shape[i] = shape[i];
    t->nbytes = nbytes;
    /* aligned_alloc wants a size that is a multiple of the alignment. */
    size_t cap = (t->nbytes + TENSOR_ALIGN - 1) / TENSOR_ALIGN * TENSOR_ALIGN;
    if (cap == 0) cap = TENSOR_ALIGN;
    t->data = aligned_alloc(TENSOR_ALIGN, cap);
    t->name = strdup(name ? name : "");
    if (!t->data || !t->name) {
        cli_tensor_fini(t);
        return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory for a %zu-byte tensor", cap);
    }
    memset(t->data, 0, cap);
    return 0;
}

rouse_tensor cli_tensor_view(const cli_tensor *t, const char *name)
{
    rouse_tensor v = {.name = name ? name : t->name,
                      .dtype = t->dtype,
                      .rank = t->rank,
                      .data = t->data,
                      .nbytes = t->nbytes};
    memcpy(v.shape, t->shape, sizeof(v.shape));
    return v;
}

/* --- .npy header grammar ------------------------------------------------ */

typedef struct npy_lexer {
    const char *p, *end;
} npy_lexer;

static void lex_skip_space(npy_lexer *lx)
{
    while (lx->p < lx->end && (*lx->p == ' ' || *lx->p == '\t' || *lx->p == '\n' || *lx->p == '\r'))
        lx->p++;
}

static bool lex_accept(npy_lexer *lx, char c)
{
    lex_skip_space(lx);
    if (lx->p < lx->end && *lx->p == c) {
        lx->p++;
        return true;
    }
    return false;
}

/* A quoted string ('...' or "..."); no escapes occur in valid npy headers. */
static bool lex_string(npy_lexer *lx, const char **s, size_t *len)
{
    lex_skip_space(lx);
    if (lx->p >= lx->end || (*lx->p != '\'' && *lx->p != '"')) return false;
    char q = *lx->p++;
    const char *start = lx->p;
    while (lx->p < lx->end && *lx->p != q) {
        if (*lx->p == '\\') return false;
        lx->p++;
    }
    if (lx->p >= lx->end) return false;
    *s = start;
    *len = (size_t)(lx->p - start);
    lx->p++;
    return true;
}

static bool lex_word(npy_lexer *lx, const char *w)
{
    lex_skip_space(lx);
    size_t n = strlen(w);
    if ((size_t)(lx->end - lx->p) < n || memcmp(lx->p, w, n) != 0) return false;
    lx->p += n;
    return true;
}

/* A non-negative decimal integer (numpy may write "3L" in old files). */
static bool lex_dim(npy_lexer *lx, int64_t *v)
{
    lex_skip_space(lx);
    if (lx->p >= lx->end || *lx->p < '0' || *lx->p > '9') return false;
    int64_t x = 0;
    while (lx->p < lx->end && *lx->p >= '0' && *lx->p <= '9') {
        int d = *lx->p - '0';
        if (x > (INT64_MAX - d) / 10) return false;
        x = x * 10 + d;
        lx->p++;
    }
    if (lx->p < lx->end && *lx->p == 'L') lx->p++;
    *v = x;
    return true;
}

static bool str_is(const char *s, size_t len, const char *lit)
{
    return strlen(lit) == len && memcmp(s, lit, len) == 0;
}

/* Maps a descr such as "<f4" to a rouse dtype. */
static int npy_descr_dtype(const char *d, size_t len, int *dtype, rouse_errbuf *eb)
{
    if (len < 2)
        return rouse_err_set(eb, ROUSE_EFORMAT, "npy: dtype descriptor '%.*s' is not understood",
                             (int)len, d);
    char order = d[0];
    const char *code = d + 1;
    size_t clen = len - 1;
    if (order == '>')
        return rouse_err_set(eb, ROUSE_EUNSUPPORTED,
                             "npy: big-endian data ('%.*s') is not supported; save it "
                             "little-endian, e.g. a.astype(a.dtype.newbyteorder('<'))",
                             (int)len, d);
    if (order != '<' && order != '|' && order != '=')
        return rouse_err_set(eb, ROUSE_EFORMAT, "npy: dtype descriptor '%.*s' is not understood",
                             (int)len, d);
    static const struct {
        const char *code;
        int dtype;
    } map[] = {
        {"f2", ROUSE_DT_FLOAT16}, {"f4", ROUSE_DT_FLOAT},  {"f8", ROUSE_DT_DOUBLE},
        {"i1", ROUSE_DT_INT8},    {"i2", ROUSE_DT_INT16},  {"i4", ROUSE_DT_INT32},
        {"i8", ROUSE_DT_INT64},   {"u1", ROUSE_DT_UINT8},  {"u2", ROUSE_DT_UINT16},
        {"u4", ROUSE_DT_UINT32},  {"u8", ROUSE_DT_UINT64}, {"b1", ROUSE_DT_BOOL},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (str_is(code, clen, map[i].code)) {
            *dtype = map[i].dtype;
            return 0;
        }
    }
    if (clen >= 1 && (code[0] == 'O' || code[0] == 'U' || code[0] == 'S' || code[0] == 'V'))
        return rouse_err_set(eb, ROUSE_EUNSUPPORTED,
                             "npy: dtype '%.*s' (objects, strings or records) is not supported; "
                             "only numeric and bool arrays are",
                             (int)len, d);
    return rouse_err_set(eb, ROUSE_EUNSUPPORTED, "npy: dtype '%.*s' is not supported", (int)len, d);
}

/* Parses the header dict into dtype, fortran flag and shape. */
static int npy_parse_header(const char *h, size_t len, int *dtype, bool *fortran, int *rank,
                            int64_t *shape, rouse_errbuf *eb)
{
    npy_lexer lx = {h, h + len};
    bool have_descr = false, have_order = false, have_shape = false;
    if (!lex_accept(&lx, '{'))
        return rouse_err_set(eb, ROUSE_EFORMAT, "npy: header is not a dict ('{' expected)");
    while (!lex_accept(&lx, '}')) {
        const char *key;
        size_t klen;
        if (!lex_string(&lx, &key, &klen))
            return rouse_err_set(eb, ROUSE_EFORMAT, "npy: header dict key expected at offset %zu",
                                 (size_t)(lx.p - h));
        if (!lex_accept(&lx, ':'))
            return rouse_err_set(eb, ROUSE_EFORMAT, "npy: ':' expected after key '%.*s'", (int)klen,
                                 key);
        if (str_is(key, klen, "descr")) {
            const char *d;
            size_t dlen;
            if (!lex_string(&lx, &d, &dlen))
                return rouse_err_set(eb, ROUSE_EUNSUPPORTED,
                                     "npy: 'descr' is not a simple type string (structured "
                                     "arrays are not supported)");
            int rc = npy_descr_dtype(d, dlen, dtype, eb);
            if (rc < 0) return rc;
            have_descr = true;
        } else if (str_is(key, klen, "fortran_order")) {
            if (lex_word(&lx, "True"))
                *fortran = true;
            else if (lex_word(&lx, "False"))
                *fortran = false;
            else
                return rouse_err_set(eb, ROUSE_EFORMAT, "npy: 'fortran_order' is not True/False");
            have_order = true;
        } else if (str_is(key, klen, "shape")) {
            if (!lex_accept(&lx, '('))
                return rouse_err_set(eb, ROUSE_EFORMAT, "npy: 'shape' is not a tuple");
            *rank = 0;
            while (!lex_accept(&lx, ')')) {
                int64_t d;
                if (!lex_dim(&lx, &d))
                    return rouse_err_set(eb, ROUSE_EFORMAT,
                                         "npy: 'shape' holds something other than "
                                         "non-negative integers");
                if (*rank >= ROUSE_MAX_RANK)
                    return rouse_err_set(eb, ROUSE_EUNSUPPORTED,
                                         "npy: more than %d dimensions are not supported",
                                         ROUSE_MAX_RANK);
                shape[(*rank)++] = d;
                if (!lex_accept(&lx, ',')) {
                    if (!lex_accept(&lx, ')'))
                        return rouse_err_set(eb, ROUSE_EFORMAT,
                                             "npy: ',' or ')' expected in 'shape'");
                    break;
                }
            }
            have_shape = true;
        } else {
            return rouse_err_set(eb, ROUSE_EFORMAT, "npy: unexpected header key '%.*s'", (int)klen,
                                 key);
        }
        if (!lex_accept(&lx, ',')) {
            if (!lex_accept(&lx, '}'))
                return rouse_err_set(eb, ROUSE_EFORMAT, "npy: ',' or '}' expected in header");
            break;
        }
    }
    lex_skip_space(&lx);
    if (lx.p != lx.end)
        return rouse_err_set(eb, ROUSE_EFORMAT, "npy: unexpected text after the header dict");
    if (!have_descr || !have_order || !have_shape)
        return rouse_err_set(eb, ROUSE_EFORMAT, "npy: header lacks '%s'",
                             !have_descr   ? "descr"
                             : !have_order ? "fortran_order"
                                           : "shape");
    return 0;
}

int cli_npy_parse(const uint8_t *buf, size_t len, cli_tensor *out, rouse_errbuf *eb)
{
    memset(out, 0, sizeof(*out));
    if (len < NPY_MAGIC_LEN + 2 || memcmp(buf, NPY_MAGIC, NPY_MAGIC_LEN) != 0)
        return rouse_err_set(eb, ROUSE_EFORMAT, "npy: not a .npy file (magic missing)");
    uint8_t major = buf[6];
    size_t hlen, off;
    if (major == 1) {
        if (len < 10) return rouse_err_set(eb, ROUSE_EFORMAT, "npy: truncated header");
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8;
        off = 10;
    } else if (major == 2 || major == 3) {
        if (len < 12) return rouse_err_set(eb, ROUSE_EFORMAT, "npy: truncated header");
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
        off = 12;
    } else {
        return rouse_err_set(eb, ROUSE_EUNSUPPORTED, "npy: format version %u.%u is not supported",
                             major, buf[7]);
    }
    if (hlen > len - off)
        return rouse_err_set(eb, ROUSE_EFORMAT,
                             "npy: header says %zu bytes but the file has only %zu after it", hlen,
                             len - off);
    int dtype = 0, rank = 0;
    bool fortran = false;
    int64_t shape[ROUSE_MAX_RANK] = {0};
    int rc = npy_parse_header((const char *)buf + off, hlen, &dtype, &fortran, &rank, shape, eb);
    if (rc < 0) return rc;
    /* Fortran order is harmless when at most one dim exceeds 1, but we keep
     * the rule simple and predictable: the user re-saves in C order. */
    if (fortran)
        return rouse_err_set(eb, ROUSE_EUNSUPPORTED,
                             "npy: Fortran-order arrays are not supported; save with "
                             "np.ascontiguousarray(a)");
    size_t want, data_len = len - off - hlen;
    if ((rc = shape_nbytes(dtype, rank, shape, &want, eb)) < 0) return rc;
    if (data_len != want)
        return rouse_err_set(
            eb, ROUSE_EFORMAT, "npy: %s data: the shape needs %zu bytes, the file holds %zu",
            data_len < want ? "truncated" : "unexpected bytes after the", want, data_len);
    if ((rc = cli_tensor_alloc(out, "", dtype, rank, shape, eb)) < 0) return rc;
    memcpy(out->data, buf + off + hlen, out->nbytes);
    return 0;
}

int cli_pb_parse(const uint8_t *buf, size_t len, cli_tensor *out, rouse_errbuf *eb)
{
    memset(out, 0, sizeof(*out));
    rouse_arena arena;
    rouse_arena_init(&arena, 0);
    onnx_tensor t;
    int rc = onnx_tensor_decode(buf, len, &arena, &t, eb);
    if (rc < 0) goto out_arena;
    if (t.n_dims > ROUSE_MAX_RANK) {
        rc = rouse_err_set(eb, ROUSE_EUNSUPPORTED, "TensorProto '%s' has %d dims (at most %d)",
                           t.name, t.n_dims, ROUSE_MAX_RANK);
        goto out_arena;
    }
    if (rouse_dtype_size(t.data_type) == 0) {
        rc = rouse_err_set(eb, ROUSE_EUNSUPPORTED, "TensorProto '%s' has element type %s (%d)",
                           t.name, rouse_dtype_name(t.data_type), (int)t.data_type);
        goto out_arena;
    }
    size_t want;
    if ((rc = shape_nbytes(t.data_type, t.n_dims, t.dims, &want, eb)) < 0) goto out_arena;
    if (t.nbytes != want) {
        rc = rouse_err_set(eb, ROUSE_EFORMAT, "TensorProto '%s': %zu data bytes for %zu expected",
                           t.name, t.nbytes, want);
        goto out_arena;
    }
    if ((rc = cli_tensor_alloc(out, t.name, t.data_type, t.n_dims, t.dims, eb)) < 0) goto out_arena;
    if (t.nbytes) memcpy(out->data, t.data, t.nbytes);
out_arena:
    rouse_arena_fini(&arena);
    return rc;
}

int cli_file_slurp(const char *path, uint8_t **buf, size_t *len, rouse_errbuf *eb)
{
    int rc = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return rouse_err_set(eb, ROUSE_EIO, "cannot open %s: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    uint8_t *b = malloc(cap);
    if (!b) {
        rc = rouse_err_set(eb, ROUSE_ENOMEM, "out of memory reading %s", path);
        goto out_close;
    }
    for (;;) {
        if (n == cap) {
            uint8_t *nb = cap <= SIZE_MAX / 2 ? realloc(b, cap * 2) : NULL;
            if (!nb) {
                rc = rouse_err_set(eb, ROUSE_ENOMEM, "out of memory reading %s", path);
                goto out_free;
            }
            b = nb;
            cap *= 2;
        }
        size_t got = fread(b + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    if (ferror(f)) {
        rc = rouse_err_set(eb, ROUSE_EIO, "cannot read %s: %s", path, strerror(errno));
        goto out_free;
    }
    fclose(f);
    *buf = b;
    *len = n;
    return 0;
out_free:
    free(b);
out_close:
    fclose(f);
    return rc;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

int cli_tensor_read_file(const char *path, cli_tensor *out, rouse_errbuf *eb)
{
    memset(out, 0, sizeof(*out));
    uint8_t *buf;
    size_t len;
    int rc = cli_file_slurp(path, &buf, &len, eb);
    if (rc < 0) return rc;
    bool npy;
    if (ends_with(path, ".npy"))
        npy = true;
    else if (ends_with(path, ".pb"))
        npy = false;
    else
        npy = len >= NPY_MAGIC_LEN && memcmp(buf, NPY_MAGIC, NPY_MAGIC_LEN) == 0;
    rc = npy ? cli_npy_parse(buf, len, out, eb) : cli_pb_parse(buf, len, out, eb);
    if (rc < 0) rouse_err_wrap(eb, rc, "%s", path);
    free(buf);
    return rc;
}

/* --- .npy writer ------------------------------------------------------------ */

static const char *npy_descr_of(int dtype)
{
    switch (dtype) {
    case ROUSE_DT_FLOAT: return "<f4";
    case ROUSE_DT_DOUBLE: return "<f8";
    case ROUSE_DT_FLOAT16: return "<f2";
    case ROUSE_DT_BFLOAT16: return "<u2"; /* no numpy type: the bit patterns, as ONNX does */
    case ROUSE_DT_INT8: return "|i1";
    case ROUSE_DT_UINT8: return "|u1";
    case ROUSE_DT_INT16: return "<i2";
    case ROUSE_DT_UINT16: return "<u2";
    case ROUSE_DT_INT32: return "<i4";
    case ROUSE_DT_UINT32: return "<u4";
    case ROUSE_DT_INT64: return "<i8";
    case ROUSE_DT_UINT64: return "<u8";
    case ROUSE_DT_BOOL: return "|b1";
    default: return NULL;
    }
}

int cli_npy_write(const char *path, int dtype, int rank, const int64_t *shape, const void *data,
                  size_t nbytes, rouse_errbuf *eb)
{
    const char *descr = npy_descr_of(dtype);
    if (!descr) return rouse_err_set(eb, ROUSE_EUNSUPPORTED, "%s: element type %d has no .npy form", path, dtype);
    size_t want;
    int rc = shape_nbytes(dtype, rank, shape, &want, eb);
    if (rc < 0) return rc;
    if (want != nbytes)
        return rouse_err_set(eb, ROUSE_EINVAL, "%s: %zu bytes do not fill the shape (%zu)", path,
                             nbytes, want);
    char dict[512];
    int n = snprintf(dict, sizeof(dict), "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int i = 0; i < rank; i++)
        n += snprintf(dict + n, sizeof(dict) - (size_t)n, "%lld%s", (long long)shape[i],
                      rank == 1 ? "," : i + 1 < rank ? ", " : "");
    n += snprintf(dict + n, sizeof(dict) - (size_t)n, "), }");
    /* Magic, version 1.0, 2-byte length, dict padded with spaces to a
     * multiple of 64 and ended by a newline. */
    size_t total = NPY_MAGIC_LEN + 4 + (size_t)n + 1;
    size_t pad = (64 - total % 64) % 64;
    size_t hlen = (size_t)n + pad + 1;
    FILE *f = fopen(path, "wb");
    if (!f) return rouse_err_set(eb, ROUSE_EIO, "%s: %s", path, strerror(errno));
    unsigned char pre[NPY_MAGIC_LEN + 4];
    memcpy(pre, NPY_MAGIC, NPY_MAGIC_LEN);
    pre[6] = 1;
    pre[7] = 0;
    pre[8] = (unsigned char)(hlen & 0xff);
    pre[9] = (unsigned char)(hlen >> 8);
    bool ok = fwrite(pre, 1, sizeof(pre), f) == sizeof(pre) && fwrite(dict, 1, (size_t)n, f) == (size_t)n;
    for (size_t i = 0; ok && i < pad; i++)
        ok = fputc(' ', f) != EOF;
    ok = ok && fputc('\n', f) != EOF && (nbytes == 0 || fwrite(data, 1, nbytes, f) == nbytes);
    if (fclose(f) != 0) ok = false;
    if (!ok) return rouse_err_set(eb, ROUSE_EIO, "%s: cannot write: %s", path, strerror(errno));
    return 0;
}
