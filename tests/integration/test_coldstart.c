/*
 * Integration tests of the cold-start mechanism of `rouse serve` (docs/architecture.md,
 * "zygote" and "template"): the pages templates read weights from, each kind forced by
 * --weight-pages (a kind the machine cannot give refused at start with the setting that
 * stops it), and a request handed to a template's warm spare together with its spawn,
 * under concurrent bursts.
 *
 * What the template reads is checked in its /proc/PID/maps: the plan file mapped (4k), or
 * not (a copy in huge pages: thp, or the hugetlbfs memfd "rouse-weights"); every answer is
 * checked against the digit it was asked about. Waits are bounded loops over real state,
 * never timing thresholds.
 *
 * Environment: ROUSE (the binary), DIGITS (examples/digits).
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
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/http_client.h"
#include "cli/tensor_file.h"
#include "common/arena.h"
#include "common/json.h"
#include "proc_info.h"
#include "fn_deploy.h"
#include "serve_proc.h"
#include "tmp_dir.h"

#define TIMEOUT_MS 120000
#define WAIT_TRIES 4000 /* x 5 ms: 20 s at most for any awaited state */

static const char *g_rouse, *g_digits;
static char g_dir[256], g_digest[80];
static serve_proc g_srv;
static char *g_samples[10];
static uint8_t *g_model;
static size_t g_model_len;

/* --- utilities ------------------------------------------------------------------ */

static int request(const char *method, const char *path, const char *body, http_response *r)
{
    http_response_init(r);
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    int rc = http_request(&g_srv.target, method, path, NULL, body, body ? strlen(body) : 0,
                          TIMEOUT_MS, r, &eb);
    if (rc < 0) fprintf(stderr, "%s %s: %s\n", method, path, eb.msg);
    return rc < 0 ? -1 : r->status;
}

/* Starts serve with extra arguments in a data directory of its own and
 * uploads the digits model. */
static void serve_up(const char *const *extra)
{
    static int n;
    char data[320];
    snprintf(data, sizeof(data), "%s/data%d", g_dir, n++);
    assert_int_equal(serve_proc_start(&g_srv, g_rouse, data, extra), 0);
    http_response r;
    http_response_init(&r);
    rouse_errbuf eb;
    int rc = http_request(&g_srv.target, "POST", "/v1/blobs", NULL, g_model, g_model_len,
                          TIMEOUT_MS, &r, &eb);
    assert_int_equal(rc, 0);
    assert_true(r.status == 201 || r.status == 200);
    rouse_arena a;
    rouse_arena_init(&a, 0);
    json_value *v;
    assert_int_equal(json_parse(r.body.data, r.body.len, &a, &v, NULL), 0);
    snprintf(g_digest, sizeof(g_digest), "%s", json_as_string(json_get(v, "digest")));
    rouse_arena_fini(&a);
    http_response_fini(&r);
}

static void serve_down(void)
{
    int st = serve_proc_stop(&g_srv);
    g_srv.pid = 0;
    assert_int_equal(st, 0);
}

/* After each test, passed or not: no daemon left behind. */
static int test_teardown(void **state)
{
    (void)state;
    if (g_srv.pid > 0) serve_proc_kill9(&g_srv);
    g_srv.pid = 0;
    return 0;
}

static void deploy(const char *name, const char *scaling)
{
    char path[128], body[512];
    snprintf(path, sizeof(path), "/v1/functions/%s", name);
    snprintf(body, sizeof(body), "{\"model\":\"%s\",\"scaling\":{%s}}", g_digest, scaling);
    http_response r;
    int st = request("PUT", path, body, &r);
    if (st != 201 && st != 200) fprintf(stderr, "deploy %s: %d %s\n", name, st, r.body.data);
    assert_true(st == 201 || st == 200);
    http_response_fini(&r);
}

/* One inference of digit d on fn, checked; Rouse-Start into start. */
static void infer_ok(const char *fn, int d, char start[16])
{
    char url[128];
    snprintf(url, sizeof(url), "/v2/models/%s/infer", fn);
    http_response r;
    int st = request("POST", url, g_samples[d], &r);
    if (st != 200) fprintf(stderr, "%s: %d %s\n", fn, st, r.body.data);
    assert_int_equal(st, 200);
    assert_int_equal(test_logits_argmax(&r), d);
    if (start) snprintf(start, 16, "%s", r.rouse_start);
    http_response_fini(&r);
}

