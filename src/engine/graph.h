/*
 * The engine's graph IR: values (tensors) and nodes (operators with parsed
 * attributes), built from a decoded ONNX model and rewritten by the optimizer.
 *
 * Invariants once eng_graph_build() succeeds:
 *   - nodes are in topological order (every input is a graph input, a
 *     constant, or produced by an earlier node); cycles are rejected;
 *   - every value has exactly one producer (a node, the caller, or a constant);
 *   - constants of at most ENG_CONST_COPY_MAX bytes have const_data aligned
 *     to their element size; larger ones may sit misaligned in the model file
 *     (see eng_graph_const_aligned);
 *   - every node's attributes are parsed and validated for its opset.
 * Shapes here are the static ones (-1 = unknown dim, rank -1 = unknown rank);
 * concrete shapes are inferred per input signature when a session prepares.
 */
#ifndef ROUSE_ENGINE_GRAPH_H
#define ROUSE_ENGINE_GRAPH_H

#include <stdbool.h>
#include <stdint.h>

#include "common/arena.h"
#include "engine/tensor.h"
#include "rouse/err.h"

struct onnx_model;
struct onnx_node;

#define ENG_MAX_SPATIAL 3 /* Conv/pool spatial dims: 1-D, 2-D or 3-D */
#define ENG_MAX_POSTOPS 4
#define ENG_CONST_COPY_MAX (64 * 1024) /* misaligned constants up to this size are copied */

