/*
 * Asynchronous jobs shared by several nodes: two serve processes (the
 * test binary rouse-fault, whose instances record every execution) over
 * one throwaway PostgreSQL and one nats-server -js, each with the same
 * function deployed (each node's registry is its own here):
 * - jobs accepted by a node with little capacity are run by the other
 *   too: each runs exactly once, and each job's record names the node
 *   that ran it (both appear); any node reads any job;
 * - a function deployed on one node only: its jobs run there (the other
 *   node leaves them alone);
 * - an Idempotency-Key used on both nodes names one job (another body:
 *   409);
 * - 1000 jobs accepted by both nodes are drained by both: each ran some,
 *   every job succeeded and ran exactly once;
 * - job lists read through either node, page after page;
 * - a batch file of 600 lines posted to node 1 (its items created in
 *   chunks) is run by both nodes, each item exactly once; its status and
 *   output are read through node 2: one line per item, in input order,
 *   and a bad line is an error of the errors file;
 * - a dead letter re-driven through the other node runs again;
 * - NATS stopped (SIGSTOP) while jobs are accepted: they are accepted,
 *   nothing is lost, and they run once it is back (the sweep publishes
 *   what could not be published);
 * - a node killed (SIGKILL) while it runs jobs: JetStream delivers them
 *   again after the ack wait (ROUSE_JOBS_ACK_WAIT_MS, a test knob, 3 s),
 *   the other node takes them over, and each ends succeeded exactly once;
 * - a node killed (SIGKILL) in the middle of a batch's creation (a test
 *   knob holds it after the first chunk) while it runs the batch's items:
 *   the other node goes on creating it (the creation's sweep), takes over
 *   its items, and writes the output: every item once, in order.
 *
 * Skips with one line when PostgreSQL or nats-server is not installed.
 * Environment: ROUSE (the rouse-fault binary), DIGITS (examples/digits).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/http_client.h"
#include "common/arena.h"
#include "common/buf.h"
#include "common/json.h"
#include "fn_deploy.h"
#include "json_str.h"
#include "nats_server.h"
#include "pg_server.h"
#include "serve_proc.h"
#include "tmp_dir.h"

#define TIMEOUT_MS 60000
#define FN "digits"

static const char *g_rouse, *g_digits;
static char g_dir[256];
static char g_digest[80];
static pg_server g_pg;
static nats_server g_nats;
static serve_proc g_node[2];
static bool g_up[2];

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int req_h(int node, const char *method, const char *path, const char *const *headers,
                 const void *body, size_t len, http_response *r)
{
    http_response_init(r);
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    int rc = http_request(&g_node[node].target, method, path, headers, body, len, TIMEOUT_MS, r,
                          &eb);
    if (rc < 0) fprintf(stderr, "node %d: %s %s: %s\n", node + 1, method, path, eb.msg);
    assert_int_equal(rc, 0);
    return r->status;
}

/* Node i on data directory data<i + 1><suffix>. */
static void start_node_in(int i, const char *suffix)
{
    char fault[400], name[16];
    snprintf(fault, sizeof(fault), "%s/fault%d", g_dir, i + 1);
    snprintf(name, sizeof(name), "n%d", i + 1);
    char cmd[500];
    snprintf(cmd, sizeof(cmd), "mkdir -p %s", fault);
    assert_int_equal(system(cmd), 0);
    /* Each node's instances record their executions in a file of its own. */
    setenv("ROUSE_FAULT_DIR", fault, 1);
    char data[400];
    snprintf(data, sizeof(data), "%s/data%d%s", g_dir, i + 1, suffix);
    const char *args[] = {"--log-level", "warn", "--state", g_pg.url, "--bus", g_nats.url,
                          "--node-name", name, NULL};
    assert_int_equal(serve_proc_start(&g_node[i], g_rouse, data, args), 0);
    g_up[i] = true;
}

