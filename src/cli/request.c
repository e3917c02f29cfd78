/*
 * Inference requests from files (see request.h).
 */
#include "cli/request.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/tensor_file.h"
#include "common/arena.h"
#include "common/json.h"
#include "worker/oip.h"

static bool has_ext(const char *path, const char *ext)
{
    size_t n = strlen(path), e = strlen(ext);
    return n > e && strcasecmp(path + n - e, ext) == 0;
}

static int parse_shape(const char *text, int *rank, int64_t *shape)
{
    *rank = 0;
    const char *p = text;
    while (*p) {
        char *end;
        long long d = strtoll(p, &end, 10);
        if (end == p || d < 0 || *rank == ROUSE_MAX_RANK) return -1;
        shape[(*rank)++] = d;
        p = end;
        if (*p == 'x' || *p == 'X' || *p == ',') p++;
        else if (*p) return -1;
    }
    return *rank > 0 ? 0 : -1;
}

static void write_shape_json(rouse_buf *b, int rank, const int64_t *shape)
{
    rouse_buf_append_str(b, "[");
    for (int d = 0; d < rank; d++)
        rouse_buf_appendf(b, "%s%" PRId64, d ? "," : "", shape[d]);
    rouse_buf_append_str(b, "]");
}

/* The shape of a nested JSON array of numbers (rectangular), or -1. */
static int array_shape(const json_value *v, int *rank, int64_t *shape)
{
    *rank = 0;
    while (v->type == JSON_ARRAY) {
        if (*rank == ROUSE_MAX_RANK) return -1;
        shape[(*rank)++] = (int64_t)v->u.arr.n;
        if (v->u.arr.n == 0) return 0;
        v = v->u.arr.items[0];
    }
    return v->type == JSON_NUMBER || v->type == JSON_TRUE || v->type == JSON_FALSE ? 0 : -1;
}

/* Writes the JSON of v (numbers, arrays) as it is. */
static void write_json(rouse_buf *b, const json_value *v)
{
    if (v->type == JSON_ARRAY) {
        rouse_buf_append_str(b, "[");
        for (size_t i = 0; i < v->u.arr.n; i++) {
            if (i) rouse_buf_append_str(b, ",");
            write_json(b, v->u.arr.items[i]);
        }
        rouse_buf_append_str(b, "]");
    } else if (v->type == JSON_NUMBER) {
        if (v->u.num.is_int)
            json_write_int64(b, v->u.num.i);
        else
            json_write_double(b, v->u.num.d);
    } else if (v->type == JSON_TRUE || v->type == JSON_FALSE) {
        rouse_buf_append_str(b, v->type == JSON_TRUE ? "true" : "false");
    } else if (v->type == JSON_STRING) {
        json_write_string(b, v->u.str.s, v->u.str.len);
    } else {
        rouse_buf_append_str(b, "null");
    }
}

/* One input into the request: its JSON object into hdr, its bytes (if
 * binary) onto bin. */
