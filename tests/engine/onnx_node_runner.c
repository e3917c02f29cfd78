/*
 * ONNX node conformance runner.
 *
 *   onnx_node_runner ONNX_NODE_DIR [--min-pass N] [CASE...]
 *
 * Runs every case of ONNX_NODE_DIR/manifest.tsv (or only the named CASEs),
 * each in a forked child so that a crash or a hang fails that case instead
 * of the whole run. Prints one line per case (PASS / FAIL / UNSUPPORTED and
 * why), then the cases ONNX Runtime passes (ORT_1.30_results.tsv) and rouse
 * does not, and finally
 *   onnx-node: P passed, F failed, U unsupported of T (ORT 1.30: O)
 * where unsupported means the engine returned ROUSE_EUNSUPPORTED at load or
 * run. Exits 1 when P is below N (the ratchet recorded in the repository:
 * raise it as coverage grows), 0 otherwise, 77 when the folder is absent,
 * 2 on usage errors.
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

enum case_verdict { CASE_PASS = 0, CASE_FAIL = 1, CASE_UNSUPPORTED = 2 };

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

/* argv[2..argc) are the case names asked for; none means all. */
static bool wanted(const char *name, int argc, char **argv)
{
    if (argc <= 2) return true;
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], name) == 0) return true;
    return false;
}

/* The ORT verdict column of ORT_1.30_results.tsv for `name`: true for PASS. */
static bool ort_passes(const char *ort, size_t ort_len, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = ort; p && p < ort + ort_len;) {
        const char *nl = memchr(p, '\n', (size_t)(ort + ort_len - p));
        size_t line = (size_t)((nl ? nl : ort + ort_len) - p);
        if (line > n + 5 && !memcmp(p, name, n) && p[n] == '\t') return !memcmp(p + n + 1, "PASS", 4);
        p = nl ? nl + 1 : NULL;
    }
    return false;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: onnx_node_runner ONNX_NODE_DIR [--min-pass N] [CASE...]\n");
        return 2;
    }
    const char *root = argv[1];
    long min_pass = 0;
    int first_case = 2;
    if (argc > 3 && !strcmp(argv[2], "--min-pass")) {
        char *e;
        min_pass = strtol(argv[3], &e, 10);
        if (*e || min_pass < 0) {
            fprintf(stderr, "onnx_node_runner: bad --min-pass '%s'\n", argv[3]);
            return 2;
        }
        first_case = 4;
    }
    struct stat st;
    if (stat(root, &st) != 0 || !S_ISDIR(st.st_mode)) {
        printf("skipped: ../shared/models not found\n");
        return 77;
    }
    /* The manifest is read whole before any fork: a child's exit() would
     * otherwise rewind the shared descriptor of a buffered FILE. */
    char manifest[4096], ort_path[4096];
    uint8_t *text, *ort = NULL;
    size_t len, ort_len = 0;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    if (!path_join(manifest, sizeof(manifest), root, "manifest.tsv") ||
        cli_file_slurp(manifest, &text, &len, &eb) < 0) {
        fprintf(stderr, "onnx_node_runner: %s\n", eb.msg[0] ? eb.msg : "path too long");
        return 1;
    }
    if (path_join(ort_path, sizeof(ort_path), root, "ORT_1.30_results.tsv"))
        (void)cli_file_slurp(ort_path, &ort, &ort_len, &eb); /* optional */
    int counts[3] = {0, 0, 0}, total = 0, ort_total = 0;
    char *missed = NULL; /* cases ORT passes that rouse does not */
    size_t missed_len = 0;
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
        if (!wanted(name, argc - first_case + 2, argv + first_case - 2)) continue;
        total++;
        bool ort_ok = ort && ort_passes((const char *)ort, ort_len, name);
        ort_total += ort_ok;
        int v = run_case_isolated(root, name);
        counts[v]++;
        if (v != CASE_PASS && ort_ok) {
            size_t add = strlen(name) + 1;
            char *grown = realloc(missed, missed_len + add + 1);
            if (grown) {
                missed = grown;
                memcpy(missed + missed_len, name, add - 1);
                missed[missed_len + add - 1] = ' ';
                missed_len += add;
                missed[missed_len] = '\0';
            }
        }
    }
    free(text);
    free(ort);
    if (missed) printf("ONNX Runtime passes, rouse does not: %s\n", missed);
    free(missed);
    printf("onnx-node: %d passed, %d failed, %d unsupported of %d (ORT 1.30: %d)\n",
           counts[CASE_PASS], counts[CASE_FAIL], counts[CASE_UNSUPPORTED], total, ort_total);
    if (total == 0) {
        fprintf(stderr, "onnx_node_runner: no case matched\n");
        return 1;
    }
    if (counts[CASE_PASS] < min_pass) {
        printf("onnx-node: %d passed is below the recorded %ld (tests/engine/onnx_node_min_pass)\n",
               counts[CASE_PASS], min_pass);
        return 1;
    }
    return 0;
}
