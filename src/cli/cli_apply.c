/*
 * rouse apply -f FILE and rouse diff -f FILE: declarative deploys from a
 * manifest (manifest.h, docs/manifest.md).
 *
 * Both first ask the server what each declared config would become
 * (PUT /v1/functions/{name}?dry_run=1: the canonical config, and whether it
 * differs from the latest version), so that every error in the file is
 * found, with its line, before anything changes. diff then prints the
 * differences field by field and exits 1 when there are any; apply uploads
 * the models the server lacks, deploys what changed, sets the aliases that
 * differ and, with --prune, deletes the functions labelled with the
 * manifest's name that it no longer declares.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cfgtree.h"
#include "cli/cli.h"
#include "cli/client.h"
#include "cli/manifest.h"
#include "cli/out.h"
#include "cli/upload.h"
#include "common/arena.h"
#include "common/json.h"

#define APPLY_OPTIONS_HELP                                                                         \
    "  -f, --file FILE    the manifest (YAML; see docs/manifest.md)\n"                            \
    "  --prune            also delete the functions labelled with the manifest's name\n"          \
    "                     that it no longer declares\n"

/* The --json schema of apply and diff. */
#define APPLY_JSON_HELP                                                                            \
    "\nWith --json: {\"manifest\": NAME, \"changes\": [{\"function\", \"change\": create|update|\n"     \
    "alias|delete, ...}]}; a create or update has \"fields\": [{\"path\", \"from\", \"to\"}]\n"       \
    "(and \"version\" once applied), an alias change \"alias\", \"from\" and \"to\".\n"

void cli_apply_usage(FILE *out)
{
    fprintf(out, "usage: rouse apply -f FILE [--prune] [options]\n\n"
                 "Makes the server match the manifest: uploads the models it lacks, deploys\n"
                 "each declared function whose model or settings changed (a new version; the\n"
                 "others stay \"unchanged\"), and sets the aliases that differ. Nothing changes\n"
                 "when the file has an error.\n\n"
                 "options:\n" APPLY_OPTIONS_HELP CLI_CLIENT_OPTIONS_HELP APPLY_JSON_HELP);
}

void cli_diff_usage(FILE *out)
{
    fprintf(out, "usage: rouse diff -f FILE [--prune] [options]\n\n"
                 "Shows what rouse apply would change, field by field, without changing\n"
                 "anything. Exits 0 when nothing would change, 1 when something would (or on\n"
                 "an error), 2 on a usage error.\n\n"
                 "options:\n" APPLY_OPTIONS_HELP CLI_CLIENT_OPTIONS_HELP APPLY_JSON_HELP);
}

/* What the server says about one declared function. */
typedef struct plan_fn {
    const manifest_fn *f;
    char digest[CLI_DIGEST_MAX];
    char *body;       /* the config as PUT (owned) */
    bool exists;      /* the function exists */
    bool changed;     /* a deploy would make a version */
    int64_t version;  /* the latest version now, 0 when new */
    rouse_buf wanted; /* flattened canonical config that would be stored */
    rouse_buf now;    /* flattened config of the latest version */
    rouse_arena arena;
    json_value *current; /* GET /v1/functions/{name}, or NULL */
} plan_fn;

typedef struct apply_run {
    cli_client *c;
    manifest m;
    plan_fn *plan;
    bool diff, prune;
    int changes;
    rouse_buf js; /* --json: the changes, as the elements of an array */
} apply_run;

/* --json: starts a change object ({"function":NAME,"change":WHAT ...) in
 * a->js; the caller adds members and closes it. */
static void js_change(apply_run *a, const char *fn, const char *what)
{
    if (a->js.len) rouse_buf_append_str(&a->js, ",");
    rouse_buf_append_str(&a->js, "{\"function\":");
    json_write_string(&a->js, fn, strlen(fn));
    rouse_buf_appendf(&a->js, ",\"change\":\"%s\"", what);
}

/* The server's 400 about a field, taken back to its line in the file:
 * "FILE:LINE: functions.NAME.FIELD: what". */
