/*
 * Private parts of the execution plan, shared by exec.c (plan building,
 * memory planning, running) and exec_dnnl.c (oneDNN kernel builders).
 */
#ifndef ROUSE_ENGINE_EXEC_INT_H
#define ROUSE_ENGINE_EXEC_INT_H

#include <dnnl.h>

#include "engine/exec.h"

struct eng_dnnl_ctx {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    int gemv_max_rows; /* rouse_session_options.gemv_max_rows, at least 1 */
};

/* A prepared value: a graph value (or a temporary) with concrete shape and
 * physical layout. */
typedef struct exec_pv {
    eng_tensor t;          /* logical dtype and shape; data bound after planning */
    dnnl_memory_desc_t md; /* physical layout; valid when has_md */
    bool has_md;           /* float values only */
    bool plain;            /* dense row-major */
    int storage;           /* arena storage index; -1 for constants and inputs */
    int input_index;       /* graph input slot bound at run time, or -1 */
    int plain_pv;          /* cached plain copy of a blocked value, or -1 */
    int value;             /* graph value it holds, or -1 for a temporary */
    dnnl_memory_t mem;     /* created on demand once data is bound */
} exec_pv;

typedef struct exec_storage {
    size_t size;
    int first, last; /* step indices of the first write and the last read */
    size_t offset;
    int n_pvs; /* prepared values living in this storage */
} exec_storage;

enum { STEP_DNNL, STEP_REF, STEP_COPY, STEP_GEMV };

/* Special arg_pv value of a oneDNN step. */
#define ARG_FIXED (-1) /* a memory made at prepare time (weights, bias) */

typedef struct exec_step {
    int kind;
    const eng_node *node; /* NULL for inserted reorders and copies */
    eng_attrs resolved;
    /* STEP_DNNL */
    dnnl_primitive_t prim;
    int n_args;
    dnnl_exec_arg_t *args;
    int *arg_pv;
    int *reads; /* pvs read, for lifetimes (-1 terminated) */
    int write;  /* pv written */
    /* STEP_REF / STEP_COPY / STEP_GEMV */
    int n_in, n_out;
    int *in_pv; /* -1 for omitted */
    int *out_pv;
    /* STEP_GEMV (exec_gemv.c): out_pv[0] = in_pv[0] x w (+ bias) (+ in_pv[1]) */
    const float *gemv_w;            /* [gemv_k, gemv_n], the constant's own bytes */
    const float *gemv_bias;         /* [gemv_n] or NULL */
    int64_t gemv_k, gemv_n, gemv_m; /* gemv_m: rows of a and out */
} exec_step;

/* DequantizeLinear of each input -> Add [-> Relu] or average pooling ->
 * QuantizeLinear, run on the u8 data (exec_dnnl_qfuse.c). Node indices. */
typedef struct exec_qpat {
    int center; /* the Add, AveragePool or GlobalAveragePool */
    int dq[2];  /* the DequantizeLinear of each input (dq[1] -1 for a pool) */
    int relu;   /* a Relu between the Add and Q, or -1 */
    int q;      /* the QuantizeLinear */
} exec_qpat;

struct eng_plan {
    const eng_graph *g;
    eng_dnnl_ctx *ctx;
    exec_pv *pvs;
    int n_pvs, cap_pvs;
    exec_storage *st;
    int n_st, cap_st;
    exec_step *steps;
    int n_steps, cap_steps;
    int *val_pv;      /* graph value -> its current prepared value, -1 */
    int *uses_left;   /* graph value -> reads not yet planned (prepare only) */
    bool *skip;       /* node consumed by a fusion (prepare only) */
    exec_qpat *qpats; /* u8 patterns found (prepare only) */
    int n_qpats;
    int *qpat_of;      /* node -> index of the pattern it is the centre of, or -1;
                          NULL when there is none (prepare only) */
    bool *input_known; /* graph input slot -> its values key the plan (prepare only) */
    int *out_pv;       /* per graph output */
    eng_tensor *outputs;
    void *arena;
    size_t arena_size;
    void **owned; /* weight buffers and fixed memories to release */
    int n_owned, cap_owned;
    dnnl_memory_t *fixed_mems;
    int n_fixed, cap_fixed;
    rouse_arena mem;             /* small per-plan arrays */
    struct weight_chunk *chunks; /* see plan_weight_alloc */
    eng_plan_stats stats;
    bool reference;               /* no oneDNN kernels */
    uint64_t phys_bytes;          /* the machine's memory, read once per plan */
    uint64_t limit_bytes;         /* the caller's bound on activation memory, 0: none */
    bool blocked_convs;           /* convolutions keep activations in aBcd16b */
    size_t largest_value;         /* bytes of the largest value a node computes
                                     (plan_prefers_blocked's dry run; SIZE_MAX:
                                     unknown) */
    const eng_packed_set *packed; /* constants offered in kernel layouts */
    eng_packed *made;             /* constants this plan reordered itself */
    dnnl_memory_desc_t *made_md;
    int n_made, cap_made;
    uint64_t *prof_ns;  /* per step: nanoseconds summed over profiled runs, or NULL */
    uint64_t *prof_min; /* per step: its fastest profiled run (after prof_ns) */
    uint64_t prof_runs;
};

