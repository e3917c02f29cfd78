/*
 * The invocation record's helpers: billed milliseconds, error kinds from
 * statuses, start kinds, and the sinks in registration order.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "rouse/err.h"
#include "server/invocation.h"

static void test_billed_ms(void **state)
{
    (void)state;
    assert_int_equal(inv_billed_ms(0), 0);
    assert_int_equal(inv_billed_ms(1), 1);
    assert_int_equal(inv_billed_ms(999), 1);
    assert_int_equal(inv_billed_ms(1000), 1);
    assert_int_equal(inv_billed_ms(1001), 2);
    assert_int_equal(inv_billed_ms(2500000), 2500);
}

static void test_error_kinds(void **state)
{
    (void)state;
    assert_int_equal(inv_error_of(200), INV_OK);
    assert_int_equal(inv_error_of(400), INV_ERR_BAD_REQUEST);
    assert_int_equal(inv_error_of(413), INV_ERR_BAD_REQUEST);
    assert_int_equal(inv_error_of(404), INV_ERR_NOT_FOUND);
    assert_int_equal(inv_error_of(429), INV_ERR_QUEUE_FULL);
    assert_int_equal(inv_error_of(503), INV_ERR_UNAVAILABLE);
    assert_int_equal(inv_error_of(504), INV_ERR_TIMEOUT);
    assert_int_equal(inv_error_of(500), INV_ERR_INTERNAL);
    assert_string_equal(inv_error_name(INV_ERR_QUEUE_FULL), "queue_full");
    assert_string_equal(inv_error_name(INV_OK), "ok");
    for (int k = INV_START_NONE; k < INV_START_COUNT; k++)
        assert_int_equal(inv_start_parse(inv_start_name((inv_start)k)), k);
    assert_int_equal(inv_start_parse(NULL), INV_START_NONE);
    assert_int_equal(inv_start_parse("lukewarm"), INV_START_NONE);
}

static char order[INV_SINKS_MAX + 2];

static void sink(void *user, const invocation *inv)
{
    size_t n = strlen(order);
    order[n] = *(const char *)user;
    assert_int_equal(inv->status, 200);
}

static void test_sinks(void **state)
{
    (void)state;
    static const char names[] = "abcdefghij";
    invocation_sinks s;
    memset(&s, 0, sizeof(s));
    for (int i = 0; i < INV_SINKS_MAX; i++)
        assert_int_equal(invocation_sink_add(&s, sink, (void *)&names[i]), 0);
    assert_int_equal(invocation_sink_add(&s, sink, (void *)&names[9]), ROUSE_ERANGE);
    invocation inv;
    memset(&inv, 0, sizeof(inv));
    inv.status = 200;
    memset(order, 0, sizeof(order));
    invocation_emit(&s, &inv);
    assert_string_equal(order, "abcdefgh");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_billed_ms),
        cmocka_unit_test(test_error_kinds),
        cmocka_unit_test(test_sinks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
