/*
 * Integration tests of access control (serve --auth): the real daemon on a
 * free loopback port, driven over HTTP with API keys of every role.
 *
 * The access matrix is table-driven from the routing table itself
 * (route_specs, the roles routes.c declares): every route x {no key,
 * invoke, deploy, admin, a deploy key of another tenant}. Then cross-tenant
 * 404s for functions, blobs and jobs, per-tenant names and listings,
 * revoked and expired keys, the admin's Rouse-Tenant, keys surviving a
 * restart, and the --metrics-bind listener.
 *
 * Environment: ROUSE (the binary), DIGITS (examples/digits). The tests run
 * in order and share one daemon and its state.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli/http_client.h"
#include "cli/tensor_file.h"
#include "common/arena.h"
#include "common/buf.h"
#include "common/json.h"
#include "server/auth.h"
#include "server/http_int.h"
#include "free_port.h"
#include "serve_proc.h"
#include "tmp_dir.h"

#define TIMEOUT_MS 120000
#define ADMIN_SECRET "test-admin-secret-0123456789abcdef"

static const char *g_rouse, *g_digits;
static char g_dir[256], g_data[300], g_bootfile[300], g_metrics_arg[64];
static int g_metrics_port;
static serve_proc g_srv;

/* The keys the tests use (secrets) and their ids. */
static char k_invoke[128], k_deploy[128], k_other[128], k_victim_id[32];
static char g_model_digest[80], g_acme_blob[80];
static int64_t g_job_id;

/* --- utilities ------------------------------------------------------------------ */

/* One request with key (NULL: none) and extra headers; returns the status. */
static int reqk(const char *key, const char *method, const char *path, const char *extra_header,
                const void *body, size_t len, http_response *r)
{
    char auth[256];
    const char *hdrs[4];
    int n = 0;
    if (key) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
        hdrs[n++] = auth;
    }
    if (extra_header) hdrs[n++] = extra_header;
    hdrs[n] = NULL;
    http_response_init(r);
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    int rc = http_request(&g_srv.target, method, path, hdrs, body, len, TIMEOUT_MS, r, &eb);
    if (rc < 0) fprintf(stderr, "%s %s: %s\n", method, path, eb.msg);
    assert_int_equal(rc, 0);
    return r->status;
}

static int status_of(const char *key, const char *method, const char *path, const char *body)
{
    http_response r;
    int st = reqk(key, method, path, NULL, body, body ? strlen(body) : 0, &r);
    http_response_fini(&r);
    return st;
}

static void expect_status(const char *key, const char *method, const char *path, const char *body,
                          int want)
{
    http_response r;
    int st = reqk(key, method, path, NULL, body, body ? strlen(body) : 0, &r);
    if (st != want) fprintf(stderr, "%s %s: got %d %s, wanted %d\n", method, path, st, r.body.data, want);
    assert_int_equal(st, want);
    http_response_fini(&r);
}

static const char *json_str(rouse_arena *a, const http_response *r, const char *field)
{
    json_value *v = NULL;
    assert_int_equal(json_parse(r->body.data, r->body.len, a, &v, NULL), 0);
    return json_as_string(json_get(v, field));
}

/* POST /v1/keys as the admin; the secret into secret, the id into id. */
static void make_key(const char *tenant, const char *role, int expires_s, char *secret, char *id)
{
    char body[200];
    snprintf(body, sizeof(body), "{\"tenant\":\"%s\",\"role\":\"%s\"%s%.0d}", tenant, role,
             expires_s ? ",\"expires_in_s\":" : "", expires_s);
    http_response r;
    int st = reqk(ADMIN_SECRET, "POST", "/v1/keys", NULL, body, strlen(body), &r);
    if (st != 201) fprintf(stderr, "POST /v1/keys: %d %s\n", st, r.body.data);
    assert_int_equal(st, 201);
    rouse_arena a;
    rouse_arena_init(&a, 0);
    const char *s = json_str(&a, &r, "key");
    assert_non_null(s);
    assert_int_equal(strncmp(s, "rk_", 3), 0);
    assert_int_equal(strlen(s), AUTH_SECRET_LEN);
    if (secret) snprintf(secret, 128, "%s", s);
    if (id) snprintf(id, 32, "%s", json_str(&a, &r, "id"));
    rouse_arena_fini(&a);
    http_response_fini(&r);
}

