/*
 * rouse deploy NAME MODEL: the one-command path to a function. Uploads the
 * model unless the server has it (upload.c), then PUTs the config built
 * from the flags; the server makes a new version only when the model or a
 * setting changed, so deploying twice is "unchanged (version N)".
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/accuracy.h"
#include "cli/cfgtree.h"
#include "cli/cli.h"
#include "cli/client.h"
#include "cli/upload.h"
#include "common/arena.h"
#include "common/json.h"
#include "rouse/engine.h"

/* Flags that set one field of the config (the HTTP API's names). */
static const struct {
    const char *flag, *field, *arg, *help;
} g_fields[] = {
    {"--min", "scaling.min", "N", "instances kept warm"},
    {"--max", "scaling.max", "N", "instances at most"},
    {"--concurrency", "scaling.concurrency", "N", "requests one instance serves at once"},
    {"--idle-timeout", "scaling.idle_timeout_ms", "MS", "an idle instance stops after this"},
    {"--template-ttl", "scaling.template_ttl_ms", "MS",
     "an unused template stops after this (keep_alive learned: also the longest its learned "
     "window may be)"},
    {"--queue-depth", "scaling.queue_depth", "N", "requests waiting for an instance at most"},
    {"--memory", "memory_mb", "MB", "memory of one instance"},
    {"--timeout", "timeout_ms", "MS", "deadline of one request"},
};
#define N_FIELDS (sizeof(g_fields) / sizeof(g_fields[0]))

void cli_deploy_usage(FILE *out)
{
    fprintf(out, "usage: rouse deploy NAME MODEL.onnx [options]\n\n"
                 "Uploads the model (unless the server has it already) and deploys it as\n"
                 "function NAME. A new version is created only when the model or a setting\n"
                 "changed; the function's default alias moves to it. Prints the version and\n"
                 "the endpoint, or \"unchanged (version N)\", and at bf16 or int8 the accuracy\n"
                 "against fp32 that the server's check measured (as rouse compile prints it).\n\n"
                 "options:\n");
    for (size_t i = 0; i < N_FIELDS; i++) {
        char left[40];
        snprintf(left, sizeof(left), "%s %s", g_fields[i].flag, g_fields[i].arg);
        fprintf(out, "  %-18s %s (%s)\n", left, g_fields[i].help, g_fields[i].field);
    }
    fprintf(out, "  --precision P      fp32 (the default), bf16 or int8: the precision the\n"
                 "                     plan computes in (precision)\n"
                 "  --calibrate DIR    int8's calibration samples: DIR/<input name>.npy per\n"
                 "                     model input, samples stacked on the batch axis;\n"
                 "                     each is uploaded (calibration.<input name>)\n"
                 "  --set KEY=VALUE    any field of the config, dotted (--set "
                 "scaling.max=8)\n" CLI_CLIENT_OPTIONS_HELP);
}

/* Uploads DIR/<input>.npy for each input and sets calibration.<input> to
 * its digest. 0, or -1 after printing why. */
static int upload_calibration(cli_client *c, const char *fn, const char *dir, cfg_node *cfg)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "rouse deploy: --calibrate %s: %s\n", dir, strerror(errno));
        return -1;
    }
    int n = 0, rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len <= 4 || strcmp(e->d_name + len - 4, ".npy") != 0) continue;
        char input[256], path[4096], digest[CLI_DIGEST_MAX], key[300];
        snprintf(input, sizeof(input), "%.*s", (int)(len - 4), e->d_name);
        if (strchr(input, '.')) {
            fprintf(stderr,
                    "rouse deploy: --calibrate: %s: an input name with '.' cannot be "
                    "set from a file name; use --set\n",
                    e->d_name);
            rc = -1;
            break;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        bool uploaded;
        if (cli_model_upload(c, path, digest, &uploaded) < 0) {
            rc = -1;
            break;
        }
        if (uploaded && !c->quiet && !c->json)
            printf("%s: uploaded %s (%s)\n", fn, digest, e->d_name);
        rouse_buf lit;
        rouse_buf_init(&lit);
        json_write_string(&lit, digest, strlen(digest));
        snprintf(key, sizeof(key), "calibration.%s", input);
        cfg_set(cfg, key, lit.data, 0);
        rouse_buf_fini(&lit);
        n++;
    }
    closedir(d);
    if (rc == 0 && n == 0) {
        fprintf(stderr,
                "rouse deploy: --calibrate %s: no .npy file (one per model input, named "
                "after it)\n",
                dir);
        rc = -1;
    }
    return rc;
}

