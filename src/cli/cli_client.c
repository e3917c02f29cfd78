/*
 * The client subcommands that talk to a running `rouse serve`: deploy,
 * invoke, ls, status, rollback (docs/architecture.md). The server comes from
 * --server URL, else $ROUSE_SERVER, else http://127.0.0.1:8080.
 * Exit status: 0 ok, 1 the request failed (the server's message on
 * stderr), 2 usage error.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/tensor_file.h"
#include "common/arena.h"
#include "common/json.h"
#include "common/sha256.h"
#include "worker/oip.h"

#define MAX_INPUTS 16

static int usage(const char *cmd, void (*usage_fn)(FILE *), const char *msg, const char *arg)
{
    return cli_usage_error(cmd, usage_fn, msg, arg);
}

#define call cli_call
#define fail_response cli_fail_response

static bool parse_count(const char *s, long long lo, long long hi, long long *out)
{
    if (!s || !*s) return false;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

/* --- deploy ------------------------------------------------------------------ */

void cli_deploy_usage(FILE *out)
{
    fprintf(out, "usage: rouse deploy NAME MODEL.onnx [--min N] [--max N] [--concurrency N]\n"
                 "                    [--memory MB] [--timeout MS] [--idle-timeout MS]\n"
                 "                    [--queue-depth N] [--server URL] [--json]\n\n"
                 "Uploads the model (unless the server has it already) and deploys it as\n"
                 "function NAME. A new version is created only when the model or a setting\n"
                 "changed; the function's default alias moves to it.\n");
}

static int deploy_run(cli_client *cc, int argc, char **argv);

int cli_deploy_main(int argc, char **argv)
{
    cli_client c;
    int rc = cli_client_init(&c, "deploy", cli_deploy_usage, &argc, argv);
    if (rc == 0) rc = deploy_run(&c, argc, argv);
    cli_client_fini(&c);
    return rc;
}

static int deploy_run(cli_client *cc, int argc, char **argv)
{
    cli_client c = *cc;
    int rc;
    const char *name = NULL, *model = NULL;
    rouse_buf scaling, top;
    rouse_buf_init(&scaling);
    rouse_buf_init(&top);
    static const struct {
        const char *flag, *field;
        bool in_scaling;
    } opts[] = {{"--min", "min", true},
                {"--max", "max", true},
                {"--concurrency", "concurrency", true},
                {"--idle-timeout", "idle_timeout_ms", true},
                {"--queue-depth", "queue_depth", true},
                {"--memory", "memory_mb", false},
                {"--timeout", "timeout_ms", false}};
    for (int i = 1; i < argc; i++) {
        bool matched = false;
        for (size_t k = 0; k < sizeof(opts) / sizeof(opts[0]); k++) {
            if (strcmp(argv[i], opts[k].flag) != 0) continue;
            long long v;
            if (i + 1 >= argc || !parse_count(argv[i + 1], 0, 1LL << 40, &v)) {
                rc = usage("deploy", cli_deploy_usage, "needs a non-negative integer", argv[i]);
                goto out_bufs;
            }
            rouse_buf *b = opts[k].in_scaling ? &scaling : &top;
            rouse_buf_appendf(b, ",\"%s\":%lld", opts[k].field, v);
            i++;
            matched = true;
        }
        if (matched) continue;
        if (argv[i][0] == '-') {
            rc = usage("deploy", cli_deploy_usage, "unknown option", argv[i]);
            goto out_bufs;
        }
        if (!name)
            name = argv[i];
        else if (!model)
            model = argv[i];
        else {
            rc = usage("deploy", cli_deploy_usage, "unexpected argument", argv[i]);
            goto out_bufs;
        }
    }
    if (!name || !model) {
        rc = usage("deploy", cli_deploy_usage, "needs NAME and MODEL.onnx", NULL);
        goto out_bufs;
    }
    uint8_t *buf;
    size_t len;
    rouse_errbuf eb;
    if (cli_file_slurp(model, &buf, &len, &eb) < 0) {
        fprintf(stderr, "rouse deploy: %s\n", eb.msg);
        rc = CLI_EXIT_FAIL;
        goto out_bufs;
    }
    uint8_t d[ROUSE_SHA256_LEN];
    char hex[ROUSE_SHA256_HEX_LEN + 1], path[256];
    rouse_sha256_digest(buf, len, d);
    rouse_sha256_hex(d, hex);
    http_response r;
    snprintf(path, sizeof(path), "/v1/blobs/sha256:%s", hex);
    rc = CLI_EXIT_FAIL;
    if (call(&c, "HEAD", path, NULL, NULL, 0, &r) < 0) goto out_model;
    int head = r.status;
    http_response_fini(&r);
    if (head != 200) {
        const char *h[] = {"Content-Type: application/octet-stream", NULL};
        if (call(&c, "POST", "/v1/blobs", h, buf, len, &r) < 0) goto out_model;
        if (r.status != 201) {
            fail_response(&c, &r);
            goto out_model;
        }
        http_response_fini(&r);
    }
    rouse_buf cfg;
    rouse_buf_init(&cfg);
    rouse_buf_appendf(&cfg, "{\"model\":\"sha256:%s\"%s", hex, top.data ? top.data : "");
    if (scaling.len) rouse_buf_appendf(&cfg, ",\"scaling\":{%s}", scaling.data + 1);
    rouse_buf_append_str(&cfg, "}");
    snprintf(path, sizeof(path), "/v1/functions/%s", name);
    const char *h[] = {"Content-Type: application/json", NULL};
    int st = call(&c, "PUT", path, h, cfg.data, cfg.len, &r);
    rouse_buf_fini(&cfg);
    if (st < 0) goto out_model;
    if (r.status >= 300) {
        fail_response(&c, &r);
        goto out_model;
    }
    if (c.json) {
        fputs(r.body.data, stdout);
    } else {
        printf("%s: %s version %" PRId64 "\n", name, r.status == 201 ? "deployed" : "unchanged at",
               r.rouse_version);
    }
    http_response_fini(&r);
    rc = CLI_EXIT_OK;
out_model:
    free(buf);
out_bufs:
    rouse_buf_fini(&scaling);
    rouse_buf_fini(&top);
    return rc;
}