/* exec.c services used by the kernel builders. */
int plan_new_pv(eng_plan *p, const eng_tensor *shape, int *out);
int plan_pv_plain(eng_plan *p, int id, rouse_errbuf *eb);
/* A new value of shape `shape` over the bytes of plain value src (same
 * element count), which must live in the arena (not an input or a
 * constant): a reshape without a step. */
int plan_view_pv(eng_plan *p, int src, const eng_tensor *shape, int *out);
int plan_pv_as(eng_plan *p, int id, const dnnl_memory_desc_t *md, rouse_errbuf *eb);
/* Always a new value: a reorder (or copy, for equal layouts) of src into md. */
int plan_reorder_new(eng_plan *p, int src, const dnnl_memory_desc_t *md, int *out,
                     rouse_errbuf *eb);
int plan_add_step(eng_plan *p, exec_step **out);
/* Records that graph value `value` is now held by prepared value pv. */
void plan_bind_value(eng_plan *p, int value, int pv);
int plan_own(eng_plan *p, void *ptr);
/* Memory for reordered weights, 64-byte aligned, from large chunks backed by
 * transparent huge pages where the kernel allows (a 44 MB model then faults
 * in 22 pages, not 11,000). NULL when out of memory. */
void *plan_weight_alloc(eng_plan *p, size_t size);
int plan_fixed_mem(eng_plan *p, const dnnl_memory_desc_t *md, void *handle, dnnl_memory_t *out);
/* A new temporary of `size` bytes for one step's oneDNN scratchpad: a
 * storage of the arena that the memory planner places like an activation,
 * alive only at the step that reads it. */
int plan_scratch_pv(eng_plan *p, size_t size, int *out);
int plan_md_plain(int dtype, int rank, const int64_t *shape, dnnl_memory_desc_t *md);
/* A layout given by dims and strides alone (plain, or a permutation of
 * plain such as a transposed view), not blocked. */
bool plan_md_strided(const dnnl_memory_desc_t *md);

/* A 2-D 3x3, stride 1, undilated, ungrouped convolution with channel counts
 * that oneDNN's Winograd kernels accept. */
bool exec_conv_winograd_eligible(int rank, const eng_conv_attrs *a, int64_t c_in, int64_t c_out);

/* One argument of a oneDNN step: a prepared value, or a fixed memory. */
typedef struct exec_dnnl_arg {
    int arg;
    int pv;              /* prepared value, or ARG_FIXED */
    dnnl_memory_t fixed; /* with ARG_FIXED */
} exec_dnnl_arg;

/* A product of m rows with a constant plain matrix (exec_gemv.c): a step
 * computing out = a [m, K] x w [K, N] (+ bias [N] on every row) (+ addend,
 * m x N elements), reading w where it lies. a and addend are plain values
 * (addend_pv -1 for none); *out_pv gets the new plain value of shape `out`. */
int exec_gemv_add_step(eng_plan *p, const eng_node *n, const eng_attrs *resolved, int a_pv,
                       const float *w, int64_t m, int64_t k, int64_t nn, const float *bias,
                       int addend_pv, const eng_tensor *out, int *out_pv);
/* Runs a STEP_GEMV step. */
int exec_gemv_run(const eng_plan *p, const exec_step *st, rouse_errbuf *eb);

/* exec_dnnl.c services used by the builders in other files. */
/* 1 when oneDNN has an implementation of op_desc (*pd then owned by the
 * caller), 0 when not, negative on error. The step's scratchpad is the
 * user's (exec_dnnl_add_step places it in the arena). */
int exec_dnnl_pd(eng_plan *p, const_dnnl_op_desc_t op_desc, dnnl_primitive_desc_t *pd,
                 rouse_errbuf *eb);
/* A new prepared value of shape `shape` with layout md. */
int exec_dnnl_new_pv(eng_plan *p, const eng_tensor *shape, const dnnl_memory_desc_t *md, int *out);
/* Creates the primitive of pd and appends its step writing write_pv; takes
 * ownership of pd. */
