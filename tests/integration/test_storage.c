/*
 * Integration tests of what serve does with its storage and with hostile
 * HTTP, against the real daemon (--blob-grace-ms 0, so that an unused blob
 * is collected at the next sweep):
 * - HTTP edge cases on raw sockets: a malformed Content-Length, a garbage
 *   request line, an unsupported Transfer-Encoding, %00 in a path each get
 *   one JSON error and the connection closed, as do a malformed chunk-size
 *   line: as the first request of a connection, as the second of a
 *   kept-alive one (its head whole or in two pieces), right behind a first
 *   request (pipelined), and after a chunked body; valid pipelined
 *   requests, a chunked one among them, are all answered;
 * - registry writes and blob commits go through the writer threads
 *   (GET /v1/stats counts them), and a "batching" config that does not parse is refused;
 * - garbage collection: DELETE /v1/blobs/{digest} is 409 while a version
 *   names the blob; blobs and plans of deleted functions and the blob of a
 *   failed deploy are removed; a blob two functions share stays;
 * - plan temporaries left by a killed serve are gone after its restart;
 * - a full disk while the deploy check writes the plan is 507 (a 4 KiB
 *   tmpfs mounted on the plan directory in a user and mount namespace;
 *   skipped where unshare cannot make one).
 *
 * Environment: ROUSE (the binary), DIGITS (examples/digits).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/http_client.h"
#include "cli/tensor_file.h"
#include "common/arena.h"
#include "common/json.h"
#include "serve_proc.h"
#include "tmp_dir.h"

#define TIMEOUT_MS 60000

static const char *g_rouse, *g_digits;
static char g_dir[256], g_data[300];
static serve_proc g_srv;
static char g_digits_digest[80];

static const char *const g_serve_args[] = {"--log-level", "warn", "--blob-grace-ms", "0", NULL};

/* --- utilities ------------------------------------------------------------------ */

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

static int req_str(const char *method, const char *path, const char *body, http_response *r)
{
    return req(method, path, body, body ? strlen(body) : 0, r);
}

static void expect(const char *method, const char *path, const char *body, int status,
                   const char *needle)
{
    http_response r;
    req_str(method, path, body, &r);
    if (r.status != status || (needle && !strstr(r.body.data, needle)))
        fprintf(stderr, "%s %s: got %d %s (wanted %d with '%s')\n", method, path, r.status,
                r.body.data, status, needle ? needle : "");
    assert_int_equal(r.status, status);
    if (needle) assert_non_null(strstr(r.body.data, needle));
    if (status >= 400) assert_non_null(strstr(r.body.data, "\"error\""));
    http_response_fini(&r);
}

static void upload_bytes(const void *buf, size_t len, char *out)
{
    http_response r;
    assert_int_equal(req("POST", "/v1/blobs", buf, len, &r), 201);
    rouse_arena a;
    rouse_arena_init(&a, 0);
    json_value *v;
    assert_int_equal(json_parse(r.body.data, r.body.len, &a, &v, NULL), 0);
    snprintf(out, 80, "%s", json_as_string(json_get(v, "digest")));
    rouse_arena_fini(&a);
    http_response_fini(&r);
}

static void upload_file(const char *path, char *out)
{
    uint8_t *buf;
    size_t len;
    rouse_errbuf eb;
    assert_int_equal(cli_file_slurp(path, &buf, &len, &eb), 0);
    upload_bytes(buf, len, out);
    free(buf);
}

static int deploy(const char *name, const char *digest, const char *extra)
{
    char path[128], body[512];
    snprintf(path, sizeof(path), "/v1/functions/%s", name);
    snprintf(body, sizeof(body), "{\"model\":\"%s\"%s%s}", digest, extra ? "," : "",
             extra ? extra : "");
    http_response r;
    int st = req_str("PUT", path, body, &r);
    if (st >= 300) fprintf(stderr, "deploy %s: %d %s\n", name, st, r.body.data);
    http_response_fini(&r);
    return st;
}