static void upload(const char *key, const void *buf, size_t len, char *digest)
{
    http_response r;
    int st = reqk(key, "POST", "/v1/blobs", NULL, buf, len, &r);
    assert_int_equal(st, 201);
    rouse_arena a;
    rouse_arena_init(&a, 0);
    snprintf(digest, 80, "%s", json_str(&a, &r, "digest"));
    rouse_arena_fini(&a);
    http_response_fini(&r);
}

static void deploy(const char *key, const char *name, const char *extra)
{
    char path[128], body[256];
    snprintf(path, sizeof(path), "/v1/functions/%s", name);
    snprintf(body, sizeof(body), "{\"model\":\"%s\"%s}", g_model_digest, extra ? extra : "");
    int st = status_of(key, "PUT", path, body);
    if (st != 201 && st != 200) fprintf(stderr, "deploy %s: %d\n", name, st);
    assert_true(st == 201 || st == 200);
}

/* Names of the functions a key's listing shows, comma-separated. */
static void listing(const char *key, const char *extra_header, char *out, size_t cap)
{
    http_response r;
    assert_int_equal(reqk(key, "GET", "/v1/functions", extra_header, NULL, 0, &r), 200);
    rouse_arena a;
    rouse_arena_init(&a, 0);
    json_value *v = NULL;
    assert_int_equal(json_parse(r.body.data, r.body.len, &a, &v, NULL), 0);
    const json_value *fns = json_get(v, "functions");
    out[0] = '\0';
    for (size_t i = 0; fns && i < fns->u.arr.n; i++) {
        size_t n = strlen(out);
        snprintf(out + n, cap - n, "%s%s", i ? "," : "",
                 json_as_string(json_get(fns->u.arr.items[i], "name")));
    }
    rouse_arena_fini(&a);
    http_response_fini(&r);
}

static int start_serve(void)
{
    const char *args[] = {"--auth", "--auth-bootstrap-key-file", g_bootfile, "--metrics-bind",
                          g_metrics_arg, "--log-level", "warn", NULL};
    return serve_proc_start(&g_srv, g_rouse, g_data, args);
}

static int group_setup(void **state)
{
    (void)state;
    g_rouse = getenv("ROUSE");
    g_digits = getenv("DIGITS");
    if (!g_rouse || !g_digits) {
        fprintf(stderr, "ROUSE and DIGITS must be set\n");
        return -1;
    }
    snprintf(g_dir, sizeof(g_dir), "%s/rouse-auth-test-XXXXXX", test_tmp_dir());
    if (!mkdtemp(g_dir)) return -1;
    snprintf(g_data, sizeof(g_data), "%s/data", g_dir);
    snprintf(g_bootfile, sizeof(g_bootfile), "%s/admin.key", g_dir);
    FILE *f = fopen(g_bootfile, "w");
    if (!f) return -1;
    fprintf(f, "%s\n", ADMIN_SECRET);
    fclose(f);
    g_metrics_port = test_free_port();
    snprintf(g_metrics_arg, sizeof(g_metrics_arg), "127.0.0.1:%d", g_metrics_port);
    return start_serve();
}

