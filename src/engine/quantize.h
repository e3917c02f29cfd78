/*
 * Lowering a graph's precision at compile time (rouse_model_compile_with):
 * the interface between the compile flow (engine.c, which measures accuracy
 * against fp32 before and after) and the rewrites of each precision.
 *
 * bf16 needs no rewrite: the kernels read eng_graph.precision when a plan
 * is prepared (exec_dnnl.c). int8 rewrites the graph from calibration
 * samples.
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
} eng_quant_report;

/* Rewrites g (optimized, fp32, no plan prepared over it) to compute in int8:
 * static post-training quantization with activation ranges observed on
 * `calib`. Layers whose quantization error is too large stay fp32 and are
 * listed in *rep. Sets g->precision to ENG_PRECISION_INT8 on success; on
 * failure g is left as it was. ROUSE_EUNSUPPORTED while the int8 kernels are
 * not part of this build. */
int eng_quantize_int8(eng_graph *g, const eng_samples *calib, eng_quant_report *rep,
                      rouse_errbuf *eb);

/* True when this CPU computes bf16 natively (AVX-512 BF16 or newer, as
 * oneDNN sees it); otherwise a bf16 plan would be emulated and slower than
 * fp32, so compiling falls back to fp32. */
bool eng_bf16_native(void);

#endif