/* What GET /v1/functions/{fn} says about its processes. */
typedef struct fn_state {
    int n_inst, n_tmpl, tmpl_pid, n_warm_spares;
    int n_connected_spares; /* warm and held by serve ahead of need */
    char session[16];       /* the newest cold start's template_session, or "" */
    char body[8192];
} fn_state;

static void fn_get(const char *fn, fn_state *st)
{
    memset(st, 0, sizeof(*st));
    char path[128];
    snprintf(path, sizeof(path), "/v1/functions/%s", fn);
    http_response r;
    assert_int_equal(request("GET", path, NULL, &r), 200);
    snprintf(st->body, sizeof(st->body), "%s", r.body.data);
    rouse_arena a;
    rouse_arena_init(&a, 0);
    json_value *root;
    assert_int_equal(json_parse(r.body.data, r.body.len, &a, &root, NULL), 0);
    const json_value *is = json_get(root, "instances");
    for (size_t i = 0; is && i < is->u.arr.n; i++)
        if (strcmp(json_as_string(json_get(is->u.arr.items[i], "state")), "stopping") != 0)
            st->n_inst++;
    const json_value *ts = json_get(root, "templates");
    for (size_t i = 0; ts && i < ts->u.arr.n; i++) {
        const json_value *t = ts->u.arr.items[i];
        if (strcmp(json_as_string(json_get(t, "state")), "ready") != 0) continue;
        int64_t pid = 0;
        json_as_int64(json_get(t, "pid"), &pid);
        st->tmpl_pid = (int)pid;
        st->n_tmpl++;
    }
    const json_value *sp = json_get(root, "spares");
    for (size_t i = 0; sp && i < sp->u.arr.n; i++) {
        if (strcmp(json_as_string(json_get(sp->u.arr.items[i], "state")), "warm") == 0)
            st->n_warm_spares++;
        const json_value *c = json_get(sp->u.arr.items[i], "connected");
        if (c && c->type == JSON_TRUE) st->n_connected_spares++;
    }
    const json_value *cs = json_get(root, "cold_starts");
    const char *ses = cs && cs->u.arr.n > 0
                          ? json_as_string(json_get(cs->u.arr.items[0], "template_session"))
                          : NULL;
    snprintf(st->session, sizeof(st->session), "%s", ses ? ses : "");
    rouse_arena_fini(&a);
    http_response_fini(&r);
}

