/*
 * Usage records on PostgreSQL (`rouse serve --state postgres://`): two real
 * serve processes on one throwaway PostgreSQL, each with the digits
 * function deployed locally. Calls on node 1 and on node 2 are counted
 * together by GET /v1/usage on either node, with the GB-seconds of the
 * records themselves (read from PostgreSQL), and group_by=node splits
 * them; a node killed with SIGKILL and restarted loses no record and
 * counts none twice; with PostgreSQL stopped, calls still succeed, GET
 * /v1/usage answers 503 "usage store unavailable", rouse_usage_unshipped
 * counts the records waiting, and once PostgreSQL is back the counts
 * catch up exactly; SIGTERM ships the last records before serve exits; a
 * retention of a second rolls everything up in PostgreSQL with the same
 * answer, while the local prune keeps records not shipped yet.
 *
 * Environment: ROUSE (the binary), DIGITS (examples/digits). Skipped with
 * one line when PostgreSQL is not installed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/http_client.h"
#include "common/arena.h"
#include "common/json.h"
#include "fn_deploy.h"
#include "pg_server.h"
#include "serve_proc.h"
#include "tmp_dir.h"

#define DEADLINE_S 90
#define MEMORY_MB 256

static const char *g_rouse, *g_digits;
static char g_dir[256], g_data[2][300];
static serve_proc g_node[2];
static bool g_up[2];
static pg_server g_pg;
static bool g_skip;
static char *g_samples[10];
static void *g_model;
static size_t g_model_len;
static int64_t g_calls[2]; /* calls made on each node, all answered 200 */

static void start_node_retention(int i, const char *retention)
{
    char name[16];
    snprintf(name, sizeof(name), "node%d", i + 1);
    const char *args[] = {"--log-level",      "warn", "--state",           g_pg.url,  "--node-name",
                          name,               "--usage-flush-ms", "50", "--usage-retention",
                          retention,          NULL};
    assert_int_equal(serve_proc_start(&g_node[i], g_rouse, g_data[i], args), 0);
    g_up[i] = true;
}

static void start_node(int i)
{
    start_node_retention(i, "7d");
}

static void calls(int i, int n)
{
    for (int k = 0; k < n; k++) {
        http_response r;
        const char *body = g_samples[k % 10];
        int st = test_request(&g_node[i].target, "POST", "/v2/models/digits/infer", body,
                              strlen(body), &r);
        if (st != 200) fprintf(stderr, "infer on node %d: %d %s\n", i + 1, st, r.body.data);
        assert_int_equal(st, 200);
        http_response_fini(&r);
        g_calls[i]++;
    }
}

/* GET /v1/usage?q on node i: the HTTP status, the JSON in *out (a). */
static int usage(int i, const char *q, rouse_arena *a, json_value **out, http_response *r)
{
    char path[256];
    snprintf(path, sizeof(path), "/v1/usage?%s", q);
    int st = test_request(&g_node[i].target, "GET", path, NULL, 0, r);
    *out = NULL;
    if (st == 200) assert_int_equal(json_parse(r->body.data, r->body.len, a, out, NULL), 0);
    return st;
}

static int64_t geti(const json_value *v, const char *key)
{
    int64_t n = -1;
    assert_true(json_as_int64(json_get(v, key), &n));
    return n;
}

/* Invocations of digits that node i reports (-1: not a 200). */
static int64_t counted(int i)
{
    rouse_arena a;
    rouse_arena_init(&a, 0);
    http_response r;
    json_value *v;
    int64_t n = -1;
    if (usage(i, "function=digits", &a, &v, &r) == 200) n = geti(json_get(v, "total"), "invocations");
    http_response_fini(&r);
    rouse_arena_fini(&a);
    return n;
}

/* Waits until node i counts n invocations (records ship within about a
 * second; the deadline is generous for a loaded machine). */
