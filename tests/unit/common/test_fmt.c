/* Formatting without printf, against snprintf on the same values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/fmt.h"

static const uint64_t g_vals[] = {0,
                                  1,
                                  9,
                                  10,
                                  99,
                                  100,
                                  999,
                                  1000,
                                  1001,
                                  12345,
                                  999999,
                                  1000000,
                                  4294967295u,
                                  4294967296u,
                                  INT64_MAX,
                                  UINT64_MAX,
                                  1234567890123ull};

static void integers_as_snprintf(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(g_vals) / sizeof(g_vals[0]); i++) {
        uint64_t v = g_vals[i];
        char a[64], b[64];
        *fmt_u64(a, v) = '\0';
        snprintf(b, sizeof(b), "%" PRIu64, v);
        assert_string_equal(a, b);
        int64_t s = (int64_t)v;
        *fmt_i64(a, s) = '\0';
        snprintf(b, sizeof(b), "%" PRId64, s);
        assert_string_equal(a, b);
        *fmt_i64(a, -s) = '\0';
        snprintf(b, sizeof(b), "%" PRId64, -s);
        if (s != INT64_MIN) assert_string_equal(a, b);
        *fmt_hex(a, v, 8) = '\0';
        snprintf(b, sizeof(b), "%08" PRIx64, v & 0xffffffffu);
        assert_string_equal(a, b);
        *fmt_hex(a, v, 16) = '\0';
        snprintf(b, sizeof(b), "%016" PRIx64, v);
        assert_string_equal(a, b);
        *fmt_ms3(a, v) = '\0';
        snprintf(b, sizeof(b), "%" PRIu64 ".%03" PRIu64, v / 1000, v % 1000);
        assert_string_equal(a, b);
    }
    char a[32];
    *fmt_i64(a, INT64_MIN) = '\0';
    assert_string_equal(a, "-9223372036854775808");
}

static void copy_as_snprintf(void **state)
{
    (void)state;
    static const char *const srcs[] = {"", "a", "application/json", "exactly7"};
    for (size_t i = 0; i < sizeof(srcs) / sizeof(srcs[0]); i++) {
        for (size_t cap = 1; cap < 20; cap++) {
            char a[20], b[20];
            memset(a, 'x', sizeof(a));
            size_t n = fmt_copy(a, cap, srcs[i]);
            snprintf(b, cap, "%s", srcs[i]);
            assert_string_equal(a, b);
            assert_int_equal(n, strlen(b));
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(integers_as_snprintf),
        cmocka_unit_test(copy_as_snprintf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
