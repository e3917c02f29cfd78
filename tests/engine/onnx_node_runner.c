/*
 * ONNX node conformance runner.
 *
 *   onnx_node_runner ONNX_NODE_DIR [CASE...]
 *
 * Runs every case of ONNX_NODE_DIR/manifest.tsv whose op types are all ones
 * the engine implements (or only the named CASEs), each in a forked child so
 * that a crash or a hang fails that case instead of the whole run. Prints one
 * line per case (PASS / FAIL / UNSUPPORTED and why) and finally
 *   onnx-node: P passed, F failed, U unsupported
 * where unsupported means the engine returned ROUSE_EUNSUPPORTED at load or
 * run, preceded by the same counts for the cases that use only the first
 * (convolutional) op list and for those that use at least one op of the
 * later (transformer) list. Exits 0 when P is at least 90% of the cases
 * considered in each of those two groups, 1 otherwise, 77 when the folder
 * is absent, 2 on usage errors.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/tensor_file.h"
#include "cli/testdata.h"
#include "rouse/engine.h"

#define CASE_TIMEOUT_S 120
#define PASS_PERCENT 90

/* The ops the engine implements (DESIGN.md §3); a case qualifies when all its
 * op types are here. */
static const char *const supported_ops[] = {
    "Conv",      "Gemm",     "MatMul",    "Relu",        "Clip",
    "LeakyRelu", "Sigmoid",  "Tanh",      "Add",         "Sub",
    "Mul",       "Div",      "MaxPool",   "AveragePool", "GlobalAveragePool",
    "Flatten",   "Reshape",  "Transpose", "Concat",      "BatchNormalization",
    "Softmax",   "Identity", "Dropout",   "Constant",
};

/* Ops added for transformer encoders, counted separately so that the bar
 * on the list above keeps its meaning. */
static const char *const added_ops[] = {
    "Cast", "Erf", "Gather", "Pow", "ReduceMean", "Sqrt", "Unsqueeze", "Squeeze", "Where",
};

enum case_verdict { CASE_PASS = 0, CASE_FAIL = 1, CASE_UNSUPPORTED = 2 };

static bool in_list(const char *const *list, size_t n_list, const char *op, size_t len)
{
    for (size_t i = 0; i < n_list; i++)
        if (strlen(list[i]) == len && memcmp(list[i], op, len) == 0) return true;
    return false;
}

#define IN_LIST(list, op, len) in_list((list), sizeof(list) / sizeof((list)[0]), (op), (len))

/* ops is the comma-separated op_type column. Returns false when an op is in
 * neither list; *uses_added tells whether one is from added_ops. */
static bool ops_supported(const char *ops, bool *uses_added)
{
    *uses_added = false;
    if (!*ops) return false;
    for (const char *p = ops; *p;) {
        size_t n = strcspn(p, ",");
        if (IN_LIST(added_ops, p, n))
            *uses_added = true;
        else if (!IN_LIST(supported_ops, p, n))
            return false;
        p += n;
        if (*p == ',') p++;
    }
    return true;
}

/* a/b into buf; false when it does not fit. */
static bool path_join(char *buf, size_t len, const char *a, const char *b)
{
    int n = snprintf(buf, len, "%s/%s", a, b);
    return n >= 0 && (size_t)n < len;
}

/* Runs one case and prints its line; the return value is its verdict. */
static int run_case(const char *root, const char *name)
{
    char dir[4096], model_path[4096];
    if (!path_join(dir, sizeof(dir), root, name) ||
        !path_join(model_path, sizeof(model_path), dir, "model.onnx")) {
        printf("FAIL %s path too long\n", name);
        return CASE_FAIL;
    }
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    rouse_model *m = NULL;
    rouse_session *s = NULL;
    char **sets = NULL;
    int n_sets = 0, verdict = CASE_FAIL, rc;

    if ((rc = rouse_model_load(model_path, &m, &eb)) < 0) {
        verdict = rc == ROUSE_EUNSUPPORTED ? CASE_UNSUPPORTED : CASE_FAIL;
        printf("%s %s load: %s\n", verdict == CASE_UNSUPPORTED ? "UNSUPPORTED" : "FAIL", name,
               eb.msg);
        return verdict;
    }
    rouse_session_options so = {.threads = 1};
    if ((rc = rouse_session_create(m, &so, &s, &eb)) < 0) {
        verdict = rc == ROUSE_EUNSUPPORTED ? CASE_UNSUPPORTED : CASE_FAIL;
        printf("%s %s session: %s\n", verdict == CASE_UNSUPPORTED ? "UNSUPPORTED" : "FAIL", name,
               eb.msg);
        goto out_model;
    }
    if ((rc = cli_testdata_list_sets(dir, &sets, &n_sets, &eb)) < 0 || n_sets == 0) {
        printf("FAIL %s %s\n", name, rc < 0 ? eb.msg : "no test_data_set_* folders");
        goto out_session;
    }
    double max_abs = 0;
    for (int i = 0; i < n_sets; i++) {
        char set_dir[4096];
        if (!path_join(set_dir, sizeof(set_dir), dir, sets[i])) {
            printf("FAIL %s path too long\n", name);
            goto out_sets;
        }
        cli_set_result r;
        rouse_errbuf_clear(&eb);
        rc = cli_testdata_run_set(m, s, set_dir, CLI_TOL_DEFAULT, &r, &eb);
        if (r.max_abs > max_abs) max_abs = r.max_abs;
        if (rc < 0) {
            bool unsupported = r.engine_error && rc == ROUSE_EUNSUPPORTED;
            verdict = unsupported ? CASE_UNSUPPORTED : CASE_FAIL;
            printf("%s %s %s: %s%s\n", unsupported ? "UNSUPPORTED" : "FAIL", name, sets[i],
                   r.engine_error || rc == ROUSE_EMISMATCH ? "" : "reading test data: ", eb.msg);
            goto out_sets;
        }
    }
    verdict = CASE_PASS;
    printf("PASS %s max_abs=%.3g\n", name, max_abs);
out_sets:
    cli_testdata_free_list(sets, n_sets);
out_session:
    rouse_session_destroy(s);
out_model:
    rouse_model_destroy(m);
    return verdict;
}

