/*
 * rouse engine: load ONNX models and run them on the CPU.
 *
 * Typical use:
 *   rouse_model *m;   rouse_model_load("model.onnx", &m, &eb);
 *   rouse_session *s; rouse_session_create(m, &(rouse_session_options){.threads = 1}, &s, &eb);
 *   rouse_session_run(s, inputs, n_inputs, &eb);
 *   rouse_session_output(s, 0, &out);   (borrowed until the next run)
 *   rouse_session_destroy(s); rouse_model_destroy(m);
 *
 * Every call returns 0 or a negative ROUSE_E* code; the rouse_errbuf says
 * which node, field or tensor is at fault. A model may back several
 * sessions; a session is used by one thread at a time.
 */
#ifndef ROUSE_ENGINE_H
#define ROUSE_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "rouse/err.h"

#define ROUSE_MAX_RANK 8

/* Element types: the numbers of ONNX TensorProto.DataType. */
typedef enum rouse_dtype {
    ROUSE_DT_FLOAT = 1,
    ROUSE_DT_UINT8 = 2,
    ROUSE_DT_INT8 = 3,
    ROUSE_DT_UINT16 = 4,
    ROUSE_DT_INT16 = 5,
    ROUSE_DT_INT32 = 6,
    ROUSE_DT_INT64 = 7,
    ROUSE_DT_BOOL = 9,
    ROUSE_DT_FLOAT16 = 10,
    ROUSE_DT_DOUBLE = 11,
    ROUSE_DT_UINT32 = 12,
    ROUSE_DT_UINT64 = 13,
    ROUSE_DT_BFLOAT16 = 16,
} rouse_dtype;

/* Bytes per element, 0 for an unknown type; ONNX name ("float"). */
size_t rouse_dtype_size(int dtype);
const char *rouse_dtype_name(int dtype);

typedef struct rouse_model rouse_model;
typedef struct rouse_session rouse_session;

/* Declared input or output of a model. Borrowed: valid while the model lives. */
typedef struct rouse_tensor_info {
    const char *name;
    int dtype;
    int rank;             /* -1 when the model does not declare it */
    const int64_t *shape; /* rank entries; -1 for a dynamic dim */
    const char *const *dim_names; /* rank entries (NULL when rank < 0): the
                                     model's name for a symbolic dim ("batch"),
                                     NULL for a fixed or unnamed one */
} rouse_tensor_info;

/* A tensor passed to or returned from a run: dense, row-major. */
typedef struct rouse_tensor {
    const char *name;
    int dtype;
    int rank;
    int64_t shape[ROUSE_MAX_RANK];
    const void *data;
    size_t nbytes;
} rouse_tensor;

/* Loads an .onnx file: mmaps it, decodes, validates and optimizes the graph.
 * Owned: free with rouse_model_destroy. */
int rouse_model_load(const char *path, rouse_model **out, rouse_errbuf *eb);

/* Same from memory; buf is borrowed and must outlive the model. */
int rouse_model_load_memory(const void *buf, size_t len, rouse_model **out, rouse_errbuf *eb);

void rouse_model_destroy(rouse_model *m);

/* --- compiled plans ---------------------------------------------------------
 * `rouse_model_compile` writes what loading and preparing work out once (the
 * optimized graph, weights already in the kernels' layouts) to a plan file;
 * `rouse_model_open_plan` maps it read-only and reads only its metadata, so
 * opening costs O(nodes) whatever the weights weigh, and processes that open
 * the same plan share its pages. rouse_session_create then only creates the
 * kernels. Outputs are bit-identical to running the .onnx in the same build. */

/* Writes a plan for m (loaded from ONNX) to path, atomically. */
int rouse_model_compile(rouse_model *m, const char *path, rouse_errbuf *eb);

/* A plan stores each constant once in its plain form and once per layout
 * a kernel chose for it (Winograd transforms of 3x3 convolutions are the
 * largest, about 4x their weights), plus metadata: a sound plan stays
 * within a few times its model. The default limit leaves room for that;
 * a plan beyond it means something is stored over and over. */