static void wait_counted(int i, int64_t n)
{
    time_t end = time(NULL) + DEADLINE_S;
    int64_t got = -1;
    while (time(NULL) < end && (got = counted(i)) != n)
        usleep(100 * 1000);
    if (got != n) fprintf(stderr, "node %d counts %lld, wanted %lld\n", i + 1, (long long)got, (long long)n);
    assert_int_equal(got, n);
}

static int64_t pg_int(const char *sql)
{
    char out[64] = "";
    assert_int_equal(pg_server_sql(&g_pg, sql, out, sizeof(out)), 0);
    return strtoll(out, NULL, 10);
}

/* rouse_usage_unshipped on node i (-1 when absent). */
static int64_t unshipped(int i)
{
    http_response r;
    int st = test_request(&g_node[i].target, "GET", "/metrics", NULL, 0, &r);
    assert_int_equal(st, 200);
    int64_t n = -1;
    const char *p = strstr(r.body.data, "\nrouse_usage_unshipped ");
    if (p) n = strtoll(p + strlen("\nrouse_usage_unshipped "), NULL, 10);
    http_response_fini(&r);
    return n;
}

static void wait_unshipped(int i, int64_t n)
{
    time_t end = time(NULL) + DEADLINE_S;
    int64_t got = -2;
    while (time(NULL) < end && (got = unshipped(i)) != n)
        usleep(100 * 1000);
    assert_int_equal(got, n);
}

/* --- setup ---------------------------------------------------------------------- */

static int read_file(const char *path, void **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *out = malloc((size_t)n);
    int ok = *out && fread(*out, 1, (size_t)n, f) == (size_t)n;
    fclose(f);
    *len = (size_t)n;
    return ok ? 0 : -1;
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
        fprintf(stderr, "skipped: %s\n", why);
        g_skip = true;
        return 0;
    }
    if (rc < 0) return -1;
    if (test_digit_samples(g_digits, g_samples) < 0) return -1;
    char model[512];
    snprintf(model, sizeof(model), "%s/model.onnx", g_digits);
    if (read_file(model, &g_model, &g_model_len) < 0) return -1;
    snprintf(g_dir, sizeof(g_dir), "%s/rouse-usage-pg-XXXXXX", test_tmp_dir());
    if (!mkdtemp(g_dir)) return -1;
    for (int i = 0; i < 2; i++)
        snprintf(g_data[i], sizeof(g_data[i]), "%s/node%d", g_dir, i + 1);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    for (int i = 0; i < 2; i++)
        if (g_up[i]) serve_proc_kill9(&g_node[i]);
    for (int d = 0; d < 10; d++)
        free(g_samples[d]);
    free(g_model);
    pg_server_stop(&g_pg);
    if (!g_dir[0]) return 0;
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* --- tests ---------------------------------------------------------------------- */

/* N calls on node 1 and M on node 2: either node counts N + M, with the
 * GB-seconds of the records in PostgreSQL; group_by=node splits them. */
