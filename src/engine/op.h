/*
 * Operator descriptors: everything the engine knows about one ONNX operator,
 * in one record. A descriptor names the op and the opsets it implements,
 * states its input/output counts and accepted element types, and points at
 * the op's attribute parser, its attribute check (run by the ONNX loader
 * after parsing and by the plan reader on the stored record, so both apply
 * the same rules), its shape/type inference and its plain C reference
 * kernel. Adding an operator means writing one descriptor in the family file
 * under src/engine/ops/ and adding it to that family's table.
 *
 * The loader (eng_op_lookup, eng_attrs_parse), shape inference
 * (eng_infer_node), the reference executor (eng_ref_run_node), the plan
 * reader and the prepare-time value analysis all go through
 * eng_op_desc_get(); oneDNN kernels and fusions stay in exec_dnnl.c and
 * optimize.c, keyed by eng_op.
 *
 * Contracts of the hooks:
 *   parse  fills the op's record in *a (zeroed before the call) from the
 *          ONNX attributes with the defaults of n->opset; every value it
 *          keeps is one the other hooks can compute with. Errors name the
 *          node and the attribute (eng_attr_err).
 *   check  re-validates a record that did not come from parse (a compiled
 *          plan): ranges, enum values, counts. Returns 0 or ROUSE_EFORMAT.
 *   infer  given concrete input shapes (and values for the inputs in
 *          value_inputs, when known), sets every wanted output's dtype and
 *          shape and may refine c->res (normalized axes, explicit pads).
 *          Inputs listed in value_inputs whose values are unknown must be
 *          refused with ROUSE_EUNSUPPORTED naming the input.
 *   run    the reference kernel: outputs are allocated with the inferred
 *          shapes (out[k] NULL when output k is omitted, in[k] NULL when
 *          input k is); writes every output element; on error sets eb with
 *          a sentence naming the node (eng_run_fail) and returns < 0.
 *          Indices read from tensors at run time are range-checked.
 *   macs   (optional) the multiply-accumulates of one run, from the
 *          inferred shapes; ops without it count as 0.
 */
#ifndef ROUSE_ENGINE_OP_H
#define ROUSE_ENGINE_OP_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/graph.h"
#include "engine/onnx/onnx.h"
#include "engine/tensor.h"
#include "rouse/err.h"

#define ENG_OP_MAX_IN_NAMES 9

/* Element-type masks for eng_op_desc.dtypes. */
#define ENG_DTM(x) (1u << ENG_DT_##x)
#define ENG_DTM_FLOATS (ENG_DTM(FLOAT) | ENG_DTM(DOUBLE) | ENG_DTM(FLOAT16) | ENG_DTM(BFLOAT16))
#define ENG_DTM_SINTS (ENG_DTM(INT8) | ENG_DTM(INT16) | ENG_DTM(INT32) | ENG_DTM(INT64))
#define ENG_DTM_UINTS (ENG_DTM(UINT8) | ENG_DTM(UINT16) | ENG_DTM(UINT32) | ENG_DTM(UINT64))
#define ENG_DTM_INTS (ENG_DTM_SINTS | ENG_DTM_UINTS)
#define ENG_DTM_NUMERIC (ENG_DTM_FLOATS | ENG_DTM_INTS)
#define ENG_DTM_ANY (ENG_DTM_NUMERIC | ENG_DTM(BOOL))

/* --- attribute parsing ------------------------------------------------------ */

/* What a parse hook reads from: the ONNX node and the engine node it fills. */
typedef struct eng_attr_ctx {
    const struct onnx_node *on;
    const eng_node *n;
    rouse_errbuf *eb;
} eng_attr_ctx;

/* The attribute `name` (the last one when repeated), or NULL. */
const onnx_attr *eng_attr_find(const eng_attr_ctx *c, const char *name);

/* "node 'x' (Op): attribute 'name' <what>" with code rc; returns rc. */
int eng_attr_err(const eng_attr_ctx *c, int rc, const char *name, const char *what);

/* Typed getters: *out keeps the default when the attribute is absent; a
 * value of the wrong type is ROUSE_EFORMAT. */
int eng_attr_int(const eng_attr_ctx *c, const char *name, int64_t def, int64_t *out);
int eng_attr_flag(const eng_attr_ctx *c, const char *name, int def, int *out); /* 0 or 1 only */
int eng_attr_float(const eng_attr_ctx *c, const char *name, float def, float *out); /* not NaN */
int eng_attr_finite(const eng_attr_ctx *c, const char *name, float def, float *out);
/* A list of at most `max` ints (more is ROUSE_EUNSUPPORTED); *count -1 when absent. */
int eng_attr_ints(const eng_attr_ctx *c, const char *name, int max, int *count, int64_t *vals);
/* A list of at most `max` floats; *count -1 when absent. */
int eng_attr_floats(const eng_attr_ctx *c, const char *name, int max, int *count, float *vals);
/* A string attribute that must be one of `choices` (NULL-terminated);
 * *out is its index, or `def` when absent. Unknown strings are ROUSE_EFORMAT
 * naming the value. */
int eng_attr_choice(const eng_attr_ctx *c, const char *name, const char *const *choices, int def,
                    int *out);
/* A TENSOR attribute (borrowed from the model), or *out NULL when absent. */
int eng_attr_tensor(const eng_attr_ctx *c, const char *name, const onnx_tensor **out);

/* For check hooks: "node 'x' (Op): attribute 'name' <message>" with code
 * rc (eb may be NULL); returns rc. */
int eng_check_fail(const eng_node *n, rouse_errbuf *eb, int rc, const char *name, const char *fmt,
                   ...) __attribute__((format(printf, 5, 6)));

