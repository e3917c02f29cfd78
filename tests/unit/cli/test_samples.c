/* Sample sets for calibration and accuracy (cli/samples.h over the engine's
 * rouse_samples): the three folder layouts, every way a file can fail to fit
 * the model (name, type, shape, count) as a clear error, and the accuracy
 * section a plan compiled with samples records. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/samples.h"
#include "cli/tensor_file.h"
#include "onnx_builder.h"
#include "rouse/engine.h"
#include "tmp_dir.h"

/* y = Gemm(a, W) + b over a [batch, 4] and b [batch, 4]: two inputs, one
 * classifier-shaped output. */
typedef struct fixture {
    rouse_buf onnx;
    rouse_model *m;
    char dir[256];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    rouse_buf_init(&f->onnx);
    ob_model *ob = ob_model_new(13);
    int64_t d[2] = {-1, 4}, wd[2] = {4, 4};
    ob_input(ob, "a", ROUSE_DT_FLOAT, 2, d);
    ob_input(ob, "b", ROUSE_DT_FLOAT, 2, d);
    ob_output(ob, "y", ROUSE_DT_FLOAT, 2, d);
    float w[16];
    for (int i = 0; i < 16; i++)
        w[i] = (float)(i % 5) * 0.25f - 0.5f;
    ob_initializer(ob, "W", ROUSE_DT_FLOAT, 2, wd, w, sizeof(w));
    const char *gin[] = {"a", "W"}, *gout[] = {"t"}, *ain[] = {"t", "b"}, *aout[] = {"y"};
    ob_add_node(ob, "Gemm", "gemm", 2, gin, 1, gout);
    ob_add_node(ob, "Add", "add", 2, ain, 1, aout);
    ob_serialize(ob, &f->onnx);
    ob_model_free(ob);
    rouse_errbuf eb;
    assert_int_equal(rouse_model_load_memory(f->onnx.data, f->onnx.len, &f->m, &eb), 0);
    snprintf(f->dir, sizeof(f->dir), "%s/rouse-samples-XXXXXX", test_tmp_dir());
    assert_non_null(mkdtemp(f->dir));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    char cmd[320];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    if (system(cmd) != 0) return -1;
    rouse_model_destroy(f->m);
    rouse_buf_fini(&f->onnx);
    free(f);
    return 0;
}

/* Writes DIR/rel as an .npy of `rows` x `cols` of dtype (float or int64). */
static void put_npy(const fixture *f, const char *rel, int dtype, int64_t rows, int64_t cols)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", f->dir, rel);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    mkdir(path, 0755);
    *slash = '/';
    size_t n = (size_t)(rows * cols), es = rouse_dtype_size(dtype);
    uint8_t *data = calloc(n + 1, es);
    for (size_t i = 0; i < n; i++) {
        if (dtype == ROUSE_DT_FLOAT) ((float *)data)[i] = (float)i * 0.1f - 1.0f;
        else ((int64_t *)data)[i] = (int64_t)i;
    }
    int64_t shape[2] = {rows, cols};
    rouse_errbuf eb;
    assert_int_equal(cli_npy_write(path, dtype, 2, shape, data, n * es, &eb), 0);
    free(data);
}

static int read_err(fixture *f, rouse_errbuf *eb)
{
    rouse_samples *s = NULL;
    int rc = cli_samples_read(f->dir, f->m, &s, eb);
    assert_true(rc < 0);
    assert_null(s);
    return rc;
}

static void test_stacked(void **state)
{
    fixture *f = *state;
    put_npy(f, "a.npy", ROUSE_DT_FLOAT, 3, 4);
    put_npy(f, "b.npy", ROUSE_DT_FLOAT, 3, 4);
    assert_int_equal(cli_samples_layout(f->dir), 3);
    rouse_samples *s;
    rouse_errbuf eb;
    assert_int_equal(cli_samples_read(f->dir, f->m, &s, &eb), 0);
    assert_int_equal(s->n_samples, 3);
    assert_int_equal(s->n_inputs, 2);
    /* Row 2 of a: elements 8..11 of the stacked array. */
    const rouse_tensor *a2 = &s->t[2 * 2 + 0];
    assert_string_equal(a2->name, "a");
    assert_int_equal(a2->shape[0], 1);
    assert_int_equal(a2->shape[1], 4);
    assert_float_equal(((const float *)a2->data)[0], 8 * 0.1f - 1.0f, 1e-6);
    rouse_samples_destroy(s);
}

