/*
 * `rouse run`: the engine alone, without the daemon. Loads a model, feeds it
 * inputs from files or a seeded random generator, prints a summary of each
 * output and, with --repeat, latency statistics. Given an ONNX backend-test
 * folder instead of a model, it checks every test set against its reference
 * outputs.
 *
 * Output lines meant for scripts (bench/, tests/engine/) keep a fixed form:
 *   load_ms <x>
 *   latency_ms min=<x> median=<x> p99=<x> runs=<N> threads=<T>
 *   test_data_set_K: PASS max_abs=<x> max_rel=<x>
 *   profile runs=<N> ms=<x> min_ms=<x>
 *   profile_op <op> kernel=<k> steps=<n> ms=<x> min_ms=<x> share=<pct>%
 *   profile_node <op> kernel=<k> fused=<n> ms=<x> min_ms=<x> share=<pct>% name=<node>
 */
#include "cli/cli.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/tensor_compare.h"
#include "cli/tensor_file.h"
#include "cli/testdata.h"
#include "common/timeutil.h"
#include "rouse/engine.h"

#define RUN_MAX_INPUTS 64
#define RUN_DEFAULT_SEED 42
#define RUN_SUMMARY_VALUES 10 /* all of a 10-class output, for a quick argmax */

typedef struct run_input_arg {
    const char *name; /* NULL when given as a bare FILE */
    const char *path;
} run_input_arg;

typedef struct run_opts {
    const char *target;
    run_input_arg inputs[RUN_MAX_INPUTS];
    int n_inputs;
    long repeat;
    long warmup; /* -1: default (2 when repeating) */
    long threads;
    uint64_t seed;
    const char *plan_cache; /* --plan-cache DIR, or NULL */
    bool pin;               /* --pin */
    bool profile;           /* --profile */
    const char *out_dir;    /* --out DIR, or NULL */
} run_opts;

void cli_run_usage(FILE *out)
{
    fprintf(out,
            "usage: rouse run MODEL.onnx|MODEL.plan [--input NAME=FILE]... [--repeat N]\n"
            "                 [--warmup W] [--threads T] [--pin] [--seed S] [--plan-cache DIR]\n"
            "                 [--profile] [--out DIR]\n"
            "       rouse run DIR [--threads T] [--plan-cache DIR]\n\n"
            "Runs a model on this machine with the engine alone (no daemon).\n\n"
            "With a model, prints `load_ms <x>` (reading the model: decoding and optimizing\n"
            "an .onnx, or mapping a compiled .plan), `prepare_ms <x>` (creating the\n"
            "kernels), `first_run_ms <x>`, and for each output its name, type, shape, min,\n"
            "max, mean and first values.\n\n"
            "  --input NAME=FILE  feed input NAME from FILE: a .npy array (little-endian,\n"
            "                     C order) or an ONNX TensorProto .pb. A bare FILE feeds the\n"
            "                     input its TensorProto names, else the next unfed input.\n"
            "                     Inputs not given are random: floats uniform in [-1, 1),\n"
            "                     integers in [0, 10), bools 0/1; dynamic dims become 1.\n"
            "  --repeat N         time N runs and print\n"
            "                     `latency_ms min=<x> median=<x> p99=<x> runs=<N> threads=<T>`\n"
            "  --warmup W         untimed runs before the timed ones (default 2 with --repeat)\n"
            "  --threads T        kernel threads (default 1)\n"
            "  --seed S           seed of the random inputs (default %d)\n"
            "  --pin              pin the kernel threads to distinct CPUs (with --threads > 1)\n"
            "  --plan-cache DIR   run an .onnx through its compiled plan DIR/<sha256>.plan,\n"
            "                     compiling it first when missing or stale\n"
            "  --profile          with --repeat, N more runs timing every kernel (apart from\n"
            "                     the latency runs), then per operator type and kernel\n"
            "                     (onednn, gemv, reference: plain C, copy) and per kernel the mean\n"
            "                     ms per run and the fastest run (min_ms, summed per type;\n"
            "                     shares and order, slowest first, follow it):\n"
            "                     `profile runs=<N> ms=<x> min_ms=<x>`,\n"
            "                     `profile_op <op> kernel=<k> steps=<n> ms=<x> min_ms=<x>\n"
            "                     share=<pct>%%`, `profile_node <op> kernel=<k> fused=<n> ms=<x>\n"
            "                     min_ms=<x> share=<pct>%% name=<node>` (fused: activations\n"
            "                     and Adds run inside it)\n"
            "  --out DIR          write each output to DIR/<output name>.npy ('/' in a name\n"
            "                     becomes '_'), to compare precisions with other tools\n\n"
            "With DIR, an ONNX backend-test folder (model.onnx and test_data_set_*/ holding\n"
            "input_N.pb and output_N.pb), runs every test set and prints one line per set:\n"
            "`test_data_set_K: PASS max_abs=<x> max_rel=<x>` or `... FAIL <reason>`. An\n"
            "element passes when |out - ref| <= 1e-4 + 1e-3 * |ref| (integers exactly).\n"
            "When the runs saw more than one input shape (test sets of several batch sizes),\n"
            "a last line says how the session's plans served them: `plan_cache entries=<n>\n"
            "capacity=<n> hits=<n> misses=<n> evictions=<n>` (one plan per shape).\n\n"
            "Exit status: 0 ok, 1 a failure (engine error, or a test set failed), 2 usage.\n",
            RUN_DEFAULT_SEED);
}

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "rouse run: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n\n");
    cli_run_usage(stderr);
    return CLI_EXIT_USAGE;
}

