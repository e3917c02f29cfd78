/* .npy parsing: good files of each dtype and version, and every way a file
 * can be wrong yields a clear error instead of a tensor. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/tensor_file.h"

/* Builds an .npy file: magic, version, header length, the dict padded with
 * spaces to a multiple of 64 and ended by '\n', then `data`. Owned: free(). */
static uint8_t *make_npy(int major, const char *dict, const void *data, size_t data_len,
                         size_t *len)
{
    size_t pre = major == 1 ? 10 : 12;
    size_t hlen = strlen(dict) + 1;
    size_t total = (pre + hlen + 63) / 64 * 64;
    hlen = total - pre;
    uint8_t *b = malloc(total + data_len + 1);
    assert_non_null(b);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (uint8_t)major;
    b[7] = 0;
    if (major == 1) {
        b[8] = (uint8_t)hlen;
        b[9] = (uint8_t)(hlen >> 8);
    } else {
        for (int i = 0; i < 4; i++)
            b[8 + i] = (uint8_t)(hlen >> (8 * i));
    }
    memset(b + pre, ' ', hlen);
    memcpy(b + pre, dict, strlen(dict));
    b[total - 1] = '\n';
    if (data_len) memcpy(b + total, data, data_len);
    *len = total + data_len;
    return b;
}

/* Parses and expects failure with `code` and `needle` in the message. */
static void expect_error(const uint8_t *b, size_t len, int code, const char *needle)
{
    cli_tensor t;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    int rc = cli_npy_parse(b, len, &t, &eb);
    if (rc != code || !strstr(eb.msg, needle))
        fail_msg("rc %d (want %d), message '%s' (want '%s')", rc, code, eb.msg, needle);
    assert_null(t.data);
}

static void float32_v1(void **state)
{
    (void)state;
    const float v[6] = {1, -2, 3.5f, 0, 1e-3f, -7};
    size_t len;
    uint8_t *b = make_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", v,
                          sizeof(v), &len);
    cli_tensor t;
    rouse_errbuf eb;
    assert_int_equal(cli_npy_parse(b, len, &t, &eb), 0);
    assert_int_equal(t.dtype, ROUSE_DT_FLOAT);
    assert_int_equal(t.rank, 2);
    assert_int_equal(t.shape[0], 2);
    assert_int_equal(t.shape[1], 3);
    assert_int_equal(t.nbytes, sizeof(v));
    assert_string_equal(t.name, "");
    assert_int_equal((uintptr_t)t.data % 64, 0);
    assert_memory_equal(t.data, v, sizeof(v));
    cli_tensor_fini(&t);
    free(b);
}

static void every_dtype_and_version(void **state)
{
    (void)state;
    static const struct {
        const char *descr;
        int dtype;
        size_t size;
    } cases[] = {
        {"<f4", ROUSE_DT_FLOAT, 4},  {"<f8", ROUSE_DT_DOUBLE, 8}, {"|i1", ROUSE_DT_INT8, 1},
        {"<i2", ROUSE_DT_INT16, 2},  {"<i4", ROUSE_DT_INT32, 4},  {"<i8", ROUSE_DT_INT64, 8},
        {"|u1", ROUSE_DT_UINT8, 1},  {"<u2", ROUSE_DT_UINT16, 2}, {"<u4", ROUSE_DT_UINT32, 4},
        {"<u8", ROUSE_DT_UINT64, 8}, {"|b1", ROUSE_DT_BOOL, 1},   {"<f2", ROUSE_DT_FLOAT16, 2},
    };
    uint8_t data[5 * 8];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i % 2); /* valid bools too */
    for (int major = 1; major <= 3; major++) {
        for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
            char dict[128];
            snprintf(dict, sizeof(dict),
                     "{\"descr\":\"%s\",\"fortran_order\":False,\"shape\":(5,)}", cases[c].descr);
            size_t len;
            uint8_t *b = make_npy(major, dict, data, 5 * cases[c].size, &len);
            cli_tensor t;
            rouse_errbuf eb;
            rouse_errbuf_clear(&eb);
            if (cli_npy_parse(b, len, &t, &eb) != 0)
                fail_msg("v%d %s: %s", major, cases[c].descr, eb.msg);
            assert_int_equal(t.dtype, cases[c].dtype);
            assert_int_equal(t.rank, 1);
            assert_int_equal(t.shape[0], 5);
            assert_int_equal(t.nbytes, 5 * cases[c].size);
            assert_memory_equal(t.data, data, t.nbytes);
            cli_tensor_fini(&t);
            free(b);
        }
    }
}

