/*
 * Integration tests of several nodes (docs/architecture.md, "Several
 * nodes"): a real nats-server with JetStream and three real `rouse serve`
 * processes on loopback ports, each with its own data directory and the
 * same cluster key, each with function "digits" deployed locally (the
 * shared registry is another part's).
 *
 * n1 runs with --max-instances 1, its one slot held by function "hold"
 * (scaling.min 1), so it can run no digits call itself: its calls go to
 * the others. Scenarios: Rouse-Node on every reply; membership lists every
 * node; a call sent to n1 is answered by another node and equals that
 * node's own answer, and so is its model metadata (rouse bench without
 * --input works through n1); rouse status shows every node, its room and
 * instances, and the node that answered; the cluster key (a wrong one: 401; a client's
 * Rouse-Tenant without one is ignored); NATS paused: nodes serve locally
 * and say so; kill -9 of n2 under load: every call answered 200 or a
 * clear 502/503, later ones by n3, and membership drops n2.
 *
 * Waits are bounded loops over real state, never timing thresholds.
 * Environment: ROUSE (the binary), DIGITS (examples/digits).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/http_client.h"
#include "fn_deploy.h"
#include "nats_server.h"
#include "serve_proc.h"
#include "tmp_dir.h"

#define TIMEOUT_MS 60000
#define WAIT_TRIES 600 /* x 50 ms: 30 s at most for any awaited state */
#define N_NODES 3

static const char *g_rouse, *g_digits;
static char g_dir[256], g_key_path[300], g_key[64], g_digest[80];
static nats_server g_nats;
static serve_proc g_node[N_NODES];
static bool g_up[N_NODES];
static char *g_samples[10];

static int request_h(int node, const char *method, const char *path, const char *const *headers,
                     const char *body, http_response *r)
{
    http_response_init(r);
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    int rc = http_request(&g_node[node].target, method, path, headers, body,
                          body ? strlen(body) : 0, TIMEOUT_MS, r, &eb);
    if (rc < 0) fprintf(stderr, "n%d %s %s: %s\n", node + 1, method, path, eb.msg);
    return rc < 0 ? -1 : r->status;
}

static int request(int node, const char *method, const char *path, const char *body,
                   http_response *r)
{
    return request_h(node, method, path, NULL, body, r);
}

static int start_node(int i)
{
    char data[320], name[8], key_arg[320];
    snprintf(data, sizeof(data), "%s/n%d", g_dir, i + 1);
    snprintf(name, sizeof(name), "n%d", i + 1);
    snprintf(key_arg, sizeof(key_arg), "%s", g_key_path);
    const char *args[] = {"--bus",      g_nats.url, "--node-name", name, "--cluster-key-file",
                          key_arg,      "--log-level", "warn", "--max-instances",
                          i == 0 ? "1" : "4", NULL};
    if (serve_proc_start(&g_node[i], g_rouse, data, args) < 0) return -1;
    g_up[i] = true;
    return 0;
}

static void put_fn(int node, const char *name, const char *scaling)
{
    char path[128], body[512];
    snprintf(path, sizeof(path), "/v1/functions/%s", name);
    snprintf(body, sizeof(body), "{\"model\":\"%s\",\"scaling\":{%s}}", g_digest, scaling);
    http_response r;
    int st = request(node, "PUT", path, body, &r);
    if (st != 201 && st != 200) fprintf(stderr, "deploy %s on n%d: %d %s\n", name, node + 1, st,
                                        r.body.data ? r.body.data : "");
    assert_true(st == 201 || st == 200);
    http_response_fini(&r);
}

