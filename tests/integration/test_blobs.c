/*
 * Integration tests of blobs between nodes, against real daemons on
 * loopback with data directories of their own:
 * - node B (its peer: node A) deploys a model uploaded to A only: it
 *   fetches the blob by digest from A (with the cluster key), stores the
 *   same bytes and serves the function; GET /v1/blobs/{digest} gives the
 *   bytes on both; B, restarted without its blobs and plans, starts the
 *   template once the blob is back from A; a wrong cluster key is 401 (with --auth, the right
 *   one opens blob reads and nothing else); two nodes that are each
 *   other's peer answer 404 for a blob neither has (a peer's read is
 *   answered from its own store, never passed on);
 * - a peer that lies (a small HTTP server in this test answering every
 *   GET with other bytes) is refused: 502 naming both digests, nothing
 *   stored; with an honest peer after it the blob comes from that one;
 * - an S3-compatible bucket (npm's s3rver, installed into the build
 *   folder from tests/blobs/package-lock.json; skipped with one line when
 *   node, npm or the registry is missing): an upload is in the bucket
 *   (s3rver's own directory) when it is acknowledged, a node with an
 *   empty data directory deploys it from the bucket, a bucket that is
 *   down makes the upload fail (502, not acknowledged).
 *
 * Environment: ROUSE (the binary), DIGITS (examples/digits), S3RVER_PKG
 * (tests/blobs), S3RVER_WORK (a folder of the build for its install).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/http_client.h"
#include "cli/tensor_file.h"
#include "common/sha256.h"
#include "free_port.h"
#include "fn_deploy.h"
#include "serve_proc.h"
#include "tmp_dir.h"

#define TIMEOUT_MS 60000
#define KEY "a-cluster-key-of-this-test-0123456789abcdef"
#define LIE "tampered bytes"

static const char *g_rouse, *g_digits;
static char g_dir[256], g_key[300];
static uint8_t *g_model;
static size_t g_model_len;
static char g_digest[80];
static char *g_samples[10];
static serve_proc g_a, g_b;
static char g_a_data[300], g_b_data[300];
static char g_port_b[16], g_peer_a[64];
static pid_t g_s3rver = -1; /* while it runs */
static void s3rver_stop(void);

/* --- utilities ------------------------------------------------------------------ */

static int request(const serve_proc *p, const char *method, const char *path,
                   const char *const *headers, const void *body, size_t len, http_response *r)
{
    http_response_init(r);
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    int rc = http_request(&p->target, method, path, headers, body, len, TIMEOUT_MS, r, &eb);
    if (rc < 0) fprintf(stderr, "%s %s: %s\n", method, path, eb.msg);
    assert_int_equal(rc, 0);
    return r->status;
}

/* GET /v1/blobs/{digest} of p: its status; the body must be the model's
 * bytes when it is 200. */
static int get_blob(const serve_proc *p, const char *digest, const char *key, http_response *r)
{
    char path[128], hdr[128];
    snprintf(path, sizeof(path), "/v1/blobs/%s", digest);
    snprintf(hdr, sizeof(hdr), "Rouse-Cluster-Key: %s", key ? key : "");
    const char *headers[] = {hdr, NULL};
    int st = request(p, "GET", path, key ? headers : NULL, NULL, 0, r);
    if (st == 200) {
        assert_int_equal(r->body.len, g_model_len);
        assert_memory_equal(r->body.data, g_model, g_model_len);
    }
    return st;
}

static int deploy(const serve_proc *p, const char *name, const char *digest, http_response *r)
{
    char path[128], body[200];
    snprintf(path, sizeof(path), "/v1/functions/%s", name);
    snprintf(body, sizeof(body), "{\"model\":\"%s\"}", digest);
    return request(p, "PUT", path, NULL, body, strlen(body), r);
}

