/*
 * The asynchronous client commands: `rouse job ID [--wait]`, `rouse job
 * retry ID`, `rouse jobs NAME [--status S]`, `rouse batch NAME FILE.jsonl
 * [--wait] [--output FILE]`, and the submission behind `rouse invoke
 * --async` (cli_jobs_submit). Server, API key and error conventions are
 * every client command's (client.h). Exit status: 0 ok (a waited-for job
 * or batch succeeded), 1 the request failed or the job did, 2 usage error.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/tensor_file.h"
#include "common/arena.h"
#include "common/json.h"

#define POLL_MS 200

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A string member of a JSON document, copied into out ("" when absent). */
static void get_str(const char *doc, size_t len, const char *key, char *out, size_t cap)
{
    rouse_arena a;
    rouse_arena_init(&a, 0);
    json_value *v;
    out[0] = '\0';
    if (json_parse(doc, len, &a, &v, NULL) == 0) {
        const char *s = json_as_string(json_get(v, key));
        if (s) snprintf(out, cap, "%s", s);
    }
    rouse_arena_fini(&a);
}

static void print_body(const http_response *r)
{
    fwrite(r->body.data, 1, r->body.len, stdout);
    if (r->body.len && r->body.data[r->body.len - 1] != '\n') putchar('\n');
}

/* --- invoke --async ---------------------------------------------------------- */

int cli_jobs_submit(cli_client *c, const char *path, const char *const *headers, const void *body,
                    size_t len)
{
    const char *h[8];
    int n = 0;
    for (int i = 0; headers && headers[i] && n < 6; i++)
        h[n++] = headers[i];
    h[n++] = "Prefer: respond-async";
    h[n] = NULL;
    http_response r;
    if (cli_call(c, "POST", path, h, body, len, &r) < 0) return CLI_EXIT_FAIL;
    if (r.status != 202) return cli_fail_response(c, &r);
    if (c->json) {
        print_body(&r);
    } else {
        char id[32];
        get_str(r.body.data, r.body.len, "id", id, sizeof(id));
        printf("%s\n", id);
    }
    http_response_fini(&r);
    return CLI_EXIT_OK;
}

/* --- job ---------------------------------------------------------------------- */

void cli_job_usage(FILE *out)
{
    fprintf(out, "usage: rouse job ID [--wait] [options]\n"
                 "       rouse job retry ID [options]\n\n"
                 "Shows an asynchronous job (JSON: status, attempts, times, last error,\n"
                 "callback delivery, and the response once it succeeded).\n"
                 "  --wait   poll until the job is succeeded, failed or cancelled; the exit\n"
                 "           status is 0 only when it succeeded\n"
                 "  retry    queue a failed or cancelled job again (a dead letter re-driven)\n"
                 "\noptions:\n" CLI_CLIENT_OPTIONS_HELP);
}

static bool is_final(const char *status)
{
    return strcmp(status, "succeeded") == 0 || strcmp(status, "failed") == 0 ||
           strcmp(status, "cancelled") == 0;
}

static int job_run(cli_client *c, int argc, char **argv)
{
    bool wait = false, retry = false;
    const char *id = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--wait") == 0)
            wait = true;
        else if (argv[i][0] == '-')
            return cli_usage_error("job", cli_job_usage, "unknown option", argv[i]);
        else if (!id && !retry && strcmp(argv[i], "retry") == 0)
            retry = true;
        else if (!id)
            id = argv[i];
        else
            return cli_usage_error("job", cli_job_usage, "unexpected argument", argv[i]);
    }
    if (!id) return cli_usage_error("job", cli_job_usage, "needs a job ID", NULL);
    if (strlen(id) > 20 || strspn(id, "0123456789") != strlen(id))
        return cli_usage_error("job", cli_job_usage, "a job ID is a number", id);
    char path[96];
    http_response r;
    if (retry) {
        snprintf(path, sizeof(path), "/v1/jobs/%s/retry", id);
        if (cli_call(c, "POST", path, NULL, NULL, 0, &r) < 0) return CLI_EXIT_FAIL;
        if (r.status != 200) return cli_fail_response(c, &r);
        print_body(&r);
        http_response_fini(&r);
        return CLI_EXIT_OK;
    }
    snprintf(path, sizeof(path), "/v1/jobs/%s", id);
    for (;;) {
        if (cli_call(c, "GET", path, NULL, NULL, 0, &r) < 0) return CLI_EXIT_FAIL;
        if (r.status != 200) return cli_fail_response(c, &r);
        char status[32];
        get_str(r.body.data, r.body.len, "status", status, sizeof(status));
        if (!wait || is_final(status)) {
            print_body(&r);
            http_response_fini(&r);
            return !wait || strcmp(status, "succeeded") == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
        }
        http_response_fini(&r);
        sleep_ms(POLL_MS);
    }
}

