/*
 * Huge-page copies of compiled plans (rouse/weight_pages.h): a process keeps
 * a copy of a plan with 32 MiB of weights, and children forked afterwards
 * open the plan from the copy (not the file), compute exactly what the file
 * mapping computes, and take no more page faults on their first run than
 * children that map the file. A plan rewritten since its copy was made is
 * mapped again; hugetlb falls back to thp where no huge page is reserved;
 * the choice of kind refuses what it does not know.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "onnx_builder.h"
#include "rouse/engine.h"
#include "rouse/weight_pages.h"
#include "tmp_dir.h"

#define K_IN 2048
#define N_OUT 4096
#define WEIGHT_KB ((long)K_IN * N_OUT * 4 / 1024)

static char plan_path[256];

static void write_plan(float scale)
{
    ob_model *m = ob_model_new(13);
    int64_t xd[2] = {1, K_IN}, wd[2] = {N_OUT, K_IN};
    ob_input(m, "x", ROUSE_DT_FLOAT, 2, xd);
    float *w = malloc(sizeof(float) * K_IN * N_OUT);
    assert_non_null(w);
    for (long i = 0; i < (long)K_IN * N_OUT; i++)
        w[i] = scale * ((float)((i * 7919) % 1000) / 1000.0f - 0.5f);
    ob_initializer(m, "w", ROUSE_DT_FLOAT, 2, wd, w, sizeof(float) * K_IN * N_OUT);
    free(w);
    const char *ins[2] = {"x", "w"}, *y = "y";
    ob_node *n = ob_add_node(m, "Gemm", "fc", 2, ins, 1, &y);
    ob_attr_int(n, "transB", 1);
    ob_output_any(m, "y", ROUSE_DT_FLOAT);
    rouse_buf bytes;
    rouse_buf_init(&bytes);
    ob_serialize(m, &bytes);
    ob_model_free(m);
    rouse_errbuf eb;
    rouse_model *model;
    assert_int_equal(rouse_model_load_memory(bytes.data, bytes.len, &model, &eb), 0);
    if (rouse_model_compile(model, plan_path, &eb) < 0) fail_msg("compile: %s", eb.msg);
    rouse_model_destroy(model);
    rouse_buf_fini(&bytes);
}

typedef struct run_report {
    int kind;          /* rouse_weight_pages the model read */
    long faults;       /* minor faults of open, prepare and first run */
    bool maps_plan;    /* the plan file is mapped */
    float y[16];       /* the first outputs */
} run_report;

static bool maps_has(const char *needle)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return false;
    char line[1024];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

/* Opens the plan, runs it once on a fixed input; in *r. */
static int run_once(run_report *r)
{
    rouse_errbuf eb;
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    rouse_model *m;
    if (rouse_model_open_plan(plan_path, &m, &eb) < 0) return -1;
    rouse_session *s;
    if (rouse_session_create(m, NULL, &s, &eb) < 0) return -1;
    static float x[K_IN];
    for (int i = 0; i < K_IN; i++)
        x[i] = (float)(i % 13) / 13.0f;
    rouse_tensor in = {.name = "x",
                       .dtype = ROUSE_DT_FLOAT,
                       .rank = 2,
                       .shape = {1, K_IN},
                       .data = x,
                       .nbytes = sizeof(x)};
    if (rouse_session_run(s, &in, 1, &eb) < 0) return -1;
    getrusage(RUSAGE_SELF, &ru1);
    rouse_tensor out;
    if (rouse_session_output(s, 0, &out) < 0) return -1;
    memcpy(r->y, out.data, sizeof(r->y));
    r->faults = ru1.ru_minflt - ru0.ru_minflt;
    r->kind = (int)rouse_model_weight_pages(m);
    r->maps_plan = maps_has(strrchr(plan_path, '/') + 1);
    rouse_session_destroy(s);
    rouse_model_destroy(m);
    return 0;
}

/* run_once in a forked child. */
static run_report run_in_child(void)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        run_report r;
        memset(&r, 0, sizeof(r));
        if (run_once(&r) < 0) _exit(10);
        _exit(write(p[1], &r, sizeof(r)) == sizeof(r) ? 0 : 11);
    }
    close(p[1]);
    run_report r;
    assert_int_equal(read(p[0], &r, sizeof(r)), sizeof(r));
    close(p[0]);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    return r;
}