static void start_node(int i)
{
    start_node_in(i, "");
}

/* The function on node i: at most max instances of one slot. */
static void deploy(int i, int max)
{
    char path[512], body[512];
    snprintf(path, sizeof(path), "%s/model.onnx", g_digits);
    assert_int_equal(test_upload_file(&g_node[i].target, path, g_digest), 0);
    snprintf(body, sizeof(body),
             "{\"model\":\"%s\",\"scaling\":{\"max\":%d,\"concurrency\":1},"
             "\"async\":{\"max_concurrency\":%d}}",
             g_digest, max, max);
    http_response r;
    int st = req_h(i, "PUT", "/v1/functions/" FN, NULL, body, strlen(body), &r);
    if (st >= 300) fprintf(stderr, "deploy on node %d: %d %s\n", i + 1, st, r.body.data);
    assert_true(st == 200 || st == 201);
    http_response_fini(&r);
}

static void body_of(const char *id, char *out, size_t cap)
{
    int n = snprintf(out, cap,
                     "{\"id\":\"%s\",\"inputs\":[{\"name\":\"pixels\",\"datatype\":\"FP32\","
                     "\"shape\":[1,64],\"data\":[",
                     id);
    for (int i = 0; i < 64; i++)
        n += snprintf(out + n, cap - (size_t)n, "%s0.%d", i ? "," : "", i % 10);
    snprintf(out + n, cap - (size_t)n, "]}]}");
}

/* Submits a job to node i; its id in id_out; the HTTP status. */
static int submit(int i, const char *body, const char *key, char *id_out)
{
    char kh[300];
    const char *h[3] = {"Prefer: respond-async", NULL, NULL};
    if (key) {
        snprintf(kh, sizeof(kh), "Idempotency-Key: %s", key);
        h[1] = kh;
    }
    http_response r;
    int st = req_h(i, "POST", "/v2/models/" FN "/infer", h, body, strlen(body), &r);
    if (id_out) json_str(r.body.data, "id", id_out, 32);
    http_response_fini(&r);
    return st;
}

/* Waits (generously) for job id to be final, read through node i: its status. */
static void wait_final(int i, const char *id, char *status, size_t cap)
{
    char path[600];
    snprintf(path, sizeof(path), "/v1/jobs/%s", id);
    for (int k = 0; k < 6000; k++) {
        http_response r;
        assert_int_equal(req_h(i, "GET", path, NULL, NULL, 0, &r), 200);
        json_str(r.body.data, "status", status, cap);
        http_response_fini(&r);
        if (strcmp(status, "queued") != 0 && strcmp(status, "running") != 0) return;
        sleep_ms(50);
    }
    fail_msg("job %s never ended", id);
}

/* Executions of request rid on node i (its instances' record). */
static int executions(int i, const char *rid)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/fault%d/executions", g_dir, i + 1);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[256];
    int n = 0;
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        if (strcmp(line, rid) == 0) n++;
    }
    fclose(f);
    return n;
}

static long sql_long(const char *sql)
{
    char out[64];
    assert_int_equal(pg_server_sql(&g_pg, sql, out, sizeof(out)), 0);
    return atol(out);
}

/* --- tests ------------------------------------------------------------------ */