static void test_two_nodes(void **state)
{
    (void)state;
    if (g_skip) skip();
    char extra[64];
    snprintf(extra, sizeof(extra), "\"memory_mb\":%d", MEMORY_MB);
    for (int i = 0; i < 2; i++) {
        start_node(i);
        http_response r;
        int st = test_deploy_model(&g_node[i].target, "digits", g_model, g_model_len, extra, NULL,
                                   &r);
        if (st != 200 && st != 201) fprintf(stderr, "deploy: %d %s\n", st, r.body.data);
        assert_true(st == 200 || st == 201);
        http_response_fini(&r);
    }
    calls(0, 23);
    calls(1, 14);
    wait_counted(0, 37);
    wait_counted(1, 37);
    assert_int_equal(pg_int("SELECT count(*) FROM usage_calls WHERE function = 'digits'"), 37);
    assert_int_equal(pg_int("SELECT count(DISTINCT (node, id)) FROM usage_calls"), 37);
    /* GB-s from the records themselves: billed ms (run rounded up to a
     * whole ms) x memory_mb. */
    int64_t mb_ms = pg_int("SELECT sum((run_us + 999) / 1000 * memory_mb) FROM usage_calls "
                           "WHERE function = 'digits'");
    assert_true(mb_ms > 0);
    assert_int_equal(pg_int("SELECT count(*) FROM usage_calls WHERE memory_mb <> 256"), 0);
    for (int i = 0; i < 2; i++) {
        rouse_arena a;
        rouse_arena_init(&a, 0);
        http_response r;
        json_value *v;
        assert_int_equal(usage(i, "function=digits", &a, &v, &r), 200);
        double gb_s = -1;
        assert_true(json_as_double(json_get(json_get(v, "total"), "gb_s"), &gb_s));
        double want = (double)mb_ms / 1000.0 / 1024.0;
        if (fabs(gb_s - want) > 1e-9 + 1e-6 * want)
            fprintf(stderr, "gb_s %.12g, wanted %.12g\n", gb_s, want);
        assert_true(fabs(gb_s - want) <= 1e-9 + 1e-6 * want);
        assert_int_equal(geti(json_get(v, "total"), "requests"), 37);
        http_response_fini(&r);
        /* By node: node1 23, node2 14. */
        assert_int_equal(usage(i, "group_by=node", &a, &v, &r), 200);
        const json_value *g = json_get(v, "groups");
        assert_non_null(g);
        assert_int_equal(g->type, JSON_ARRAY);
        assert_int_equal(g->u.arr.n, 2);
        const json_value *g0 = g->u.arr.items[0], *g1 = g->u.arr.items[1];
        const char *n0 = json_as_string(json_get(g0, "node"));
        const char *n1 = json_as_string(json_get(g1, "node"));
        assert_non_null(n0);
        assert_non_null(n1);
        assert_string_equal(n0, "node1");
        assert_string_equal(n1, "node2");
        assert_int_equal(geti(g0, "invocations"), 23);
        assert_int_equal(geti(g1, "invocations"), 14);
        http_response_fini(&r);
        rouse_arena_fini(&a);
    }
    assert_int_equal(unshipped(0), 0);
}

/* SIGKILL after calls whose records are written locally, with PostgreSQL
 * away so that none has shipped: the restarted node ships each once. Then
 * SIGKILL right after shipping: the restart ships nothing again. */
static void test_kill9_restart(void **state)
{
    (void)state;
    if (g_skip || !g_up[0]) skip();
    int64_t before = g_calls[0] + g_calls[1];
    assert_int_equal(pg_server_pause(&g_pg), 0);
    calls(0, 11);
    /* Written locally (the list waits): then nothing is in the buffer. */
    wait_unshipped(0, 11);
    serve_proc_kill9(&g_node[0]);
    g_up[0] = false;
    assert_int_equal(pg_server_resume(&g_pg), 0);
    start_node(0);
    wait_counted(0, before + 11);
    wait_unshipped(0, 0);
    /* Shipped: killed and restarted again, nothing counts twice. */
    serve_proc_kill9(&g_node[0]);
    g_up[0] = false;
    start_node(0);
    calls(0, 3);
    wait_counted(0, before + 14);
    wait_counted(1, before + 14);
    assert_int_equal(pg_int("SELECT count(*) FROM usage_calls"), before + 14);
}

/* PostgreSQL stopped while calls are made: they succeed, the usage API says
 * the store is unavailable, the records wait (counted); once it is back the
 * counts catch up exactly. */
