/*
 * Compiled plans: outputs bit-identical to the .onnx path, and every kind of
 * mismatched, truncated, damaged or hostile plan refused with a clear error
 * (never a crash).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/sha256.h"
#include "engine/plan_format.h"
#include "onnx_builder.h"
#include "rouse/engine.h"
#include "tmp_dir.h"

static float *rand_floats(int64_t n, uint32_t seed)
{
    float *p = malloc(sizeof(float) * (size_t)n);
    assert_non_null(p);
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (float)(seed >> 8) / (float)(1u << 24) - 0.5f;
    }
    return p;
}

static void add_weight(ob_model *m, const char *name, int rank, const int64_t *d, uint32_t seed)
{
    int64_t n = 1;
    for (int i = 0; i < rank; i++)
        n *= d[i];
    float *w = rand_floats(n, seed);
    ob_initializer(m, name, ROUSE_DT_FLOAT, rank, d, w, sizeof(float) * (size_t)n);
    free(w);
}

/* conv+relu -> conv + residual add + relu -> global pool -> flatten -> gemm */
static void small_cnn(rouse_buf *out)
{
    ob_model *m = ob_model_new(13);
    int64_t xd[4] = {1, 16, 12, 12}, wd[4] = {16, 16, 3, 3}, bd[1] = {16}, gd[2] = {10, 16};
    int64_t k[2] = {3, 3}, pads[4] = {1, 1, 1, 1};
    ob_input(m, "x", ROUSE_DT_FLOAT, 4, xd);
    add_weight(m, "w0", 4, wd, 1);
    add_weight(m, "b0", 1, bd, 2);
    add_weight(m, "w1", 4, wd, 3);
    add_weight(m, "b1", 1, bd, 4);
    add_weight(m, "g", 2, gd, 5);
    const char *c0_in[3] = {"x", "w0", "b0"}, *c0 = "c0", *r0 = "r0";
    ob_node *n = ob_add_node(m, "Conv", "conv0", 3, c0_in, 1, &c0);
    ob_attr_ints(n, "kernel_shape", 2, k);
    ob_attr_ints(n, "pads", 4, pads);
    ob_add_node(m, "Relu", "relu0", 1, &c0, 1, &r0);
    const char *c1_in[3] = {"r0", "w1", "b1"}, *c1 = "c1";
    n = ob_add_node(m, "Conv", "conv1", 3, c1_in, 1, &c1);
    ob_attr_ints(n, "kernel_shape", 2, k);
    ob_attr_ints(n, "pads", 4, pads);
    const char *add_in[2] = {"c1", "x"}, *s = "s", *r1 = "r1", *p = "p", *f = "f", *y = "y";
    ob_add_node(m, "Add", "add0", 2, add_in, 1, &s);
    ob_add_node(m, "Relu", "relu1", 1, &s, 1, &r1);
    ob_add_node(m, "GlobalAveragePool", "gap", 1, &r1, 1, &p);
    ob_add_node(m, "Flatten", "flat", 1, &p, 1, &f);
    const char *g_in[2] = {"f", "g"};
    n = ob_add_node(m, "Gemm", "fc", 2, g_in, 1, &y);
    ob_attr_int(n, "transB", 1);
    ob_output_any(m, "y", ROUSE_DT_FLOAT);
    rouse_buf_init(out);
    ob_serialize(m, out);
    ob_model_free(m);
}

static char *temp_path(const char *suffix)
{
    char *p = malloc(4096);
    assert_non_null(p);
    snprintf(p, 4096, "%s/rouse-plan-test-%d-%s", test_tmp_dir(), (int)getpid(), suffix);
    return p;
}

static void run_once(rouse_model *m, const float *x, float *y_out, size_t *y_bytes)
{
    rouse_errbuf eb;
    rouse_session *s;
    if (rouse_session_create(m, NULL, &s, &eb) < 0) fail_msg("session: %s", eb.msg);
    rouse_tensor in = {.name = "x",
                       .dtype = ROUSE_DT_FLOAT,
                       .rank = 4,
                       .shape = {1, 16, 12, 12},
                       .data = x,
                       .nbytes = sizeof(float) * 16 * 144};
    if (rouse_session_run(s, &in, 1, &eb) < 0) fail_msg("run: %s", eb.msg);
    rouse_tensor out;
    assert_int_equal(rouse_session_output(s, 0, &out), 0);
    memcpy(y_out, out.data, out.nbytes);
    *y_bytes = out.nbytes;
    rouse_session_destroy(s);
}

static char *g_plan_path;
static unsigned char *g_plan;
static size_t g_plan_len;