typedef enum eng_op {
    ENG_OP_CONV,
    ENG_OP_GEMM,
    ENG_OP_MATMUL,
    ENG_OP_RELU,
    ENG_OP_CLIP,
    ENG_OP_LEAKY_RELU,
    ENG_OP_SIGMOID,
    ENG_OP_TANH,
    ENG_OP_ADD,
    ENG_OP_SUB,
    ENG_OP_MUL,
    ENG_OP_DIV,
    ENG_OP_MAXPOOL,
    ENG_OP_AVGPOOL,
    ENG_OP_GLOBAL_AVGPOOL,
    ENG_OP_FLATTEN,
    ENG_OP_RESHAPE,
    ENG_OP_TRANSPOSE,
    ENG_OP_CONCAT,
    ENG_OP_BATCHNORM,
    ENG_OP_SOFTMAX,
    ENG_OP_IDENTITY,
    ENG_OP_DROPOUT,
    ENG_OP_CONSTANT,
    ENG_OP_CAST,
    ENG_OP_ERF,
    ENG_OP_GATHER,
    ENG_OP_POW,
    ENG_OP_REDUCE_MEAN,
    ENG_OP_SQRT,
    ENG_OP_UNSQUEEZE,
    ENG_OP_SQUEEZE,
    ENG_OP_WHERE,
    /* Internal ops, made by the optimizer from the patterns the exporters
     * write (never looked up from a model's op_type). */
    ENG_OP_LAYERNORM, /* (x, scale?, bias?): attrs.norm */
    ENG_OP_GELU,      /* x * 0.5 * (1 + erf(x / sqrt(2))) */
    /* Ops described by an eng_op_desc in src/engine/ops/ (see engine/op.h),
     * grouped by family. */
    /* logic, comparison, math, activations (ops/logic.c, ops/math.c, ops/act.c) */
    ENG_OP_EQUAL,
    ENG_OP_LESS,
    ENG_OP_GREATER,
    ENG_OP_LESS_OR_EQUAL,
    ENG_OP_GREATER_OR_EQUAL,
    ENG_OP_AND,
    ENG_OP_OR,
    ENG_OP_XOR,
    ENG_OP_NOT,
    ENG_OP_BITSHIFT,
    ENG_OP_ISNAN,
    ENG_OP_ISINF,
    ENG_OP_ABS,
    ENG_OP_NEG,
    ENG_OP_EXP,
    ENG_OP_LOG,
    ENG_OP_SIN,
    ENG_OP_COS,
    ENG_OP_TAN,
    ENG_OP_ASIN,
    ENG_OP_ACOS,
    ENG_OP_ATAN,
    ENG_OP_SINH,
    ENG_OP_COSH,
    ENG_OP_ASINH,
    ENG_OP_ACOSH,
    ENG_OP_ATANH,
    ENG_OP_FLOOR,
    ENG_OP_CEIL,
    ENG_OP_ROUND,
    ENG_OP_SIGN,
    ENG_OP_RECIPROCAL,
    ENG_OP_MOD,
    ENG_OP_MIN,
    ENG_OP_MAX,
    ENG_OP_MEAN,
    ENG_OP_SUM,
    ENG_OP_HARD_SIGMOID,
    ENG_OP_HARD_SWISH,
    ENG_OP_ELU,
    ENG_OP_SELU,
    ENG_OP_CELU,
    ENG_OP_PRELU,
    ENG_OP_SOFTPLUS,
    ENG_OP_SOFTSIGN,
    ENG_OP_THRESHOLDED_RELU,
    ENG_OP_SHRINK,
    ENG_OP_MISH,
    ENG_OP_LOG_SOFTMAX,
    ENG_OP_HARDMAX,
    ENG_OP_CAST_LIKE,
    /* reductions, index selection, normalizations, Einsum (ops/reduce.c, ops/norm.c) */
    ENG_OP_REDUCE_SUM,
    ENG_OP_REDUCE_MAX,
    ENG_OP_REDUCE_MIN,
    ENG_OP_REDUCE_PROD,
    ENG_OP_REDUCE_L1,
    ENG_OP_REDUCE_L2,
    ENG_OP_REDUCE_LOG_SUM,
    ENG_OP_REDUCE_LOG_SUM_EXP,
    ENG_OP_REDUCE_SUM_SQUARE,
    ENG_OP_ARGMAX,
    ENG_OP_ARGMIN,
    ENG_OP_TOPK,
    ENG_OP_CUMSUM,
    ENG_OP_LAYER_NORMALIZATION, /* the ONNX op (opset 17); LAYERNORM is the fused form */
    ENG_OP_INSTANCE_NORMALIZATION,
    ENG_OP_LP_NORMALIZATION,
    ENG_OP_MEAN_VARIANCE_NORMALIZATION,
    ENG_OP_EINSUM,
    /* shapes and data movement (ops/shape.c, ops/index.c) */
    ENG_OP_SHAPE,
    ENG_OP_SIZE,
    ENG_OP_SLICE,
    ENG_OP_SPLIT,
    ENG_OP_TILE,
    ENG_OP_EXPAND,
    ENG_OP_CONSTANT_OF_SHAPE,
    ENG_OP_RANGE,
    ENG_OP_GATHER_ELEMENTS,
    ENG_OP_GATHER_ND,
    ENG_OP_SCATTER_ELEMENTS,
    ENG_OP_SCATTER_ND,
    ENG_OP_ONE_HOT,
    ENG_OP_NONZERO,
    ENG_OP_TRILU,
    ENG_OP_DEPTH_TO_SPACE,
    ENG_OP_SPACE_TO_DEPTH,
    ENG_OP_PAD,
    ENG_OP_COMPRESS,
    ENG_OP_EYE_LIKE,
    ENG_OP_REVERSE_SEQUENCE,
    /* spatial: resampling, transposed convolution, more pools (ops/spatial.c) */
    ENG_OP_RESIZE,
    ENG_OP_UPSAMPLE,
    ENG_OP_CONV_TRANSPOSE,
    ENG_OP_GLOBAL_MAXPOOL,
    ENG_OP_LPPOOL,
    ENG_OP_GLOBAL_LPPOOL,
    /* quantization (ops/quant.c) */
    ENG_OP_QUANTIZE_LINEAR,
    ENG_OP_DEQUANTIZE_LINEAR,
    ENG_OP_DYNAMIC_QUANTIZE_LINEAR,
    ENG_OP_QLINEAR_CONV,
    ENG_OP_QLINEAR_MATMUL,
    ENG_OP_MATMUL_INTEGER,
    ENG_OP_CONV_INTEGER,
    ENG_OP_COUNT
} eng_op;

