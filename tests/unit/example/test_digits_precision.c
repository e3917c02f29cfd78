/*
 * The trained digits model (examples/digits) compiled at fp32, bf16 and
 * int8: each plan classifies the test split (test_split/, 450 images never
 * seen in training) and must stay within 0.5 points of fp32's accuracy. The
 * three accuracies are printed. Calibration samples are the first 200 train
 * images (calibration/pixels.npy, stacked on the batch axis); bf16 measures
 * its agreement with fp32 on them, int8 holds back a fifth. Until the int8
 * quantizer is part of the build, int8 says so and is left out.
 *
 * Usage: test_digits_precision DIGITS_DIR TMP_DIR
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/samples.h"
#include "cli/tensor_file.h"
#include "rouse/engine.h"

static int accuracy(const char *plan, const cli_tensor *px, const cli_tensor *labels, double *acc,
                    rouse_errbuf *eb)
{
    rouse_model *m = NULL;
    rouse_session *s = NULL;
    int rc = rouse_model_open_plan(plan, &m, eb);
    if (rc == 0) rc = rouse_session_create(m, NULL, &s, eb);
    rouse_tensor in = cli_tensor_view(px, "pixels");
    if (rc == 0) rc = rouse_session_run(s, &in, 1, eb);
    rouse_tensor out;
    if (rc == 0) rc = rouse_session_output(s, 0, &out);
    if (rc == 0) {
        const float *l = out.data;
        const int64_t *y = labels->data;
        int64_t n = px->shape[0], ok = 0;
        for (int64_t i = 0; i < n; i++) {
            int best = 0;
            for (int k = 1; k < 10; k++)
                if (l[i * 10 + k] > l[i * 10 + best]) best = k;
            ok += best == y[i];
        }
        *acc = 100.0 * (double)ok / (double)n;
    }
    rouse_session_destroy(s);
    rouse_model_destroy(m);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s DIGITS_DIR TMP_DIR\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1], *tmp = argv[2];
    char path[4096], plan[4096];
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    cli_tensor px = {0}, labels = {0};
    snprintf(path, sizeof(path), "%s/test_split/pixels.npy", dir);
    int rc = cli_tensor_read_file(path, &px, &eb);
    snprintf(path, sizeof(path), "%s/test_split/labels.npy", dir);
    if (rc == 0) rc = cli_tensor_read_file(path, &labels, &eb);
    if (rc < 0 || px.rank != 2 || px.shape[1] != 64 || labels.dtype != ROUSE_DT_INT64 ||
        labels.shape[0] != px.shape[0]) {
        fprintf(stderr, "FAIL: test split: %s\n", rc < 0 ? eb.msg : "unexpected shapes");
        return 1;
    }
    static const int precs[] = {ROUSE_PRECISION_FP32, ROUSE_PRECISION_BF16, ROUSE_PRECISION_INT8};
    double acc[3] = {0, 0, 0};
    bool have[3] = {false, false, false};
    int fail = 0;
    for (int i = 0; i < 3; i++) {
        const char *name = rouse_precision_name(precs[i]);
        rouse_model *m = NULL;
        rouse_samples *cal = NULL;
        snprintf(path, sizeof(path), "%s/model.onnx", dir);
        snprintf(plan, sizeof(plan), "%s/digits_%s.plan", tmp, name);
        rc = rouse_model_load(path, &m, &eb);
        snprintf(path, sizeof(path), "%s/calibration", dir);
        if (rc == 0) rc = cli_samples_read(path, m, &cal, &eb);
        if (rc == 0 && cal->n_samples != 200) {
            fprintf(stderr, "FAIL: %d calibration samples, expected 200\n", cal->n_samples);
            fail = 1;
        }
        rouse_compile_options o = {.precision = precs[i], .calibration = cal};
        if (rc == 0) rc = rouse_model_compile_with(m, plan, &o, &eb);
        rouse_samples_destroy(cal);
        rouse_model_destroy(m);
        if (rc == ROUSE_EUNSUPPORTED && precs[i] == ROUSE_PRECISION_INT8) {
            printf("int8: %s (left out)\n", eb.msg);
            continue;
        }
        if (rc == 0) rc = accuracy(plan, &px, &labels, &acc[i], &eb);
        unlink(plan);
        if (rc < 0) {
            fprintf(stderr, "FAIL: %s: %s\n", name, eb.msg);
            fail = 1;
            continue;
        }
        have[i] = true;
        printf("%s: test-split accuracy %.2f%% (%lld images)\n", name, acc[i],
               (long long)px.shape[0]);
    }
    if (!have[0] || acc[0] < 95.0) {
        fprintf(stderr, "FAIL: fp32 accuracy %.2f%% (the model is stated at 98.9%%)\n", acc[0]);
        fail = 1;
    }
    for (int i = 1; i < 3; i++) {
        if (have[i] && fabs(acc[i] - acc[0]) > 0.5) {
            fprintf(stderr, "FAIL: %s accuracy %.2f%% is more than 0.5 points from fp32's %.2f%%\n",
                    rouse_precision_name(precs[i]), acc[i], acc[0]);
            fail = 1;
        }
    }
    if (!have[1] && !fail) {
        fprintf(stderr, "FAIL: bf16 was not measured\n");
        fail = 1;
    }
    cli_tensor_fini(&px);
    cli_tensor_fini(&labels);
    printf(fail ? "FAIL\n" : "PASS\n");
    return fail;
}