static void test_stacked_errors(void **state)
{
    fixture *f = *state;
    rouse_errbuf eb;
    char p[512];
    put_npy(f, "a.npy", ROUSE_DT_FLOAT, 3, 4);
    put_npy(f, "b.npy", ROUSE_DT_FLOAT, 2, 4); /* count */
    assert_int_equal(read_err(f, &eb), ROUSE_EINVAL);
    assert_non_null(strstr(eb.msg, "input 'b': 2 samples, the other inputs have 3"));
    put_npy(f, "b.npy", ROUSE_DT_FLOAT, 3, 5); /* shape */
    read_err(f, &eb);
    assert_non_null(strstr(eb.msg, "input 'b': a sample of shape [1, 5], the model takes"));
    put_npy(f, "b.npy", ROUSE_DT_INT64, 3, 4); /* type */
    read_err(f, &eb);
    assert_non_null(strstr(eb.msg, "input 'b': samples of type int64, the model takes float"));
    snprintf(p, sizeof(p), "%s/b.npy", f->dir);
    unlink(p); /* missing input */
    read_err(f, &eb);
    assert_non_null(strstr(eb.msg, "input 'b': no samples given"));
    put_npy(f, "b.npy", ROUSE_DT_FLOAT, 3, 4);
    put_npy(f, "c.npy", ROUSE_DT_FLOAT, 3, 4); /* name */
    read_err(f, &eb);
    assert_non_null(strstr(eb.msg, "samples for 'c', which is no input of the model"));
    snprintf(p, sizeof(p), "%s/c.npy", f->dir);
    unlink(p);
    put_npy(f, "a.npy", ROUSE_DT_FLOAT, 0, 4); /* no rows */
    put_npy(f, "b.npy", ROUSE_DT_FLOAT, 0, 4);
    read_err(f, &eb);
    assert_non_null(strstr(eb.msg, "no samples"));
    /* Not a folder at all. */
    rouse_samples *s = NULL;
    assert_int_equal(cli_samples_read("/nonexistent-samples", f->m, &s, &eb), ROUSE_EINVAL);
    assert_non_null(strstr(eb.msg, "not a folder of samples"));
}

static void test_per_sample_folders(void **state)
{
    fixture *f = *state;
    put_npy(f, "s0/a.npy", ROUSE_DT_FLOAT, 1, 4);
    put_npy(f, "s0/b.npy", ROUSE_DT_FLOAT, 1, 4);
    put_npy(f, "s1/a.npy", ROUSE_DT_FLOAT, 2, 4); /* a sample may hold a batch */
    put_npy(f, "s1/b.npy", ROUSE_DT_FLOAT, 2, 4);
    assert_int_equal(cli_samples_layout(f->dir), 2);
    rouse_samples *s;
    rouse_errbuf eb;
    assert_int_equal(cli_samples_read(f->dir, f->m, &s, &eb), 0);
    assert_int_equal(s->n_samples, 2);
    assert_int_equal(s->t[2].shape[0], 2);
    rouse_samples_destroy(s);
    /* A sample without one of the inputs names the folder and the input. */
    put_npy(f, "s2/a.npy", ROUSE_DT_FLOAT, 1, 4);
    read_err(f, &eb);
    assert_non_null(strstr(eb.msg, "s2"));
    assert_non_null(strstr(eb.msg, "input 'b': no samples given"));
}

static void test_compile_records_accuracy(void **state)
{
    fixture *f = *state;
    put_npy(f, "a.npy", ROUSE_DT_FLOAT, 3, 4);
    put_npy(f, "b.npy", ROUSE_DT_FLOAT, 3, 4);
    rouse_samples *s;
    rouse_errbuf eb;
    assert_int_equal(cli_samples_read(f->dir, f->m, &s, &eb), 0);
    char plan[320];
    snprintf(plan, sizeof(plan), "%s/m.plan", f->dir);

    /* int8 without calibration: refused before anything is written. */
    rouse_compile_options o = {.precision = ROUSE_PRECISION_INT8};
    assert_int_equal(rouse_model_compile_with(f->m, plan, &o, &eb), ROUSE_EINVAL);
    assert_non_null(strstr(eb.msg, "int8 needs calibration samples"));
    assert_int_equal(access(plan, F_OK), -1);

    o = (rouse_compile_options){.precision = ROUSE_PRECISION_BF16, .calibration = s};
    assert_int_equal(rouse_model_compile_with(f->m, plan, &o, &eb), 0);
    rouse_model *pm;
    assert_int_equal(rouse_model_open_plan(plan, &pm, &eb), 0);
    rouse_accuracy acc;
    rouse_model_accuracy(pm, &acc);
    assert_int_equal(acc.precision, rouse_model_precision(pm));
    assert_int_equal(acc.source, ROUSE_ACCURACY_SAMPLES);
    assert_int_equal(acc.n_samples, 3);
    assert_int_equal(acc.n_outputs, 1);
    assert_string_equal(acc.outputs[0].name, "y");
    assert_true(acc.outputs[0].top1 >= 0 && acc.outputs[0].top1 <= 1);
    /* bf16 keeps 8 bits of mantissa: small, nonzero-or-zero error. */
    assert_true(acc.outputs[0].max_abs < 0.1);
    assert_true(acc.outputs[0].max_rel < 0.05);
    assert_int_equal(acc.n_kept_fp32, 0);
    rouse_model_destroy(pm);
    /* The model was lowered: compiling it again to another precision is refused. */
    o.precision = ROUSE_PRECISION_FP32;
    int rc = rouse_model_compile_with(f->m, plan, &o, &eb);
    if (acc.precision == ROUSE_PRECISION_BF16) {
        assert_int_equal(rc, ROUSE_ESTATE);
    }
    rouse_samples_destroy(s);
}

static void test_precision_names(void **state)
{
    (void)state;
    int p = -1;
    assert_int_equal(rouse_precision_parse("bf16", &p), 0);
    assert_int_equal(p, ROUSE_PRECISION_BF16);
    assert_int_equal(rouse_precision_parse("fp16", &p), ROUSE_EINVAL);
    assert_int_equal(rouse_precision_parse(NULL, &p), ROUSE_EINVAL);
    assert_string_equal(rouse_precision_name(ROUSE_PRECISION_INT8), "int8");
    assert_null(rouse_precision_name(7));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stacked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stacked_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_per_sample_folders, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compile_records_accuracy, setup, teardown),
        cmocka_unit_test(test_precision_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
