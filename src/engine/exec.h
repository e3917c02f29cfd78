/*
 * Execution plans: the graph prepared for one set of concrete input shapes.
 *
 * Preparing walks the optimized graph in order, infers every shape, picks a
 * kernel per node (a oneDNN primitive where one fits, the plain C reference
 * otherwise), lets oneDNN choose activation layouts (blocked layouts flow
 * from one convolution to the next; reorders are inserted only where a
 * consumer needs another layout), reorders constant weights once, fuses a
 * residual Add (and the activation after it) into the convolution as a sum
 * post-op, and plans all activation memory into one arena with offsets
 * computed from value lifetimes. Running then only executes steps: no
 * allocation, no shape logic.
 */
#ifndef ROUSE_ENGINE_EXEC_H
#define ROUSE_ENGINE_EXEC_H

#include <stdbool.h>
#include <stddef.h>

#include "engine/graph.h"
#include "engine/tensor.h"
#include "rouse/err.h"

typedef struct eng_plan eng_plan;

/* A constant already laid out for a kernel: the weights a compiled plan
 * file carries, used in place (no copy, no reorder) when a kernel wants
 * exactly this layout. `md` is a dnnl_memory_desc_t kept opaque here. */
typedef struct eng_packed {
    int value;      /* graph value id of the constant */
    const void *md; /* dnnl_memory_desc_t */
    const void *data;
    size_t size;
} eng_packed;

typedef struct eng_packed_set {
    int n;
    const eng_packed *items;
} eng_packed_set;

/* Shared per-session oneDNN state (engine and stream). */
typedef struct eng_dnnl_ctx eng_dnnl_ctx;

int eng_dnnl_ctx_create(eng_dnnl_ctx **out, rouse_errbuf *eb);
void eng_dnnl_ctx_destroy(eng_dnnl_ctx *c);
/* MatMuls of up to `rows` rows by a constant read it in place (plans
 * prepared afterwards; rouse_session_options.gemv_max_rows). */
void eng_dnnl_ctx_set_gemv_rows(eng_dnnl_ctx *c, int rows);

/* Statistics of a prepared plan, for logs and tests. */
typedef struct eng_plan_stats {
    int n_steps;
    int n_dnnl;      /* steps run by oneDNN primitives */
    int n_ref;       /* steps run by the reference kernels */
    int n_reorders;  /* layout conversions inserted */
    int n_sum_fused; /* residual Adds fused as sum post-ops */
    int n_qfused;    /* DequantizeLinear -> Add / average pool -> QuantizeLinear run on u8 */
    int n_folded;    /* nodes evaluated while preparing (not run per inference) */
    /* multiply-accumulates per inference on the reference kernels */
    uint64_t ref_macs;
    size_t arena_bytes;   /* activations and the kernels' scratchpads, planned together */
    size_t scratch_bytes; /* the scratchpads' sum (each alive at its own step only) */
    size_t weight_bytes;
} eng_plan_stats;

/* Prepares g for the given inputs (one per g->inputs entry, in that order;
 * shapes concrete, data used only where shapes depend on values). With
 * `reference`, every node runs on the reference kernels. `packed` (may be
 * NULL) offers constants already in kernel layouts.
 * Owned: free with eng_plan_destroy. */
int eng_plan_create(const eng_graph *g, eng_dnnl_ctx *ctx, const eng_tensor *inputs, bool reference,
                    const eng_packed_set *packed, eng_plan **out, rouse_errbuf *eb);
/* eng_plan_create with a bound on activation memory (0: the machine's
 * memory): a plan whose arena, or one node's output, would exceed it is
 * ROUSE_ETOOBIG, refused before the arena or the node's kernel exists. */
int eng_plan_create_limited(const eng_graph *g, eng_dnnl_ctx *ctx, const eng_tensor *inputs,
                            bool reference, const eng_packed_set *packed, uint64_t max_bytes,
                            eng_plan **out, rouse_errbuf *eb);
void eng_plan_destroy(eng_plan *p);

/* Runs the plan on inputs with the same shapes it was prepared for. */
int eng_plan_run(eng_plan *p, const eng_tensor *inputs, rouse_errbuf *eb);

/* Per-step timing: with `on`, every later run adds each step's wall time
 * to its total (and resets nothing); off drops the totals. Returns 0, or
 * ROUSE_ENOMEM. */
int eng_plan_set_profiling(eng_plan *p, bool on);

/* One step's share of the profiled runs. */
typedef struct eng_step_profile {
    const char *node;   /* node name ("" unnamed; "(reorder)" for an inserted layout change) */
    const char *op;     /* ONNX op_type, "Reorder" or "Copy" */
    const char *kernel; /* "onednn", "reference" or "copy" */
    int fused;          /* activations and Adds fused into this step */
    uint64_t ns;        /* summed over runs */
    uint64_t min_ns;    /* its fastest run */
    uint64_t runs;
} eng_step_profile;

/* Number of steps; fills *out for step i (0 <= i < count). 0 when profiling is off. */
int eng_plan_profile_count(const eng_plan *p);
void eng_plan_profile_step(const eng_plan *p, int i, eng_step_profile *out);

/* Output i (in g->outputs order) of the last run: borrowed until the next run. */
const eng_tensor *eng_plan_output(const eng_plan *p, int i);

void eng_plan_get_stats(const eng_plan *p, eng_plan_stats *st);

/* The weights this plan reordered itself (not taken from `packed`), for
 * writing a compiled plan. Borrowed: valid while the plan lives. */
void eng_plan_get_made(const eng_plan *p, eng_packed_set *out);

/* Size of the opaque layout descriptor in eng_packed.md. */
size_t eng_packed_md_size(void);

/* Marks need[v] (g->n_values entries) for every value whose *data* preparing
 * reads: the inputs shape inference reads values of (Reshape's shape, axes,
 * pads, Clip's bounds: eng_op_desc.value_inputs), and, transitively, the
 * inputs of every node computing such a value (folded at prepare time),
 * except through Shape and Size, which read shapes only. Returns 0. */
int eng_graph_value_needs(const eng_graph *g, bool *need);

/* True when preparing reads the values (not only the shape) of graph input
 * i, directly or through values derived from it (eng_graph_value_needs):
 * then the plan is keyed by those values too. */
bool eng_graph_input_value_matters(const eng_graph *g, int i);

/* Prepare-time folding: a node whose inputs are all known while preparing
 * (constants, graph inputs whose values key the plan, values folded before;
 * Shape and Size need only the shape of theirs) is evaluated once by the
 * reference kernels when its outputs hold at most this many bytes together,
 * and its outputs become constants of the plan. Shape arithmetic is a few
 * int64s; the bound keeps a hostile graph from making preparing compute or
 * hold large tensors. */
#define ENG_PREPARE_FOLD_MAX_BYTES (64 * 1024)
/* ... and when it costs at most this many multiply-accumulates (a small
 * output can still sum a large product). */
#define ENG_PREPARE_FOLD_MAX_MACS ((int64_t)1 << 20)

/* A node that would run on the reference kernels (every node with
 * `reference`, and those oneDNN declines) is refused when one run costs
 * more multiply-accumulates than this (ROUSE_ETOOBIG naming the node):
 * 2^33, tens of seconds of plain C, where a real layer is below 2^30. The
 * fuzz build sets a lower bound: under the sanitizers each input must cost
 * at most about a second. */
#ifndef ENG_REF_MAX_MACS
#define ENG_REF_MAX_MACS ((int64_t)1 << 33)
#endif

#endif