static int setup(void **state)
{
    (void)state;
    g_rouse = getenv("ROUSE");
    g_digits = getenv("DIGITS");
    if (!g_rouse || !g_digits) {
        fprintf(stderr, "ROUSE and DIGITS must be set\n");
        return -1;
    }
    char why[256];
    int rc = nats_server_start(&g_nats, NULL, why, sizeof(why));
    if (rc == 1) {
        printf("skipped: %s\n", why);
        exit(77);
    }
    if (rc < 0) return -1;
    snprintf(g_dir, sizeof(g_dir), "%s/rouse-cluster-XXXXXX", test_tmp_dir());
    if (!mkdtemp(g_dir)) return -1;
    /* The cluster key: 48 characters, a file only its owner reads. */
    snprintf(g_key, sizeof(g_key), "k%047d", (int)getpid());
    snprintf(g_key_path, sizeof(g_key_path), "%s/cluster.key", g_dir);
    int fd = open(g_key_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, g_key, strlen(g_key)) != (ssize_t)strlen(g_key) || close(fd) < 0)
        return -1;
    if (test_digit_samples(g_digits, g_samples) < 0) return -1;
    for (int i = 0; i < N_NODES; i++)
        if (start_node(i) < 0) return -1;
    char model[512];
    snprintf(model, sizeof(model), "%s/model.onnx", g_digits);
    for (int i = 0; i < N_NODES; i++) {
        if (test_upload_file(&g_node[i].target, model, g_digest) < 0) return -1;
        put_fn(i, "digits", "\"idle_timeout_ms\":600000");
    }
    /* n1's one instance slot, held. */
    put_fn(0, "hold", "\"min\":1");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int rc = 0;
    /* The nodes still up stop cleanly (exit status 0: under ASan, no leak). */
    for (int i = 0; i < N_NODES; i++) {
        int st = g_up[i] ? serve_proc_stop(&g_node[i]) : 0;
        if (st != 0) {
            fprintf(stderr, "n%d stopped with status %d\n", i + 1, st);
            rc = -1;
        }
    }
    nats_server_stop(&g_nats);
    for (int i = 0; i < 10; i++)
        free(g_samples[i]);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", g_dir);
    return rc;
}

/* Whether n's GET /v1/cluster has every name in want fresh and none in
 * gone listed at all. */
static bool cluster_shows(int n, const char *const *want, const char *const *gone)
{
    http_response r;
    bool ok = request(n, "GET", "/v1/cluster", NULL, &r) == 200;
    const char *b = r.body.data ? r.body.data : "";
    char pat[64];
    for (const char *const *w = want; ok && w && *w; w++) {
        snprintf(pat, sizeof(pat), "\"name\":\"%s\"", *w);
        const char *at = strstr(b, pat);
        const char *fresh = at ? strstr(at, "\"fresh\":") : NULL;
        ok = fresh && strncmp(fresh, "\"fresh\":true", 12) == 0;
    }
    for (const char *const *g = gone; ok && g && *g; g++) {
        snprintf(pat, sizeof(pat), "\"name\":\"%s\"", *g);
        ok = strstr(b, pat) == NULL;
    }
    http_response_fini(&r);
    return ok;
}

static bool wait_cluster(int n, const char *const *want, const char *const *gone)
{
    for (int i = 0; i < WAIT_TRIES; i++) {
        if (cluster_shows(n, want, gone)) return true;
        usleep(50000);
    }
    return false;
}

/* Every reply says which node answered, whatever the route and status. */
static void test_rouse_node_everywhere(void **state)
{
    (void)state;
    const char *paths[][2] = {{"GET", "/v2/health/live"}, {"GET", "/v2"},
                              {"GET", "/v1/functions"},   {"GET", "/no/such/path"},
                              {"GET", "/v2/models/nope"}, {"DELETE", "/v2/health/live"}};
    for (int n = 0; n < N_NODES; n++) {
        char want[8];
        snprintf(want, sizeof(want), "n%d", n + 1);
        for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
            http_response r;
            int st = request(n, paths[i][0], paths[i][1], NULL, &r);
            assert_true(st > 0);
            if (strcmp(r.rouse_node, want) != 0)
                fail_msg("%s %s on %s: Rouse-Node '%s'", paths[i][0], paths[i][1], want,
                         r.rouse_node);
            http_response_fini(&r);
        }
    }
    /* Also without --bus: the host name by default, or --node-name. */
    char data[320];
    snprintf(data, sizeof(data), "%s/alone", g_dir);
    serve_proc alone;
    const char *args[] = {"--node-name", "solo", "--log-level", "warn", NULL};
    assert_int_equal(serve_proc_start(&alone, g_rouse, data, args), 0);
    http_response r;
    http_response_init(&r);
    rouse_errbuf eb;
    assert_int_equal(http_request(&alone.target, "GET", "/v2/health/ready", NULL, NULL, 0,
                                  TIMEOUT_MS, &r, &eb),
                     0);
    assert_string_equal(r.rouse_node, "solo");
    assert_non_null(strstr(r.body.data, "\"ready\":true"));
    assert_null(strstr(r.body.data, "bus")); /* one node: the reply as before */
    http_response_fini(&r);
    assert_int_equal(serve_proc_stop(&alone), 0);
}

