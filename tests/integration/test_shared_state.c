/*
 * Integration tests of the shared registry (serve --state postgres://...):
 * two real serve processes on one real PostgreSQL (tests/support/
 * pg_server.h), no bus, talking HTTP:
 * - a deploy on node 1 is invoked on node 2 (the model's blob uploaded to
 *   both: fetching blobs between nodes is another part's);
 * - an alias set on node 1 reaches node 2 through its poll of registry_seq
 *   (waited for, no timing asserted);
 * - two nodes deploying the same function at once both succeed, with
 *   distinct versions, or one gets a clear conflict;
 * - a node killed with SIGKILL right after an acknowledged deploy has it
 *   after its restart, and so has the other node;
 * - PostgreSQL stopped: both nodes still answer invocations from their
 *   replica, a deploy answers 503 "shared state unavailable: ...",
 *   /v2/health/ready, /v2, rouse_state_stale and rouse status say stale;
 *   PostgreSQL back:
 *   the state is shared again and deploys work;
 * - with --auth on two more nodes: a key created on one works on the
 *   other, and revoked there it is refused on the first.
 *
 * Environment: ROUSE (the binary), DIGITS (examples/digits). Skips with
 * one line when PostgreSQL is not installed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/http_client.h"
#include "common/arena.h"
#include "common/json.h"
#include "pg_server.h"
#include "serve_proc.h"
#include "tmp_dir.h"

#define TIMEOUT_MS 60000
#define WAIT_S 60 /* generous: the machine may be loaded */

static const char *g_rouse, *g_digits;
static char g_dir[256], g_data[4][300];
static pg_server g_pg;
static serve_proc g_node[4]; /* 3 and 4: with --auth */
static char g_digest[80];
static char *g_sample;
static size_t g_sample_len;

static int request(int node, const char *method, const char *path, const void *body, size_t len,
                   http_response *r)
{
    http_response_init(r);
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    int rc = http_request(&g_node[node].target, method, path, NULL, body, len, TIMEOUT_MS, r, &eb);
    if (rc < 0) fprintf(stderr, "node %d: %s %s: %s\n", node + 1, method, path, eb.msg);
    assert_int_equal(rc, 0);
    return r->status;
}

static int req_str(int node, const char *method, const char *path, const char *body,
                   http_response *r)
{
    return request(node, method, path, body, body ? strlen(body) : 0, r);
}

static void upload_model(int node)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/model.onnx", g_digits);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    http_response r;
    assert_int_equal(request(node, "POST", "/v1/blobs", buf, (size_t)n, &r), 201);
    free(buf);
    rouse_arena a;
    rouse_arena_init(&a, 0);
    json_value *v;
    assert_int_equal(json_parse(r.body.data, r.body.len, &a, &v, NULL), 0);
    snprintf(g_digest, sizeof(g_digest), "%s", json_as_string(json_get(v, "digest")));
    rouse_arena_fini(&a);
    http_response_fini(&r);
}

/* PUT /v1/functions/NAME on node; the version into *version (optional). */
static int deploy(int node, const char *name, const char *extra, int64_t *version, char *msg,
                  size_t msg_len)
{
    char path[128], body[512];
    snprintf(path, sizeof(path), "/v1/functions/%s", name);
    snprintf(body, sizeof(body), "{\"model\":\"%s\"%s%s}", g_digest, extra ? "," : "",
             extra ? extra : "");
    http_response r;
    int st = req_str(node, "PUT", path, body, &r);
    if (msg) snprintf(msg, msg_len, "%s", r.body.data ? r.body.data : "");
    if (version && st < 300) {
        rouse_arena a;
        rouse_arena_init(&a, 0);
        json_value *v;
        assert_int_equal(json_parse(r.body.data, r.body.len, &a, &v, NULL), 0);
        assert_true(json_as_int64(json_get(v, "version"), version));
        rouse_arena_fini(&a);
    }
    http_response_fini(&r);
    return st;
}

static int infer(int node, const char *fn)
{
    char path[128];
    snprintf(path, sizeof(path), "/v2/models/%s/infer", fn);
    http_response r;
    int st = request(node, "POST", path, g_sample, g_sample_len, &r);
    http_response_fini(&r);
    return st;
}

