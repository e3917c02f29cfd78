/*
 * The verbs that read or change a deployed function: ls, status, versions,
 * rollback, alias, rm. Each prints a table or a few lines for people, and
 * with --json the server's JSON as it is (the schemas of the HTTP API).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/jfield.h"
#include "cli/client.h"
#include "cli/cluster_view.h"
#include "cli/out.h"
#include "common/arena.h"
#include "common/json.h"

/* --- shared ------------------------------------------------------------------- */

/* "/v1/functions/NAME" + suffix (escaped). */
static void fn_path(rouse_buf *b, const char *name, const char *suffix)
{
    rouse_buf_append_str(b, "/v1/functions/");
    cli_url_escape(b, name);
    if (suffix) rouse_buf_append_str(b, suffix);
}

/* GET path, parsed. 0 with *v (arena-owned), or an exit status after
 * printing why. With --json the body is printed and *v is NULL. */
static int get_json(cli_client *c, const char *path, rouse_arena *a, json_value **v)
{
    http_response r;
    *v = NULL;
    if (cli_call(c, "GET", path, NULL, NULL, 0, &r) < 0) return CLI_EXIT_FAIL;
    if (r.status != 200) return cli_fail_response(c, &r);
    int rc = CLI_EXIT_OK;
    if (c->json) {
        fputs(r.body.data, stdout);
    } else if (json_parse(r.body.data, r.body.len, a, v, NULL) < 0) {
        fprintf(stderr, "rouse %s: the server's answer is not JSON\n", c->cmd);
        rc = CLI_EXIT_FAIL;
    }
    http_response_fini(&r);
    return rc;
}

/* "3m ago", "2h ago", "5d ago" from a wall-clock time in ms. */
static void age(char *out, size_t cap, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    int64_t s = (now - ms) / 1000;
    if (ms <= 0)
        snprintf(out, cap, "-");
    else if (s < 60)
        snprintf(out, cap, "%" PRId64 "s ago", s < 0 ? 0 : s);
    else if (s < 3600)
        snprintf(out, cap, "%" PRId64 "m ago", s / 60);
    else if (s < 86400)
        snprintf(out, cap, "%" PRId64 "h ago", s / 3600);
    else
        snprintf(out, cap, "%" PRId64 "d ago", s / 86400);
}

static size_t count(const json_value *arr)
{
    return arr && arr->type == JSON_ARRAY ? arr->u.arr.n : 0;
}

#define ITEM(a_, i) ((a_)->u.arr.items[i])

/* Takes NAME (and nothing else) from argv. */
static const char *one_name(cli_client *c, int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '-') {
        cli_usage_error(c->cmd, c->usage,
                        argc > 2 ? "unexpected argument" : "needs exactly one NAME",
                        argc > 2 ? argv[2] : (argc == 2 ? argv[1] : NULL));
        return NULL;
    }
    return argv[1];
}

/* Runs fn between cli_client_init and cli_client_fini. */
static int with_client(const char *cmd, void (*usage)(FILE *), int argc, char **argv,
                       int (*fn)(cli_client *, int, char **))
{
    cli_client c;
    int rc = cli_client_init(&c, cmd, usage, &argc, argv);
    if (rc) return rc;
    rc = fn(&c, argc, argv);
    cli_client_fini(&c);
    return rc;
}

/* --- ls --------------------------------------------------------------------------- */

void cli_ls_usage(FILE *out)
{
    fprintf(out, "usage: rouse ls [options]\n\n"
                 "Lists the deployed functions: the version their default alias serves, how\n"
                 "many versions they have, when they were created.\n\n"
                 "options:\n" CLI_CLIENT_OPTIONS_HELP);
}

