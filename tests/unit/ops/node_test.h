/*
 * Single-node models for the operator tests: builds a model around one
 * node from a table of input specs (initializers or graph inputs), runs it
 * on the reference kernels or the optimized ones, and compares outputs
 * with hand-computed values. Test support code: failures end the test.
 */
#ifndef ROUSE_TESTS_NODE_TEST_H
#define ROUSE_TESTS_NODE_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "onnx_builder.h"
#include "rouse/engine.h"

#define NT_MAX_IN 9
#define NT_MAX_OUT 3

typedef struct nt_in {
    const char *name; /* "" for an omitted optional input */
    int dtype, rank;
    int64_t dims[ROUSE_MAX_RANK];
    const void *data;
    bool init; /* an initializer rather than a graph input */
} nt_in;

typedef struct nt_case {
    int opset;
    const char *op;
    int n_in;
    nt_in in[NT_MAX_IN];
    int n_out;
    int out_dtype[NT_MAX_OUT];
    ob_model *m;
    ob_node *node;
} nt_case;

static inline size_t nt_bytes(const nt_in *t)
{
    size_t n = rouse_dtype_size(t->dtype);
    for (int i = 0; i < t->rank; i++)
        n *= (size_t)t->dims[i];
    return n;
}

/* An omitted optional input. */
#define NT_NONE ((nt_in){.name = ""})

/* Builds c->m with one node named "n"; attributes go on c->node after. */
static inline void nt_build(nt_case *c)
{
    static const char *const outs[NT_MAX_OUT] = {"y0", "y1", "y2"};
    const char *names[NT_MAX_IN];
    c->m = ob_model_new(c->opset);
    for (int i = 0; i < c->n_in; i++) {
        const nt_in *t = &c->in[i];
        names[i] = t->name;
        if (!t->name[0]) continue;
        if (t->init)
            ob_initializer(c->m, t->name, t->dtype, t->rank, t->dims, t->data, nt_bytes(t));
        else
            ob_input(c->m, t->name, t->dtype, t->rank, t->dims);
    }
    c->node = ob_add_node(c->m, c->op, "n", c->n_in, names, c->n_out, outs);
    for (int o = 0; o < c->n_out; o++)
        ob_output_any(c->m, outs[o], c->out_dtype[o]);
}

/* Outputs of one run, owned copies. */
typedef struct nt_result {
    int rc;
    rouse_errbuf eb;
    int n_out;
    rouse_tensor out[NT_MAX_OUT];
    rouse_session_stats stats;
} nt_result;

static inline void nt_result_free(nt_result *r)
{
    for (int i = 0; i < r->n_out; i++)
        free((void *)r->out[i].data);
    r->n_out = 0;
}

/* Serializes c->m (freed), loads it (through a compiled plan with
 * via_plan), runs it once. rc is the first error (load, compile, open,
 * session, or run) with its message in eb. */
static inline nt_result nt_run_via(nt_case *c, bool reference, int threads, bool via_plan)
{
    nt_result r;
    memset(&r, 0, sizeof(r));
    rouse_buf b;
    rouse_buf_init(&b);
    ob_serialize(c->m, &b);
    ob_model_free(c->m);
    c->m = NULL;
    rouse_model *m = NULL;
    rouse_session *s = NULL;
    rouse_session_options o = {.threads = threads, .reference_kernels = reference};
    r.rc = rouse_model_load_memory(b.data, b.len, &m, &r.eb);
    if (r.rc == 0 && via_plan) {
        char path[64];
        snprintf(path, sizeof(path), "/tmp/rouse-node-test-%d.plan", (int)getpid());
        r.rc = rouse_model_compile(m, path, &r.eb);
        rouse_model_destroy(m);
        m = NULL;
        if (r.rc == 0) r.rc = rouse_model_open_plan(path, &m, &r.eb);
        unlink(path);
    }
    if (r.rc == 0) r.rc = rouse_session_create(m, &o, &s, &r.eb);
    if (r.rc == 0) {
        rouse_tensor in[NT_MAX_IN];
        int n = 0;
        for (int i = 0; i < c->n_in; i++) {
            const nt_in *t = &c->in[i];
            if (!t->name[0] || t->init) continue;
            in[n] = (rouse_tensor){.name = t->name,
                                   .dtype = t->dtype,
                                   .rank = t->rank,
                                   .data = t->data,
                                   .nbytes = nt_bytes(t)};
            memcpy(in[n].shape, t->dims, sizeof(t->dims));
            n++;
        }
        r.rc = rouse_session_run(s, in, n, &r.eb);
    }
    if (r.rc == 0) {
        assert_int_equal(rouse_session_get_stats(s, &r.stats), 0);
        r.n_out = c->n_out;
        for (int i = 0; i < c->n_out; i++) {
            rouse_tensor t;
            assert_int_equal(rouse_session_output(s, i, &t), 0);
            void *copy = malloc(t.nbytes ? t.nbytes : 1);
            assert_non_null(copy);
            memcpy(copy, t.data, t.nbytes);
            t.data = copy;
            r.out[i] = t;
        }
    }
    rouse_session_destroy(s);
    rouse_model_destroy(m);
    rouse_buf_fini(&b);
    return r;
}