static void test_capacity_elsewhere(void **state)
{
    (void)state;
    enum { N = 16 };
    char ids[N][32], rid[64], body[2048];
    for (int k = 0; k < N; k++) {
        snprintf(rid, sizeof(rid), "sleep-400-spread-%d", k);
        body_of(rid, body, sizeof(body));
        assert_int_equal(submit(0, body, NULL, ids[k]), 202);
    }
    int on[2] = {0, 0};
    for (int k = 0; k < N; k++) {
        char st[32];
        /* Read through either node. */
        wait_final(k % 2, ids[k], st, sizeof(st));
        assert_string_equal(st, "succeeded");
        snprintf(rid, sizeof(rid), "sleep-400-spread-%d", k);
        int e1 = executions(0, rid), e2 = executions(1, rid);
        assert_int_equal(e1 + e2, 1);
        on[e2 ? 1 : 0]++;
        char sql[700], node[16];
        snprintf(sql, sizeof(sql), "SELECT node FROM jobs WHERE id = %s", ids[k]);
        assert_int_equal(pg_server_sql(&g_pg, sql, node, sizeof(node)), 0);
        node[strcspn(node, "\n")] = '\0';
        assert_string_equal(node, e2 ? "n2" : "n1");
    }
    fprintf(stderr, "node 1 ran %d job(s), node 2 %d\n", on[0], on[1]);
    /* Node 1 (one slot) could not run them all in time: node 2 took some. */
    assert_true(on[1] > 0);
}

/* A function deployed through node 1 while its jobs are already queued:
 * node 2 leaves them alone until its replica of the shared registry has the
 * function (up to a second), then may run some. Either way none fails for
 * want of the function and each runs exactly once. (Which node ran them
 * depends on timing, so it is not asserted.) */
static void test_function_on_one_node(void **state)
{
    (void)state;
    char body[1024];
    snprintf(body, sizeof(body), "{\"model\":\"%s\"}", g_digest);
    http_response r;
    int st = req_h(0, "PUT", "/v1/functions/only1", NULL, body, strlen(body), &r);
    http_response_fini(&r);
    assert_true(st == 200 || st == 201);
    enum { N = 6 };
    char ids[N][32], rid[64], b[2048];
    for (int k = 0; k < N; k++) {
        snprintf(rid, sizeof(rid), "only1-%d", k);
        body_of(rid, b, sizeof(b));
        const char *h[] = {"Prefer: respond-async", NULL};
        assert_int_equal(req_h(0, "POST", "/v2/models/only1/infer", h, b, strlen(b), &r), 202);
        json_str(r.body.data, "id", ids[k], sizeof(ids[k]));
        http_response_fini(&r);
    }
    for (int k = 0; k < N; k++) {
        wait_final(1, ids[k], rid, sizeof(rid));
        assert_string_equal(rid, "succeeded");
        snprintf(rid, sizeof(rid), "only1-%d", k);
        assert_int_equal(executions(0, rid) + executions(1, rid), 1);
    }
    assert_int_equal(sql_long("SELECT count(*) FROM jobs WHERE function = 'only1' AND attempts <> 1"),
                     0);
}

static void test_idempotency_across_nodes(void **state)
{
    (void)state;
    char body[2048], other[2048], id1[32], id2[32];
    body_of("idem-1", body, sizeof(body));
    body_of("idem-2", other, sizeof(other));
    assert_int_equal(submit(0, body, "key-across", id1), 202);
    assert_int_equal(submit(1, body, "key-across", id2), 202);
    assert_string_equal(id1, id2);
    assert_int_equal(submit(1, other, "key-across", NULL), 409);
    char st[32];
    wait_final(1, id1, st, sizeof(st));
    assert_string_equal(st, "succeeded");
    assert_int_equal(executions(0, "idem-1") + executions(1, "idem-1"), 1);
}

/* Lines of node i's executions record that start with prefix. */
static int executions_prefixed(int i, const char *prefix, int *per, int n)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/fault%d/executions", g_dir, i + 1);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[256];
    int total = 0;
    size_t pl = strlen(prefix);
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, prefix, pl) != 0) continue;
        int k = atoi(line + pl);
        if (k >= 0 && k < n) per[k]++;
        total++;
    }
    fclose(f);
    return total;
}