static void field_error(apply_run *a, const manifest_fn *f, http_response *r)
{
    char msg[1024];
    cli_error_message(r, msg, sizeof(msg));
    const char *colon = strstr(msg, ": ");
    char key[128] = "";
    if (r->status == 400 && colon && (size_t)(colon - msg) < sizeof(key) &&
        !memchr(msg, ' ', (size_t)(colon - msg)))
        snprintf(key, sizeof(key), "%.*s", (int)(colon - msg), msg);
    if (key[0])
        fprintf(stderr, "rouse %s: %s:%d: functions.%s.%s: %s\n", a->c->cmd, a->m.path,
                manifest_key_line(f, key), f->name, key, colon + 2);
    else
        fprintf(stderr, "rouse %s: %s:%d: functions.%s: %s (HTTP %d)\n", a->c->cmd, a->m.path,
                f->line, f->name, msg, r->status);
    http_response_fini(r);
}

static void fn_path(rouse_buf *b, const char *name, const char *suffix)
{
    rouse_buf_append_str(b, "/v1/functions/");
    cli_url_escape(b, name);
    if (suffix) rouse_buf_append_str(b, suffix);
}

/* The config of the version the default alias serves, from a GET. */
static const json_value *latest_config(const json_value *fn)
{
    int64_t latest = 0;
    json_as_int64(json_get(fn, "latest"), &latest);
    const json_value *vs = json_get(fn, "versions");
    for (size_t i = 0; vs && vs->type == JSON_ARRAY && i < vs->u.arr.n; i++) {
        int64_t n = 0;
        json_as_int64(json_get(vs->u.arr.items[i], "version"), &n);
        if (n == latest) return json_get(vs->u.arr.items[i], "config");
    }
    return NULL;
}

/* GET /v1/functions/{name} into *out (NULL when there is none). 0 or -1. */
static int fetch(apply_run *a, const char *name, rouse_arena *ar, json_value **out)
{
    *out = NULL;
    rouse_buf p;
    rouse_buf_init(&p);
    fn_path(&p, name, NULL);
    http_response r;
    int st = cli_call(a->c, "GET", p.data, NULL, NULL, 0, &r);
    rouse_buf_fini(&p);
    if (st < 0) return -1;
    if (r.status == 404) {
        http_response_fini(&r);
        return 0;
    }
    if (r.status != 200) {
        cli_fail_response(a->c, &r);
        return -1;
    }
    /* The arena outlives the response: parse a copy it owns. */
    char *copy = rouse_arena_alloc(ar, r.body.len + 1, 1);
    int rc = -1;
    if (copy) {
        memcpy(copy, r.body.data, r.body.len + 1);
        if (json_parse(copy, r.body.len, ar, out, NULL) == 0) rc = 0;
    }
    if (rc < 0) fprintf(stderr, "rouse %s: GET %s: not JSON\n", a->c->cmd, name);
    http_response_fini(&r);
    return rc;
}

/* Step 1 for one function: digest, config body, dry run, current state. */
static int plan_one(apply_run *a, const manifest_fn *f, plan_fn *p)
{
    p->f = f;
    if (cli_model_digest(a->c, f->model, p->digest) < 0) return -1;
    rouse_buf body, lit;
    rouse_buf_init(&body);
    rouse_buf_init(&lit);
    json_write_string(&lit, p->digest, strlen(p->digest));
    rouse_buf_appendf(&body, "{\"model\":%s", lit.data);
    for (const cfg_node *k = f->config->child; k; k = k->next) {
        rouse_buf_append_str(&body, ",");
        json_write_string(&body, k->key, strlen(k->key));
        rouse_buf_append_str(&body, ":");
        cfg_write(k, &body);
    }
    if (a->m.label) {
        rouse_buf_clear(&lit);
        json_write_string(&lit, a->m.label, strlen(a->m.label));
        rouse_buf_appendf(&body, ",\"manifest\":%s", lit.data);
    }
    rouse_buf_append_str(&body, "}");
    rouse_buf_fini(&lit);
    p->body = rouse_buf_detach(&body, NULL);
    rouse_buf_fini(&body);
    if (!p->body) return -1;

    http_response r;
    if (cli_function_put(a->c, f->name, p->body, true, &r) < 0) return -1;
    if (r.status != 200) {
        field_error(a, f, &r);
        return -1;
    }
    json_value *v;
    int rc = -1;
    if (json_parse(r.body.data, r.body.len, &p->arena, &v, NULL) == 0) {
        json_as_bool(json_get(v, "changed"), &p->changed);
        json_as_int64(json_get(v, "version"), &p->version);
        const json_value *cfg = json_get(v, "config");
        if (cfg && cfg_flatten(cfg, "", &p->wanted) == 0) rc = 0;
    }
    http_response_fini(&r);
    if (rc < 0) {
        fprintf(stderr, "rouse %s: %s: the server's dry run did not answer a config\n", a->c->cmd, f->name);
        return -1;
    }
    if (fetch(a, f->name, &p->arena, &p->current) < 0) return -1;
    p->exists = p->current != NULL;
    const json_value *now = p->current ? latest_config(p->current) : NULL;
    if (now) cfg_flatten(now, "", &p->now);
    return 0;
}