static void test_membership_lists_all(void **state)
{
    (void)state;
    const char *all[] = {"n1", "n2", "n3", NULL};
    for (int n = 0; n < N_NODES; n++)
        assert_true(wait_cluster(n, all, NULL));
    http_response r;
    assert_int_equal(request(0, "GET", "/v1/cluster", NULL, &r), 200);
    assert_non_null(strstr(r.body.data, "\"connected\":true"));
    assert_non_null(strstr(r.body.data, "\"forwarding\":true"));
    http_response_fini(&r);
    assert_int_equal(request(1, "GET", "/v2/health/ready", NULL, &r), 200);
    assert_non_null(strstr(r.body.data, "\"bus\":\"connected\""));
    http_response_fini(&r);
}

/* Whether n1 has heard that node `peer` holds a ready digits instance. */
static bool n1_sees_warm(const char *peer)
{
    http_response r;
    bool ok = request(0, "GET", "/v1/cluster", NULL, &r) == 200;
    char pat[64];
    snprintf(pat, sizeof(pat), "\"name\":\"%s\"", peer);
    const char *at = ok ? strstr(r.body.data, pat) : NULL;
    const char *next = at ? strstr(at + 1, "\"name\":") : NULL;
    const char *fn = at ? strstr(at, "\"fn\":\"digits\"") : NULL;
    ok = fn && (!next || fn < next) && strncmp(strstr(fn, "\"idle\":"), "\"idle\":0", 8) != 0;
    http_response_fini(&r);
    return ok;
}

/* n1 cannot run digits (its one slot is held): its calls are answered by
 * n2, which holds a warm instance, with n2's own answer. */
static void test_busy_node_forwards(void **state)
{
    (void)state;
    http_response direct[10];
    for (int d = 0; d < 10; d++) {
        assert_int_equal(request(1, "POST", "/v2/models/digits/infer", g_samples[d], &direct[d]),
                         200);
        assert_string_equal(direct[d].rouse_node, "n2");
        assert_int_equal(test_logits_argmax(&direct[d]), d);
    }
    int tries = 0;
    while (!n1_sees_warm("n2") && tries++ < WAIT_TRIES)
        usleep(50000);
    assert_true(tries < WAIT_TRIES);
    int by_n2 = 0;
    for (int i = 0; i < 20; i++) {
        int d = i % 10;
        http_response r;
        assert_int_equal(request(0, "POST", "/v2/models/digits/infer", g_samples[d], &r), 200);
        if (strcmp(r.rouse_node, "n1") == 0) fail_msg("call %d answered by n1 itself", i);
        if (strcmp(r.rouse_node, "n2") == 0) by_n2++;
        assert_int_equal(r.body.len, direct[d].body.len);
        assert_memory_equal(r.body.data, direct[d].body.data, r.body.len);
        assert_int_equal(r.rouse_version, 1);
        http_response_fini(&r);
    }
    assert_true(by_n2 > 0);
    for (int d = 0; d < 10; d++)
        http_response_fini(&direct[d]);
    /* n1 counted what it forwarded. */
    http_response m;
    assert_int_equal(request(0, "GET", "/metrics", NULL, &m), 200);
    assert_non_null(strstr(m.body.data, "rouse_bus_connected 1"));
    const char *f = strstr(m.body.data, "\nrouse_forwarded_total ");
    assert_non_null(f);
    assert_true(strtoull(f + strlen("\nrouse_forwarded_total "), NULL, 10) >= 20);
    http_response_fini(&m);
}

