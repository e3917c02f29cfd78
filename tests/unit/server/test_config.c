/*
 * Function config: defaults, field-level messages, canonical form.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
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
    assert_string_equal(
        a.data, "{\"model\":\"" DIGEST "\",\"runtime\":\"onnx\",\"memory_mb\":512,"
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
    /* Stored, it loads back as it was; sent as a request with
     * template_ttl_caps as read (absent: false), too. */
    assert_int_equal(fn_config_load(a.data, a.len, &d, &eb), 0);
    assert_memory_equal(&c, &d, sizeof(c));
    assert_int_equal(parse("{\"model\":\"" DIGEST "\",\"scaling\":{\"min\":0,\"max\":4,"
                           "\"concurrency\":1,\"idle_timeout_ms\":60000,"
                           "\"template_ttl_ms\":600000,\"queue_depth\":64,"
                           "\"template_ttl_caps\":false}}",
                           &d, &eb),
                     0);
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

/* template_ttl_ms caps the learned keep-alive window only when a request
 * names it (or sets template_ttl_caps); the canonical form says so with
 * "template_ttl_caps":true, and only then, so that configs stored before
 * the key existed keep their bytes and load uncapped. */
static void test_template_ttl_caps(void **state)
{
    (void)state;
    static const struct {
        const char *scaling; /* the "scaling" object of a request */
        bool caps;
    } cases[] = {
        {"{}", false},
        {"{\"max\":2}", false},
        {"{\"template_ttl_ms\":600000}", true}, /* the default's value, named */
        {"{\"template_ttl_ms\":3600000,\"max\":2}", true},
        {"{\"template_ttl_ms\":3600000,\"template_ttl_caps\":false}", false},
        {"{\"template_ttl_caps\":false,\"template_ttl_ms\":3600000}", false},
        {"{\"template_ttl_caps\":true}", true},
        {"{\"keep_alive\":\"learned\",\"template_ttl_ms\":0}", true},
        /* "fixed" has no learned window: template_ttl_ms is all it does. */
        {"{\"keep_alive\":\"fixed\",\"template_ttl_ms\":3600000}", false},
        {"{\"template_ttl_ms\":3600000,\"keep_alive\":\"fixed\"}", false},
        {"{\"keep_alive\":\"fixed\",\"template_ttl_caps\":false}", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char json[512];
        snprintf(json, sizeof(json), "{\"model\":\"" DIGEST "\",\"scaling\":%s}",
                 cases[i].scaling);
        fn_config c, d;
        rouse_errbuf eb;
        if (parse(json, &c, &eb) < 0) fail_msg("%s: %s", cases[i].scaling, eb.msg);
        if (c.scaling.template_ttl_caps != cases[i].caps)
            fail_msg("%s: caps %d, want %d", cases[i].scaling, c.scaling.template_ttl_caps,
                     cases[i].caps);
        rouse_buf b;
        rouse_buf_init(&b);
        assert_int_equal(fn_config_write(&c, &b), 0);
        assert_int_equal(strstr(b.data, "\"template_ttl_caps\":true") != NULL, cases[i].caps);
        assert_null(strstr(b.data, "\"template_ttl_caps\":false"));
        /* The canonical form loads back to the same config. */
        assert_int_equal(fn_config_load(b.data, b.len, &d, &eb), 0);
        assert_memory_equal(&c, &d, sizeof(c));
        rouse_buf_fini(&b);
    }
    /* A config stored before the key existed names template_ttl_ms (every
     * canonical form does): loaded, it does not cap. */
    const char *old = "{\"model\":\"" DIGEST "\",\"runtime\":\"onnx\",\"memory_mb\":512,"
                      "\"timeout_ms\":30000,\"scaling\":{\"min\":0,\"max\":4,\"concurrency\":1,"
                      "\"idle_timeout_ms\":60000,\"template_ttl_ms\":3600000,\"queue_depth\":64}}";
    fn_config c;
    rouse_errbuf eb;
    assert_int_equal(fn_config_load(old, strlen(old), &c, &eb), 0);
    assert_false(c.scaling.template_ttl_caps);
    assert_int_equal(c.scaling.template_ttl_ms, 3600000);
    /* Wrong type, and a cap asked of "fixed": refused, naming the field. */
    assert_true(parse("{\"model\":\"" DIGEST "\",\"scaling\":{\"template_ttl_caps\":1}}", &c,
                      &eb) < 0);
    assert_non_null(strstr(eb.msg, "scaling.template_ttl_caps"));
    assert_true(parse("{\"model\":\"" DIGEST
                      "\",\"scaling\":{\"keep_alive\":\"fixed\",\"template_ttl_caps\":true}}",
                      &c, &eb) < 0);
    assert_non_null(strstr(eb.msg, "scaling.template_ttl_caps: only with keep_alive"));
}

/* precision: fp32 by default and then not written (configs stored before
 * it keep their canonical form); bf16 written and read back; int8 and
 * anything else refused, naming the field. */
/* task text-generation: max_context defaults to 1024, the tokenizer is a
 * digest or {vocab, merges}, all written in the canonical form; an
 * inference function's canonical form has none of them (so configs stored
 * before they existed are unchanged). */
static void test_text_generation(void **state)
{
    (void)state;
    fn_config c;
    rouse_errbuf eb;
    rouse_buf a;
    rouse_buf_init(&a);
    assert_int_equal(parse("{\"model\":\"" DIGEST "\"}", &c, &eb), 0);
    fn_config_write(&c, &a);
    assert_null(strstr(a.data, "task"));
    assert_int_equal(
        parse("{\"model\":\"" DIGEST "\",\"task\":\"text-generation\",\"tokenizer\":\"" DIGEST
              "\"}",
              &c, &eb),
        0);
    assert_int_equal(c.task, FN_TASK_TEXT_GENERATION);
    assert_int_equal(c.max_context, 1024);
    rouse_buf_clear(&a);
    fn_config_write(&c, &a);
    assert_non_null(strstr(a.data, ",\"task\":\"text-generation\",\"max_context\":1024,"
                                   "\"tokenizer\":\"" DIGEST "\""));
    fn_config d;
    assert_int_equal(fn_config_parse(a.data, a.len, &d, &eb), 0); /* canonical parses back */
    assert_int_equal(d.max_context, 1024);
    assert_string_equal(d.tokenizer, DIGEST);
    assert_int_equal(parse("{\"model\":\"" DIGEST "\",\"task\":\"text-generation\","
                           "\"max_context\":64,\"tokenizer\":{\"vocab\":\"" DIGEST
                           "\",\"merges\":\"" DIGEST "\"}}",
                           &c, &eb),
                     0);
    assert_int_equal(c.max_context, 64);
    assert_string_equal(c.vocab, DIGEST);
    /* Several streams per instance decode together (up to 32). */
    assert_int_equal(parse("{\"model\":\"" DIGEST "\",\"task\":\"text-generation\","
                           "\"scaling\":{\"concurrency\":8}}",
                           &c, &eb),
                     0);
    assert_int_equal(c.scaling.concurrency, 8);
    /* Its "batching" prefills new streams of an instance together. */
    assert_int_equal(parse("{\"model\":\"" DIGEST "\",\"task\":\"text-generation\","
                           "\"scaling\":{\"concurrency\":4},"
                           "\"batching\":{\"max_batch\":4,\"max_delay_us\":20000}}",
                           &c, &eb),
                     0);
    assert_int_equal(c.batching.max_batch, 4);
    assert_int_equal(c.batching.max_delay_us, 20000);
    static const struct {
        const char *extra, *msg;
    } bad[] = {
        {"\"task\":\"chat\"", "task: must be"},
        {"\"max_context\":64", "max_context: only with"},
        {"\"task\":\"text-generation\",\"max_context\":1", "max_context: must be"},
        {"\"task\":\"text-generation\",\"tokenizer\":\"nope\"", "tokenizer: must be"},
        {"\"task\":\"text-generation\",\"tokenizer\":{\"vocab\":\"" DIGEST "\"}",
         "tokenizer: must be"},
        {"\"tokenizer\":\"" DIGEST "\"", "tokenizer: only with"},
        {"\"task\":\"text-generation\",\"scaling\":{\"concurrency\":33}",
         "scaling.concurrency: a text generator decodes at most 32 streams"},
        {"\"task\":\"text-generation\",\"precision\":\"bf16\"", "precision: a text generator"},
        {"\"task\":\"text-generation\",\"scaling\":{\"concurrency\":4},"
         "\"batching\":{\"mode\":\"auto\",\"slo_ms\":50}",
         "batching.mode: a text generator takes \"fixed\" only"},
        {"\"task\":\"text-generation\",\"batching\":{\"max_batch\":2}",
         "batching: a text generator prefills the new streams of one instance together"},
        {"\"task\":\"text-generation\",\"scaling\":{\"concurrency\":4},"
         "\"batching\":{\"max_batch\":8}",
         "batching.max_batch: a text generator prefills at most its scaling.concurrency (4)"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char doc[512];
        snprintf(doc, sizeof(doc), "{\"model\":\"" DIGEST "\",%s}", bad[i].extra);
        rouse_errbuf_clear(&eb);
        assert_true(parse(doc, &c, &eb) < 0);
        if (!strstr(eb.msg, bad[i].msg)) fail_msg("%s: %s", doc, eb.msg);
    }
    rouse_buf_fini(&a);
}

static void test_precision(void **state)
{
    (void)state;
    fn_config c, d;
    rouse_errbuf eb;
    rouse_buf a;
    assert_int_equal(parse("{\"model\":\"" DIGEST "\",\"precision\":\"fp32\"}", &c, &eb), 0);
    assert_int_equal(c.precision, 0);
    rouse_buf_init(&a);
    assert_int_equal(fn_config_write(&c, &a), 0);
    assert_null(strstr(a.data, "precision"));
    rouse_buf_fini(&a);
    assert_int_equal(parse("{\"model\":\"" DIGEST "\",\"precision\":\"bf16\"}", &c, &eb), 0);
    assert_int_equal(c.precision, 1);
    rouse_buf_init(&a);
    assert_int_equal(fn_config_write(&c, &a), 0);
    assert_non_null(strstr(a.data, ",\"precision\":\"bf16\"}"));
    assert_int_equal(fn_config_load(a.data, a.len, &d, &eb), 0);
    assert_memory_equal(&c, &d, sizeof(c));
    rouse_buf_fini(&a);
    assert_true(parse("{\"model\":\"" DIGEST "\",\"precision\":\"fp16\"}", &c, &eb) < 0);
    assert_non_null(strstr(eb.msg, "precision: must be \"fp32\", \"bf16\" or \"int8\""));
    assert_true(parse("{\"model\":\"" DIGEST "\",\"precision\":1}", &c, &eb) < 0);
    assert_non_null(strstr(eb.msg, "precision:"));
    assert_true(parse("{\"model\":\"" DIGEST "\",\"precision\":\"int8\"}", &c, &eb) < 0);
    assert_non_null(strstr(eb.msg, "calibration: missing"));
    /* int8 with calibration: sorted by input name in the canonical form. */
    assert_int_equal(parse("{\"model\":\"" DIGEST "\",\"precision\":\"int8\",\"calibration\":"
                           "{\"b\":\"" DIGEST "\",\"a\":\"" DIGEST "\"}}",
                           &c, &eb),
                     0);
    assert_int_equal(c.n_calibration, 2);
    rouse_buf_init(&a);
    assert_int_equal(fn_config_write(&c, &a), 0);
    assert_non_null(strstr(a.data, ",\"precision\":\"int8\",\"calibration\":{\"a\":\"" DIGEST
                                   "\",\"b\":\"" DIGEST "\"}}"));
    assert_int_equal(fn_config_load(a.data, a.len, &d, &eb), 0);
    assert_memory_equal(&c, &d, sizeof(c));
    rouse_buf_fini(&a);
    static const struct {
        const char *json, *needle;
    } bad[] = {
        {"\"precision\":\"bf16\",\"calibration\":{\"a\":\"" DIGEST "\"}", "calibration: only with"},
        {"\"precision\":\"int8\",\"calibration\":[]", "calibration: must be an object"},
        {"\"precision\":\"int8\",\"calibration\":{}", "calibration: must name 1 to 8"},
        {"\"precision\":\"int8\",\"calibration\":{\"a\":\"sha256:1\"}",
         "calibration.a: must be a blob"},
        {"\"precision\":\"int8\",\"calibration\":{\"a=b\":\"" DIGEST "\"}",
         "calibration: an input name"},
        {"\"precision\":\"int8\",\"calibration\":{\"a\":\"" DIGEST "\",\"a\":\"" DIGEST "\"}",
         "calibration.a: named twice"},
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        char json[512];
        snprintf(json, sizeof(json), "{\"model\":\"" DIGEST "\",%s}", bad[k].json);
        assert_true(parse(json, &c, &eb) < 0);
        assert_non_null(strstr(eb.msg, bad[k].needle));
    }
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
        {"{\"model\":\"" DIGEST "\",\"batching\":{\"max_batch\":6}}",
         "batching.max_batch: must be a power of two"},
        {"{\"model\":\"" DIGEST "\",\"batching\":{\"max_batch\":512}}",
         "batching.max_batch: must be an integer from 2 to 256"},
        {"{\"model\":\"" DIGEST "\",\"batching\":{\"mode\":\"auto\",\"max_batch\":8}}",
         "batching.slo_ms: missing"},
        {"{\"model\":\"" DIGEST "\",\"batching\":{\"slo_ms\":5}}",
         "batching.slo_ms: only with mode \"auto\""},
        {"{\"model\":\"" DIGEST "\",\"batching\":{\"mode\":\"dynamic\"}}",
         "batching.mode: must be \"fixed\" or \"auto\""},
        {"{\"model\":\"" DIGEST "\",\"batching\":{\"max_delay_us\":-1}}",
         "batching.max_delay_us: must be an integer from 0 to 1000000"},
        {"{\"model\":\"" DIGEST "\",\"batching\":{\"size\":8}}", "batching.size: unknown field"},
        {"{\"model\":\"" DIGEST "\",\"batching\":8}", "batching: must be an object"},
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
    assert_int_equal(fn_config_load(b.data, b.len, &d, &eb), 0);
    assert_memory_equal(&c, &d, sizeof(c));
    rouse_buf_fini(&b);
}

/* "batching": defaults (mode fixed, max_batch 8, max_delay_us 2000), auto
 * with its SLO, and a canonical form that always names the mode and reads
 * back the same. */
static void test_batching_section(void **state)
{
    (void)state;
    fn_config c, d;
    rouse_errbuf eb;
    rouse_buf b;
    assert_int_equal(parse("{\"model\":\"" DIGEST "\"}", &c, &eb), 0);
    assert_int_equal(c.batching.mode, FN_BATCH_OFF);
    rouse_buf_init(&b);
    assert_int_equal(fn_config_write(&c, &b), 0);
    assert_null(strstr(b.data, "batching"));
    rouse_buf_fini(&b);
    assert_int_equal(parse("{\"model\":\"" DIGEST "\",\"batching\":{}}", &c, &eb), 0);
    assert_int_equal(c.batching.mode, FN_BATCH_FIXED);
    assert_int_equal(c.batching.max_batch, 8);
    assert_int_equal(c.batching.max_delay_us, 2000);
    assert_int_equal(parse("{\"model\":\"" DIGEST "\",\"batching\":{\"mode\":\"auto\","
                           "\"max_batch\":32,\"max_delay_us\":500,\"slo_ms\":20}}",
                           &c, &eb),
                     0);
    assert_int_equal(c.batching.mode, FN_BATCH_AUTO);
    rouse_buf_init(&b);
    assert_int_equal(fn_config_write(&c, &b), 0);
    assert_non_null(strstr(b.data, ",\"batching\":{\"mode\":\"auto\",\"max_batch\":32,"
                                   "\"max_delay_us\":500,\"slo_ms\":20}"));
    assert_int_equal(fn_config_load(b.data, b.len, &d, &eb), 0);
    assert_memory_equal(&c, &d, sizeof(c));
    rouse_buf_fini(&b);
}

/* Versions stored while "batching" was accepted and never run (a block
 * without "mode") still load without it, and their canonical form drops
 * the block; memory_mb stays. */
static void test_stored_batching_loads(void **state)
{
    (void)state;
    const char *old = "{\"model\":\"" DIGEST "\",\"runtime\":\"onnx\",\"memory_mb\":256,"
                      "\"timeout_ms\":30000,\"scaling\":{\"min\":0,\"max\":2},"
                      "\"batching\":{\"max_batch\":8,\"max_delay_us\":2000}}";
    fn_config c;
    rouse_errbuf eb;
    assert_int_equal(fn_config_load(old, strlen(old), &c, &eb), 0);
    assert_int_equal(c.batching.mode, FN_BATCH_OFF);
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
        cmocka_unit_test(test_template_ttl_caps),
        cmocka_unit_test(test_precision),
        cmocka_unit_test(test_field_errors),
        cmocka_unit_test(test_text_generation),
        cmocka_unit_test(test_async_section),
        cmocka_unit_test(test_batching_section),
        cmocka_unit_test(test_stored_batching_loads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