static void test_drain_by_both(void **state)
{
    (void)state;
    enum { N = 1000 };
    static char ids[N][32];
    char rid[64], body[2048];
    for (int k = 0; k < N; k++) {
        snprintf(rid, sizeof(rid), "drain-%d", k);
        body_of(rid, body, sizeof(body));
        assert_int_equal(submit(k % 2, body, NULL, ids[k]), 202);
    }
    long first = atol(ids[0]), last = atol(ids[0]);
    for (int k = 1; k < N; k++) {
        long id = atol(ids[k]);
        if (id < first) first = id;
        if (id > last) last = id;
    }
    char sql[200];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM jobs WHERE id BETWEEN %ld AND %ld AND state = 2",
             first, last);
    int k = 0;
    while (sql_long(sql) < N && k++ < 6000)
        sleep_ms(100);
    assert_int_equal(sql_long(sql), N);
    static int per[N];
    memset(per, 0, sizeof(per));
    int on1 = executions_prefixed(0, "drain-", per, N);
    int on2 = executions_prefixed(1, "drain-", per, N);
    fprintf(stderr, "1000 jobs: node 1 ran %d, node 2 %d\n", on1, on2);
    assert_true(on1 > 0 && on2 > 0);
    assert_int_equal(on1 + on2, N);
    for (int j = 0; j < N; j++)
        assert_int_equal(per[j], 1);
    snprintf(sql, sizeof(sql),
             "SELECT count(DISTINCT node) FROM jobs WHERE id BETWEEN %ld AND %ld", first, last);
    assert_int_equal(sql_long(sql), 2);
}

/* Uploads text to node i as a blob; its digest into out. */
static void upload(int i, const char *text, size_t len, char *out)
{
    http_response r;
    assert_int_equal(req_h(i, "POST", "/v1/blobs", NULL, text, len, &r), 201);
    json_str(r.body.data, "digest", out, 80);
    http_response_fini(&r);
}

/* A JSONL file of n requests "<prefix><k>" (line bad, if >= 0, is not
 * JSON), uploaded to node i and posted as a batch there: its id. */
static void post_batch(int i, const char *prefix, int n, int bad, char *id)
{
    rouse_buf in;
    rouse_buf_init(&in);
    char rid[64], line[2048];
    for (int k = 0; k < n; k++) {
        snprintf(rid, sizeof(rid), "%s%d", prefix, k);
        body_of(rid, line, sizeof(line));
        assert_int_equal(rouse_buf_appendf(&in, "%s\n", k == bad ? "not json" : line), 0);
    }
    char digest[80], body[256];
    upload(i, in.data, in.len, digest);
    rouse_buf_fini(&in);
    snprintf(body, sizeof(body), "{\"function\":\"" FN "\",\"input\":\"%s\"}", digest);
    http_response r;
    assert_int_equal(req_h(i, "POST", "/v1/batches", NULL, body, strlen(body), &r), 202);
    json_str(r.body.data, "id", id, 32);
    http_response_fini(&r);
    assert_true(atol(id) > 0);
}

/* Waits for batch id to complete, read through node i. */
static void wait_batch(int i, const char *id)
{
    char path[64];
    snprintf(path, sizeof(path), "/v1/batches/%s", id);
    for (int k = 0; k < 6000; k++) {
        http_response r;
        assert_int_equal(req_h(i, "GET", path, NULL, NULL, 0, &r), 200);
        bool done = strstr(r.body.data, "\"completed\"") != NULL;
        http_response_fini(&r);
        if (done) return;
        sleep_ms(50);
    }
    fail_msg("batch %s never completed", id);
}

/* The output of batch id read through node i: one line per item in input
 * order, each the reply to its own request (line bad: null). */
static void check_output(int i, const char *id, const char *prefix, int n, int bad)
{
    char path[64];
    snprintf(path, sizeof(path), "/v1/batches/%s/output", id);
    http_response r;
    assert_int_equal(req_h(i, "GET", path, NULL, NULL, 0, &r), 200);
    const char *p = r.body.data;
    for (int k = 0; k < n; k++) {
        const char *nl = strchr(p, '\n');
        assert_non_null(nl);
        char *l = strndup(p, (size_t)(nl - p));
        if (k == bad) {
            assert_string_equal(l, "null");
        } else {
            char want[80];
            snprintf(want, sizeof(want), "\"id\":\"%s%d\"", prefix, k);
            if (!strstr(l, want)) fail_msg("output line %d: %.200s", k, l);
        }
        free(l);
        p = nl + 1;
    }
    assert_int_equal(*p, '\0');
    http_response_fini(&r);
}