/* ONNX op_type of an op ("Conv"). */
const char *eng_op_name(eng_op op);

typedef enum eng_auto_pad {
    ENG_AUTOPAD_NOTSET = 0,
    ENG_AUTOPAD_SAME_UPPER,
    ENG_AUTOPAD_SAME_LOWER,
    ENG_AUTOPAD_VALID,
} eng_auto_pad;

/* Conv. After shape inference (eng_infer_node's `resolved`), auto_pad is
 * NOTSET and pad_begin/pad_end hold the explicit pads; n_spatial and kernel
 * are known (taken from the weight shape when kernel_shape is absent). */
typedef struct eng_conv_attrs {
    int n_spatial; /* 0 until known */
    int64_t kernel[ENG_MAX_SPATIAL];
    int64_t stride[ENG_MAX_SPATIAL];
    int64_t dilation[ENG_MAX_SPATIAL];
    int64_t pad_begin[ENG_MAX_SPATIAL];
    int64_t pad_end[ENG_MAX_SPATIAL];
    int64_t group;
    int auto_pad; /* eng_auto_pad */
} eng_conv_attrs;

/* MaxPool / AveragePool, same resolution rules as Conv. */
typedef struct eng_pool_attrs {
    int n_spatial;
    int64_t kernel[ENG_MAX_SPATIAL];
    int64_t stride[ENG_MAX_SPATIAL];
    int64_t dilation[ENG_MAX_SPATIAL];
    int64_t pad_begin[ENG_MAX_SPATIAL];
    int64_t pad_end[ENG_MAX_SPATIAL];
    int auto_pad;
    int ceil_mode;
    int count_include_pad; /* AveragePool */
    int storage_order;     /* MaxPool indices output: 0 row-major, 1 column-major */
} eng_pool_attrs;

typedef struct eng_gemm_attrs {
    int trans_a, trans_b;
    float alpha, beta;
} eng_gemm_attrs;

/* Clip bounds: from attributes (opset < 11) or from constant inputs 1 and 2
 * (opset >= 11; resolved during shape inference when the inputs are known).
 * Absent bounds are -inf / +inf (or the type's limits for integers). */
typedef struct eng_clip_attrs {
    double min, max;
    bool has_min, has_max;
} eng_clip_attrs;

typedef struct eng_alpha_attrs {
    float alpha; /* LeakyRelu */
} eng_alpha_attrs;

/* Softmax (axis; legacy = opset < 13 coerces the input to 2-D at axis),
 * Flatten (axis), Concat (axis), Gather (axis). Axes are stored as given
 * (may be negative); shape inference normalizes them in `resolved`. */
typedef struct eng_axis_attrs {
    int64_t axis;
    bool legacy;
} eng_axis_attrs;

typedef struct eng_transpose_attrs {
    int n_perm; /* 0 = default (reverse the dims) */
    int64_t perm[ENG_MAX_RANK];
} eng_transpose_attrs;

typedef struct eng_bn_attrs {
    float epsilon;
} eng_bn_attrs;

typedef struct eng_reshape_attrs {
    int allowzero;
} eng_reshape_attrs;

/* ReduceMean (axes attribute, keepdims), Unsqueeze and Squeeze (axes from
 * the attribute before opset 13, from input 1 since). n_axes -1 = absent:
 * ReduceMean then reduces every dim, Squeeze removes every dim of size 1.
 * As parsed, axes may be negative; after shape inference (`resolved`) they
 * are normalized to 0..rank-1 (for Unsqueeze: of the output) and sorted. */
