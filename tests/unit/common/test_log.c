/* Logging: level filtering, capture through a custom sink, level parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "rouse/err.h"

struct capture {
    int n;
    rouse_log_level level;
    char module[32];
    char msg[2048];
};

static void capture_sink(void *user, rouse_log_level level, const char *module, const char *msg)
{
    struct capture *c = user;
    c->n++;
    c->level = level;
    snprintf(c->module, sizeof(c->module), "%s", module);
    snprintf(c->msg, sizeof(c->msg), "%s", msg);
}

static void sink_captures_records_at_or_below_level(void **state)
{
    (void)state;
    struct capture c = {0};
    rouse_log_set_sink(capture_sink, &c);
    rouse_log_set_level(ROUSE_LOG_INFO);
    LOG_INFO("engine", "loaded %s in %.1f ms", "resnet18", 1.5);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.level, ROUSE_LOG_INFO);
    assert_string_equal(c.module, "engine");
    assert_string_equal(c.msg, "loaded resnet18 in 1.5 ms");
    LOG_DEBUG("engine", "dropped");
    assert_int_equal(c.n, 1);
    LOG_ERROR("serve", "bad");
    assert_int_equal(c.n, 2);
    assert_int_equal(c.level, ROUSE_LOG_ERROR);
    rouse_log_set_level(ROUSE_LOG_DEBUG);
    LOG_DEBUG("sched", "now kept");
    assert_int_equal(c.n, 3);
    assert_string_equal(c.msg, "now kept");
    rouse_log_set_sink(NULL, NULL);
    LOG_ERROR("test", "to stderr, not captured");
    assert_int_equal(c.n, 3);
}

static void long_records_are_truncated_whole(void **state)
{
    (void)state;
    struct capture c = {0};
    rouse_log_set_sink(capture_sink, &c);
    rouse_log_set_level(ROUSE_LOG_INFO);
    char big[4000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    LOG_WARN("m", "%s", big);
    assert_int_equal(c.n, 1);
    assert_int_equal(strlen(c.msg), 1023);
    rouse_log_set_sink(NULL, NULL);
}

static void level_names_round_trip(void **state)
{
    (void)state;
    rouse_log_level l;
    assert_int_equal(rouse_log_level_parse("DEBUG", &l), 0);
    assert_int_equal(l, ROUSE_LOG_DEBUG);
    assert_int_equal(rouse_log_level_parse("warn", &l), 0);
    assert_string_equal(rouse_log_level_name(l), "warn");
    assert_int_equal(rouse_log_level_parse("loud", &l), ROUSE_EINVAL);
    assert_string_equal(rouse_log_level_name((rouse_log_level)42), "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sink_captures_records_at_or_below_level),
        cmocka_unit_test(long_records_are_truncated_whole),
        cmocka_unit_test(level_names_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