/* The value of path in a flattened config, or NULL. */
static const char *flat_get(const rouse_buf *flat, const char *path, size_t *len)
{
    size_t pl = strlen(path);
    for (const char *l = flat->data; l && *l;) {
        const char *tab = strchr(l, '\t'), *nl = strchr(l, '\n');
        if (!tab || !nl) break;
        if ((size_t)(tab - l) == pl && strncmp(l, path, pl) == 0) {
            *len = (size_t)(nl - tab - 1);
            return tab + 1;
        }
        l = nl + 1;
    }
    return NULL;
}

/* Prints the field-by-field difference of one function. */
/* --json: the fields of p that change, as [{"path","from","to"}]. */
static void js_fields(apply_run *a, const plan_fn *p)
{
    rouse_buf *b = &a->js;
    rouse_buf_append_str(b, ",\"fields\":[");
    bool first = true;
    for (const char *l = p->wanted.data; l && *l;) {
        const char *tab = strchr(l, '\t'), *nl = strchr(l, '\n');
        if (!tab || !nl) break;
        char path[256];
        snprintf(path, sizeof(path), "%.*s", (int)(tab - l), l);
        size_t nlen = 0;
        const char *old = p->exists ? flat_get(&p->now, path, &nlen) : NULL;
        int wlen = (int)(nl - tab - 1);
        if (!old || nlen != (size_t)wlen || strncmp(old, tab + 1, nlen) != 0) {
            rouse_buf_appendf(b, "%s{\"path\":\"%s\",\"from\":%.*s,\"to\":%.*s}", first ? "" : ",",
                              path, old ? (int)nlen : 4, old ? old : "null", wlen, tab + 1);
            first = false;
        }
        l = nl + 1;
    }
    for (const char *l = p->now.data; p->exists && l && *l;) {
        const char *tab = strchr(l, '\t'), *nl = strchr(l, '\n');
        if (!tab || !nl) break;
        char path[256];
        size_t wl;
        snprintf(path, sizeof(path), "%.*s", (int)(tab - l), l);
        if (!flat_get(&p->wanted, path, &wl)) {
            rouse_buf_appendf(b, "%s{\"path\":\"%s\",\"from\":%.*s,\"to\":null}", first ? "" : ",",
                              path, (int)(nl - tab - 1), tab + 1);
            first = false;
        }
        l = nl + 1;
    }
    rouse_buf_append_str(b, "]");
}

static void print_fn_diff(apply_run *a, const plan_fn *p)
{
    if (a->c->json) {
        js_change(a, p->f->name, p->exists ? "update" : "create");
        if (p->exists) rouse_buf_appendf(&a->js, ",\"from_version\":%" PRId64, p->version);
        js_fields(a, p);
        rouse_buf_append_str(&a->js, "}");
        return;
    }
    FILE *o = stdout;
    const char *g = cli_style_of(o, CLI_GREEN), *y = cli_style_of(o, CLI_YELLOW),
               *rd = cli_style_of(o, CLI_RED), *z = cli_style_of(o, CLI_RESET);
    (void)rd;
    if (!p->exists) {
        fprintf(o, "%s+ %s%s: new function\n", g, p->f->name, z);
    } else {
        fprintf(o, "%s~ %s%s: version %" PRId64 " -> a new version\n", y, p->f->name, z, p->version);
    }
    /* Fields in the new config: added or changed. */
    for (const char *l = p->wanted.data; l && *l;) {
        const char *tab = strchr(l, '\t'), *nl = strchr(l, '\n');
        if (!tab || !nl) break;
        char path[256];
        snprintf(path, sizeof(path), "%.*s", (int)(tab - l), l);
        size_t nlen = 0;
        const char *old = p->exists ? flat_get(&p->now, path, &nlen) : NULL;
        int wlen = (int)(nl - tab - 1);
        if (!old)
            fprintf(o, "    %s+ %s: %.*s%s\n", g, path, wlen, tab + 1, z);
        else if (nlen != (size_t)wlen || strncmp(old, tab + 1, nlen) != 0)
            fprintf(o, "    %s~ %s: %.*s -> %.*s%s\n", y, path, (int)nlen, old, wlen, tab + 1, z);
        l = nl + 1;
    }
    /* Fields the latest version has and the new config drops. */
    for (const char *l = p->now.data; p->exists && l && *l;) {
        const char *tab = strchr(l, '\t'), *nl = strchr(l, '\n');
        if (!tab || !nl) break;
        char path[256];
        size_t wl;
        snprintf(path, sizeof(path), "%.*s", (int)(tab - l), l);
        if (!flat_get(&p->wanted, path, &wl))
            fprintf(o, "    %s- %s: %.*s%s\n", rd, path, (int)(nl - tab - 1), tab + 1, z);
        l = nl + 1;
    }
    (void)a;
}

