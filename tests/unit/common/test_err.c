/* The error table: complete, unique, and lookups agree with the enum. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "rouse/err.h"

static void every_code_has_a_unique_name_and_message(void **state)
{
    (void)state;
    static const int codes[] = {
#define CODE_(name, num, msg, http) ROUSE_E##name,
        ROUSE_ERR_MAP(CODE_)
#undef CODE_
    };
    assert_int_equal(sizeof(codes) / sizeof(codes[0]), ROUSE_ERR_COUNT);
    for (size_t i = 0; i < ROUSE_ERR_COUNT; i++) {
        assert_true(codes[i] < 0);
        assert_string_not_equal(rouse_strerror(codes[i]), "unknown error");
        assert_string_not_equal(rouse_err_name(codes[i]), "ROUSE_EUNKNOWN");
        for (size_t j = i + 1; j < ROUSE_ERR_COUNT; j++) {
            assert_int_not_equal(codes[i], codes[j]);
            assert_string_not_equal(rouse_strerror(codes[i]), rouse_strerror(codes[j]));
        }
    }
}

static void known_codes_map_to_their_text(void **state)
{
    (void)state;
    assert_int_equal(ROUSE_ENOMEM, -1);
    assert_string_equal(rouse_strerror(ROUSE_ENOMEM), "out of memory");
    assert_string_equal(rouse_err_name(ROUSE_EUNSUPPORTED), "ROUSE_EUNSUPPORTED");
    assert_string_equal(rouse_strerror(0), "success");
    assert_string_equal(rouse_strerror(-9999), "unknown error");
    assert_string_equal(rouse_strerror(5), "unknown error");
    /* One status table for serve and its instances. */
    assert_int_equal(rouse_err_http_status(ROUSE_ENOTFOUND), 404);
    assert_int_equal(rouse_err_http_status(ROUSE_EINVAL), 400);
    assert_int_equal(rouse_err_http_status(ROUSE_ENOSPACE), 507);
    assert_int_equal(rouse_err_http_status(-13), 500); /* retired */
}

static void errbuf_set_and_wrap(void **state)
{
    (void)state;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    assert_int_equal(eb.code, 0);
    assert_string_equal(eb.msg, "");
    assert_int_equal(rouse_err_set(&eb, ROUSE_EFORMAT, "field %s at %d", "dims", 7), ROUSE_EFORMAT);
    assert_int_equal(eb.code, ROUSE_EFORMAT);
    assert_string_equal(eb.msg, "field dims at 7");
    assert_int_equal(rouse_err_wrap(&eb, ROUSE_EINVAL, "node '%s'", "conv1"), ROUSE_EINVAL);
    assert_string_equal(eb.msg, "node 'conv1': field dims at 7");
    /* A NULL buffer only passes the code through. */
    assert_int_equal(rouse_err_set(NULL, ROUSE_EIO, "x"), ROUSE_EIO);
    /* Over-long messages are truncated, never overflow. */
    char big[2000];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    rouse_err_set(&eb, ROUSE_ETOOBIG, "%s", big);
    assert_int_equal(strlen(eb.msg), sizeof(eb.msg) - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_code_has_a_unique_name_and_message),
        cmocka_unit_test(known_codes_map_to_their_text),
        cmocka_unit_test(errbuf_set_and_wrap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