/* Engine and file errors: their messages already name the file, node or input. */
static int fail(const rouse_errbuf *eb)
{
    fprintf(stderr, "rouse run: %s\n", eb->msg[0] ? eb->msg : rouse_strerror(eb->code));
    return CLI_EXIT_FAIL;
}

/* "--name VALUE" or "--name=VALUE" at argv[*i]; advances *i past a separate
 * value. Returns 1 when matched (value set, or NULL when missing), else 0. */
static int opt_value(int argc, char **argv, int *i, const char *name, const char **value)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0) return 0;
    if (argv[*i][n] == '=') {
        *value = argv[*i] + n + 1;
        return 1;
    }
    if (argv[*i][n] != '\0') return 0;
    *value = *i + 1 < argc ? argv[++*i] : NULL;
    return 1;
}

static bool parse_long(const char *s, long lo, long hi, long *out)
{
    if (!s || !*s) return false;
    errno = 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

static int parse_args(int argc, char **argv, run_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->warmup = -1;
    o->threads = 1;
    o->seed = RUN_DEFAULT_SEED;
    bool no_more_opts = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        long num;
        if (no_more_opts || a[0] != '-' || strcmp(a, "-") == 0) {
            if (o->target) return usage_error("unexpected argument '%s'", a);
            o->target = a;
        } else if (strcmp(a, "--") == 0) {
            no_more_opts = true;
        } else if (opt_value(argc, argv, &i, "--input", &v)) {
            if (!v || !*v) return usage_error("%s needs NAME=FILE", "--input");
            if (o->n_inputs == RUN_MAX_INPUTS) return usage_error("too many %s options", "--input");
            run_input_arg *in = &o->inputs[o->n_inputs++];
            const char *eq = strchr(v, '=');
            if (eq && eq == v) return usage_error("--input '%s' has an empty NAME", v);
            if (eq && !eq[1]) return usage_error("--input '%s' has an empty FILE", v);
            if (eq) {
                /* Keep NAME as its own string: argv may be written, so split in place. */
                *(char *)eq = '\0';
                in->name = v;
                in->path = eq + 1;
            } else {
                in->path = v;
            }
        } else if (opt_value(argc, argv, &i, "--repeat", &v)) {
            if (!parse_long(v, 1, 10000000, &num))
                return usage_error("--repeat wants a count >= 1, not '%s'", v ? v : "");
            o->repeat = num;
        } else if (opt_value(argc, argv, &i, "--warmup", &v)) {
            if (!parse_long(v, 0, 10000000, &num))
                return usage_error("--warmup wants a count >= 0, not '%s'", v ? v : "");
            o->warmup = num;
        } else if (opt_value(argc, argv, &i, "--threads", &v)) {
            if (!parse_long(v, 1, 1024, &num))
                return usage_error("--threads wants a count in 1..1024, not '%s'", v ? v : "");
            o->threads = num;
        } else if (strcmp(a, "--pin") == 0) {
            o->pin = true;
        } else if (strcmp(a, "--profile") == 0) {
            o->profile = true;
        } else if (opt_value(argc, argv, &i, "--out", &v)) {
            if (!v || !*v) return usage_error("%s needs a folder", "--out");
            o->out_dir = v;
        } else if (opt_value(argc, argv, &i, "--plan-cache", &v)) {
            if (!v || !*v) return usage_error("%s needs a folder", "--plan-cache");
            o->plan_cache = v;
        } else if (opt_value(argc, argv, &i, "--seed", &v)) {
            if (!parse_long(v, 0, LONG_MAX, &num))
                return usage_error("--seed wants a non-negative integer, not '%s'", v ? v : "");
            o->seed = (uint64_t)num;
        } else {
            return usage_error("unknown option '%s'", a);
        }
    }
    if (!o->target) return usage_error("%s", "missing MODEL.onnx or test folder");
    if (o->profile && !o->repeat) return usage_error("%s", "--profile needs --repeat");
    return CLI_EXIT_OK;
}

