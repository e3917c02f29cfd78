/*
 * rouse inspect: what a model is made of and what running it takes
 * (rouse/inspect.h), as text for people or JSON for scripts. The report
 * comes even for models the engine cannot run: its operator table says
 * which operators are missing.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/buf.h"
#include "cli/accuracy.h"
#include "common/json.h"
#include "rouse/inspect.h"

#define INSPECT_MAX_INPUTS 64

void cli_inspect_usage(FILE *out)
{
    fprintf(out, "usage: rouse inspect MODEL.onnx [--input NAME=DIMS]... [--json]\n"
                 "       rouse inspect FILE.plan [--json]\n\n"
                 "Prints a model's inputs and outputs with their dims (symbolic ones by name),\n"
                 "its opsets, an operator histogram saying which operators the engine runs at\n"
                 "the model's opset, the bytes of its weights, and, at the inspected input\n"
                 "shapes, the multiply-accumulates of one inference (Conv, Gemm, MatMul) and\n"
                 "the activation memory a session plans.\n\n"
                 "  --input NAME=DIMS  inspect input NAME at DIMS, e.g. images=1x3x640x640\n"
                 "                     (default: the declared shape, dynamic dims as 1)\n"
                 "  --json             one JSON object on stdout, for scripts\n\n"
                 "A compiled plan shows its inputs and outputs, the precision it computes in\n"
                 "and the accuracy against fp32 measured when it was compiled (rouse compile\n"
                 "--precision).\n\n"
                 "Exit status: 0 ok (also for a model with unsupported operators), 1 the file\n"
                 "cannot be read as ONNX, 2 usage.\n");
}

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "rouse inspect: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n\n");
    cli_inspect_usage(stderr);
    return CLI_EXIT_USAGE;
}

/* "NAME=1x3x224x224" (x or , between dims; an empty DIMS is a scalar). */
static bool parse_input(const char *s, rouse_tensor *t, char **name)
{
    const char *eq = strchr(s, '=');
    if (!eq || eq == s) return false;
    *name = strndup(s, (size_t)(eq - s));
    if (!*name) return false;
    t->name = *name;
    t->rank = 0;
    const char *p = eq + 1;
    while (*p) {
        if (t->rank == ROUSE_MAX_RANK) return false;
        errno = 0;
        char *end;
        long long v = strtoll(p, &end, 10);
        if (errno || end == p || v < 0 || v > ((long long)1 << 40)) return false;
        t->shape[t->rank++] = v;
        p = end;
        if (*p == 'x' || *p == ',') {
            p++;
            if (!*p) return false;
        } else if (*p) {
            return false;
        }
    }
    return true;
}

static void human_bytes(uint64_t b, char *buf, size_t len)
{
    if (b < 1024)
        snprintf(buf, len, "%llu B", (unsigned long long)b);
    else if (b < 1024 * 1024)
        snprintf(buf, len, "%.1f KiB", (double)b / 1024);
    else if (b < 1024ull * 1024 * 1024)
        snprintf(buf, len, "%.1f MiB", (double)b / (1024 * 1024));
    else
        snprintf(buf, len, "%.2f GiB", (double)b / (1024.0 * 1024 * 1024));
}

static void human_count(uint64_t n, char *buf, size_t len)
{
    if (n < 1000)
        snprintf(buf, len, "%llu", (unsigned long long)n);
    else if (n < 1000000)
        snprintf(buf, len, "%.2f K", (double)n / 1e3);
    else if (n < 1000000000)
        snprintf(buf, len, "%.2f M", (double)n / 1e6);
    else
        snprintf(buf, len, "%.2f G", (double)n / 1e9);
}

static void print_dims(const rouse_inspect_tensor *t)
{
    if (t->rank < 0) {
        printf("[?]");
        return;
    }
    printf("[");
    for (int k = 0; k < t->rank; k++) {
        if (k) printf(", ");
        if (t->dim_names[k])
            printf("%s", t->dim_names[k]);
        else if (t->dims[k] < 0)
            printf("?");
        else
            printf("%lld", (long long)t->dims[k]);
    }
    printf("]");
}

static void print_shape(int rank, const int64_t *shape)
{
    printf("[");
    for (int k = 0; k < rank; k++)
        printf("%s%lld", k ? ", " : "", (long long)shape[k]);
    printf("]");
}

