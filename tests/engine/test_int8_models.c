/*
 * int8 post-training quantization of the real models against float: each
 * model is compiled for int8 (rouse_model_compile_with, calibrated and
 * validated on its test_data_set_* inputs), the plan's accuracy figures
 * are printed, and the plan is run on every set; per set it prints the top-1
 * class of both and the max abs and relative error of output 0 against the
 * float reference output (output_0.pb) and the relative (L2) error, and
 * fails when that error exceeds MAX_REL_L2 (bert_tiny: its own bounds) or
 * nothing was quantized. (The
 * models in ../shared/models have random weights: their logits are nearly
 * flat, so top-1 flips on small errors and is printed, not required.)
 *
 * Usage: engine_int8_models MODELS_DIR [--percentile] [--reference] [--keep DIR] NAME...
 * (--reference runs the int8 plan on the reference kernels;
 * --keep DIR writes DIR/NAME.int8.plan, DIR/NAME.fp32.plan and the
 * quantized model as QDQ ONNX, DIR/NAME.qdq.onnx).
 * Exit 77 when MODELS_DIR is absent.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/tensor_file.h"
#include "cli/testdata.h"
#include "rouse/engine.h"
#include "tmp_dir.h"

static int64_t argmax(const float *p, int64_t n)
{
    int64_t b = 0;
    for (int64_t i = 1; i < n; i++)
        if (p[i] > p[b]) b = i;
    return b;
}

/* Bound on ||int8 - float|| / ||float|| of output 0. */
#define MAX_REL_L2 0.35

/* bert_tiny's output 0 is the last hidden state after a LayerNorm (values
 * of order 1, no classifier): its int8 plan (16 QLinearMatMul: the linear
 * layers per column, attention's two products u8 x s8 per tensor) measured
 * a relative error of 0.0017 and a max abs error of 0.0062 (0.18% of max
 * |float|) on the three sets. The bounds leave ten times that for other
 * CPUs' kernels and rounding, and still fail a layer quantized wrongly
 * (a bad scale or a saturated range gives errors of order 1). */
#define BERT_MAX_REL_L2 0.02
#define BERT_MAX_ABS 0.06

static double max_rel_l2(const char *name, double *max_abs)
{
    *max_abs = INFINITY;
    if (!strcmp(name, "bert_tiny")) {
        *max_abs = BERT_MAX_ABS;
        return BERT_MAX_REL_L2;
    }
    return MAX_REL_L2;
}

static bool reference;