/* --- invoke ------------------------------------------------------------------ */

void cli_invoke_usage(FILE *out)
{
    fprintf(out, "usage: rouse invoke NAME (--request FILE | --input NAME=FILE...) [--version V]\n"
                 "                    [--server URL]\n\n"
                 "Calls function NAME and prints the Open Inference Protocol response (JSON).\n"
                 "  --request FILE     the request body: an OIP v2 inference request\n"
                 "  --input NAME=FILE  input NAME from a .npy or TensorProto .pb file\n"
                 "  --version V        a version number or an alias (default: the latest)\n");
}

/* A binary-extension request from tensor files; outputs come back as JSON. */
static int build_binary(char **specs, int n, rouse_buf *body, size_t *json_len, rouse_errbuf *eb)
{
    cli_tensor t[MAX_INPUTS];
    memset(t, 0, sizeof(t));
    int rc = 0;
    rouse_buf_append_str(body, "{\"inputs\":[");
    for (int i = 0; i < n && rc == 0; i++) {
        char *eq = strchr(specs[i], '=');
        *eq = '\0';
        if ((rc = cli_tensor_read_file(eq + 1, &t[i], eb)) < 0) break;
        const char *dt = oip_datatype_name(t[i].dtype);
        if (!dt) {
            rc = rouse_err_set(eb, ROUSE_EUNSUPPORTED, "%s: element type not supported", eq + 1);
            break;
        }
        rouse_buf_appendf(body, "%s{\"name\":", i ? "," : "");
        json_write_string(body, specs[i], strlen(specs[i]));
        rouse_buf_appendf(body, ",\"datatype\":\"%s\",\"shape\":[", dt);
        for (int d = 0; d < t[i].rank; d++)
            rouse_buf_appendf(body, "%s%" PRId64, d ? "," : "", t[i].shape[d]);
        rouse_buf_appendf(body, "],\"parameters\":{\"binary_data_size\":%zu}}", t[i].nbytes);
    }
    if (rc == 0) {
        rouse_buf_append_str(body, "]}");
        *json_len = body->len;
        for (int i = 0; i < n; i++)
            rouse_buf_append(body, t[i].data, t[i].nbytes);
    }
    for (int i = 0; i < n; i++)
        cli_tensor_fini(&t[i]);
    return rc;
}

static int invoke_run(cli_client *cc, int argc, char **argv);

int cli_invoke_main(int argc, char **argv)
{
    cli_client c;
    int rc = cli_client_init(&c, "invoke", cli_invoke_usage, &argc, argv);
    if (rc == 0) rc = invoke_run(&c, argc, argv);
    cli_client_fini(&c);
    return rc;
}

