/*
 * Usage metering against the real daemon: sync calls of mlp are counted
 * exactly; each record's billed ms is its run time rounded up to a whole
 * ms; GB-s, cost, p50/p99 and the always-on comparison of GET /v1/usage
 * agree with values the test computes from the records themselves (read
 * from the data directory's database); an idle function costs nothing;
 * SIGTERM loses no record; SIGKILL loses the unflushed interval and
 * nothing already written; a tiny --usage-retention rolls every record up
 * into hourly aggregates with the same answer; bad parameters are a 400
 * naming the parameter; `rouse usage --compare-always-on` prints the table;
 * --metering off records nothing.
 *
 * Environment: ROUSE (the binary), MODELS (../shared/models; skipped with
 * one line when absent).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/http_client.h"
#include "cli/tensor_file.h"
#include "common/arena.h"
#include "common/json.h"
#include "serve_proc.h"
#include "tmp_dir.h"

#define TIMEOUT_MS 60000
#define MEMORY_MB 768
#define PRICE_GB_S 0.0000166667
#define PRICE_PER_MILLION 0.20
#define PRICE_INSTANCE_HOUR 0.0416
#define N_CALLS 40

static const char *g_rouse, *g_models;
static char g_dir[256], g_data[300], g_db[320];
static serve_proc g_srv;
static bool g_running;
static char *g_body; /* an mlp inference request */
static char g_digest[80];

/* --- utilities ------------------------------------------------------------------ */

static void start(const char *flush_ms, const char *retention)
{
    const char *args[] = {"--log-level", "warn", "--usage-flush-ms", flush_ms,
                          "--usage-retention", retention, NULL};
    assert_int_equal(serve_proc_start(&g_srv, g_rouse, g_data, args), 0);
    g_running = true;
}

static int req(const char *method, const char *path, const void *body, size_t len, http_response *r)
{
    http_response_init(r);
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    int rc = http_request(&g_srv.target, method, path, NULL, body, len, TIMEOUT_MS, r, &eb);
    if (rc < 0) fprintf(stderr, "%s %s: %s\n", method, path, eb.msg);
    assert_int_equal(rc, 0);
    return r->status;
}

static int call(const char *path, const char *body)
{
    http_response r;
    int st = req("POST", path, body, body ? strlen(body) : 0, &r);
    http_response_fini(&r);
    return st;
}

static void calls(int n)
{
    for (int i = 0; i < n; i++)
        assert_int_equal(call("/v2/models/mlp/infer", g_body), 200);
}

/* GET /v1/usage?<q>: the parsed JSON (in a), or fails the test. */
static json_value *usage(const char *q, rouse_arena *a, http_response *r)
{
    char path[512];
    snprintf(path, sizeof(path), "/v1/usage?%s", q);
    int st = req("GET", path, NULL, 0, r);
    if (st != 200) fprintf(stderr, "GET %s: %d %s\n", path, st, r->body.data);
    assert_int_equal(st, 200);
    json_value *v;
    assert_int_equal(json_parse(r->body.data, r->body.len, a, &v, NULL), 0);
    return v;
}

static int64_t geti(const json_value *v, const char *key)
{
    int64_t n = -1;
    assert_true(json_as_int64(json_get(v, key), &n));
    return n;
}

static double getd(const json_value *v, const char *key)
{
    double d = -1;
    assert_true(json_as_double(json_get(v, key), &d));
    return d;
}

static void assert_close(double got, double want)
{
    if (fabs(got - want) > 1e-6 * fabs(want) + 1e-15)
        fprintf(stderr, "got %.12g, wanted %.12g\n", got, want);
    assert_true(fabs(got - want) <= 1e-6 * fabs(want) + 1e-15);
}

/* The invocations GET /v1/usage counts for function fn. */
static int64_t invocations(const char *fn)
{
    char q[128];
    snprintf(q, sizeof(q), "function=%s", fn);
    rouse_arena a;
    rouse_arena_init(&a, 0);
    http_response r;
    json_value *v = usage(q, &a, &r);
    int64_t n = geti(json_get(v, "total"), "invocations");
    rouse_arena_fini(&a);
    http_response_fini(&r);
    return n;
}

/* Waits (30 s at most) until GET /v1/usage counts n invocations of fn:
 * records are written in batches, off the request's path. */
