/*
 * Route matching: a table of (method, path) -> route and parameters.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "server/http_int.h"

static void test_table(void **state)
{
    (void)state;
    static const struct {
        const char *method, *path;
        route_id id;
        const char *name, *ver, *alias, *digest;
    } cases[] = {
        {"GET", "/v2/health/live", R_HEALTH_LIVE, "", "", "", ""},
        {"GET", "/v2/health/ready", R_HEALTH_READY, "", "", "", ""},
        {"GET", "/v2", R_SERVER_META, "", "", "", ""},
        {"GET", "/v2/", R_SERVER_META, "", "", "", ""},
        {"GET", "/v2/models/digits", R_MODEL_META, "digits", "", "", ""},
        {"GET", "/v2/models/digits/ready", R_MODEL_READY, "digits", "", "", ""},
        {"POST", "/v2/models/digits/infer", R_INFER, "digits", "", "", ""},
        {"POST", "/v2/models/digits/versions/3/infer", R_INFER, "digits", "3", "", ""},
        {"POST", "/v2/models/digits/versions/canary/infer", R_INFER, "digits", "canary", "", ""},
        {"GET", "/v2/models/digits/versions/2", R_MODEL_META, "digits", "2", "", ""},
        {"GET", "/v2/models/digits/infer", R_NOT_ALLOWED, "digits", "", "", ""},
        {"POST", "/v1/blobs", R_BLOB_POST, "", "", "", ""},
        {"HEAD", "/v1/blobs/sha256:ab", R_BLOB_HEAD, "", "", "", "sha256:ab"},
        {"GET", "/v1/blobs/sha256:ab", R_BLOB_GET, "", "", "", "sha256:ab"},
        {"PUT", "/v1/blobs/sha256:ab", R_NOT_ALLOWED, "", "", "", "sha256:ab"},
        {"DELETE", "/v1/blobs/sha256:ab", R_BLOB_DELETE, "", "", "", "sha256:ab"},
        {"GET", "/v1/functions", R_FN_LIST, "", "", "", ""},
        {"PUT", "/v1/functions/f", R_FN_PUT, "f", "", "", ""},
        {"GET", "/v1/functions/f", R_FN_GET, "f", "", "", ""},
        {"DELETE", "/v1/functions/f", R_FN_DELETE, "f", "", "", ""},
        {"POST", "/v1/functions/f", R_NOT_ALLOWED, "f", "", "", ""},
        {"POST", "/v1/functions/f/rollback", R_FN_ROLLBACK, "f", "", "", ""},
        {"GET", "/v1/functions/f/logs", R_FN_LOGS, "f", "", "", ""},
        {"POST", "/openai/v1/completions", R_OAI_COMPLETIONS, "", "", "", ""},
        {"POST", "/openai/v1/chat/completions", R_OAI_CHAT, "", "", "", ""},
        {"GET", "/openai/v1/models", R_OAI_MODELS, "", "", "", ""},
        {"GET", "/openai/v1/completions", R_NOT_ALLOWED, "", "", "", ""},
        {"POST", "/openai/v1/embeddings", R_NONE, "", "", "", ""},
        {"POST", "/openai/v2/completions", R_NONE, "", "", "", ""},
        {"HEAD", "/v1/functions/f/logs", R_FN_LOGS, "f", "", "", ""},
        {"POST", "/v1/functions/f/logs", R_NOT_ALLOWED, "f", "", "", ""},
        {"POST", "/v1/functions/f/scale-to-zero", R_FN_SCALE_ZERO, "f", "", "", ""},
        {"GET", "/v1/functions/f/scale-to-zero", R_NOT_ALLOWED, "f", "", "", ""},
        {"PUT", "/v1/functions/f/aliases/canary", R_ALIAS_PUT, "f", "", "canary", ""},
        {"GET", "/v1/stats", R_STATS, "", "", "", ""},
        {"POST", "/v1/stats/reset", R_STATS_RESET, "", "", "", ""},
        {"GET", "/metrics", R_METRICS, "", "", "", ""},
        {"POST", "/metrics", R_NOT_ALLOWED, "", "", "", ""},
        {"GET", "/metrics/x", R_NONE, "", "", "", ""},
        {"GET", "/v1/stats/reset", R_NOT_ALLOWED, "", "", "", ""},
        {"GET", "/v1/usage", R_USAGE, "", "", "", ""},
        {"POST", "/v1/usage", R_NOT_ALLOWED, "", "", "", ""},
        {"GET", "/", R_CONSOLE, "", "", "", ""},
        {"HEAD", "/", R_CONSOLE, "", "", "", ""},
        {"POST", "/", R_NOT_ALLOWED, "", "", "", ""},
        {"GET", "/console/app.js", R_CONSOLE, "", "", "app.js", ""},
        {"GET", "/console", R_NONE, "", "", "", ""},
        {"GET", "/console/a/b", R_NONE, "", "", "", ""},
        {"GET", "/v1/recent", R_RECENT, "", "", "", ""},
        {"GET", "/v1/cluster", R_CLUSTER, "", "", "", ""},
        {"POST", "/v1/recent", R_NOT_ALLOWED, "", "", "", ""},
        {"GET", "/v3/x", R_NONE, "", "", "", ""},
        {"GET", "/v2/models/a/b/c/d/e/f/g/h/i", R_NONE, "", "", "", ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        route r;
        route_match(cases[i].method, cases[i].path, &r);
        if (r.id != cases[i].id) fail_msg("%s %s: route %d", cases[i].method, cases[i].path, r.id);
        if (r.id == R_NONE) continue;
        assert_string_equal(r.name, cases[i].name);
        assert_string_equal(r.ver, cases[i].ver);
        assert_string_equal(r.alias, cases[i].alias);
        assert_string_equal(r.digest, cases[i].digest);
        assert_false(r.param_too_long);
    }
}

/* The asynchronous API: the {id} segment lands in r.ref, the output kind
 * of a batch in r.alias. */