static int blob_status(const char *digest)
{
    char path[128];
    snprintf(path, sizeof(path), "/v1/blobs/%s", digest);
    http_response r;
    int st = req_str("HEAD", path, NULL, &r);
    http_response_fini(&r);
    return st;
}

static void plan_path(const char *digest, char *out, size_t len)
{
    snprintf(out, len, "%s/plans/%s.plan", g_data, digest + 7);
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Waits (bounded) until a collection removed the blob and its plan: a sweep
 * runs on the writer thread after the triggering request was answered. */
static void wait_collected(const char *digest)
{
    char plan[400];
    plan_path(digest, plan, sizeof(plan));
    for (int i = 0; i < 1000; i++) {
        if (blob_status(digest) == 404 && !exists(plan)) return;
        usleep(10000);
    }
    fail_msg("blob %s (or its plan) was not collected", digest);
}

/* A stat field of GET /v1/stats: section.key. */
static int64_t stat_of(const char *section, const char *key)
{
    http_response r;
    assert_int_equal(req_str("GET", "/v1/stats", NULL, &r), 200);
    rouse_arena a;
    rouse_arena_init(&a, 0);
    json_value *v;
    assert_int_equal(json_parse(r.body.data, r.body.len, &a, &v, NULL), 0);
    int64_t x = -1;
    assert_true(json_as_int64(json_get(json_get(v, section), key), &x));
    rouse_arena_fini(&a);
    http_response_fini(&r);
    return x;
}

/* Reads one whole response (head and Content-Length body) of a kept-alive
 * connection, and checks that it is a 2xx that keeps the connection. */
static void read_one_response(int fd)
{
    char buf[4096];
    size_t got = 0;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        assert_true(poll(&p, 1, 5000) > 0);
        ssize_t n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
        assert_true(n > 0);
        got += (size_t)n;
        buf[got] = '\0';
        const char *end = strstr(buf, "\r\n\r\n");
        const char *cl = strcasestr(buf, "Content-Length:");
        if (end && cl && got >= (size_t)(end + 4 - buf) + strtoull(cl + 15, NULL, 10)) break;
        assert_true(got < sizeof(buf) - 1);
    }
    if (strncmp(buf, "HTTP/1.1 2", 10) != 0 || strcasestr(buf, "Connection: close"))
        fail_msg("expected a 2xx that keeps the connection, got '%s'", buf);
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

#define LIVE "GET /v2/health/live HTTP/1.1\r\nHost: a\r\n\r\n"
#define CHUNKED                                                                                    \
    "POST /v1/blobs HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"         \
    "0\r\nX-Note: a trailer\r\n\r\n"

/* Reads until the server closes the connection (or 5 s pass): what it
 * sent, NUL-terminated, into out. */
static void read_to_close(int fd, char *out, size_t cap, bool *closed)
{
    size_t got = 0;
    *closed = false;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 5000) <= 0) break;
        ssize_t n = recv(fd, out + got, cap - 1 - got, 0);
        if (n <= 0) {
            *closed = true;
            break;
        }
        got += (size_t)n;
        if (got == cap - 1) break;
    }
    out[got] = '\0';
}

/* The ways a request can reach serve on a connection: first, after
 * requests answered in full (before, answered), right behind requests in
 * the same write (pipelined: replies answers come first), its head in two
 * pieces 100 ms apart (split). */
static const struct {
    const char *name, *before;
    bool answered, split;
    int replies;
} g_ways[] = {
    {"first", NULL, false, false, 0},
    {"second", LIVE, true, false, 0},
    {"second, split", LIVE, true, true, 0},
    {"pipelined", LIVE, false, false, 1},
    {"pipelined, split", LIVE, false, true, 1},
    {"after a chunked body", CHUNKED, true, false, 0},
    {"pipelined after a chunked body", CHUNKED LIVE, false, false, 2},
};

/* One JSON error with the status, and the connection closed, after the
 * replies to the requests before it, whichever way the bytes come. */