static void test_batch_by_both(void **state)
{
    (void)state;
    enum { N = 600, BAD = 7 };
    char id[32], path[64];
    post_batch(0, "batch-", N, BAD, id);
    wait_batch(1, id);
    http_response r;
    snprintf(path, sizeof(path), "/v1/batches/%s", id);
    assert_int_equal(req_h(1, "GET", path, NULL, NULL, 0, &r), 200);
    assert_non_null(strstr(r.body.data, "\"total\":600,\"created\":600"));
    assert_non_null(strstr(r.body.data, "\"succeeded\":599,\"failed\":1"));
    http_response_fini(&r);
    check_output(1, id, "batch-", N, BAD);
    check_output(0, id, "batch-", N, BAD);
    snprintf(path, sizeof(path), "/v1/batches/%s/errors", id);
    assert_int_equal(req_h(1, "GET", path, NULL, NULL, 0, &r), 200);
    assert_non_null(strstr(r.body.data, "{\"index\":7,"));
    assert_null(strchr(strchr(r.body.data, '\n') + 1, '\n'));
    http_response_fini(&r);
    static int per[N];
    memset(per, 0, sizeof(per));
    int on1 = executions_prefixed(0, "batch-", per, N);
    int on2 = executions_prefixed(1, "batch-", per, N);
    fprintf(stderr, "a batch of %d: node 1 ran %d, node 2 %d\n", N, on1, on2);
    assert_true(on1 > 0 && on2 > 0);
    assert_int_equal(on1 + on2, N - 1);
    for (int k = 0; k < N; k++)
        assert_int_equal(per[k], k == BAD ? 0 : 1);
    /* An item is a job of its own, read through either node. */
    char sql[160];
    snprintf(sql, sizeof(sql), "SELECT id FROM jobs WHERE batch = %s AND batch_index = 3", id);
    snprintf(path, sizeof(path), "/v1/jobs/%ld", sql_long(sql));
    assert_int_equal(req_h(1, "GET", path, NULL, NULL, 0, &r), 200);
    assert_non_null(strstr(r.body.data, "\"succeeded\""));
    http_response_fini(&r);
    assert_int_equal(req_h(1, "GET", "/v1/batches/999999", NULL, NULL, 0, &r), 404);
    http_response_fini(&r);
}

static void test_list(void **state)
{
    (void)state;
    http_response r;
    /* Jobs accepted by both nodes, listed by either: a full page has a next. */
    assert_int_equal(
        req_h(1, "GET", "/v1/jobs?function=" FN "&status=succeeded&limit=5", NULL, NULL, 0, &r),
        200);
    int n = 0;
    for (const char *p = r.body.data; (p = strstr(p, "\"status\":\"succeeded\"")); p++)
        n++;
    assert_int_equal(n, 5);
    char next[32];
    json_str(r.body.data, "next", next, sizeof(next));
    assert_true(atol(next) > 0);
    http_response_fini(&r);
    char path[128];
    snprintf(path, sizeof(path), "/v1/jobs?status=succeeded&limit=1&after=%s", next);
    assert_int_equal(req_h(0, "GET", path, NULL, NULL, 0, &r), 200);
    const char *first = strstr(r.body.data, "\"id\":\"");
    assert_non_null(first);
    assert_true(atol(first + 6) > atol(next));
    http_response_fini(&r);
}

/* A dead letter re-driven through the other node runs again (published
 * again: its message is a new one). */
