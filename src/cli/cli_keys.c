/*
 * `rouse keys`: API keys of a server running with --auth (POST, GET and
 * DELETE /v1/keys; docs/security.md). `create` prints the secret, the only
 * time it is ever shown: on stdout alone with -q, so that a script can
 * capture it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/out.h"
#include "common/arena.h"
#include "common/json.h"

void cli_keys_usage(FILE *out)
{
    fprintf(out,
            "usage: rouse keys create --tenant T --role admin|deploy|invoke [--expires DURATION]\n"
            "                         [--name LABEL] [options]\n"
            "       rouse keys ls [options]\n"
            "       rouse keys revoke ID [options]\n"
            "       rouse keys whoami [options]\n\n"
            "Manages the API keys of a server started with --auth (an admin key is\n"
            "needed but for whoami). create prints the new key's secret once: the\n"
            "server keeps only its hash. Roles: admin (everything, every tenant),\n"
            "deploy (its tenant's functions, blobs and jobs), invoke (calling its\n"
            "tenant's functions, reading its jobs).\n"
            "  --tenant T          the tenant the key acts for ([a-z0-9][a-z0-9-]*)\n"
            "  --role R            admin, deploy or invoke\n"
            "  --expires DURATION  the key stops working after this (30d, 12h, 90m, 3600s)\n"
            "  --name LABEL        a label shown by keys ls\n\n"
            "options:\n" CLI_CLIENT_OPTIONS_HELP);
}

static const char *str_of(const json_value *v, const char *k)
{
    const char *s = json_as_string(json_get(v, k));
    return s ? s : "-";
}

/* A duration in seconds: digits and a unit (s, m, h, d). */
static bool parse_expires(const char *s, long long *out)
{
    size_t digits = strspn(s, "0123456789");
    if (digits == 0 || digits > 9) return false;
    long long n = strtoll(s, NULL, 10);
    const char *u = s + digits;
    long long unit = strcmp(u, "s") == 0   ? 1
                     : strcmp(u, "m") == 0 ? 60
                     : strcmp(u, "h") == 0 ? 3600
                     : strcmp(u, "d") == 0 ? 86400
                                           : 0;
    if (unit == 0 || n < 1 || n > 3650LL * 86400 / unit) return false;
    *out = n * unit;
    return true;
}

/* One request; its JSON into *v (arena a). 0, or the exit status. */
static int call_json(cli_client *c, const char *method, const char *path, const char *body,
                     rouse_arena *a, json_value **v, http_response *r)
{
    static const char *const json_hdr[] = {"Content-Type: application/json", NULL};
    if (cli_call(c, method, path, body ? json_hdr : NULL, body, body ? strlen(body) : 0, r) < 0)
        return CLI_EXIT_FAIL;
    if (r->status < 200 || r->status >= 300) return cli_fail_response(c, r);
    if (json_parse(r->body.data ? r->body.data : "", r->body.len, a, v, NULL) < 0) {
        fprintf(stderr, "rouse keys: the server's answer is not JSON\n");
        http_response_fini(r);
        return CLI_EXIT_FAIL;
    }
    if (c->json) fwrite(r->body.data, 1, r->body.len, stdout);
    return 0;
}

static int create(cli_client *c, int argc, char **argv)
{
    const char *tenant = NULL, *role = NULL, *expires = NULL, *name = NULL;
    for (int i = 2; i < argc; i++) {
        const char **dst = strcmp(argv[i], "--tenant") == 0    ? &tenant
                           : strcmp(argv[i], "--role") == 0    ? &role
                           : strcmp(argv[i], "--expires") == 0 ? &expires
                           : strcmp(argv[i], "--name") == 0    ? &name
                                                               : NULL;
        if (!dst) return cli_usage_error("keys", cli_keys_usage, "unexpected argument", argv[i]);
        if (i + 1 >= argc) return cli_usage_error("keys", cli_keys_usage, "needs a value", argv[i]);
        *dst = argv[++i];
    }
    if (!tenant || !role)
        return cli_usage_error("keys", cli_keys_usage, "create needs --tenant and --role", NULL);
    long long secs = 0;
    if (expires && !parse_expires(expires, &secs))
        return cli_usage_error("keys", cli_keys_usage,
                               "--expires needs a duration like 30d, 12h, 90m", expires);
    rouse_buf body;
    rouse_buf_init(&body);
    rouse_buf_append_str(&body, "{\"tenant\":");
    json_write_string(&body, tenant, strlen(tenant));
    rouse_buf_append_str(&body, ",\"role\":");
    json_write_string(&body, role, strlen(role));
    if (secs) rouse_buf_appendf(&body, ",\"expires_in_s\":%lld", secs);
    if (name) {
        rouse_buf_append_str(&body, ",\"name\":");
        json_write_string(&body, name, strlen(name));
    }
    rouse_buf_append_str(&body, "}");
    rouse_arena a;
    rouse_arena_init(&a, 0);
    json_value *v;
    http_response r;
    int rc = call_json(c, "POST", "/v1/keys", body.data, &a, &v, &r);
    rouse_buf_fini(&body);
    if (rc == 0) {
        if (c->quiet && !c->json) {
            printf("%s\n", str_of(v, "key"));
        } else if (!c->json) {
            printf("created key %s (tenant %s, role %s, expires %s)\n", str_of(v, "id"),
                   str_of(v, "tenant"), str_of(v, "role"),
                   json_as_string(json_get(v, "expires")) ? str_of(v, "expires") : "never");
            printf("%s\n", str_of(v, "key"));
            fprintf(stderr, "rouse keys: the secret above is shown this once; keep it safe\n");
        }
        http_response_fini(&r);
    }
    rouse_arena_fini(&a);
    return rc;
}

