/* ONNX ModelProto writer for tests; see onnx_builder.h. */
#include "onnx_builder.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ob_node {
    rouse_buf msg; /* NodeProto fields */
};

struct ob_model {
    int64_t opset;
    rouse_buf graph; /* GraphProto fields except nodes */
    ob_node *nodes[1024];
    int n_nodes;
};

static void check(int rc)
{
    if (rc < 0) {
        fprintf(stderr, "onnx_builder: out of memory\n");
        abort();
    }
}

void pb_put_varint(rouse_buf *b, uint64_t v)
{
    do {
        unsigned char c = v & 0x7f;
        v >>= 7;
        if (v) c |= 0x80;
        check(rouse_buf_append_byte(b, c));
    } while (v);
}

void pb_put_tag(rouse_buf *b, int field, int wire_type)
{
    pb_put_varint(b, ((uint64_t)field << 3) | (uint64_t)wire_type);
}

void pb_put_bytes(rouse_buf *b, int field, const void *data, size_t len)
{
    pb_put_tag(b, field, 2);
    pb_put_varint(b, len);
    check(rouse_buf_append(b, data, len));
}

void pb_put_int(rouse_buf *b, int field, int64_t v)
{
    pb_put_tag(b, field, 0);
    pb_put_varint(b, (uint64_t)v);
}

static void put_str(rouse_buf *b, int field, const char *s)
{
    pb_put_bytes(b, field, s, strlen(s));
}

static void put_msg(rouse_buf *b, int field, rouse_buf *sub)
{
    pb_put_bytes(b, field, sub->data ? sub->data : "", sub->len);
    rouse_buf_fini(sub);
}

ob_model *ob_model_new(int64_t opset)
{
    ob_model *m = calloc(1, sizeof(*m));
    if (!m) abort();
    m->opset = opset;
    rouse_buf_init(&m->graph);
    put_str(&m->graph, 2, "test_graph");
    return m;
}

void ob_model_free(ob_model *m)
{
    if (!m) return;
    for (int i = 0; i < m->n_nodes; i++) {
        rouse_buf_fini(&m->nodes[i]->msg);
        free(m->nodes[i]);
    }
    rouse_buf_fini(&m->graph);
    free(m);
}

static void value_info(ob_model *m, int field, const char *name, int dtype, int rank,
                       const int64_t *dims, const char *const *dim_names)
{
    rouse_buf vi, type, tt, shape;
    rouse_buf_init(&vi);
    rouse_buf_init(&type);
    rouse_buf_init(&tt);
    rouse_buf_init(&shape);
    put_str(&vi, 1, name);
    pb_put_int(&tt, 1, dtype);
    if (rank >= 0) {
        for (int i = 0; i < rank; i++) {
            rouse_buf dim;
            rouse_buf_init(&dim);
            if (dims[i] >= 0) {
                pb_put_int(&dim, 1, dims[i]);
            } else {
                char p[16];
                snprintf(p, sizeof(p), "d%d", i);
                put_str(&dim, 2, dim_names && dim_names[i] ? dim_names[i] : p);
            }
            put_msg(&shape, 1, &dim);
        }
        put_msg(&tt, 2, &shape);
    }
    rouse_buf_fini(&shape);
    put_msg(&type, 1, &tt);
    put_msg(&vi, 2, &type);
    put_msg(&m->graph, field, &vi);
}

void ob_input(ob_model *m, const char *name, int dtype, int rank, const int64_t *dims)
{
    value_info(m, 11, name, dtype, rank, dims, NULL);
}

void ob_input_named(ob_model *m, const char *name, int dtype, int rank, const int64_t *dims,
                    const char *const *dim_names)
{
    value_info(m, 11, name, dtype, rank, dims, dim_names);
}

void ob_output(ob_model *m, const char *name, int dtype, int rank, const int64_t *dims)
{
    value_info(m, 12, name, dtype, rank, dims, NULL);
}

void ob_output_any(ob_model *m, const char *name, int dtype)
{
    value_info(m, 12, name, dtype, -1, NULL, NULL);
}

void ob_initializer(ob_model *m, const char *name, int dtype, int rank, const int64_t *dims,
                    const void *data, size_t nbytes)
{
    rouse_buf t;
    rouse_buf_init(&t);
    for (int i = 0; i < rank; i++)
        pb_put_int(&t, 1, dims[i]);
    pb_put_int(&t, 2, dtype);
    put_str(&t, 8, name);
    pb_put_bytes(&t, 9, data, nbytes);
    put_msg(&m->graph, 5, &t);
}