/* The current routes of alias name of p's function, as "1:90,2:10". */
static void current_routes(const plan_fn *p, const char *name, char *out, size_t cap)
{
    out[0] = '\0';
    const json_value *as = p->current ? json_get(p->current, "aliases") : NULL;
    for (size_t i = 0; as && as->type == JSON_ARRAY && i < as->u.arr.n; i++) {
        const char *n = json_as_string(json_get(as->u.arr.items[i], "name"));
        if (!n || strcmp(n, name) != 0) continue;
        const json_value *rs = json_get(as->u.arr.items[i], "routes");
        size_t len = 0;
        for (size_t k = 0; rs && rs->type == JSON_ARRAY && k < rs->u.arr.n && len < cap; k++) {
            int64_t v = 0, w = 0;
            json_as_int64(json_get(rs->u.arr.items[k], "version"), &v);
            json_as_int64(json_get(rs->u.arr.items[k], "weight"), &w);
            len += (size_t)snprintf(out + len, cap - len, "%s%" PRId64 ":%" PRId64, k ? "," : "", v, w);
        }
    }
}

static void wanted_routes(const manifest_alias *al, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (int k = 0; k < al->n_routes && len < cap; k++)
        len += (size_t)snprintf(out + len, cap - len, "%s%lld:%lld", k ? "," : "",
                                al->routes[k].version, al->routes[k].weight);
}

static int put_alias(apply_run *a, const manifest_fn *f, const manifest_alias *al)
{
    rouse_buf body, path;
    rouse_buf_init(&body);
    rouse_buf_init(&path);
    rouse_buf_append_str(&body, "{\"routes\":[");
    for (int k = 0; k < al->n_routes; k++)
        rouse_buf_appendf(&body, "%s{\"version\":%lld,\"weight\":%lld}", k ? "," : "",
                          al->routes[k].version, al->routes[k].weight);
    rouse_buf_append_str(&body, "]}");
    fn_path(&path, f->name, "/aliases/");
    cli_url_escape(&path, al->name);
    const char *h[] = {"Content-Type: application/json", NULL};
    http_response r;
    int st = cli_call(a->c, "PUT", path.data, h, body.data, body.len, &r);
    rouse_buf_fini(&path);
    rouse_buf_fini(&body);
    if (st < 0) return -1;
    if (r.status != 200) {
        char msg[1024];
        cli_error_message(&r, msg, sizeof(msg));
        fprintf(stderr, "rouse %s: %s:%d: functions.%s.aliases.%s: %s (HTTP %d)\n", a->c->cmd,
                a->m.path, al->line, f->name, al->name, msg, r.status);
        http_response_fini(&r);
        return -1;
    }
    http_response_fini(&r);
    return 0;
}

/* Deletes (or, for diff, lists) the labelled functions the file no longer
 * declares. */