static void expect_raw(const char *bytes, const char *status_line, const char *needle)
{
    for (size_t i = 0; i < sizeof(g_ways) / sizeof(g_ways[0]); i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        assert_true(fd >= 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_srv.port)};
        inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
        assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        char sent[2048];
        snprintf(sent, sizeof(sent), "%s%s",
                 g_ways[i].before && !g_ways[i].answered ? g_ways[i].before : "", bytes);
        size_t len = strlen(sent), off = 0;
        if (g_ways[i].answered) {
            const char *b = g_ways[i].before;
            assert_int_equal(send(fd, b, strlen(b), 0), (ssize_t)strlen(b));
            read_one_response(fd);
        }
        if (g_ways[i].split) {
            off = len - strlen(bytes) + 5; /* the head's first 5 bytes */
            assert_int_equal(send(fd, sent, off, 0), (ssize_t)off);
            usleep(100000);
        }
        assert_int_equal(send(fd, sent + off, len - off, 0), (ssize_t)(len - off));
        char out[8192];
        bool closed;
        read_to_close(fd, out, sizeof(out), &closed);
        close(fd);
        const char *last = out, *p;
        while ((p = strstr(last + 1, "HTTP/1.1 ")) != NULL)
            last = p;
        if (count(out, "HTTP/1.1 ") != g_ways[i].replies + 1 ||
            (g_ways[i].replies > 0 && strncmp(out, "HTTP/1.1 2", 10) != 0) ||
            strncmp(last, status_line, strlen(status_line)) != 0 ||
            !strstr(last, "application/json") || !strstr(last, needle) ||
            !strstr(last, "\r\n\r\n{") || !closed)
            fail_msg("sent %.40s... %s: got '%s' (closed: %d)", bytes, g_ways[i].name, out, closed);
    }
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
    snprintf(g_dir, sizeof(g_dir), "%s/rouse-storage-test-XXXXXX", test_tmp_dir());
    if (!mkdtemp(g_dir)) return -1;
    snprintf(g_data, sizeof(g_data), "%s/data", g_dir);
    return serve_proc_start(&g_srv, g_rouse, g_data, g_serve_args);
}

static int group_teardown(void **state)
{
    (void)state;
    serve_proc_kill9(&g_srv);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* --- tests ---------------------------------------------------------------------- */

static void test_http_edge_cases(void **state)
{
    (void)state;
    /* MHD sent its HTML page with the status line and headers twice. */
    expect_raw("PUT /v1/functions/x HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n{}",
               "HTTP/1.1 400", "Content-Length");
    /* These got no answer at all. */
    expect_raw("HELLO\r\n\r\n", "HTTP/1.1 400", "request line");
    expect_raw("POST /v1/blobs HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\nabc",
               "HTTP/1.1 501", "Transfer-Encoding");
    /* PUT /v1/functions/a%00b created "a". */
    char body[256], raw[512];
    snprintf(body, sizeof(body), "{\"model\":\"sha256:%064d\"}", 0);
    snprintf(raw, sizeof(raw),
             "PUT /v1/functions/a%%00b HTTP/1.1\r\nHost: a\r\nContent-Length: %zu\r\n\r\n%s",
             strlen(body), body);
    expect_raw(raw, "HTTP/1.1 400", "%00");
    expect("GET", "/v1/functions/a", NULL, 404, NULL);
    /* A chunked body whose chunk-size line is not one (MHD answered it
     * with its HTML page). */
    expect_raw("POST /v1/blobs HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
               "HTTP/1.1 400", "chunk size");
    /* Valid pipelined requests, a chunked body among them, are all
     * answered and the connection stays. */
    static const char three[] = LIVE CHUNKED LIVE;
    int pfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(pfd >= 0);
    struct sockaddr_in psa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_srv.port)};
    inet_pton(AF_INET, "127.0.0.1", &psa.sin_addr);
    assert_int_equal(connect(pfd, (struct sockaddr *)&psa, sizeof(psa)), 0);
    assert_int_equal(send(pfd, three, strlen(three), 0), (ssize_t)strlen(three));
    char buf[8192];
    size_t got = 0;
    int whole = 0;
    while (whole < 3) {
        struct pollfd pp = {.fd = pfd, .events = POLLIN};
        assert_true(poll(&pp, 1, 5000) > 0);
        ssize_t n = recv(pfd, buf + got, sizeof(buf) - 1 - got, 0);
        assert_true(n > 0);
        got += (size_t)n;
        buf[got] = '\0';
        /* Count the whole responses: head, then Content-Length bytes. */
        whole = 0;
        for (const char *r = buf;;) {
            const char *end = strstr(r, "\r\n\r\n"), *cl = strcasestr(r, "Content-Length:");
            if (!end || !cl || cl > end) break;
            const char *next = end + 4 + strtoull(cl + 15, NULL, 10);
            if (next > buf + got) break;
            if (strncmp(r, "HTTP/1.1 2", 10) != 0 || strcasestr(r, "Connection: close"))
                fail_msg("pipelined response %d: '%s'", whole + 1, r);
            whole++;
            r = next;
        }
    }
    assert_int_equal(whole, 3);
    assert_int_equal(got, strlen(buf)); /* nothing after the three */
    close(pfd);
    /* Valid later requests whose heads arrive in pieces are never taken for
     * garbage: one split on its own, one whose first piece travels right
     * behind the request before it (MHD has read that piece already). */
    static const char live[] = "GET /v2/health/live HTTP/1.1\r\nHost: a\r\n\r\n";
    for (int pipelined = 0; pipelined < 2; pipelined++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        assert_true(fd >= 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_srv.port)};
        inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
        assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        char first[128];
        snprintf(first, sizeof(first), "%s%.*s", live, pipelined ? 7 : 0, live);
        assert_int_equal(send(fd, first, strlen(first), 0), (ssize_t)strlen(first));
        read_one_response(fd);
        if (!pipelined) assert_int_equal(send(fd, live, 7, 0), 7);
        usleep(100000);
        assert_int_equal(send(fd, live + 7, strlen(live) - 7, 0), (ssize_t)(strlen(live) - 7));
        read_one_response(fd);
        close(fd);
    }
    /* And the server still serves. */
    expect("GET", "/v2/health/live", NULL, 200, NULL);
}