/* Runs `rouse ARGS --server <node n>` and keeps its stdout in out; the exit
 * status. */
static int cli(int n, const char *args, char *out, size_t cap)
{
    char cmd[800];
    snprintf(cmd, sizeof(cmd), "'%s' %s --server http://127.0.0.1:%d", g_rouse, args,
             g_node[n].port);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t len = fread(out, 1, cap - 1, p);
    out[len] = '\0';
    return pclose(p);
}

/* Model metadata needs an instance (it names the model's inputs and
 * outputs): n1, which cannot start one, has it answered where digits runs,
 * the same document that node gives itself, then answers it itself from
 * memory; readiness n1 answers itself from the registry. */
static void test_busy_node_metadata(void **state)
{
    (void)state;
    http_response first, direct;
    assert_int_equal(request(0, "GET", "/v2/models/digits", NULL, &first), 200);
    if (strcmp(first.rouse_node, "n1") == 0) fail_msg("the first metadata answered by n1 itself");
    assert_non_null(strstr(first.body.data, "\"name\":\"digits\""));
    assert_non_null(strstr(first.body.data, "\"inputs\":[{\"name\":"));
    assert_non_null(strstr(first.body.data, "\"outputs\":[{\"name\":"));
    int node = strcmp(first.rouse_node, "n2") == 0 ? 1 : 2;
    assert_int_equal(request(node, "GET", "/v2/models/digits", NULL, &direct), 200);
    assert_string_equal(direct.rouse_node, first.rouse_node);
    assert_int_equal(first.body.len, direct.body.len);
    assert_memory_equal(first.body.data, direct.body.data, first.body.len);
    http_response_fini(&direct);
    const char *paths[] = {"/v2/models/digits", "/v2/models/digits/versions/1"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        http_response r;
        assert_int_equal(request(0, "GET", paths[i], NULL, &r), 200);
        assert_string_equal(r.rouse_node, "n1");
        assert_int_equal(r.body.len, first.body.len);
        assert_memory_equal(r.body.data, first.body.data, r.body.len);
        http_response_fini(&r);
    }
    http_response_fini(&first);
    http_response r;
    assert_int_equal(request(0, "GET", "/v2/models/digits/ready", NULL, &r), 200);
    assert_string_equal(r.rouse_node, "n1");
    assert_non_null(strstr(r.body.data, "\"ready\":true"));
    http_response_fini(&r);
    /* A version that does not exist is n1's own 404, not forwarded. */
    assert_int_equal(request(0, "GET", "/v2/models/digits/versions/9", NULL, &r), 404);
    assert_string_equal(r.rouse_node, "n1");
    http_response_fini(&r);
    /* rouse bench without --input reads the metadata first, through n1. */
    static char out[16384];
    assert_int_equal(cli(0, "bench digits -n 4 -q", out, sizeof(out)), 0);
}

/* The row of node `name` in rouse status's table of nodes: whether it was
 * fresh, its free slots and instances; false when there is no such row. */
static bool status_row(const char *out, const char *name, bool *fresh, int *slots, int *inst)
{
    size_t n = strlen(name);
    for (const char *l = out; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        if (strncmp(l, name, n) != 0 || l[n] != ' ') continue;
        char line[512], *save = NULL;
        size_t len = strcspn(l, "\n");
        snprintf(line, sizeof(line), "%.*s", (int)len, l);
        /* NODE [*] URL fresh|STALE AGE ago SLOTS INSTANCES IDLE QUEUED */
        const char *tok[12] = {0};
        int k = 0;
        for (char *t = strtok_r(line, " ", &save); t && k < 12; t = strtok_r(NULL, " ", &save))
            if (strcmp(t, "*") != 0) tok[k++] = t;
        if (k != 9) return false;
        *fresh = strcmp(tok[2], "fresh") == 0;
        *slots = atoi(tok[5]);
        *inst = atoi(tok[6]);
        return true;
    }
    return false;
}

