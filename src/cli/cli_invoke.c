/*
 * rouse invoke NAME: one inference request. Inputs come from .npy, ONNX
 * TensorProto .pb, JSON (an OIP input object or a nested array) or raw
 * bytes with --shape/--dtype, and travel in the binary tensor extension
 * (JSON inputs inline); --request sends a whole OIP request as it is.
 * Outputs are asked for in binary and printed readably: the top K classes
 * of a classifier-shaped output, a shape and a summary otherwise; --out DIR
 * writes each to DIR/NAME.npy; --json prints the OIP response as it is.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/out.h"
#include "cli/request.h"
#include "cli/tensor_file.h"
#include "common/arena.h"
#include "common/json.h"
#include "worker/oip.h"

#define MAX_INPUTS 16
#define DEFAULT_TOP 5

void cli_invoke_usage(FILE *out)
{
    fprintf(out,
            "usage: rouse invoke NAME (--input NAME=FILE [--shape D1xD2.. --dtype T]...\n"
            "                          | --request REQUEST.json) [options]\n\n"
            "Calls function NAME and prints its outputs: the top classes of a classifier-\n"
            "shaped output, a shape and a summary otherwise.\n\n"
            "options:\n"
            "  --input NAME=FILE  input NAME from FILE: .npy, ONNX TensorProto .pb, .json (an\n"
            "                     OIP input object or a nested array), or raw bytes\n"
            "  --shape D1xD2..    the shape of the input before it (raw and array .json)\n"
            "  --dtype T          its element type: FP32, FP16, INT64, UINT8, ... (raw files;\n"
            "                     .json arrays default to FP32)\n"
            "  --request FILE     send this whole OIP v2 inference request instead\n"
            "  --version V        a version number or an alias (default: latest)\n"
            "  --async            run it as a durable job and print its id (rouse job ID)\n"
            "  --top K            classes shown for a classifier-shaped output (default %d)\n"
            "  --out DIR          write every output to DIR/OUTPUT.npy\n" CLI_CLIENT_OPTIONS_HELP,
            DEFAULT_TOP);
}

typedef struct invoke_opts {
    const char *name, *request, *version, *out_dir;
    cli_input_spec in[MAX_INPUTS];
    int n_in;
    long top;
    bool async;
} invoke_opts;

/* --- outputs ------------------------------------------------------------------ */

static float half_to_float(uint16_t h)
{
    uint32_t s = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 31, m = h & 1023, f;
    if (e == 0) {
        float v = ldexpf((float)m, -24);
        return s ? -v : v;
    }
    if (e == 31)
        f = s | 0x7f800000u | (m << 13);
    else
        f = s | ((e + 112) << 23) | (m << 13);
    float v;
    memcpy(&v, &f, 4);
    return v;
}

/* Element i of a dense buffer as a double; NAN for types without one. */
static double elem(int dtype, const uint8_t *p, size_t i)
{
    switch (dtype) {
    case ROUSE_DT_FLOAT: { float v; memcpy(&v, p + 4 * i, 4); return v; }
    case ROUSE_DT_DOUBLE: { double v; memcpy(&v, p + 8 * i, 8); return v; }
    case ROUSE_DT_FLOAT16: { uint16_t v; memcpy(&v, p + 2 * i, 2); return half_to_float(v); }
    case ROUSE_DT_BFLOAT16: {
        uint16_t v;
        memcpy(&v, p + 2 * i, 2);
        uint32_t f = (uint32_t)v << 16;
        float x;
        memcpy(&x, &f, 4);
        return x;
    }
    case ROUSE_DT_INT8: return (int8_t)p[i];
    case ROUSE_DT_UINT8: case ROUSE_DT_BOOL: return p[i];
    case ROUSE_DT_INT16: { int16_t v; memcpy(&v, p + 2 * i, 2); return v; }
    case ROUSE_DT_UINT16: { uint16_t v; memcpy(&v, p + 2 * i, 2); return v; }
    case ROUSE_DT_INT32: { int32_t v; memcpy(&v, p + 4 * i, 4); return v; }
    case ROUSE_DT_UINT32: { uint32_t v; memcpy(&v, p + 4 * i, 4); return v; }
    case ROUSE_DT_INT64: { int64_t v; memcpy(&v, p + 8 * i, 8); return (double)v; }
    case ROUSE_DT_UINT64: { uint64_t v; memcpy(&v, p + 8 * i, 8); return (double)v; }
    default: return NAN;
    }
}

/* Writes x into element i of a dense buffer of dtype (for JSON outputs
 * written to .npy). */