/* Runs a case in a child process and returns its verdict; a child that dies
 * or hangs is a FAIL with the reason. */
static int run_case_isolated(const char *root, const char *name)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        printf("FAIL %s fork: %s\n", name, strerror(errno));
        return CASE_FAIL;
    }
    if (pid == 0) {
        alarm(CASE_TIMEOUT_S);
        /* exit, not _exit: under LeakSanitizer a leaking case then fails. */
        exit(run_case(root, name));
    }
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            printf("FAIL %s waitpid: %s\n", name, strerror(errno));
            return CASE_FAIL;
        }
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) <= CASE_UNSUPPORTED) return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        printf("FAIL %s %s (signal %d)\n", name,
               WTERMSIG(status) == SIGALRM ? "timed out" : "crashed", WTERMSIG(status));
    else
        printf("FAIL %s exited with status %d\n", name, WEXITSTATUS(status));
    return CASE_FAIL;
}

static bool wanted(const char *name, int argc, char **argv)
{
    if (argc <= 2) return true;
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], name) == 0) return true;
    return false;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: onnx_node_runner ONNX_NODE_DIR [CASE...]\n");
        return 2;
    }
    const char *root = argv[1];
    struct stat st;
    if (stat(root, &st) != 0 || !S_ISDIR(st.st_mode)) {
        printf("skipped: ../shared/models not found\n");
        return 77;
    }
    /* The manifest is read whole before any fork: a child's exit() would
     * otherwise rewind the shared descriptor of a buffered FILE. */
    char manifest[4096];
    uint8_t *text;
    size_t len;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    if (!path_join(manifest, sizeof(manifest), root, "manifest.tsv") ||
        cli_file_slurp(manifest, &text, &len, &eb) < 0) {
        fprintf(stderr, "onnx_node_runner: %s\n", eb.msg[0] ? eb.msg : "path too long");
        return 1;
    }
    int counts[2][3] = {{0, 0, 0}, {0, 0, 0}}; /* [original, added][verdict] */
    char *end = (char *)text + len;
    bool header = true; /* test, op_type, opset */
    for (char *p = (char *)text, *next; p < end; p = next) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        next = nl ? nl + 1 : end;
        char line[4096];
        size_t n = (size_t)((nl ? nl : end) - p);
        if (n >= sizeof(line)) continue; /* no case has such a line */
        memcpy(line, p, n);
        line[n] = '\0';
        line[strcspn(line, "\r")] = '\0';
        if (header) {
            header = false;
            continue;
        }
        char *name = line, *ops = strchr(line, '\t');
        if (!ops) continue;
        *ops++ = '\0';
        char *tab = strchr(ops, '\t');
        if (tab) *tab = '\0';
        bool added;
        if (!ops_supported(ops, &added) || !wanted(name, argc, argv)) continue;
        counts[added][run_case_isolated(root, name)]++;
    }
    free(text);
    static const char *const group[2] = {"original ops", "added ops"};
    int all[3] = {0, 0, 0};
    bool ok = true;
    for (int g = 0; g < 2; g++) {
        int t = counts[g][CASE_PASS] + counts[g][CASE_FAIL] + counts[g][CASE_UNSUPPORTED];
        printf("onnx-node (%s): %d passed, %d failed, %d unsupported\n", group[g],
               counts[g][CASE_PASS], counts[g][CASE_FAIL], counts[g][CASE_UNSUPPORTED]);
        ok &= counts[g][CASE_PASS] * 100 >= t * PASS_PERCENT;
        for (int v = 0; v < 3; v++)
            all[v] += counts[g][v];
    }
    printf("onnx-node: %d passed, %d failed, %d unsupported\n", all[CASE_PASS], all[CASE_FAIL],
           all[CASE_UNSUPPORTED]);
    if (all[CASE_PASS] + all[CASE_FAIL] + all[CASE_UNSUPPORTED] == 0) {
        fprintf(stderr, "onnx_node_runner: no case matched\n");
        return 1;
    }
    return ok ? 0 : 1;
}