static void infer_digits(const serve_proc *p, const char *name)
{
    char path[128];
    snprintf(path, sizeof(path), "/v2/models/%s/infer", name);
    for (int d = 0; d < 10; d += 3) {
        http_response r;
        assert_int_equal(request(p, "POST", path, NULL, g_samples[d], strlen(g_samples[d]), &r),
                         200);
        assert_int_equal(test_logits_argmax(&r), d);
        http_response_fini(&r);
    }
}

/* The bytes of a node's stored blob equal the model's. */
static void expect_stored(const char *data_dir, const char *digest, bool present)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/blobs/sha256/%.2s/%s", data_dir, digest + 7, digest + 9);
    uint8_t *buf = NULL;
    size_t len = 0;
    rouse_errbuf eb;
    int rc = cli_file_slurp(path, &buf, &len, &eb);
    if (!present) {
        assert_true(rc < 0);
        return;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(len, g_model_len);
    assert_memory_equal(buf, g_model, len);
    free(buf);
}

/* How many blobs a data directory holds (files under blobs/sha256 and
 * blobs/tmp). */
static int count_blobs(const char *data_dir)
{
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "find '%s/blobs' -type f | wc -l", data_dir);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    int n = -1;
    assert_int_equal(fscanf(f, "%d", &n), 1);
    pclose(f);
    return n;
}

static int start_node(serve_proc *p, const char *data, const char *const *extra)
{
    const char *args[24];
    int n = 0;
    args[n++] = "--log-level";
    args[n++] = "warn";
    args[n++] = "--isolation";
    args[n++] = "process";
    for (; extra && *extra && n < 22; extra++)
        args[n++] = *extra;
    args[n] = NULL;
    return serve_proc_start(p, g_rouse, data, args);
}

static int start_b(void)
{
    const char *b_args[] = {"--port", g_port_b, "--cluster-key-file", g_key, "--blob-peers",
                            g_peer_a, NULL};
    return start_node(&g_b, g_b_data, b_args);
}

/* --- a peer that lies ------------------------------------------------------------- */

typedef struct liar {
    int fd, port;
    pthread_t thread;
    int served;
    char key_seen[128];
} liar;

static void *liar_main(void *arg)
{
    liar *l = arg;
    for (;;) {
        int c = accept(l->fd, NULL, NULL);
        if (c < 0) {
            if (errno == EINTR) continue;
            return NULL; /* shut down */
        }
        char head[4096];
        size_t got = 0;
        while (got < sizeof(head) - 1) {
            ssize_t n = recv(c, head + got, sizeof(head) - 1 - got, 0);
            if (n <= 0) break;
            got += (size_t)n;
            head[got] = '\0';
            if (strstr(head, "\r\n\r\n")) break;
        }
        head[got] = '\0';
        const char *k = strcasestr(head, "\r\nRouse-Cluster-Key: ");
        if (k) sscanf(k + 21, "%127[^\r\n]", l->key_seen);
        const char reply[] = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                             "Content-Length: 14\r\nConnection: close\r\n\r\n" LIE;
        if (send(c, reply, sizeof(reply) - 1, MSG_NOSIGNAL) < 0) {
            /* the node hung up: nothing to do */
        }
        __atomic_add_fetch(&l->served, 1, __ATOMIC_SEQ_CST);
        close(c);
    }
}