typedef struct eng_axes_attrs {
    int n_axes;
    int64_t axes[ENG_MAX_RANK];
    int keepdims; /* ReduceMean */
} eng_axes_attrs;

/* Cast: the target element type (an eng_dtype the engine can convert to). */
typedef struct eng_cast_attrs {
    int to;
} eng_cast_attrs;

/* LayerNorm (internal): normalizes over the dims from `axis` to the last
 * (negative, counted from the end, as the optimizer matched it; normalized
 * by shape inference), y = (x - mean) / sqrt(var + epsilon) * scale + bias
 * with the biased variance. scale and bias hold 1 or prod(normalized dims)
 * values. */
typedef struct eng_norm_attrs {
    int64_t axis;
    float epsilon;
} eng_norm_attrs;

typedef struct eng_dropout_attrs {
    float ratio; /* opset < 12 attribute; from input 1 otherwise */
} eng_dropout_attrs;

#include "engine/op_attrs.h"

typedef union eng_attrs {
    eng_conv_attrs conv;
    eng_pool_attrs pool;
    eng_gemm_attrs gemm;
    eng_clip_attrs clip;
    eng_alpha_attrs alpha;
    eng_axis_attrs axis;
    eng_transpose_attrs transpose;
    eng_bn_attrs bn;
    eng_reshape_attrs reshape;
    eng_dropout_attrs dropout;
    eng_axes_attrs axes;
    eng_cast_attrs cast;
    eng_norm_attrs norm;
    /* Attribute records of the ops in src/engine/ops/, one block per family
     * (their structs are declared in engine/op_attrs.h). */
    /* logic, math, activations */
    eng_act_attrs act;
    /* reductions, normalizations */
    eng_reduce_attrs reduce;
    /* shapes and data movement */
    eng_shape_attrs shape;
    /* spatial */
    eng_spatial_attrs spatial;
    /* quantization */
    eng_quant_attrs quant;
} eng_attrs;

/* An operation fused after a Conv or Gemm (oneDNN post-op). Applied in order
 * to the node's result y: ELTWISE y = f(y); SUM y = y + in[sum_input]. */
typedef enum eng_postop_kind {
    ENG_POST_ELTWISE,
    ENG_POST_SUM,
} eng_postop_kind;

typedef struct eng_postop {
    int kind;          /* eng_postop_kind */
    eng_op eltwise;    /* RELU, CLIP, LEAKY_RELU, SIGMOID, TANH, GELU, HARD_SIGMOID,
                          HARD_SWISH, ELU, SOFTPLUS or ABS */
    float alpha, beta; /* CLIP: min, max; LEAKY_RELU, ELU: alpha; HARD_SIGMOID: alpha, beta */
    int sum_input;     /* SUM: index into the node's inputs of the addend */
} eng_postop;

typedef struct eng_value {
    const char *name;
    int dtype;
    int rank;                    /* -1 when unknown */
    int64_t shape[ENG_MAX_RANK]; /* -1 for unknown dims */
    const char *dim_names[ENG_MAX_RANK]; /* graph inputs and outputs: the symbolic
                                            name (dim_param) of a dynamic dim, or NULL */
    const void *const_data;      /* constants only; see ENG_CONST_COPY_MAX */
    bool is_input, is_output;
    int producer; /* node index, or -1 */
} eng_value;

typedef struct eng_node {
    const char *name; /* "" when the model gave none */
    eng_op op;
    int opset; /* default-domain opset of the model */
    int n_in;
    int *in; /* value ids; -1 for an omitted optional input */
    int n_out;
    int *out; /* value ids; -1 for an omitted optional output */
    eng_attrs attrs;
    int n_post;
    eng_postop post[ENG_MAX_POSTOPS];
    bool dead; /* removed by the optimizer; skipped everywhere */
} eng_node;