static void scalar_and_empty_shapes(void **state)
{
    (void)state;
    const double one = 1.0;
    size_t len;
    uint8_t *b = make_npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (), }", &one,
                          sizeof(one), &len);
    cli_tensor t;
    rouse_errbuf eb;
    assert_int_equal(cli_npy_parse(b, len, &t, &eb), 0);
    assert_int_equal(t.rank, 0);
    assert_int_equal(t.nbytes, 8);
    cli_tensor_fini(&t);
    free(b);

    b = make_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 0, 2), }", NULL, 0,
                 &len);
    assert_int_equal(cli_npy_parse(b, len, &t, &eb), 0);
    assert_int_equal(t.rank, 3);
    assert_int_equal(t.nbytes, 0);
    assert_non_null(t.data);
    cli_tensor_fini(&t);
    free(b);
}

static void rejects_fortran_bigendian_objects(void **state)
{
    (void)state;
    const float v[4] = {0};
    size_t len;
    uint8_t *b = make_npy(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", v,
                          sizeof(v), &len);
    expect_error(b, len, ROUSE_EUNSUPPORTED, "Fortran");
    free(b);
    b = make_npy(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 2), }", v, sizeof(v),
                 &len);
    expect_error(b, len, ROUSE_EUNSUPPORTED, "big-endian");
    free(b);
    b = make_npy(1, "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", v, 16, &len);
    expect_error(b, len, ROUSE_EUNSUPPORTED, "objects");
    free(b);
    b = make_npy(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", v, 8,
                 &len);
    expect_error(b, len, ROUSE_EUNSUPPORTED, "structured");
    free(b);
    b = make_npy(1, "{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", v, 16, &len);
    expect_error(b, len, ROUSE_EUNSUPPORTED, "'<c8'");
    free(b);
}

static void rejects_malformed_headers(void **state)
{
    (void)state;
    static const struct {
        const char *dict;
        const char *needle;
    } cases[] = {
        {"'descr': '<f4'", "not a dict"},
        {"{'descr': '<f4', 'fortran_order': False}", "lacks 'shape'"},
        {"{'fortran_order': False, 'shape': (2,)}", "lacks 'descr'"},
        {"{'descr': '<f4', 'shape': (2,)}", "lacks 'fortran_order'"},
        {"{'descr': '<f4', 'fortran_order': false, 'shape': (2,)}", "True/False"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, -1)}", "non-negative"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': 2}", "not a tuple"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2 3)}", "',' or ')'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}",
         "non-negative"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}", "'extra'"},
        {"{'descr': '<f4' 'fortran_order': False, 'shape': (2,)}", "',' or '}'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} junk", "after the header"},
        {"{'descr: '<f4', 'fortran_order': False, 'shape': (2,)}", "':' expected"},
        {"{'descr': 'f4', 'fortran_order': False, 'shape': (2,)}", "not understood"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1)}", "dimensions"},
    };
    const float v[2] = {0};
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        size_t len;
        uint8_t *b = make_npy(1, cases[c].dict, v, sizeof(v), &len);
        cli_tensor t;
        rouse_errbuf eb;
        rouse_errbuf_clear(&eb);
        int rc = cli_npy_parse(b, len, &t, &eb);
        if (rc >= 0 || !strstr(eb.msg, cases[c].needle))
            fail_msg("%s: rc %d, message '%s' (want '%s')", cases[c].dict, rc, eb.msg,
                     cases[c].needle);
        free(b);
    }
}

static void rejects_bad_framing_and_sizes(void **state)
{
    (void)state;
    const float v[4] = {1, 2, 3, 4};
    const char *dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }";
    size_t len;
    uint8_t *b = make_npy(1, dict, v, sizeof(v), &len);

    expect_error(b, len - 1, ROUSE_EFORMAT, "truncated data");
    expect_error(b, len - sizeof(v), ROUSE_EFORMAT, "truncated data");
    expect_error(b, 9, ROUSE_EFORMAT, "truncated header");
    free(b);

    /* A header claiming a huge shape is refused before anything is allocated. */
    b = make_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (516590437, 2, 2), }", v,
                 sizeof(v), &len);
    expect_error(b, len, ROUSE_EFORMAT, "the shape needs 8265446992 bytes");
    free(b);
    b = make_npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }",
                 v, sizeof(v), &len);
    expect_error(b, len, ROUSE_ETOOBIG, "too large");
    free(b);
    b = make_npy(1, dict, v, sizeof(v), &len);
    expect_error(b, 30, ROUSE_EFORMAT, "header says");
    expect_error(b, 4, ROUSE_EFORMAT, "magic");

    uint8_t *longer = malloc(len + 4);
    assert_non_null(longer);
    memcpy(longer, b, len);
    memset(longer + len, 0, 4);
    expect_error(longer, len + 4, ROUSE_EFORMAT, "unexpected bytes after");
    free(longer);

    b[0] = 'X';
    expect_error(b, len, ROUSE_EFORMAT, "magic");
    b[0] = 0x93;
    b[6] = 4;
    expect_error(b, len, ROUSE_EUNSUPPORTED, "version 4");
    free(b);
}

