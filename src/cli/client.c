/*
 * The shared part of the client subcommands (see client.h): options,
 * the connection, and how failures are told.
 */
#include "cli/client.h"

#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/arena.h"
#include "common/json.h"

int cli_usage_error(const char *cmd, void (*usage)(FILE *out), const char *msg, const char *arg)
{
    fprintf(stderr, "rouse %s: %s%s%s\n\n", cmd, msg, arg ? ": " : "", arg ? arg : "");
    if (usage) usage(stderr);
    return CLI_EXIT_USAGE;
}

int cli_client_init(cli_client *c, const char *cmd, void (*usage)(FILE *out), int *argc,
                    char **argv)
{
    memset(c, 0, sizeof(*c));
    c->cmd = cmd;
    c->usage = usage;
    const char *url = getenv("ROUSE_SERVER");
    if (!url || !*url) url = CLI_DEFAULT_SERVER;
    const char *key = getenv("ROUSE_KEY");
    if (!key || !*key) key = getenv("ROUSE_API_KEY");
    const char *cacert = NULL;
    int out = 1;
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i];
        const char **dst = NULL;
        if (strcmp(a, "--") == 0) {
            while (i < *argc)
                argv[out++] = argv[i++];
            break;
        }
        if (strcmp(a, "--server") == 0)
            dst = &url;
        else if (strcmp(a, "--key") == 0 || strcmp(a, "--api-key") == 0)
            dst = &key;
        else if (strcmp(a, "--cacert") == 0)
            dst = &cacert;
        if (dst) {
            if (i + 1 >= *argc) return cli_usage_error(cmd, usage, "needs a value", a);
            *dst = argv[++i];
        } else if (strncmp(a, "--server=", 9) == 0) {
            url = a + 9;
        } else if (strcmp(a, "--json") == 0) {
            c->json = true;
        } else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
            c->quiet = true;
        } else {
            argv[out++] = argv[i];
        }
    }
    *argc = out;
    argv[out] = NULL;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    if (http_target_parse(url, &c->target, &eb) < 0) return cli_usage_error(cmd, usage, eb.msg, NULL);
    http_target_url(&c->target, c->url, sizeof(c->url));
    c->api_key = key && *key ? key : NULL;
    c->cacert = cacert;
    http_options o = {.api_key = key, .cacert = cacert};
    if (http_client_create(&c->target, &o, &c->http, &eb) < 0) {
        fprintf(stderr, "rouse %s: %s\n", cmd, eb.msg);
        return CLI_EXIT_FAIL;
    }
    return 0;
}

void cli_client_fini(cli_client *c)
{
    http_client_destroy(c->http);
    c->http = NULL;
}

int cli_call_full(cli_client *c, const http_call *call, http_response *r)
{
    http_response_init(r);
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    if (http_client_call(c->http, call, r, &eb) < 0) {
        if (r->unreachable)
            fprintf(stderr, "rouse %s: %s: is rouse serve running?\n",
                    c->cmd, eb.msg);
        else
            fprintf(stderr, "rouse %s: %s\n", c->cmd, eb.msg);
        http_response_fini(r);
        return -1;
    }
    return 0;
}

int cli_call(cli_client *c, const char *method, const char *path, const char *const *headers,
             const void *body, size_t len, http_response *r)
{
    http_call call = {.method = method,
                      .path = path,
                      .headers = headers,
                      .body = body,
                      .body_len = len,
                      .timeout_ms = CLI_REQUEST_TIMEOUT_MS};
    return cli_call_full(c, &call, r);
}

void cli_error_message(const http_response *r, char *out, size_t cap)
{
    rouse_arena a;
    rouse_arena_init(&a, 0);
    json_value *v;
    const char *msg = NULL;
    if (r->body.data && json_parse(r->body.data, r->body.len, &a, &v, NULL) == 0)
        msg = json_as_string(json_get(v, "error"));
    if (msg) {
        snprintf(out, cap, "%s", msg);
    } else if (r->body.len) {
        /* Not rouse's JSON (a proxy's page?): its first line. */
        size_t n = strcspn(r->body.data, "\r\n");
        snprintf(out, cap, "%.*s", (int)(n > 200 ? 200 : n), r->body.data);
    } else {
        snprintf(out, cap, "no message");
    }
    rouse_arena_fini(&a);
}

int cli_fail_response(cli_client *c, http_response *r)
{
    char msg[1024];
    cli_error_message(r, msg, sizeof(msg));
    fprintf(stderr, "rouse %s: %s (HTTP %d)\n", c->cmd, msg, r->status);
    http_response_fini(r);
    return CLI_EXIT_FAIL;
}

int cli_url_escape(rouse_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = 0;
    for (; *s && rc == 0; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '_' || ch == '.' || ch == '~')
            rc = rouse_buf_append_byte(b, ch);
        else
            rc = rouse_buf_appendf(b, "%%%c%c", hex[ch >> 4], hex[ch & 15]);
    }
    return rc;
}