static int add_input(const cli_input_spec *s, rouse_buf *hdr, rouse_buf *bin, rouse_errbuf *eb)
{
    int rc = 0;
    rouse_buf_append_str(hdr, "{\"name\":");
    json_write_string(hdr, s->name, strlen(s->name));
    if (has_ext(s->file, ".json")) {
        uint8_t *buf;
        size_t len;
        if ((rc = cli_file_slurp(s->file, &buf, &len, eb)) < 0) return rc;
        rouse_arena a;
        rouse_arena_init(&a, 0);
        json_value *v;
        if ((rc = json_parse((const char *)buf, len, &a, &v, eb)) < 0) {
            rc = rouse_err_wrap(eb, ROUSE_EFORMAT, "%s", s->file);
        } else if (v->type == JSON_OBJECT) { /* an OIP input object */
            const json_value *shape = json_get(v, "shape"), *dt = json_get(v, "datatype"),
                             *data = json_get(v, "data");
            if (!shape || !dt || !data)
                rc = rouse_err_set(eb, ROUSE_EFORMAT,
                                   "%s: an input object needs shape, datatype and data", s->file);
            else {
                rouse_buf_append_str(hdr, ",\"shape\":");
                write_json(hdr, shape);
                rouse_buf_append_str(hdr, ",\"datatype\":");
                write_json(hdr, dt);
                rouse_buf_append_str(hdr, ",\"data\":");
                write_json(hdr, data);
                rouse_buf_append_str(hdr, "}");
            }
        } else {
            int rank;
            int64_t shape[ROUSE_MAX_RANK];
            if (s->shape) {
                if (parse_shape(s->shape, &rank, shape) < 0) rc = ROUSE_EINVAL;
            } else if (array_shape(v, &rank, shape) < 0) {
                rc = rouse_err_set(eb, ROUSE_EFORMAT,
                                   "%s: not an OIP input object nor a rectangular array of "
                                   "numbers",
                                   s->file);
            }
            if (rc == 0) {
                rouse_buf_append_str(hdr, ",\"shape\":");
                write_shape_json(hdr, rank, shape);
                rouse_buf_appendf(hdr, ",\"datatype\":\"%s\",\"data\":", s->dtype ? s->dtype : "FP32");
                write_json(hdr, v);
                rouse_buf_append_str(hdr, "}");
            }
        }
        rouse_arena_fini(&a);
        free(buf);
        return rc;
    }
    cli_tensor t;
    memset(&t, 0, sizeof(t));
    if (has_ext(s->file, ".npy") || has_ext(s->file, ".pb")) {
        if ((rc = cli_tensor_read_file(s->file, &t, eb)) < 0) return rc;
        if (s->shape || s->dtype) {
            cli_tensor_fini(&t);
            return rouse_err_set(eb, ROUSE_EINVAL,
                                 "%s: --shape and --dtype are for raw files; this one has both",
                                 s->file);
        }
    } else { /* raw bytes */
        int rank, dtype = s->dtype ? oip_datatype_parse(s->dtype) : -1;
        int64_t shape[ROUSE_MAX_RANK];
        if (!s->shape || !s->dtype)
            return rouse_err_set(eb, ROUSE_EINVAL,
                                 "%s: a raw input needs --shape and --dtype (or use .npy, .pb "
                                 "or .json)",
                                 s->file);
        if (dtype < 0) return rouse_err_set(eb, ROUSE_EINVAL, "--dtype %s: not an OIP datatype", s->dtype);
        if (parse_shape(s->shape, &rank, shape) < 0)
            return rouse_err_set(eb, ROUSE_EINVAL, "--shape %s: give dimensions like 1x3x224x224",
                                 s->shape);
        uint8_t *buf;
        size_t len;
        if ((rc = cli_file_slurp(s->file, &buf, &len, eb)) < 0) return rc;
        rc = cli_tensor_alloc(&t, s->name, dtype, rank, shape, eb);
        if (rc == 0 && t.nbytes != len)
            rc = rouse_err_set(eb, ROUSE_EINVAL,
                               "%s: %zu bytes, but shape %s of %s takes %zu", s->file, len,
                               s->shape, s->dtype, t.nbytes);
        if (rc == 0) memcpy(t.data, buf, len);
        free(buf);
        if (rc < 0) {
            cli_tensor_fini(&t);
            return rc;
        }
    }
    const char *dt = oip_datatype_name(t.dtype);
    if (!dt) {
        cli_tensor_fini(&t);
        return rouse_err_set(eb, ROUSE_EUNSUPPORTED, "%s: element type not supported", s->file);
    }
    rouse_buf_append_str(hdr, ",\"shape\":");
    write_shape_json(hdr, t.rank, t.shape);
    rouse_buf_appendf(hdr, ",\"datatype\":\"%s\",\"parameters\":{\"binary_data_size\":%zu}}", dt,
                      t.nbytes);
    rc = rouse_buf_append(bin, t.data, t.nbytes);
    cli_tensor_fini(&t);
    return rc;
}

int cli_request_build(const cli_input_spec *in, int n, bool binary_outputs, rouse_buf *body,
                      size_t *json_len, bool *binary, rouse_errbuf *eb)
{
    rouse_buf bin;
    rouse_buf_init(&bin);
    int rc = rouse_buf_append_str(body, "{\"inputs\":[");
    for (int i = 0; i < n && rc == 0; i++) {
        if (i) rouse_buf_append_str(body, ",");
        rc = add_input(&in[i], body, &bin, eb);
    }
    if (rc == 0)
        rc = rouse_buf_appendf(body, "]%s}",
                               binary_outputs ? ",\"parameters\":{\"binary_data_output\":true}" : "");
    *json_len = body->len;
    *binary = bin.len > 0;
    if (rc == 0 && bin.len) rc = rouse_buf_append(body, bin.data, bin.len);
    rouse_buf_fini(&bin);
    return rc;
}