static void set_elem(int dtype, uint8_t *p, size_t i, double x)
{
    switch (dtype) {
    case ROUSE_DT_FLOAT: { float v = (float)x; memcpy(p + 4 * i, &v, 4); break; }
    case ROUSE_DT_DOUBLE: memcpy(p + 8 * i, &x, 8); break;
    case ROUSE_DT_INT8: p[i] = (uint8_t)(int8_t)x; break;
    case ROUSE_DT_UINT8: case ROUSE_DT_BOOL: p[i] = (uint8_t)x; break;
    case ROUSE_DT_INT16: { int16_t v = (int16_t)x; memcpy(p + 2 * i, &v, 2); break; }
    case ROUSE_DT_UINT16: { uint16_t v = (uint16_t)x; memcpy(p + 2 * i, &v, 2); break; }
    case ROUSE_DT_INT32: { int32_t v = (int32_t)x; memcpy(p + 4 * i, &v, 4); break; }
    case ROUSE_DT_UINT32: { uint32_t v = (uint32_t)x; memcpy(p + 4 * i, &v, 4); break; }
    case ROUSE_DT_INT64: { int64_t v = (int64_t)x; memcpy(p + 8 * i, &v, 8); break; }
    case ROUSE_DT_UINT64: { uint64_t v = (uint64_t)x; memcpy(p + 8 * i, &v, 8); break; }
    default: break;
    }
}

static void flatten_numbers(const json_value *v, double *out, size_t cap, size_t *n)
{
    if (v->type == JSON_ARRAY) {
        for (size_t i = 0; i < v->u.arr.n; i++)
            flatten_numbers(v->u.arr.items[i], out, cap, n);
        return;
    }
    double x = NAN;
    if (v->type == JSON_TRUE) x = 1;
    else if (v->type == JSON_FALSE) x = 0;
    else json_as_double(v, &x);
    if (*n < cap) out[*n] = x;
    (*n)++;
}

static int cmp_desc(const void *a, const void *b)
{
    const double *x = a, *y = b; /* pairs (value, index) */
    return x[0] < y[0] ? 1 : x[0] > y[0] ? -1 : (x[1] > y[1]) - (x[1] < y[1]);
}

static void print_output(FILE *out, const char *name, const char *dt, int rank, const int64_t *shape,
                         const double *v, size_t n, long top)
{
    const char *b = cli_style_of(out, CLI_BOLD), *r = cli_style_of(out, CLI_RESET);
    fprintf(out, "%s%s%s  %s [", b, name, r, dt);
    size_t last = 0;
    for (int d = 0; d < rank; d++) {
        fprintf(out, "%s%" PRId64, d ? "," : "", shape[d]);
        last = (size_t)shape[d];
    }
    fprintf(out, "]\n");
    if (n == 0) return;
    bool is_float = strncmp(dt, "FP", 2) == 0 || strcmp(dt, "BF16") == 0;
    if (is_float && rank >= 1 && last >= 2 && last == n && top > 0) {
        /* Classifier-shaped: one row of scores. */
        double *pairs = malloc(2 * n * sizeof(double));
        if (!pairs) return;
        for (size_t i = 0; i < n; i++) {
            pairs[2 * i] = isnan(v[i]) ? -INFINITY : v[i];
            pairs[2 * i + 1] = (double)i;
        }
        qsort(pairs, n, 2 * sizeof(double), cmp_desc);
        size_t k = (size_t)top < n ? (size_t)top : n;
        fprintf(out, "  %-6s %s\n", "class", "score");
        for (size_t i = 0; i < k; i++)
            fprintf(out, "  %-6zu %.6g\n", (size_t)pairs[2 * i + 1], v[(size_t)pairs[2 * i + 1]]);
        free(pairs);
        return;
    }
    double lo = INFINITY, hi = -INFINITY, sum = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < lo) lo = v[i];
        if (v[i] > hi) hi = v[i];
        sum += v[i];
    }
    fprintf(out, "  min %.6g  max %.6g  mean %.6g\n  [", lo, hi, sum / (double)n);
    for (size_t i = 0; i < n && i < 8; i++)
        fprintf(out, "%s%.6g", i ? ", " : "", v[i]);
    fprintf(out, "%s]\n", n > 8 ? ", ..." : "");
}