static void test_redrive(void **state)
{
    (void)state;
    char body[512], id[32], st[32];
    snprintf(body, sizeof(body),
             "{\"id\":\"redrive-1\",\"inputs\":[{\"name\":\"pixels\",\"datatype\":"
             "\"FP32\",\"shape\":[1,3],\"data\":[0.1,0.2,0.3]}]}");
    assert_int_equal(submit(0, body, NULL, id), 202);
    wait_final(0, id, st, sizeof(st));
    assert_string_equal(st, "failed");
    char sql[200];
    snprintf(sql, sizeof(sql), "SELECT finished_ms FROM jobs WHERE id = %s", id);
    long first_end = sql_long(sql);
    char path[64];
    snprintf(path, sizeof(path), "/v1/jobs/%s/retry", id);
    http_response r;
    assert_int_equal(req_h(1, "POST", path, NULL, "", 0, &r), 200);
    http_response_fini(&r);
    wait_final(1, id, st, sizeof(st));
    assert_string_equal(st, "failed");
    /* It ran again (a bad tensor fails before the model: no execution). */
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM jobs WHERE id = %s AND drives = 1 AND attempts = 1"
             " AND started_ms >= %ld",
             id, first_end);
    assert_int_equal(sql_long(sql), 1);
}

static void test_bus_paused(void **state)
{
    (void)state;
    enum { N = 4 };
    char ids[N][32], rid[64], body[2048];
    assert_int_equal(nats_server_pause(&g_nats), 0);
    for (int k = 0; k < N; k++) {
        snprintf(rid, sizeof(rid), "paused-%d", k);
        body_of(rid, body, sizeof(body));
        /* Committed in PostgreSQL: accepted, published later. */
        assert_int_equal(submit(k % 2, body, NULL, ids[k]), 202);
    }
    assert_int_equal(nats_server_resume(&g_nats), 0);
    for (int k = 0; k < N; k++) {
        char st[32];
        wait_final(0, ids[k], st, sizeof(st));
        assert_string_equal(st, "succeeded");
        snprintf(rid, sizeof(rid), "paused-%d", k);
        assert_int_equal(executions(0, rid) + executions(1, rid), 1);
    }
}

static void test_node_killed(void **state)
{
    (void)state;
    enum { N = 6 };
    char ids[N][32], rid[64], body[2048];
    for (int k = 0; k < N; k++) {
        snprintf(rid, sizeof(rid), "sleep-3000-kill-%d", k);
        body_of(rid, body, sizeof(body));
        assert_int_equal(submit(1, body, NULL, ids[k]), 202);
    }
    /* Until node 2 runs some of them. */
    int k = 0;
    while (sql_long("SELECT count(*) FROM jobs WHERE node = 'n2' AND state = 1"
                    " AND id IN (SELECT id FROM jobs ORDER BY id DESC LIMIT 6)") == 0 &&
           k++ < 1200)
        sleep_ms(50);
    assert_true(k < 1200);
    serve_proc_kill9(&g_node[1]);
    g_up[1] = false;
    for (int j = 0; j < N; j++) {
        char st[32];
        wait_final(0, ids[j], st, sizeof(st));
        assert_string_equal(st, "succeeded");
        snprintf(rid, sizeof(rid), "sleep-3000-kill-%d", j);
        assert_true(executions(0, rid) + executions(1, rid) >= 1);
    }
    /* Node 2's leases were taken over: every one of them ran again on node 1. */
    long taken = sql_long("SELECT count(*) FROM jobs WHERE attempts > 1 AND node = 'n1'"
                          " AND id IN (SELECT id FROM jobs ORDER BY id DESC LIMIT 6)");
    assert_true(taken >= 1);
    assert_int_equal(sql_long("SELECT count(*) FROM jobs WHERE state <> 2 AND id IN"
                              " (SELECT id FROM jobs ORDER BY id DESC LIMIT 6)"),
                     0);
}