/* Waits until GET path on node answers status with needle in its body. */
static bool wait_for(int node, const char *path, int status, const char *needle)
{
    time_t until = time(NULL) + WAIT_S;
    for (;;) {
        http_response r;
        int st = req_str(node, "GET", path, NULL, &r);
        bool ok = st == status && (!needle || (r.body.data && strstr(r.body.data, needle)));
        if (!ok && time(NULL) >= until)
            fprintf(stderr, "node %d: GET %s: %d %s (waited for %d with '%s')\n", node + 1, path,
                    st, r.body.data ? r.body.data : "", status, needle ? needle : "");
        http_response_fini(&r);
        if (ok) return true;
        if (time(NULL) >= until) return false;
        usleep(100 * 1000);
    }
}

static void start_node(int i)
{
    const char *args[] = {"--log-level", "warn", "--state", g_pg.url, NULL};
    assert_int_equal(serve_proc_start(&g_node[i], g_rouse, g_data[i], args), 0);
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
    char why[256] = "";
    int rc = pg_server_start(&g_pg, NULL, why, sizeof(why));
    if (rc == 1) {
        printf("skipped: PostgreSQL is not installed (%s)\n", why);
        return 0;
    }
    if (rc < 0) return -1;
    snprintf(g_dir, sizeof(g_dir), "%s/rouse-shared-XXXXXX", test_tmp_dir());
    if (!mkdtemp(g_dir)) return -1;
    for (int i = 0; i < 2; i++) {
        snprintf(g_data[i], sizeof(g_data[i]), "%s/node%d", g_dir, i + 1);
        const char *args[] = {"--log-level", "warn", "--state", g_pg.url, NULL};
        if (serve_proc_start(&g_node[i], g_rouse, g_data[i], args) < 0) return -1;
    }
    char path[400];
    snprintf(path, sizeof(path), "%s/samples/digit-3.json", g_digits);
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    g_sample_len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    g_sample = malloc(g_sample_len);
    bool ok = g_sample && fread(g_sample, 1, g_sample_len, f) == g_sample_len;
    fclose(f);
    return ok ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    for (int i = 0; i < 4; i++)
        if (g_node[i].pid > 0) serve_proc_stop(&g_node[i]);
    pg_server_stop(&g_pg);
    free(g_sample);
    if (g_dir[0]) {
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
    }
    return 0;
}

static bool skipped(void)
{
    return !g_pg.running;
}

static void deploy_on_one_invoke_on_two(void **state)
{
    (void)state;
    if (skipped()) return;
    upload_model(0);
    upload_model(1);
    int64_t v = 0;
    assert_int_equal(deploy(0, "digits", NULL, &v, NULL, 0), 201);
    assert_int_equal(v, 1);
    /* Node 1 reads its own write at once. */
    assert_int_equal(infer(0, "digits"), 200);
    assert_true(wait_for(1, "/v1/functions/digits", 200, "\"latest\""));
    assert_int_equal(infer(1, "digits"), 200);
    /* The registry really is in PostgreSQL. */
    char out[256];
    assert_int_equal(pg_server_sql(&g_pg, "SELECT count(*) FROM versions WHERE function = 'digits'",
                                   out, sizeof(out)),
                     0);
    assert_int_equal(atoi(out), 1);
}

static void alias_change_reaches_the_other_node(void **state)
{
    (void)state;
    if (skipped()) return;
    int64_t v = 0;
    assert_int_equal(deploy(0, "digits", "\"timeout_ms\":1000", &v, NULL, 0), 201);
    assert_int_equal(v, 2);
    http_response r;
    assert_int_equal(req_str(0, "PUT", "/v1/functions/digits/aliases/stable",
                             "{\"routes\":[{\"version\":1,\"weight\":3},{\"version\":2,\"weight\":1}]}",
                             &r),
                     200);
    http_response_fini(&r);
    assert_true(wait_for(1, "/v1/functions/digits", 200, "\"stable\""));
    assert_int_equal(infer(1, "digits"), 200);
    assert_int_equal(
        request(1, "POST", "/v2/models/digits/versions/stable/infer", g_sample, g_sample_len, &r),
        200);
    http_response_fini(&r);
    /* A rollback on node 2 reaches node 1. */
    assert_int_equal(req_str(1, "POST", "/v1/functions/digits/rollback", "", &r), 200);
    http_response_fini(&r);
    assert_true(wait_for(0, "/v2/models/digits/versions/latest/ready", 200, "\"version\":\"1\""));
}