static int list(cli_client *c, int argc, char **argv)
{
    if (argc > 2) return cli_usage_error("keys", cli_keys_usage, "unexpected argument", argv[2]);
    rouse_arena a;
    rouse_arena_init(&a, 0);
    json_value *v;
    http_response r;
    int rc = call_json(c, "GET", "/v1/keys", NULL, &a, &v, &r);
    if (rc == 0) {
        const json_value *keys = json_get(v, "keys");
        size_t n = keys && keys->type == JSON_ARRAY ? keys->u.arr.n : 0;
        if (!c->json && !c->quiet) {
            static const char *const heads[] = {"ID", "TENANT", "ROLE", "STATE", "EXPIRES", "NAME"};
            cli_table t;
            cli_table_init(&t, 6, heads);
            for (size_t i = 0; i < n; i++) {
                const json_value *k = keys->u.arr.items[i];
                cli_table_cell(&t, "%s", str_of(k, "id"));
                cli_table_cell(&t, "%s", str_of(k, "tenant"));
                cli_table_cell(&t, "%s", str_of(k, "role"));
                cli_table_cell(&t, "%s", str_of(k, "state"));
                cli_table_cell(&t, "%s", json_as_string(json_get(k, "expires"))
                                             ? str_of(k, "expires")
                                             : "never");
                cli_table_cell(&t, "%s", str_of(k, "name"));
            }
            cli_table_print(&t, stdout);
            cli_table_fini(&t);
        }
        http_response_fini(&r);
    }
    rouse_arena_fini(&a);
    return rc;
}

static int revoke(cli_client *c, int argc, char **argv)
{
    if (argc != 3 || argv[2][0] == '-')
        return cli_usage_error("keys", cli_keys_usage,
                               argc > 3 ? "unexpected argument" : "revoke needs a key ID",
                               argc > 3 ? argv[3] : NULL);
    rouse_buf path;
    rouse_buf_init(&path);
    rouse_buf_append_str(&path, "/v1/keys/");
    cli_url_escape(&path, argv[2]);
    rouse_arena a;
    rouse_arena_init(&a, 0);
    json_value *v;
    http_response r;
    int rc = call_json(c, "DELETE", path.data, NULL, &a, &v, &r);
    if (rc == 0) {
        if (!c->json && !c->quiet) printf("revoked key %s\n", str_of(v, "id"));
        http_response_fini(&r);
    }
    rouse_buf_fini(&path);
    rouse_arena_fini(&a);
    return rc;
}

static int whoami(cli_client *c, int argc, char **argv)
{
    if (argc > 2) return cli_usage_error("keys", cli_keys_usage, "unexpected argument", argv[2]);
    rouse_arena a;
    rouse_arena_init(&a, 0);
    json_value *v;
    http_response r;
    int rc = call_json(c, "GET", "/v1/keys/self", NULL, &a, &v, &r);
    if (rc == 0) {
        if (!c->json && !c->quiet)
            printf("key %s: tenant %s, role %s, expires %s\n",
                   json_as_string(json_get(v, "id")) ? str_of(v, "id") : "(none: no --auth)",
                   str_of(v, "tenant"), str_of(v, "role"),
                   json_as_string(json_get(v, "expires")) ? str_of(v, "expires") : "never");
        http_response_fini(&r);
    }
    rouse_arena_fini(&a);
    return rc;
}

int cli_keys_main(int argc, char **argv)
{
    cli_client c;
    int rc = cli_client_init(&c, "keys", cli_keys_usage, &argc, argv);
    if (rc) return rc;
    const char *verb = argc > 1 ? argv[1] : "";
    if (strcmp(verb, "create") == 0)
        rc = create(&c, argc, argv);
    else if (strcmp(verb, "ls") == 0)
        rc = list(&c, argc, argv);
    else if (strcmp(verb, "revoke") == 0)
        rc = revoke(&c, argc, argv);
    else if (strcmp(verb, "whoami") == 0)
        rc = whoami(&c, argc, argv);
    else
        rc = cli_usage_error("keys", cli_keys_usage,
                             *verb ? "unknown subcommand" : "needs create, ls, revoke or whoami",
                             *verb ? verb : NULL);
    cli_client_fini(&c);
    return rc;
}