static void test_writes_go_through_the_writers(void **state)
{
    (void)state;
    int64_t commits = stat_of("blob_commits", "writes");
    char model[512];
    snprintf(model, sizeof(model), "%s/model.onnx", g_digits);
    upload_file(model, g_digits_digest);
    assert_int_equal(stat_of("blob_commits", "writes"), commits + 1);
    int64_t writes = stat_of("registry_writes", "writes");
    assert_int_equal(deploy("digits", g_digits_digest, NULL), 201);
    expect("PUT", "/v1/functions/digits/aliases/prod", "{\"version\":1}", 200, "\"prod\"");
    assert_int_equal(deploy("digits", g_digits_digest, "\"timeout_ms\":1000"), 201);
    expect("POST", "/v1/functions/digits/rollback", NULL, 200, "\"version\":1");
    /* Four writes answered after their commits (sweeps may add theirs). */
    assert_true(stat_of("registry_writes", "writes") >= writes + 4);
    assert_int_equal(stat_of("registry_writes", "pending"), 0);
    assert_true(stat_of("loop", "iterations") > 0);
    /* Model metadata from the routing cache still lists both versions. */
    expect("GET", "/v2/models/digits", NULL, 200, "\"versions\":[\"1\",\"2\"]");
}

static void test_batching_refused(void **state)
{
    (void)state;
    char body[256];
    snprintf(body, sizeof(body), "{\"model\":\"%s\",\"batching\":{\"max_batch\":6}}",
             g_digits_digest);
    expect("PUT", "/v1/functions/batched", body, 400,
           "batching.max_batch: must be a power of two");
    expect("GET", "/v1/functions/batched", NULL, 404, NULL);
}