static void wait_invocations(const char *fn, int64_t n)
{
    int64_t got = -1;
    for (int i = 0; i < 600 && (got = invocations(fn)) != n; i++)
        usleep(50000);
    if (got != n) fprintf(stderr, "%s: %lld invocations recorded, wanted %lld\n", fn,
                          (long long)got, (long long)n);
    assert_int_equal(got, n);
}

static int64_t db_int(const char *sql)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(g_db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* The histogram bucket the server uses (8 per doubling). */
static int bucket(int64_t us)
{
    return us <= 1 ? 0 : (int)floor(log2((double)us) * 8);
}

/* What the test computes from the records of function mlp. */
typedef struct expected {
    int64_t n, requests, errors, rejected, zero, tmpl, billed_ms, run_us, p50, p99, peak;
    int64_t first_us;
    double gb_s, cost;
} expected;

static void from_records(expected *e)
{
    memset(e, 0, sizeof(*e));
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(g_db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT run_us, billed_ms, memory_mb, total_us, start, "
                                        "status, ts_us, queue_us, start_us FROM usage_records "
                                        "WHERE function = 'mlp' ORDER BY ts_us",
                                        -1, &st, NULL),
                     SQLITE_OK);
    int64_t lat[4096], s_at[4096], e_at[4096];
    int64_t mb_ms = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        assert_true(e->n < 4096);
        int64_t run = sqlite3_column_int64(st, 0), billed = sqlite3_column_int64(st, 1);
        int64_t mem = sqlite3_column_int64(st, 2), start = sqlite3_column_int64(st, 4);
        int status = sqlite3_column_int(st, 5);
        /* Billed: the run rounded up to a whole ms. */
        assert_int_equal(billed, (run + 999) / 1000);
        if (status == 200) {
            assert_true(run > 0);
            assert_int_equal(mem, MEMORY_MB);
        }
        if (e->n == 0) e->first_us = sqlite3_column_int64(st, 6);
        lat[e->n] = sqlite3_column_int64(st, 3);
        if (start != 0) {
            s_at[e->requests] = sqlite3_column_int64(st, 6) + sqlite3_column_int64(st, 7) +
                                sqlite3_column_int64(st, 8);
            e_at[e->requests] = s_at[e->requests] + run;
            e->requests++;
        } else {
            e->rejected++;
        }
        e->zero += start == 3;
        e->tmpl += start == 2;
        e->errors += status >= 400;
        e->billed_ms += billed;
        e->run_us += run;
        mb_ms += billed * mem;
        e->n++;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    e->gb_s = (double)mb_ms / 1000.0 / 1024.0;
    e->cost = e->gb_s * PRICE_GB_S + (double)e->requests * PRICE_PER_MILLION / 1e6;
    qsort(lat, (size_t)e->n, sizeof(int64_t), cmp_i64);
    e->p50 = lat[(int64_t)ceil(0.5 * (double)e->n) - 1];
    e->p99 = lat[(int64_t)ceil(0.99 * (double)e->n) - 1];
    /* Peak concurrency: the most runs overlapping (all in one hour here,
     * which the test checks). */
    qsort(s_at, (size_t)e->requests, sizeof(int64_t), cmp_i64);
    qsort(e_at, (size_t)e->requests, sizeof(int64_t), cmp_i64);
    int64_t cur = 0;
    for (int64_t i = 0, j = 0; i < e->requests;) {
        if (j < e->requests && e_at[j] <= s_at[i]) {
            cur--;
            j++;
        } else {
            cur++;
            i++;
            if (cur > e->peak) e->peak = cur;
        }
    }
}