static int invoke_run(cli_client *cc, int argc, char **argv)
{
    cli_client c = *cc;
    int rc;
    const char *name = NULL, *json_file = NULL, *version = NULL;
    char *inputs[MAX_INPUTS];
    int n_inputs = 0;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--request") == 0) {
            if (!v) return usage("invoke", cli_invoke_usage, "--request needs a file", NULL);
            json_file = v;
            i++;
        } else if (strcmp(argv[i], "--version") == 0) {
            if (!v) return usage("invoke", cli_invoke_usage, "--version needs a value", NULL);
            version = v;
            i++;
        } else if (strcmp(argv[i], "--input") == 0) {
            if (!v || !strchr(v, '=') || v[0] == '=' || n_inputs == MAX_INPUTS)
                return usage("invoke", cli_invoke_usage, "--input needs NAME=FILE", v);
            inputs[n_inputs++] = argv[i + 1];
            i++;
        } else if (argv[i][0] == '-') {
            return usage("invoke", cli_invoke_usage, "unknown option", argv[i]);
        } else if (!name) {
            name = argv[i];
        } else {
            return usage("invoke", cli_invoke_usage, "unexpected argument", argv[i]);
        }
    }
    if (!name || (!json_file) == (n_inputs == 0))
        return usage("invoke", cli_invoke_usage, "needs NAME and either --request or --input", NULL);

    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    rouse_buf body;
    rouse_buf_init(&body);
    size_t json_len = 0;
    char ihcl[64] = "";
    if (json_file) {
        uint8_t *buf;
        size_t len;
        if ((rc = cli_file_slurp(json_file, &buf, &len, &eb)) == 0) {
            rc = rouse_buf_append(&body, buf, len);
            free(buf);
        }
    } else {
        rc = build_binary(inputs, n_inputs, &body, &json_len, &eb);
        snprintf(ihcl, sizeof(ihcl), "Inference-Header-Content-Length: %zu", json_len);
    }
    if (rc < 0) {
        fprintf(stderr, "rouse invoke: %s\n", eb.msg);
        rouse_buf_fini(&body);
        return CLI_EXIT_FAIL;
    }
    char path[256];
    if (version)
        snprintf(path, sizeof(path), "/v2/models/%s/versions/%s/infer", name, version);
    else
        snprintf(path, sizeof(path), "/v2/models/%s/infer", name);
    const char *h_json[] = {"Content-Type: application/json", NULL};
    const char *h_bin[] = {"Content-Type: application/octet-stream", ihcl, NULL};
    http_response r;
    rc = call(&c, "POST", path, json_file ? h_json : h_bin, body.data, body.len, &r);
    rouse_buf_fini(&body);
    if (rc < 0) return CLI_EXIT_FAIL;
    if (r.status != 200) return fail_response(&c, &r);
    fwrite(r.body.data, 1, r.body.len, stdout);
    if (r.body.len && r.body.data[r.body.len - 1] != '\n') putchar('\n');
    http_response_fini(&r);
    return CLI_EXIT_OK;
}

/* --- ls, status, rollback --------------------------------------------------------- */

void cli_ls_usage(FILE *out)
{
    fprintf(out, "usage: rouse ls [--server URL] [--json]\n\n"
                 "Lists the deployed functions with their latest version.\n");
}

static int ls_run(cli_client *cc, int argc, char **argv);

int cli_ls_main(int argc, char **argv)
{
    cli_client c;
    int rc = cli_client_init(&c, "ls", cli_ls_usage, &argc, argv);
    if (rc == 0) rc = ls_run(&c, argc, argv);
    cli_client_fini(&c);
    return rc;
}