typedef struct eng_graph {
    rouse_arena arena; /* owns names, arrays, folded constants */
    int n_values, cap_values;
    eng_value *values; /* heap array (grows); ids are indices */
    int n_nodes, cap_nodes;
    eng_node *nodes; /* heap array; topological order */
    int n_inputs;
    int *inputs; /* value ids of the runtime inputs (initializers excluded) */
    int n_outputs;
    int *outputs;
    int opset;
    int precision; /* rouse_precision the kernels compute in (ENG_PRECISION_*) */
} eng_graph;

/* The numbers of rouse_precision (include/rouse/engine.h). */
enum { ENG_PRECISION_FP32 = 0, ENG_PRECISION_BF16 = 1, ENG_PRECISION_INT8 = 2 };

/* Maps op_type/domain/opset to an op; ROUSE_EUNSUPPORTED with
 * "unsupported operator Foo (opset 19) at node 'bar'" otherwise. */
int eng_op_lookup(const char *op_type, const char *domain, int64_t opset, const char *node_name,
                  eng_op *op, rouse_errbuf *eb);

/* eng_op_lookup for every node of og: 0 when all are supported; otherwise
 * ROUSE_EUNSUPPORTED naming them all at once. One unsupported node gets
 * eng_op_lookup's sentence; several get "unsupported operators: Foo (opset
 * 19) x3 at nodes 'a', 'b', 'c'; Bar (opset 19) x1 at node 'd'", one entry
 * per operator in order of first appearance, at most three node names each. */
struct onnx_graph;
int eng_op_lookup_all(const struct onnx_graph *og, int64_t opset, rouse_errbuf *eb);

/* Fills n->attrs from the ONNX attributes of `on` (defaults per the ONNX spec
 * for n->opset), validating every value: wrong types, negative strides,
 * kernel ranks that disagree, unknown auto_pad strings... are ROUSE_EFORMAT
 * errors naming the node and the attribute. Unknown attributes are ignored. */
int eng_attrs_parse(const struct onnx_node *on, eng_node *n, rouse_arena *arena, rouse_errbuf *eb);

/* Concrete shape inference for one node. in[i] is NULL for an omitted input;
 * in[i]->data is non-NULL when the value is known (constants, and graph
 * inputs during prepare), which Reshape's shape and Clip's bounds need.
 * Fills out[0..n_out) (dtype, rank, shape; data untouched) and `resolved`,
 * a copy of n->attrs with pads and bounds made explicit for these shapes.
 * Rejects mismatches with ROUSE_EMISMATCH naming the node and the input. */
int eng_infer_node(const eng_node *n, const eng_tensor *const *in, eng_tensor *out,
                   eng_attrs *resolved, rouse_errbuf *eb);

/* Builds a graph from a decoded model: creates values for inputs,
 * initializers (in place when aligned, copied otherwise) and node outputs,
 * parses attributes, converts Constant nodes to constants, checks that
 * every referenced name exists, and orders the nodes topologically. */
int eng_graph_build(const struct onnx_model *m, eng_graph *g, rouse_errbuf *eb);
void eng_graph_fini(eng_graph *g);

/* True when v is a constant whose data is aligned to its element size. */
bool eng_value_const_aligned(const eng_value *v);

/* The data of constant `id`, aligned: copied into the graph's arena the first
 * time when it sits misaligned in the file. For load-time passes only (it
 * changes the graph). NULL when out of memory. */
const void *eng_graph_const_aligned(eng_graph *g, int id, rouse_errbuf *eb);

/* Adds a value (id returned in *id); the graph's arrays may move. */
int eng_graph_add_value(eng_graph *g, const char *name, int dtype, int *id);

/* base (or fallback when base is empty) + suffix, made unique among the
 * graph's values and nodes with a "_K" ending (a model may name two things
 * alike; the ONNX written from the graph needs distinct names), copied
 * into the graph's arena; NULL when out of memory. For load-time passes. */
const char *eng_graph_unique_name(eng_graph *g, const char *base, const char *fallback,
                                  const char *suffix);

#endif