static int prune(apply_run *a)
{
    rouse_arena ar;
    rouse_arena_init(&ar, 0);
    http_response r;
    int rc = -1;
    if (cli_call(a->c, "GET", "/v1/functions", NULL, NULL, 0, &r) < 0) goto out;
    if (r.status != 200) {
        cli_fail_response(a->c, &r);
        goto out;
    }
    json_value *v;
    char *copy = rouse_arena_alloc(&ar, r.body.len + 1, 1);
    if (!copy) {
        http_response_fini(&r);
        goto out;
    }
    memcpy(copy, r.body.data, r.body.len + 1);
    http_response_fini(&r);
    if (json_parse(copy, strlen(copy), &ar, &v, NULL) < 0) goto out;
    const json_value *fns = json_get(v, "functions");
    rc = 0;
    for (size_t i = 0; rc == 0 && fns && fns->type == JSON_ARRAY && i < fns->u.arr.n; i++) {
        const char *name = json_as_string(json_get(fns->u.arr.items[i], "name"));
        if (!name) continue;
        bool declared = false;
        for (int k = 0; k < a->m.n_fns; k++)
            if (strcmp(a->m.fns[k].name, name) == 0) declared = true;
        if (declared) continue;
        json_value *fn;
        if ((rc = fetch(a, name, &ar, &fn)) < 0 || !fn) continue;
        const char *label = json_as_string(json_get(latest_config(fn), "manifest"));
        if (!label || strcmp(label, a->m.label) != 0) continue;
        a->changes++;
        if (a->c->json) {
            js_change(a, name, "delete");
            rouse_buf_append_str(&a->js, "}");
        }
        if (a->diff) {
            if (!a->c->json && !a->c->quiet)
                printf("%s- %s%s: deleted (no longer in %s)\n", cli_style_of(stdout, CLI_RED), name,
                       cli_style_of(stdout, CLI_RESET), a->m.path);
            continue;
        }
        rouse_buf p;
        rouse_buf_init(&p);
        fn_path(&p, name, NULL);
        int st = cli_call(a->c, "DELETE", p.data, NULL, NULL, 0, &r);
        rouse_buf_fini(&p);
        if (st < 0) {
            rc = -1;
        } else if (r.status != 200) {
            cli_fail_response(a->c, &r);
            rc = -1;
        } else {
            http_response_fini(&r);
            if (!a->c->quiet && !a->c->json) printf("%s: deleted (no longer in %s)\n", name, a->m.path);
        }
    }
out:
    rouse_arena_fini(&ar);
    return rc;
}

static int run(apply_run *a)
{
    cli_client *c = a->c;
    /* 1. Every function checked by the server before anything changes. */
    for (int i = 0; i < a->m.n_fns; i++)
        if (plan_one(a, &a->m.fns[i], &a->plan[i]) < 0) return CLI_EXIT_FAIL;
    /* 2. Functions. */
    for (int i = 0; i < a->m.n_fns; i++) {
        plan_fn *p = &a->plan[i];
        if (a->diff) {
            if (!p->changed) continue;
            a->changes++;
            if (!c->quiet) print_fn_diff(a, p);
            continue;
        }
        if (!p->changed) {
            if (!c->quiet && !c->json) printf("%s: unchanged (version %" PRId64 ")\n", p->f->name, p->version);
            continue;
        }
        bool uploaded;
        char digest[CLI_DIGEST_MAX];
        if (cli_model_upload(c, p->f->model, digest, &uploaded) < 0) return CLI_EXIT_FAIL;
        /* The body names the digest computed in step 1: the file must not
         * have changed in between. */
        if (strcmp(digest, p->digest) != 0) {
            fprintf(stderr, "rouse apply: %s changed while being applied; run apply again\n", p->f->model);
            return CLI_EXIT_FAIL;
        }
        http_response r;
        if (cli_function_put(c, p->f->name, p->body, false, &r) < 0) return CLI_EXIT_FAIL;
        if (r.status >= 300) {
            field_error(a, p->f, &r);
            return CLI_EXIT_FAIL;
        }
        a->changes++;
        if (c->json) {
            js_change(a, p->f->name, p->exists ? "update" : "create");
            rouse_buf_appendf(&a->js, ",\"version\":%" PRId64, r.rouse_version);
            js_fields(a, p);
            rouse_buf_append_str(&a->js, "}");
        } else if (!c->quiet) {
            printf("%s: %s version %" PRId64 "\n", p->f->name, r.status == 201 ? "deployed" : "unchanged at",
                   r.rouse_version);
        }
        http_response_fini(&r);
    }
    /* 3. Aliases that differ. */
    for (int i = 0; i < a->m.n_fns; i++) {
        plan_fn *p = &a->plan[i];
        for (int k = 0; k < p->f->n_aliases; k++) {
            const manifest_alias *al = &p->f->aliases[k];
            char now[256], want[256];
            current_routes(p, al->name, now, sizeof(now));
            wanted_routes(al, want, sizeof(want));
            if (strcmp(now, want) == 0) continue;
            a->changes++;
            if (c->json) {
                js_change(a, p->f->name, "alias");
                rouse_buf_append_str(&a->js, ",\"alias\":");
                json_write_string(&a->js, al->name, strlen(al->name));
                rouse_buf_appendf(&a->js, ",\"from\":\"%s\",\"to\":\"%s\"}", now, want);
            }
            if (a->diff) {
                if (!c->quiet && !c->json)
                    printf("%s~ %s%s: alias %s: %s -> %s\n", cli_style_of(stdout, CLI_YELLOW), p->f->name,
                           cli_style_of(stdout, CLI_RESET), al->name, now[0] ? now : "(none)", want);
                continue;
            }
            if (put_alias(a, p->f, al) < 0) return CLI_EXIT_FAIL;
            if (!c->quiet && !c->json) printf("%s: alias %s -> %s\n", p->f->name, al->name, want);
        }
    }
    /* 4. Prune. */
    if (a->prune && prune(a) < 0) return CLI_EXIT_FAIL;
    if (c->json) {
        printf("{\"manifest\":");
        rouse_buf lb;
        rouse_buf_init(&lb);
        if (a->m.label)
            json_write_string(&lb, a->m.label, strlen(a->m.label));
        else
            rouse_buf_append_str(&lb, "null");
        printf("%s,\"changes\":[%s]}\n", lb.data, a->js.data ? a->js.data : "");
        rouse_buf_fini(&lb);
    } else if (a->diff && !c->quiet && a->changes == 0) {
        printf("no changes\n");
    }
    if (a->diff) return a->changes ? CLI_EXIT_FAIL : CLI_EXIT_OK;
    return CLI_EXIT_OK;
}

