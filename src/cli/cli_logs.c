/*
 * rouse logs NAME [--follow] [--since AGE]: what a function's instances
 * printed and how they ended, from serve's ring of them
 * (GET /v1/functions/{name}/logs; with --follow its Server-Sent Events,
 * printed as they come until interrupted).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/out.h"
#include "common/arena.h"
#include "common/json.h"

void cli_logs_usage(FILE *out)
{
    fprintf(out, "usage: rouse logs NAME [--follow] [--since AGE] [options]\n\n"
                 "Prints what the function's instances wrote to stdout and stderr and how\n"
                 "they ended (crashes, failed loads), oldest first: serve keeps the last\n"
                 "2000 lines of each function.\n\n"
                 "options:\n"
                 "  -f, --follow       keep printing new lines as they come\n"
                 "  --since AGE        only lines from the last AGE (30s, 10m, 2h, 1d), or since\n"
                 "                     a time in milliseconds since the epoch\n"
                 CLI_CLIENT_OPTIONS_HELP
                 "\nWith --json: the server's document, or with --follow one JSON line per\n"
                 "entry ({seq, time_ms, function, version, pid, stream, text}).\n");
}

static void print_line(const json_value *e)
{
    int64_t ms = 0, ver = 0, pid = 0;
    json_as_int64(json_get(e, "time_ms"), &ms);
    json_as_int64(json_get(e, "version"), &ver);
    json_as_int64(json_get(e, "pid"), &pid);
    const char *stream = json_as_string(json_get(e, "stream"));
    const char *text = json_as_string(json_get(e, "text"));
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char when[32];
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    bool crash = stream && strcmp(stream, "crash") == 0;
    const char *dim = cli_style_of(stdout, CLI_DIM), *red = cli_style_of(stdout, CLI_RED),
               *z = cli_style_of(stdout, CLI_RESET);
    printf("%s%s.%03dZ v%" PRId64 " pid %" PRId64 "%s %s%s%s\n", dim, when, (int)(ms % 1000), ver,
           pid, z, crash ? red : "", text ? text : "", crash ? z : "");
}

typedef struct sse_state {
    cli_client *c;
    rouse_buf line;
} sse_state;

/* Server-Sent Events: "data: {...}" lines; ids and comments are skipped. */
static int on_sse(void *user, const char *data, size_t len)
{
    sse_state *st = user;
    for (size_t i = 0; i < len; i++) {
        if (data[i] != '\n') {
            rouse_buf_append_byte(&st->line, (unsigned char)data[i]);
            continue;
        }
        const char *l = st->line.data ? st->line.data : "";
        if (strncmp(l, "data: ", 6) == 0) {
            if (st->c->json) {
                printf("%s\n", l + 6);
            } else {
                rouse_arena a;
                rouse_arena_init(&a, 0);
                json_value *v;
                if (json_parse(l + 6, st->line.len - 6, &a, &v, NULL) == 0) print_line(v);
                rouse_arena_fini(&a);
            }
            fflush(stdout);
        }
        rouse_buf_clear(&st->line);
    }
    return 0;
}

static int logs_run(cli_client *c, int argc, char **argv)
{
    const char *name = NULL, *since = NULL;
    bool follow = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-f") == 0 || strcmp(argv[i], "--follow") == 0) {
            follow = true;
        } else if (strcmp(argv[i], "--since") == 0) {
            if (i + 1 >= argc) return cli_usage_error("logs", cli_logs_usage, "needs a value", argv[i]);
            since = argv[++i];
        } else if (argv[i][0] == '-') {
            return cli_usage_error("logs", cli_logs_usage, "unknown option", argv[i]);
        } else if (!name) {
            name = argv[i];
        } else {
            return cli_usage_error("logs", cli_logs_usage, "unexpected argument", argv[i]);
        }
    }
    if (!name) return cli_usage_error("logs", cli_logs_usage, "needs NAME", NULL);
    rouse_buf path;
    rouse_buf_init(&path);
    rouse_buf_append_str(&path, "/v1/functions/");
    cli_url_escape(&path, name);
    rouse_buf_append_str(&path, "/logs?");
    if (since) {
        rouse_buf_append_str(&path, "since=");
        cli_url_escape(&path, since);
        rouse_buf_append_str(&path, "&");
    }
    if (follow) rouse_buf_append_str(&path, "follow=1");
    http_response r;
    int rc = CLI_EXIT_FAIL;
    if (follow) {
        sse_state st = {.c = c};
        rouse_buf_init(&st.line);
        const char *h[] = {"Accept: text/event-stream", NULL};
        http_call call = {.method = "GET", .path = path.data, .headers = h, .on_data = on_sse, .user = &st};
        if (cli_call_full(c, &call, &r) == 0) {
            /* An error answer is JSON, not events: it went to on_sse as is. */
            if (r.status != 200)
                fprintf(stderr, "rouse logs: the server answered %d\n", r.status);
            else
                rc = CLI_EXIT_OK;
            http_response_fini(&r);
        }
        rouse_buf_fini(&st.line);
    } else if (cli_call(c, "GET", path.data, NULL, NULL, 0, &r) == 0) {
        if (r.status != 200) {
            rc = cli_fail_response(c, &r);
        } else {
            rc = CLI_EXIT_OK;
            if (c->json) {
                fputs(r.body.data, stdout);
            } else if (!c->quiet) {
                rouse_arena a;
                rouse_arena_init(&a, 0);
                json_value *v;
                if (json_parse(r.body.data, r.body.len, &a, &v, NULL) == 0) {
                    const json_value *ls = json_get(v, "lines");
                    for (size_t i = 0; ls && ls->type == JSON_ARRAY && i < ls->u.arr.n; i++)
                        print_line(ls->u.arr.items[i]);
                }
                rouse_arena_fini(&a);
            }
            http_response_fini(&r);
        }
    }
    rouse_buf_fini(&path);
    return rc;
}

int cli_logs_main(int argc, char **argv)
{
    cli_client c;
    int rc = cli_client_init(&c, "logs", cli_logs_usage, &argc, argv);
    if (rc) return rc;
    rc = logs_run(&c, argc, argv);
    cli_client_fini(&c);
    return rc;
}
