/*
 * Builders shared by the infer tests: ONNX attributes and nodes written as
 * designated initializers, so that each test case is one table row.
 */
#ifndef ROUSE_TEST_INFER_HELPERS_H
#define ROUSE_TEST_INFER_HELPERS_H

#include <stdint.h>

#include "engine/graph.h"
#include "engine/onnx/onnx.h"

#define NINTS(...) ((int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)))

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
        .name = (nm), .type = ONNX_ATTR_INTS, .n_ints = NINTS(__VA_ARGS__), .ints = (int64_t[])    \
        {                                                                                          \
            __VA_ARGS__                                                                            \
        }                                                                                          \
    }

/* A shape: rank from the number of dims. */
#define SHAPE(...) .rank = NINTS(__VA_ARGS__), .shape = {__VA_ARGS__}

#define MAX_TEST_ATTRS 8

static inline int count_attrs(const onnx_attr *a)
{
    int n = 0;
    while (n < MAX_TEST_ATTRS && a[n].name)
        n++;
    return n;
}

/* Parses `attrs` into a fresh node of `op` named `name`. */
static inline int parse_node(eng_op op, int opset, const char *name, onnx_attr *attrs, eng_node *n,
                             rouse_errbuf *eb)
{
    onnx_node on = {.name = name,
                    .op_type = eng_op_name(op),
                    .domain = "",
                    .n_attrs = count_attrs(attrs),
                    .attrs = attrs};
    *n = (eng_node){.name = name, .op = op, .opset = opset};
    rouse_arena arena;
    rouse_arena_init(&arena, 0);
    rouse_errbuf_clear(eb);
    int rc = eng_attrs_parse(&on, n, &arena, eb);
    rouse_arena_fini(&arena);
    return rc;
}

#endif