/* The "accuracy" object of a deploy answer, printed as rouse compile
 * prints it; nothing when the answer has none or nothing was measured. */
static void print_accuracy(const http_response *r)
{
    rouse_arena a;
    rouse_arena_init(&a, 0);
    json_value *v;
    const json_value *acc, *outs, *kept;
    const char *prec, *src;
    int p;
    if (json_parse(r->body.data, r->body.len, &a, &v, NULL) < 0 ||
        !(acc = json_get(v, "accuracy")) || !(prec = json_as_string(json_get(acc, "precision"))) ||
        rouse_precision_parse(prec, &p) < 0 || !(src = json_as_string(json_get(acc, "source"))) ||
        !(outs = json_get(acc, "outputs")) || outs->type != JSON_ARRAY ||
        !(kept = json_get(acc, "kept_fp32")) || kept->type != JSON_ARRAY ||
        p == ROUSE_PRECISION_FP32)
        goto out;
    rouse_accuracy ac = {.precision = p, .n_outputs = (int)outs->u.arr.n,
                         .n_kept_fp32 = (int)kept->u.arr.n};
    for (int k = 1; k <= ROUSE_ACCURACY_SAMPLES; k++)
        if (!strcmp(src, rouse_accuracy_source_name(k))) ac.source = k;
    int64_t n = 0;
    json_as_int64(json_get(acc, "samples"), &n);
    ac.n_samples = (int)n;
    rouse_output_accuracy *o = rouse_arena_alloc(&a, sizeof(*o) * (outs->u.arr.n + 1), 8);
    const char **names = rouse_arena_alloc(&a, sizeof(char *) * (kept->u.arr.n + 1), 8);
    if (!o || !names) goto out;
    for (size_t i = 0; i < outs->u.arr.n; i++) {
        const json_value *e = outs->u.arr.items[i];
        const char *name = json_as_string(json_get(e, "name"));
        o[i].name = name ? name : "?";
        o[i].top1 = -1;
        o[i].max_abs = o[i].max_rel = INFINITY; /* null: not a number at this precision */
        json_as_double(json_get(e, "top1_agreement"), &o[i].top1);
        json_as_double(json_get(e, "max_abs_error"), &o[i].max_abs);
        json_as_double(json_get(e, "max_rel_error"), &o[i].max_rel);
    }
    for (size_t i = 0; i < kept->u.arr.n; i++) {
        const char *k = json_as_string(kept->u.arr.items[i]);
        names[i] = k ? k : "?";
    }
    ac.outputs = o;
    ac.kept_fp32 = names;
    cli_accuracy_print(stdout, &ac);
out:
    rouse_arena_fini(&a);
}