static void print_tensors(const char *title, const rouse_inspect_tensor *ts, int n, bool known)
{
    printf("%s:\n", title);
    for (int i = 0; i < n; i++) {
        const rouse_inspect_tensor *t = &ts[i];
        printf("  %-24s %-8s ", t->name, t->dtype ? rouse_dtype_name(t->dtype) : "?");
        print_dims(t);
        if (known && t->shape_rank >= 0) {
            printf("  at ");
            print_shape(t->shape_rank, t->shape);
        }
        printf("\n");
    }
}

static void print_text(const char *path, const rouse_inspect_report *r)
{
    char a[32], b[32];
    printf("model: %s (ONNX IR %lld)\n", path, (long long)r->ir_version);
    printf("opsets:");
    for (int i = 0; i < r->n_opsets; i++)
        printf("%s %s %lld", i ? "," : "", r->opsets[i].domain, (long long)r->opsets[i].version);
    printf("\n");
    print_tensors("inputs", r->inputs, r->n_inputs, r->shapes_known);
    print_tensors("outputs", r->outputs, r->n_outputs, r->shapes_known);
    printf("operators: %d nodes, %d kinds, %d unsupported\n", r->n_nodes, r->n_ops,
           r->n_unsupported);
    for (int i = 0; i < r->n_ops; i++) {
        const rouse_inspect_op *o = &r->ops[i];
        char name[160];
        if (strcmp(o->domain, "ai.onnx"))
            snprintf(name, sizeof(name), "%s.%s", o->domain, o->op_type);
        else
            snprintf(name, sizeof(name), "%s", o->op_type);
        printf("  %-28s x%-6d ", name, o->count);
        if (o->supported)
            printf("supported\n");
        else
            printf("unsupported at opset %lld\n", (long long)r->opset);
    }
    human_bytes(r->weight_bytes, a, sizeof(a));
    printf("weights: %s (%llu bytes in %d initializers)\n", a, (unsigned long long)r->weight_bytes,
           r->n_weights);
    if (r->shapes_known) {
        human_count(r->macs, a, sizeof(a));
        printf("multiply-accumulates: %s per inference (%llu)\n", a, (unsigned long long)r->macs);
    }
    if (r->arena_known) {
        human_bytes(r->arena_bytes, b, sizeof(b));
        printf("activation arena: %s (%llu bytes)\n", b, (unsigned long long)r->arena_bytes);
    }
    if (!r->shapes_known || !r->arena_known) printf("not computed: %s\n", r->why_unknown);
}

static void json_tensors(rouse_buf *j, const rouse_inspect_tensor *ts, int n)
{
    rouse_buf_append(j, "[", 1);
    for (int i = 0; i < n; i++) {
        const rouse_inspect_tensor *t = &ts[i];
        rouse_buf_appendf(j, "%s{\"name\":", i ? "," : "");
        json_write_string(j, t->name, strlen(t->name));
        rouse_buf_appendf(j, ",\"dtype\":");
        const char *dt = t->dtype ? rouse_dtype_name(t->dtype) : "";
        json_write_string(j, dt, strlen(dt));
        rouse_buf_appendf(j, ",\"dims\":");
        if (t->rank < 0) {
            rouse_buf_appendf(j, "null");
        } else {
            rouse_buf_append(j, "[", 1);
            for (int k = 0; k < t->rank; k++) {
                if (k) rouse_buf_append(j, ",", 1);
                if (t->dim_names[k])
                    json_write_string(j, t->dim_names[k], strlen(t->dim_names[k]));
                else if (t->dims[k] < 0)
                    rouse_buf_appendf(j, "null");
                else
                    json_write_int64(j, t->dims[k]);
            }
            rouse_buf_append(j, "]", 1);
        }
        rouse_buf_appendf(j, ",\"shape\":");
        if (t->shape_rank < 0) {
            rouse_buf_appendf(j, "null");
        } else {
            rouse_buf_append(j, "[", 1);
            for (int k = 0; k < t->shape_rank; k++) {
                if (k) rouse_buf_append(j, ",", 1);
                json_write_int64(j, t->shape[k]);
            }
            rouse_buf_append(j, "]", 1);
        }
        rouse_buf_append(j, "}", 1);
    }
    rouse_buf_append(j, "]", 1);
}