/* --- random inputs --------------------------------------------------------- */

/* splitmix64: tiny, seedable, good enough for test inputs, and the same
 * sequence on every platform so runs are reproducible. */
static uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [-1, 1) with 24 random bits: exact in float. */
static float rng_float(uint64_t *state)
{
    return (float)((double)(rng_next(state) >> 40) / (double)(1 << 23) - 1.0);
}

/* float -> IEEE half, round to nearest even; inputs here are within [-1, 1). */
static uint16_t float_to_half(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof(x));
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    int32_t exp = (int32_t)((x >> 23) & 0xff) - 127 + 15;
    uint32_t mant = x & 0x7fffff;
    if (exp >= 31) return sign | 0x7c00;
    if (exp <= 0) {
        if (exp < -10) return sign;
        mant |= 0x800000;
        uint32_t shift = (uint32_t)(14 - exp);
        uint32_t h = mant >> shift, rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1))) h++;
        return sign | (uint16_t)h;
    }
    uint32_t h = (uint32_t)exp << 10 | mant >> 13, rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;
    return sign | (uint16_t)h;
}

static void fill_random(cli_tensor *t, uint64_t *state)
{
    size_t es = rouse_dtype_size(t->dtype), n = es ? t->nbytes / es : 0;
    unsigned char *p = t->data;
    for (size_t i = 0; i < n; i++) {
        switch (t->dtype) {
        case ROUSE_DT_FLOAT:
            ((float *)t->data)[i] = rng_float(state);
            break;
        case ROUSE_DT_DOUBLE:
            ((double *)t->data)[i] = rng_float(state);
            break;
        case ROUSE_DT_FLOAT16:
            ((uint16_t *)t->data)[i] = float_to_half(rng_float(state));
            break;
        case ROUSE_DT_BFLOAT16: {
            float f = rng_float(state);
            uint32_t bits;
            memcpy(&bits, &f, sizeof(bits));
            ((uint16_t *)t->data)[i] = (uint16_t)(bits >> 16);
            break;
        }
        case ROUSE_DT_BOOL:
            p[i] = (unsigned char)(rng_next(state) & 1);
            break;
        default: {
            /* Small non-negative integers fit every integer type and make
             * sensible indices for Gather-like inputs. */
            uint64_t v = rng_next(state) % 10;
            memcpy(p + i * es, &v, es); /* little-endian: low bytes first */
            break;
        }
        }
    }
}