int cli_job_main(int argc, char **argv)
{
    cli_client c;
    int rc = cli_client_init(&c, "job", cli_job_usage, &argc, argv);
    if (rc) return rc;
    rc = job_run(&c, argc, argv);
    cli_client_fini(&c);
    return rc;
}

/* --- jobs --------------------------------------------------------------------- */

void cli_jobs_usage(FILE *out)
{
    fprintf(out, "usage: rouse jobs NAME [--status STATUS] [--limit N] [options]\n\n"
                 "Lists the asynchronous jobs of function NAME, oldest first: id, status,\n"
                 "attempts and last error. --status failed lists the dead letters (jobs that\n"
                 "failed after their retries; `rouse job retry ID` re-drives one).\n"
                 "  --status S  queued, running, succeeded, failed or cancelled\n"
                 "  --limit N   at most N jobs (default 100, at most 1000)\n"
                 "\noptions:\n" CLI_CLIENT_OPTIONS_HELP);
}

static int jobs_run(cli_client *c, int argc, char **argv)
{
    int rc;
    const char *name = NULL, *status = NULL, *limit = "100";
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--status") == 0) {
            if (!v) return cli_usage_error("jobs", cli_jobs_usage, "--status needs a value", NULL);
            status = v;
            i++;
        } else if (strcmp(argv[i], "--limit") == 0) {
            if (!v) return cli_usage_error("jobs", cli_jobs_usage, "--limit needs a number", NULL);
            limit = v;
            i++;
        } else if (argv[i][0] == '-') {
            return cli_usage_error("jobs", cli_jobs_usage, "unknown option", argv[i]);
        } else if (!name) {
            name = argv[i];
        } else {
            return cli_usage_error("jobs", cli_jobs_usage, "unexpected argument", argv[i]);
        }
    }
    if (!name) return cli_usage_error("jobs", cli_jobs_usage, "needs a function NAME", NULL);
    if (strlen(name) > 63 || strlen(limit) > 8 || (status && strlen(status) > 16))
        return cli_usage_error("jobs", cli_jobs_usage, "argument too long", NULL);
    char path[256];
    snprintf(path, sizeof(path), "/v1/jobs?function=%s&limit=%s%s%s", name, limit,
             status ? "&status=" : "", status ? status : "");
    http_response r;
    if (cli_call(c, "GET", path, NULL, NULL, 0, &r) < 0) return CLI_EXIT_FAIL;
    if (r.status != 200) return cli_fail_response(c, &r);
    if (c->json) {
        print_body(&r);
        http_response_fini(&r);
        return CLI_EXIT_OK;
    }
    rouse_arena a;
    rouse_arena_init(&a, 0);
    json_value *v;
    rc = CLI_EXIT_OK;
    if (json_parse(r.body.data, r.body.len, &a, &v, NULL) == 0 && json_get(v, "jobs") &&
        json_get(v, "jobs")->type == JSON_ARRAY) {
        const json_value *jobs = json_get(v, "jobs");
        printf("%-10s %-10s %-8s %s\n", "ID", "STATUS", "ATTEMPTS", "LAST ERROR");
        for (size_t i = 0; i < jobs->u.arr.n; i++) {
            const json_value *j = jobs->u.arr.items[i];
            int64_t attempts = 0;
            json_as_int64(json_get(j, "attempts"), &attempts);
            const char *err = json_as_string(json_get(j, "last_error"));
            const char *id = json_as_string(json_get(j, "id"));
            const char *st = json_as_string(json_get(j, "status"));
            printf("%-10s %-10s %-8" PRId64 " %s\n", id ? id : "?", st ? st : "?", attempts,
                   err ? err : "");
        }
    } else {
        fprintf(stderr, "rouse jobs: the server's answer is not a job list\n");
        rc = CLI_EXIT_FAIL;
    }
    rouse_arena_fini(&a);
    http_response_fini(&r);
    return rc;
}

