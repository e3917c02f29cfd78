/*
 * Helpers of the operator-family tests: a single-node model built in C
 * (inputs "a", "b", "c"... of the given types and shapes, output "y"), run
 * through the engine, with its output copied out; and the load error of a
 * model, for the attribute checks.
 */
#ifndef ROUSE_TEST_OP_TEST_H
#define ROUSE_TEST_OP_TEST_H

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
#include <unistd.h>

#include "onnx_builder.h"
#include "rouse/engine.h"

#define OT_MAX_IN 16

/* One input: its type, shape and data (borrowed). */
typedef struct ot_in {
    int dtype;
    int rank;
    int64_t shape[8];
    const void *data;
} ot_in;

/* The result of a run: output 0's type, shape and bytes (owned: ot_out_fini). */
typedef struct ot_out {
    int dtype;
    int rank;
    int64_t shape[8];
    void *data;
    size_t nbytes;
} ot_out;

static const char *const ot_names[] = {"a", "b", "c", "d"};

static inline size_t ot_nbytes(const ot_in *t)
{
    size_t n = rouse_dtype_size(t->dtype);
    for (int d = 0; d < t->rank; d++)
        n *= (size_t)t->shape[d];
    return n;
}

/* A model of one node `op_type` over n inputs; returns the node for attributes. */
static inline ob_model *ot_model(int64_t opset, const char *op_type, int n, const ot_in *in,
                                 int out_dtype, ob_node **node)
{
    ob_model *m = ob_model_new(opset);
    for (int i = 0; i < n; i++)
        ob_input(m, ot_names[i], in[i].dtype, in[i].rank, in[i].shape);
    const char *out = "y";
    ob_node *nd = ob_add_node(m, op_type, "node0", n, ot_names, 1, &out);
    ob_output_any(m, "y", out_dtype);
    if (node) *node = nd;
    return m;
}

/* Serializes and frees om, loads it (optionally through a compiled plan),
 * runs it once on `in` fed to the inputs `names`; 0 and *out filled, or the
 * error with eb set. */
static inline int ot_run_names(ob_model *om, int n, const char *const *names, const ot_in *in,
                               bool via_plan, ot_out *out, rouse_errbuf *eb)
{
    assert_true(n <= OT_MAX_IN);
    rouse_buf b;
    rouse_buf_init(&b);
    ob_serialize(om, &b);
    ob_model_free(om);
    memset(out, 0, sizeof(*out));
    rouse_model *m = NULL;
    rouse_session *s = NULL;
    rouse_errbuf_clear(eb);
    int rc = rouse_model_load_memory(b.data, b.len, &m, eb);
    if (rc == 0 && via_plan) {
        char path[64];
        snprintf(path, sizeof(path), "/tmp/rouse-ops-test-%d.plan", (int)getpid());
        rc = rouse_model_compile(m, path, eb);
        rouse_model_destroy(m);
        m = NULL;
        if (rc == 0) rc = rouse_model_open_plan(path, &m, eb);
        unlink(path);
    }
    if (rc == 0) rc = rouse_session_create(m, &(rouse_session_options){.threads = 1}, &s, eb);
    rouse_tensor t[OT_MAX_IN];
    for (int i = 0; rc == 0 && i < n; i++) {
        memset(&t[i], 0, sizeof(t[i]));
        t[i].name = names[i];
        t[i].dtype = in[i].dtype;
        t[i].rank = in[i].rank;
        memcpy(t[i].shape, in[i].shape, sizeof(int64_t) * (size_t)in[i].rank);
        t[i].data = (void *)in[i].data;
        t[i].nbytes = ot_nbytes(&in[i]);
    }
    if (rc == 0) rc = rouse_session_run(s, t, n, eb);
    rouse_tensor y;
    if (rc == 0) rc = rouse_session_output(s, 0, &y);
    if (rc == 0) {
        out->dtype = y.dtype;
        out->rank = y.rank;
        memcpy(out->shape, y.shape, sizeof(int64_t) * (size_t)y.rank);
        out->nbytes = y.nbytes;
        out->data = malloc(y.nbytes ? y.nbytes : 1);
        assert_non_null(out->data);
        memcpy(out->data, y.data, y.nbytes);
    }
    rouse_session_destroy(s);
    rouse_model_destroy(m);
    rouse_buf_fini(&b);
    return rc;
}

/* ot_run_names on inputs "a", "b", "c", "d". */
static inline int ot_run_model(ob_model *om, int n, const ot_in *in, bool via_plan, ot_out *out,
                               rouse_errbuf *eb)
{
    return ot_run_names(om, n, ot_names, in, via_plan, out, eb);
}

static inline void ot_out_fini(ot_out *o)
{
    free(o->data);
    o->data = NULL;
}

/* Runs and fails the test on any error. */
static inline ot_out ot_run_ok(ob_model *om, int n, const ot_in *in)
{
    ot_out o;
    rouse_errbuf eb;
    if (ot_run_model(om, n, in, false, &o, &eb) < 0) fail_msg("run: %s", eb.msg);
    return o;
}

/* Runs a model with its own input names and fails the test on any error. */
static inline ot_out ot_run_named(ob_model *om, int n, const char *const *names, const ot_in *in)
{
    ot_out o;
    rouse_errbuf eb;
    if (ot_run_names(om, n, names, in, false, &o, &eb) < 0) fail_msg("run: %s", eb.msg);
    return o;
}

/* Expects the load or run of om to fail with `code` and a message holding `fragment`. */
static inline void ot_expect_error(ob_model *om, int n, const ot_in *in, int code,
                                   const char *fragment)
{
    ot_out o;
    rouse_errbuf eb;
    int rc = ot_run_model(om, n, in, false, &o, &eb);
    ot_out_fini(&o);
    if (rc != code)
        fail_msg("expected %s, got %s: %s", rouse_err_name(code), rouse_err_name(rc), eb.msg);
    if (!strstr(eb.msg, fragment)) fail_msg("message '%s' lacks '%s'", eb.msg, fragment);
}

/* Shorthands for inputs. */
static inline ot_in ot_t1(int dtype, int64_t n, const void *data)
{
    return (ot_in){dtype, 1, {n}, data};
}
static inline ot_in ot_t2(int dtype, int64_t r, int64_t c, const void *data)
{
    return (ot_in){dtype, 2, {r, c}, data};
}

#endif