/* Prints (and writes) every output of a response. */
static int show_outputs(FILE *out, const invoke_opts *o, const http_response *r, rouse_errbuf *eb)
{
    size_t json_len = r->infer_json_len >= 0 && (size_t)r->infer_json_len <= r->body.len
                          ? (size_t)r->infer_json_len
                          : r->body.len;
    const uint8_t *bin = (const uint8_t *)r->body.data + json_len;
    size_t bin_len = r->body.len - json_len;
    rouse_arena a;
    rouse_arena_init(&a, 0);
    json_value *v;
    int rc = json_parse(r->body.data, json_len, &a, &v, eb);
    if (rc < 0) {
        rouse_arena_fini(&a);
        return rouse_err_wrap(eb, ROUSE_EFORMAT, "the response is not OIP JSON");
    }
    const char *ver = json_as_string(json_get(v, "model_version"));
    fprintf(out, "%s version %s", o->name, ver ? ver : "?");
    if (r->rouse_start[0]) fprintf(out, ", %s start", r->rouse_start);
    if (r->server_timing[0]) fprintf(out, " (%s)", r->server_timing);
    fprintf(out, "\n");
    const json_value *outs = json_get(v, "outputs");
    size_t off = 0;
    for (size_t i = 0; rc == 0 && outs && outs->type == JSON_ARRAY && i < outs->u.arr.n; i++) {
        const json_value *o_v = outs->u.arr.items[i];
        const char *name = json_as_string(json_get(o_v, "name"));
        const char *dt = json_as_string(json_get(o_v, "datatype"));
        const json_value *sh = json_get(o_v, "shape");
        int rank = 0;
        int64_t shape[ROUSE_MAX_RANK];
        size_t n = 1;
        for (size_t d = 0; sh && sh->type == JSON_ARRAY && d < sh->u.arr.n && d < ROUSE_MAX_RANK; d++) {
            json_as_int64(sh->u.arr.items[d], &shape[rank]);
            n *= (size_t)shape[rank++];
        }
        int dtype = oip_datatype_parse(dt);
        if (!name || dtype < 0) {
            rc = rouse_err_set(eb, ROUSE_EFORMAT, "output %zu: no name or an unknown datatype", i);
            break;
        }
        size_t es = rouse_dtype_size(dtype);
        uint64_t bds = 0;
        const uint8_t *raw = NULL;
        if (json_as_uint64(json_get(json_get(o_v, "parameters"), "binary_data_size"), &bds)) {
            if (bds > bin_len - off || bds != n * es) {
                rc = rouse_err_set(eb, ROUSE_EFORMAT, "output %s: binary size %" PRIu64 " does not fit", name, bds);
                break;
            }
            raw = bin + off;
            off += bds;
        }
        double *vals = calloc(n ? n : 1, sizeof(double));
        uint8_t *dense = NULL;
        if (!vals) {
            rc = rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
            break;
        }
        if (raw) {
            for (size_t k = 0; k < n; k++)
                vals[k] = elem(dtype, raw, k);
        } else {
            size_t got = 0;
            const json_value *data = json_get(o_v, "data");
            if (data) flatten_numbers(data, vals, n, &got);
            if (got != n) {
                free(vals);
                rc = rouse_err_set(eb, ROUSE_EFORMAT, "output %s: %zu values for %zu elements", name, got, n);
                break;
            }
        }
        print_output(out, name, dt, rank, shape, vals, n, o->top);
        if (o->out_dir) {
            if (!raw && (dense = calloc(n ? n * es : 1, 1))) {
                for (size_t k = 0; k < n; k++)
                    set_elem(dtype, dense, k, vals[k]);
                raw = dense;
            }
            char path[4096];
            snprintf(path, sizeof(path), "%s/%s.npy", o->out_dir, name);
            if (strchr(name, '/'))
                rc = rouse_err_set(eb, ROUSE_EINVAL, "output name '%s' is not a file name", name);
            else if (raw)
                rc = cli_npy_write(path, dtype, rank, shape, raw, n * es, eb);
            if (rc == 0) fprintf(out, "  written to %s\n", path);
        }
        free(dense);
        free(vals);
    }
    rouse_arena_fini(&a);
    return rc;
}

