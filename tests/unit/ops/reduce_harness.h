/*
 * Test support of the reduce and norm family tests: one-node ONNX models
 * built in C, run through the public engine API on the reference kernels
 * (and, for the oneDNN builders, on both kernel sets), with the first
 * error of any stage (load, prepare, run) reported with its message.
 * Allocation failures abort the test.
 */
#ifndef ROUSE_TESTS_OPS_REDUCE_HARNESS_H
#define ROUSE_TESTS_OPS_REDUCE_HARNESS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_builder.h"
#include "rouse/engine.h"

#define H_MAX_IO 8

/* One input of the node: a graph input, or an initializer when `init`. */
typedef struct h_in {
    const char *name; /* "" for an omitted optional input */
    int dtype;
    int rank;
    int64_t shape[ROUSE_MAX_RANK];
    const void *data;
    bool init;
} h_in;

typedef struct h_attr {
    const char *name;
    char kind; /* 'i' int, 'f' float, 'l' ints, 's' string */
    int64_t i;
    float f;
    int n;
    int64_t ints[8];
    const char *s;
} h_attr;

typedef struct h_node {
    int opset;
    const char *op;
    int n_in;
    h_in in[H_MAX_IO];
    int n_attr;
    h_attr attr[6];
    int n_out;
    const char *out[H_MAX_IO]; /* "" for an omitted optional output */
    int out_dtype[H_MAX_IO];
} h_node;

/* The outputs of one run (owned copies). */
typedef struct h_result {
    int rc;
    char msg[512];
    int n_out;
    rouse_tensor out[H_MAX_IO];
    rouse_session_stats stats;
} h_result;

static size_t h_dtype_size(int dt)
{
    switch (dt) {
    case ROUSE_DT_DOUBLE:
    case ROUSE_DT_INT64:
    case ROUSE_DT_UINT64:
        return 8;
    case ROUSE_DT_FLOAT:
    case ROUSE_DT_INT32:
    case ROUSE_DT_UINT32:
        return 4;
    case ROUSE_DT_FLOAT16:
    case ROUSE_DT_BFLOAT16:
    case ROUSE_DT_INT16:
    case ROUSE_DT_UINT16:
        return 2;
    default:
        return 1;
    }
}

static size_t h_nbytes(const h_in *t)
{
    size_t n = h_dtype_size(t->dtype);
    for (int d = 0; d < t->rank; d++)
        n *= (size_t)t->shape[d];
    return n;
}

static void h_serialize(const h_node *nd, rouse_buf *b)
{
    ob_model *m = ob_model_new(nd->opset);
    const char *ins[H_MAX_IO];
    for (int i = 0; i < nd->n_in; i++) {
        const h_in *t = &nd->in[i];
        ins[i] = t->name;
        if (!t->name[0]) continue;
        if (t->init)
            ob_initializer(m, t->name, t->dtype, t->rank, t->shape, t->data, h_nbytes(t));
        else
            ob_input(m, t->name, t->dtype, t->rank, t->shape);
    }
    ob_node *n = ob_add_node(m, nd->op, "node0", nd->n_in, ins, nd->n_out, nd->out);
    for (int i = 0; i < nd->n_attr; i++) {
        const h_attr *a = &nd->attr[i];
        if (a->kind == 'i') ob_attr_int(n, a->name, a->i);
        if (a->kind == 'f') ob_attr_float(n, a->name, a->f);
        if (a->kind == 'l') ob_attr_ints(n, a->name, a->n, a->ints);
        if (a->kind == 's') ob_attr_string(n, a->name, a->s);
    }
    for (int i = 0; i < nd->n_out; i++)
        if (nd->out[i][0]) ob_output_any(m, nd->out[i], nd->out_dtype[i]);
    rouse_buf_init(b);
    ob_serialize(m, b);
    ob_model_free(m);
}

/* Runs the node once; reference selects the plain C kernels. */
static void h_run(const h_node *nd, bool reference, h_result *r)
{
    memset(r, 0, sizeof(*r));
    rouse_buf b;
    h_serialize(nd, &b);
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    rouse_model *m = NULL;
    rouse_session *s = NULL;
    rouse_session_options o = {.threads = 1, .reference_kernels = reference};
    rouse_tensor in[H_MAX_IO];
    int n_in = 0;
    for (int i = 0; i < nd->n_in; i++) {
        const h_in *t = &nd->in[i];
        if (!t->name[0] || t->init) continue;
        rouse_tensor *x = &in[n_in++];
        memset(x, 0, sizeof(*x));
        x->name = t->name;
        x->dtype = t->dtype;
        x->rank = t->rank;
        memcpy(x->shape, t->shape, sizeof(int64_t) * (size_t)t->rank);
        x->data = t->data;
        x->nbytes = h_nbytes(t);
    }
    if ((r->rc = rouse_model_load_memory(b.data, b.len, &m, &eb)) < 0) goto out;
    if ((r->rc = rouse_session_create(m, &o, &s, &eb)) < 0) goto out;
    if ((r->rc = rouse_session_run(s, in, n_in, &eb)) < 0) goto out;
    r->n_out = rouse_model_n_outputs(m);
    for (int i = 0; i < r->n_out; i++) {
        rouse_tensor t;
        assert_int_equal(rouse_session_output(s, i, &t), 0);
        r->out[i] = t;
        void *copy = malloc(t.nbytes ? t.nbytes : 1);
        assert_non_null(copy);
        memcpy(copy, t.data, t.nbytes);
        r->out[i].data = copy;
        r->out[i].name = NULL;
    }
    rouse_session_get_stats(s, &r->stats);
out:
    snprintf(r->msg, sizeof(r->msg), "%s", eb.msg);
    rouse_session_destroy(s);
    rouse_model_destroy(m);
    rouse_buf_fini(&b);
}