static int check_model(const char *dir, const char *name, bool minmax, const char *keep)
{
    char path[1024], set_dir[1200];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    rouse_errbuf eb;
    char **sets;
    int n_sets;
    if (cli_testdata_list_sets(path, &sets, &n_sets, &eb) < 0 || n_sets < 1) {
        fprintf(stderr, "%s: no test data sets\n", name);
        return 1;
    }
    snprintf(set_dir, sizeof(set_dir), "%s/model.onnx", path);
    rouse_model *m;
    if (rouse_model_load(set_dir, &m, &eb) < 0) {
        fprintf(stderr, "%s: %s\n", name, eb.msg);
        return 1;
    }
    int n_in = rouse_model_n_inputs(m);
    cli_tensor *in = calloc((size_t)(n_sets * n_in), sizeof(cli_tensor));
    cli_tensor *ref = calloc((size_t)n_sets, sizeof(cli_tensor));
    rouse_tensor *samples = calloc((size_t)(n_sets * n_in), sizeof(rouse_tensor));
    int fails = 0;
    for (int s = 0; s < n_sets; s++) {
        for (int i = 0; i < n_in; i++) {
            rouse_tensor_info ti;
            rouse_model_input(m, i, &ti);
            snprintf(set_dir, sizeof(set_dir), "%s/%s/input_%d.pb", path, sets[s], i);
            if (cli_tensor_read_file(set_dir, &in[s * n_in + i], &eb) < 0) {
                fprintf(stderr, "%s: %s\n", set_dir, eb.msg);
                return 1;
            }
            samples[s * n_in + i] = cli_tensor_view(&in[s * n_in + i], ti.name);
            samples[s * n_in + i].name = ti.name;
        }
        snprintf(set_dir, sizeof(set_dir), "%s/%s/output_0.pb", path, sets[s]);
        if (cli_tensor_read_file(set_dir, &ref[s], &eb) < 0) {
            fprintf(stderr, "%s: %s\n", set_dir, eb.msg);
            return 1;
        }
    }
    char fp32_plan[1200], int8_plan[1200];
    if (keep) {
        snprintf(fp32_plan, sizeof(fp32_plan), "%s/%s.fp32.plan", keep, name);
        if (rouse_model_compile(m, fp32_plan, &eb) < 0) {
            fprintf(stderr, "%s: compile: %s\n", name, eb.msg);
            return 1;
        }
        snprintf(int8_plan, sizeof(int8_plan), "%s/%s.int8.plan", keep, name);
    } else {
        snprintf(int8_plan, sizeof(int8_plan), "%s/rouse_int8_%d_%s.plan", test_tmp_dir(),
                 (int)getpid(), name);
    }
    rouse_samples *cal;
    if (rouse_samples_create(m, &cal, &eb) < 0) {
        fprintf(stderr, "%s: %s\n", name, eb.msg);
        return 1;
    }
    for (int s = 0; s < n_sets; s++)
        if (rouse_samples_add(cal, m, &samples[s * n_in], n_in, &eb) < 0) {
            fprintf(stderr, "%s: sample %d: %s\n", name, s, eb.msg);
            return 1;
        }
    /* Calibrated on every set and measured on the same sets (there are only
     * three). */
    rouse_compile_options co = {
        .precision = ROUSE_PRECISION_INT8,
        .calibration = cal,
        .validation = cal,
        .calibration_method = minmax ? ROUSE_CALIB_MINMAX : ROUSE_CALIB_PERCENTILE,
    };
    if (rouse_model_compile_with(m, int8_plan, &co, &eb) < 0) {
        fprintf(stderr, "%s: compile int8: %s\n", name, eb.msg);
        return 1;
    }
    rouse_samples_destroy(cal);
    char qdq_path[1200];
    if (keep)
        snprintf(qdq_path, sizeof(qdq_path), "%s/%s.qdq.onnx", keep, name);
    else
        snprintf(qdq_path, sizeof(qdq_path), "%s/rouse_int8_%d_%s.qdq.onnx", test_tmp_dir(),
                 (int)getpid(), name);
    if (rouse_model_write_qdq(m, qdq_path, &eb) < 0) {
        fprintf(stderr, "%s: write QDQ: %s\n", name, eb.msg);
        return 1;
    }
    rouse_model_destroy(m);
    if (rouse_model_open_plan(int8_plan, &m, &eb) < 0) {
        fprintf(stderr, "%s: open plan: %s\n", name, eb.msg);
        return 1;
    }
    rouse_accuracy acc;
    rouse_model_accuracy(m, &acc); /* as the plan records it */
    printf("%s: %s calibration on %d sets; %d layers kept fp32", name,
           minmax ? "min/max" : "percentile", n_sets, acc.n_kept_fp32);
    for (int k = 0; k < acc.n_kept_fp32; k++)
        printf("%s%s", k ? ", " : ": ", acc.kept_fp32[k]);
    for (int k = 0; k < acc.n_outputs; k++)
        printf("; output %s: top-1 %.3f, max abs %.4g, max rel %.4g", acc.outputs[k].name,
               acc.outputs[k].top1, acc.outputs[k].max_abs, acc.outputs[k].max_rel);
    printf("\n");
    rouse_session *sess;
    rouse_session_options so = {.threads = 1, .reference_kernels = reference};
    if (rouse_session_create(m, &so, &sess, &eb) < 0) {
        fprintf(stderr, "%s: session: %s\n", name, eb.msg);
        return 1;
    }
    for (int s = 0; s < n_sets; s++) {
        for (int i = 0; i < n_in; i++) { /* names from the plan's model */
            rouse_tensor_info ti;
            rouse_model_input(m, i, &ti);
            samples[s * n_in + i].name = ti.name;
        }
        if (rouse_session_run(sess, &samples[s * n_in], n_in, &eb) < 0) {
            fprintf(stderr, "%s: run: %s\n", name, eb.msg);
            return 1;
        }
        rouse_tensor y;
        rouse_session_output(sess, 0, &y);
        const float *r = ref[s].data;
        int64_t n = (int64_t)(y.nbytes / 4);
        double max_abs = 0, max_ref = 0, se = 0, sr = 0;
        for (int64_t i = 0; i < n; i++) {
            double d = fabs((double)((const float *)y.data)[i] - r[i]);
            if (d > max_abs) max_abs = d;
            if (fabs(r[i]) > max_ref) max_ref = fabs(r[i]);
            se += d * d;
            sr += (double)r[i] * r[i];
        }
        double rel = sr > 0 ? sqrt(se / sr) : 0;
        int64_t ti = argmax(y.data, n), tr = argmax(r, n);
        printf("%s %s: top-1 int8 %lld float %lld (%s); relative error (L2) %.4f; max abs error "
               "%.4g (%.2f%% of max |float|)\n",
               name, sets[s], (long long)ti, (long long)tr, ti == tr ? "agree" : "differ", rel,
               max_abs, 100.0 * max_abs / (max_ref > 0 ? max_ref : 1));
        /* These models have random weights (flat logits): top-1 is shown, the
         * bound is on the relative error. */
        double bound_abs, bound = max_rel_l2(name, &bound_abs);
        if (!(rel <= bound) || !(max_abs <= bound_abs)) {
            printf("%s %s: error above the bound (relative %.4g, max abs %.4g)\n", name, sets[s],
                   bound, bound_abs);
            fails++;
        }
    }
    /* The QDQ file, loaded back: the load-time fusion makes the same int8
     * graph, so set 0 gives the plan's output again. */
    {
        rouse_model *qm;
        rouse_session *qs;
        rouse_tensor ya, yb;
        if (rouse_model_load(qdq_path, &qm, &eb) < 0 ||
            rouse_session_create(qm, &so, &qs, &eb) < 0) {
            fprintf(stderr, "%s: QDQ file: %s\n", name, eb.msg);
            return 1;
        }
        for (int i = 0; i < n_in; i++) {
            rouse_tensor_info ti;
            rouse_model_input(qm, i, &ti);
            samples[i].name = ti.name;
        }
        if (rouse_session_run(qs, samples, n_in, &eb) < 0 ||
            rouse_session_run(sess, samples, n_in, &eb) < 0) {
            fprintf(stderr, "%s: QDQ run: %s\n", name, eb.msg);
            return 1;
        }
        rouse_session_output(qs, 0, &ya);
        rouse_session_output(sess, 0, &yb);
        double d = 0;
        for (size_t i = 0; i < ya.nbytes / 4 && ya.nbytes == yb.nbytes; i++)
            d = fmax(d, fabs((double)((const float *)ya.data)[i] - ((const float *)yb.data)[i]));
        printf("%s: the QDQ file rouse wrote, loaded back: max abs difference to the int8 plan %.3g\n",
               name, d);
        if (ya.nbytes != yb.nbytes || d > 1e-3) fails++;
        rouse_session_destroy(qs);
        rouse_model_destroy(qm);
        for (int i = 0; i < n_in; i++) {
            rouse_tensor_info ti;
            rouse_model_input(m, i, &ti);
            samples[i].name = ti.name;
        }
    }
    if (!keep) unlink(qdq_path);
    rouse_session_stats st;
    rouse_session_get_stats(sess, &st);
    /* How many int8 convolutions and matrix products the plan runs (none:
     * nothing quantized). */
    int n_q = 0, n_qdq = 0;
    rouse_session_set_profiling(sess, 1);
    rouse_session_run(sess, samples, n_in, &eb);
    for (int i = 0; i < rouse_session_profile_count(sess); i++) {
        rouse_profile_entry pe;
        rouse_session_profile_entry(sess, i, &pe);
        n_qdq += !strcmp(pe.op, "QuantizeLinear") || !strcmp(pe.op, "DequantizeLinear");
        n_q += (!strcmp(pe.op, "QLinearConv") || !strcmp(pe.op, "QLinearMatMul")) &&
               !strcmp(pe.kernel, "onednn");
    }
    printf("%s: int8 plan: %d steps (%d oneDNN, %d reference, %d reorders), %d int8 "
           "convolutions and matrix products on oneDNN, %d Quantize/DequantizeLinear\n",
           name, st.steps, st.dnnl_steps, st.ref_steps, st.reorders, n_q, n_qdq);
    if (n_q < 1) fails++;
    /* squeezenet1_1 stays in int8 from its first convolution to its last:
     * the MaxPools and the fire modules' Concats pass u8 data, so only the
     * input is quantized and the last convolution's output dequantized. */
    if (!strcmp(name, "squeezenet1_1") && n_qdq > 2) {
        printf("%s: %d Quantize/DequantizeLinear steps, 2 expected\n", name, n_qdq);
        fails++;
    }
    /* resnet18 and mobilenet_v2: their residual Adds (and resnet18's
     * Relu after each) and the global average pool run on u8 data too;
     * what is left: the input's Q, the pool's output dequantized and
     * quantized again around the Flatten before the classifier, its
     * logits dequantized. */
    if ((!strcmp(name, "resnet18") || !strcmp(name, "mobilenet_v2")) && n_qdq > 4) {
        printf("%s: %d Quantize/DequantizeLinear steps, at most 4 expected\n", name, n_qdq);
        fails++;
    }
    rouse_session_destroy(sess);
    rouse_model_destroy(m);
    if (!keep) unlink(int8_plan);
    for (int i = 0; i < n_sets * n_in; i++)
        cli_tensor_fini(&in[i]);
    for (int s = 0; s < n_sets; s++)
        cli_tensor_fini(&ref[s]);
    free(in);
    free(ref);
    free(samples);
    cli_testdata_free_list(sets, n_sets);
    return fails ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: engine_int8_models MODELS_DIR [--percentile] [--keep DIR] NAME...\n");
        return 2;
    }
    struct stat sb;
    if (stat(argv[1], &sb) != 0) {
        printf("skip: %s is absent\n", argv[1]);
        return 77;
    }
    bool minmax = true;
    const char *keep = NULL;
    int fails = 0;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--reference")) {
            reference = true;
            continue;
        }
        if (!strcmp(argv[i], "--percentile")) {
            minmax = false;
            continue;
        }
        if (!strcmp(argv[i], "--keep") && i + 1 < argc) {
            keep = argv[++i];
            continue;
        }
        fails += check_model(argv[1], argv[i], minmax, keep);
    }
    return fails ? 1 : 0;
}