static int invoke_run(cli_client *c, invoke_opts *o)
{
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    rouse_buf body;
    rouse_buf_init(&body);
    int rc = 0;
    size_t json_len = 0;
    bool binary_in = false;
    if (o->request) {
        uint8_t *buf;
        size_t len;
        if ((rc = cli_file_slurp(o->request, &buf, &len, &eb)) == 0) {
            rc = rouse_buf_append(&body, buf, len);
            free(buf);
        }
    } else {
        /* Outputs in binary (smaller, exact) unless JSON is wanted, or the
         * job keeps the response for later (a job's document embeds JSON). */
        rc = cli_request_build(o->in, o->n_in, !c->json && !o->async, &body, &json_len,
                               &binary_in, &eb);
    }
    if (rc < 0) {
        if (!eb.msg[0]) rouse_err_set(&eb, rc, "%s", rouse_strerror(rc));
        fprintf(stderr, "rouse invoke: %s\n", eb.msg);
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    char ihcl[64];
    snprintf(ihcl, sizeof(ihcl), "Inference-Header-Content-Length: %zu", json_len);
    rouse_buf path;
    rouse_buf_init(&path);
    rouse_buf_append_str(&path, "/v2/models/");
    cli_url_escape(&path, o->name);
    if (o->version) {
        rouse_buf_append_str(&path, "/versions/");
        cli_url_escape(&path, o->version);
    }
    rouse_buf_append_str(&path, "/infer");
    const char *h_json[] = {"Content-Type: application/json", NULL};
    const char *h_bin[] = {"Content-Type: application/octet-stream", ihcl, NULL};
    if (o->async) {
        rc = cli_jobs_submit(c, path.data, binary_in ? h_bin : h_json, body.data, body.len);
        rouse_buf_fini(&path);
        goto out;
    }
    http_response r;
    int st = cli_call(c, "POST", path.data, binary_in ? h_bin : h_json, body.data, body.len, &r);
    rouse_buf_fini(&path);
    rc = CLI_EXIT_FAIL;
    if (st < 0) goto out;
    if (r.status != 200) {
        cli_fail_response(c, &r);
        goto out;
    }
    if (c->json) {
        fwrite(r.body.data, 1, r.body.len, stdout);
        if (r.body.len && r.body.data[r.body.len - 1] != '\n') putchar('\n');
        rc = CLI_EXIT_OK;
    } else {
        if (o->out_dir && mkdir(o->out_dir, 0777) < 0 && errno != EEXIST) {
            fprintf(stderr, "rouse invoke: %s: %s\n", o->out_dir, strerror(errno));
        } else if (c->quiet && !o->out_dir) {
            rc = CLI_EXIT_OK;
        } else {
            /* -q with --out: the files, and nothing printed. */
            FILE *out = c->quiet ? fopen("/dev/null", "w") : stdout;
            int sr = out ? show_outputs(out, o, &r, &eb) : rouse_err_set(&eb, ROUSE_EIO, "/dev/null");
            if (out && out != stdout) fclose(out);
            if (sr < 0)
                fprintf(stderr, "rouse invoke: %s\n", eb.msg);
            else
                rc = CLI_EXIT_OK;
        }
    }
    http_response_fini(&r);
out:
    rouse_buf_fini(&body);
    return rc;
}

int cli_invoke_main(int argc, char **argv)
{
    cli_client c;
    int rc = cli_client_init(&c, "invoke", cli_invoke_usage, &argc, argv);
    if (rc) return rc;
    invoke_opts o = {.top = DEFAULT_TOP};
    rc = CLI_EXIT_USAGE;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--async") == 0) {
            o.async = true;
            continue;
        }
        bool takes = a[0] == '-' && strcmp(a, "-") != 0;
        if (takes && !v) {
            cli_usage_error("invoke", cli_invoke_usage, "needs a value", a);
            goto out;
        }
        if (strcmp(a, "--request") == 0) {
            o.request = v;
        } else if (strcmp(a, "--version") == 0) {
            o.version = v;
        } else if (strcmp(a, "--out") == 0) {
            o.out_dir = v;
        } else if (strcmp(a, "--top") == 0) {
            char *end;
            o.top = strtol(v, &end, 10);
            if (*end || end == v || o.top < 0 || o.top > 1000000) {
                cli_usage_error("invoke", cli_invoke_usage, "--top needs a count", v);
                goto out;
            }
        } else if (strcmp(a, "--input") == 0) {
            char *eq = strchr(argv[i + 1], '=');
            if (!eq || eq == argv[i + 1] || !eq[1] || o.n_in == MAX_INPUTS) {
                cli_usage_error("invoke", cli_invoke_usage, "--input needs NAME=FILE", v);
                goto out;
            }
            *eq = '\0';
            o.in[o.n_in++] = (cli_input_spec){.name = argv[i + 1], .file = eq + 1};
        } else if (strcmp(a, "--shape") == 0 || strcmp(a, "--dtype") == 0) {
            if (o.n_in == 0) {
                cli_usage_error("invoke", cli_invoke_usage, "give it after the --input it describes", a);
                goto out;
            }
            if (a[2] == 's')
                o.in[o.n_in - 1].shape = v;
            else
                o.in[o.n_in - 1].dtype = v;
        } else if (takes) {
            cli_usage_error("invoke", cli_invoke_usage, "unknown option", a);
            goto out;
        } else if (!o.name) {
            o.name = a;
            continue;
        } else {
            cli_usage_error("invoke", cli_invoke_usage, "unexpected argument", a);
            goto out;
        }
        i++;
    }
    if (!o.name || (!o.request) == (o.n_in == 0)) {
        cli_usage_error("invoke", cli_invoke_usage, "needs NAME and either --request or --input", NULL);
        goto out;
    }
    rc = invoke_run(&c, &o);
out:
    cli_client_fini(&c);
    return rc;
}
