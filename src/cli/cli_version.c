/*
 * rouse version: the client's version and the server's (GET /v2, the Open
 * Inference Protocol's server metadata). --client skips the server.
 */
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "common/arena.h"
#include "common/json.h"

void cli_version_usage(FILE *out)
{
    fprintf(out, "usage: rouse version [--client] [options]\n\n"
                 "Prints the version of this client and of the server it talks to.\n\n"
                 "options:\n"
                 "  --client           only the client's (no server is asked)\n" CLI_CLIENT_OPTIONS_HELP);
}

int cli_version_main(int argc, char **argv)
{
    cli_client c;
    int rc = cli_client_init(&c, "version", cli_version_usage, &argc, argv);
    if (rc) return rc;
    bool client_only = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--client") == 0) {
            client_only = true;
        } else {
            cli_client_fini(&c);
            return cli_usage_error("version", cli_version_usage, "unexpected argument", argv[i]);
        }
    }
    http_response r;
    const char *server = NULL;
    rouse_arena a;
    rouse_arena_init(&a, 0);
    rc = CLI_EXIT_OK;
    if (!client_only) {
        if (cli_call(&c, "GET", "/v2", NULL, NULL, 0, &r) < 0) {
            rc = CLI_EXIT_FAIL;
        } else {
            json_value *v;
            if (r.status == 200 && json_parse(r.body.data, r.body.len, &a, &v, NULL) == 0)
                server = json_as_string(json_get(v, "version"));
            if (!server) {
                fprintf(stderr, "rouse version: %s answered %d without a version\n", c.url, r.status);
                rc = CLI_EXIT_FAIL;
            }
            http_response_fini(&r);
        }
    }
    if (c.json) {
        printf("{\"client\":\"%s\"", ROUSE_VERSION);
        if (server) {
            printf(",\"server\":");
            fflush(stdout);
            rouse_buf b;
            rouse_buf_init(&b);
            json_write_string(&b, server, strlen(server));
            printf("%s,\"server_url\":\"%s\"", b.data, c.url);
            rouse_buf_fini(&b);
        }
        printf("}\n");
    } else {
        printf("client: rouse %s\n", ROUSE_VERSION);
        if (server) printf("server: rouse %s at %s\n", server, c.url);
    }
    rouse_arena_fini(&a);
    cli_client_fini(&c);
    return rc;
}
