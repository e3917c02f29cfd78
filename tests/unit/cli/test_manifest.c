/*
 * The manifest reader (src/cli/manifest.c): config fields become JSON as
 * written (types kept, quoted values strings, mappings objects), model
 * paths resolve against the manifest's folder, aliases take all three
 * forms, ${VAR} and ${VAR:-default} expand, and every error names file,
 * line and key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/manifest.h"
#include "tmp_dir.h"

static char g_dir[256];

static const char *write_file(const char *name, const char *text)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/%s", g_dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof(g_dir), "%s/rouse-manifest-XXXXXX", test_tmp_dir());
    assert_non_null(mkdtemp(g_dir));
    write_file("m.onnx", "not really a model");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[320];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_valid(void **state)
{
    (void)state;
    setenv("ROUSE_T_MAX", "7", 1);
    unsetenv("ROUSE_T_UNSET");
    const char *path = write_file("ok.yaml", "name: shop\n"
                                             "functions:\n"
                                             "  a:\n"
                                             "    model: m.onnx\n"
                                             "    memory_mb: 256\n"
                                             "    precision: \"bf16\"\n"
                                             "    flag: true\n"
                                             "    scaling:\n"
                                             "      max: ${ROUSE_T_MAX}\n"
                                             "      min: ${ROUSE_T_UNSET:-1}\n"
                                             "    aliases:\n"
                                             "      one: 2\n"
                                             "      split: \"1:90, 2:10\"\n"
                                             "      spelled:\n"
                                             "        - {version: 3, weight: 5}\n"
                                             "  b:\n"
                                             "    model: ./m.onnx\n");
    manifest m;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    int rc = manifest_load(path, &m, &eb);
    if (rc) fprintf(stderr, "%s\n", eb.msg);
    assert_int_equal(rc, 0);
    assert_string_equal(m.label, "shop");
    assert_int_equal(m.n_fns, 2);
    manifest_fn *a = &m.fns[0];
    assert_string_equal(a->name, "a");
    char want[320];
    snprintf(want, sizeof(want), "%s/m.onnx", g_dir);
    assert_string_equal(a->model, want);
    rouse_buf b;
    rouse_buf_init(&b);
    assert_int_equal(cfg_write(a->config, &b), 0);
    assert_string_equal(b.data, "{\"memory_mb\":256,\"precision\":\"bf16\",\"flag\":true,"
                                "\"scaling\":{\"max\":7,\"min\":1}}");
    rouse_buf_fini(&b);
    assert_int_equal(a->n_aliases, 3);
    assert_string_equal(a->aliases[0].name, "one");
    assert_int_equal(a->aliases[0].n_routes, 1);
    assert_int_equal(a->aliases[0].routes[0].version, 2);
    assert_int_equal(a->aliases[1].n_routes, 2);
    assert_int_equal(a->aliases[1].routes[1].version, 2);
    assert_int_equal(a->aliases[1].routes[1].weight, 10);
    assert_int_equal(a->aliases[2].routes[0].version, 3);
    assert_int_equal(a->aliases[2].routes[0].weight, 5);
    assert_int_equal(manifest_key_line(a, "scaling.max"), 9);
    assert_int_equal(manifest_key_line(a, "memory_mb"), 5);
    assert_int_equal(manifest_key_line(a, "nothing"), 3); /* the function's own line */
    assert_int_equal(m.fns[1].n_aliases, 0);
    manifest_fini(&m);
}

static void expect_error(const char *yaml, const char *msg)
{
    const char *path = write_file("bad.yaml", yaml);
    manifest m;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    assert_true(manifest_load(path, &m, &eb) < 0);
    manifest_fini(&m);
    char want[512];
    snprintf(want, sizeof(want), "%s/bad.yaml:%s", g_dir, msg);
    if (strncmp(eb.msg, want, strlen(want)) != 0)
        fail_msg("got '%s', want it to start with '%s'", eb.msg, want);
}

static void test_errors(void **state)
{
    (void)state;
    unsetenv("ROUSE_T_UNSET");
    expect_error("functions:\n  a:\n    model: m.onnx\nextra: 1\n", "4: extra: unknown key");
    expect_error("name: shop\n", "1: functions: missing");
    expect_error("functions:\n  a: 3\n", "2: functions.a: must be a mapping of settings");
    expect_error("functions:\n  a:\n    memory_mb: 3\n", "2: functions.a: needs model:");
    expect_error("functions:\n  a:\n    model: gone.onnx\n", "3: functions.a.model: no model file");
    expect_error("functions:\n  a:\n    model: m.onnx\n    memory_mb: ${ROUSE_T_UNSET}\n",
                 "4: functions.a.memory_mb: environment variable ROUSE_T_UNSET is not set");
    expect_error("functions:\n  a:\n    model: m.onnx\n    aliases:\n      x: 1:y\n",
                 "5: functions.a.aliases.x: give a version");
    expect_error("functions:\n  Bad_Name:\n    model: m.onnx\n", "2: functions.Bad_Name: a function name");
    expect_error("functions:\n  a:\n    model: m.onnx\n    manifest: x\n",
                 "4: functions.a.manifest: is set from the manifest's top-level name:");
    expect_error("functions:\n  a:\n    model: m.onnx\n    memory_mb:\n",
                 "4: functions.a.memory_mb: has no value");
    expect_error("functions:\n  a:\n    model: m.onnx\n   x: [\n", "4: not valid YAML");
    /* Keys given twice (found by the manifest fuzz target: the first value leaked). */
    expect_error("functions:\n  a:\n    model: m.onnx\n    model: m.onnx\n",
                 "4: functions.a.model: given twice");
    expect_error("functions:\n  a:\n    model: m.onnx\n    aliases:\n      x: 1\n"
                 "    aliases:\n      y: 1\n",
                 "6: functions.a.aliases: given twice");
    expect_error("name: a\nname: b\nfunctions:\n  a:\n    model: m.onnx\n", "2: name: given twice");
    expect_error("functions:\n  a:\n    model: m.onnx\nfunctions:\n  b:\n    model: m.onnx\n",
                 "4: functions: given twice");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