#define ROUSE_DEFAULT_MAX_PLAN_RATIO 8.0

/* --- precision ----------------------------------------------------------------
 * A plan computes in fp32 (the model as written), bf16 (weights stored and
 * convolutions, inner products and matrix products computed in bfloat16 with
 * fp32 accumulation, where the CPU has AVX-512 BF16) or int8 (static
 * post-training quantization from calibration samples). Inputs and outputs
 * keep the model's types at every precision: conversions happen inside. */
typedef enum rouse_precision {
    ROUSE_PRECISION_FP32 = 0,
    ROUSE_PRECISION_BF16 = 1,
    ROUSE_PRECISION_INT8 = 2,
} rouse_precision;

/* "fp32", "bf16", "int8"; NULL for another number. */
const char *rouse_precision_name(int precision);
/* The precision named s: 0, or ROUSE_EINVAL. */
int rouse_precision_parse(const char *s, int *out);

/* Sample inputs of a model, for calibration and for measuring accuracy: each
 * sample is one complete set of inputs for a run. Owned tensors (data and
 * names are copies). Create with rouse_samples_create, free with
 * rouse_samples_destroy. */
typedef struct rouse_samples {
    int n_samples;
    int n_inputs;      /* inputs per sample: the model's, in its order */
    rouse_tensor *t;   /* t[s * n_inputs + i]: input i of sample s */
    int cap_samples;
} rouse_samples;

/* An empty set for samples of m (its inputs, in its order). */
int rouse_samples_create(const rouse_model *m, rouse_samples **out, rouse_errbuf *eb);
void rouse_samples_destroy(rouse_samples *s);

/* Adds one sample: inputs[0..n) named after model inputs, in any order, each
 * exactly once, of the input's type and a shape it accepts. The data is
 * copied. Errors name the input and what does not fit (ROUSE_EINVAL). */
int rouse_samples_add(rouse_samples *s, const rouse_model *m, const rouse_tensor *inputs, int n,
                      rouse_errbuf *eb);

/* Adds the samples of arrays stacked on the batch axis (axis 0): one tensor
 * per model input, all with the same number of rows; each row becomes one
 * sample of batch 1. Errors as rouse_samples_add, and a row count that
 * differs between inputs. */
int rouse_samples_add_stacked(rouse_samples *s, const rouse_model *m, const rouse_tensor *inputs,
                              int n, rouse_errbuf *eb);

typedef struct rouse_compile_options {
    /* Refuse (ROUSE_ETOOBIG, nothing written) a plan larger than this
     * many times the .onnx file plus 1 MiB of metadata; 0 = the default. */
    double max_plan_ratio;
    int precision; /* rouse_precision; 0 is fp32 */
    /* Calibration samples (int8 needs them; may be NULL otherwise). Without
     * `validation`, int8 holds back the last fifth of them (at least one,
     * when there are two or more) to measure accuracy; bf16 and fp32
     * measure on all of them. */
    const rouse_samples *calibration;
    /* Samples accuracy is measured on instead (may be NULL). */
    const rouse_samples *validation;
    /* int8: how activation ranges are taken from the calibration samples
     * (rouse_calib_method; 0 is min/max). */
    int calibration_method;
} rouse_compile_options;

typedef enum rouse_calib_method {
    ROUSE_CALIB_MINMAX = 0,     /* the whole range seen (the default: it measured better) */
    ROUSE_CALIB_PERCENTILE = 1, /* both tails cut at the 99.99th percentile */
} rouse_calib_method;

/* rouse_model_compile with options (opts may be NULL). With a precision
 * other than fp32, m itself is changed to it (its graph is what the plan
 * stores): use it afterwards to compile again at most. When samples are
 * given, every output of the plan is compared with fp32 on them and the
 * figures are stored in the plan (rouse_model_accuracy). A CPU without
 * AVX-512 BF16 gets an fp32 plan for bf16 (rouse_model_precision says so). */