static void put_entry(rouse_buf *t, const char *key, const char *value)
{
    rouse_buf e;
    rouse_buf_init(&e);
    put_str(&e, 1, key);
    put_str(&e, 2, value);
    put_msg(t, 13, &e);
}

void ob_initializer_external(ob_model *m, const char *name, int dtype, int rank,
                             const int64_t *dims, const char *location, int64_t offset,
                             int64_t length)
{
    rouse_buf t;
    char num[32];
    rouse_buf_init(&t);
    for (int i = 0; i < rank; i++)
        pb_put_int(&t, 1, dims[i]);
    pb_put_int(&t, 2, dtype);
    put_str(&t, 8, name);
    put_entry(&t, "location", location);
    if (offset >= 0) {
        snprintf(num, sizeof(num), "%lld", (long long)offset);
        put_entry(&t, "offset", num);
    }
    if (length >= 0) {
        snprintf(num, sizeof(num), "%lld", (long long)length);
        put_entry(&t, "length", num);
    }
    pb_put_int(&t, 14, 1); /* data_location = EXTERNAL */
    put_msg(&m->graph, 5, &t);
}

ob_node *ob_add_node(ob_model *m, const char *op_type, const char *name, int n_in,
                     const char *const *inputs, int n_out, const char *const *outputs)
{
    if (m->n_nodes == 1024) abort();
    ob_node *n = calloc(1, sizeof(*n));
    if (!n) abort();
    rouse_buf_init(&n->msg);
    for (int i = 0; i < n_in; i++)
        put_str(&n->msg, 1, inputs[i]);
    for (int i = 0; i < n_out; i++)
        put_str(&n->msg, 2, outputs[i]);
    put_str(&n->msg, 3, name);
    put_str(&n->msg, 4, op_type);
    m->nodes[m->n_nodes++] = n;
    return n;
}

static void attr_head(rouse_buf *a, const char *name, int type)
{
    rouse_buf_init(a);
    put_str(a, 1, name);
    pb_put_int(a, 20, type);
}

void ob_attr_int(ob_node *n, const char *name, int64_t v)
{
    rouse_buf a;
    attr_head(&a, name, 2);
    pb_put_int(&a, 3, v);
    put_msg(&n->msg, 5, &a);
}

void ob_attr_float(ob_node *n, const char *name, float v)
{
    rouse_buf a;
    attr_head(&a, name, 1);
    pb_put_tag(&a, 2, 5);
    check(rouse_buf_append(&a, &v, 4));
    put_msg(&n->msg, 5, &a);
}

void ob_attr_ints(ob_node *n, const char *name, int count, const int64_t *v)
{
    rouse_buf a;
    attr_head(&a, name, 7);
    for (int i = 0; i < count; i++)
        pb_put_int(&a, 8, v[i]);
    put_msg(&n->msg, 5, &a);
}

void ob_attr_floats(ob_node *n, const char *name, int count, const float *v)
{
    rouse_buf a;
    attr_head(&a, name, 6);
    for (int i = 0; i < count; i++) {
        pb_put_tag(&a, 7, 5);
        check(rouse_buf_append(&a, &v[i], 4));
    }
    put_msg(&n->msg, 5, &a);
}

void ob_attr_string(ob_node *n, const char *name, const char *s)
{
    rouse_buf a;
    attr_head(&a, name, 3);
    put_str(&a, 4, s);
    put_msg(&n->msg, 5, &a);
}

void ob_serialize(ob_model *m, rouse_buf *out)
{
    rouse_buf g, opset;
    rouse_buf_init(&g);
    for (int i = 0; i < m->n_nodes; i++)
        pb_put_bytes(&g, 1, m->nodes[i]->msg.data, m->nodes[i]->msg.len);
    check(rouse_buf_append(&g, m->graph.data, m->graph.len));
    pb_put_int(out, 1, 8); /* ir_version */
    put_str(out, 2, "rouse-tests");
    rouse_buf_init(&opset);
    put_str(&opset, 1, "");
    pb_put_int(&opset, 2, m->opset);
    put_msg(out, 8, &opset);
    put_msg(out, 7, &g);
}
