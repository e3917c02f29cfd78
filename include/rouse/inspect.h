/*
 * rouse inspect: what a model is made of and what running it takes, read
 * without running it for real: its inputs and outputs (symbolic dims by
 * name), opsets, an operator histogram with each operator's support at the
 * model's opset, the bytes of its weights, and, at given input shapes, its
 * multiply-accumulates per inference and the activation memory a session
 * plans for it. Works on models the engine cannot run (the histogram says
 * why); the shape-dependent figures are then absent, with the reason.
 */
#ifndef ROUSE_INSPECT_H
#define ROUSE_INSPECT_H

#include <stdint.h>

#include "rouse/engine.h"

typedef struct rouse_inspect_tensor {
    const char *name;
    int dtype;                             /* 0 when not declared */
    int rank;                              /* declared; -1 when absent */
    int64_t dims[ROUSE_MAX_RANK];          /* declared; -1 for a symbolic or unknown dim */
    const char *dim_names[ROUSE_MAX_RANK]; /* symbolic names (dim_param), or NULL */
    int shape_rank;                        /* at the inspected shapes; -1 when unknown */
    int64_t shape[ROUSE_MAX_RANK];
} rouse_inspect_tensor;

typedef struct rouse_inspect_opset {
    const char *domain; /* "ai.onnx" for the default domain */
    int64_t version;
} rouse_inspect_opset;

typedef struct rouse_inspect_op {
    const char *op_type;
    const char *domain; /* "ai.onnx" for the default domain */
    int count;          /* nodes of the main graph */
    int supported;      /* the engine runs it at the model's opset */
} rouse_inspect_op;

typedef struct rouse_inspect_report {
    int64_t ir_version;
    int64_t opset; /* of the default domain */
    int n_opsets;
    rouse_inspect_opset *opsets;
    int n_inputs, n_outputs; /* graph inputs exclude initializers */
    rouse_inspect_tensor *inputs, *outputs;
    int n_nodes;
    int n_ops; /* distinct operators, in order of first appearance */
    rouse_inspect_op *ops;
    int n_unsupported; /* distinct operators the engine lacks */
    int n_weights;
    uint64_t weight_bytes; /* initializers */
    /* At the inspected shapes: output shapes and multiply-accumulates when
     * shapes_known, the activation arena when arena_known; otherwise
     * why_unknown says what stood in the way. */
    int shapes_known;
    uint64_t macs; /* multiply-accumulates per inference (Conv, Gemm, MatMul...) */
    int arena_known;
    uint64_t arena_bytes; /* activation memory a session plans */
    char why_unknown[512];
} rouse_inspect_report;

/* Inspects the .onnx at path. shapes (n_shapes entries, name, rank and
 * shape used; data ignored) fix input shapes; other inputs take their
 * declared shapes with dynamic dims set to 1. Errors only for files that
 * cannot be read or decoded: an unsupported model yields a report.
 * Owned: free with rouse_inspect_report_destroy. */
int rouse_model_inspect(const char *path, const rouse_tensor *shapes, int n_shapes,
                        rouse_inspect_report **out, rouse_errbuf *eb);
void rouse_inspect_report_destroy(rouse_inspect_report *r);

#endif