static inline nt_result nt_run(nt_case *c, bool reference, int threads)
{
    return nt_run_via(c, reference, threads, false);
}

/* Runs on the reference kernels and requires success. */
static inline nt_result nt_run_ok(nt_case *c)
{
    nt_result r = nt_run(c, true, 1);
    if (r.rc < 0) fail_msg("%s: %s", rouse_err_name(r.rc), r.eb.msg);
    return r;
}

/* Requires failure with `code` and `fragment` in the message. */
static inline void nt_run_fails(nt_case *c, int code, const char *fragment)
{
    nt_result r = nt_run(c, true, 1);
    if (r.rc != code)
        fail_msg("expected %s, got %s: %s", rouse_err_name(code), rouse_err_name(r.rc), r.eb.msg);
    if (!strstr(r.eb.msg, fragment)) fail_msg("message '%s' lacks '%s'", r.eb.msg, fragment);
    nt_result_free(&r);
}

static inline void nt_expect_shape(const rouse_tensor *t, int rank, const int64_t *dims)
{
    assert_int_equal(t->rank, rank);
    for (int i = 0; i < rank; i++)
        if (t->shape[i] != dims[i])
            fail_msg("dim %d: got %lld, expected %lld", i, (long long)t->shape[i],
                     (long long)dims[i]);
}

/* Builds the case twice with make(c, arg), runs it from the .onnx and
 * through a compiled plan (optimized kernels), and requires the same
 * bytes of every output: the stored attribute records pass the plan
 * reader's checks and mean the same thing. */
static inline void nt_plan_same(void (*make)(nt_case *, const void *), const void *arg)
{
    nt_case a, b;
    make(&a, arg);
    make(&b, arg);
    nt_result x = nt_run_via(&a, false, 1, false), y = nt_run_via(&b, false, 1, true);
    if (x.rc < 0) fail_msg("from the .onnx: %s", x.eb.msg);
    if (y.rc < 0) fail_msg("through a plan: %s", y.eb.msg);
    for (int i = 0; i < x.n_out; i++) {
        assert_int_equal(x.out[i].dtype, y.out[i].dtype);
        assert_int_equal(x.out[i].nbytes, y.out[i].nbytes);
        assert_memory_equal(x.out[i].data, y.out[i].data, x.out[i].nbytes);
    }
    nt_result_free(&x);
    nt_result_free(&y);
}

static inline void nt_expect_floats(const rouse_tensor *t, const float *want, size_t n, float tol)
{
    assert_int_equal(t->dtype, ROUSE_DT_FLOAT);
    assert_int_equal(t->nbytes, n * sizeof(float));
    const float *got = t->data;
    for (size_t i = 0; i < n; i++)
        if (!(fabsf(got[i] - want[i]) <= tol))
            fail_msg("element %zu: got %.9g, expected %.9g", i, (double)got[i], (double)want[i]);
}

#endif