static int apply_main(const char *cmd, void (*usage)(FILE *), bool diff, int argc, char **argv)
{
    cli_client c;
    int rc = cli_client_init(&c, cmd, usage, &argc, argv);
    if (rc) return rc;
    apply_run a = {.c = &c, .diff = diff};
    rouse_buf_init(&a.js);
    const char *file = NULL;
    rc = CLI_EXIT_USAGE;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-f") == 0 || strcmp(argv[i], "--file") == 0) {
            if (i + 1 >= argc) {
                cli_usage_error(cmd, usage, "needs a file", argv[i]);
                goto out_client;
            }
            file = argv[++i];
        } else if (strcmp(argv[i], "--prune") == 0) {
            a.prune = true;
        } else {
            cli_usage_error(cmd, usage, argv[i][0] == '-' ? "unknown option" : "unexpected argument", argv[i]);
            goto out_client;
        }
    }
    if (!file) {
        cli_usage_error(cmd, usage, "needs -f FILE", NULL);
        goto out_client;
    }
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    rc = CLI_EXIT_FAIL;
    if (manifest_load(file, &a.m, &eb) < 0) {
        fprintf(stderr, "rouse %s: %s\n", cmd, eb.msg);
        goto out_manifest;
    }
    if (a.prune && !a.m.label) {
        fprintf(stderr, "rouse %s: %s: --prune needs a top-level name: that labels the manifest's functions\n",
                cmd, file);
        goto out_manifest;
    }
    a.plan = calloc((size_t)a.m.n_fns + 1, sizeof(*a.plan));
    if (!a.plan) goto out_manifest;
    for (int i = 0; i < a.m.n_fns; i++) {
        rouse_arena_init(&a.plan[i].arena, 0);
        rouse_buf_init(&a.plan[i].wanted);
        rouse_buf_init(&a.plan[i].now);
    }
    rc = run(&a);
    for (int i = 0; i < a.m.n_fns; i++) {
        free(a.plan[i].body);
        rouse_arena_fini(&a.plan[i].arena);
        rouse_buf_fini(&a.plan[i].wanted);
        rouse_buf_fini(&a.plan[i].now);
    }
    free(a.plan);
out_manifest:
    manifest_fini(&a.m);
    rouse_buf_fini(&a.js);
out_client:
    cli_client_fini(&c);
    return rc;
}

int cli_apply_main(int argc, char **argv)
{
    return apply_main("apply", cli_apply_usage, false, argc, argv);
}

int cli_diff_main(int argc, char **argv)
{
    return apply_main("diff", cli_diff_usage, true, argc, argv);
}
