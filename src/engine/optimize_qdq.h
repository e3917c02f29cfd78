/*
 * QDQ models at load: checks of the quantization parameters of every
 * QuantizeLinear / DequantizeLinear node with constant parameters (scales
 * positive and finite, per-axis lengths, zero point 0 for int32, zero
 * points of the input's type), then DequantizeLinear -> Conv / MatMul /
 * Gemm -> QuantizeLinear patterns rewritten as QLinearConv / QLinearMatMul
 * nodes (a Gemm as a 1x1 QLinearConv between two Reshapes), which run on
 * the int8 kernels.
 * Runs before constant folding (which would turn the dequantized weights
 * into float constants).
 */
#ifndef ROUSE_ENGINE_OPTIMIZE_QDQ_H
#define ROUSE_ENGINE_OPTIMIZE_QDQ_H

#include "engine/optimize.h"

/* ROUSE_EFORMAT naming the node for bad parameters; ROUSE_ENOMEM. */
int eng_graph_fuse_qdq(eng_graph *g, eng_opt_stats *st, rouse_errbuf *eb);

#endif
