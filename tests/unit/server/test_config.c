/*
 * Function config: defaults, field-level messages, canonical form.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "server/config.h"

#define DIGEST "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static int parse(const char *json, fn_config *c, rouse_errbuf *eb)
{
    rouse_errbuf_clear(eb);
    return fn_config_parse(json, strlen(json), c, eb);
}

static void test_defaults_and_canonical(void **state)
{
    (void)state;
    fn_config c;
    rouse_errbuf eb;
    assert_int_equal(parse("{\"model\":\"" DIGEST "\"}", &c, &eb), 0);
    assert_int_equal(c.memory_mb, 512);
    assert_int_equal(c.timeout_ms, 30000);
    assert_int_equal(c.scaling.min, 0);
    assert_int_equal(c.scaling.max, 4);
    assert_int_equal(c.scaling.concurrency, 1);
    assert_int_equal(c.scaling.queue_depth, 64);
    rouse_buf a, b;
    rouse_buf_init(&a);
    rouse_buf_init(&b);
    assert_int_equal(fn_config_write(&c, &a), 0);
    assert_string_equal(a.data,
                        "{\"model\":\"" DIGEST "\",\"runtime\":\"onnx\",\"memory_mb\":512,"
                        "\"timeout_ms\":30000,\"scaling\":{\"min\":0,\"max\":4,\"concurrency\":1,"
                        "\"idle_timeout_ms\":60000,\"template_ttl_ms\":600000,\"queue_depth\":64}}");
    /* Same meaning, other spelling: same canonical bytes; and it round-trips. */
    fn_config d;
    assert_int_equal(parse("{\"scaling\":{\"max\":4},\"runtime\":\"onnx\",\"model\":\"" DIGEST
                           "\",\"timeout_ms\":30000}",
                           &d, &eb),
                     0);
    assert_int_equal(fn_config_write(&d, &b), 0);
    assert_string_equal(a.data, b.data);
    assert_int_equal(parse(a.data, &d, &eb), 0);
    assert_memory_equal(&c, &d, sizeof(c));
    rouse_buf_fini(&a);
    rouse_buf_fini(&b);
    /* keep_alive: learned by default (and then not written, so configs
     * stored before it keep their canonical form), fixed when asked,
     * nothing else. */
    assert_int_equal(c.scaling.keep_alive, FN_KEEP_ALIVE_LEARNED);
    assert_int_equal(
        parse("{\"model\":\"" DIGEST "\",\"scaling\":{\"keep_alive\":\"fixed\"}}", &d, &eb), 0);
    assert_int_equal(d.scaling.keep_alive, FN_KEEP_ALIVE_FIXED);
    rouse_buf_init(&a);
    assert_int_equal(fn_config_write(&d, &a), 0);
    assert_non_null(strstr(a.data, "\"keep_alive\":\"fixed\"}"));
    rouse_buf_fini(&a);
    assert_true(
        parse("{\"model\":\"" DIGEST "\",\"scaling\":{\"keep_alive\":\"always\"}}", &d, &eb) < 0);
    assert_non_null(strstr(eb.msg, "scaling.keep_alive"));
}