static int print_json(const char *path, const rouse_inspect_report *r)
{
    rouse_buf j;
    rouse_buf_init(&j);
    rouse_buf_appendf(&j, "{\"model\":");
    json_write_string(&j, path, strlen(path));
    rouse_buf_appendf(&j, ",\"ir_version\":%lld,\"opset\":%lld,\"opsets\":[",
                      (long long)r->ir_version, (long long)r->opset);
    for (int i = 0; i < r->n_opsets; i++) {
        rouse_buf_appendf(&j, "%s{\"domain\":", i ? "," : "");
        json_write_string(&j, r->opsets[i].domain, strlen(r->opsets[i].domain));
        rouse_buf_appendf(&j, ",\"version\":%lld}", (long long)r->opsets[i].version);
    }
    rouse_buf_appendf(&j, "],\"inputs\":");
    json_tensors(&j, r->inputs, r->n_inputs);
    rouse_buf_appendf(&j, ",\"outputs\":");
    json_tensors(&j, r->outputs, r->n_outputs);
    rouse_buf_appendf(&j, ",\"nodes\":%d,\"operators\":[", r->n_nodes);
    for (int i = 0; i < r->n_ops; i++) {
        const rouse_inspect_op *o = &r->ops[i];
        rouse_buf_appendf(&j, "%s{\"op_type\":", i ? "," : "");
        json_write_string(&j, o->op_type, strlen(o->op_type));
        rouse_buf_appendf(&j, ",\"domain\":");
        json_write_string(&j, o->domain, strlen(o->domain));
        rouse_buf_appendf(&j, ",\"count\":%d,\"supported\":%s}", o->count,
                          o->supported ? "true" : "false");
    }
    rouse_buf_appendf(&j, "],\"unsupported\":%d,\"weights\":%d,\"weight_bytes\":%llu",
                      r->n_unsupported, r->n_weights, (unsigned long long)r->weight_bytes);
    rouse_buf_appendf(&j, ",\"macs\":");
    if (r->shapes_known)
        json_write_uint64(&j, r->macs);
    else
        rouse_buf_appendf(&j, "null");
    rouse_buf_appendf(&j, ",\"arena_bytes\":");
    if (r->arena_known)
        json_write_uint64(&j, r->arena_bytes);
    else
        rouse_buf_appendf(&j, "null");
    rouse_buf_appendf(&j, ",\"not_computed\":");
    if (r->shapes_known && r->arena_known)
        rouse_buf_appendf(&j, "null");
    else
        json_write_string(&j, r->why_unknown, strlen(r->why_unknown));
    rouse_buf_appendf(&j, "}\n");
    int ok = j.data && fwrite(j.data, 1, j.len, stdout) == j.len;
    rouse_buf_fini(&j);
    return ok ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

static bool is_plan(const char *path)
{
    char magic[8] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    size_t n = fread(magic, 1, sizeof(magic), f);
    fclose(f);
    return n == sizeof(magic) && memcmp(magic, "ROUSEPLN", 8) == 0;
}

static void plan_tensor_json(rouse_buf *j, const rouse_tensor_info *t)
{
    rouse_buf_appendf(j, "{\"name\":");
    json_write_string(j, t->name, strlen(t->name));
    const char *dt = rouse_dtype_name(t->dtype);
    rouse_buf_appendf(j, ",\"dtype\":");
    json_write_string(j, dt, strlen(dt));
    rouse_buf_appendf(j, ",\"dims\":[");
    for (int k = 0; k < t->rank; k++) {
        if (k) rouse_buf_append(j, ",", 1);
        if (t->dim_names && t->dim_names[k])
            json_write_string(j, t->dim_names[k], strlen(t->dim_names[k]));
        else if (t->shape[k] < 0)
            rouse_buf_appendf(j, "null");
        else
            json_write_int64(j, t->shape[k]);
    }
    rouse_buf_appendf(j, "]}");
}

/* A compiled plan: its interface, precision and accuracy figures. */
static int inspect_plan(const char *path, bool json)
{
    rouse_errbuf eb;
    rouse_model *m;
    if (rouse_model_open_plan(path, &m, &eb) < 0) {
        fprintf(stderr, "rouse inspect: %s\n", eb.msg);
        return CLI_EXIT_FAIL;
    }
    rouse_accuracy acc;
    rouse_model_accuracy(m, &acc);
    int status = CLI_EXIT_OK;
    if (json) {
        rouse_buf j;
        rouse_buf_init(&j);
        rouse_buf_appendf(&j, "{\"plan\":");
        json_write_string(&j, path, strlen(path));
        for (int io = 0; io < 2; io++) {
            rouse_buf_appendf(&j, io ? "],\"outputs\":[" : ",\"inputs\":[");
            int n = io ? rouse_model_n_outputs(m) : rouse_model_n_inputs(m);
            for (int i = 0; i < n; i++) {
                rouse_tensor_info t;
                if (io) rouse_model_output(m, i, &t);
                else rouse_model_input(m, i, &t);
                if (i) rouse_buf_append(&j, ",", 1);
                plan_tensor_json(&j, &t);
            }
        }
        rouse_buf_appendf(&j, "],\"precision\":\"%s\",\"accuracy\":",
                          rouse_precision_name(acc.precision));
        if (acc.source == ROUSE_ACCURACY_NONE) rouse_buf_appendf(&j, "null");
        else cli_accuracy_json(&acc, &j);
        rouse_buf_appendf(&j, "}\n");
        if (!j.data || fwrite(j.data, 1, j.len, stdout) != j.len) status = CLI_EXIT_FAIL;
        rouse_buf_fini(&j);
    } else {
        printf("plan: %s\n", path);
        for (int io = 0; io < 2; io++) {
            printf("%s:\n", io ? "outputs" : "inputs");
            int n = io ? rouse_model_n_outputs(m) : rouse_model_n_inputs(m);
            for (int i = 0; i < n; i++) {
                rouse_tensor_info t;
                if (io) rouse_model_output(m, i, &t);
                else rouse_model_input(m, i, &t);
                printf("  %-24s %-8s [", t.name, rouse_dtype_name(t.dtype));
                for (int k = 0; k < t.rank; k++) {
                    if (t.dim_names && t.dim_names[k]) printf("%s%s", k ? ", " : "", t.dim_names[k]);
                    else if (t.shape[k] < 0) printf("%s?", k ? ", " : "");
                    else printf("%s%lld", k ? ", " : "", (long long)t.shape[k]);
                }
                printf("]\n");
            }
        }
        cli_accuracy_print(stdout, &acc);
    }
    rouse_model_destroy(m);
    return status;
}

int cli_inspect_main(int argc, char **argv)
{
    const char *model = NULL;
    bool json = false;
    rouse_tensor shapes[INSPECT_MAX_INPUTS];
    char *names[INSPECT_MAX_INPUTS];
    int n_shapes = 0, status = CLI_EXIT_USAGE;
    memset(shapes, 0, sizeof(shapes));
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--json")) {
            json = true;
        } else if (!strcmp(a, "--input") || !strncmp(a, "--input=", 8)) {
            const char *v = a[7] == '=' ? a + 8 : (i + 1 < argc ? argv[++i] : NULL);
            if (!v) {
                status = usage_error("%s needs NAME=DIMS", "--input");
                goto out;
            }
            if (n_shapes == INSPECT_MAX_INPUTS) {
                status = usage_error("too many %s options", "--input");
                goto out;
            }
            names[n_shapes] = NULL;
            if (!parse_input(v, &shapes[n_shapes], &names[n_shapes])) {
                free(names[n_shapes]);
                status = usage_error("--input '%s' is not NAME=DIMS (e.g. x=1x3x224x224)", v);
                goto out;
            }
            n_shapes++;
        } else if (a[0] == '-' && a[1]) {
            status = usage_error("unknown option '%s'", a);
            goto out;
        } else if (!model) {
            model = a;
        } else {
            status = usage_error("unexpected argument '%s'", a);
            goto out;
        }
    }
    if (!model) {
        status = usage_error("missing %s", "MODEL.onnx");
        goto out;
    }
    if (is_plan(model)) {
        status = n_shapes ? usage_error("%s does not apply to a plan", "--input")
                          : inspect_plan(model, json);
        goto out;
    }
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    rouse_inspect_report *r;
    if (rouse_model_inspect(model, shapes, n_shapes, &r, &eb) < 0) {
        fprintf(stderr, "rouse inspect: %s\n", eb.msg);
        status = CLI_EXIT_FAIL;
        goto out;
    }
    if (json) {
        status = print_json(model, r);
    } else {
        print_text(model, r);
        status = CLI_EXIT_OK;
    }
    rouse_inspect_report_destroy(r);
out:
    for (int i = 0; i < n_shapes; i++)
        free(names[i]);
    return status;
}
