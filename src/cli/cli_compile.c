/*
 * rouse compile: writes the compiled plan of an .onnx model (the optimized
 * graph with weights already in the kernels' layouts) so that it loads in
 * about a millisecond.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/accuracy.h"
#include "cli/cli.h"
#include "cli/samples.h"
#include "common/timeutil.h"
#include "rouse/engine.h"

void cli_compile_usage(FILE *out)
{
    fprintf(out,
            "usage: rouse compile MODEL.onnx [-o FILE.plan] [--max-plan-ratio X]\n"
            "                     [--precision fp32|bf16|int8] [--calibrate INPUTS]\n"
            "                     [--validate INPUTS] [--calibration minmax|percentile]\n"
            "                     [--emit-qdq OUT.onnx]\n\n"
            "Compiles MODEL.onnx for this machine: the optimized graph, the weights already\n"
            "reordered into the layouts the kernels use, in one file that `rouse run` (and\n"
            "the server) map read-only and use in place. The default output replaces the\n"
            "model's .onnx suffix with .plan. A plan records the CPU instruction set and\n"
            "the oneDNN version it was made for; elsewhere it is refused and must be\n"
            "compiled again.\n\n"
            "A plan stores each weight once in its plain form and once per layout a kernel\n"
            "chose (Winograd 3x3 convolutions take about 4x their weights), so it stays\n"
            "within a few times the model. --max-plan-ratio X (default %.0f) refuses, with\n"
            "nothing written, a plan larger than X times the .onnx file plus 1 MiB.\n\n"
            "--precision picks what the plan computes in: fp32 (the default, the model as\n"
            "written), bf16 (the kernels' weights stored and convolutions and matrix\n"
            "products computed in bfloat16, accumulating in fp32; the plain fp32 copy\n"
            "stays for other shapes; needs AVX-512 BF16, else the plan stays fp32 and\n"
            "says so) or int8 (static quantization; needs --calibrate).\n"
            "INPUTS is a folder of sample inputs in one of three layouts:\n"
            "  DIR/test_data_set_K/input_N.pb       (the ONNX backend-test layout)\n"
            "  DIR/SAMPLE/NAME.npy                  (one folder per sample, one file per input)\n"
            "  DIR/NAME.npy                         (one file per input, samples stacked on\n"
            "                                        the batch axis)\n"
            "Accuracy against fp32 is measured and printed per output (top-1 agreement\n"
            "for classifier outputs, max abs and relative error) and stored in the plan:\n"
            "on the --validate samples, else int8 holds back the last fifth of the\n"
            "calibration samples, and bf16 uses them all.\n"
            "int8 quantizes the convolutions and Gemm: weights per output channel,\n"
            "activations per tensor with ranges from the calibration samples, min/max by\n"
            "default (it measured better than --calibration percentile, the 99.99th, on\n"
            "the shared models); a layer whose estimated quantization noise is too large\n"
            "stays fp32.\n"
            "--emit-qdq OUT.onnx also writes the compiled model as a standard QDQ ONNX\n"
            "file (QuantizeLinear / DequantizeLinear around the convolutions), which\n"
            "other runtimes run.\n\n"
            "Exit status: 0 ok, 1 the model could not be compiled, 2 usage.\n",
            ROUSE_DEFAULT_MAX_PLAN_RATIO);
}

int cli_compile_main(int argc, char **argv)
{
    const char *model = NULL, *out = NULL, *cal_dir = NULL, *val_dir = NULL, *qdq = NULL;
    rouse_compile_options opts = {0};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--precision") == 0) {
            if (++i == argc || rouse_precision_parse(argv[i], &opts.precision) < 0) {
                fprintf(stderr, "rouse compile: --precision takes fp32, bf16 or int8\n\n");
                cli_compile_usage(stderr);
                return CLI_EXIT_USAGE;
            }
            continue;
        }
        if (strcmp(argv[i], "--calibrate") == 0 || strcmp(argv[i], "--validate") == 0) {
            if (++i == argc) {
                fprintf(stderr, "rouse compile: %s needs a folder of samples\n\n", argv[i - 1]);
                cli_compile_usage(stderr);
                return CLI_EXIT_USAGE;
            }
            *(strcmp(argv[i - 1], "--calibrate") == 0 ? &cal_dir : &val_dir) = argv[i];
            continue;
        }
        if (strcmp(argv[i], "--emit-qdq") == 0) {
            if (++i == argc) {
                fprintf(stderr, "rouse compile: --emit-qdq needs a file name\n\n");
                cli_compile_usage(stderr);
                return CLI_EXIT_USAGE;
            }
            qdq = argv[i];
            continue;
        }
        if (strcmp(argv[i], "--calibration") == 0) {
            if (++i < argc && strcmp(argv[i], "minmax") == 0) {
                opts.calibration_method = ROUSE_CALIB_MINMAX;
            } else if (i < argc && strcmp(argv[i], "percentile") == 0) {
                opts.calibration_method = ROUSE_CALIB_PERCENTILE;
            } else {
                fprintf(stderr, "rouse compile: --calibration takes minmax or percentile\n\n");
                cli_compile_usage(stderr);
                return CLI_EXIT_USAGE;
            }
            continue;
        }
        if (strcmp(argv[i], "--max-plan-ratio") == 0) {
            char *end = NULL;
            if (++i < argc) opts.max_plan_ratio = strtod(argv[i], &end);
            if (i == argc || end == argv[i] || *end || !(opts.max_plan_ratio > 0) ||
                opts.max_plan_ratio > 1e6) {
                fprintf(stderr, "rouse compile: --max-plan-ratio needs a number > 0\n\n");
                cli_compile_usage(stderr);
                return CLI_EXIT_USAGE;
            }
        } else if (strcmp(argv[i], "-o") == 0 || strcmp(argv[i], "--output") == 0) {
            if (++i == argc) {
                fprintf(stderr, "rouse compile: %s needs a file name\n\n", argv[i - 1]);
                cli_compile_usage(stderr);
                return CLI_EXIT_USAGE;
            }
            out = argv[i];
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "rouse compile: unknown option '%s'\n\n", argv[i]);
            cli_compile_usage(stderr);
            return CLI_EXIT_USAGE;
        } else if (!model) {
            model = argv[i];
        } else {
            fprintf(stderr, "rouse compile: unexpected argument '%s'\n\n", argv[i]);
            cli_compile_usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (!model) {
        fprintf(stderr, "rouse compile: missing MODEL.onnx\n\n");
        cli_compile_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    char *def = NULL;
    if (!out) {
        size_t n = strlen(model);
        def = malloc(n + 6);
        if (!def) return CLI_EXIT_FAIL;
        memcpy(def, model, n + 1);
        if (n > 5 && strcmp(def + n - 5, ".onnx") == 0) def[n - 5] = '\0';
        strcat(def, ".plan");
        out = def;
    }
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    rouse_model *m;
    rouse_samples *cal = NULL, *val = NULL;
    int status = CLI_EXIT_FAIL;
    uint64_t t0 = rouse_now_ns();
    if (rouse_model_load(model, &m, &eb) < 0) {
        fprintf(stderr, "rouse compile: %s\n", eb.msg);
        goto out_free;
    }
    if ((cal_dir && cli_samples_read(cal_dir, m, &cal, &eb) < 0) ||
        (val_dir && cli_samples_read(val_dir, m, &val, &eb) < 0)) {
        fprintf(stderr, "rouse compile: %s\n", eb.msg);
        goto out_model;
    }
    opts.calibration = cal;
    opts.validation = val;
    if (rouse_model_compile_with(m, out, &opts, &eb) < 0) {
        fprintf(stderr, "rouse compile: %s%s\n", eb.msg,
                eb.code == ROUSE_ETOOBIG ? " (see --max-plan-ratio)" : "");
        goto out_model;
    }
    printf("wrote %s in %.1f ms\n", out, rouse_ms_since(t0));
    if (qdq) {
        if (rouse_model_write_qdq(m, qdq, &eb) < 0) {
            fprintf(stderr, "rouse compile: --emit-qdq: %s\n", eb.msg);
            goto out_model;
        }
        printf("wrote %s\n", qdq);
    }
    /* The figures as the plan stores them: read back from the file. */
    rouse_model *plan = NULL;
    if (rouse_model_open_plan(out, &plan, &eb) < 0) {
        fprintf(stderr, "rouse compile: %s\n", eb.msg);
        goto out_model;
    }
    rouse_accuracy acc;
    rouse_model_accuracy(plan, &acc);
    if (acc.precision != opts.precision)
        printf("%s: this CPU has no native support; the plan computes in %s\n",
               rouse_precision_name(opts.precision), rouse_precision_name(acc.precision));
    cli_accuracy_print(stdout, &acc);
    rouse_model_destroy(plan);
    status = CLI_EXIT_OK;
out_model:
    rouse_samples_destroy(cal);
    rouse_samples_destroy(val);
    rouse_model_destroy(m);
out_free:
    free(def);
    return status;
}