int cli_jobs_main(int argc, char **argv)
{
    cli_client c;
    int rc = cli_client_init(&c, "jobs", cli_jobs_usage, &argc, argv);
    if (rc) return rc;
    rc = jobs_run(&c, argc, argv);
    cli_client_fini(&c);
    return rc;
}

/* --- batch -------------------------------------------------------------------- */

void cli_batch_usage(FILE *out)
{
    fprintf(out,
            "usage: rouse batch NAME REQUESTS.jsonl [--wait] [--output FILE] [options]\n\n"
            "Runs a batch file: one Open Inference Protocol request per line, each run\n"
            "as an asynchronous job of function NAME. Prints the batch id.\n"
            "  --wait         follow its progress (a bar on a terminal, plain lines\n"
            "                 otherwise) and write the results when it is done\n"
            "  --output FILE  where the results go, one line per request in input\n"
            "                 order, null for a request that failed (default\n"
            "                 REQUESTS.out.jsonl); the failures, with their errors, go\n"
            "                 to FILE.errors.jsonl\n"
            "\noptions:\n" CLI_CLIENT_OPTIONS_HELP);
}

static int64_t count_of(const json_value *v, const char *key)
{
    int64_t n = 0;
    json_as_int64(json_get(json_get(v, "counts"), key), &n);
    return n;
}