static void plan_matches_onnx_bit_for_bit(void **state)
{
    (void)state;
    rouse_buf onnx;
    small_cnn(&onnx);
    char *onnx_path = temp_path("model.onnx");
    FILE *f = fopen(onnx_path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(onnx.data, 1, onnx.len, f), onnx.len);
    fclose(f);

    rouse_errbuf eb;
    rouse_model *m;
    assert_int_equal(rouse_model_load(onnx_path, &m, &eb), 0);
    g_plan_path = temp_path("model.plan");
    if (rouse_model_compile(m, g_plan_path, &eb) < 0) fail_msg("compile: %s", eb.msg);

    rouse_model *pm;
    if (rouse_model_open_plan(g_plan_path, &pm, &eb) < 0) fail_msg("open: %s", eb.msg);
    uint8_t a[32], b[32];
    assert_int_equal(rouse_model_source_sha256(m, a), 0);
    assert_int_equal(rouse_model_source_sha256(pm, b), 0);
    assert_memory_equal(a, b, 32);
    rouse_tensor_info info;
    assert_int_equal(rouse_model_input(pm, 0, &info), 0);
    assert_string_equal(info.name, "x");
    assert_int_equal(info.rank, 4);

    float *x = rand_floats(16 * 144, 99);
    float y1[10], y2[10];
    size_t n1, n2;
    run_once(m, x, y1, &n1);
    run_once(pm, x, y2, &n2);
    assert_int_equal(n1, sizeof(y1));
    assert_int_equal(n2, sizeof(y2));
    assert_memory_equal(y1, y2, sizeof(y1));
    /* A plan cannot be compiled again: it has no ONNX source. */
    assert_int_equal(rouse_model_compile(pm, g_plan_path, &eb), ROUSE_ESTATE);

    free(x);
    rouse_model_destroy(pm);
    rouse_model_destroy(m);
    unlink(onnx_path);
    free(onnx_path);
    rouse_buf_fini(&onnx);

    f = fopen(g_plan_path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    g_plan_len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    g_plan = malloc(g_plan_len);
    assert_non_null(g_plan);
    assert_int_equal(fread(g_plan, 1, g_plan_len, f), g_plan_len);
    fclose(f);
}

static int open_mutated(unsigned char *buf, size_t len, rouse_errbuf *eb)
{
    rouse_model *m;
    int rc = rouse_model_open_plan_memory(buf, len, &m, eb);
    if (rc == 0) {
        rouse_session *s;
        if (rouse_session_create(m, NULL, &s, eb) == 0) rouse_session_destroy(s);
        rouse_model_destroy(m);
    }
    return rc;
}

static void mismatched_headers_ask_for_recompilation(void **state)
{
    (void)state;
    assert_non_null(g_plan);
    unsigned char *buf = malloc(g_plan_len);
    assert_non_null(buf);
    rouse_errbuf eb;
    struct {
        size_t off;
        const char *fragment;
        int code;
    } cases[] = {
        {offsetof(plan_header, magic), "bad magic", ROUSE_EFORMAT},
        {offsetof(plan_header, format_version), "recompile", ROUSE_EMISMATCH},
        {offsetof(plan_header, cpu_isa), "instruction set", ROUSE_EMISMATCH},
        {offsetof(plan_header, dnnl_minor), "oneDNN", ROUSE_EMISMATCH},
        {offsetof(plan_header, attrs_size), "recompile", ROUSE_EMISMATCH},
        {offsetof(plan_header, meta_crc32c), "checksum", ROUSE_EFORMAT},
        {offsetof(plan_header, meta_size), "", ROUSE_EFORMAT},
        {offsetof(plan_header, file_size), "bytes", ROUSE_EFORMAT},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memcpy(buf, g_plan, g_plan_len);
        buf[cases[i].off] ^= 0x11;
        rouse_errbuf_clear(&eb);
        int rc = open_mutated(buf, g_plan_len, &eb);
        if (rc != cases[i].code || !strstr(eb.msg, cases[i].fragment))
            fail_msg("case %zu: got %s '%s'", i, rouse_err_name(rc), eb.msg);
    }
    free(buf);
}

static void truncated_and_damaged_plans_fail_cleanly(void **state)
{
    (void)state;
    unsigned char *buf = malloc(g_plan_len);
    assert_non_null(buf);
    rouse_errbuf eb;
    plan_header h;
    memcpy(&h, g_plan, sizeof(h));
    /* Every prefix of the header and metadata, then coarser steps. */
    for (size_t len = 0; len < g_plan_len; len += len < h.meta_offset + h.meta_size ? 13 : 4093) {
        memcpy(buf, g_plan, len);
        assert_true(open_mutated(buf, len, &eb) < 0);
    }
    /* A damaged metadata byte is caught by the checksum. */
    for (size_t off = h.meta_offset; off < h.meta_offset + h.meta_size; off += 7) {
        memcpy(buf, g_plan, g_plan_len);
        buf[off] ^= 0x40;
        assert_int_equal(open_mutated(buf, g_plan_len, &eb), ROUSE_EFORMAT);
        assert_non_null(strstr(eb.msg, "checksum"));
    }
    free(buf);
}

/* A hostile plan can carry a valid checksum: every metadata byte is mutated
 * and the checksum recomputed; opening (and preparing) must never crash. */
static void hostile_metadata_with_valid_checksum(void **state)
{
    (void)state;
    unsigned char *buf = malloc(g_plan_len);
    assert_non_null(buf);
    rouse_errbuf eb;
    plan_header h;
    memcpy(&h, g_plan, sizeof(h));
    static const unsigned char flips[] = {0x01, 0x80, 0xff};
    int refused = 0, total = 0;
    for (size_t off = h.meta_offset; off < h.meta_offset + h.meta_size; off++) {
        for (size_t f = 0; f < sizeof(flips); f++) {
            memcpy(buf, g_plan, g_plan_len);
            buf[off] ^= flips[f];
            plan_header *hp = (plan_header *)buf;
            hp->meta_crc32c = rouse_crc32c(0, buf + h.meta_offset, h.meta_size);
            refused += open_mutated(buf, g_plan_len, &eb) < 0;
            total++;
        }
    }
    /* Most mutations break an invariant; some (a name's letter) are harmless. */
    assert_true(refused > 0);
    assert_true(refused <= total);
    free(buf);
}

/* Rewrites the metadata word at `from_end` bytes before its end and fixes
 * the checksum, as a hostile file would. */
static int open_with(const unsigned char *plan, size_t len, size_t from_end, const void *v,
                     size_t n, rouse_errbuf *eb)
{
    unsigned char *buf = malloc(len);
    assert_non_null(buf);
    memcpy(buf, plan, len);
    plan_header *hp = (plan_header *)buf;
    memcpy(buf + hp->meta_offset + hp->meta_size - from_end, v, n);
    hp->meta_crc32c = rouse_crc32c(0, buf + hp->meta_offset, hp->meta_size);
    int rc = open_mutated(buf, len, eb);
    free(buf);
    return rc;
}

/* A bf16 plan compiled with samples records its precision and how its output
 * compares with fp32; the reader refuses figures out of range. */
static void precision_and_accuracy_section(void **state)
{
    (void)state;
    rouse_buf onnx;
    small_cnn(&onnx);
    rouse_errbuf eb;
    rouse_model *m;
    assert_int_equal(rouse_model_load_memory(onnx.data, onnx.len, &m, &eb), 0);
    rouse_samples *s;
    assert_int_equal(rouse_samples_create(m, &s, &eb), 0);
    float *x = rand_floats(16 * 144, 7);
    rouse_tensor in = {.name = "x", .dtype = ROUSE_DT_FLOAT, .rank = 4,
                       .shape = {1, 16, 12, 12}, .data = x, .nbytes = sizeof(float) * 16 * 144};
    assert_int_equal(rouse_samples_add(s, m, &in, 1, &eb), 0);
    in.shape[1] = 15; /* a sample the model does not take */
    assert_int_equal(rouse_samples_add(s, m, &in, 1, &eb), ROUSE_EINVAL);
    assert_non_null(strstr(eb.msg, "input 'x'"));
    assert_int_equal(s->n_samples, 1);
    char *path = temp_path("bf16.plan");
    rouse_compile_options o = {.precision = ROUSE_PRECISION_BF16, .validation = s};
    if (rouse_model_compile_with(m, path, &o, &eb) < 0) fail_msg("compile: %s", eb.msg);
    rouse_model *pm;
    if (rouse_model_open_plan(path, &pm, &eb) < 0) fail_msg("open: %s", eb.msg);
    rouse_accuracy a;
    rouse_model_accuracy(pm, &a);
    assert_int_equal(a.precision, rouse_model_precision(m));
    assert_int_equal(a.source, ROUSE_ACCURACY_VALIDATE);
    assert_int_equal(a.n_samples, 1);
    assert_int_equal(a.n_outputs, 1);
    assert_true(a.outputs[0].max_abs >= 0 && a.outputs[0].max_rel < 0.05);
    if (a.precision == ROUSE_PRECISION_FP32) assert_true(a.outputs[0].max_abs == 0);
    rouse_tensor_info out;
    assert_int_equal(rouse_model_output(pm, 0, &out), 0);
    size_t name_len = strlen(out.name); /* borrowed from the plan */
    rouse_model_destroy(pm);

    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    size_t len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *plan = malloc(len);
    assert_non_null(plan);
    assert_int_equal(fread(plan, 1, len, f), len);
    fclose(f);
    /* The section's tail: ... {name, top1, max_abs, max_rel} n_kept. */
    uint32_t many = 1000, prec = 7;
    double nan = NAN, two = 2.0, neg = -0.5;
    assert_int_equal(open_with(plan, len, 0, "", 0, &eb), 0);
    assert_int_equal(open_with(plan, len, 4, &many, 4, &eb), ROUSE_EFORMAT);
    assert_int_equal(open_with(plan, len, 12, &nan, 8, &eb), ROUSE_EFORMAT);
    assert_non_null(strstr(eb.msg, "out of range"));
    assert_int_equal(open_with(plan, len, 20, &neg, 8, &eb), ROUSE_EFORMAT);
    assert_int_equal(open_with(plan, len, 28, &two, 8, &eb), ROUSE_EFORMAT);
    /* Before the output: name (u32 length, bytes, NUL), n_outputs, n_samples,
     * source, precision. */
    size_t name_end = 28 + 4 + name_len + 1;
    assert_int_equal(open_with(plan, len, name_end + 4, &many, 4, &eb), ROUSE_EFORMAT);
    assert_int_equal(open_with(plan, len, name_end + 16, &prec, 4, &eb), ROUSE_EFORMAT);
    assert_non_null(strstr(eb.msg, "precision"));
    free(plan);
    free(x);
    unlink(path);
    free(path);
    rouse_samples_destroy(s);
    rouse_model_destroy(m);
    rouse_buf_fini(&onnx);
}

/* A known digest opens the cached plan directly; a wrong, malformed or
 * missing one falls back to hashing the file, which finds the right plan. */
static void cached_plan_by_known_digest(void **state)
{
    (void)state;
    rouse_buf onnx;
    small_cnn(&onnx);
    char *onnx_path = temp_path("known.onnx");
    char *cache = temp_path("cache");
    FILE *f = fopen(onnx_path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(onnx.data, 1, onnx.len, f), onnx.len);
    fclose(f);
    uint8_t sha[32];
    assert_int_equal(rouse_sha256_digest(onnx.data, onnx.len, sha), 0);
    char hex[65];
    rouse_sha256_hex(sha, hex);
    rouse_buf_fini(&onnx);

    rouse_errbuf eb;
    rouse_model *m;
    int from_cache = -1;
    /* No plan yet: compiled, whatever the caller claims. */
    if (rouse_model_load_cached_known(onnx_path, hex, cache, &m, &from_cache, &eb) < 0)
        fail_msg("first load: %s", eb.msg);
    assert_int_equal(from_cache, 0);
    rouse_model_destroy(m);

    const char *claims[] = {hex, NULL, "not-hex",
                            "0000000000000000000000000000000000000000000000000000000000000000"};
    for (size_t i = 0; i < sizeof(claims) / sizeof(claims[0]); i++) {
        from_cache = -1;
        if (rouse_model_load_cached_known(onnx_path, claims[i], cache, &m, &from_cache, &eb) < 0)
            fail_msg("load %zu: %s", i, eb.msg);
        assert_int_equal(from_cache, 1);
        uint8_t got[32];
        assert_int_equal(rouse_model_source_sha256(m, got), 0);
        assert_memory_equal(got, sha, 32);
        rouse_model_destroy(m);
    }

    /* A plan of other bytes filed under the claimed name is not taken. */
    char plan[512], other[512];
    snprintf(plan, sizeof(plan), "%s/%s.plan", cache, hex);
    snprintf(other, sizeof(other), "%s/%s.plan", cache, claims[3]);
    assert_int_equal(rename(plan, other), 0);
    from_cache = -1;
    if (rouse_model_load_cached_known(onnx_path, claims[3], cache, &m, &from_cache, &eb) < 0)
        fail_msg("load under a wrong name: %s", eb.msg);
    assert_int_equal(from_cache, 0);
    uint8_t got[32];
    assert_int_equal(rouse_model_source_sha256(m, got), 0);
    assert_memory_equal(got, sha, 32);
    rouse_model_destroy(m);

    unlink(plan);
    unlink(other);
    rmdir(cache);
    unlink(onnx_path);
    free(cache);
    free(onnx_path);
}

static void cleanup_plan(void **state)
{
    (void)state;
    if (g_plan_path) unlink(g_plan_path);
    free(g_plan_path);
    free(g_plan);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(plan_matches_onnx_bit_for_bit),
        cmocka_unit_test(mismatched_headers_ask_for_recompilation),
        cmocka_unit_test(truncated_and_damaged_plans_fail_cleanly),
        cmocka_unit_test(hostile_metadata_with_valid_checksum),
        cmocka_unit_test(cached_plan_by_known_digest),
        cmocka_unit_test(precision_and_accuracy_section),
        cmocka_unit_test(cleanup_plan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
