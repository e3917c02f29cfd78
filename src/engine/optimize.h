/*
 * Load-time graph rewrites that do not depend on input shapes:
 *   - Identity and inference-mode Dropout removed;
 *   - QDQ patterns around Conv, MatMul and Gemm made int8 nodes (optimize_qdq.h);
 *   - constant folding (nodes whose inputs are all constants run once, with
 *     the reference kernels, and become constants);
 *   - BatchNormalization folded into the Conv that feeds it;
 *   - LayerNorm over the last dim, written out as ReduceMean, Sub, Pow,
 *     ReduceMean, Add(eps), Sqrt, Div (then Mul by a scale and Add of a
 *     bias), becomes one ENG_OP_LAYERNORM node;
 *   - GELU written as x * 0.5 * (1 + erf(x / sqrt(2))) becomes ENG_OP_GELU;
 *   - Relu / Clip / LeakyRelu / Sigmoid / Tanh / GELU fused into the producing
 *     Conv or Gemm as eltwise post-ops;
 *   - dead nodes (nothing uses their outputs) removed.
 * Rewrites keep every graph output's name and value. Fusions that need
 * concrete shapes (a residual Add as a sum post-op) happen when a session
 * prepares.
 */
#ifndef ROUSE_ENGINE_OPTIMIZE_H
#define ROUSE_ENGINE_OPTIMIZE_H

#include "engine/graph.h"

typedef struct eng_opt_stats {
    int removed_identity;
    int folded_constants;
    int folded_batchnorm;
    int fused_activations;
    int fused_layernorm;
    int fused_gelu;
    int removed_dead;
    int fused_qdq; /* QDQ patterns made QLinearConv / QLinearMatMul (Gemm: 1x1 QLinearConv) */
} eng_opt_stats;

int eng_graph_optimize(eng_graph *g, eng_opt_stats *stats, rouse_errbuf *eb);

/* Number of live nodes reading value v (each input slot counts). */
int eng_graph_count_uses(const eng_graph *g, int v);

#endif