typedef struct racer {
    int node;
    int status;
    int64_t version;
    char msg[512];
} racer;

static void *race(void *p)
{
    racer *r = p;
    char extra[64];
    snprintf(extra, sizeof(extra), "\"timeout_ms\":%d", 2000 + r->node);
    r->status = deploy(r->node, "race", extra, &r->version, r->msg, sizeof(r->msg));
    return NULL;
}

static void concurrent_deploys_get_distinct_versions(void **state)
{
    (void)state;
    if (skipped()) return;
    for (int round = 0; round < 3; round++) {
        racer rs[2] = {{.node = 0}, {.node = 1}};
        pthread_t t[2];
        for (int i = 0; i < 2; i++)
            assert_int_equal(pthread_create(&t[i], NULL, race, &rs[i]), 0);
        for (int i = 0; i < 2; i++)
            pthread_join(t[i], NULL);
        int ok = 0;
        for (int i = 0; i < 2; i++) {
            if (rs[i].status == 201 || rs[i].status == 200) {
                ok++;
            } else {
                /* The only other answer allowed: a clear conflict. */
                fprintf(stderr, "node %d: %d %s\n", i + 1, rs[i].status, rs[i].msg);
                assert_int_equal(rs[i].status, 409);
                assert_non_null(strstr(rs[i].msg, "at the same time"));
            }
        }
        assert_true(ok >= 1);
        if (ok == 2) assert_int_not_equal(rs[0].version, rs[1].version);
    }
    char out[256];
    assert_int_equal(pg_server_sql(&g_pg,
                                   "SELECT count(DISTINCT version) = count(*) FROM versions"
                                   " WHERE function = 'race'",
                                   out, sizeof(out)),
                     0);
    assert_string_equal(out, "t\n");
}

static void kill9_after_ack_loses_nothing(void **state)
{
    (void)state;
    if (skipped()) return;
    assert_int_equal(deploy(0, "durable", NULL, NULL, NULL, 0), 201);
    serve_proc_kill9(&g_node[0]);
    assert_true(wait_for(1, "/v1/functions/durable", 200, "\"latest\""));
    start_node(0);
    /* The replica is copied before serve listens: there at once. */
    http_response r;
    assert_int_equal(req_str(0, "GET", "/v1/functions/durable", NULL, &r), 200);
    http_response_fini(&r);
    assert_int_equal(infer(0, "durable"), 200);
}

/* `rouse status` on node: its stdout into out; the exit status. */
static int status_cli(int node, char *out, size_t cap)
{
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "'%s' status --server http://127.0.0.1:%d", g_rouse,
             g_node[node].port);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    return pclose(p);
}

static void postgres_away_serves_stale_and_refuses_writes(void **state)
{
    (void)state;
    if (skipped()) return;
    assert_true(wait_for(0, "/v2/health/ready", 200, "\"state\":\"shared\""));
    char out[8192];
    assert_int_equal(status_cli(0, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "state: shared (PostgreSQL)\n"));
    assert_int_equal(pg_server_pause(&g_pg), 0);
    for (int i = 0; i < 2; i++) {
        assert_true(wait_for(i, "/v2/health/ready", 200, "\"state\":\"stale\""));
        assert_true(wait_for(i, "/v2", 200, "\"stale_since_ms\""));
        assert_true(wait_for(i, "/metrics", 200, "rouse_state_stale 1"));
        assert_int_equal(infer(i, "digits"), 200);
        assert_int_equal(infer(i, "durable"), 200);
    }
    /* rouse status says so, and that this node runs without a bus. */
    assert_int_equal(status_cli(1, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "state: STALE for "));
    assert_non_null(strstr(out, "s: PostgreSQL unreachable ("));
    assert_non_null(strstr(out, "cluster: none (serve runs without --bus: this node alone)\n"));
    char msg[512];
    assert_int_equal(deploy(0, "newcomer", NULL, NULL, msg, sizeof(msg)), 503);
    assert_non_null(strstr(msg, "shared state unavailable: "));
    http_response r;
    assert_int_equal(req_str(1, "PUT", "/v1/functions/digits/aliases/stable", "{\"version\":2}", &r),
                     503);
    http_response_fini(&r);
    /* Nothing of the refused writes is anywhere. */
    assert_int_equal(req_str(0, "GET", "/v1/functions/newcomer", NULL, &r), 404);
    http_response_fini(&r);

    assert_int_equal(pg_server_resume(&g_pg), 0);
    for (int i = 0; i < 2; i++) {
        assert_true(wait_for(i, "/v2/health/ready", 200, "\"state\":\"shared\""));
        assert_true(wait_for(i, "/metrics", 200, "rouse_state_stale 0"));
    }
    assert_int_equal(deploy(0, "newcomer", NULL, NULL, NULL, 0), 201);
    assert_true(wait_for(1, "/v1/functions/newcomer", 200, "\"latest\""));
    assert_int_equal(infer(1, "newcomer"), 200);
}