/* The server's answer for mlp agrees with the records. */
static void check_against_records(const expected *e)
{
    rouse_arena a;
    rouse_arena_init(&a, 0);
    http_response r;
    char q[160];
    snprintf(q, sizeof(q), "function=mlp&compare_always_on=true&since=%lld",
             (long long)(e->first_us / 1000000));
    json_value *v = usage(q, &a, &r);
    const json_value *g = json_get(v, "total");
    assert_int_equal(geti(g, "invocations"), e->n);
    assert_int_equal(geti(g, "requests"), e->requests);
    assert_int_equal(geti(g, "errors"), e->errors);
    assert_int_equal(geti(g, "rejected"), e->rejected);
    assert_int_equal(geti(json_get(g, "cold_starts"), "zero"), e->zero);
    assert_int_equal(geti(json_get(g, "cold_starts"), "template"), e->tmpl);
    assert_int_equal(geti(g, "billed_ms"), e->billed_ms);
    assert_int_equal(geti(g, "run_us"), e->run_us);
    assert_close(getd(g, "gb_s"), e->gb_s);
    assert_close(getd(g, "cost_usd"), e->cost);
    /* Percentiles: the upper bound of the exact nearest rank's bucket. */
    int64_t p50 = geti(json_get(g, "latency_us"), "p50"), p99 = geti(json_get(g, "latency_us"),
                                                                      "p99");
    assert_true(p50 >= e->p50 && bucket(p50) == bucket(e->p50));
    assert_true(p99 >= e->p99 && bucket(p99) == bucket(e->p99));
    /* Always-on: every hour from the first call's to now, max(1, peak). */
    const json_value *on = json_get(v, "always_on");
    const json_value *fns = json_get(on, "functions");
    assert_non_null(fns);
    assert_int_equal(fns->u.arr.n, 1);
    const json_value *f = fns->u.arr.items[0];
    int64_t hour = 3600000000LL;
    int64_t now_us = (int64_t)time(NULL) * 1000000;
    int64_t hours = now_us / hour - e->first_us / hour + 1;
    int64_t h = geti(f, "hours");
    assert_true(h == hours || h == hours - 1 || h == hours + 1); /* an hour may turn meanwhile */
    assert_int_equal(geti(f, "peak_concurrency"), e->peak);
    int64_t ih = geti(f, "instance_hours");
    assert_int_equal(ih, h - 1 + (e->peak > 1 ? e->peak : 1));
    assert_close(getd(f, "always_on_usd"), (double)ih * PRICE_INSTANCE_HOUR);
    assert_close(getd(f, "serverless_usd"), e->cost);
    assert_close(getd(f, "ratio"), (double)ih * PRICE_INSTANCE_HOUR / e->cost);
    rouse_arena_fini(&a);
    http_response_fini(&r);
}

/* --- setup ---------------------------------------------------------------------- */

