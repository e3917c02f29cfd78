/*
 * Helpers of the shape and index op tests: one call parses a node's ONNX
 * attributes, infers its output shapes from inputs whose values are known
 * (as at prepare), and runs its reference kernel, the way the engine does
 * for a model; outputs are allocated here and freed by st_free().
 */
#ifndef ROUSE_TEST_OPS_SHAPE_TEST_H
#define ROUSE_TEST_OPS_SHAPE_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "engine/graph.h"
#include "engine/onnx/onnx.h"
#include "engine/op.h"
#include "engine/ref_dispatch.h"
#include "rouse/err.h"

#define ST_MAX_IO 8
#define ST_MAX_ATTRS 8

#define NVALS(T, ...) ((int)(sizeof((T[]){__VA_ARGS__}) / sizeof(T)))

/* Attribute rows; a zeroed row (name NULL) ends a list. */
#define A_INT(nm, v)                                                                               \
    {                                                                                              \
        .name = (nm), .type = ONNX_ATTR_INT, .i = (v)                                              \
    }
#define A_FLOAT(nm, v)                                                                             \
    {                                                                                              \
        .name = (nm), .type = ONNX_ATTR_FLOAT, .f = (v)                                            \
    }
#define A_STR(nm, v)                                                                               \
    {                                                                                              \
        .name = (nm), .type = ONNX_ATTR_STRING, .s = (v), .s_len = sizeof(v) - 1                   \
    }
#define A_INTS(nm, ...)                                                                            \
    {                                                                                              \
        .name = (nm), .type = ONNX_ATTR_INTS, .n_ints = NVALS(int64_t, __VA_ARGS__),               \
        .ints = (int64_t[])                                                                        \
        {                                                                                          \
            __VA_ARGS__                                                                            \
        }                                                                                          \
    }

/* Tensors: T_IN(dtype, C type, shape..., values...) needs the shape as a
 * compound literal, so the helpers take the pieces apart. */
static inline eng_tensor st_tensor(int dtype, int rank, const int64_t *shape, const void *data)
{
    eng_tensor t;
    memset(&t, 0, sizeof(t));
    t.dtype = dtype;
    t.rank = rank;
    for (int i = 0; i < rank; i++)
        t.shape[i] = shape[i];
    t.data = (void *)data;
    return t;
}
#define DIMS(...)                                                                                  \
    NVALS(int64_t, __VA_ARGS__), (const int64_t[])                                                 \
    {                                                                                              \
        __VA_ARGS__                                                                                \
    }
#define F32(...)                                                                                   \
    (const float[])                                                                                \
    {                                                                                              \
        __VA_ARGS__                                                                                \
    }
#define I64(...)                                                                                   \
    (const int64_t[])                                                                              \
    {                                                                                              \
        __VA_ARGS__                                                                                \
    }
#define I32(...)                                                                                   \
    (const int32_t[])                                                                              \
    {                                                                                              \
        __VA_ARGS__                                                                                \
    }
#define U8(...)                                                                                    \
    (const uint8_t[])                                                                              \
    {                                                                                              \
        __VA_ARGS__                                                                                \
    }

/* A node run: the outputs and the message of a failure. */
typedef struct st_run {
    eng_node node;
    int in_ids[ST_MAX_IO], out_ids[ST_MAX_IO];
    eng_tensor out[ST_MAX_IO];
    eng_attrs resolved;
    rouse_errbuf eb;
    int stage; /* 1 parse, 2 infer, 3 run: where rc came from */
} st_run;

static inline void st_free(st_run *r)
{
    for (int i = 0; i < ST_MAX_IO; i++) {
        free(r->out[i].data);
        r->out[i].data = NULL;
    }
}

/* Parses attrs into r->node (op at opset, n_in inputs, n_out outputs). */
static inline int st_parse(st_run *r, eng_op op, int opset, onnx_attr *attrs, int n_in, int n_out)
{
    int n_attrs = 0;
    while (attrs && n_attrs < ST_MAX_ATTRS && attrs[n_attrs].name)
        n_attrs++;
    memset(r, 0, sizeof(*r));
    for (int i = 0; i < ST_MAX_IO; i++) {
        r->in_ids[i] = i;
        r->out_ids[i] = ST_MAX_IO + i;
    }
    onnx_node on = {
        .name = "t", .op_type = eng_op_name(op), .domain = "", .n_attrs = n_attrs, .attrs = attrs};
    r->node = (eng_node){.name = "t",
                         .op = op,
                         .opset = opset,
                         .n_in = n_in,
                         .in = r->in_ids,
                         .n_out = n_out,
                         .out = r->out_ids};
    rouse_arena arena;
    rouse_arena_init(&arena, 0);
    r->stage = 1;
    int rc = eng_attrs_parse(&on, &r->node, &arena, &r->eb);
    rouse_arena_fini(&arena);
    return rc;
}

/* Infers and runs r->node on in[0..n_in) (a NULL entry or one with dtype 0
 * is an omitted input). Values of inputs are visible to inference. */
static inline int st_exec(st_run *r, const eng_tensor *in)
{
    const eng_tensor *in_p[ST_MAX_IO];
    eng_tensor *out_p[ST_MAX_IO];
    for (int i = 0; i < r->node.n_in; i++) {
        in_p[i] = in && in[i].dtype ? &in[i] : NULL;
        if (!in_p[i]) r->in_ids[i] = -1;
    }
    r->stage = 2;
    int rc = eng_infer_node(&r->node, in_p, r->out, &r->resolved, &r->eb);
    if (rc < 0) return rc;
    for (int k = 0; k < r->node.n_out; k++) {
        int64_t nb = eng_tensor_nbytes(&r->out[k]);
        assert_true(nb >= 0);
        r->out[k].data = calloc(1, (size_t)nb + 1);
        assert_non_null(r->out[k].data);
        out_p[k] = &r->out[k];
    }
    r->stage = 3;
    return eng_ref_run_node(&r->node, &r->resolved, in_p, out_p, &r->eb);
}

/* st_parse + st_exec. */
static inline int st_op(st_run *r, eng_op op, int opset, onnx_attr *attrs, int n_in,
                        const eng_tensor *in, int n_out)
{
    int rc = st_parse(r, op, opset, attrs, n_in, n_out);
    if (rc < 0) return rc;
    return st_exec(r, in);
}

/* Output k has this shape and type. */
static inline void st_assert_shape(const st_run *r, int k, int dtype, int rank,
                                   const int64_t *shape)
{
    const eng_tensor *t = &r->out[k];
    assert_int_equal(t->dtype, dtype);
    assert_int_equal(t->rank, rank);
    for (int d = 0; d < rank; d++)
        assert_int_equal(t->shape[d], shape[d]);
}

/* Output k holds exactly these bytes. */
static inline void st_assert_bytes(const st_run *r, int k, const void *want, size_t n)
{
    int64_t nb = eng_tensor_nbytes(&r->out[k]);
    assert_int_equal(nb, (int64_t)n);
    if (n) assert_memory_equal(r->out[k].data, want, n);
}
#define ST_EQ(r, k, arr) st_assert_bytes((r), (k), (arr), sizeof(arr))

/* The failure came from this stage with this code and mentions `part`. */
static inline void st_assert_fails(const st_run *r, int rc, int stage, int code, const char *part)
{
    assert_int_equal(rc, code);
    assert_int_equal(r->stage, stage);
    if (!strstr(r->eb.msg, part)) {
        print_error("message \"%s\" lacks \"%s\"\n", r->eb.msg, part);
        fail();
    }
}

#endif
