/*
 * The dynamic-batch resnet18 at batch 8 (a shape none of its test sets use):
 * the output is [8, 1000], each row equals running that row alone at batch 1,
 * and running batch 8 again after the batch-1 runs (both plans cached in the
 * session: no re-plan) gives the first result again. The model's compiled
 * plan serves batches 8 and 1 in one session too, bit-identical to the .onnx.
 *
 *   engine_dynbatch MODEL_DIR      exits 77 when MODEL_DIR is absent
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/tensor_compare.h"
#include "cli/tensor_file.h"
#include "rouse/engine.h"
#include "tmp_dir.h"

#define BATCH 8
#define CLASSES 1000

static int check(int ok, const char *what, const rouse_errbuf *eb)
{
    if (!ok)
        fprintf(stderr, "FAIL: %s%s%s\n", what, eb && eb->msg[0] ? ": " : "", eb ? eb->msg : "");
    return ok;
}

/* Runs s on `input` and copies the [rows, CLASSES] output into out. */
static int run_rows(rouse_session *s, const char *name, const float *input, int rows, float *out,
                    rouse_errbuf *eb)
{
    rouse_tensor in = {.name = name,
                       .dtype = ROUSE_DT_FLOAT,
                       .rank = 4,
                       .shape = {rows, 3, 224, 224},
                       .data = input,
                       .nbytes = sizeof(float) * (size_t)rows * 3 * 224 * 224};
    int rc = rouse_session_run(s, &in, 1, eb);
    if (rc < 0) return rc;
    rouse_tensor o;
    if ((rc = rouse_session_output(s, 0, &o)) < 0) return rouse_err_set(eb, rc, "no output 0");
    if (o.dtype != ROUSE_DT_FLOAT || o.rank != 2 || o.shape[0] != rows || o.shape[1] != CLASSES)
        return rouse_err_set(eb, ROUSE_EMISMATCH,
                             "output has rank %d shape [%lld, %lld], want [%d, %d]", o.rank,
                             (long long)o.shape[0], (long long)o.shape[1], rows, CLASSES);
    memcpy(out, o.data, sizeof(float) * (size_t)rows * CLASSES);
    return 0;
}