static void test_batch_node_killed(void **state)
{
    (void)state;
    enum { N = 400 };
    char id[32];
    /* Node 2 again (on a data directory of its own: the killed one's may
     * still be held by what it left running), holding each batch's
     * creation after its first chunk. */
    setenv("ROUSE_FAULT_BATCH_CHUNK_MS", "3600000", 1);
    start_node_in(1, "b");
    unsetenv("ROUSE_FAULT_BATCH_CHUNK_MS");
    deploy(1, 2);
    post_batch(1, "sleep-100-bkill-", N, -1, id);
    char sql[200];
    snprintf(sql, sizeof(sql), "SELECT n_created FROM batches WHERE id = %s", id);
    long created = sql_long(sql);
    assert_true(created > 0 && created < N);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM jobs WHERE batch = %s AND node = 'n2' AND state = 1", id);
    int k = 0;
    while (sql_long(sql) == 0 && k++ < 1200)
        sleep_ms(50);
    assert_true(k < 1200);
    snprintf(sql, sizeof(sql), "SELECT n_created FROM batches WHERE id = %s", id);
    fprintf(stderr, "batch %s: node 2 killed with %ld of %d items created\n", id, sql_long(sql), N);
    serve_proc_kill9(&g_node[1]);
    g_up[1] = false;
    wait_batch(0, id);
    check_output(0, id, "sleep-100-bkill-", N, -1);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM jobs WHERE batch = %s AND state = 2", id);
    assert_int_equal(sql_long(sql), N);
    static int per[N];
    memset(per, 0, sizeof(per));
    executions_prefixed(0, "sleep-100-bkill-", per, N);
    executions_prefixed(1, "sleep-100-bkill-", per, N);
    for (int j = 0; j < N; j++)
        assert_true(per[j] >= 1);
}

/* --- setup ------------------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    g_rouse = getenv("ROUSE");
    g_digits = getenv("DIGITS");
    if (!g_rouse || !g_digits) {
        fprintf(stderr, "ROUSE and DIGITS must be set\n");
        return -1;
    }
    snprintf(g_dir, sizeof(g_dir), "%s/rouse-jobs-cluster-XXXXXX", test_tmp_dir());
    if (!mkdtemp(g_dir)) return -1;
    setenv("ROUSE_JOBS_ACK_WAIT_MS", "3000", 1);
    start_node(0);
    start_node(1);
    deploy(0, 1);
    deploy(1, 2);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int bad = 0;
    for (int i = 0; i < 2; i++)
        if (g_up[i] && serve_proc_stop(&g_node[i]) != 0) {
            fprintf(stderr, "node %d did not stop cleanly\n", i + 1);
            bad = 1;
        }
    nats_server_stop(&g_nats);
    pg_server_stop(&g_pg);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", g_dir);
    if (system(cmd) != 0) return -1;
    return bad ? -1 : 0;
}

int main(void)
{
    char why[256];
    int rc = pg_server_start(&g_pg, "127.0.0.1", why, sizeof(why));
    if (rc != 0) {
        printf("skipped: %s\n", rc == 1 ? why : "PostgreSQL did not start");
        return rc == 1 ? 0 : 1;
    }
    if ((rc = nats_server_start(&g_nats, "127.0.0.1", why, sizeof(why))) != 0) {
        pg_server_stop(&g_pg);
        printf("skipped: %s\n", rc == 1 ? why : "nats-server did not start");
        return rc == 1 ? 0 : 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_capacity_elsewhere),
        cmocka_unit_test(test_function_on_one_node),
        cmocka_unit_test(test_idempotency_across_nodes),
        cmocka_unit_test(test_drain_by_both),
        cmocka_unit_test(test_batch_by_both),
        cmocka_unit_test(test_list),
        cmocka_unit_test(test_redrive),
        cmocka_unit_test(test_bus_paused),
        cmocka_unit_test(test_node_killed),
        cmocka_unit_test(test_batch_node_killed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