int rouse_model_compile_with(rouse_model *m, const char *path, const rouse_compile_options *opts,
                             rouse_errbuf *eb);

/* Writes m's graph as an ONNX file at path: after an int8 compile, the
 * quantized model in the standard QDQ form (QuantizeLinear /
 * DequantizeLinear around float Conv nodes), which other runtimes run and
 * rouse loads back into the same int8 graph. m must come from an .onnx
 * (ROUSE_ESTATE for a plan); ROUSE_EUNSUPPORTED names a node whose operator
 * has no ONNX writer yet. */
int rouse_model_write_qdq(rouse_model *m, const char *path, rouse_errbuf *eb);

/* The precision the model runs at (a plan's, or fp32 for an .onnx). */
int rouse_model_precision(const rouse_model *m);

/* How one output of a lower-precision plan compares with fp32 on the
 * validation samples. */
typedef struct rouse_output_accuracy {
    const char *name;
    double top1;    /* share of rows (0..1) whose largest element is at the same
                       index as fp32's, for classifier-shaped outputs (float
                       [C] or [N, C], C >= 2); -1 for other outputs */
    double max_abs; /* largest |x - x_fp32| over every element */
    double max_rel; /* max_abs divided by the largest |x_fp32| of the output */
} rouse_output_accuracy;

enum {
    ROUSE_ACCURACY_NONE = 0,      /* nothing measured (no samples) */
    ROUSE_ACCURACY_HELD_BACK = 1, /* samples held back from calibration */
    ROUSE_ACCURACY_VALIDATE = 2,  /* the validation samples given */
    ROUSE_ACCURACY_SAMPLES = 3,   /* the calibration samples (nothing to calibrate) */
};

typedef struct rouse_accuracy {
    int precision;
    int source;    /* ROUSE_ACCURACY_* */
    int n_samples; /* samples compared */
    int n_outputs;
    const rouse_output_accuracy *outputs;
    int n_kept_fp32; /* layers left in fp32 (int8: their error was too large) */
    const char *const *kept_fp32;
} rouse_accuracy;

/* The accuracy figures a plan records. Borrowed: valid while m lives.
 * source is ROUSE_ACCURACY_NONE when none were measured. */
void rouse_model_accuracy(const rouse_model *m, rouse_accuracy *out);

/* The figures as one JSON object: {"precision": "int8", "samples": 1,
 * "source": "held back from calibration", "outputs": [{"name": ...,
 * "top1_agreement": 1 or null (not classifier-shaped), "max_abs_error":
 * ..., "max_rel_error": ...}], "kept_fp32": ["node (estimated 12.3 dB)"]}.
 * Owned: free with free(); NULL when out of memory. */
char *rouse_accuracy_json(const rouse_accuracy *a);

/* What the samples were ("held back from calibration", "the validation
 * samples", "the calibration samples", "none"). Static. */
const char *rouse_accuracy_source_name(int source);

/* Opens a plan. ROUSE_EMISMATCH when it was made for another CPU, oneDNN
 * version or format (recompile from the .onnx); ROUSE_EFORMAT when damaged.
 * Owned: free with rouse_model_destroy. */
int rouse_model_open_plan(const char *path, rouse_model **out, rouse_errbuf *eb);
/* Same from memory; buf is borrowed and must outlive the model. */
int rouse_model_open_plan_memory(const void *buf, size_t len, rouse_model **out, rouse_errbuf *eb);

/* Loads onnx_path through a plan cache: <cache_dir>/<sha256 of the file>.plan
 * is opened when valid, else compiled (and written) first. *from_cache says
 * which happened. */
int rouse_model_load_cached(const char *onnx_path, const char *cache_dir, rouse_model **out,
                            int *from_cache, rouse_errbuf *eb);