static void test_field_errors(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        const char *needle;
    } cases[] = {
        {"{}", "model: missing"},
        {"[]", "JSON object"},
        {"{\"model\":", "not valid JSON"},
        {"{\"model\":\"sha256:abc\"}", "model:"},
        {"{\"model\":\"" DIGEST "\",\"runtime\":\"tf\"}", "runtime"},
        {"{\"model\":\"" DIGEST "\",\"memory\":1}", "memory: unknown field"},
        {"{\"model\":\"" DIGEST "\",\"timeout_ms\":0}", "timeout_ms: must be an integer"},
        {"{\"model\":\"" DIGEST "\",\"timeout_ms\":1.5}", "timeout_ms"},
        {"{\"model\":\"" DIGEST "\",\"timeout_ms\":\"5\"}", "timeout_ms"},
        {"{\"model\":\"" DIGEST "\",\"scaling\":{\"max\":0}}", "scaling.max"},
        {"{\"model\":\"" DIGEST "\",\"scaling\":{\"maxx\":1}}", "scaling.maxx: unknown field"},
        {"{\"model\":\"" DIGEST "\",\"scaling\":3}", "scaling: must be an object"},
        {"{\"model\":\"" DIGEST "\",\"scaling\":{\"min\":5,\"max\":2}}", "scaling.min"},
        {"{\"model\":\"" DIGEST "\",\"batching\":{\"max_batch\":8}}",
         "batching: not supported yet"},
        {"{\"model\":\"" DIGEST "\",\"async\":{\"max_attempts\":0}}",
         "async.max_attempts: must be an integer from 1 to 100"},
        {"{\"model\":\"" DIGEST "\",\"async\":{\"queue_limit\":-1}}", "async.queue_limit"},
        {"{\"model\":\"" DIGEST "\",\"async\":{\"retries\":2}}", "async.retries: unknown field"},
        {"{\"model\":\"" DIGEST "\",\"async\":[]}", "async: must be an object"},
        {"{\"model\":\"" DIGEST "\",\"async\":{\"result_ttl_ms\":5}}", "async.result_ttl_ms"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fn_config c;
        rouse_errbuf eb;
        assert_int_equal(parse(cases[i].json, &c, &eb), ROUSE_EINVAL);
        if (!strstr(eb.msg, cases[i].needle))
            fail_msg("%s: message '%s' lacks '%s'", cases[i].json, eb.msg, cases[i].needle);
    }
}

/* The async section: defaults, its own values, and a canonical form that
 * leaves it out while every field holds its default (so configs stored
 * before it existed compare equal to the same config sent again). */
static void test_async_section(void **state)
{
    (void)state;
    fn_config c;
    rouse_errbuf eb;
    assert_int_equal(parse("{\"model\":\"" DIGEST "\"}", &c, &eb), 0);
    assert_int_equal(c.async.max_attempts, 3);
    assert_int_equal(c.async.max_concurrency, 0);
    assert_int_equal(c.async.queue_limit, 100000);
    assert_int_equal(parse("{\"model\":\"" DIGEST "\",\"async\":{\"max_attempts\":5,"
                           "\"queue_limit\":10,\"result_ttl_ms\":1000}}",
                           &c, &eb),
                     0);
    assert_int_equal(c.async.max_attempts, 5);
    assert_int_equal(c.async.queue_limit, 10);
    rouse_buf b;
    rouse_buf_init(&b);
    assert_int_equal(fn_config_write(&c, &b), 0);
    assert_non_null(strstr(b.data, ",\"async\":{\"max_attempts\":5,\"max_age_ms\":86400000,"
                                   "\"max_concurrency\":0,\"queue_limit\":10,"
                                   "\"result_ttl_ms\":1000}}"));
    fn_config d;
    assert_int_equal(parse(b.data, &d, &eb), 0);
    assert_memory_equal(&c, &d, sizeof(c));
    rouse_buf_fini(&b);
}

/* Versions stored while "batching" was accepted still load, and their
 * canonical form drops the block; memory_mb stays. */
static void test_stored_batching_loads(void **state)
{
    (void)state;
    const char *old = "{\"model\":\"" DIGEST "\",\"runtime\":\"onnx\",\"memory_mb\":256,"
                      "\"timeout_ms\":30000,\"scaling\":{\"min\":0,\"max\":2},"
                      "\"batching\":{\"max_batch\":8,\"max_delay_us\":2000}}";
    fn_config c;
    rouse_errbuf eb;
    assert_int_equal(fn_config_parse(old, strlen(old), &c, &eb), ROUSE_EINVAL);
    assert_int_equal(fn_config_load(old, strlen(old), &c, &eb), 0);
    assert_int_equal(c.memory_mb, 256);
    assert_int_equal(c.scaling.max, 2);
    rouse_buf b;
    rouse_buf_init(&b);
    assert_int_equal(fn_config_write(&c, &b), 0);
    assert_null(strstr(b.data, "batching"));
    assert_non_null(strstr(b.data, "\"memory_mb\":256"));
    rouse_buf_fini(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_canonical),
        cmocka_unit_test(test_field_errors),
        cmocka_unit_test(test_async_section),
        cmocka_unit_test(test_stored_batching_loads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