/* rouse status on n1 (which forwards its digits calls): the node that
 * answered, every node fresh with its URL, n1 without room or digits
 * instances, n2 with the warm one it served them with. */
static void test_status_shows_cluster(void **state)
{
    (void)state;
    static char out[16384];
    assert_int_equal(cli(0, "status digits", out, sizeof(out)), 0);
    assert_non_null(strstr(out, "function digits"));
    assert_non_null(strstr(out, "node: n1 answered (advertised as http://"));
    assert_non_null(strstr(out, "cluster: 3 nodes (3 fresh), bus connected, forwarding on\n"));
    assert_non_null(strstr(out, " idle ones and queued calls of digits; "));
    assert_null(strstr(out, "state:")); /* no --state: nothing to say with a NAME */
    char url[64];
    snprintf(url, sizeof(url), " http://127.0.0.1:%d ", g_node[1].port);
    assert_non_null(strstr(out, url));
    bool fresh;
    int slots, inst;
    assert_true(status_row(out, "n1", &fresh, &slots, &inst));
    assert_true(fresh);
    assert_int_equal(slots, 0); /* its one slot held by "hold" */
    assert_int_equal(inst, 0);
    assert_non_null(strstr(out, "\nn1 * ")); /* the one that answered */
    assert_true(status_row(out, "n2", &fresh, &slots, &inst));
    assert_true(fresh);
    assert_true(inst >= 1);
    assert_true(status_row(out, "n3", &fresh, &slots, &inst));
    assert_true(fresh);
    assert_null(strstr(out, "\nn2 * "));

    /* Without NAME: the server alone; with --json, GET /v1/cluster. */
    assert_int_equal(cli(2, "status", out, sizeof(out)), 0);
    assert_non_null(strstr(out, "node: n3 answered"));
    assert_non_null(strstr(out, "state: this node's own (serve runs without --state)\n"));
    assert_non_null(strstr(out, "isolation: "));
    assert_non_null(strstr(out, "\nn3 * "));
    assert_true(status_row(out, "n1", &fresh, &slots, &inst));
    assert_true(inst >= 1); /* "hold" counts: all functions without NAME */
    assert_int_equal(cli(2, "status --json", out, sizeof(out)), 0);
    assert_non_null(strstr(out, "\"self\":\"n3\""));
    assert_non_null(strstr(out, "\"nodes\":[{\"name\":\"n1\""));
    assert_int_equal(cli(2, "status -q", out, sizeof(out)), 0);
    assert_string_equal(out, "");
    assert_int_not_equal(cli(2, "status digits extra", out, sizeof(out)), 0);
}

static void test_cluster_key(void **state)
{
    (void)state;
    http_response r;
    char good[128];
    snprintf(good, sizeof(good), "Rouse-Cluster-Key: %s", g_key);
    const char *wrong[] = {"Rouse-Cluster-Key: not-the-key-of-this-cluster-at-all-0000",
                           "Rouse-Forwarded-By: n1", NULL};
    assert_int_equal(request_h(1, "POST", "/v2/models/digits/infer", wrong, g_samples[4], &r), 401);
    assert_non_null(strstr(r.body.data, "Rouse-Cluster-Key"));
    http_response_fini(&r);
    /* The right key: run where it landed, whatever the load. */
    const char *right[] = {good, "Rouse-Forwarded-By: n1", "Rouse-Tenant: default", NULL};
    assert_int_equal(request_h(1, "POST", "/v2/models/digits/infer", right, g_samples[4], &r), 200);
    assert_string_equal(r.rouse_node, "n2");
    assert_int_equal(test_logits_argmax(&r), 4);
    http_response_fini(&r);
    /* The key opens inference and model metadata only. */
    assert_int_equal(request_h(1, "GET", "/v2/models/digits", right, NULL, &r), 200);
    assert_non_null(strstr(r.body.data, "\"inputs\":"));
    http_response_fini(&r);
    const char *admin[] = {good, NULL};
    assert_int_equal(request_h(1, "GET", "/v1/functions", admin, NULL, &r), 403);
    http_response_fini(&r);
    /* A client's Rouse-Tenant without the key changes nothing (no --auth:
     * everything is the default tenant's). */
    const char *tenant[] = {"Rouse-Tenant: someone-else", NULL};
    assert_int_equal(request_h(2, "POST", "/v2/models/digits/infer", tenant, g_samples[7], &r),
                     200);
    assert_int_equal(test_logits_argmax(&r), 7);
    http_response_fini(&r);
}