/* --- shape inference -------------------------------------------------------- */

typedef struct eng_infer_ctx {
    const eng_node *n;
    const eng_tensor *const *in; /* in[i] NULL when omitted; data set when known */
    eng_tensor *out;
    eng_attrs *res; /* starts as a copy of n->attrs */
    rouse_errbuf *eb;
    char names[2][32];
    int next_name;
} eng_infer_ctx;

/* "node 'x' (Op): <message>" with code rc; returns rc. */
int eng_infer_fail(eng_infer_ctx *c, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The ONNX name of input i (from the descriptor), or "inputs[i]". */
const char *eng_infer_in_name(eng_infer_ctx *c, int i);
/* Input i, or NULL when omitted or beyond the node's inputs. */
const eng_tensor *eng_infer_input(const eng_infer_ctx *c, int i);
/* True when output i exists and is used. */
bool eng_infer_want_out(const eng_infer_ctx *c, int i);
void eng_infer_set_out(eng_infer_ctx *c, int i, int dtype, int rank, const int64_t *shape);
/* Normalizes an axis in [-rank, rank-1] ([-rank, rank] when inclusive);
 * ROUSE_EMISMATCH naming input 0 otherwise. */
int eng_infer_norm_axis(eng_infer_ctx *c, int64_t axis, int rank, bool inclusive, int64_t *out);
/* Inputs i and j must have the same element type. */
int eng_infer_same_dtype(eng_infer_ctx *c, int i, int j);
/* Input i's element type must be in mask. */
int eng_infer_check_dtype(eng_infer_ctx *c, int i, unsigned mask);
/* The values of input i (int32 or int64, at most `max`) as int64: known
 * at prepare (a constant, a graph input whose values key the plan, or a
 * value computed at prepare). ROUSE_EUNSUPPORTED when unknown, ROUSE_EFORMAT
 * when too many or of another type. */
int eng_infer_read_ints(eng_infer_ctx *c, int i, int max, int *count, int64_t *vals);
/* The single value of input i converted to double; false when unknown or
 * not one element. */
bool eng_infer_read_scalar(const eng_infer_ctx *c, int i, double *v);
/* Multidirectional (numpy) broadcasting of two shapes; false when they do
 * not broadcast. */
bool eng_broadcast_shapes(int ra, const int64_t *a, int rb, const int64_t *b, int *r, int64_t *y);

/* --- reference kernels ------------------------------------------------------ */

/* "node 'x' (Op): <message>" with code rc; returns rc. */
int eng_run_fail(const eng_node *n, rouse_errbuf *eb, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* --- descriptors ------------------------------------------------------------ */

typedef struct eng_op_desc {
    eng_op op;
    const char *name;            /* ONNX op_type */
    int since;                   /* first default-domain opset whose semantics are implemented */
    bool internal;               /* made by the optimizer only: never matched by name */
    int min_in, max_in, max_out; /* max_in -1 = variadic */
    const char *in_names[ENG_OP_MAX_IN_NAMES];
    unsigned dtypes;       /* accepted element types of input 0; 0 = infer checks */
    unsigned value_inputs; /* bit i: infer reads the values of input i */
    /* Opset-dependent counts (optional): adjusts the three counts. */
    void (*counts)(const eng_node *n, int *min_in, int *max_in, int *max_out);
    int (*parse)(const eng_attr_ctx *c, eng_attrs *a); /* optional: no attributes */
    int (*check)(const eng_node *n, rouse_errbuf *eb); /* optional */
    int (*infer)(eng_infer_ctx *c);
    int (*run)(const eng_node *n, const eng_attrs *a, const eng_tensor *const *in,
               eng_tensor *const *out, rouse_errbuf *eb);
    /* Optional: multiply-accumulates of one run at these inferred shapes
     * (convolutions and matrix products; `rouse inspect` sums them). */
    int64_t (*macs)(const eng_node *n, const eng_attrs *a, const eng_tensor *const *in,
                    const eng_tensor *out);
} eng_op_desc;

/* a x b for the macs callbacks, saturated at INT64_MAX (hostile shapes can
 * ask for more work than int64 counts). a, b >= 0. */
static inline int64_t eng_macs_mul(int64_t a, int64_t b)
{
    int64_t r;
    return __builtin_mul_overflow(a, b, &r) ? INT64_MAX : r;
}

/* The descriptor of op: never NULL for an op the engine implements; NULL
 * for values outside eng_op and for ops declared but not implemented yet. */
const eng_op_desc *eng_op_desc_get(eng_op op);

/* Family tables (NULL-terminated), listed once in ops.c. */
extern const eng_op_desc *const eng_ops_nn[];
extern const eng_op_desc *const eng_ops_elementwise[];
extern const eng_op_desc *const eng_ops_tensor[];
extern const eng_op_desc *const eng_ops_fused[];
extern const eng_op_desc *const eng_ops_logic[];
extern const eng_op_desc *const eng_ops_math[];
extern const eng_op_desc *const eng_ops_act[];
extern const eng_op_desc *const eng_ops_reduce[];
extern const eng_op_desc *const eng_ops_einsum[]; /* ops/reduce_einsum.c */
extern const eng_op_desc *const eng_ops_norm[];
extern const eng_op_desc *const eng_ops_shape[];
extern const eng_op_desc *const eng_ops_shape_slice[];
extern const eng_op_desc *const eng_ops_index[];
extern const eng_op_desc *const eng_ops_spatial[];
extern const eng_op_desc *const eng_ops_spatial_conv[];
extern const eng_op_desc *const eng_ops_quant[];

#endif
