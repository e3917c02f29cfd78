/*
 * Writes an engine graph (a loaded, possibly quantized model) as an ONNX
 * ModelProto, so that other runtimes can check and run it: int8
 * convolutions (QLinearConv) in the standard QDQ form, the other ops of the
 * vision models as themselves (Conv, Gemm, MatMul, pools, Add, Concat,
 * Flatten, Reshape, Softmax, Transpose, Relu, Clip, Sigmoid, Tanh,
 * Quantize/DequantizeLinear), activations fused by the optimizer as their
 * own nodes again. Other ops: ROUSE_EUNSUPPORTED naming the node.
 */
#ifndef ROUSE_ENGINE_ONNX_WRITE_H
#define ROUSE_ENGINE_ONNX_WRITE_H

#include "common/buf.h"
#include "engine/graph.h"

/* Appends the model to out (opset max(13, the model's)). */
int eng_graph_write_onnx(const eng_graph *g, const char *producer, rouse_buf *out,
                         rouse_errbuf *eb);

#endif