/* NATS gone: every node serves on by itself and says so; back: they
 * find each other again. */
static bool wait_bus(int n, bool connected)
{
    const char *want = connected ? "rouse_bus_connected 1" : "rouse_bus_connected 0";
    for (int tries = 0; tries < WAIT_TRIES; tries++) {
        http_response r;
        assert_int_equal(request(n, "GET", "/metrics", NULL, &r), 200);
        bool ok = strstr(r.body.data, want) != NULL;
        http_response_fini(&r);
        if (ok) return true;
        usleep(50000);
    }
    return false;
}

static void test_nats_unreachable(void **state)
{
    (void)state;
    assert_int_equal(nats_server_pause(&g_nats), 0);
    for (int n = 0; n < N_NODES; n++)
        assert_true(wait_bus(n, false));
    http_response r;
    assert_int_equal(request(2, "GET", "/v2/health/ready", NULL, &r), 200);
    assert_non_null(strstr(r.body.data, "\"bus\":\"disconnected\""));
    http_response_fini(&r);
    static char out[16384];
    assert_int_equal(cli(2, "status digits", out, sizeof(out)), 0);
    assert_non_null(strstr(out, ", bus disconnected, "));
    for (int d = 0; d < 10; d++) {
        assert_int_equal(request(2, "POST", "/v2/models/digits/infer", g_samples[d], &r), 200);
        assert_string_equal(r.rouse_node, "n3");
        assert_int_equal(test_logits_argmax(&r), d);
        http_response_fini(&r);
    }
    assert_int_equal(nats_server_resume(&g_nats), 0);
    for (int n = 0; n < N_NODES; n++)
        assert_true(wait_bus(n, true));
    /* Past the freshness of what they heard before the pause. */
    usleep(2 * 1000 * 1000);
    const char *all[] = {"n1", "n2", "n3", NULL};
    for (int n = 0; n < N_NODES; n++)
        assert_true(wait_cluster(n, all, NULL));
}

/* The instances of fn that node `of` reports in GET /v1/cluster of node
 * `view`: -1 when it lists none of fn. */
static int fn_instances(int view, const char *of, const char *fn)
{
    http_response r;
    int n = -1;
    if (request(view, "GET", "/v1/cluster", NULL, &r) == 200) {
        char pat[64], fpat[64];
        snprintf(pat, sizeof(pat), "\"name\":\"%s\"", of);
        snprintf(fpat, sizeof(fpat), "\"fn\":\"%s\"", fn);
        const char *at = strstr(r.body.data, pat);
        const char *next = at ? strstr(at + 1, "\"name\":") : NULL;
        const char *f = at ? strstr(at, fpat) : NULL;
        if (f && (!next || f < next)) n = atoi(strstr(f, "\"instances\":") + strlen("\"instances\":"));
    }
    http_response_fini(&r);
    return n;
}

static bool wait_instances(int view, const char *of, const char *fn, int want)
{
    for (int i = 0; i < WAIT_TRIES; i++) {
        if (fn_instances(view, of, fn) == want) return true;
        usleep(50000);
    }
    return false;
}