static int ls_run(cli_client *cc, int argc, char **argv)
{
    cli_client c = *cc;
    int rc;
    if (argc > 1) return usage("ls", cli_ls_usage, "unexpected argument", argv[1]);
    http_response r;
    if (call(&c, "GET", "/v1/functions", NULL, NULL, 0, &r) < 0) return CLI_EXIT_FAIL;
    if (r.status != 200) return fail_response(&c, &r);
    if (c.json) {
        fputs(r.body.data, stdout);
        http_response_fini(&r);
        return CLI_EXIT_OK;
    }
    rouse_arena a;
    rouse_arena_init(&a, 0);
    json_value *v;
    rc = CLI_EXIT_FAIL;
    if (json_parse(r.body.data, r.body.len, &a, &v, NULL) == 0) {
        const json_value *fns = json_get(v, "functions");
        printf("%-24s %8s %8s\n", "NAME", "LATEST", "VERSIONS");
        for (size_t i = 0; fns && fns->type == JSON_ARRAY && i < fns->u.arr.n; i++) {
            const json_value *f = fns->u.arr.items[i];
            int64_t latest = 0, n = 0;
            json_as_int64(json_get(f, "latest"), &latest);
            json_as_int64(json_get(f, "versions"), &n);
            const char *nm = json_as_string(json_get(f, "name"));
            printf("%-24s %8" PRId64 " %8" PRId64 "\n", nm ? nm : "?", latest, n);
        }
        rc = CLI_EXIT_OK;
    }
    rouse_arena_fini(&a);
    http_response_fini(&r);
    return rc;
}

void cli_status_usage(FILE *out)
{
    fprintf(out, "usage: rouse status NAME [--server URL] [--json]\n\n"
                 "Shows a function: its versions, aliases, live instances, templates, spares,\n"
                 "and its last cold starts phase by phase.\n");
}

static int status_run(cli_client *cc, int argc, char **argv);

int cli_status_main(int argc, char **argv)
{
    cli_client c;
    int rc = cli_client_init(&c, "status", cli_status_usage, &argc, argv);
    if (rc == 0) rc = status_run(&c, argc, argv);
    cli_client_fini(&c);
    return rc;
}