static int ls_run(cli_client *c, int argc, char **argv)
{
    if (argc > 1) return cli_usage_error("ls", cli_ls_usage, "unexpected argument", argv[1]);
    rouse_arena a;
    rouse_arena_init(&a, 0);
    json_value *v;
    int rc = get_json(c, "/v1/functions", &a, &v);
    if (rc == 0 && v && !c->quiet) {
        const json_value *fns = json_get(v, "functions");
        static const char *const heads[] = {"NAME", ">LATEST", ">VERSIONS", "CREATED"};
        cli_table t;
        cli_table_init(&t, 4, heads);
        t.flex = 0;
        for (size_t i = 0; i < count(fns); i++) {
            const json_value *f = ITEM(fns, i);
            char when[32];
            age(when, sizeof(when), int_of(f, "created_ms"));
            cli_table_cell(&t, "%s", str_of(f, "name"));
            cli_table_cell(&t, "%" PRId64, int_of(f, "latest"));
            cli_table_cell(&t, "%" PRId64, int_of(f, "versions"));
            cli_table_cell(&t, "%s", when);
        }
        if (count(fns))
            cli_table_print(&t, stdout);
        else
            printf("no functions; deploy one with rouse deploy or rouse apply\n");
        cli_table_fini(&t);
    }
    rouse_arena_fini(&a);
    return rc;
}

int cli_ls_main(int argc, char **argv)
{
    return with_client("ls", cli_ls_usage, argc, argv, ls_run);
}

/* --- status ----------------------------------------------------------------------- */

void cli_status_usage(FILE *out)
{
    fprintf(out, "usage: rouse status [NAME] [options]\n\n"
                 "Shows a function: its versions, aliases and their routes, live instances by\n"
                 "state, templates, spares, dynamic batching (its limit now), and its last\n"
                 "cold starts phase by phase; then the isolation its instances run at (the\n"
                 "server's, GET /v2) and what of it this machine could not give; with\n"
                 "several nodes (serve --bus), which node answered, whether the shared state\n"
                 "is stale, and every node with its URL, whether it was heard from lately,\n"
                 "its free slots and the function's instances there (GET /v1/cluster).\n\n"
                 "Without NAME: the server alone: the node that answered, its state, its\n"
                 "isolation and the cluster's nodes (--json: GET /v1/cluster as it is).\n\n"
                 "options:\n" CLI_CLIENT_OPTIONS_HELP);
}

