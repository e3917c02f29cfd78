/*
 * Lowering a graph's precision at compile time (rouse_model_compile_with):
 * the interface between the compile flow (engine.c, which measures accuracy
 * against fp32 before and after) and the rewrites of each precision.
 *
 * bf16 needs no rewrite: the kernels read eng_graph.precision when a plan
 * is prepared (exec_dnnl.c). int8 rewrites the graph from calibration
 * samples (quantize.c) into QLinearConv and QLinearMatMul nodes, which run
 * on oneDNN's int8 kernels (exec_dnnl_quant.c).
 */
#ifndef ROUSE_ENGINE_QUANTIZE_H
#define ROUSE_ENGINE_QUANTIZE_H

#include "engine/graph.h"
#include "engine/tensor.h"
#include "rouse/err.h"

/* Sample inputs for calibration: t[s * n_inputs + i] is input i (in
 * g->inputs order) of sample s, of the graph's input types and shapes it
 * accepts. Borrowed. */
typedef struct eng_samples {
    int n_samples, n_inputs;
    const eng_tensor *t;
} eng_samples;

/* What a rewrite reports. */
typedef struct eng_quant_report {
    int n_kept;        /* layers left in fp32 */
    const char **kept; /* their node names; array and strings in g's arena */
    /* int8 (quantize.c): */
    int n_candidates;  /* convolutions and matrix products that could run in int8 */
    int n_quantized;
    double min_sqnr_db, mean_sqnr_db; /* estimates over the quantized layers */
} eng_quant_report;

/* int8 calibration: the activation ranges from the values seen. */
typedef enum eng_calib_method {
    ENG_CALIB_MINMAX,     /* the whole range (the default: see quantize.c) */
    ENG_CALIB_PERCENTILE, /* both tails cut at a percentile of a histogram */
} eng_calib_method;

typedef struct eng_quant_opts {
    int method;         /* eng_calib_method */
    double percentile;  /* ENG_CALIB_PERCENTILE; 0 = ENG_QUANT_DEFAULT_PERCENTILE */
    double min_sqnr_db; /* budget: layers estimated below it stay fp32; 0 = the default */
} eng_quant_opts;

#define ENG_QUANT_DEFAULT_PERCENTILE 99.99
#define ENG_QUANT_DEFAULT_MIN_SQNR_DB 20.0

/* Rewrites g (optimized, fp32, no plan prepared over it) to compute in int8:
 * static post-training quantization with activation ranges observed on
 * `calib`. Layers whose quantization error is too large stay fp32 and are
 * listed in *rep. Sets g->precision to ENG_PRECISION_INT8 on success; on
 * failure g is left as it was. */
int eng_quantize_int8(eng_graph *g, const eng_samples *calib, eng_quant_report *rep,
                      rouse_errbuf *eb);

/* The same with options (NULL: the defaults).
 *
 * Static post-training quantization: every live Conv with constant float
 * weights (and bias) whose fused activation, if any, is Relu or Clip
 * becomes a QLinearConv with s8 weights symmetric per output channel and
 * u8 activations per tensor (a MatMul a QLinearMatMul: a constant
 * right-hand side per column, an activation one s8 symmetric per tensor),
 * the ranges from the calibration samples, run through a plan that keeps
 * those values as extra outputs, with QuantizeLinear / DequantizeLinear
 * where int8 and fp32 values meet; consecutive quantized nodes pass u8
 * data directly, also through a MaxPool of their output and a Concat of
 * their outputs. The activation is computed by the saturation of the
 * output's range (which starts at 0). A layer whose estimated
 * signal-to-quantization-noise ratio (its input's step^2 / 12 over the
 * mean square seen, plus its weights' measured relative error) is below
 * opts->min_sqnr_db stays fp32. */
int eng_quantize_int8_with(eng_graph *g, const eng_samples *calib, const eng_quant_opts *opts,
                           eng_quant_report *rep, rouse_errbuf *eb);

/* The graph of a model loaded from ONNX (NULL for a compiled plan), for
 * writing it out (engine.c). */
struct rouse_model;
eng_graph *eng_model_graph(struct rouse_model *m);
/* m's graph to read, a plan's too (its optimized graph, which sessions
 * prepare from). Borrowed: valid while m lives. */
const eng_graph *eng_model_graph_view(const struct rouse_model *m);

/* True when this CPU computes bf16 natively (AVX-512 BF16 or newer, as
 * oneDNN sees it); otherwise a bf16 plan would be emulated and slower than
 * fp32, so compiling falls back to fp32. */
bool eng_bf16_native(void);

#endif
