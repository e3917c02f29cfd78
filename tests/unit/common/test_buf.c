/* Growable buffer: growth, formatting, terminator, detach. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "rouse/err.h"

static void grows_and_stays_terminated(void **state)
{
    (void)state;
    rouse_buf b;
    rouse_buf_init(&b);
    for (int i = 0; i < 10000; i++)
        assert_int_equal(rouse_buf_append_byte(&b, 'a' + i % 26), 0);
    assert_int_equal(b.len, 10000);
    assert_true(b.cap > b.len);
    assert_int_equal(b.data[b.len], '\0');
    for (int i = 0; i < 10000; i++)
        assert_int_equal(b.data[i], 'a' + i % 26);
    rouse_buf_fini(&b);
    assert_null(b.data);
}

static void appendf_formats_long_text(void **state)
{
    (void)state;
    rouse_buf b;
    rouse_buf_init(&b);
    assert_int_equal(rouse_buf_append_str(&b, "{\"x\":"), 0);
    assert_int_equal(rouse_buf_appendf(&b, "%d,\"s\":\"%s\"}", 42, "hi"), 0);
    assert_string_equal(b.data, "{\"x\":42,\"s\":\"hi\"}");
    char big[5000];
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    rouse_buf_clear(&b);
    assert_int_equal(b.len, 0);
    assert_int_equal(rouse_buf_appendf(&b, "<%s>", big), 0);
    assert_int_equal(b.len, sizeof(big) + 1);
    assert_int_equal(b.data[0], '<');
    assert_int_equal(b.data[b.len - 1], '>');
    rouse_buf_fini(&b);
}

static void binary_data_and_detach(void **state)
{
    (void)state;
    rouse_buf b;
    rouse_buf_init(&b);
    const unsigned char bytes[] = {0, 1, 2, 0, 255};
    assert_int_equal(rouse_buf_append(&b, bytes, sizeof(bytes)), 0);
    size_t len = 0;
    char *p = rouse_buf_detach(&b, &len);
    assert_int_equal(len, 5);
    assert_memory_equal(p, bytes, 5);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    free(p);
    /* Detaching an untouched buffer gives an empty string. */
    p = rouse_buf_detach(&b, &len);
    assert_non_null(p);
    assert_int_equal(len, 0);
    assert_string_equal(p, "");
    free(p);
}

static void integers_without_printf(void **state)
{
    (void)state;
    rouse_buf b;
    rouse_buf_init(&b);
    assert_int_equal(rouse_buf_append_u64(&b, 0), 0);
    assert_int_equal(rouse_buf_append_byte(&b, ' '), 0);
    assert_int_equal(rouse_buf_append_u64(&b, UINT64_MAX), 0);
    assert_int_equal(rouse_buf_append_byte(&b, ' '), 0);
    assert_int_equal(rouse_buf_append_i64(&b, INT64_MIN), 0);
    assert_int_equal(rouse_buf_append_byte(&b, ' '), 0);
    assert_int_equal(rouse_buf_append_i64(&b, -7), 0);
    assert_int_equal(rouse_buf_append_byte(&b, ' '), 0);
    assert_int_equal(rouse_buf_append_i64(&b, 1234567890123), 0);
    assert_string_equal(b.data, "0 18446744073709551615 -9223372036854775808 -7 1234567890123");
    rouse_buf_fini(&b);
}

static void reserve_rejects_overflow(void **state)
{
    (void)state;
    rouse_buf b;
    rouse_buf_init(&b);
    assert_int_equal(rouse_buf_append_str(&b, "abc"), 0);
    assert_int_equal(rouse_buf_reserve(&b, SIZE_MAX - 2), ROUSE_ENOMEM);
    assert_string_equal(b.data, "abc");
    rouse_buf_fini(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(grows_and_stays_terminated),
        cmocka_unit_test(appendf_formats_long_text),
        cmocka_unit_test(binary_data_and_detach),
        cmocka_unit_test(reserve_rejects_overflow),
        cmocka_unit_test(integers_without_printf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