static void test_pg_away(void **state)
{
    (void)state;
    if (g_skip || !g_up[0] || !g_up[1]) skip();
    int64_t before = g_calls[0] + g_calls[1];
    assert_int_equal(pg_server_pause(&g_pg), 0);
    calls(1, 9);
    calls(0, 4);
    wait_unshipped(1, 9);
    wait_unshipped(0, 4);
    rouse_arena a;
    rouse_arena_init(&a, 0);
    http_response r;
    json_value *v;
    assert_int_equal(usage(1, "function=digits", &a, &v, &r), 503);
    assert_non_null(strstr(r.body.data, "usage store unavailable: "));
    http_response_fini(&r);
    rouse_arena_fini(&a);
    assert_int_equal(pg_server_resume(&g_pg), 0);
    wait_counted(1, before + 13);
    wait_counted(0, before + 13);
    wait_unshipped(0, 0);
    wait_unshipped(1, 0);
    assert_int_equal(pg_int("SELECT count(*) FROM usage_calls"), before + 13);
    assert_int_equal(pg_int("SELECT count(*) FROM usage_calls WHERE node = 'node2'"), g_calls[1]);
}

/* SIGTERM ships the last records before serve exits. */
static void test_sigterm_ships(void **state)
{
    (void)state;
    if (g_skip || !g_up[1]) skip();
    int64_t before = g_calls[0] + g_calls[1];
    calls(1, 5);
    assert_int_equal(serve_proc_stop(&g_node[1]), 0);
    g_up[1] = false;
    assert_int_equal(pg_int("SELECT count(*) FROM usage_calls"), before + 5);
    wait_counted(0, before + 5);
}

/* A retention of a second: PostgreSQL rolls every record up into hourly
 * aggregates and GET /v1/usage answers the same; the local prune keeps the
 * records that have not shipped (PostgreSQL away meanwhile), which then
 * ship and count exactly once. */
static void test_rollup(void **state)
{
    (void)state;
    if (g_skip || !g_up[0]) skip();
    int64_t total = g_calls[0] + g_calls[1];
    rouse_arena a;
    rouse_arena_init(&a, 0);
    http_response r0, r1;
    json_value *v0, *v1;
    assert_int_equal(usage(0, "function=digits", &a, &v0, &r0), 200);
    serve_proc_stop(&g_node[0]);
    g_up[0] = false;
    start_node_retention(0, "1s");
    time_t end = time(NULL) + DEADLINE_S;
    while (time(NULL) < end && pg_int("SELECT count(*) FROM usage_calls") > 0)
        usleep(200 * 1000);
    assert_int_equal(pg_int("SELECT count(*) FROM usage_calls"), 0);
    assert_int_equal(pg_int("SELECT sum(invocations) FROM usage_hourly"), total);
    assert_int_equal(pg_int("SELECT sum(n) FROM usage_hourly_latency"), total);
    assert_true(pg_int("SELECT max(peak) FROM usage_hourly_peak") >= 1);
    assert_int_equal(usage(0, "function=digits", &a, &v1, &r1), 200);
    const json_value *t0 = json_get(v0, "total"), *t1 = json_get(v1, "total");
    static const char *const keys[] = {"invocations", "requests", "errors", "billed_ms",
                                       "run_us",      "bytes_in", "bytes_out"};
    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
        assert_int_equal(geti(t0, keys[k]), geti(t1, keys[k]));
    assert_int_equal(geti(json_get(t0, "latency_us"), "p50"), geti(json_get(t1, "latency_us"), "p50"));
    assert_int_equal(geti(json_get(t0, "latency_us"), "p99"), geti(json_get(t1, "latency_us"), "p99"));
    http_response_fini(&r0);
    http_response_fini(&r1);
    rouse_arena_fini(&a);
    /* Unshipped records outlive the retention locally. */
    assert_int_equal(pg_server_pause(&g_pg), 0);
    calls(0, 6);
    wait_unshipped(0, 6);
    sleep(3); /* three prunes at least (every second with this retention) */
    assert_int_equal(unshipped(0), 6);
    assert_int_equal(pg_server_resume(&g_pg), 0);
    wait_counted(0, total + 6);
    wait_unshipped(0, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_nodes),
        cmocka_unit_test(test_kill9_restart),
        cmocka_unit_test(test_pg_away),
        cmocka_unit_test(test_sigterm_ships),
        cmocka_unit_test(test_rollup),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