/* --- output summary -------------------------------------------------------- */

static double elem_double(const rouse_tensor *t, int64_t i)
{
    const unsigned char *p = t->data;
    switch (t->dtype) {
    case ROUSE_DT_FLOAT:
    case ROUSE_DT_DOUBLE:
    case ROUSE_DT_FLOAT16:
    case ROUSE_DT_BFLOAT16:
        return cli_elem_as_double(t->dtype, t->data, i);
    case ROUSE_DT_INT8:
        return (int8_t)p[i];
    case ROUSE_DT_BOOL:
    case ROUSE_DT_UINT8:
        return p[i];
    case ROUSE_DT_INT16: {
        int16_t v;
        memcpy(&v, p + i * 2, 2);
        return v;
    }
    case ROUSE_DT_UINT16: {
        uint16_t v;
        memcpy(&v, p + i * 2, 2);
        return v;
    }
    case ROUSE_DT_INT32: {
        int32_t v;
        memcpy(&v, p + i * 4, 4);
        return v;
    }
    case ROUSE_DT_UINT32: {
        uint32_t v;
        memcpy(&v, p + i * 4, 4);
        return v;
    }
    case ROUSE_DT_INT64: {
        int64_t v;
        memcpy(&v, p + i * 8, 8);
        return (double)v;
    }
    case ROUSE_DT_UINT64: {
        uint64_t v;
        memcpy(&v, p + i * 8, 8);
        return (double)v;
    }
    default:
        return NAN;
    }
}

static void print_output(const rouse_tensor *t)
{
    char shape[256];
    cli_shape_str(t->rank, t->shape, shape, sizeof(shape));
    printf("output %s %s %s", t->name ? t->name : "?", rouse_dtype_name(t->dtype), shape);
    size_t es = rouse_dtype_size(t->dtype);
    int64_t n = es ? (int64_t)(t->nbytes / es) : 0;
    if (n == 0 || !t->data) {
        printf(" (empty)\n");
        return;
    }
    double lo = INFINITY, hi = -INFINITY, sum = 0;
    int64_t n_nan = 0;
    for (int64_t i = 0; i < n; i++) {
        double v = elem_double(t, i);
        if (isnan(v)) {
            n_nan++;
            continue;
        }
        if (v < lo) lo = v;
        if (v > hi) hi = v;
        sum += v;
    }
    if (n_nan < n) printf(" min=%.6g max=%.6g mean=%.6g", lo, hi, sum / (double)(n - n_nan));
    if (n_nan) printf(" nan=%lld", (long long)n_nan);
    printf(" first=[");
    for (int64_t i = 0; i < n && i < RUN_SUMMARY_VALUES; i++)
        printf("%s%.6g", i ? ", " : "", elem_double(t, i));
    printf("%s]\n", n > RUN_SUMMARY_VALUES ? ", ..." : "");
}

/* --- timing ------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void print_latency(double *ms, long n, long threads)
{
    qsort(ms, (size_t)n, sizeof(*ms), cmp_double);
    double median = n % 2 ? ms[n / 2] : (ms[n / 2 - 1] + ms[n / 2]) / 2;
    /* Nearest-rank percentile: the smallest value >= 99% of the runs. */
    long rank = (long)ceil(0.99 * (double)n);
    double p99 = ms[rank > 0 ? rank - 1 : 0];
    printf("latency_ms min=%.3f median=%.3f p99=%.3f runs=%ld threads=%ld\n", ms[0], median, p99, n,
           threads);
}

/* --- profile ------------------------------------------------------------ */

typedef struct prof_row {
    const char *op, *kernel, *name;
    int fused, steps;
    uint64_t ns, min_ns;
} prof_row;

static int cmp_prof(const void *a, const void *b)
{
    const prof_row *x = a, *y = b;
    return x->min_ns < y->min_ns ? 1 : x->min_ns > y->min_ns ? -1 : 0;
}