static void liar_start(liar *l)
{
    memset(l, 0, sizeof(*l));
    l->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(l->fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    assert_int_equal(bind(l->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(l->fd, 16), 0);
    assert_int_equal(getsockname(l->fd, (struct sockaddr *)&sa, &sl), 0);
    l->port = ntohs(sa.sin_port);
    assert_int_equal(pthread_create(&l->thread, NULL, liar_main, l), 0);
}

static void liar_stop(liar *l)
{
    shutdown(l->fd, SHUT_RDWR);
    pthread_join(l->thread, NULL);
    close(l->fd);
}

/* --- setup ---------------------------------------------------------------------- */

static int group_setup(void **state)
{
    (void)state;
    g_rouse = getenv("ROUSE");
    g_digits = getenv("DIGITS");
    if (!g_rouse || !g_digits) {
        fprintf(stderr, "ROUSE and DIGITS must be set\n");
        return -1;
    }
    snprintf(g_dir, sizeof(g_dir), "%s/rouse-blobs-test-XXXXXX", test_tmp_dir());
    if (!mkdtemp(g_dir)) return -1;
    snprintf(g_key, sizeof(g_key), "%s/cluster.key", g_dir);
    FILE *f = fopen(g_key, "w");
    if (!f) return -1;
    fprintf(f, "%s\n", KEY);
    fclose(f);
    chmod(g_key, 0600);
    char path[512];
    snprintf(path, sizeof(path), "%s/model.onnx", g_digits);
    rouse_errbuf eb;
    if (cli_file_slurp(path, &g_model, &g_model_len, &eb) < 0) return -1;
    uint8_t d[32];
    char hex[65];
    rouse_sha256_digest(g_model, g_model_len, d);
    rouse_sha256_hex(d, hex);
    snprintf(g_digest, sizeof(g_digest), "sha256:%s", hex);
    if (test_digit_samples(g_digits, g_samples) < 0) return -1;

    /* A and B are each other's peer: their ports are chosen first. */
    int pa = test_free_port(), pb = test_free_port();
    if (pa < 0 || pb < 0) return -1;
    char port_a[16], peer_b[64];
    snprintf(port_a, sizeof(port_a), "%d", pa);
    snprintf(g_port_b, sizeof(g_port_b), "%d", pb);
    snprintf(g_peer_a, sizeof(g_peer_a), "http://127.0.0.1:%d", pa);
    snprintf(peer_b, sizeof(peer_b), "http://127.0.0.1:%d", pb);
    snprintf(g_a_data, sizeof(g_a_data), "%s/a", g_dir);
    snprintf(g_b_data, sizeof(g_b_data), "%s/b", g_dir);
    const char *a_args[] = {"--port", port_a, "--cluster-key-file", g_key, "--blob-peers", peer_b,
                            NULL};
    if (start_node(&g_a, g_a_data, a_args) < 0) return -1;
    return start_b();
}

static int group_teardown(void **state)
{
    (void)state;
    s3rver_stop(); /* when a test failed while it ran */
    /* Clean stops: under ASan, a leak is a nonzero exit. */
    int st_a = serve_proc_stop(&g_a), st_b = serve_proc_stop(&g_b);
    if (st_a != 0 || st_b != 0) fprintf(stderr, "serve exited with %d and %d\n", st_a, st_b);
    for (int i = 0; i < 10; i++)
        free(g_samples[i]);
    free(g_model);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    return system(cmd) == 0 && st_a == 0 && st_b == 0 ? 0 : -1;
}

/* --- tests ---------------------------------------------------------------------- */

static void test_fetch_from_peer(void **state)
{
    (void)state;
    char digest[80], path[512];
    snprintf(path, sizeof(path), "%s/model.onnx", g_digits);
    assert_int_equal(test_upload_file(&g_a.target, path, digest), 0);
    assert_string_equal(digest, g_digest);
    http_response r;
    /* A serves the bytes; B has not got them. */
    assert_int_equal(get_blob(&g_a, g_digest, NULL, &r), 200);
    assert_string_equal(r.content_type, "application/octet-stream");
    http_response_fini(&r);
    char head[128];
    snprintf(head, sizeof(head), "/v1/blobs/%s", g_digest);
    assert_int_equal(request(&g_b, "HEAD", head, NULL, NULL, 0, &r), 404);
    http_response_fini(&r);
    expect_stored(g_b_data, g_digest, false);

    /* Deployed on B: fetched from A, verified, stored, served. */
    int st = deploy(&g_b, "digits", g_digest, &r);
    if (st != 201) fprintf(stderr, "deploy on B: %d %s\n", st, r.body.data);
    assert_int_equal(st, 201);
    http_response_fini(&r);
    expect_stored(g_b_data, g_digest, true);
    infer_digits(&g_b, "digits");
    assert_int_equal(get_blob(&g_b, g_digest, NULL, &r), 200);
    http_response_fini(&r);
    /* Another node's read with the cluster key; a wrong key is refused. */
    assert_int_equal(get_blob(&g_b, g_digest, KEY, &r), 200);
    http_response_fini(&r);
    assert_int_equal(get_blob(&g_a, g_digest, "not-the-key-of-this-cluster-at-all", &r), 401);
    assert_non_null(strstr(r.body.data, "Rouse-Cluster-Key"));
    http_response_fini(&r);
}

static void test_template_waits_for_its_blob(void **state)
{
    (void)state;
    /* B knows digits (its registry) but has lost the blob and the plan:
     * the template's start waits for the blob from A. */
    assert_int_equal(serve_proc_stop(&g_b), 0);
    char cmd[800];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s/blobs/sha256' '%s/plans'", g_b_data, g_b_data);
    assert_int_equal(system(cmd), 0);
    expect_stored(g_b_data, g_digest, false);
    assert_int_equal(start_b(), 0);
    infer_digits(&g_b, "digits");
    expect_stored(g_b_data, g_digest, true);
}

static void test_unknown_blob_between_peers(void **state)
{
    (void)state;
    /* Neither has it: A asks B, B answers from its own store (a peer's
     * read is never passed on), A says 404. */
    char none[80];
    snprintf(none, sizeof(none), "sha256:%064d", 7);
    http_response r;
    assert_int_equal(get_blob(&g_a, none, NULL, &r), 404);
    assert_non_null(strstr(r.body.data, "on any peer"));
    http_response_fini(&r);
    assert_int_equal(get_blob(&g_b, none, NULL, &r), 404);
    http_response_fini(&r);
    assert_int_equal(deploy(&g_a, "nothing", none, &r), 400);
    assert_non_null(strstr(r.body.data, "no blob"));
    http_response_fini(&r);
    /* Not a digest. */
    assert_int_equal(get_blob(&g_a, "sha256:xyz", NULL, &r), 400);
    http_response_fini(&r);
}

static void test_lying_peer_refused(void **state)
{
    (void)state;
    liar l;
    liar_start(&l);
    char liar_url[64], both[160];
    snprintf(liar_url, sizeof(liar_url), "http://127.0.0.1:%d", l.port);
    char c_data[300], d_data[300];
    snprintf(c_data, sizeof(c_data), "%s/c", g_dir);
    snprintf(d_data, sizeof(d_data), "%s/d", g_dir);

    /* C has the liar alone. */
    serve_proc c;
    const char *c_args[] = {"--cluster-key-file", g_key, "--blob-peers", liar_url, NULL};
    assert_int_equal(start_node(&c, c_data, c_args), 0);
    uint8_t d[32];
    char lie_hex[65];
    rouse_sha256_digest(LIE, strlen(LIE), d);
    rouse_sha256_hex(d, lie_hex);
    http_response r;
    assert_int_equal(get_blob(&c, g_digest, NULL, &r), 502);
    assert_non_null(strstr(r.body.data, g_digest));
    assert_non_null(strstr(r.body.data, lie_hex));
    assert_non_null(strstr(r.body.data, "refused"));
    http_response_fini(&r);
    assert_int_equal(deploy(&c, "digits", g_digest, &r), 502);
    assert_non_null(strstr(r.body.data, lie_hex));
    http_response_fini(&r);
    assert_int_equal(count_blobs(c_data), 0); /* nothing stored, no temporary left */
    assert_true(__atomic_load_n(&l.served, __ATOMIC_SEQ_CST) >= 2);
    assert_string_equal(l.key_seen, KEY);
    assert_int_equal(serve_proc_stop(&c), 0); /* a clean stop (no leak under ASan) */

    /* D asks the liar first, then A: A's bytes are the blob. */
    serve_proc dn;
    snprintf(both, sizeof(both), "%s,http://127.0.0.1:%d", liar_url, g_a.port);
    const char *d_args[] = {"--cluster-key-file", g_key, "--blob-peers", both, NULL};
    assert_int_equal(start_node(&dn, d_data, d_args), 0);
    int before = __atomic_load_n(&l.served, __ATOMIC_SEQ_CST);
    int st = deploy(&dn, "digits", g_digest, &r);
    if (st != 201) fprintf(stderr, "deploy on D: %d %s\n", st, r.body.data);
    assert_int_equal(st, 201);
    http_response_fini(&r);
    assert_true(__atomic_load_n(&l.served, __ATOMIC_SEQ_CST) > before);
    expect_stored(d_data, g_digest, true);
    infer_digits(&dn, "digits");
    assert_int_equal(serve_proc_stop(&dn), 0); /* a clean stop (no leak under ASan) */
    liar_stop(&l);
}

typedef struct getter {
    const serve_proc *p;
    int status;
    bool same;
} getter;

static void *get_main(void *arg)
{
    getter *g = arg;
    char path[128];
    snprintf(path, sizeof(path), "/v1/blobs/%s", g_digest);
    http_response r;
    http_response_init(&r);
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    if (http_request(&g->p->target, "GET", path, NULL, NULL, 0, TIMEOUT_MS, &r, &eb) == 0) {
        g->status = r.status;
        g->same = r.body.len == g_model_len && memcmp(r.body.data, g_model, g_model_len) == 0;
    }
    http_response_fini(&r);
    return NULL;
}

static void test_concurrent_gets_share_a_fetch(void **state)
{
    (void)state;
    /* Clients asking at once for a blob this node lacks all get its bytes
     * (one transfer, every waiter answered). */
    char h_data[300], peer[64];
    snprintf(h_data, sizeof(h_data), "%s/h", g_dir);
    snprintf(peer, sizeof(peer), "http://127.0.0.1:%d", g_a.port);
    serve_proc h;
    const char *args[] = {"--cluster-key-file", g_key, "--blob-peers", peer, NULL};
    assert_int_equal(start_node(&h, h_data, args), 0);
    getter g[6];
    pthread_t t[6];
    for (int i = 0; i < 6; i++) {
        g[i] = (getter){.p = &h};
        assert_int_equal(pthread_create(&t[i], NULL, get_main, &g[i]), 0);
    }
    for (int i = 0; i < 6; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(g[i].status, 200);
        assert_true(g[i].same);
    }
    expect_stored(h_data, g_digest, true);
    /* One transfer for them all (GET /v1/stats). */
    http_response r;
    assert_int_equal(request(&h, "GET", "/v1/stats", NULL, NULL, 0, &r), 200);
    if (!strstr(r.body.data, "\"blob_transfers\":{\"fetches\":1,\"fetch_failures\":0"))
        fail_msg("stats: %s", r.body.data);
    http_response_fini(&r);
    assert_int_equal(serve_proc_stop(&h), 0); /* a clean stop (no leak under ASan) */
}

static void test_cluster_key_reads_blobs_only(void **state)
{
    (void)state;
    /* With --auth, the cluster key stands for an admin key on GET
     * /v1/blobs/{digest} and nowhere else. */
    char g_data[300], boot[300];
    snprintf(g_data, sizeof(g_data), "%s/g", g_dir);
    snprintf(boot, sizeof(boot), "%s/boot.key", g_dir);
    FILE *f = fopen(boot, "w");
    assert_non_null(f);
    fprintf(f, "rk_the-bootstrap-admin-key-of-this-test-0123456789\n");
    fclose(f);
    chmod(boot, 0600);
    serve_proc g;
    const char *args[] = {"--auth", "--auth-bootstrap-key-file", boot, "--cluster-key-file", g_key,
                          NULL};
    assert_int_equal(start_node(&g, g_data, args), 0);
    const char *admin[] = {"Authorization: Bearer rk_the-bootstrap-admin-key-of-this-test-0123456789",
                           NULL};
    http_response r;
    assert_int_equal(request(&g, "POST", "/v1/blobs", admin, g_model, g_model_len, &r), 201);
    http_response_fini(&r);
    assert_int_equal(get_blob(&g, g_digest, KEY, &r), 200);
    http_response_fini(&r);
    assert_int_equal(get_blob(&g, g_digest, NULL, &r), 401);
    http_response_fini(&r);
    char hdr[128], head[128];
    snprintf(hdr, sizeof(hdr), "Rouse-Cluster-Key: %s", KEY);
    const char *key_only[] = {hdr, NULL};
    snprintf(head, sizeof(head), "/v1/blobs/%s", g_digest);
    /* The key is the cluster's, so the caller is a node, but a node may
     * only read blobs or run inferences (auth.c): 403. */
    assert_int_equal(request(&g, "HEAD", head, key_only, NULL, 0, &r), 403);
    http_response_fini(&r);
    assert_int_equal(request(&g, "GET", "/v1/functions", key_only, NULL, 0, &r), 403);
    http_response_fini(&r);
    assert_int_equal(request(&g, "DELETE", head, key_only, NULL, 0, &r), 403);
    http_response_fini(&r);
    expect_stored(g_data, g_digest, true);
    assert_int_equal(serve_proc_stop(&g), 0); /* a clean stop (no leak under ASan) */
}

/* --- S3 (s3rver) ------------------------------------------------------------------ */

/* Installs s3rver into S3RVER_WORK (npm ci from tests/blobs); its
 * executable's path into out, or false (with the reason printed). */
static bool s3rver_install(char *out, size_t cap)
{
    const char *pkg = getenv("S3RVER_PKG"), *work = getenv("S3RVER_WORK");
    if (!pkg || !work) {
        printf("skip: S3RVER_PKG and S3RVER_WORK are not set\n");
        return false;
    }
    if (system("command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1") != 0) {
        printf("skip: node and npm are not installed (Debian packages nodejs, npm)\n");
        return false;
    }
    char cmd[2048];
    snprintf(cmd, sizeof(cmd),
             "mkdir -p '%s' && cp '%s/package.json' '%s/package-lock.json' '%s/' && "
             "(cmp -s '%s/package-lock.json' '%s/node_modules/.package-lock.json.installed' || "
             "(cd '%s' && timeout 300 npm ci --no-audit --no-fund --loglevel=error >npm.log "
             "2>&1 && cp package-lock.json node_modules/.package-lock.json.installed))",
             work, pkg, pkg, work, pkg, work, work);
    if (system(cmd) != 0) {
        printf("skip: s3rver could not be installed from the npm registry (see %s/npm.log)\n",
               work);
        return false;
    }
    snprintf(out, cap, "%s/node_modules/.bin/s3rver", work);
    return access(out, X_OK) == 0;
}

static pid_t s3rver_start(const char *exe, const char *dir, int port)
{
    char p[16];
    snprintf(p, sizeof(p), "%d", port);
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) dup2(null, 1);
        execl(exe, exe, "-d", dir, "-a", "127.0.0.1", "-p", p, "--silent", "--configure-bucket",
              "rouse-test", (char *)NULL);
        _exit(127);
    }
    /* Up once it accepts connections (node takes a while to start). */
    for (int i = 0; i < 600; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons((uint16_t)port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
        close(fd);
        if (ok) {
            /* The bucket is configured right after the listener starts. */
            char bucket[600];
            snprintf(bucket, sizeof(bucket), "%s/rouse-test", dir);
            for (int j = 0; j < 200 && access(bucket, F_OK) != 0; j++)
                usleep(50000);
            return pid;
        }
        if (waitpid(pid, NULL, WNOHANG) == pid) return -1;
        usleep(50000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

static void s3rver_stop(void)
{
    if (g_s3rver <= 0) return;
    kill(g_s3rver, SIGTERM);
    waitpid(g_s3rver, NULL, 0);
    g_s3rver = -1;
}

static void test_s3_bucket(void **state)
{
    (void)state;
    char exe[600];
    if (!s3rver_install(exe, sizeof(exe))) {
        skip();
        return;
    }
    char s3dir[300], e_data[300], f_data[300], endpoint[64];
    snprintf(s3dir, sizeof(s3dir), "%s/s3", g_dir);
    snprintf(e_data, sizeof(e_data), "%s/e", g_dir);
    snprintf(f_data, sizeof(f_data), "%s/f", g_dir);
    mkdir(s3dir, 0700);
    int port = test_free_port();
    assert_true(port > 0);
    g_s3rver = s3rver_start(exe, s3dir, port);
    assert_true(g_s3rver > 0);
    snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", port);
    /* s3rver's own account. */
    setenv("AWS_ACCESS_KEY_ID", "S3RVER", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "S3RVER", 1);
    const char *args[] = {"--blobs", "s3://rouse-test/models/v1", "--s3-endpoint", endpoint,
                          "--s3-region", "eu-west-1", NULL};
    serve_proc e, f;
    assert_int_equal(start_node(&e, e_data, args), 0);

    /* Acknowledged: in the bucket, byte for byte (s3rver's directory). */
    char path[512], digest[80];
    snprintf(path, sizeof(path), "%s/model.onnx", g_digits);
    assert_int_equal(test_upload_file(&e.target, path, digest), 0);
    assert_string_equal(digest, g_digest);
    char obj[800];
    snprintf(obj, sizeof(obj), "%s/rouse-test/models/v1/sha256/%s._S3rver_object", s3dir,
             g_digest + 7);
    uint8_t *buf = NULL;
    size_t len = 0;
    rouse_errbuf eb;
    assert_int_equal(cli_file_slurp(obj, &buf, &len, &eb), 0);
    assert_int_equal(len, g_model_len);
    assert_memory_equal(buf, g_model, len);
    free(buf);

    /* An empty node deploys it from the bucket. */
    assert_int_equal(start_node(&f, f_data, args), 0);
    http_response r;
    int st = deploy(&f, "digits", g_digest, &r);
    if (st != 201) fprintf(stderr, "deploy on F: %d %s\n", st, r.body.data);
    assert_int_equal(st, 201);
    http_response_fini(&r);
    expect_stored(f_data, g_digest, true);
    infer_digits(&f, "digits");
    char none[80];
    snprintf(none, sizeof(none), "sha256:%064d", 9);
    assert_int_equal(get_blob(&f, none, NULL, &r), 404);
    assert_non_null(strstr(r.body.data, "s3://rouse-test/models/v1"));
    http_response_fini(&r);

    /* The bucket down: an upload is not acknowledged, a fetch is a 502. */
    s3rver_stop();
    const char other[] = "bytes the bucket never got";
    assert_int_equal(request(&e, "POST", "/v1/blobs", NULL, other, strlen(other), &r), 502);
    assert_non_null(strstr(r.body.data, "not in the bucket"));
    http_response_fini(&r);
    assert_int_equal(get_blob(&f, none, NULL, &r), 502);
    assert_non_null(strstr(r.body.data, "s3://rouse-test/models/v1"));
    http_response_fini(&r);
    assert_int_equal(request(&e, "GET", "/v1/stats", NULL, NULL, 0, &r), 200);
    if (!strstr(r.body.data, "\"pushes\":2,\"push_failures\":1"))
        fail_msg("stats: %s", r.body.data);
    http_response_fini(&r);
    assert_int_equal(serve_proc_stop(&e), 0); /* a clean stop (no leak under ASan) */
    assert_int_equal(serve_proc_stop(&f), 0); /* a clean stop (no leak under ASan) */
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fetch_from_peer),
        cmocka_unit_test(test_template_waits_for_its_blob),
        cmocka_unit_test(test_unknown_blob_between_peers),
        cmocka_unit_test(test_lying_peer_refused),
        cmocka_unit_test(test_concurrent_gets_share_a_fetch),
        cmocka_unit_test(test_cluster_key_reads_blobs_only),
        cmocka_unit_test(test_s3_bucket),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
