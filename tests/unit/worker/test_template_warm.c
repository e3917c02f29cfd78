/*
 * Unit tests of template_warm (worker/template.h) on the digits example:
 * it prepares a model whose plan is in the plan cache (1), remembers it (0
 * the second time, per thread count), never compiles a missing plan (an
 * error, and no file appears), and refuses options without a digest; and a
 * process forked after the warm-up prepares the same model and runs it to
 * the same outputs, bit for bit, as one whose kernel cache was emptied.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dnnl.h>

#include "rouse/engine.h"
#include "worker/template.h"
#include "tmp_dir.h"

static char g_dir[256], g_hex[65];

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof(g_dir), "%s/rouse-warm-XXXXXX", test_tmp_dir());
    if (!mkdtemp(g_dir)) return -1;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    rouse_model *m;
    if (rouse_model_load(ROUSE_DIGITS "/model.onnx", &m, &eb) < 0) return -1;
    uint8_t sha[32];
    if (rouse_model_source_sha256(m, sha) < 0) return -1;
    for (int i = 0; i < 32; i++)
        snprintf(g_hex + 2 * i, 3, "%02x", sha[i]);
    char plan[400];
    snprintf(plan, sizeof(plan), "%s/%s.plan", g_dir, g_hex);
    int rc = rouse_model_compile(m, plan, &eb);
    rouse_model_destroy(m);
    return rc;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[320];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_warms_once(void **state)
{
    (void)state;
    template_opts o = {
        .fd = -1, .model_path = "unused", .plan_cache = g_dir, .model_sha256 = g_hex, .threads = 1};
    assert_int_equal(template_warm(&o), 1);
    assert_int_equal(template_warm(&o), 0);
    o.threads = 2; /* kernels are made for a team size */
    assert_int_equal(template_warm(&o), 1);
    assert_int_equal(template_warm(&o), 0);
}

static void test_never_compiles(void **state)
{
    (void)state;
    const char *other = "0000000000000000000000000000000000000000000000000000000000000000";
    template_opts o = {.fd = -1,
                       .model_path = ROUSE_DIGITS "/model.onnx",
                       .plan_cache = g_dir,
                       .model_sha256 = other,
                       .threads = 1};
    assert_true(template_warm(&o) < 0);
    char plan[400];
    struct stat st;
    snprintf(plan, sizeof(plan), "%s/%s.plan", g_dir, other);
    assert_int_equal(stat(plan, &st), -1);
    o.model_sha256 = NULL;
    assert_true(template_warm(&o) < 0);
    o.model_sha256 = g_hex;
    o.plan_cache = NULL;
    assert_true(template_warm(&o) < 0);
}

/* Prepares the plan in a fresh child (with oneDNN's primitive cache
 * emptied first when `cold`) and writes its outputs to fd. */
static void run_in_child(int fd, bool cold)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (cold && (dnnl_set_primitive_cache_capacity(0) != dnnl_success ||
                     dnnl_set_primitive_cache_capacity(1024) != dnnl_success))
            _exit(1);
        rouse_errbuf eb;
        rouse_errbuf_clear(&eb);
        char plan[400];
        snprintf(plan, sizeof(plan), "%s/%s.plan", g_dir, g_hex);
        rouse_model *m;
        rouse_session *s;
        rouse_session_options so = {.threads = 1};
        if (rouse_model_open_plan(plan, &m, &eb) < 0 || rouse_session_create(m, &so, &s, &eb) < 0)
            _exit(1);
        rouse_tensor_info in;
        if (rouse_model_input(m, 0, &in) < 0) _exit(1);
        float x[64];
        for (int i = 0; i < 64; i++)
            x[i] = (float)(i % 17) / 17.0f;
        rouse_tensor t = {
            .name = in.name, .dtype = in.dtype, .rank = in.rank, .data = x, .nbytes = sizeof(x)};
        for (int k = 0; k < in.rank; k++)
            t.shape[k] = in.shape[k] < 0 ? 1 : in.shape[k];
        rouse_tensor out;
        if (rouse_session_run(s, &t, 1, &eb) < 0 || rouse_session_output(s, 0, &out) < 0) {
            fprintf(stderr, "run: %s\n", eb.msg);
            _exit(1);
        }
        _exit(write(fd, out.data, out.nbytes) == (ssize_t)out.nbytes ? 0 : 1);
    }
    int ws;
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
}

/* Kernels from the cache compute what freshly generated ones do. */
static void test_same_outputs(void **state)
{
    (void)state;
    float a[10], b[10];
    int p[2];
    assert_int_equal(pipe(p), 0);
    run_in_child(p[1], false); /* this process warmed the model: from the cache */
    assert_int_equal(read(p[0], a, sizeof(a)), (ssize_t)sizeof(a));
    run_in_child(p[1], true);
    assert_int_equal(read(p[0], b, sizeof(b)), (ssize_t)sizeof(b));
    close(p[0]);
    close(p[1]);
    assert_memory_equal(a, b, sizeof(a));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_warms_once),
        cmocka_unit_test(test_never_compiles),
        cmocka_unit_test(test_same_outputs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