static void print_status(const char *name, const json_value *v)
{
    const char *b = cli_style_of(stdout, CLI_BOLD), *r = cli_style_of(stdout, CLI_RESET);
    printf("%sfunction %s%s (latest: version %" PRId64 ")\n", b, name, r, int_of(v, "latest"));
    const json_value *vs = json_get(v, "versions");
    printf("versions:\n");
    for (size_t i = 0; i < count(vs); i++)
        printf("  %" PRId64 "  %s\n", int_of(ITEM(vs, i), "version"), str_of(ITEM(vs, i), "model"));
    const json_value *as = json_get(v, "aliases");
    printf("aliases:\n");
    for (size_t i = 0; i < count(as); i++) {
        const json_value *al = ITEM(as, i);
        printf("  %s ->", str_of(al, "name"));
        const json_value *rs = json_get(al, "routes");
        for (size_t k = 0; k < count(rs); k++)
            printf(" v%" PRId64 " (weight %" PRId64 ")", int_of(ITEM(rs, k), "version"),
                   int_of(ITEM(rs, k), "weight"));
        printf("\n");
    }
    const json_value *is = json_get(v, "instances");
    /* Instances by state, then one line each. */
    printf("instances:");
    if (!count(is)) printf(" none");
    static const char *const states[] = {"starting", "idle", "busy", "draining", "stopping"};
    for (size_t s = 0; s < sizeof(states) / sizeof(states[0]); s++) {
        size_t n = 0;
        for (size_t i = 0; i < count(is); i++)
            if (strcmp(str_of(ITEM(is, i), "state"), states[s]) == 0) n++;
        if (n) printf(" %zu %s", n, states[s]);
    }
    printf("\n");
    for (size_t i = 0; i < count(is); i++) {
        const json_value *in = ITEM(is, i);
        const char *how = json_as_string(json_get(in, "start"));
        printf("  pid %" PRId64 "  v%" PRId64 "  %s%s%s\n", int_of(in, "pid"), int_of(in, "version"),
               str_of(in, "state"), how ? "  started " : "", how ? how : "");
    }
    const json_value *ts = json_get(v, "templates");
    for (size_t i = 0; i < count(ts); i++)
        printf("  pid %" PRId64 "  v%" PRId64 "  template, %s\n", int_of(ITEM(ts, i), "pid"),
               int_of(ITEM(ts, i), "version"), str_of(ITEM(ts, i), "state"));
    const json_value *sp = json_get(v, "spares");
    for (size_t i = 0; i < count(sp); i++)
        printf("  pid %" PRId64 "  v%" PRId64 "  spare, %s\n", int_of(ITEM(sp, i), "pid"),
               int_of(ITEM(sp, i), "version"), str_of(ITEM(sp, i), "state"));
    int64_t queued = int_of(v, "queued");
    if (queued) printf("queued requests: %" PRId64 "\n", queued);
    /* The keep-alive windows each version's template is kept by. */
    const json_value *ka = json_get(v, "keep_alive");
    for (size_t i = 0; i < count(ka); i++) {
        const json_value *k = ITEM(ka, i);
        double cv = 0;
        json_as_double(json_get(k, "cv"), &cv);
        const json_value *capped = json_get(k, "capped");
        printf("keep-alive v%" PRId64 ": %s, template from %.1f to %.1f min%s (%" PRId64
               " idle times, CV %.2f, %" PRId64 " pre-warms)\n",
               int_of(k, "version"), str_of(k, "mode"), (double)int_of(k, "prewarm_ms") / 60000.0,
               (double)int_of(k, "keep_ms") / 60000.0,
               capped && capped->type == JSON_TRUE ? ", capped by template_ttl_ms" : "",
               int_of(k, "idle_times"), cv, int_of(k, "prewarms"));
    }
    /* Dynamic batching: the limit now (auto mode moves it), what ran, and
     * the activations an instance holds for its largest batch. */
    const json_value *bt = json_get(v, "batching");
    for (size_t i = 0; i < count(bt); i++) {
        const json_value *k = ITEM(bt, i);
        int64_t batches = int_of(k, "batches"), calls = int_of(k, "batched_requests");
        printf("batching v%" PRId64 ": %s, limit %" PRId64 " of %" PRId64 ", max delay %" PRId64
               " us; %" PRId64 " batches (mean %.1f requests); %.1f MiB of activations at the "
               "largest batch\n",
               int_of(k, "version"), str_of(k, "mode"), int_of(k, "limit"),
               int_of(k, "max_batch"), int_of(k, "max_delay_us"), batches,
               batches ? (double)calls / (double)batches : 0.0,
               (double)int_of(k, "memory_bytes") / (1024.0 * 1024.0));
        /* Which of the queue's rules sent the calls (how batches formed). */
        const json_value *by = json_get(k, "sent_by");
        if (by && by->type == JSON_OBJECT && by->u.obj.n > 0) {
            printf("  requests sent by:");
            for (size_t j = 0; j < by->u.obj.n; j++) {
                int64_t n = 0;
                json_as_int64(by->u.obj.members[j].value, &n);
                printf("%s %s %" PRId64, j ? "," : "", by->u.obj.members[j].key, n);
            }
            printf("\n");
        }
        /* What the lone rule judges by: the instance's CPU per request by
         * batch size. */
        const json_value *cost = json_get(k, "instance_cpu_us_per_call");
        if (cost && cost->type == JSON_OBJECT && cost->u.obj.n > 0) {
            printf("  instance CPU per request (us) by batch size:");
            for (size_t j = 0; j < cost->u.obj.n; j++) {
                double us = 0;
                json_as_double(cost->u.obj.members[j].value, &us);
                printf("%s %s: %.0f", j ? "," : "", cost->u.obj.members[j].key, us);
            }
            const json_value *lone = json_get(k, "lone");
            printf("%s\n", lone && lone->type == JSON_TRUE ? "; one at a time until a probe gains"
                                                          : "");
        }
    }
    /* Cold starts, phase by phase (ms): what a user tunes min and the
     * idle/template timeouts against. */
    const json_value *cs = json_get(v, "cold_starts");
    if (count(cs)) {
        static const char *const phases[] = {"queue_ms",   "template_ms", "plan_open_ms",
                                             "prepare_ms", "spawn_ms",    "first_infer_ms"};
        printf("last cold starts (ms): queue, template, plan open, prepare, spawn, first "
               "inference; how the template started\n");
        for (size_t i = 0; i < count(cs); i++) {
            const json_value *cold = ITEM(cs, i);
            printf("  v%" PRId64 " %-8s", int_of(cold, "version"), str_of(cold, "start"));
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
}

/* The isolation tier, the server's, chosen at its start (ro: GET /v2's
 * "rouse" object). */
static void print_isolation(const json_value *ro)
{
    const json_value *fb = json_get(ro, "fallbacks");
    printf("isolation: %s\n", str_of(ro, "isolation"));
    for (size_t i = 0; i < count(fb); i++) {
        const char *f = json_as_string(ITEM(fb, i));
        if (f) printf("  fallback: %s\n", f);
    }
}

static int status_run(cli_client *c, int argc, char **argv)
{
    if (argc > 2) return cli_usage_error(c->cmd, c->usage, "unexpected argument", argv[2]);
    if (argc == 2 && argv[1][0] == '-')
        return cli_usage_error(c->cmd, c->usage, "unknown option", argv[1]);
    const char *name = argc == 2 ? argv[1] : NULL;
    rouse_arena a;
    rouse_arena_init(&a, 0);
    json_value *v = NULL, *meta = NULL;
    int rc = CLI_EXIT_OK;
    if (name) {
        rouse_buf p;
        rouse_buf_init(&p);
        fn_path(&p, name, NULL);
        rc = get_json(c, p.data, &a, &v);
        rouse_buf_fini(&p);
        if (rc == 0 && v && !c->quiet) print_status(name, v);
    } else if (c->json || c->quiet) {
        /* The server alone, as JSON: its cluster document (-q: whether
         * it answers). */
        rc = get_json(c, "/v1/cluster", &a, &v);
        goto out;
    }
    /* --json: the one document (with NAME, the function's). */
    if (rc != 0 || c->quiet || c->json) goto out;
    if (!name) {
        if ((rc = get_json(c, "/v2", &a, &meta)) != 0) goto out;
        const json_value *ro = json_get(meta, "rouse");
        printf("server: rouse %s at %s\n", str_of(meta, "version"), c->url);
        cli_state_print(ro, true);
        print_isolation(ro);
        rc = cli_cluster_print(c, NULL, false);
    } else if (get_json(c, "/v2", &a, &meta) == 0 && meta) {
        const json_value *ro = json_get(meta, "rouse");
        print_isolation(ro);
        cli_state_print(ro, false);
        rc = cli_cluster_print(c, name, true);
    }
out:
    rouse_arena_fini(&a);
    return rc;
}

int cli_status_main(int argc, char **argv)
{
    return with_client("status", cli_status_usage, argc, argv, status_run);
}

/* --- versions --------------------------------------------------------------------- */

void cli_versions_usage(FILE *out)
{
    fprintf(out, "usage: rouse versions NAME [options]\n\n"
                 "Lists a function's versions: model, settings, when created, and the aliases\n"
                 "that route to each (with their weights).\n\n"
                 "options:\n" CLI_CLIENT_OPTIONS_HELP);
}

static int versions_run(cli_client *c, int argc, char **argv)
{
    const char *name = one_name(c, argc, argv);
    if (!name) return CLI_EXIT_USAGE;
    rouse_buf p;
    rouse_buf_init(&p);
    fn_path(&p, name, NULL);
    rouse_arena a;
    rouse_arena_init(&a, 0);
    json_value *v;
    int rc = get_json(c, p.data, &a, &v);
    if (rc == 0 && v && !c->quiet) {
        static const char *const heads[] = {">VERSION", "CREATED", "SCALING", ">MEMORY",
                                            "ALIASES", "MODEL"};
        cli_table t;
        cli_table_init(&t, 6, heads);
        const json_value *vs = json_get(v, "versions"), *as = json_get(v, "aliases");
        for (size_t i = 0; i < count(vs); i++) {
            const json_value *ver = ITEM(vs, i), *cfg = json_get(ver, "config");
            int64_t n = int_of(ver, "version");
            const json_value *sc = json_get(cfg, "scaling");
            char when[32], aliases[256] = "";
            age(when, sizeof(when), int_of(ver, "created_ms"));
            size_t al = 0;
            for (size_t k = 0; k < count(as); k++) {
                const json_value *rs = json_get(ITEM(as, k), "routes");
                for (size_t j = 0; j < count(rs); j++) {
                    if (int_of(ITEM(rs, j), "version") != n) continue;
                    al += (size_t)snprintf(aliases + al, al < sizeof(aliases) ? sizeof(aliases) - al : 0,
                                           "%s%s", al ? "," : "", str_of(ITEM(as, k), "name"));
                    if (count(rs) > 1 && al < sizeof(aliases))
                        al += (size_t)snprintf(aliases + al, sizeof(aliases) - al, ":%" PRId64,
                                               int_of(ITEM(rs, j), "weight"));
                    if (al >= sizeof(aliases)) al = sizeof(aliases) - 1;
                }
            }
            cli_table_cell(&t, "%" PRId64, n);
            cli_table_cell(&t, "%s", when);
            cli_table_cell(&t, "%" PRId64 "..%" PRId64 " x%" PRId64, int_of(sc, "min"),
                           int_of(sc, "max"), int_of(sc, "concurrency"));
            cli_table_cell(&t, "%" PRId64 " MB", int_of(cfg, "memory_mb"));
            cli_table_cell(&t, "%s", al ? aliases : "-");
            cli_table_cell(&t, "%s", str_of(ver, "model"));
        }
        cli_table_print(&t, stdout);
        cli_table_fini(&t);
    }
    rouse_arena_fini(&a);
    rouse_buf_fini(&p);
    return rc;
}

int cli_versions_main(int argc, char **argv)
{
    return with_client("versions", cli_versions_usage, argc, argv, versions_run);
}

/* --- rollback, rm --------------------------------------------------------------- */

void cli_rollback_usage(FILE *out)
{
    fprintf(out, "usage: rouse rollback NAME [options]\n\n"
                 "Moves the function's default alias back to the previous version.\n\n"
                 "options:\n" CLI_CLIENT_OPTIONS_HELP);
}

/* A body-less write on the function; prints "NAME: what" (and the
 * X-Rouse-Version after it when with_version) unless --json or -q. */
static int simple_write(cli_client *c, int argc, char **argv, const char *method,
                        const char *suffix, const char *what, bool with_version)
{
    const char *name = one_name(c, argc, argv);
    if (!name) return CLI_EXIT_USAGE;
    rouse_buf p;
    rouse_buf_init(&p);
    fn_path(&p, name, suffix);
    http_response r;
    int st = cli_call(c, method, p.data, NULL, NULL, 0, &r);
    rouse_buf_fini(&p);
    if (st < 0) return CLI_EXIT_FAIL;
    if (r.status != 200) return cli_fail_response(c, &r);
    if (c->json)
        fputs(r.body.data, stdout);
    else if (!c->quiet && with_version)
        printf("%s: %s %" PRId64 "\n", name, what, r.rouse_version);
    else if (!c->quiet)
        printf("%s: %s\n", name, what);
    http_response_fini(&r);
    return CLI_EXIT_OK;
}

static int rollback_run(cli_client *c, int argc, char **argv)
{
    return simple_write(c, argc, argv, "POST", "/rollback", "now at version", true);
}

int cli_rollback_main(int argc, char **argv)
{
    return with_client("rollback", cli_rollback_usage, argc, argv, rollback_run);
}

void cli_rm_usage(FILE *out)
{
    fprintf(out, "usage: rouse rm NAME [options]\n\n"
                 "Deletes a function: every version and alias, and its running instances.\n"
                 "Its models are collected once no other function uses them.\n\n"
                 "options:\n" CLI_CLIENT_OPTIONS_HELP);
}

static int rm_run(cli_client *c, int argc, char **argv)
{
    return simple_write(c, argc, argv, "DELETE", NULL, "deleted", false);
}

int cli_rm_main(int argc, char **argv)
{
    return with_client("rm", cli_rm_usage, argc, argv, rm_run);
}

/* --- alias -------------------------------------------------------------------------- */

void cli_alias_usage(FILE *out)
{
    fprintf(out, "usage: rouse alias NAME ALIAS V[:WEIGHT][,V[:WEIGHT]...] [options]\n\n"
                 "Points alias ALIAS of function NAME at one version, or splits its traffic\n"
                 "between versions by weight (\"1:90,2:10\" sends 9 requests in 10 to version\n"
                 "1). Call the alias with /v2/models/NAME/versions/ALIAS/infer, or name it\n"
                 "as the version of rouse invoke. The alias \"latest\" is the default one,\n"
                 "which deploy and rollback move.\n\n"
                 "options:\n" CLI_CLIENT_OPTIONS_HELP);
}

static int alias_run(cli_client *c, int argc, char **argv)
{
    if (argc != 4 || argv[1][0] == '-' || argv[2][0] == '-')
        return cli_usage_error("alias", cli_alias_usage,
                               argc > 4 ? "unexpected argument" : "needs NAME, ALIAS and routes",
                               argc > 4 ? argv[4] : NULL);
    rouse_buf body;
    rouse_buf_init(&body);
    rouse_buf_append_str(&body, "{\"routes\":[");
    const char *p = argv[3];
    int n = 0;
    while (*p) {
        char *end;
        long long ver = strtoll(p, &end, 10), w = 1;
        if (end == p || ver < 1) goto bad;
        p = end;
        if (*p == ':') {
            w = strtoll(p + 1, &end, 10);
            if (end == p + 1 || w < 1) goto bad;
            p = end;
        }
        if (*p == ',' && p[1]) p++;
        else if (*p) goto bad;
        rouse_buf_appendf(&body, "%s{\"version\":%lld,\"weight\":%lld}", n++ ? "," : "", ver, w);
    }
    rouse_buf_append_str(&body, "]}");
    rouse_buf path;
    rouse_buf_init(&path);
    fn_path(&path, argv[1], "/aliases/");
    cli_url_escape(&path, argv[2]);
    const char *h[] = {"Content-Type: application/json", NULL};
    http_response r;
    int st = cli_call(c, "PUT", path.data, h, body.data, body.len, &r);
    rouse_buf_fini(&path);
    rouse_buf_fini(&body);
    if (st < 0) return CLI_EXIT_FAIL;
    if (r.status != 200) return cli_fail_response(c, &r);
    if (c->json) {
        fputs(r.body.data, stdout);
    } else if (!c->quiet) {
        printf("%s: alias %s ->", argv[1], argv[2]);
        rouse_arena a;
        rouse_arena_init(&a, 0);
        json_value *v;
        if (json_parse(r.body.data, r.body.len, &a, &v, NULL) == 0) {
            const json_value *rs = json_get(v, "routes");
            for (size_t k = 0; k < count(rs); k++)
                printf(" v%" PRId64 " (weight %" PRId64 ")", int_of(ITEM(rs, k), "version"),
                       int_of(ITEM(rs, k), "weight"));
        }
        printf("\n");
        rouse_arena_fini(&a);
    }
    http_response_fini(&r);
    return CLI_EXIT_OK;
bad:
    rouse_buf_fini(&body);
    return cli_usage_error("alias", cli_alias_usage, "routes look like 2 or 1:90,2:10", argv[3]);
}

int cli_alias_main(int argc, char **argv)
{
    return with_client("alias", cli_alias_usage, argc, argv, alias_run);
}