static int status_run(cli_client *cc, int argc, char **argv)
{
    cli_client c = *cc;
    int rc;
    if (argc != 2 || argv[1][0] == '-')
        return usage("status", cli_status_usage, "needs exactly one NAME", NULL);
    char path[256];
    snprintf(path, sizeof(path), "/v1/functions/%s", argv[1]);
    http_response r;
    if (call(&c, "GET", path, NULL, NULL, 0, &r) < 0) return CLI_EXIT_FAIL;
    if (r.status != 200) return fail_response(&c, &r);
    if (c.json) {
        fputs(r.body.data, stdout);
        http_response_fini(&r);
        return CLI_EXIT_OK;
    }
    rouse_arena a;
    rouse_arena_init(&a, 0);
    json_value *v;
    rc = CLI_EXIT_FAIL;
    if (json_parse(r.body.data, r.body.len, &a, &v, NULL) == 0) {
        int64_t latest = 0;
        json_as_int64(json_get(v, "latest"), &latest);
        printf("function %s (latest: version %" PRId64 ")\n", argv[1], latest);
        const json_value *vs = json_get(v, "versions");
        printf("versions:\n");
        for (size_t i = 0; vs && vs->type == JSON_ARRAY && i < vs->u.arr.n; i++) {
            int64_t n = 0;
            json_as_int64(json_get(vs->u.arr.items[i], "version"), &n);
            const char *m = json_as_string(json_get(vs->u.arr.items[i], "model"));
            printf("  %" PRId64 "  %s\n", n, m ? m : "?");
        }
        const json_value *as = json_get(v, "aliases");
        printf("aliases:\n");
        for (size_t i = 0; as && as->type == JSON_ARRAY && i < as->u.arr.n; i++) {
            const json_value *al = as->u.arr.items[i];
            const char *nm = json_as_string(json_get(al, "name"));
            printf("  %s ->", nm ? nm : "?");
            const json_value *rs = json_get(al, "routes");
            for (size_t k = 0; rs && rs->type == JSON_ARRAY && k < rs->u.arr.n; k++) {
                int64_t ver = 0, w = 0;
                json_as_int64(json_get(rs->u.arr.items[k], "version"), &ver);
                json_as_int64(json_get(rs->u.arr.items[k], "weight"), &w);
                printf(" v%" PRId64 " (weight %" PRId64 ")", ver, w);
            }
            printf("\n");
        }
        const json_value *is = json_get(v, "instances");
        printf("instances:%s\n", is && is->type == JSON_ARRAY && is->u.arr.n ? "" : " none");
        for (size_t i = 0; is && is->type == JSON_ARRAY && i < is->u.arr.n; i++) {
            int64_t ver = 0, pid = 0;
            json_as_int64(json_get(is->u.arr.items[i], "version"), &ver);
            json_as_int64(json_get(is->u.arr.items[i], "pid"), &pid);
            const char *st = json_as_string(json_get(is->u.arr.items[i], "state"));
            const char *how = json_as_string(json_get(is->u.arr.items[i], "start"));
            printf("  pid %" PRId64 "  v%" PRId64 "  %s%s%s\n", pid, ver, st ? st : "?",
                   how ? "  started " : "", how ? how : "");
        }
        const json_value *ts = json_get(v, "templates");
        for (size_t i = 0; ts && ts->type == JSON_ARRAY && i < ts->u.arr.n; i++) {
            int64_t ver = 0, pid = 0;
            json_as_int64(json_get(ts->u.arr.items[i], "version"), &ver);
            json_as_int64(json_get(ts->u.arr.items[i], "pid"), &pid);
            const char *st = json_as_string(json_get(ts->u.arr.items[i], "state"));
            printf("  pid %" PRId64 "  v%" PRId64 "  template, %s\n", pid, ver, st ? st : "?");
        }
        const json_value *sp = json_get(v, "spares");
        for (size_t i = 0; sp && sp->type == JSON_ARRAY && i < sp->u.arr.n; i++) {
            int64_t ver = 0, pid = 0;
            json_as_int64(json_get(sp->u.arr.items[i], "version"), &ver);
            json_as_int64(json_get(sp->u.arr.items[i], "pid"), &pid);
            const char *st = json_as_string(json_get(sp->u.arr.items[i], "state"));
            printf("  pid %" PRId64 "  v%" PRId64 "  spare, %s\n", pid, ver, st ? st : "?");
        }
        /* Cold starts, phase by phase (ms): what a user tunes min and the
         * idle/template timeouts against. */
        const json_value *cs = json_get(v, "cold_starts");
        if (cs && cs->type == JSON_ARRAY && cs->u.arr.n) {
            static const char *const phases[] = {"queue_ms",   "template_ms", "plan_open_ms",
                                                 "prepare_ms", "spawn_ms",    "first_infer_ms"};
            printf("last cold starts (ms): queue, template, plan open, prepare, spawn, first "
                   "inference; how the template started\n");
            for (size_t i = 0; i < cs->u.arr.n; i++) {
                const json_value *cold = cs->u.arr.items[i];
                const char *how = json_as_string(json_get(cold, "start"));
                int64_t ver = 0;
                json_as_int64(json_get(cold, "version"), &ver);
                printf("  v%" PRId64 " %-8s", ver, how ? how : "?");
                for (size_t k = 0; k < sizeof(phases) / sizeof(phases[0]); k++) {
                    double ms;
                    if (json_as_double(json_get(cold, phases[k]), &ms))
                        printf(" %8.3f", ms);
                    else
                        printf(" %8s", "-");
                }
                const char *tmpl = json_as_string(json_get(cold, "template_start"));
                printf("%s%s\n", tmpl ? "  " : "", tmpl ? tmpl : "");
            }
        }
        rc = CLI_EXIT_OK;
    }
    rouse_arena_fini(&a);
    http_response_fini(&r);
    return rc;
}

void cli_rollback_usage(FILE *out)
{
    fprintf(out, "usage: rouse rollback NAME [--server URL] [--json]\n\n"
                 "Moves the function's default alias back to the previous version.\n");
}

static int rollback_run(cli_client *cc, int argc, char **argv);

int cli_rollback_main(int argc, char **argv)
{
    cli_client c;
    int rc = cli_client_init(&c, "rollback", cli_rollback_usage, &argc, argv);
    if (rc == 0) rc = rollback_run(&c, argc, argv);
    cli_client_fini(&c);
    return rc;
}

static int rollback_run(cli_client *cc, int argc, char **argv)
{
    cli_client c = *cc;
    if (argc != 2 || argv[1][0] == '-')
        return usage("rollback", cli_rollback_usage, "needs exactly one NAME", NULL);
    char path[256];
    snprintf(path, sizeof(path), "/v1/functions/%s/rollback", argv[1]);
    http_response r;
    if (call(&c, "POST", path, NULL, NULL, 0, &r) < 0) return CLI_EXIT_FAIL;
    if (r.status != 200) return fail_response(&c, &r);
    if (c.json)
        fputs(r.body.data, stdout);
    else
        printf("%s: now at version %" PRId64 "\n", argv[1], r.rouse_version);
    http_response_fini(&r);
    return CLI_EXIT_OK;
}