static void h_free(h_result *r)
{
    for (int i = 0; i < r->n_out; i++)
        free((void *)r->out[i].data);
    r->n_out = 0;
}

/* Runs on the reference kernels and expects success. */
static void h_ok(const h_node *nd, h_result *r)
{
    h_run(nd, true, r);
    if (r->rc < 0) fail_msg("%s: %s", rouse_err_name(r->rc), r->msg);
}

/* Expects failure with code and a message containing fragment. */
static void h_err(const h_node *nd, int code, const char *fragment)
{
    h_result r;
    h_run(nd, true, &r);
    if (r.rc != code)
        fail_msg("expected %s, got %s: %s", rouse_err_name(code), rouse_err_name(r.rc), r.msg);
    if (!strstr(r.msg, fragment)) fail_msg("message '%s' lacks '%s'", r.msg, fragment);
    h_free(&r);
}

/* Output k as doubles compared with want[] (exact for integer types;
 * 1e-6 relative for floats, 1e-3 for half types). */
static void h_expect(const h_result *r, int k, int dtype, int rank, const int64_t *shape,
                     const double *want)
{
    const rouse_tensor *t = &r->out[k];
    assert_true(k < r->n_out);
    assert_int_equal(t->dtype, dtype);
    assert_int_equal(t->rank, rank);
    size_t n = 1;
    for (int d = 0; d < rank; d++) {
        assert_int_equal(t->shape[d], shape[d]);
        n *= (size_t)shape[d];
    }
    assert_int_equal(t->nbytes, n * h_dtype_size(dtype));
    for (size_t i = 0; i < n; i++) {
        double v = 0, tol = 0;
        switch (dtype) {
        case ROUSE_DT_FLOAT:
            v = ((const float *)t->data)[i];
            tol = 1e-6 * (1 + fabs(want[i]));
            break;
        case ROUSE_DT_DOUBLE:
            v = ((const double *)t->data)[i];
            tol = 1e-12 * (1 + fabs(want[i]));
            break;
        case ROUSE_DT_FLOAT16: {
            uint16_t h = ((const uint16_t *)t->data)[i];
            int e = (h >> 10) & 0x1f, mt = h & 0x3ff;
            v = e == 0 ? ldexp(mt, -24) : e == 31 ? (mt ? NAN : INFINITY) : ldexp(mt + 1024, e - 25);
            if (h & 0x8000) v = -v;
            tol = 1e-3 * (1 + fabs(want[i]));
            break;
        }
        case ROUSE_DT_INT8:
            v = ((const int8_t *)t->data)[i];
            break;
        case ROUSE_DT_UINT8:
        case ROUSE_DT_BOOL:
            v = ((const uint8_t *)t->data)[i];
            break;
        case ROUSE_DT_INT16:
            v = ((const int16_t *)t->data)[i];
            break;
        case ROUSE_DT_UINT16:
            v = ((const uint16_t *)t->data)[i];
            break;
        case ROUSE_DT_INT32:
            v = ((const int32_t *)t->data)[i];
            break;
        case ROUSE_DT_UINT32:
            v = ((const uint32_t *)t->data)[i];
            break;
        case ROUSE_DT_INT64:
            v = (double)((const int64_t *)t->data)[i];
            break;
        case ROUSE_DT_UINT64:
            v = (double)((const uint64_t *)t->data)[i];
            break;
        default:
            fail_msg("type %d not handled by the test", dtype);
        }
        bool ok = isnan(want[i]) ? isnan(v) : isinf(want[i]) ? v == want[i] : fabs(v - want[i]) <= tol;
        if (!ok) fail_msg("output %d element %zu: got %.9g, want %.9g", k, i, v, want[i]);
    }
}

/* Runs on both kernel sets and compares output 0 (float) within
 * 1e-4 + 1e-3 * |ref|; returns the optimized run's stats. */
static rouse_session_stats h_both(const h_node *nd)
{
    h_result a, b;
    h_run(nd, false, &a);
    if (a.rc < 0) fail_msg("optimized: %s", a.msg);
    h_run(nd, true, &b);
    if (b.rc < 0) fail_msg("reference: %s", b.msg);
    assert_int_equal(a.out[0].rank, b.out[0].rank);
    assert_int_equal(a.out[0].nbytes, b.out[0].nbytes);
    const float *pa = a.out[0].data, *pb = b.out[0].data;
    for (size_t i = 0; i < a.out[0].nbytes / 4; i++)
        if (!(fabsf(pa[i] - pb[i]) <= 1e-4f + 1e-3f * fabsf(pb[i])))
            fail_msg("element %zu: optimized %g, reference %g", i, (double)pa[i], (double)pb[i]);
    rouse_session_stats st = a.stats;
    h_free(&a);
    h_free(&b);
    return st;
}

static uint64_t h_rng = 0x9e3779b97f4a7c15ull;

/* n floats uniform in [-1, 1) (owned: free()). */
static float *h_rand(int64_t n)
{
    float *p = malloc(sizeof(float) * (size_t)(n ? n : 1));
    assert_non_null(p);
    for (int64_t i = 0; i < n; i++) {
        h_rng ^= h_rng << 13;
        h_rng ^= h_rng >> 7;
        h_rng ^= h_rng << 17;
        p[i] = (float)((h_rng >> 16) % 20001) / 10000.0f - 1.0f;
    }
    return p;
}

#endif