static int group_setup(void **state)
{
    (void)state;
    g_rouse = getenv("ROUSE");
    g_models = getenv("MODELS");
    if (!g_rouse) {
        fprintf(stderr, "ROUSE must be set\n");
        return -1;
    }
    snprintf(g_dir, sizeof(g_dir), "%s/rouse-usage-test-XXXXXX", test_tmp_dir());
    if (!mkdtemp(g_dir)) return -1;
    snprintf(g_data, sizeof(g_data), "%s/data", g_dir);
    snprintf(g_db, sizeof(g_db), "%s/rouse.db", g_data);
    /* An mlp request: 784 inputs. */
    rouse_buf b;
    rouse_buf_init(&b);
    rouse_buf_append_str(&b, "{\"inputs\":[{\"name\":\"input\",\"shape\":[1,784],"
                             "\"datatype\":\"FP32\",\"data\":[");
    for (int i = 0; i < 784; i++)
        rouse_buf_appendf(&b, "%s%.3f", i ? "," : "", (double)(i % 17) / 17.0);
    rouse_buf_append_str(&b, "]}]}");
    size_t len;
    g_body = rouse_buf_detach(&b, &len);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (g_running) serve_proc_kill9(&g_srv);
    free(g_body);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static bool have_mlp(char *model, size_t len)
{
    snprintf(model, len, "%s/mlp/model.onnx", g_models ? g_models : "");
    if (g_models && access(model, R_OK) == 0) return true;
    fprintf(stderr, "skipped: ../shared/models not present\n");
    return false;
}

/* --- tests ---------------------------------------------------------------------- */

static void test_counts_and_arithmetic(void **state)
{
    (void)state;
    char model[600];
    if (!have_mlp(model, sizeof(model))) skip();
    start("50", "7d");
    uint8_t *buf;
    size_t len;
    rouse_errbuf eb;
    assert_int_equal(cli_file_slurp(model, &buf, &len, &eb), 0);
    http_response r;
    assert_int_equal(req("POST", "/v1/blobs", buf, len, &r), 201);
    free(buf);
    rouse_arena a;
    rouse_arena_init(&a, 0);
    json_value *v;
    assert_int_equal(json_parse(r.body.data, r.body.len, &a, &v, NULL), 0);
    snprintf(g_digest, sizeof(g_digest), "%s", json_as_string(json_get(v, "digest")));
    rouse_arena_fini(&a);
    http_response_fini(&r);
    char cfg[256];
    snprintf(cfg, sizeof(cfg), "{\"model\":\"%s\",\"memory_mb\":%d}", g_digest, MEMORY_MB);
    assert_int_equal(req("PUT", "/v1/functions/mlp", cfg, strlen(cfg), &r), 201);
    http_response_fini(&r);
    snprintf(cfg, sizeof(cfg), "{\"model\":\"%s\"}", g_digest);
    assert_int_equal(req("PUT", "/v1/functions/idle", cfg, strlen(cfg), &r), 201);
    http_response_fini(&r);

    calls(N_CALLS);
    /* Rejected by serve (no instance runs): an empty body, and a function
     * that does not exist; answered by the instance: a bad tensor. */
    assert_int_equal(call("/v2/models/mlp/infer", NULL), 400);
    assert_int_equal(call("/v2/models/nosuch/infer", g_body), 404);
    assert_int_equal(call("/v2/models/mlp/infer", "{\"inputs\":[]}"), 400);
    wait_invocations("mlp", N_CALLS + 2);
    wait_invocations("nosuch", 1);

    expected e;
    from_records(&e);
    assert_int_equal(e.n, N_CALLS + 2);
    assert_int_equal(e.requests, N_CALLS + 1);
    assert_int_equal(e.rejected, 1);
    assert_int_equal(e.errors, 2);
    assert_int_equal(e.zero, 1); /* the first call started mlp from zero */
    check_against_records(&e);

    /* An idle function costs nothing, and is no always-on row. */
    rouse_arena_init(&a, 0);
    v = usage("function=idle&compare_always_on=1", &a, &r);
    const json_value *g = json_get(v, "total");
    assert_int_equal(geti(g, "invocations"), 0);
    assert_int_equal(geti(g, "billed_ms"), 0);
    assert_true(getd(g, "cost_usd") == 0.0);
    assert_int_equal(json_get(json_get(v, "always_on"), "functions")->u.arr.n, 0);
    rouse_arena_fini(&a);
    http_response_fini(&r);

    /* By version and by minute: the same invocations. */
    rouse_arena_init(&a, 0);
    v = usage("function=mlp&group_by=version", &a, &r);
    g = json_get(v, "groups");
    assert_int_equal(g->u.arr.n, 1);
    assert_int_equal(geti(g->u.arr.items[0], "version"), 1);
    assert_int_equal(geti(g->u.arr.items[0], "invocations"), N_CALLS + 2);
    rouse_arena_fini(&a);
    http_response_fini(&r);
    rouse_arena_init(&a, 0);
    v = usage("function=mlp&group_by=minute", &a, &r);
    assert_int_equal(geti(json_get(v, "total"), "invocations"), N_CALLS + 2);
    rouse_arena_fini(&a);
    http_response_fini(&r);
}

/* Calls turned away count too: a function at zero with one instance and a
 * queue of one gets 16 calls at once; while its first instance starts, the
 * queue is full. Every call is one record, whatever its answer; a 429 is
 * a rejected call (no instance, nothing billed). */
#define N_BURST 16

static void *burst_call(void *arg)
{
    int *status = arg;
    http_response r;
    http_response_init(&r);
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    *status = http_request(&g_srv.target, "POST", "/v2/models/narrow/infer", NULL, g_body,
                           strlen(g_body), TIMEOUT_MS, &r, &eb) == 0
                  ? r.status
                  : -1;
    http_response_fini(&r);
    return NULL;
}

static void test_rejected_calls_counted(void **state)
{
    (void)state;
    if (!g_running) skip();
    char cfg[256];
    snprintf(cfg, sizeof(cfg),
             "{\"model\":\"%s\",\"scaling\":{\"max\":1,\"queue_depth\":1}}", g_digest);
    http_response r;
    assert_int_equal(req("PUT", "/v1/functions/narrow", cfg, strlen(cfg), &r), 201);
    http_response_fini(&r);
    pthread_t th[N_BURST];
    int status[N_BURST];
    for (int i = 0; i < N_BURST; i++)
        assert_int_equal(pthread_create(&th[i], NULL, burst_call, &status[i]), 0);
    int ok = 0, rejected = 0;
    for (int i = 0; i < N_BURST; i++) {
        pthread_join(th[i], NULL);
        ok += status[i] == 200;
        rejected += status[i] == 429;
    }
    assert_int_equal(ok + rejected, N_BURST);
    assert_true(rejected >= 1);
    wait_invocations("narrow", N_BURST);
    assert_int_equal(db_int("SELECT count(*) FROM usage_records WHERE function = 'narrow' AND "
                            "status = 429 AND start = 0 AND billed_ms = 0 AND run_us = 0"),
                     rejected);
    assert_int_equal(db_int("SELECT count(*) FROM usage_records WHERE function = 'narrow' AND "
                            "status = 200 AND start != 0 AND billed_ms >= 1"),
                     ok);
    rouse_arena a;
    rouse_arena_init(&a, 0);
    json_value *v = usage("function=narrow", &a, &r);
    const json_value *t = json_get(v, "total");
    assert_int_equal(geti(t, "rejected"), rejected);
    assert_int_equal(geti(t, "requests"), ok);
    assert_int_equal(geti(t, "errors"), rejected);
    rouse_arena_fini(&a);
    http_response_fini(&r);
}

static void test_bad_parameters(void **state)
{
    (void)state;
    if (!g_running) skip();
    static const struct {
        const char *q, *needle;
    } cases[] = {
        {"since=yesterday", "since:"},
        {"until=2026-13-01", "until:"},
        {"since=2026-02-30", "since:"},
        {"since=-5", "since:"},
        {"since=99999999999999", "since:"},
        {"since=1h&until=2h", "until: must be after since"},
        {"group_by=week", "group_by:"},
        {"group_by=minute&since=2d", "since:"},
        {"function=Not%20a%20name", "function:"},
        {"version=0&function=mlp", "version:"},
        {"version=x&function=mlp", "version:"},
        {"version=1", "version: needs function"},
        {"compare_always_on=perhaps", "compare_always_on:"},
        {"compare_always_on=1&group_by=hour", "compare_always_on:"},
        {"price_instance_hour=abc", "price_instance_hour:"},
        {"price_instance_hour=-1", "price_instance_hour:"},
        {"price_instance_hour=1e400", "price_instance_hour:"},
        {"color=blue", "color: unknown parameter"},
        {"function=mlp&function=idle", "function: given more than once"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char path[256];
        snprintf(path, sizeof(path), "/v1/usage?%s", cases[i].q);
        http_response r;
        int st = req("GET", path, NULL, 0, &r);
        if (st != 400 || !strstr(r.body.data, cases[i].needle))
            fprintf(stderr, "%s: %d %s\n", cases[i].q, st, r.body.data);
        assert_int_equal(st, 400);
        assert_non_null(strstr(r.body.data, "\"error\""));
        assert_non_null(strstr(r.body.data, cases[i].needle));
        http_response_fini(&r);
    }
    http_response r;
    assert_int_equal(req("POST", "/v1/usage", NULL, 0, &r), 405);
    http_response_fini(&r);
}

static void test_cli_table(void **state)
{
    (void)state;
    if (!g_running) skip();
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "'%s' usage --compare-always-on --server http://127.0.0.1:%d",
             g_rouse, g_srv.port);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char out[8192];
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    assert_int_equal(pclose(p), 0);
    assert_non_null(strstr(out, "mlp"));
    assert_non_null(strstr(out, "TOTAL"));
    assert_non_null(strstr(out, "always-on"));
    assert_non_null(strstr(out, "RATIO"));
    snprintf(cmd, sizeof(cmd), "'%s' usage --since never --server http://127.0.0.1:%d 2>&1",
             g_rouse, g_srv.port);
    p = popen(cmd, "r");
    n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    assert_int_not_equal(pclose(p), 0);
    assert_non_null(strstr(out, "since:"));
}

/* SIGTERM: the records still in the buffer (a minute's flush interval)
 * are written before serve exits. */
static void test_sigterm_loses_nothing(void **state)
{
    (void)state;
    if (!g_running) skip();
    assert_int_equal(serve_proc_stop(&g_srv), 0);
    start("60000", "7d");
    int64_t before = invocations("mlp");
    calls(7);
    assert_int_equal(serve_proc_stop(&g_srv), 0);
    g_running = false;
    assert_int_equal(db_int("SELECT count(*) FROM usage_records WHERE function = 'mlp'"),
                     before + 7);
}

/* SIGKILL: records of the unflushed interval are lost (a minute's interval
 * holds them all), records already written are not. */
static void test_sigkill_bound(void **state)
{
    (void)state;
    if (!g_data[0] || access(g_db, R_OK) != 0) skip();
    start("60000", "7d");
    int64_t before = invocations("mlp");
    calls(5);
    serve_proc_kill9(&g_srv);
    g_running = false;
    assert_int_equal(db_int("SELECT count(*) FROM usage_records WHERE function = 'mlp'"), before);
    /* Written (the API reads what was committed) before the kill: kept. */
    start("50", "7d");
    calls(5);
    wait_invocations("mlp", before + 5);
    serve_proc_kill9(&g_srv);
    g_running = false;
    assert_int_equal(db_int("SELECT count(*) FROM usage_records WHERE function = 'mlp'"),
                     before + 5);
}

/* A retention of a second: every record rolls up into hourly aggregates,
 * and the answer stays the same. */
static void test_retention_rollup(void **state)
{
    (void)state;
    if (!g_data[0] || access(g_db, R_OK) != 0) skip();
    start("50", "7d");
    expected e;
    from_records(&e);
    assert_true(e.n > 0);
    rouse_arena a;
    rouse_arena_init(&a, 0);
    http_response r;
    json_value *v = usage("function=mlp&compare_always_on=1", &a, &r);
    char before[4096];
    snprintf(before, sizeof(before), "%s", r.body.data);
    (void)v;
    rouse_arena_fini(&a);
    http_response_fini(&r);
    assert_int_equal(serve_proc_stop(&g_srv), 0);
    g_running = false;

    start("50", "1s");
    int64_t left = -1;
    for (int i = 0; i < 600 && (left = db_int("SELECT count(*) FROM usage_records")) != 0; i++)
        usleep(50000);
    assert_int_equal(left, 0);
    assert_true(db_int("SELECT count(*) FROM usage_hourly WHERE function = 'mlp'") >= 1);
    rouse_arena_init(&a, 0);
    v = usage("function=mlp&compare_always_on=1", &a, &r);
    /* Everything but "until" (now) is the same. */
    const char *b_until = strstr(before, "\"group_by\""), *a_until = strstr(r.body.data,
                                                                           "\"group_by\"");
    assert_non_null(b_until);
    assert_non_null(a_until);
    if (strcmp(b_until, a_until) != 0) fprintf(stderr, "before: %s\nafter:  %s\n", b_until,
                                               a_until);
    assert_string_equal(b_until, a_until);
    (void)v;
    rouse_arena_fini(&a);
    http_response_fini(&r);
}

/* --metering off: no records, and GET /v1/usage says so. */
static void test_metering_off(void **state)
{
    (void)state;
    if (!g_data[0] || access(g_db, R_OK) != 0) skip();
    if (g_running) serve_proc_kill9(&g_srv);
    const char *args[] = {"--log-level", "warn", "--metering", "off", NULL};
    assert_int_equal(serve_proc_start(&g_srv, g_rouse, g_data, args), 0);
    g_running = true;
    int64_t before = db_int("SELECT count(*) FROM usage_records") +
                     db_int("SELECT coalesce(sum(invocations), 0) FROM usage_hourly");
    calls(3);
    http_response r;
    assert_int_equal(req("GET", "/v1/usage", NULL, 0, &r), 503);
    assert_non_null(strstr(r.body.data, "--metering off"));
    http_response_fini(&r);
    assert_int_equal(serve_proc_stop(&g_srv), 0);
    g_running = false;
    assert_int_equal(db_int("SELECT count(*) FROM usage_records") +
                         db_int("SELECT coalesce(sum(invocations), 0) FROM usage_hourly"),
                     before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts_and_arithmetic), cmocka_unit_test(test_rejected_calls_counted),
        cmocka_unit_test(test_bad_parameters),
        cmocka_unit_test(test_cli_table),             cmocka_unit_test(test_sigterm_loses_nothing),
        cmocka_unit_test(test_sigkill_bound),         cmocka_unit_test(test_retention_rollup),
        cmocka_unit_test(test_metering_off),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
