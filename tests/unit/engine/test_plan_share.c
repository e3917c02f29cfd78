/*
 * Processes that open the same compiled plan share its pages: two processes
 * run a model with 32 MiB of weights from one plan, and /proc/PID/smaps must
 * show the plan's weights as clean pages shared between them, while opening
 * the plan adds little private memory to a process.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "onnx_builder.h"
#include "rouse/engine.h"
#include "tmp_dir.h"

#define K_IN 2048
#define N_OUT 4096
#define WEIGHT_KB ((long)K_IN * N_OUT * 4 / 1024)

/* Sum of a field ("Private_Dirty:") over the mappings of `path` (NULL: all). */
static long smaps_kb(pid_t pid, const char *path, const char *field)
{
    char name[64];
    snprintf(name, sizeof(name), "/proc/%d/smaps", (int)pid);
    FILE *f = fopen(name, "r");
    if (!f) return -1;
    char line[1024];
    bool in = path == NULL;
    long total = 0;
    size_t flen = strlen(field);
    while (fgets(line, sizeof(line), f)) {
        size_t tok = strcspn(line, " \t\n");
        bool is_field = tok > 0 && line[tok - 1] == ':';
        if (!is_field) { /* a mapping header: "lo-hi perms offset dev inode path" */
            if (path) in = strstr(line, path) != NULL;
            continue;
        }
        if (in && strncmp(line, field, flen) == 0) total += strtol(line + flen, NULL, 10);
    }
    fclose(f);
    return total;
}

static long private_kb(pid_t pid)
{
    return smaps_kb(pid, NULL, "Private_Clean:") + smaps_kb(pid, NULL, "Private_Dirty:");
}

static char plan_path[256];

static void write_plan(void)
{
    ob_model *m = ob_model_new(13);
    int64_t xd[2] = {1, K_IN}, wd[2] = {N_OUT, K_IN};
    ob_input(m, "x", ROUSE_DT_FLOAT, 2, xd);
    float *w = malloc(sizeof(float) * K_IN * N_OUT);
    assert_non_null(w);
    for (long i = 0; i < (long)K_IN * N_OUT; i++)
        w[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
    ob_initializer(m, "w", ROUSE_DT_FLOAT, 2, wd, w, sizeof(float) * K_IN * N_OUT);
    free(w);
    const char *ins[2] = {"x", "w"}, *g = "g", *y = "y";
    ob_node *n = ob_add_node(m, "Gemm", "fc", 2, ins, 1, &g);
    ob_attr_int(n, "transB", 1);
    ob_add_node(m, "Relu", "relu", 1, &g, 1, &y);
    ob_output_any(m, "y", ROUSE_DT_FLOAT);
    rouse_buf bytes;
    rouse_buf_init(&bytes);
    ob_serialize(m, &bytes);
    ob_model_free(m);
    rouse_errbuf eb;
    rouse_model *model;
    assert_int_equal(rouse_model_load_memory(bytes.data, bytes.len, &model, &eb), 0);
    snprintf(plan_path, sizeof(plan_path), "%s/rouse-share-%d.plan", test_tmp_dir(), (int)getpid());
    if (rouse_model_compile(model, plan_path, &eb) < 0) fail_msg("compile: %s", eb.msg);
    rouse_model_destroy(model);
    rouse_buf_fini(&bytes);
}

/* Child: open, report private growth, prepare, run, report, wait. */
static void child(int report_fd, int wait_fd)
{
    rouse_errbuf eb;
    long before = private_kb(getpid());
    rouse_model *m;
    if (rouse_model_open_plan(plan_path, &m, &eb) < 0) _exit(10);
    long after = private_kb(getpid());
    rouse_session *s;
    if (rouse_session_create(m, NULL, &s, &eb) < 0) _exit(11);
    static float x[K_IN];
    for (int i = 0; i < K_IN; i++)
        x[i] = (float)(i % 13) / 13.0f;
    rouse_tensor in = {.name = "x",
                       .dtype = ROUSE_DT_FLOAT,
                       .rank = 2,
                       .shape = {1, K_IN},
                       .data = x,
                       .nbytes = sizeof(x)};
    if (rouse_session_run(s, &in, 1, &eb) < 0) _exit(12);
    long growth = after - before;
    if (write(report_fd, &growth, sizeof(growth)) != sizeof(growth)) _exit(13);
    char c;
    if (read(wait_fd, &c, 1) < 0) _exit(14);
    rouse_session_destroy(s);
    rouse_model_destroy(m);
    _exit(0);
}

static void weights_are_shared_clean_pages(void **state)
{
    (void)state;
    write_plan();
    int rep[2], go[2];
    assert_int_equal(pipe(rep), 0);
    assert_int_equal(pipe(go), 0);
    pid_t pids[2];
    for (int i = 0; i < 2; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            close(rep[0]);
            close(go[1]);
            child(rep[1], go[0]);
        }
    }
    close(rep[1]);
    close(go[0]);
    long growth[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(read(rep[0], &growth[i], sizeof(long)), sizeof(long));

    const char *base = strrchr(plan_path, '/') + 1;
    for (int i = 0; i < 2; i++) {
        long shared = smaps_kb(pids[i], base, "Shared_Clean:");
        long dirty =
            smaps_kb(pids[i], base, "Private_Dirty:") + smaps_kb(pids[i], base, "Shared_Dirty:");
        print_message("process %d: plan pages shared clean %ld kB of %ld kB weights; "
                      "private growth on open %ld kB\n",
                      i, shared, WEIGHT_KB, growth[i]);
        /* The kernel reads the weights in place: all of them are resident
         * and shared by both processes; none were written. */
        assert_true(shared >= WEIGHT_KB * 9 / 10);
        assert_int_equal(dirty, 0);
        /* Opening maps, it does not copy: private memory grows by far less
         * than the weights weigh. */
        assert_true(growth[i] < WEIGHT_KB / 20);
    }
    assert_int_equal(write(go[1], "xx", 2), 2);
    for (int i = 0; i < 2; i++) {
        int st;
        assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
    close(rep[0]);
    close(go[1]);
    unlink(plan_path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(weights_are_shared_clean_pages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
