/*
 * A model with more than 2 GiB of weights (past protobuf's limit, so held as
 * ONNX external data): y = ((x @ W1) @ W2) @ W3 with W1 and W2 of
 * 16384 x 16384 floats (1 GiB each) and W3 of 16384 x 64, written at test
 * time with values from a formula. It loads with its weights mapped in
 * place, runs, and matches the product computed here in double precision;
 * its compiled plan (over 2 GiB too) opens mapped, gives the same outputs
 * bit for bit, runs from the mapping (under 1 GiB of anonymous memory: the
 * weights stay pages of the plan file, shared by every process that maps
 * it, not copies), and the time to open it is printed.
 *
 *   ROUSE_LONG_TESTS=1 engine_bigmodel [DIR]
 *
 * DIR (default $TMPDIR or /tmp) needs ~7 GB free. Labelled `long` (minutes,
 * gigabytes of disk and memory): skipped (exit 77) unless ROUSE_LONG_TESTS
 * is set; run it with `make test-long`, i.e.
 * `ROUSE_LONG_TESTS=1 ctest --test-dir build -L long`.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "onnx_builder.h"
#include "rouse/engine.h"
#include "tmp_dir.h"

#define D 16384
#define OUT 64

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Weight (i, j) of matrix `which`: small integers over 2^14, exact in float. */
static float wval(int which, int64_t i, int64_t j)
{
    int64_t v = (i * 131 + j * 71 + which * 17) % 257 - 128;
    return (float)v / 16384.0f;
}

static int write_weights(const char *path)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    float *row = malloc(sizeof(float) * D);
    int rc = row ? 0 : -1;
    for (int which = 1; which <= 3 && rc == 0; which++) {
        int64_t cols = which == 3 ? OUT : D;
        for (int64_t i = 0; i < D && rc == 0; i++) {
            for (int64_t j = 0; j < cols; j++)
                row[j] = wval(which, i, j);
            if (fwrite(row, sizeof(float), (size_t)cols, f) != (size_t)cols) rc = -1;
        }
    }
    free(row);
    if (fclose(f) != 0) rc = -1;
    return rc;
}

static int write_model(const char *path)
{
    ob_model *m = ob_model_new(13);
    int64_t xd[2] = {1, D}, sq[2] = {D, D}, last[2] = {D, OUT}, yd[2] = {1, OUT};
    int64_t big = (int64_t)sizeof(float) * D * D;
    ob_input(m, "x", ROUSE_DT_FLOAT, 2, xd);
    ob_initializer_external(m, "W1", ROUSE_DT_FLOAT, 2, sq, "weights.bin", 0, big);
    ob_initializer_external(m, "W2", ROUSE_DT_FLOAT, 2, sq, "weights.bin", big, big);
    ob_initializer_external(m, "W3", ROUSE_DT_FLOAT, 2, last, "weights.bin", 2 * big,
                            (int64_t)sizeof(float) * D * OUT);
    const char *a_in[2] = {"x", "W1"}, *a = "a", *b_in[2] = {"a", "W2"}, *b = "b";
    const char *y_in[2] = {"b", "W3"}, *y = "y";
    ob_add_node(m, "MatMul", "mm1", 2, a_in, 1, &a);
    ob_add_node(m, "MatMul", "mm2", 2, b_in, 1, &b);
    ob_add_node(m, "MatMul", "mm3", 2, y_in, 1, &y);
    ob_output(m, "y", ROUSE_DT_FLOAT, 2, yd);
    rouse_buf buf;
    rouse_buf_init(&buf);
    ob_serialize(m, &buf);
    ob_model_free(m);
    FILE *f = fopen(path, "wb");
    int rc = f && fwrite(buf.data, 1, buf.len, f) == buf.len ? 0 : -1;
    if (f && fclose(f) != 0) rc = -1;
    rouse_buf_fini(&buf);
    return rc;
}

/* v (length n) @ matrix `which` (n x cols) in double. */
static void vecmat(const double *v, int which, int64_t cols, double *out)
{
    for (int64_t j = 0; j < cols; j++)
        out[j] = 0;
    for (int64_t i = 0; i < D; i++)
        for (int64_t j = 0; j < cols; j++)
            out[j] += v[i] * (double)wval(which, i, j);
}

/* A field of /proc/self/smaps_rollup in KiB, or -1. */
static long smaps_kib(const char *field)
{
    FILE *f = fopen("/proc/self/smaps_rollup", "r");
    if (!f) return -1;
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, field, n) == 0 && line[n] == ':') v = strtol(line + n + 1, NULL, 10);
    fclose(f);
    return v;
}

/* After the last run: resident memory, and the anonymous part of it (copies
 * the engine made; pages of mapped files, even mapped by this process alone,
 * are not anonymous). */
static long plan_anon_kib = -1, plan_rss_kib = -1;