static void test_jobs_and_batches(void **state)
{
    (void)state;
    static const struct {
        const char *method, *path;
        route_id id;
        const char *ref, *alias;
    } cases[] = {
        {"GET", "/v1/jobs", R_JOB_LIST, "", ""},
        {"POST", "/v1/jobs", R_NOT_ALLOWED, "", ""},
        {"GET", "/v1/jobs/17", R_JOB_GET, "17", ""},
        {"HEAD", "/v1/jobs/17", R_JOB_GET, "17", ""},
        {"DELETE", "/v1/jobs/17", R_JOB_DELETE, "17", ""},
        {"PUT", "/v1/jobs/17", R_NOT_ALLOWED, "17", ""},
        {"POST", "/v1/jobs/17/retry", R_JOB_RETRY, "17", ""},
        {"GET", "/v1/jobs/17/retry", R_NOT_ALLOWED, "17", ""},
        {"GET", "/v1/jobs/17/result", R_JOB_RESULT, "17", ""},
        {"GET", "/v1/jobs/17/other", R_NONE, "", ""},
        {"POST", "/v1/batches", R_BATCH_POST, "", ""},
        {"GET", "/v1/batches/3", R_BATCH_GET, "3", ""},
        {"GET", "/v1/batches/3/output", R_BATCH_OUTPUT, "3", "output"},
        {"GET", "/v1/batches/3/errors", R_BATCH_OUTPUT, "3", "errors"},
        {"GET", "/v1/batches/3/input", R_NONE, "", ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        route r;
        route_match(cases[i].method, cases[i].path, &r);
        if (r.id != cases[i].id) fail_msg("%s %s: route %d", cases[i].method, cases[i].path, r.id);
        if (r.id == R_NONE) continue;
        assert_string_equal(r.ref, cases[i].ref);
        assert_string_equal(r.alias, cases[i].alias);
    }
    route r;
    route_match("GET", "/v1/jobs/123456789012345678901234567890", &r);
    assert_int_equal(r.id, R_JOB_GET);
    assert_true(r.param_too_long);
}

static void test_long_names(void **state)
{
    (void)state;
    char path[400];
    memset(path, 0, sizeof(path));
    strcpy(path, "/v2/models/");
    memset(path + strlen(path), 'a', 200);
    strcat(path, "/infer");
    route r;
    route_match("POST", path, &r);
    assert_int_equal(r.id, R_INFER);
    assert_true(r.param_too_long);
}

/* Each route's body limit: inference (OIP and OpenAI) takes
 * --max-body-bytes, uploads --max-blob-bytes, JSON documents 1 MiB. */
static void test_body_limits(void **state)
{
    (void)state;
    const uint64_t body = 64ull << 20, blob = 8ull << 30;
    static const struct {
        const char *method, *path;
        uint64_t limit; /* 0: the body limit, 1: the blob limit, else itself */
    } cases[] = {
        {"POST", "/v2/models/digits/infer", 0},
        {"POST", "/openai/v1/completions", 0},
        {"POST", "/openai/v1/chat/completions", 0},
        {"POST", "/v1/blobs", 1},
        {"PUT", "/v1/functions/digits", ROUTE_DOC_BODY_MAX},
        {"POST", "/v1/keys", ROUTE_DOC_BODY_MAX},
        {"POST", "/v1/batches", ROUTE_DOC_BODY_MAX},
        {"GET", "/", ROUTE_DOC_BODY_MAX},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        route r;
        route_match(cases[i].method, cases[i].path, &r);
        assert_int_not_equal(r.id, R_NONE);
        uint64_t want = cases[i].limit == 0 ? body : cases[i].limit == 1 ? blob : cases[i].limit;
        assert_int_equal(route_body_limit(r.id, body, blob), want);
    }
    /* A --max-body-bytes below 1 MiB bounds the documents too. */
    route r;
    route_match("PUT", "/v1/functions/digits", &r);
    assert_int_equal(route_body_limit(r.id, 1000, blob), 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_jobs_and_batches),
        cmocka_unit_test(test_long_names),
        cmocka_unit_test(test_body_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
