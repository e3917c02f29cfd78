/*
 * Harness of the operator tests: one node of an op, its attributes parsed
 * from designated-initializer rows (or a record set by hand, as a plan
 * would carry it), shape inference and the reference kernel run through
 * the engine's own entry points (eng_attrs_parse, eng_infer_node,
 * eng_ref_run_node), so each test exercises the op's descriptor.
 */
#ifndef ROUSE_TEST_OPS_TEST_H
#define ROUSE_TEST_OPS_TEST_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/graph.h"
#include "engine/onnx/onnx.h"
#include "engine/op.h"
#include "engine/ref_dispatch.h"

#define OT_MAX_IO 8

#define AT_INT(nm, v)                                                                              \
    {                                                                                              \
        .name = (nm), .type = ONNX_ATTR_INT, .i = (v)                                              \
    }
#define AT_FLOAT(nm, v)                                                                            \
    {                                                                                              \
        .name = (nm), .type = ONNX_ATTR_FLOAT, .f = (v)                                            \
    }
#define AT_STR(nm, v)                                                                              \
    {                                                                                              \
        .name = (nm), .type = ONNX_ATTR_STRING, .s = (v), .s_len = sizeof(v) - 1                   \
    }
#define AT_INTS(nm, ...)                                                                           \
    {                                                                                              \
        .name = (nm), .type = ONNX_ATTR_INTS,                                                      \
        .n_ints = (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), .ints = (int64_t[])   \
        {                                                                                          \
            __VA_ARGS__                                                                            \
        }                                                                                          \
    }

typedef struct ot_node {
    eng_node n;
    int in_ids[OT_MAX_IO], out_ids[OT_MAX_IO];
    eng_tensor out[OT_MAX_IO];
    rouse_errbuf eb;
} ot_node;

/* A node of op with n_in inputs (all present) and n_out outputs, named "t". */
static inline void ot_init(ot_node *t, eng_op op, int opset, int n_in, int n_out)
{
    memset(t, 0, sizeof(*t));
    for (int i = 0; i < OT_MAX_IO; i++)
        t->in_ids[i] = t->out_ids[i] = i;
    t->n = (eng_node){.name = "t",
                      .op = op,
                      .opset = opset,
                      .n_in = n_in,
                      .in = t->in_ids,
                      .n_out = n_out,
                      .out = t->out_ids};
}

/* Parses attribute rows (a zeroed row ends them) with the op's parse and
 * check hooks, as the loader does. */
static inline int ot_parse(ot_node *t, const onnx_attr *attrs)
{
    int n = 0;
    while (attrs && attrs[n].name)
        n++;
    onnx_node on = {.name = "t",
                    .op_type = eng_op_name(t->n.op),
                    .domain = "",
                    .n_attrs = n,
                    .attrs = (onnx_attr *)attrs};
    rouse_arena arena;
    rouse_arena_init(&arena, 0);
    rouse_errbuf_clear(&t->eb);
    int rc = eng_attrs_parse(&on, &t->n, &arena, &t->eb);
    rouse_arena_fini(&arena);
    return rc;
}

/* The op's check on the record as it stands (what the plan reader runs). */
static inline int ot_check(ot_node *t)
{
    const eng_op_desc *d = eng_op_desc_get(t->n.op);
    rouse_errbuf_clear(&t->eb);
    return d && d->check ? d->check(&t->n, &t->eb) : 0;
}

/* Infers the outputs and runs the reference kernel into fresh buffers
 * (t->out[k].data, freed by ot_fini). */
static inline int ot_run(ot_node *t, const eng_tensor *const *in)
{
    eng_attrs res;
    rouse_errbuf_clear(&t->eb);
    int rc = eng_infer_node(&t->n, in, t->out, &res, &t->eb);
    if (rc < 0) return rc;
    eng_tensor *outp[OT_MAX_IO];
    for (int k = 0; k < t->n.n_out; k++) {
        int64_t nb = eng_tensor_nbytes(&t->out[k]);
        t->out[k].data = calloc(1, (size_t)(nb > 0 ? nb : 0) + 1);
        outp[k] = &t->out[k];
    }
    return eng_ref_run_node(&t->n, &res, in, outp, &t->eb);
}

static inline void ot_fini(ot_node *t)
{
    for (int k = 0; k < OT_MAX_IO; k++) {
        free(t->out[k].data);
        t->out[k].data = NULL;
    }
}

/* A tensor over caller-owned data. */
static inline eng_tensor ot_tensor(int dtype, int rank, const int64_t *shape, const void *data)
{
    eng_tensor t = {.dtype = dtype, .rank = rank, .data = (void *)data};
    for (int i = 0; i < rank; i++)
        t.shape[i] = shape[i];
    return t;
}

#endif