static rouse_tensor row_view(const float *data)
{
    return (rouse_tensor){.name = "logits",
                          .dtype = ROUSE_DT_FLOAT,
                          .rank = 2,
                          .shape = {1, CLASSES},
                          .data = data,
                          .nbytes = sizeof(float) * CLASSES};
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: engine_dynbatch MODEL_DIR\n");
        return 2;
    }
    struct stat st;
    if (stat(argv[1], &st) != 0) {
        printf("skipped: ../shared/models not found\n");
        return 77;
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/model.onnx", argv[1]);
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    rouse_model *m = NULL;
    rouse_session *s = NULL;
    int ok = 0;
    const size_t img = 3 * 224 * 224;
    float *input = malloc(sizeof(float) * img * BATCH);
    float *batch = malloc(sizeof(float) * CLASSES * BATCH);
    float *again = malloc(sizeof(float) * CLASSES * BATCH);
    float single[CLASSES];
    if (!input || !batch || !again) {
        fprintf(stderr, "FAIL: out of memory\n");
        goto out;
    }
    /* Deterministic, different per row, in [-1, 1). */
    unsigned long long x = 88172645463325252ull;
    for (size_t i = 0; i < img * BATCH; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        input[i] = (float)((double)(x >> 40) / (double)(1 << 23) - 1.0);
    }
    if (!check(rouse_model_load(path, &m, &eb) == 0, "load", &eb)) goto out;
    rouse_tensor_info info;
    if (!check(rouse_model_input(m, 0, &info) == 0, "input 0", NULL)) goto out;
    if (!check(rouse_session_create(m, &(rouse_session_options){.threads = 1}, &s, &eb) == 0,
               "session", &eb))
        goto out;
    if (!check(run_rows(s, info.name, input, BATCH, batch, &eb) == 0, "batch 8 run", &eb)) goto out;
    printf("batch %d: output [%d, %d]\n", BATCH, BATCH, CLASSES);

    ok = 1;
    for (int b = 0; b < BATCH; b++) {
        if (!check(run_rows(s, info.name, input + img * (size_t)b, 1, single, &eb) == 0,
                   "batch 1 run", &eb)) {
            ok = 0;
            break;
        }
        rouse_tensor got = row_view(batch + (size_t)b * CLASSES), ref = row_view(single);
        cli_compare_result r;
        int rc = cli_tensor_compare(&got, &ref, CLI_TOL_DEFAULT, &r, &eb);
        printf("row %d: %s max_abs=%.3g max_rel=%.3g\n", b, rc == 0 ? "PASS" : "FAIL", r.max_abs,
               r.max_rel);
        if (!check(rc == 0, "row equals its batch-1 run", &eb)) ok = 0;
    }
    if (ok && check(run_rows(s, info.name, input, BATCH, again, &eb) == 0, "batch 8 rerun", &eb)) {
        rouse_tensor got = {.name = "logits",
                            .dtype = ROUSE_DT_FLOAT,
                            .rank = 2,
                            .shape = {BATCH, CLASSES},
                            .data = again,
                            .nbytes = sizeof(float) * BATCH * CLASSES};
        rouse_tensor ref = got;
        ref.data = batch;
        cli_compare_result r;
        int rc = cli_tensor_compare(&got, &ref, CLI_TOL_DEFAULT, &r, &eb);
        printf("batch %d again: %s max_abs=%.3g\n", BATCH, rc == 0 ? "PASS" : "FAIL", r.max_abs);
        if (!check(rc == 0, "batch 8 after batch 1 equals the first batch 8", &eb)) ok = 0;
    } else {
        ok = 0;
    }
    rouse_plan_cache_stats cs;
    rouse_session_get_plan_cache(s, &cs);
    printf("plan cache: %d plans, %llu hits, %llu misses\n", cs.entries,
           (unsigned long long)cs.hits, (unsigned long long)cs.misses);
    if (ok && !check(cs.entries == 2 && cs.misses == 2 && cs.hits == BATCH, "two plans, the rest hits",
                     NULL))
        ok = 0;

    /* The compiled plan: one session, batch 8 then 1 then 8. */
    char plan[4096];
    snprintf(plan, sizeof(plan), "%s/rouse-dynbatch-XXXXXX", test_tmp_dir());
    int fd = mkstemp(plan);
    if (ok && !check(fd >= 0, "temporary plan file", NULL)) ok = 0;
    if (fd >= 0) close(fd);
    if (ok && check(rouse_model_compile(m, plan, &eb) == 0, "compile", &eb)) {
        rouse_model *pm = NULL;
        rouse_session *ps = NULL;
        if (check(rouse_model_open_plan(plan, &pm, &eb) == 0, "open plan", &eb) &&
            check(rouse_session_create(pm, NULL, &ps, &eb) == 0, "plan session", &eb) &&
            check(run_rows(ps, info.name, input, BATCH, again, &eb) == 0, "plan batch 8", &eb) &&
            check(memcmp(again, batch, sizeof(float) * CLASSES * BATCH) == 0,
                  "plan batch 8 equals the .onnx's", NULL) &&
            check(run_rows(ps, info.name, input, 1, single, &eb) == 0, "plan batch 1", &eb) &&
            check(run_rows(ps, info.name, input, BATCH, again, &eb) == 0, "plan batch 8 again",
                  &eb) &&
            check(memcmp(again, batch, sizeof(float) * CLASSES * BATCH) == 0,
                  "plan batch 8 again equals the .onnx's", NULL))
            printf("compiled plan: batch 8, 1, 8 in one session: PASS\n");
        else
            ok = 0;
        rouse_session_destroy(ps);
        rouse_model_destroy(pm);
    } else {
        ok = 0;
    }
    unlink(plan);
out:
    rouse_session_destroy(s);
    rouse_model_destroy(m);
    free(input);
    free(batch);
    free(again);
    return ok ? 0 : 1;
}