static int group_teardown(void **state)
{
    (void)state;
    serve_proc_kill9(&g_srv);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* --- tests --------------------------------------------------------------------- */

/* Keys of each role, two tenants' functions, blobs and a job. */
static void test_setup_tenants(void **state)
{
    (void)state;
    expect_status(NULL, "GET", "/v2/health/live", NULL, 200);
    expect_status(NULL, "GET", "/v1/keys/self", NULL, 401);
    http_response r;
    assert_int_equal(reqk(ADMIN_SECRET, "GET", "/v1/keys/self", NULL, NULL, 0, &r), 200);
    assert_non_null(strstr(r.body.data, "\"role\":\"admin\""));
    assert_non_null(strstr(r.body.data, "\"tenant\":\"default\""));
    http_response_fini(&r);

    make_key("acme", "invoke", 0, k_invoke, NULL);
    make_key("acme", "deploy", 0, k_deploy, NULL);
    make_key("other", "deploy", 0, k_other, NULL);
    make_key("acme", "invoke", 0, NULL, k_victim_id);

    char path[512];
    snprintf(path, sizeof(path), "%s/model.onnx", g_digits);
    uint8_t *buf;
    size_t len;
    rouse_errbuf eb;
    assert_int_equal(cli_file_slurp(path, &buf, &len, &eb), 0);
    upload(k_deploy, buf, len, g_model_digest);
    /* The other tenant uploads the same bytes: its own ownership of them. */
    char d2[80];
    upload(k_other, buf, len, d2);
    assert_string_equal(d2, g_model_digest);
    free(buf);
    upload(k_deploy, "acme's own bytes", 16, g_acme_blob);

    /* The same name in two tenants: two functions. */
    deploy(k_deploy, "digits", NULL);
    deploy(k_deploy, "fa", NULL);
    deploy(k_other, "digits", ",\"timeout_ms\":7000");

    /* An asynchronous job of acme's. */
    snprintf(path, sizeof(path), "%s/samples/digit-7.json", g_digits);
    assert_int_equal(cli_file_slurp(path, &buf, &len, &eb), 0);
    assert_int_equal(reqk(k_invoke, "POST", "/v2/models/digits/infer", "Prefer: respond-async",
                          buf, len, &r),
                     202);
    free(buf);
    rouse_arena a;
    rouse_arena_init(&a, 0);
    const char *id = json_str(&a, &r, "id");
    assert_non_null(id);
    g_job_id = strtoll(id, NULL, 10);
    assert_true(g_job_id > 0);
    rouse_arena_fini(&a);
    http_response_fini(&r);
}

/* Fills a route's path with the test's resources of tenant acme. */
static void fill_path(const char *spec, char *out, size_t cap)
{
    rouse_buf b;
    rouse_buf_init(&b);
    for (const char *p = spec; *p;) {
        if (strncmp(p, "{name}", 6) == 0) {
            rouse_buf_append_str(&b, "fa");
            p += 6;
        } else if (strncmp(p, "{alias}", 7) == 0) {
            rouse_buf_append_str(&b, "canary");
            p += 7;
        } else if (strncmp(p, "{digest}", 8) == 0) {
            rouse_buf_append_str(&b, g_acme_blob);
            p += 8;
        } else if (strncmp(p, "{id}", 4) == 0) {
            if (strncmp(spec, "/v1/keys", 8) == 0)
                rouse_buf_append_str(&b, k_victim_id);
            else if (strncmp(spec, "/v1/jobs", 8) == 0)
                rouse_buf_appendf(&b, "%" PRId64, g_job_id);
            else
                rouse_buf_append_str(&b, "999999");
            p += 4;
        } else {
            rouse_buf_append_byte(&b, (uint8_t)*p++);
        }
    }
    snprintf(out, cap, "%s", b.data);
    rouse_buf_fini(&b);
}

/* The roles the routes must declare, written down apart from routes.c so
 * that a route whose role changes by mistake fails here: health open;
 * calling functions and reading jobs invoke; managing functions, blobs and
 * jobs deploy; the daemon's state and keys admin. */
static const struct {
    const char *method, *path;
    int role;
} expected_roles[] = {
    {"GET", "/v2/health/live", AUTH_OPEN},
    {"GET", "/v2/health/ready", AUTH_OPEN},
    {"GET", "/", AUTH_OPEN}, /* the console's files: the page asks for a key itself */
    {"GET", "/v2", AUTH_INVOKE},
    {"GET", "/v2/models/{name}", AUTH_INVOKE},
    {"GET", "/v2/models/{name}/ready", AUTH_INVOKE},
    {"POST", "/v2/models/{name}/infer", AUTH_INVOKE},
    {"GET", "/v1/jobs", AUTH_INVOKE},
    {"GET", "/v1/jobs/{id}", AUTH_INVOKE},
    {"GET", "/v1/jobs/{id}/result", AUTH_INVOKE},
    {"GET", "/v1/batches/{id}", AUTH_INVOKE},
    {"GET", "/v1/batches/{id}/output", AUTH_INVOKE},
    {"GET", "/v1/keys/self", AUTH_INVOKE},
    {"GET", "/openai/v1/models", AUTH_INVOKE},
    {"POST", "/openai/v1/completions", AUTH_INVOKE},
    {"POST", "/openai/v1/chat/completions", AUTH_INVOKE},
    {"POST", "/v1/blobs", AUTH_DEPLOY},
    {"HEAD", "/v1/blobs/{digest}", AUTH_DEPLOY},
    {"GET", "/v1/blobs/{digest}", AUTH_DEPLOY}, /* or another node's cluster key */
    {"DELETE", "/v1/blobs/{digest}", AUTH_DEPLOY},
    {"GET", "/v1/functions", AUTH_DEPLOY},
    {"GET", "/v1/recent", AUTH_DEPLOY},
    {"PUT", "/v1/functions/{name}", AUTH_DEPLOY},
    {"GET", "/v1/functions/{name}", AUTH_DEPLOY},
    {"DELETE", "/v1/functions/{name}", AUTH_DEPLOY},
    {"POST", "/v1/functions/{name}/rollback", AUTH_DEPLOY},
    {"PUT", "/v1/functions/{name}/aliases/{alias}", AUTH_DEPLOY},
    {"GET", "/v1/functions/{name}/logs", AUTH_DEPLOY},
    {"POST", "/v1/functions/{name}/scale-to-zero", AUTH_DEPLOY},
    {"DELETE", "/v1/jobs/{id}", AUTH_DEPLOY},
    {"POST", "/v1/jobs/{id}/retry", AUTH_DEPLOY},
    {"POST", "/v1/batches", AUTH_DEPLOY},
    {"GET", "/v1/stats", AUTH_ADMIN},
    {"POST", "/v1/stats/reset", AUTH_ADMIN},
    {"GET", "/metrics", AUTH_ADMIN},
    {"GET", "/v1/usage", AUTH_ADMIN},
    {"POST", "/v1/keys", AUTH_ADMIN},
    {"GET", "/v1/keys", AUTH_ADMIN},
    {"DELETE", "/v1/keys/{id}", AUTH_ADMIN},
    {"GET", "/v1/cluster", AUTH_ADMIN},
};

static void test_declared_roles(void **state)
{
    (void)state;
    size_t n_expected = sizeof(expected_roles) / sizeof(expected_roles[0]), n_routes = 0;
    for (int id = 0; id < R_COUNT; id++) {
        const route_spec *rs = &route_specs[id];
        if (!rs->method) continue;
        n_routes++;
        size_t i = 0;
        while (i < n_expected && (strcmp(expected_roles[i].method, rs->method) != 0 ||
                                  strcmp(expected_roles[i].path, rs->path) != 0))
            i++;
        if (i == n_expected || expected_roles[i].role != rs->role)
            fprintf(stderr, "%s %s declares %s\n", rs->method, rs->path,
                    auth_role_name((auth_role)rs->role));
        assert_true(i < n_expected);
        assert_int_equal(expected_roles[i].role, rs->role);
    }
    assert_int_equal(n_routes, n_expected);
}

/* Every route x every kind of caller, against the roles of the routing
 * table: no key is 401 (but on open routes), a role below the route's is
 * 403, a role at or above it gets through (any status but 401 and 403);
 * another tenant's deploy key that gets through finds nothing of acme's
 * (404) on routes that name a function, blob or job. */
static void test_access_matrix(void **state)
{
    (void)state;
    struct {
        const char *what, *key;
        int role;
        bool other;
    } callers[] = {
        {"no key", NULL, AUTH_OPEN, false},
        {"invoke", k_invoke, AUTH_INVOKE, false},
        {"other tenant's deploy", k_other, AUTH_DEPLOY, true},
        {"deploy", k_deploy, AUTH_DEPLOY, false},
        {"admin", ADMIN_SECRET, AUTH_ADMIN, false},
    };
    int cells = 0;
    for (int id = 0; id < R_COUNT; id++) {
        const route_spec *rs = &route_specs[id];
        if (!rs->method) continue;
        char path[256];
        fill_path(rs->path, path, sizeof(path));
        for (size_t c = 0; c < sizeof(callers) / sizeof(callers[0]); c++) {
            http_response r;
            /* A well-formed alias, so that what decides is the function. */
            const char *body = id == R_ALIAS_PUT ? "{\"routes\":[{\"version\":1,\"weight\":1}]}" : NULL;
            int st = reqk(callers[c].key, rs->method, path, NULL, body, body ? strlen(body) : 0, &r);
            int want_lo = 0, want_hi = 0; /* an exact status when want_lo == want_hi */
            if (rs->role == AUTH_OPEN) {
                want_lo = 200, want_hi = 599;
            } else if (!callers[c].key) {
                want_lo = want_hi = 401;
            } else if (callers[c].role < rs->role) {
                want_lo = want_hi = 403;
            } else if (callers[c].other && id != R_FN_PUT && /* a PUT deploys its own fa */
                       (strstr(rs->path, "{name}") || strstr(rs->path, "{digest}") ||
                        strncmp(rs->path, "/v1/jobs/", 9) == 0)) {
                want_lo = want_hi = 404;
            } else {
                want_lo = 200, want_hi = 599;
            }
            bool ok = st >= want_lo && st <= want_hi &&
                      (want_lo == want_hi || (st != 401 && st != 403));
            if (!ok)
                fprintf(stderr, "%s %s as %s: got %d %s; wanted %d%s\n", rs->method, path,
                        callers[c].what, st, r.body.data, want_lo,
                        want_lo == want_hi ? "" : " or any status but 401 and 403");
            assert_true(ok);
            /* A refused request says why, in JSON. */
            if ((st == 401 || st == 403) && strcmp(rs->method, "HEAD") != 0)
                assert_non_null(strstr(r.body.data, "\"error\""));
            http_response_fini(&r);
            cells++;
        }
    }
    /* Every route of the table was tried (4 API keys + no key each). */
    assert_true(cells >= 5 * 30);
}

static void test_cross_tenant_404(void **state)
{
    (void)state;
    /* The matrix deleted acme's fa; deploy it again, and check both ways. */
    deploy(k_deploy, "fa", NULL);
    expect_status(k_deploy, "GET", "/v1/functions/fa", NULL, 200);
    http_response r;
    /* The same 404 as for a name nobody uses, without the registry's key. */
    assert_int_equal(reqk(k_other, "GET", "/v1/functions/fa", NULL, NULL, 0, &r), 404);
    assert_string_equal(r.body.data, "{\"error\":\"no function named 'fa'\"}\n");
    http_response_fini(&r);
    assert_int_equal(reqk(k_other, "GET", "/v1/functions/nobody", NULL, NULL, 0, &r), 404);
    assert_string_equal(r.body.data, "{\"error\":\"no function named 'nobody'\"}\n");
    http_response_fini(&r);
    expect_status(k_other, "DELETE", "/v1/functions/fa", NULL, 404);
    expect_status(k_other, "POST", "/v2/models/fa/infer", "{}", 404);
    expect_status(k_other, "GET", "/v2/models/fa", NULL, 404);
    /* No way around it by naming the key a function is stored under. */
    expect_status(k_other, "GET", "/v1/functions/acme:fa", NULL, 404);
    expect_status(k_deploy, "GET", "/v1/functions/acme:fa", NULL, 404);

    /* Blobs: acme's own bytes are acme's; the model both uploaded is both's. */
    char path[200];
    snprintf(path, sizeof(path), "/v1/blobs/%s", g_acme_blob);
    int st = status_of(k_deploy, "HEAD", path, NULL);
    /* (the matrix's DELETE may have removed it: upload again) */
    if (st == 404) {
        char d[80];
        upload(k_deploy, "acme's own bytes", 16, d);
        assert_string_equal(d, g_acme_blob);
    }
    expect_status(k_deploy, "HEAD", path, NULL, 200);
    expect_status(k_other, "HEAD", path, NULL, 404);
    expect_status(k_other, "DELETE", path, NULL, 404);
    expect_status(k_deploy, "HEAD", path, NULL, 200);
    /* Deploying another tenant's blob: as if it did not exist. */
    char body[200];
    snprintf(body, sizeof(body), "{\"model\":\"%s\"}", g_acme_blob);
    expect_status(k_other, "PUT", "/v1/functions/stolen", body, 400);
    snprintf(path, sizeof(path), "/v1/blobs/%s", g_model_digest);
    expect_status(k_other, "HEAD", path, NULL, 200);
    expect_status(k_deploy, "HEAD", path, NULL, 200);

    /* Jobs. */
    snprintf(path, sizeof(path), "/v1/jobs/%" PRId64, g_job_id);
    expect_status(k_invoke, "GET", path, NULL, 200);
    expect_status(k_other, "GET", path, NULL, 404);
    snprintf(path, sizeof(path), "/v1/jobs/%" PRId64 "/result", g_job_id);
    expect_status(k_other, "GET", path, NULL, 404);
    assert_int_equal(reqk(k_other, "GET", "/v1/jobs", NULL, NULL, 0, &r), 200);
    assert_null(strstr(r.body.data, "\"id\""));
    http_response_fini(&r);
    assert_int_equal(reqk(k_invoke, "GET", "/v1/jobs", NULL, NULL, 0, &r), 200);
    assert_non_null(strstr(r.body.data, "\"id\""));
    http_response_fini(&r);
}

static void test_listing_per_tenant(void **state)
{
    (void)state;
    char names[512];
    listing(k_deploy, NULL, names, sizeof(names));
    assert_string_equal(names, "digits,fa");
    listing(k_other, NULL, names, sizeof(names));
    assert_string_equal(names, "digits");
    /* The admin's own tenant (default) has none; Rouse-Tenant picks one. */
    listing(ADMIN_SECRET, NULL, names, sizeof(names));
    assert_string_equal(names, "");
    listing(ADMIN_SECRET, "Rouse-Tenant: acme", names, sizeof(names));
    assert_string_equal(names, "digits,fa");
    /* Names are per tenant: each digits is its tenant's own config. */
    http_response r;
    assert_int_equal(reqk(k_other, "GET", "/v1/functions/digits", NULL, NULL, 0, &r), 200);
    assert_non_null(strstr(r.body.data, "\"timeout_ms\":7000"));
    assert_non_null(strstr(r.body.data, "\"name\":\"digits\""));
    http_response_fini(&r);
    assert_int_equal(reqk(k_deploy, "GET", "/v1/functions/digits", NULL, NULL, 0, &r), 200);
    assert_null(strstr(r.body.data, "\"timeout_ms\":7000"));
    http_response_fini(&r);
    /* A tenant sees its functions by their names, never the registry's
     * tenant:name keys: in inference answers, metadata and jobs. */
    char path[512];
    snprintf(path, sizeof(path), "%s/samples/digit-7.json", g_digits);
    uint8_t *buf;
    size_t len;
    rouse_errbuf eb;
    assert_int_equal(cli_file_slurp(path, &buf, &len, &eb), 0);
    assert_int_equal(reqk(k_invoke, "POST", "/v2/models/digits/infer", NULL, buf, len, &r), 200);
    free(buf);
    assert_non_null(strstr(r.body.data, "\"model_name\":\"digits\""));
    http_response_fini(&r);
    assert_int_equal(reqk(k_invoke, "GET", "/v2/models/digits", NULL, NULL, 0, &r), 200);
    assert_non_null(strstr(r.body.data, "\"name\":\"digits\""));
    http_response_fini(&r);
    snprintf(path, sizeof(path), "/v1/jobs/%" PRId64, g_job_id);
    assert_int_equal(reqk(k_invoke, "GET", path, NULL, NULL, 0, &r), 200);
    assert_non_null(strstr(r.body.data, "\"function\":\"digits\""));
    http_response_fini(&r);
    /* Only an admin names another tenant. */
    assert_int_equal(reqk(k_deploy, "GET", "/v1/functions", "Rouse-Tenant: other", NULL, 0, &r),
                     403);
    http_response_fini(&r);
    assert_int_equal(reqk(ADMIN_SECRET, "GET", "/v1/functions", "Rouse-Tenant: Bad!", NULL, 0, &r),
                     400);
    http_response_fini(&r);
}

static void test_revoked_and_expired(void **state)
{
    (void)state;
    char secret[128], id[32], path[64];
    make_key("acme", "invoke", 0, secret, id);
    expect_status(secret, "GET", "/v1/keys/self", NULL, 200);
    snprintf(path, sizeof(path), "/v1/keys/%s", id);
    expect_status(k_deploy, "DELETE", path, NULL, 403);
    expect_status(ADMIN_SECRET, "DELETE", path, NULL, 200);
    http_response r;
    assert_int_equal(reqk(secret, "GET", "/v1/keys/self", NULL, NULL, 0, &r), 401);
    assert_non_null(strstr(r.body.data, "revoked"));
    http_response_fini(&r);
    expect_status(ADMIN_SECRET, "DELETE", "/v1/keys/knothere", NULL, 404);

    char esecret[128];
    make_key("acme", "invoke", 1, esecret, NULL);
    assert_int_equal(reqk(esecret, "GET", "/v1/keys/self", NULL, NULL, 0, &r), 200);
    assert_null(strstr(r.body.data, "\"expires\":null"));
    http_response_fini(&r);
    usleep(1300 * 1000);
    assert_int_equal(reqk(esecret, "GET", "/v1/keys/self", NULL, NULL, 0, &r), 401);
    assert_non_null(strstr(r.body.data, "expired"));
    http_response_fini(&r);

    /* Unknown and malformed keys. */
    expect_status("rk_not-a-key-at-all", "GET", "/v1/keys/self", NULL, 401);
    assert_int_equal(reqk(NULL, "GET", "/v1/functions", "Authorization: Basic YTpi", NULL, 0, &r),
                     401);
    http_response_fini(&r);

    /* After a restart: the same keys, the revoked one still revoked. */
    assert_int_equal(serve_proc_stop(&g_srv), 0);
    assert_int_equal(start_serve(), 0);
    expect_status(k_deploy, "GET", "/v1/functions/fa", NULL, 200);
    expect_status(secret, "GET", "/v1/keys/self", NULL, 401);
    expect_status(esecret, "GET", "/v1/keys/self", NULL, 401);
    char names[512];
    listing(k_other, NULL, names, sizeof(names));
    assert_string_equal(names, "digits");
}

/* GET /metrics: an admin key on the API's address, none on --metrics-bind's,
 * which serves nothing else. */
static void test_metrics_bind(void **state)
{
    (void)state;
    expect_status(NULL, "GET", "/metrics", NULL, 401);
    expect_status(k_deploy, "GET", "/metrics", NULL, 403);
    expect_status(ADMIN_SECRET, "GET", "/metrics", NULL, 200);
    http_target api = g_srv.target;
    g_srv.target.port = g_metrics_port;
    http_response r;
    assert_int_equal(reqk(NULL, "GET", "/metrics", NULL, NULL, 0, &r), 200);
    assert_non_null(strstr(r.body.data, "rouse_"));
    http_response_fini(&r);
    expect_status(NULL, "GET", "/v1/functions", NULL, 404);
    expect_status(ADMIN_SECRET, "GET", "/v1/functions", NULL, 404);
    g_srv.target = api;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_declared_roles),    cmocka_unit_test(test_setup_tenants),
        cmocka_unit_test(test_access_matrix),
        cmocka_unit_test(test_cross_tenant_404),  cmocka_unit_test(test_listing_per_tenant),
        cmocka_unit_test(test_revoked_and_expired), cmocka_unit_test(test_metrics_bind),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