static void progress(bool tty, int64_t done, int64_t total, int64_t ok, int64_t failed)
{
    if (tty) {
        int width = 40;
        int fill = total > 0 ? (int)(done * width / total) : width;
        char bar[64];
        for (int i = 0; i < width; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[width] = '\0';
        fprintf(stderr,
                "\r[%s] %" PRId64 "/%" PRId64 " (%" PRId64 " succeeded, %" PRId64 " failed)", bar,
                done, total, ok, failed);
        fflush(stderr);
    } else {
        fprintf(stderr,
                "%" PRId64 "/%" PRId64 " done (%" PRId64 " succeeded, %" PRId64 " failed)\n", done,
                total, ok, failed);
    }
}

static int download(cli_client *c, const char *path, const char *file)
{
    http_response r;
    if (cli_call(c, "GET", path, NULL, NULL, 0, &r) < 0) return CLI_EXIT_FAIL;
    if (r.status != 200) return cli_fail_response(c, &r);
    FILE *f = fopen(file, "wb");
    int rc = CLI_EXIT_OK;
    if (!f || fwrite(r.body.data, 1, r.body.len, f) != r.body.len) {
        fprintf(stderr, "rouse batch: cannot write %s\n", file);
        rc = CLI_EXIT_FAIL;
    }
    if (f && fclose(f) != 0) rc = CLI_EXIT_FAIL;
    http_response_fini(&r);
    return rc;
}

static int batch_run(cli_client *c, int argc, char **argv)
{
    int rc;
    const char *name = NULL, *file = NULL, *output = NULL;
    bool wait = false;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--wait") == 0) {
            wait = true;
        } else if (strcmp(argv[i], "--output") == 0) {
            if (!v) return cli_usage_error("batch", cli_batch_usage, "--output needs a file", NULL);
            output = v;
            i++;
        } else if (argv[i][0] == '-') {
            return cli_usage_error("batch", cli_batch_usage, "unknown option", argv[i]);
        } else if (!name) {
            name = argv[i];
        } else if (!file) {
            file = argv[i];
        } else {
            return cli_usage_error("batch", cli_batch_usage, "unexpected argument", argv[i]);
        }
    }
    if (!name || !file)
        return cli_usage_error("batch", cli_batch_usage, "needs NAME and a .jsonl file", NULL);
    if (strlen(name) > 63) return cli_usage_error("batch", cli_batch_usage, "NAME too long", name);
    uint8_t *buf;
    size_t len;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    if (cli_file_slurp(file, &buf, &len, &eb) < 0) {
        fprintf(stderr, "rouse batch: %s\n", eb.msg);
        return CLI_EXIT_FAIL;
    }
    http_response r;
    rc = cli_call(c, "POST", "/v1/blobs", NULL, buf, len, &r);
    free(buf);
    if (rc < 0) return CLI_EXIT_FAIL;
    if (r.status != 201 && r.status != 200) return cli_fail_response(c, &r);
    char digest[80];
    get_str(r.body.data, r.body.len, "digest", digest, sizeof(digest));
    http_response_fini(&r);
    char body[256];
    snprintf(body, sizeof(body), "{\"function\":\"%s\",\"input\":\"%s\"}", name, digest);
    if (cli_call(c, "POST", "/v1/batches", NULL, body, strlen(body), &r) < 0) return CLI_EXIT_FAIL;
    if (r.status != 202) return cli_fail_response(c, &r);
    char id[32];
    get_str(r.body.data, r.body.len, "id", id, sizeof(id));
    http_response_fini(&r);
    printf("%s\n", id);
    fflush(stdout);
    if (!wait) return CLI_EXIT_OK;

    bool tty = isatty(STDERR_FILENO);
    char path[96];
    snprintf(path, sizeof(path), "/v1/batches/%s", id);
    int64_t last_done = -1, failed = 0;
    for (;;) {
        if (cli_call(c, "GET", path, NULL, NULL, 0, &r) < 0) return CLI_EXIT_FAIL;
        if (r.status != 200) return cli_fail_response(c, &r);
        rouse_arena a;
        rouse_arena_init(&a, 0);
        json_value *v;
        bool complete = false;
        if (json_parse(r.body.data, r.body.len, &a, &v, NULL) == 0) {
            int64_t total = 0;
            json_as_int64(json_get(v, "total"), &total);
            int64_t ok = count_of(v, "succeeded");
            failed = count_of(v, "failed") + count_of(v, "cancelled");
            const char *st = json_as_string(json_get(v, "status"));
            complete = st && strcmp(st, "completed") == 0;
            if (ok + failed != last_done || complete) progress(tty, ok + failed, total, ok, failed);
            last_done = ok + failed;
        }
        rouse_arena_fini(&a);
        http_response_fini(&r);
        if (complete) break;
        sleep_ms(tty ? POLL_MS : 1000);
    }
    if (tty) fputc('\n', stderr);
    char out_file[4096], err_file[4200];
    if (output)
        snprintf(out_file, sizeof(out_file), "%s", output);
    else
        snprintf(out_file, sizeof(out_file), "%.*s.out.jsonl",
                 (int)(strlen(file) > 6 && strcmp(file + strlen(file) - 6, ".jsonl") == 0
                           ? strlen(file) - 6
                           : strlen(file)),
                 file);
    snprintf(err_file, sizeof(err_file), "%s.errors.jsonl", out_file);
    snprintf(path, sizeof(path), "/v1/batches/%s/output", id);
    if ((rc = download(c, path, out_file)) != CLI_EXIT_OK) return rc;
    fprintf(stderr, "results in %s\n", out_file);
    if (failed > 0) {
        snprintf(path, sizeof(path), "/v1/batches/%s/errors", id);
        if ((rc = download(c, path, err_file)) != CLI_EXIT_OK) return rc;
        fprintf(stderr, "%" PRId64 " request(s) failed: errors in %s\n", failed, err_file);
        return CLI_EXIT_FAIL;
    }
    return CLI_EXIT_OK;
}

int cli_batch_main(int argc, char **argv)
{
    cli_client c;
    int rc = cli_client_init(&c, "batch", cli_batch_usage, &argc, argv);
    if (rc) return rc;
    rc = batch_run(&c, argc, argv);
    cli_client_fini(&c);
    return rc;
}