/* The session's profile per operator type and kernel, then per kernel:
 * the mean time per run, and the fastest run of each kernel (summed over
 * the kernels of a type), which the shares and the order (slowest first)
 * follow, as other processes taking the CPU inflate the mean. */
static int print_profile(const rouse_session *s)
{
    int n = rouse_session_profile_count(s);
    prof_row *nodes = calloc((size_t)n + 1, sizeof(*nodes));
    prof_row *ops = calloc((size_t)n + 1, sizeof(*ops));
    if (!nodes || !ops) {
        free(nodes);
        free(ops);
        fprintf(stderr, "rouse run: out of memory\n");
        return -1;
    }
    int n_ops = 0;
    uint64_t total = 0, total_min = 0, runs = 1;
    for (int i = 0; i < n; i++) {
        rouse_profile_entry e;
        if (rouse_session_profile_entry(s, i, &e) < 0) continue;
        runs = e.runs ? e.runs : 1;
        nodes[i] = (prof_row){e.op, e.kernel, e.node, e.fused, 1, e.total_ns, e.min_ns};
        total += e.total_ns;
        total_min += e.min_ns;
        int k = 0;
        while (k < n_ops && !(strcmp(ops[k].op, e.op) == 0 && strcmp(ops[k].kernel, e.kernel) == 0))
            k++;
        if (k == n_ops) ops[n_ops++] = (prof_row){e.op, e.kernel, "", 0, 0, 0, 0};
        ops[k].steps++;
        ops[k].ns += e.total_ns;
        ops[k].min_ns += e.min_ns;
    }
    qsort(ops, (size_t)n_ops, sizeof(*ops), cmp_prof);
    qsort(nodes, (size_t)n, sizeof(*nodes), cmp_prof);
    double per_run = 1e6 * (double)runs;
    double pct = total_min ? 100.0 / (double)total_min : 0;
    printf("profile runs=%llu ms=%.3f min_ms=%.3f\n", (unsigned long long)runs,
           (double)total / per_run, (double)total_min / 1e6);
    for (int k = 0; k < n_ops; k++)
        printf("profile_op %s kernel=%s steps=%d ms=%.3f min_ms=%.3f share=%.1f%%\n", ops[k].op,
               ops[k].kernel, ops[k].steps, (double)ops[k].ns / per_run,
               (double)ops[k].min_ns / 1e6, (double)ops[k].min_ns * pct);
    for (int i = 0; i < n; i++)
        printf("profile_node %s kernel=%s fused=%d ms=%.3f min_ms=%.3f share=%.1f%% name=%s\n",
               nodes[i].op, nodes[i].kernel, nodes[i].fused, (double)nodes[i].ns / per_run,
               (double)nodes[i].min_ns / 1e6, (double)nodes[i].min_ns * pct, nodes[i].name);
    free(nodes);
    free(ops);
    return 0;
}

/* After runs of more than one input shape: how the session's plan cache
 * served them (one plan per shape, see rouse_session_options). */
static void print_plan_cache(const rouse_session *s)
{
    rouse_plan_cache_stats cs;
    rouse_session_get_plan_cache(s, &cs);
    if (cs.misses > 1)
        printf("plan_cache entries=%d capacity=%d hits=%llu misses=%llu evictions=%llu\n",
               cs.entries, cs.capacity, (unsigned long long)cs.hits, (unsigned long long)cs.misses,
               (unsigned long long)cs.evictions);
}

/* --- MODEL.onnx ----------------------------------------------------------- */

/* Index of the model input called name, or -1. */
static int model_input_index(const rouse_model *m, const char *name)
{
    int n = rouse_model_n_inputs(m);
    for (int i = 0; i < n; i++) {
        rouse_tensor_info info;
        if (rouse_model_input(m, i, &info) == 0 && strcmp(info.name, name) == 0) return i;
    }
    return -1;
}