int exec_dnnl_add_step(eng_plan *p, const eng_node *n, const eng_attrs *resolved,
                       dnnl_primitive_desc_t pd, const exec_dnnl_arg *a, int n_a, int write_pv,
                       rouse_errbuf *eb);

/* u8 patterns (exec_dnnl_qfuse.c). find: records them in p->qpats and
 * marks their Relu and QuantizeLinear nodes (and DequantizeLinear nodes
 * only they read) skipped; 0 or ROUSE_ENOMEM. build: the u8 kernel of one,
 * when the prepared values allow it: 1 built (the Q's output bound), 0 not
 * (the caller builds the pattern's nodes one by one), < 0 error. */
int exec_qfuse_find(eng_plan *p);
int exec_qfuse_build(eng_plan *p, const exec_qpat *qp, rouse_errbuf *eb);

/* oneDNN builders of the reductions and normalizations (exec_dnnl_norm.c),
 * same contract as exec_dnnl_build: 1 built, 0 not handled, < 0 error. */
int exec_dnnl_norm_build(eng_plan *p, const eng_node *n, const eng_attrs *resolved, const int *in,
                         const eng_tensor *out_shapes, int *out_pv, rouse_errbuf *eb);

/* Builds a oneDNN step for node n when one fits: returns 1 when built, 0 when
 * the node should run on the reference kernels, negative on error. `in` are
 * the node's input pvs (-1 omitted), `out_shapes` its inferred outputs. On
 * success the node's output pvs are stored in out_pv. */
int exec_dnnl_build(eng_plan *p, const eng_node *n, const eng_attrs *resolved, const int *in,
                    const eng_tensor *out_shapes, int *out_pv, rouse_errbuf *eb);

/* The same contract for Resize, Upsample and ConvTranspose
 * (exec_dnnl_spatial.c): oneDNN resampling and deconvolution where their
 * arithmetic matches the ONNX op's. */
int exec_dnnl_build_spatial(eng_plan *p, const eng_node *n, const eng_attrs *resolved,
                            const int *in, const eng_tensor *out_shapes, int *out_pv,
                            rouse_errbuf *eb);

/* The same contract for the int8 products QLinearConv, ConvInteger,
 * QLinearMatMul and MatMulInteger (exec_dnnl_quant.c). */
int exec_dnnl_build_quant(eng_plan *p, const eng_node *n, const eng_attrs *resolved, const int *in,
                          const eng_tensor *out_shapes, int *out_pv, rouse_errbuf *eb);

/* exec_dnnl.c services for builders in other files. */
/* A convolution's dims as oneDNN takes them: source and destination from
 * their shapes, the weights w grouped (g, oc/g, ic/g, k...) when a->group
 * > 1, and a's strides, dilations (counted from 0 in oneDNN) and pads.
 * Returns the weights' rank. */
int exec_dnnl_conv_dims(const eng_conv_attrs *a, int rank, const int64_t *src, const int64_t *dst,
                        const int64_t *w, dnnl_dims_t src_d, dnnl_dims_t wei_d, dnnl_dims_t dst_d,
                        dnnl_dims_t strides, dnnl_dims_t dil, dnnl_dims_t pl, dnnl_dims_t pr);
/* A primitive descriptor with the plan's attributes: 1 created, 0 declined. */
int exec_dnnl_create_pd(eng_plan *p, const_dnnl_op_desc_t op_desc, dnnl_primitive_desc_t *pd,
                        rouse_errbuf *eb);
/* One src -> dst step of node n from pd (owned); its output 0 takes the
 * primitive's dst layout. Returns 1. */
int exec_dnnl_src_dst_step(eng_plan *p, const eng_node *n, const eng_attrs *ra,
                           dnnl_primitive_desc_t pd, int src, const eng_tensor *out, int *out_pv,
                           rouse_errbuf *eb);
/* Constant data of layout `from` as a memory of layout `to`, made once
 * (reused from a compiled plan when it offers graph value `value` in that
 * layout; value -1 for derived data). */
int exec_dnnl_const_mem(eng_plan *p, const eng_node *n, int value, const dnnl_memory_desc_t *from,
                        const void *data, const dnnl_memory_desc_t *to, dnnl_memory_t *out,
                        rouse_errbuf *eb);
/* A src, weights (, bias) -> dst step of node n from pd (owned). Returns 1. */
int exec_dnnl_weights_step(eng_plan *p, const eng_node *n, const eng_attrs *ra,
                           dnnl_primitive_desc_t pd, int src, dnnl_memory_t wei, dnnl_memory_t bias,
                           const eng_tensor *out, int *out_pv, rouse_errbuf *eb);

#endif