static int deploy_run(cli_client *c, int argc, char **argv, cfg_node *cfg)
{
    const char *name = NULL, *model = NULL, *calib_dir = NULL;
    rouse_buf lit;
    rouse_buf_init(&lit);
    int rc = CLI_EXIT_USAGE;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        size_t k = 0;
        while (k < N_FIELDS && strcmp(a, g_fields[k].flag) != 0)
            k++;
        if (k < N_FIELDS) {
            char *end;
            if (!v || strtoll(v, &end, 10) < 0 || *end || end == v) {
                cli_usage_error("deploy", cli_deploy_usage, "needs a non-negative integer", a);
                goto out;
            }
            cfg_set(cfg, g_fields[k].field, v, 0);
            i++;
        } else if (strcmp(a, "--precision") == 0) {
            int p;
            if (!v || rouse_precision_parse(v, &p) < 0) {
                cli_usage_error("deploy", cli_deploy_usage, "--precision takes fp32, bf16 or int8",
                                v);
                goto out;
            }
            rouse_buf_clear(&lit);
            json_write_string(&lit, v, strlen(v));
            cfg_set(cfg, "precision", lit.data, 0);
            i++;
        } else if (strcmp(a, "--calibrate") == 0) {
            if (!v) {
                cli_usage_error("deploy", cli_deploy_usage, "--calibrate needs a folder", NULL);
                goto out;
            }
            calib_dir = v;
            i++;
        } else if (strcmp(a, "--set") == 0) {
            const char *eq = v ? strchr(v, '=') : NULL;
            if (!eq || eq == v) {
                cli_usage_error("deploy", cli_deploy_usage, "--set needs KEY=VALUE", v);
                goto out;
            }
            char key[128];
            snprintf(key, sizeof(key), "%.*s", (int)(eq - v), v);
            rouse_buf_clear(&lit);
            cfg_literal(eq + 1, false, &lit);
            if (strcmp(key, "model") == 0 || cfg_set(cfg, key, lit.data, 0) < 0) {
                cli_usage_error("deploy", cli_deploy_usage, "--set cannot set", key);
                goto out;
            }
            i++;
        } else if (a[0] == '-' && a[1]) {
            cli_usage_error("deploy", cli_deploy_usage, "unknown option", a);
            goto out;
        } else if (!name) {
            name = a;
        } else if (!model) {
            model = a;
        } else {
            cli_usage_error("deploy", cli_deploy_usage, "unexpected argument", a);
            goto out;
        }
    }
    if (!name || !model) {
        cli_usage_error("deploy", cli_deploy_usage, "needs NAME and MODEL.onnx", NULL);
        goto out;
    }
    rc = CLI_EXIT_FAIL;
    char digest[CLI_DIGEST_MAX];
    bool uploaded;
    if (cli_model_upload(c, model, digest, &uploaded) < 0) goto out;
    if (uploaded && !c->quiet && !c->json) printf("%s: uploaded %s\n", name, digest);
    if (calib_dir && upload_calibration(c, name, calib_dir, cfg) < 0) goto out;
    rouse_buf_clear(&lit);
    json_write_string(&lit, digest, strlen(digest));
    cfg_set(cfg, "model", lit.data, 0);
    /* model first, as the server writes it */
    if (cfg->child && strcmp(cfg->child->key, "model") != 0) {
        cfg_node **pp = &cfg->child;
        while (strcmp((*pp)->key, "model") != 0)
            pp = &(*pp)->next;
        cfg_node *m = *pp;
        *pp = m->next;
        m->next = cfg->child;
        cfg->child = m;
    }
    rouse_buf body;
    rouse_buf_init(&body);
    cfg_write(cfg, &body);
    http_response r;
    int st = cli_function_put(c, name, body.data, false, &r);
    rouse_buf_fini(&body);
    if (st < 0) goto out;
    if (r.status >= 300) {
        cli_fail_response(c, &r);
        goto out;
    }
    if (c->json) {
        fputs(r.body.data, stdout);
    } else if (!c->quiet) {
        if (r.status == 201)
            printf("%s: deployed version %" PRId64 "\n", name, r.rouse_version);
        else
            printf("%s: unchanged (version %" PRId64 ")\n", name, r.rouse_version);
        printf("endpoint: %s/v2/models/%s/infer\n", c->url, name);
        print_accuracy(&r);
    }
    http_response_fini(&r);
    rc = CLI_EXIT_OK;
out:
    rouse_buf_fini(&lit);
    return rc;
}

int cli_deploy_main(int argc, char **argv)
{
    cli_client c;
    int rc = cli_client_init(&c, "deploy", cli_deploy_usage, &argc, argv);
    if (rc) return rc;
    cfg_node *cfg = cfg_new();
    rc = cfg ? deploy_run(&c, argc, argv, cfg) : CLI_EXIT_FAIL;
    cfg_free(cfg);
    cli_client_fini(&c);
    return rc;
}
