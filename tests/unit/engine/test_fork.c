/*
 * Fork safety: a session prepared for 1 or 2 threads starts no OpenMP team
 * (the process keeps a single thread), nor does rouse_engine_warm_gemv, so
 * children forked from it can run inference with 1 or 2 threads, as
 * template processes fork instances. Each
 * child must finish (alarm: a libgomp hang fails the test) with the same
 * outputs as the parent computes afterwards.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "onnx_builder.h"
#include "rouse/engine.h"

#define C 32
#define HW 20

static int count_threads(void)
{
    DIR *d = opendir("/proc/self/task");
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static rouse_model *conv_model(rouse_buf *bytes)
{
    ob_model *m = ob_model_new(13);
    int64_t xd[4] = {1, C, HW, HW}, wd[4] = {C, C, 3, 3}, k[2] = {3, 3}, pads[4] = {1, 1, 1, 1};
    ob_input(m, "x", ROUSE_DT_FLOAT, 4, xd);
    float *w = malloc(sizeof(float) * C * C * 9);
    assert_non_null(w);
    for (int i = 0; i < C * C * 9; i++)
        w[i] = (float)((i * 37) % 101) / 101.0f - 0.5f;
    ob_initializer(m, "w", ROUSE_DT_FLOAT, 4, wd, w, sizeof(float) * C * C * 9);
    ob_initializer(m, "w2", ROUSE_DT_FLOAT, 4, wd, w, sizeof(float) * C * C * 9);
    free(w);
    const char *in0[2] = {"x", "w"}, *c0 = "c0", *r0 = "r0", *in1[2] = {"r0", "w2"}, *y = "y";
    ob_node *n = ob_add_node(m, "Conv", "conv0", 2, in0, 1, &c0);
    ob_attr_ints(n, "kernel_shape", 2, k);
    ob_attr_ints(n, "pads", 4, pads);
    ob_add_node(m, "Relu", "relu0", 1, &c0, 1, &r0);
    n = ob_add_node(m, "Conv", "conv1", 2, in1, 1, &y);
    ob_attr_ints(n, "kernel_shape", 2, k);
    ob_attr_ints(n, "pads", 4, pads);
    ob_output_any(m, "y", ROUSE_DT_FLOAT);
    rouse_buf_init(bytes);
    ob_serialize(m, bytes);
    ob_model_free(m);
    rouse_errbuf eb;
    rouse_model *model;
    if (rouse_model_load_memory(bytes->data, bytes->len, &model, &eb) < 0) fail_msg("%s", eb.msg);
    return model;
}

static float x[C * HW * HW];

static int run(rouse_session *s, float *y)
{
    rouse_errbuf eb;
    rouse_tensor in = {.name = "x",
                       .dtype = ROUSE_DT_FLOAT,
                       .rank = 4,
                       .shape = {1, C, HW, HW},
                       .data = x,
                       .nbytes = sizeof(x)};
    if (rouse_session_run(s, &in, 1, &eb) < 0) return -1;
    rouse_tensor out;
    if (rouse_session_output(s, 0, &out) < 0) return -1;
    memcpy(y, out.data, out.nbytes);
    return 0;
}

static void fork_from_prepared_session(int threads)
{
    for (int i = 0; i < C * HW * HW; i++)
        x[i] = (float)(i % 17) / 17.0f - 0.3f;
    rouse_buf bytes;
    rouse_model *m = conv_model(&bytes);
    rouse_errbuf eb;
    rouse_session *s;
    rouse_session_options o = {.threads = threads};
    assert_int_equal(rouse_session_create(m, &o, &s, &eb), 0);
    /* Preparing ran no parallel region, nor did making the one-row GEMM
     * kernels as a generator's template does: no OpenMP worker threads
     * exist. */
    rouse_engine_warm_gemv();
    assert_int_equal(count_threads(), 1);

    static float child_y[2][C * HW * HW];
    int fds[2][2];
    pid_t pid[2];
    for (int c = 0; c < 2; c++) {
        assert_int_equal(pipe(fds[c]), 0);
        pid[c] = fork();
        assert_true(pid[c] >= 0);
        if (pid[c] == 0) {
            alarm(20); /* a libgomp deadlock ends the child, and fails the test */
            float *y = malloc(sizeof(child_y[0]));
            if (!y || run(s, y) < 0) _exit(2);
            size_t left = sizeof(child_y[0]);
            const char *p = (const char *)y;
            while (left) {
                ssize_t w = write(fds[c][1], p, left);
                if (w <= 0) _exit(3);
                p += w;
                left -= (size_t)w;
            }
            _exit(0);
        }
        close(fds[c][1]);
    }
    for (int c = 0; c < 2; c++) {
        size_t got = 0;
        char *p = (char *)child_y[c];
        ssize_t r;
        while (got < sizeof(child_y[c]) &&
               (r = read(fds[c][0], p + got, sizeof(child_y[c]) - got)) > 0)
            got += (size_t)r;
        int st;
        assert_int_equal(waitpid(pid[c], &st, 0), pid[c]);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            fail_msg("child %d with %d threads did not finish cleanly (status 0x%x)", c, threads,
                     st);
        assert_int_equal(got, sizeof(child_y[c]));
        close(fds[c][0]);
    }
    static float parent_y[C * HW * HW];
    assert_int_equal(run(s, parent_y), 0);
    for (int c = 0; c < 2; c++)
        assert_memory_equal(child_y[c], parent_y, sizeof(parent_y));
    rouse_session_destroy(s);
    rouse_model_destroy(m);
    rouse_buf_fini(&bytes);
}

static void fork_one_thread(void **state)
{
    (void)state;
    fork_from_prepared_session(1);
}

static void fork_two_threads(void **state)
{
    (void)state;
    fork_from_prepared_session(2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fork_one_thread),
        cmocka_unit_test(fork_two_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