/* rouse_model_load_cached for a caller that knows the file's sha256 (lower-case
 * hex; a content-addressed blob is named by it): a valid cached plan that
 * records that digest opens without reading or hashing the .onnx; anything
 * else (NULL or malformed hex, no plan, a plan for other bytes, another CPU)
 * falls back to rouse_model_load_cached. */
int rouse_model_load_cached_known(const char *onnx_path, const char *sha256_hex,
                                  const char *cache_dir, rouse_model **out, int *from_cache,
                                  rouse_errbuf *eb);

/* sha256 of the source .onnx bytes (recorded in a plan). */
int rouse_model_source_sha256(const rouse_model *m, uint8_t out[32]);

int rouse_model_n_inputs(const rouse_model *m);
int rouse_model_n_outputs(const rouse_model *m);
/* 0, or ROUSE_ERANGE for a bad index. */
int rouse_model_input(const rouse_model *m, int i, rouse_tensor_info *out);
int rouse_model_output(const rouse_model *m, int i, rouse_tensor_info *out);

typedef struct rouse_session_options {
    int threads;           /* kernel threads for this session; 0 means 1 */
    int reference_kernels; /* nonzero: run every node on the plain C reference
                              kernels (slow; for testing and debugging) */
    int pin_threads;       /* nonzero with threads > 1: on the first run, pin the
                              kernel threads (the calling thread included) to
                              distinct CPUs of the process's affinity mask */
    int plan_cache_size;   /* prepared plans kept for distinct input shapes (each
                              holds its kernels and activation memory); the least
                              recently used is dropped; 0 means
                              ROUSE_PLAN_CACHE_DEFAULT */
    uint64_t max_activation_bytes; /* a plan whose activation memory (or one node's
                              output) would exceed this is refused with
                              ROUSE_ETOOBIG before anything is allocated for it;
                              0 means the machine's memory */
    int batch_dim0;        /* nonzero: dim 0 of every input is a batch of any size,
                              also where the model declares it a fixed 1 (for a
                              model rouse_model_batch_check accepts) */
    int gemv_max_rows;     /* a MatMul of at most this many rows by a constant
                              [K, N] weight reads the weight where it lies (one
                              GEMM call) instead of a copy in the layout oneDNN's
                              matmul prefers, made per prepared shape; 0 means 1
                              (a decoder's step of one sequence). For a decoder
                              stepping several sequences together. */
} rouse_session_options;

#define ROUSE_PLAN_CACHE_DEFAULT 4

/* Creates a session (activation memory, kernels for the declared shapes when
 * they are static). opts may be NULL. The model must outlive the session.
 * Owned: free with rouse_session_destroy. */
int rouse_session_create(rouse_model *m, const rouse_session_options *opts, rouse_session **out,
                         rouse_errbuf *eb);

/* Runs the model. Every model input must be given once, by name, with the
 * declared type and a shape compatible with the declared one (a symbolic dim
 * takes the same size in every input that names it); errors name the input
 * and the dim. An input shape not seen before prepares a plan for it (kernels,
 * memory, shape computations folded to constants), kept in the session's
 * plan cache. */
int rouse_session_run(rouse_session *s, const rouse_tensor *inputs, int n_inputs, rouse_errbuf *eb);

/* Prepares (and caches) the plan for inputs of these shapes without running
 * it: kernels created, memory planned, no parallel region started (a
 * process may fork afterwards). inputs[] as for rouse_session_run, data
 * ignored. ROUSE_EINVAL for a model whose shapes depend on input values. */
int rouse_session_prepare(rouse_session *s, const rouse_tensor *inputs, int n_inputs,
                          rouse_errbuf *eb);

/* Whether requests can be batched along dim 0 of every input: each input's
 * first dim is dynamic or a fixed 1, and shape inference at two batch sizes
 * shows every output following the batch in its dim 0 (other dynamic dims
 * taken as 8). 0, or ROUSE_EINVAL naming the input, or the node that pins
 * the batch ("node 'x' (Reshape) pins the batch dim: ..."). */
int rouse_model_batch_check(rouse_model *m, rouse_errbuf *eb);