static int run(rouse_model *m, const float *x, float *y, rouse_errbuf *eb)
{
    rouse_session *s = NULL;
    int rc = rouse_session_create(m, NULL, &s, eb);
    if (rc < 0) return rc;
    rouse_tensor in = {.name = "x",
                       .dtype = ROUSE_DT_FLOAT,
                       .rank = 2,
                       .shape = {1, D},
                       .data = x,
                       .nbytes = sizeof(float) * D};
    double t0 = now_ms();
    if ((rc = rouse_session_run(s, &in, 1, eb)) == 0) {
        rouse_tensor o;
        rc = rouse_session_output(s, 0, &o);
        if (rc == 0) memcpy(y, o.data, sizeof(float) * OUT);
    }
    printf("first_run_ms %.1f\n", now_ms() - t0);
    plan_anon_kib = smaps_kib("Anonymous");
    plan_rss_kib = smaps_kib("Rss");
    printf("rss %.2f GiB, anonymous %.2f GiB\n", (double)plan_rss_kib / (1 << 20),
           (double)plan_anon_kib / (1 << 20));
    rouse_session_destroy(s);
    return rc;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!getenv("ROUSE_LONG_TESTS")) {
        printf("skipped: a long test (set ROUSE_LONG_TESTS=1, or run make test-long)\n");
        return 77;
    }
    const char *base = argc > 1 ? argv[1] : test_tmp_dir();
    char dir[4096], model[4200], data[4200], plan[4200];
    snprintf(dir, sizeof(dir), "%s/rouse-bigmodel-XXXXXX", base);
    if (!mkdtemp(dir)) {
        fprintf(stderr, "FAIL: %s: %s\n", dir, strerror(errno));
        return 1;
    }
    snprintf(model, sizeof(model), "%s/model.onnx", dir);
    snprintf(data, sizeof(data), "%s/weights.bin", dir);
    snprintf(plan, sizeof(plan), "%s/model.plan", dir);
    int status = 1;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    rouse_model *m = NULL;
    float *x = malloc(sizeof(float) * D), y[OUT], yp[OUT];
    double *v = malloc(sizeof(double) * D), *w = malloc(sizeof(double) * D), ref[OUT];
    if (!x || !v || !w) goto out;

    double t0 = now_ms();
    if (write_weights(data) < 0 || write_model(model) < 0) {
        fprintf(stderr, "FAIL: cannot write the model under %s: %s\n", dir, strerror(errno));
        goto out;
    }
    struct stat sb;
    stat(data, &sb);
    printf("weights %.2f GiB written in %.0f ms\n", (double)sb.st_size / (1 << 30),
           now_ms() - t0);

    for (int i = 0; i < D; i++) {
        x[i] = (float)((i * 7) % 19 - 9) / 8.0f;
        v[i] = x[i];
    }
    vecmat(v, 1, D, w);
    vecmat(w, 2, D, v);
    vecmat(v, 3, OUT, ref);

    t0 = now_ms();
    if (rouse_model_load(model, &m, &eb) < 0) {
        fprintf(stderr, "FAIL: load: %s\n", eb.msg);
        goto out;
    }
    printf("load_ms %.1f\n", now_ms() - t0);
    if (run(m, x, y, &eb) < 0) {
        fprintf(stderr, "FAIL: run: %s\n", eb.msg);
        goto out;
    }
    for (int j = 0; j < OUT; j++) {
        if (fabs(y[j] - ref[j]) > 1e-4 + 1e-3 * fabs(ref[j])) {
            fprintf(stderr, "FAIL: y[%d] = %.6g, want %.6g\n", j, (double)y[j], ref[j]);
            goto out;
        }
    }
    printf("outputs match the double-precision product (y[0] = %.6g)\n", (double)y[0]);

    t0 = now_ms();
    if (rouse_model_compile(m, plan, &eb) < 0) {
        fprintf(stderr, "FAIL: compile: %s\n", eb.msg);
        goto out;
    }
    rouse_model_destroy(m);
    m = NULL;
    stat(plan, &sb);
    printf("plan %.2f GiB compiled in %.0f ms\n", (double)sb.st_size / (1 << 30), now_ms() - t0);
    if (sb.st_size <= (off_t)2 << 30) {
        fprintf(stderr, "FAIL: the plan is not over 2 GiB\n");
        goto out;
    }
    t0 = now_ms();
    if (rouse_model_open_plan(plan, &m, &eb) < 0) {
        fprintf(stderr, "FAIL: open plan: %s\n", eb.msg);
        goto out;
    }
    printf("plan_open_ms %.3f\n", now_ms() - t0);
    if (run(m, x, yp, &eb) < 0) {
        fprintf(stderr, "FAIL: run plan: %s\n", eb.msg);
        goto out;
    }
    if (memcmp(y, yp, sizeof(y)) != 0) {
        fprintf(stderr, "FAIL: the plan's outputs differ from the .onnx's\n");
        goto out;
    }
    /* The plan's weights are used from its mapping: file pages, not an
     * anonymous copy of the 2 GiB. */
    if (plan_anon_kib < 0 || plan_anon_kib > (1L << 20)) {
        fprintf(stderr, "FAIL: %ld KiB of anonymous memory after running the plan\n",
                plan_anon_kib);
        goto out;
    }
    printf("plan outputs equal the .onnx outputs\n");
    status = 0;
out:
    rouse_model_destroy(m);
    unlink(plan);
    unlink(model);
    unlink(data);
    rmdir(dir);
    free(x);
    free(v);
    free(w);
    return status;
}