static void children_read_the_copy(void **state)
{
    (void)state;
    snprintf(plan_path, sizeof(plan_path), "%s/rouse-weight-pages-%d.plan", test_tmp_dir(),
             (int)getpid());
    write_plan(1.0f);
    run_report file = run_in_child();
    assert_int_equal(file.kind, ROUSE_WEIGHT_PAGES_4K);
    assert_true(file.maps_plan);

    rouse_errbuf eb;
    rouse_weight_pages got;
    assert_int_equal(rouse_weight_pages_keep(plan_path, ROUSE_WEIGHT_PAGES_THP, &got, &eb), 1);
    assert_int_equal(got, ROUSE_WEIGHT_PAGES_THP);
    assert_true(rouse_weight_pages_kept_bytes() >= (size_t)WEIGHT_KB * 1024);
    /* Kept already: nothing new. */
    assert_int_equal(rouse_weight_pages_keep(plan_path, ROUSE_WEIGHT_PAGES_THP, &got, &eb), 0);

    run_report copy = run_in_child();
    print_message("first run from the file mapping: %ld minor faults; from the copy: %ld\n",
                  file.faults, copy.faults);
    assert_int_equal(copy.kind, ROUSE_WEIGHT_PAGES_THP);
    assert_false(copy.maps_plan);
    assert_memory_equal(copy.y, file.y, sizeof(file.y));
    /* The copy's page tables come with the fork: no fault on the weights.
     * How many the file mapping takes depends on the kernel (one per 4 KiB
     * page, per 64 KiB around each fault, or per large page-cache folio), so
     * only "never more" is checked. */
    assert_true(copy.faults <= file.faults);

    /* The plan rewritten (another inode): the copy no longer applies. */
    unlink(plan_path);
    write_plan(2.0f);
    run_report again = run_in_child();
    assert_int_equal(again.kind, ROUSE_WEIGHT_PAGES_4K);
    assert_true(again.maps_plan);
    for (int i = 0; i < 16; i++)
        assert_true(again.y[i] == 2.0f * file.y[i] || fabsf(again.y[i] - 2.0f * file.y[i]) < 1e-3f);
    unlink(plan_path);
}

/* hugetlb where the machine can reserve huge pages, else a thp copy. */
static void hugetlb_falls_back(void **state)
{
    (void)state;
    snprintf(plan_path, sizeof(plan_path), "%s/rouse-weight-pages-h-%d.plan", test_tmp_dir(),
             (int)getpid());
    write_plan(1.0f);
    rouse_errbuf eb;
    rouse_weight_pages got, can;
    int rc = rouse_weight_pages_keep(plan_path, ROUSE_WEIGHT_PAGES_HUGETLB, &got, &eb);
    assert_int_equal(rc, 1);
    bool reserved = rouse_weight_pages_choose("hugetlb", &can, &eb) == 0;
    print_message("hugetlb copy made as %s\n", rouse_weight_pages_name(got));
    if (!reserved) assert_int_equal(got, ROUSE_WEIGHT_PAGES_THP);
    run_report r = run_in_child();
    assert_int_equal(r.kind, got);
    assert_false(r.maps_plan);
    unlink(plan_path);
}

static void choose_kinds(void **state)
{
    (void)state;
    rouse_errbuf eb;
    rouse_weight_pages k = ROUSE_WEIGHT_PAGES_HUGETLB;
    assert_int_equal(rouse_weight_pages_choose("4k", &k, &eb), 0);
    assert_int_equal(k, ROUSE_WEIGHT_PAGES_4K);
    assert_int_equal(rouse_weight_pages_choose("2m", &k, &eb), ROUSE_EINVAL);
    assert_non_null(strstr(eb.msg, "expected auto, hugetlb, thp or 4k"));
    assert_int_equal(rouse_weight_pages_choose("auto", &k, &eb), 0);
    rouse_weight_pages named;
    /* What auto took, asked for by name, is given too. */
    assert_int_equal(rouse_weight_pages_choose(rouse_weight_pages_name(k), &named, &eb), 0);
    assert_int_equal(named, k);
    assert_int_equal(rouse_weight_pages_parse("auto", &k), 1);
    assert_string_equal(rouse_weight_pages_name(ROUSE_WEIGHT_PAGES_HUGETLB), "hugetlb");
    /* A missing file: an error, no copy. */
    rouse_weight_pages got;
    assert_true(rouse_weight_pages_keep("/nonexistent/x.plan", ROUSE_WEIGHT_PAGES_THP, &got,
                                        &eb) < 0);
    assert_int_equal(got, ROUSE_WEIGHT_PAGES_4K);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(children_read_the_copy),
        cmocka_unit_test(hugetlb_falls_back),
        cmocka_unit_test(choose_kinds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