/* A request with a key; the status, the body into body (optional). */
static int keyed(int node, const char *method, const char *path, const char *key,
                 const char *body, char *out, size_t out_len)
{
    char auth[600];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
    const char *hdr[] = {auth, NULL};
    http_response r;
    http_response_init(&r);
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    int rc = http_request(&g_node[node].target, method, path, hdr, body, body ? strlen(body) : 0,
                          TIMEOUT_MS, &r, &eb);
    if (rc < 0) fprintf(stderr, "node %d: %s %s: %s\n", node + 1, method, path, eb.msg);
    assert_int_equal(rc, 0);
    if (out) snprintf(out, out_len, "%s", r.body.data ? r.body.data : "");
    int st = r.status;
    http_response_fini(&r);
    return st;
}

static bool wait_keyed(int node, const char *path, const char *key, int status)
{
    time_t until = time(NULL) + WAIT_S;
    for (;;) {
        int st = keyed(node, "GET", path, key, NULL, NULL, 0);
        if (st == status) return true;
        if (time(NULL) >= until) {
            fprintf(stderr, "node %d: GET %s: %d (waited for %d)\n", node + 1, path, st, status);
            return false;
        }
        usleep(100 * 1000);
    }
}

static void keys_cross_nodes(void **state)
{
    (void)state;
    if (skipped()) return;
    static const char boot[] = "shared-bootstrap-secret-0123456789abcdef";
    char file[400];
    snprintf(file, sizeof(file), "%s/bootstrap.secret", g_dir);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fprintf(f, "%s\n", boot);
    fclose(f);
    for (int i = 2; i < 4; i++) {
        snprintf(g_data[i], sizeof(g_data[i]), "%s/node%d", g_dir, i + 1);
        const char *args[] = {"--log-level", "warn", "--state", g_pg.url, "--auth",
                              "--auth-bootstrap-key-file", file, NULL};
        assert_int_equal(serve_proc_start(&g_node[i], g_rouse, g_data[i], args), 0);
    }
    char out[1024];
    assert_int_equal(keyed(2, "POST", "/v1/keys", boot,
                           "{\"tenant\":\"default\",\"role\":\"invoke\"}", out, sizeof(out)),
                     201);
    rouse_arena a;
    rouse_arena_init(&a, 0);
    json_value *v;
    assert_int_equal(json_parse(out, strlen(out), &a, &v, NULL), 0);
    char key[600], id[64], path[128];
    snprintf(key, sizeof(key), "%s", json_as_string(json_get(v, "key")));
    snprintf(id, sizeof(id), "%s", json_as_string(json_get(v, "id")));
    rouse_arena_fini(&a);
    assert_int_equal(keyed(2, "GET", "/v1/keys/self", key, NULL, NULL, 0), 200);
    assert_true(wait_keyed(3, "/v1/keys/self", key, 200));
    snprintf(path, sizeof(path), "/v1/keys/%s", id);
    assert_int_equal(keyed(3, "DELETE", path, boot, NULL, NULL, 0), 200);
    assert_int_equal(keyed(3, "GET", "/v1/keys/self", key, NULL, NULL, 0), 401);
    assert_true(wait_keyed(2, "/v1/keys/self", key, 401));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(deploy_on_one_invoke_on_two),
        cmocka_unit_test(alias_change_reaches_the_other_node),
        cmocka_unit_test(concurrent_deploys_get_distinct_versions),
        cmocka_unit_test(kill9_after_ack_loses_nothing),
        cmocka_unit_test(postgres_away_serves_stale_and_refuses_writes),
        cmocka_unit_test(keys_cross_nodes),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