static void read_file_names_the_path(void **state)
{
    (void)state;
    char path[] = "rouse-npy-XXXXXX"; /* in the test's working directory */
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const int32_t v[3] = {7, 8, 9};
    size_t len;
    uint8_t *b =
        make_npy(2, "{'descr': '<i4', 'fortran_order': False, 'shape': (3,)}", v, sizeof(v), &len);
    assert_int_equal(write(fd, b, len), (ssize_t)len);
    close(fd);
    free(b);

    /* No .npy extension: detected by the magic. */
    cli_tensor t;
    rouse_errbuf eb;
    assert_int_equal(cli_tensor_read_file(path, &t, &eb), 0);
    assert_int_equal(t.dtype, ROUSE_DT_INT32);
    assert_memory_equal(t.data, v, sizeof(v));
    cli_tensor_fini(&t);

    /* Truncate the file: the message names it. */
    assert_int_equal(truncate(path, (off_t)len - 2), 0);
    rouse_errbuf_clear(&eb);
    assert_int_equal(cli_tensor_read_file(path, &t, &eb), ROUSE_EFORMAT);
    assert_non_null(strstr(eb.msg, path));
    assert_non_null(strstr(eb.msg, "truncated"));
    unlink(path);

    rouse_errbuf_clear(&eb);
    assert_int_equal(cli_tensor_read_file("no-such-dir/x.npy", &t, &eb), ROUSE_EIO);
    assert_non_null(strstr(eb.msg, "no-such-dir/x.npy"));
}

static void tensor_proto(void **state)
{
    (void)state;
    /* dims 1,1,2,2; data_type FLOAT; name "x"; raw_data 1,2,3,4. */
    static const uint8_t pb[] = {0x08, 0x01, 0x08, 0x01, 0x08, 0x02, 0x08, 0x02, 0x10, 0x01, 0x42,
                                 0x01, 'x',  0x4a, 0x10, 0,    0,    0x80, 0x3f, 0,    0,    0,
                                 0x40, 0,    0,    0x40, 0x40, 0,    0,    0x80, 0x40};
    cli_tensor t;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    assert_int_equal(cli_pb_parse(pb, sizeof(pb), &t, &eb), 0);
    assert_string_equal(t.name, "x");
    assert_int_equal(t.dtype, ROUSE_DT_FLOAT);
    assert_int_equal(t.rank, 4);
    assert_int_equal(t.shape[3], 2);
    const float want[4] = {1, 2, 3, 4};
    assert_int_equal(t.nbytes, sizeof(want));
    assert_memory_equal(t.data, want, sizeof(want));
    cli_tensor_fini(&t);

    /* Cut inside raw_data: an error, not a tensor. */
    assert_true(cli_pb_parse(pb, sizeof(pb) - 3, &t, &eb) < 0);
    assert_null(t.data);
}

static void alloc_checks_its_arguments(void **state)
{
    (void)state;
    cli_tensor t;
    rouse_errbuf eb;
    int64_t big[2] = {INT64_MAX / 2, 4};
    assert_int_equal(cli_tensor_alloc(&t, "x", ROUSE_DT_FLOAT, 2, big, &eb), ROUSE_ETOOBIG);
    int64_t neg[1] = {-1};
    assert_int_equal(cli_tensor_alloc(&t, "x", ROUSE_DT_FLOAT, 1, neg, &eb), ROUSE_EINVAL);
    assert_int_equal(cli_tensor_alloc(&t, "x", 8 /* string */, 1, neg, &eb), ROUSE_EUNSUPPORTED);
    int64_t ok[2] = {2, 3};
    assert_int_equal(cli_tensor_alloc(&t, "x", ROUSE_DT_INT64, 2, ok, &eb), 0);
    assert_int_equal(t.nbytes, 48);
    assert_string_equal(t.name, "x");
    rouse_tensor v = cli_tensor_view(&t, "renamed");
    assert_string_equal(v.name, "renamed");
    assert_int_equal(v.nbytes, 48);
    cli_tensor_fini(&t);
    cli_tensor_fini(&t); /* fini of a finished tensor is harmless */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(float32_v1),
        cmocka_unit_test(every_dtype_and_version),
        cmocka_unit_test(scalar_and_empty_shapes),
        cmocka_unit_test(rejects_fortran_bigendian_objects),
        cmocka_unit_test(rejects_malformed_headers),
        cmocka_unit_test(rejects_bad_framing_and_sizes),
        cmocka_unit_test(read_file_names_the_path),
        cmocka_unit_test(tensor_proto),
        cmocka_unit_test(alloc_checks_its_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