/* min 2 of "spread", deployed on n2 and n3, among three live nodes: n2
 * (rank 1) keeps 1, n3 (rank 2) none; n1 (rank 0) would keep the other,
 * but has no room for it and no such function. */
static void test_min_spread(void **state)
{
    (void)state;
    put_fn(1, "spread", "\"min\":2");
    put_fn(2, "spread", "\"min\":2");
    assert_true(wait_instances(1, "n2", "spread", 1));
    assert_true(fn_instances(2, "n3", "spread") <= 0);
    http_response r;
    assert_int_equal(request(2, "GET", "/v1/functions/spread", NULL, &r), 200);
    assert_null(strstr(r.body.data, "\"state\":\"idle\""));
    http_response_fini(&r);
}

/* --- kill -9 of n2 under load ------------------------------------------------- */

#define LOAD_THREADS 4

static atomic_int g_stop, g_n_ok, g_n_after_kill, g_n_by_n3_after;
static atomic_bool g_killed;
static atomic_int g_bad; /* a reply that is neither 200 nor a clear 502/503 */

static void *load_main(void *arg)
{
    int t = (int)(intptr_t)arg;
    for (int i = 0; !atomic_load(&g_stop); i++) {
        bool after = atomic_load(&g_killed);
        int d = (t + i) % 10;
        http_response r;
        int st = request(0, "POST", "/v2/models/digits/infer", g_samples[d], &r);
        if (st == 200 && test_logits_argmax(&r) == d) {
            atomic_fetch_add(&g_n_ok, 1);
            if (after) {
                atomic_fetch_add(&g_n_after_kill, 1);
                if (strcmp(r.rouse_node, "n3") == 0) atomic_fetch_add(&g_n_by_n3_after, 1);
            }
        } else if ((st == 502 && r.body.data && strstr(r.body.data, "node n2 failed while running")) ||
                   (st == 503 && r.body.data && strstr(r.body.data, "\"error\""))) {
            fprintf(stderr, "load: %d %s", st, r.body.data);
        } else {
            fprintf(stderr, "load: unexpected %d (%s) %s\n", st, r.rouse_node,
                    r.body.data ? r.body.data : "");
            atomic_fetch_add(&g_bad, 1);
        }
        http_response_fini(&r);
    }
    return NULL;
}

static void test_kill9_under_load(void **state)
{
    (void)state;
    pthread_t th[LOAD_THREADS];
    for (int t = 0; t < LOAD_THREADS; t++)
        assert_int_equal(pthread_create(&th[t], NULL, load_main, (void *)(intptr_t)t), 0);
    int tries = 0;
    while (atomic_load(&g_n_ok) < 40 && tries++ < WAIT_TRIES)
        usleep(50000);
    serve_proc_kill9(&g_node[1]);
    g_up[1] = false;
    atomic_store(&g_killed, true);
    tries = 0;
    while (atomic_load(&g_n_by_n3_after) < 40 && tries++ < WAIT_TRIES)
        usleep(50000);
    atomic_store(&g_stop, 1);
    for (int t = 0; t < LOAD_THREADS; t++)
        pthread_join(th[t], NULL);
    assert_int_equal(atomic_load(&g_bad), 0);
    assert_true(atomic_load(&g_n_by_n3_after) >= 40);
    const char *live[] = {"n1", "n3", NULL}, *gone[] = {"n2", NULL};
    assert_true(wait_cluster(0, live, gone));
    assert_true(wait_cluster(2, live, gone));
    /* Two live nodes now: n3 (rank 1 of 2) keeps one of spread's two. */
    assert_true(wait_instances(2, "n3", "spread", 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rouse_node_everywhere),
        cmocka_unit_test(test_membership_lists_all),
        cmocka_unit_test(test_busy_node_forwards),
        cmocka_unit_test(test_status_shows_cluster),
        cmocka_unit_test(test_busy_node_metadata),
        cmocka_unit_test(test_cluster_key),
        cmocka_unit_test(test_nats_unreachable),
        cmocka_unit_test(test_min_spread),
        cmocka_unit_test(test_kill9_under_load),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
