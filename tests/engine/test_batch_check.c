/*
 * Dynamic batching's model side, on the real models:
 * - rouse_model_batch_check accepts mlp and resnet18 (a fixed first dim of
 *   1 in batch-agnostic graphs) and resnet18_dynbatch (a dynamic one), and
 *   refuses bert_tiny, whose exported Reshapes bake in batch 1, naming the
 *   node that pins it;
 * - a session with batch_dim0 prepares batches 1..8 of mlp ahead of any run
 *   (rouse_session_prepare), then runs batch 4 from that cache (a hit, no
 *   new plan), and each row of the batch equals the row run alone.
 *
 *   engine_batch_check MODELS_DIR      exits 77 when MODELS_DIR is absent
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/tensor_compare.h"
#include "rouse/engine.h"

static int fails;

static void check(int ok, const char *what, const rouse_errbuf *eb)
{
    if (ok) return;
    fprintf(stderr, "FAIL: %s%s%s\n", what, eb && eb->msg[0] ? ": " : "", eb ? eb->msg : "");
    fails++;
}

/* The batch check's verdict on dir/model.onnx, and its message. */
static int verdict(const char *dir, const char *model, rouse_errbuf *eb)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s/model.onnx", dir, model);
    rouse_model *m = NULL;
    rouse_errbuf_clear(eb);
    int rc = rouse_model_load(path, &m, eb);
    if (rc == 0) rc = rouse_model_batch_check(m, eb);
    printf("%s: %s%s\n", model, rc == 0 ? "batches" : "refused: ", rc == 0 ? "" : eb->msg);
    rouse_model_destroy(m);
    return rc;
}

static void rows_equal_alone(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/mlp/model.onnx", dir);
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    rouse_model *m = NULL;
    rouse_session *s = NULL;
    enum { ROWS = 4, IN = 784, OUT = 10 };
    static float x[ROWS * IN], batch[ROWS * OUT];
    unsigned long long r = 88172645463325252ull;
    for (int i = 0; i < ROWS * IN; i++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        x[i] = (float)((double)(r >> 40) / (double)(1 << 23) - 1.0);
    }
    check(rouse_model_load(path, &m, &eb) == 0, "load mlp", &eb);
    if (!m) return;
    rouse_session_options so = {.threads = 1, .batch_dim0 = 1, .plan_cache_size = 8};
    check(rouse_session_create(m, &so, &s, &eb) == 0, "session", &eb);
    if (!s) goto out;
    rouse_tensor in = {.name = "input", .dtype = ROUSE_DT_FLOAT, .rank = 2, .shape = {1, IN}};
    for (int b = 1; b <= 8; b *= 2) {
        in.shape[0] = b;
        in.nbytes = sizeof(float) * (size_t)b * IN;
        check(rouse_session_prepare(s, &in, 1, &eb) == 0, "prepare", &eb);
    }
    rouse_plan_cache_stats before, after;
    rouse_session_get_plan_cache(s, &before);
    in.shape[0] = ROWS;
    in.data = x;
    in.nbytes = sizeof(x);
    check(rouse_session_run(s, &in, 1, &eb) == 0, "batch 4 run", &eb);
    rouse_tensor o;
    check(rouse_session_output(s, 0, &o) == 0 && o.shape[0] == ROWS && o.shape[1] == OUT,
          "batch 4 output [4, 10]", NULL);
    memcpy(batch, o.data, sizeof(batch));
    rouse_session_get_plan_cache(s, &after);
    printf("plan cache: %d plans after preparing, misses %llu -> %llu\n", before.entries,
           (unsigned long long)before.misses, (unsigned long long)after.misses);
    check(after.misses == before.misses, "batch 4 runs on the prepared plan", NULL);
    for (int i = 0; i < ROWS; i++) {
        rouse_tensor one = {.name = "input",
                            .dtype = ROUSE_DT_FLOAT,
                            .rank = 2,
                            .shape = {1, IN},
                            .data = x + (size_t)i * IN,
                            .nbytes = sizeof(float) * IN};
        check(rouse_session_run(s, &one, 1, &eb) == 0, "batch 1 run", &eb);
        rouse_session_output(s, 0, &o);
        rouse_tensor got = {.name = "logits",
                            .dtype = ROUSE_DT_FLOAT,
                            .rank = 2,
                            .shape = {1, OUT},
                            .data = batch + (size_t)i * OUT,
                            .nbytes = sizeof(float) * OUT};
        cli_compare_result cr;
        int rc = cli_tensor_compare(&got, &o, CLI_TOL_DEFAULT, &cr, &eb);
        printf("row %d: %s max_abs=%.3g\n", i, rc == 0 ? "PASS" : "FAIL", cr.max_abs);
        check(rc == 0, "row equals its batch-1 run", &eb);
    }
out:
    rouse_session_destroy(s);
    rouse_model_destroy(m);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: engine_batch_check MODELS_DIR\n");
        return 2;
    }
    struct stat st;
    if (stat(argv[1], &st) != 0) {
        printf("skipped: ../shared/models not found\n");
        return 77;
    }
    rouse_errbuf eb;
    check(verdict(argv[1], "mlp", &eb) == 0, "mlp batches", &eb);
    check(verdict(argv[1], "resnet18", &eb) == 0, "resnet18 batches", &eb);
    check(verdict(argv[1], "resnet18_dynbatch", &eb) == 0, "resnet18_dynbatch batches", &eb);
    int rc = verdict(argv[1], "bert_tiny", &eb);
    check(rc == ROUSE_EINVAL && strstr(eb.msg, "node '") && strstr(eb.msg, "Reshape"),
          "bert_tiny refused, naming a Reshape node", &eb);
    rows_equal_alone(argv[1]);
    printf("%s\n", fails ? "FAILED" : "PASSED");
    return fails ? 1 : 0;
}