static void test_blob_delete_and_collection(void **state)
{
    (void)state;
    char plan[400], path[160];
    plan_path(g_digits_digest, plan, sizeof(plan));
    assert_true(exists(plan)); /* the deploy check compiled it */
    snprintf(path, sizeof(path), "/v1/blobs/%s", g_digits_digest);
    expect("DELETE", path, NULL, 409, "in use");
    expect("DELETE", "/v1/blobs/sha256:nothex", NULL, 400, NULL);
    char zeros[90];
    snprintf(zeros, sizeof(zeros), "/v1/blobs/sha256:%064d", 0);
    expect("DELETE", zeros, NULL, 404, NULL);

    /* Shared by two functions: deleting one keeps it. */
    assert_int_equal(deploy("twin", g_digits_digest, NULL), 201);
    expect("DELETE", "/v1/functions/digits", NULL, 200, "\"deleted\":true");
    expect("DELETE", path, NULL, 409, "in use");
    assert_int_equal(blob_status(g_digits_digest), 200);
    assert_true(exists(plan));
    /* The last one gone: blob and plan follow. */
    expect("DELETE", "/v1/functions/twin", NULL, 200, "\"deleted\":true");
    wait_collected(g_digits_digest);

    /* A blob nothing names is deleted on request. */
    char spare[80];
    upload_bytes("spare bytes", 11, spare);
    snprintf(path, sizeof(path), "/v1/blobs/%s", spare);
    expect("DELETE", path, NULL, 200, "\"deleted\":true");
    assert_int_equal(blob_status(spare), 404);

    /* A failed deploy leaves no blob behind. */
    char junk[80];
    upload_bytes("not an onnx model", 17, junk);
    assert_int_equal(deploy("junk", junk, NULL), 400);
    wait_collected(junk);
}

static void test_plan_temporaries_removed_at_start(void **state)
{
    (void)state;
    char tmp[400];
    snprintf(tmp, sizeof(tmp), "%s/plans/%064d.plan.tmpAbC123", g_data, 7);
    serve_proc_kill9(&g_srv);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fputs("half a plan", f);
    fclose(f);
    assert_int_equal(serve_proc_start(&g_srv, g_rouse, g_data, g_serve_args), 0);
    assert_false(exists(tmp));
}

/* A wrapper that runs serve with a 4 KiB tmpfs on its plan directory, in a
 * user and mount namespace of its own (no privilege needed where
 * unprivileged user namespaces are allowed). */
static void test_full_disk_is_507(void **state)
{
    (void)state;
    if (system("unshare -rm sh -c 'd=$(mktemp -d) && mount -t tmpfs -o size=4k tmpfs \"$d\" && "
               "umount \"$d\" && rmdir \"$d\"' >/dev/null 2>&1") != 0)
        skip(); /* no user namespaces here */
    char data[400], script[400];
    snprintf(data, sizeof(data), "%s/full", g_dir);
    snprintf(script, sizeof(script), "%s/serve-small-plans.sh", g_dir);
    FILE *f = fopen(script, "w");
    assert_non_null(f);
    fprintf(f,
            "#!/bin/sh\n"
            "mkdir -p '%s/plans'\n"
            "exec unshare -rm sh -c 'mount -t tmpfs -o size=4k tmpfs \"$0/plans\" && exec \"$@\"' "
            "'%s' '%s' \"$@\"\n",
            data, data, g_rouse);
    fclose(f);
    chmod(script, 0755);
    serve_proc_kill9(&g_srv);
    assert_int_equal(serve_proc_start(&g_srv, script, data, g_serve_args), 0);
    char digest[80], model[512];
    snprintf(model, sizeof(model), "%s/model.onnx", g_digits);
    upload_file(model, digest);
    char body[256];
    snprintf(body, sizeof(body), "{\"model\":\"%s\"}", digest);
    expect("PUT", "/v1/functions/digits", body, 507, "storage:");
    expect("GET", "/v1/functions/digits", NULL, 404, NULL);
    serve_proc_kill9(&g_srv);
    assert_int_equal(serve_proc_start(&g_srv, g_rouse, g_data, g_serve_args), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_edge_cases),
        cmocka_unit_test(test_writes_go_through_the_writers),
        cmocka_unit_test(test_batching_refused),
        cmocka_unit_test(test_blob_delete_and_collection),
        cmocka_unit_test(test_plan_temporaries_removed_at_start),
        cmocka_unit_test(test_full_disk_is_507),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
