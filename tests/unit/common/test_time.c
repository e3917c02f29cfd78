/* Monotonic time: never goes backwards and measures a known sleep. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <time.h>

#include "common/timeutil.h"

static void monotonic_and_measures_sleep(void **state)
{
    (void)state;
    uint64_t a = rouse_now_ns();
    uint64_t b = rouse_now_ns();
    assert_true(b >= a);
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    /* Only a lower bound: an upper one would be a timing threshold. */
    assert_true(rouse_ms_since(a) >= 20.0);
    assert_true(rouse_ns_to_ms(1500000) == 1.5);
    /* A start in the future reads as zero, never as a huge unsigned value. */
    assert_true(rouse_ms_since(rouse_now_ns() + 1000000000u) == 0.0);
    assert_true(rouse_wall_ms() > 1600000000000LL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(monotonic_and_measures_sleep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