/* Output i of the last successful run. Borrowed: valid until the next run or
 * destroy. ROUSE_ESTATE before the first run, ROUSE_ERANGE for a bad index. */
int rouse_session_output(const rouse_session *s, int i, rouse_tensor *out);

/* What the current plan looks like: kernel counts and memory. */
typedef struct rouse_session_stats {
    int steps;           /* kernels run per inference */
    int dnnl_steps;      /* of which oneDNN primitives */
    int ref_steps;       /* of which plain C reference kernels */
    int reorders;        /* layout conversions between kernels */
    int sum_fused;       /* residual Adds fused into convolutions */
    int folded;          /* nodes computed once while preparing (shape arithmetic) */
    size_t arena_bytes;   /* activation memory, the kernels' scratchpads included */
    size_t scratch_bytes; /* the scratchpads' sum (each in the arena at its own step) */
    size_t weight_bytes;  /* weights reordered for the kernels */
    uint64_t ref_macs;   /* multiply-accumulates per inference on the reference kernels */
} rouse_session_stats;

/* Makes the kernels of the one-row products a decoder's decode step runs
 * (oneDNN's GEMM makes them on its first use in each process, about 8 ms
 * of CPU): a process that forks instances calls it first, so that they
 * inherit the kernels instead of making them on their first token. Runs
 * on one thread: safe in a process that forks afterwards. */
void rouse_engine_warm_gemv(void);

/* Runs the session once on zeros of the shapes it was prepared for, so that
 * its memory is touched and its kernels initialized before a real request
 * comes. Runs kernels (an OpenMP team with threads > 1): never call it in a
 * process that will fork afterwards. ROUSE_ESTATE when nothing is prepared. */
int rouse_session_warm_up(rouse_session *s, rouse_errbuf *eb);

/* ROUSE_ESTATE when nothing is prepared yet (dynamic shapes before a run). */
int rouse_session_get_stats(const rouse_session *s, rouse_session_stats *out);

/* The session's plan cache: one plan per input signature seen (shapes and
 * dtypes, plus the values of inputs that shapes depend on). A hit is a run
 * whose plan was cached; a miss prepared one. */
typedef struct rouse_plan_cache_stats {
    int capacity; /* rouse_session_options.plan_cache_size */
    int entries;  /* plans held now */
    uint64_t hits, misses, evictions;
} rouse_plan_cache_stats;

void rouse_session_get_plan_cache(const rouse_session *s, rouse_plan_cache_stats *out);

/* --- profiling ---------------------------------------------------------------
 * With profiling on, every run times each kernel of the plan it runs (one
 * clock read per kernel; off by default). Entries cover the current plan
 * (the last one run), one per kernel in execution order; totals add up over
 * the runs since profiling was turned on or that plan was prepared. */
typedef struct rouse_profile_entry {
    const char *node;   /* the node's name ("" when unnamed, "(reorder)" for a
                           layout conversion between kernels) */
    const char *op;     /* ONNX op_type, or "Reorder" */
    const char *kernel; /* "onednn", "gemv" (a one-row MatMul on oneDNN's
                           sgemm, its weights read in place), "reference"
                           (plain C) or "copy" */
    int fused;          /* activations and residual Adds fused into it */
    uint64_t total_ns;  /* wall time summed over `runs` runs */
    uint64_t min_ns;    /* its fastest run: what it costs when nothing else
                           takes the CPU away */
    uint64_t runs;
} rouse_profile_entry;

/* 0, or ROUSE_ENOMEM. Turning it off drops the totals. */
int rouse_session_set_profiling(rouse_session *s, int on);
/* Number of entries of the current plan: 0 before a profiled run. */
int rouse_session_profile_count(const rouse_session *s);
/* 0, or ROUSE_ERANGE for a bad index. Strings borrowed like the outputs. */
int rouse_session_profile_entry(const rouse_session *s, int i, rouse_profile_entry *out);

void rouse_session_destroy(rouse_session *s);

#endif