static void list_inputs(const rouse_model *m, char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = '\0';
    int n = rouse_model_n_inputs(m);
    for (int i = 0; i < n && off < len; i++) {
        rouse_tensor_info info;
        if (rouse_model_input(m, i, &info) < 0) continue;
        off += (size_t)snprintf(buf + off, len - off, "%s'%s'", i ? ", " : "", info.name);
    }
}

/* Reads the --input files and makes random tensors for the other inputs.
 * feeds[i] belongs to model input i. */
static int build_inputs(const rouse_model *m, const run_opts *o, cli_tensor *feeds,
                        rouse_errbuf *eb)
{
    int n = rouse_model_n_inputs(m), rc;
    bool fed[RUN_MAX_INPUTS] = {false};
    char names[1024];
    if (n > RUN_MAX_INPUTS)
        return rouse_err_set(eb, ROUSE_EUNSUPPORTED, "the model has %d inputs (at most %d)", n,
                             RUN_MAX_INPUTS);
    for (int a = 0; a < o->n_inputs; a++) {
        cli_tensor t;
        if ((rc = cli_tensor_read_file(o->inputs[a].path, &t, eb)) < 0) return rc;
        const char *want = o->inputs[a].name ? o->inputs[a].name : t.name;
        int k = want[0] ? model_input_index(m, want) : -1;
        if (k < 0 && o->inputs[a].name) {
            cli_tensor_fini(&t);
            list_inputs(m, names, sizeof(names));
            return rouse_err_set(eb, ROUSE_ENOTFOUND, "the model has no input '%s' (inputs: %s)",
                                 o->inputs[a].name, names);
        }
        for (int i = 0; k < 0 && i < n; i++)
            if (!fed[i]) k = i;
        if (k < 0 || fed[k]) {
            cli_tensor_fini(&t);
            return rouse_err_set(eb, ROUSE_EINVAL, "%s: %s", o->inputs[a].path,
                                 k < 0 ? "every model input is already given"
                                       : "that input is already given");
        }
        feeds[k] = t;
        fed[k] = true;
    }
    uint64_t state = o->seed;
    for (int i = 0; i < n; i++) {
        if (fed[i]) continue;
        rouse_tensor_info info;
        if ((rc = rouse_model_input(m, i, &info)) < 0)
            return rouse_err_set(eb, rc, "cannot describe model input %d", i);
        if (info.rank < 0 || info.rank > ROUSE_MAX_RANK)
            return rouse_err_set(eb, ROUSE_EINVAL,
                                 "input '%s' has no declared shape; give it with --input",
                                 info.name);
        int64_t shape[ROUSE_MAX_RANK];
        for (int d = 0; d < info.rank; d++)
            shape[d] = info.shape[d] < 0 ? 1 : info.shape[d];
        if ((rc = cli_tensor_alloc(&feeds[i], info.name, info.dtype, info.rank, shape, eb)) < 0)
            return rouse_err_wrap(eb, rc, "random input '%s'", info.name);
        fill_random(&feeds[i], &state);
    }
    return 0;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Reads the model (a plan, an .onnx, or an .onnx through the plan cache) and
 * prepares a session, printing load_ms and prepare_ms. */
static int open_and_prepare(const run_opts *o, const char *path, rouse_model **m, rouse_session **s,
                            rouse_errbuf *eb)
{
    uint64_t t0 = rouse_now_ns();
    int from_cache = 0, rc;
    if (ends_with(path, ".plan"))
        rc = rouse_model_open_plan(path, m, eb);
    else if (o->plan_cache)
        rc = rouse_model_load_cached(path, o->plan_cache, m, &from_cache, eb);
    else
        rc = rouse_model_load(path, m, eb);
    if (rc < 0) return rc;
    printf("load_ms %.3f\n", rouse_ms_since(t0));
    if (o->plan_cache && !ends_with(path, ".plan"))
        printf("plan_cache %s\n", from_cache ? "hit" : "compiled");
    uint64_t t1 = rouse_now_ns();
    rouse_session_options so = {.threads = (int)o->threads, .pin_threads = o->pin};
    if ((rc = rouse_session_create(*m, &so, s, eb)) < 0) {
        rouse_model_destroy(*m);
        *m = NULL;
        return rc;
    }
    printf("prepare_ms %.3f\n", rouse_ms_since(t1));
    return 0;
}

/* DIR/<name>.npy, DIR made when missing. */
static int write_output(const char *dir, const rouse_tensor *t)
{
    rouse_errbuf eb;
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        fprintf(stderr, "rouse run: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    char name[256], path[4096];
    snprintf(name, sizeof(name), "%s", t->name && t->name[0] ? t->name : "output");
    for (char *c = name; *c; c++)
        if (*c == '/') *c = '_';
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) name[0] = '_';
    if ((size_t)snprintf(path, sizeof(path), "%s/%s.npy", dir, name) >= sizeof(path)) {
        fprintf(stderr, "rouse run: %s: path too long\n", dir);
        return -1;
    }
    if (cli_npy_write(path, t->dtype, t->rank, t->shape, t->data, t->nbytes, &eb) < 0)
        return fail(&eb), -1;
    printf("wrote %s\n", path);
    return 0;
}

static int run_model(const run_opts *o)
{
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    rouse_model *m = NULL;
    rouse_session *s = NULL;
    cli_tensor feeds[RUN_MAX_INPUTS];
    rouse_tensor views[RUN_MAX_INPUTS];
    double *lat = NULL;
    int status = CLI_EXIT_FAIL, n_in = 0;
    memset(feeds, 0, sizeof(feeds));

    if (open_and_prepare(o, o->target, &m, &s, &eb) < 0) return fail(&eb);

    n_in = rouse_model_n_inputs(m);
    if (build_inputs(m, o, feeds, &eb) < 0) {
        fail(&eb);
        goto out_feeds;
    }
    for (int i = 0; i < n_in; i++) {
        /* Files name their tensor as they like (.npy not at all): feed by the model's name. */
        rouse_tensor_info info;
        if (rouse_model_input(m, i, &info) < 0) {
            fprintf(stderr, "rouse run: cannot describe model input %d\n", i);
            goto out_feeds;
        }
        views[i] = cli_tensor_view(&feeds[i], info.name);
    }

    uint64_t t1 = rouse_now_ns();
    if (rouse_session_run(s, views, n_in, &eb) < 0) {
        fail(&eb);
        goto out_feeds;
    }
    printf("first_run_ms %.3f\n", rouse_ms_since(t1));

    if (o->repeat > 0) {
        long warmup = o->warmup < 0 ? 2 : o->warmup;
        if (!(lat = malloc(sizeof(*lat) * (size_t)o->repeat))) {
            fprintf(stderr, "rouse run: out of memory\n");
            goto out_feeds;
        }
        for (long r = 0; r < warmup; r++) {
            if (rouse_session_run(s, views, n_in, &eb) < 0) {
                fail(&eb);
                goto out_lat;
            }
        }
        for (long r = 0; r < o->repeat; r++) {
            uint64_t tr = rouse_now_ns();
            if (rouse_session_run(s, views, n_in, &eb) < 0) {
                fail(&eb);
                goto out_lat;
            }
            lat[r] = rouse_ms_since(tr);
        }
        /* Profiled runs come after the timed ones: reading the clock around
         * every kernel must not count in the latency. */
        if (o->profile) {
            rouse_session_set_profiling(s, 1);
            for (long r = 0; r < o->repeat; r++) {
                if (rouse_session_run(s, views, n_in, &eb) < 0) {
                    fail(&eb);
                    goto out_lat;
                }
            }
        }
    }

    int n_out = rouse_model_n_outputs(m);
    for (int i = 0; i < n_out; i++) {
        rouse_tensor out;
        if (rouse_session_output(s, i, &out) < 0) {
            fprintf(stderr, "rouse run: cannot read output %d\n", i);
            goto out_lat;
        }
        print_output(&out);
        if (o->out_dir && write_output(o->out_dir, &out) < 0) goto out_lat;
    }
    if (o->repeat > 0) {
        print_latency(lat, o->repeat, o->threads);
        print_plan_cache(s);
        if (o->profile && print_profile(s) < 0) goto out_lat;
    }
    status = CLI_EXIT_OK;
out_lat:
    free(lat);
out_feeds:
    for (int i = 0; i < n_in && i < RUN_MAX_INPUTS; i++)
        cli_tensor_fini(&feeds[i]);
    rouse_session_destroy(s);
    rouse_model_destroy(m);
    return status;
}

/* --- backend-test folder ---------------------------------------------------- */

static int run_dir(const run_opts *o)
{
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    char model_path[4096];
    if ((size_t)snprintf(model_path, sizeof(model_path), "%s/model.onnx", o->target) >=
        sizeof(model_path)) {
        fprintf(stderr, "rouse run: path too long: %s\n", o->target);
        return CLI_EXIT_FAIL;
    }
    struct stat st;
    if (stat(model_path, &st) != 0) {
        fprintf(stderr, "rouse run: %s is not a test folder: no model.onnx in it\n", o->target);
        return CLI_EXIT_FAIL;
    }
    char **sets = NULL;
    int n_sets = 0, status = CLI_EXIT_FAIL;
    if (cli_testdata_list_sets(o->target, &sets, &n_sets, &eb) < 0) return fail(&eb);
    if (n_sets == 0) {
        fprintf(stderr, "rouse run: no test_data_set_* folders in %s\n", o->target);
        goto out_sets;
    }

    rouse_model *m = NULL;
    rouse_session *s = NULL;
    if (open_and_prepare(o, model_path, &m, &s, &eb) < 0) {
        fail(&eb);
        goto out_sets;
    }

    int n_fail = 0;
    for (int i = 0; i < n_sets; i++) {
        char dir[4096];
        snprintf(dir, sizeof(dir), "%s/%s", o->target, sets[i]);
        cli_set_result r;
        rouse_errbuf_clear(&eb);
        int rc = cli_testdata_run_set(m, s, dir, CLI_TOL_DEFAULT, &r, &eb);
        if (rc == 0) {
            printf("%s: PASS max_abs=%.3g max_rel=%.3g\n", sets[i], r.max_abs, r.max_rel);
        } else if (rc == ROUSE_EMISMATCH) {
            printf("%s: FAIL max_abs=%.3g max_rel=%.3g %s\n", sets[i], r.max_abs, r.max_rel,
                   eb.msg);
            n_fail++;
        } else {
            printf("%s: FAIL %s%s\n", sets[i], r.engine_error ? "" : "reading test data: ",
                   eb.msg[0] ? eb.msg : rouse_strerror(rc));
            n_fail++;
        }
        fflush(stdout);
    }
    print_plan_cache(s);
    status = n_fail ? CLI_EXIT_FAIL : CLI_EXIT_OK;
    rouse_session_destroy(s);
    rouse_model_destroy(m);
out_sets:
    cli_testdata_free_list(sets, n_sets);
    return status;
}

int cli_run_main(int argc, char **argv)
{
    run_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc != CLI_EXIT_OK) return rc;
    struct stat st;
    if (stat(o.target, &st) != 0) {
        fprintf(stderr, "rouse run: cannot open %s: %s\n", o.target, strerror(errno));
        return CLI_EXIT_FAIL;
    }
    if (S_ISDIR(st.st_mode)) {
        if (o.n_inputs || o.repeat || o.warmup >= 0 || o.profile)
            return usage_error("%s", "--input, --repeat, --warmup and --profile need MODEL.onnx, "
                                     "not a test folder");
        return run_dir(&o);
    }
    if (o.warmup >= 0 && !o.repeat) return usage_error("%s", "--warmup needs --repeat");
    return run_model(&o);
}