#define WAIT_FOR(fn, st, cond)                                                                     \
    do {                                                                                           \
        int tries_ = 0;                                                                            \
        for (;; tries_++) {                                                                        \
            fn_get(fn, &st);                                                                       \
            if (cond) break;                                                                       \
            if (tries_ >= WAIT_TRIES) {                                                            \
                fprintf(stderr, "waited in vain for %s: %s\n", #cond, st.body);                    \
                fail();                                                                            \
            }                                                                                      \
            usleep(5000);                                                                          \
        }                                                                                          \
    } while (0)

/* Whether /proc/PID/maps names needle. */
static bool maps_has(int pid, const char *needle)
{
    char path[64], line[1024];
    snprintf(path, sizeof(path), "/proc/%d/maps", pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    bool found = false;
    while (!found && fgets(line, sizeof(line), f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

/* What GET /v2 says: "rouse": {"weight_pages": ...}. */
static void server_weight_pages(char out[16])
{
    http_response r;
    assert_int_equal(request("GET", "/v2", NULL, &r), 200);
    rouse_arena a;
    rouse_arena_init(&a, 0);
    json_value *root;
    assert_int_equal(json_parse(r.body.data, r.body.len, &a, &root, NULL), 0);
    const char *k = json_as_string(json_get(json_get(root, "rouse"), "weight_pages"));
    assert_non_null(k);
    snprintf(out, 16, "%s", k);
    rouse_arena_fini(&a);
    http_response_fini(&r);
}

/* Whether this machine can reserve a 2 MiB huge page now, and whether
 * transparent huge pages are on: what the test expects of "auto". */
static bool can_hugetlb(void)
{
    int fd = memfd_create("probe", MFD_CLOEXEC | MFD_HUGETLB);
    if (fd < 0) return false;
    void *m = MAP_FAILED;
    if (ftruncate(fd, 2 << 20) == 0)
        m = mmap(NULL, 2 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED) return false;
    munmap(m, 2 << 20);
    return true;
}

static bool thp_on(void)
{
    char buf[128] = "";
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (!f) return false;
    if (!fgets(buf, sizeof(buf), f)) buf[0] = '\0';
    fclose(f);
    return buf[0] && !strstr(buf, "[never]");
}

/* Runs serve with --weight-pages kind and expects it to refuse to start:
 * exit status `status` (1: the machine cannot give it, 2: a usage error)
 * and a message holding `why`. */
static void expect_exit(const char *kind, int status, const char *why)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "'%s' serve --port 0 --data '%s/refused' --weight-pages %s 2>&1",
             g_rouse, g_dir, kind);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char out[4096];
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    if (!strstr(out, why)) fprintf(stderr, "serve --weight-pages %s said: %s\n", kind, out);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == status);
    assert_non_null(strstr(out, why));
}

/* Starts from zero three times; checks each template's mapping of the plan
 * file. The first template may have started before the zygote had copied
 * the weights (the copy is made off the request path, when the deploy asks
 * for a warm-up): the later ones read the copy. */
static void starts_read(const char *kind)
{
    char plan[96];
    snprintf(plan, sizeof(plan), "%s.plan", g_digest + 7);
    deploy("wp", "\"max\":1,\"idle_timeout_ms\":50,\"template_ttl_ms\":400");
    int checked = 0;
    for (int round = 0; round < 3; round++) {
        char start[16];
        infer_ok("wp", round + 1, start);
        assert_string_equal(start, "zero");
        fn_state st;
        /* The template outlives its instance by template_ttl_ms: look now. */
        fn_get("wp", &st);
        int pid = st.tmpl_pid;
        bool mapped = pid > 0 && maps_has(pid, plan);
        bool hugetlb = pid > 0 && maps_has(pid, "rouse-weights");
        if (pid > 0 && proc_alive(pid) && round > 0) {
            checked++;
            if (strcmp(kind, "4k") == 0) {
                assert_true(mapped);
            } else {
                if (mapped) fprintf(stderr, "%s: template %d maps %s\n", kind, pid, plan);
                assert_false(mapped);
                assert_true(hugetlb == (strcmp(kind, "hugetlb") == 0));
            }
        }
        WAIT_FOR("wp", st, st.n_inst == 0 && st.n_tmpl == 0);
    }
    assert_true(checked > 0); /* a template was seen at least once */
    http_response r;
    assert_int_equal(request("DELETE", "/v1/functions/wp", NULL, &r), 200);
    http_response_fini(&r);
}

/* Whether /proc/PID/environ holds the entry `want` ("NAME=VALUE"). */
static bool environ_has(int pid, const char *want)
{
    char path[64], buf[65536];
    snprintf(path, sizeof(path), "/proc/%d/environ", pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    for (size_t i = 0; i < n; i += strlen(buf + i) + 1)
        if (strcmp(buf + i, want) == 0) return true;
    return false;
}

/* --- setup ------------------------------------------------------------------------ */

static int group_setup(void **state)
{
    (void)state;
    g_rouse = getenv("ROUSE");
    g_digits = getenv("DIGITS");
    if (!g_rouse || !g_digits) {
        fprintf(stderr, "ROUSE and DIGITS must be set\n");
        return -1;
    }
    rouse_errbuf eb;
    if (test_digit_samples(g_digits, g_samples) < 0) return -1;
    char model[512];
    snprintf(model, sizeof(model), "%s/model.onnx", g_digits);
    if (cli_file_slurp(model, &g_model, &g_model_len, &eb) < 0) return -1;
    snprintf(g_dir, sizeof(g_dir), "%s/rouse-coldstart-test-XXXXXX", test_tmp_dir());
    return mkdtemp(g_dir) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    if (g_srv.pid > 0) serve_proc_kill9(&g_srv);
    for (int d = 0; d < 10; d++)
        free(g_samples[d]);
    free(g_model);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* --- tests ------------------------------------------------------------------------ */

/* --weight-pages 4k: no copy, the templates map the plan file. */
static void test_weight_pages_4k(void **state)
{
    (void)state;
    const char *const args[] = {"--weight-pages", "4k", "--log-level", "warn", NULL};
    serve_up(args);
    char k[16];
    server_weight_pages(k);
    assert_string_equal(k, "4k");
    starts_read("4k");
    serve_down();
}

/* --weight-pages thp: a private copy advised MADV_HUGEPAGE, which the
 * templates read instead of the plan file; refused where THP is off. */
static void test_weight_pages_thp(void **state)
{
    (void)state;
    if (!thp_on()) {
        expect_exit("thp", 1, "transparent huge pages are off");
        return;
    }
    const char *const args[] = {"--weight-pages", "thp", "--log-level", "warn", NULL};
    serve_up(args);
    char k[16];
    server_weight_pages(k);
    assert_string_equal(k, "thp");
    starts_read("thp");
    serve_down();
}

/* --weight-pages hugetlb: a hugetlbfs memfd copy where huge pages can be
 * reserved; refused, naming vm.nr_hugepages, where none can. */
static void test_weight_pages_hugetlb(void **state)
{
    (void)state;
    if (!can_hugetlb()) {
        expect_exit("hugetlb", 1, "vm.nr_hugepages");
        return;
    }
    const char *const args[] = {"--weight-pages", "hugetlb", "--log-level", "warn", NULL};
    serve_up(args);
    char k[16];
    server_weight_pages(k);
    assert_string_equal(k, "hugetlb");
    starts_read("hugetlb");
    serve_down();
}

/* auto (the default) takes hugetlb, else 4k (thp only by name); a kind it does not
 * know is a usage error. */
static void test_weight_pages_auto(void **state)
{
    (void)state;
    const char *const args[] = {"--log-level", "warn", NULL};
    serve_up(args);
    char k[16];
    server_weight_pages(k);
    assert_string_equal(k, can_hugetlb() ? "hugetlb" : "4k");
    serve_down();
    expect_exit("1g", 2, "--weight-pages needs auto, hugetlb, thp or 4k");
}

typedef struct bg {
    const char *fn;
    int digit;
    int status;
    char start[16];
    pthread_t th;
} bg;

static void *bg_main(void *p)
{
    bg *a = p;
    http_response r;
    char url[128];
    snprintf(url, sizeof(url), "/v2/models/%s/infer", a->fn);
    a->status = request("POST", url, g_samples[a->digit], &r);
    if (a->status == 200 && test_logits_argmax(&r) != a->digit) a->status = -2; /* wrong answer */
    snprintf(a->start, sizeof(a->start), "%s", r.rouse_start);
    http_response_fini(&r);
    return NULL;
}

/* A template runs in an environment with LD_BIND_NOW=1 (it is forked by
 * the zygote serve exec'd with it, or exec'd with it itself): its
 * instances inherit its symbols resolved, and none resolves them again on
 * its first request. */
static void test_templates_bind_now(void **state)
{
    (void)state;
    const char *const args[] = {"--log-level", "warn", NULL};
    serve_up(args);
    deploy("bn", "\"max\":1,\"idle_timeout_ms\":60000,\"template_ttl_ms\":60000");
    char start[16];
    infer_ok("bn", 3, start);
    fn_state st;
    WAIT_FOR("bn", st, st.n_tmpl == 1 && st.tmpl_pid > 0);
    assert_true(environ_has(st.tmpl_pid, "LD_BIND_NOW=1"));
    /* It runs rouse-worker, which the build leaves beside rouse. */
    char link[64], exe[4096], want[4096];
    snprintf(link, sizeof(link), "/proc/%d/exe", st.tmpl_pid);
    ssize_t n = readlink(link, exe, sizeof(exe) - 1);
    assert_true(n > 0);
    exe[n] = '\0';
    char *real = realpath(g_rouse, NULL);
    assert_non_null(real);
    snprintf(want, sizeof(want), "%s-worker", real);
    free(real);
    if (access(want, X_OK) == 0) assert_string_equal(exe, want);
    serve_down();
}

/* Bursts against a function whose template has a warm spare: the spare
 * takes the first request with its spawn, the others wait for instances
 * forked directly or for those that finish first; every request is
 * answered once, rightly. Then the same with two requests per instance. */
static void test_spare_handoff_bursts(void **state)
{
    (void)state;
    const char *const args[] = {"--max-instances", "4", "--log-level", "warn", NULL};
    serve_up(args);
    const char *scalings[] = {
        "\"max\":4,\"idle_timeout_ms\":100,\"template_ttl_ms\":60000,\"queue_depth\":64",
        "\"max\":3,\"concurrency\":2,\"idle_timeout_ms\":100,\"template_ttl_ms\":60000,"
        "\"queue_depth\":64"};
    for (int s = 0; s < 2; s++) {
        deploy("hand", scalings[s]);
        char start[16];
        infer_ok("hand", 0, start); /* the template comes up */
        for (int round = 0; round < 4; round++) {
            fn_state st;
            WAIT_FOR("hand", st, st.n_inst == 0 && st.n_tmpl == 1 && st.n_warm_spares == 1);
            enum { N = 12 };
            bg a[N];
            for (int i = 0; i < N; i++) {
                memset(&a[i], 0, sizeof(a[i]));
                a[i].fn = "hand";
                a[i].digit = (i + round) % 10;
                assert_int_equal(pthread_create(&a[i].th, NULL, bg_main, &a[i]), 0);
            }
            int n_template = 0;
            for (int i = 0; i < N; i++) {
                pthread_join(a[i].th, NULL);
                if (a[i].status != 200)
                    fprintf(stderr, "burst %d/%d request %d: %d\n", s, round, i, a[i].status);
                assert_int_equal(a[i].status, 200);
                assert_true(strcmp(a[i].start, "template") == 0 ||
                            strcmp(a[i].start, "warm") == 0);
                n_template += strcmp(a[i].start, "template") == 0;
            }
            assert_true(n_template >= 1);
        }
        /* A single request after a burst: served by the spare, which serve
         * connected ahead of need (held). */
        fn_state st;
        WAIT_FOR("hand", st, st.n_inst == 0 && st.n_tmpl == 1 && st.n_connected_spares == 1);
        infer_ok("hand", 7, start);
        assert_string_equal(start, "template");
    }
    serve_down();
}

/* A template from zero takes its plan opened and its session prepared by
 * the zygote, which kept them when the model was deployed: its cold start
 * says "template_session": "zygote". The zygote does that off any
 * request's path, so the first start may come before it has: a few starts
 * from zero, the last of which must have taken the kept session. */
static void test_template_session_kept(void **state)
{
    (void)state;
    const char *const args[] = {"--log-level", "warn", NULL};
    serve_up(args);
    deploy("kept", "\"max\":1,\"idle_timeout_ms\":50,\"template_ttl_ms\":50");
    fn_state st;
    memset(&st, 0, sizeof(st));
    for (int i = 0; i < 5 && strcmp(st.session, "zygote") != 0; i++) {
        char start[16];
        infer_ok("kept", i, start);
        assert_string_equal(start, "zero");
        WAIT_FOR("kept", st, st.n_inst == 0 && st.n_tmpl == 0);
        assert_true(strcmp(st.session, "zygote") == 0 || strcmp(st.session, "prepared") == 0);
    }
    assert_string_equal(st.session, "zygote");
    serve_down();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_weight_pages_4k, test_teardown),
        cmocka_unit_test_teardown(test_weight_pages_thp, test_teardown),
        cmocka_unit_test_teardown(test_weight_pages_hugetlb, test_teardown),
        cmocka_unit_test_teardown(test_weight_pages_auto, test_teardown),
        cmocka_unit_test_teardown(test_spare_handoff_bursts, test_teardown),
        cmocka_unit_test_teardown(test_template_session_kept, test_teardown),
        cmocka_unit_test_teardown(test_templates_bind_now, test_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
