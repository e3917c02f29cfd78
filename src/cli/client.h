/*
 * What every client subcommand shares: the options that choose and reach a
 * server (--server URL, else $ROUSE_SERVER, else http://127.0.0.1:8080;
 * --key KEY (or --api-key), else $ROUSE_KEY (or $ROUSE_API_KEY), sent as a
 * bearer token; --cacert FILE
 * for https), --json and -q, one connection kept open for all of a
 * command's requests, and the error conventions (docs/rouse.1):
 *   the server cannot be reached  -> one line naming the URL, exit 1
 *   a usage error                 -> the message and the usage on stderr, exit 2
 *   the server answers an error   -> its message on stderr, exit 1
 */
#ifndef ROUSE_CLI_CLIENT_H
#define ROUSE_CLI_CLIENT_H

#include <stdbool.h>
#include <stdio.h>

#include "cli/http_client.h"

#define CLI_DEFAULT_SERVER "http://127.0.0.1:8080"
/* A request's whole exchange, from connect to the last byte of the answer:
 * long, since a deploy validates the model and an invoke may start an
 * instance from zero. */
#define CLI_REQUEST_TIMEOUT_MS 600000

/* The options cli_client_init takes out of argv, for help texts. */
#define CLI_CLIENT_OPTIONS_HELP                                                                    \
    "  --server URL       the server (default: $ROUSE_SERVER, else " CLI_DEFAULT_SERVER ")\n"     \
    "  --key KEY          API key, sent as Authorization: Bearer (default: $ROUSE_KEY;\n"       \
    "                     --api-key and $ROUSE_API_KEY are the same)\n"                          \
    "  --cacert FILE      CA certificates (PEM) to verify an https server with\n"                \
    "  --json             print the server's JSON as it is (a stable schema)\n"                  \
    "  -q, --quiet        print nothing but errors\n"

typedef struct cli_client {
    const char *cmd; /* the subcommand, for messages */
    void (*usage)(FILE *out);
    char url[300]; /* scheme://host:port */
    http_target target;
    http_client *http;
    const char *api_key, *cacert; /* as given (for clients of their own: bench) */
    bool json;
    bool quiet;
} cli_client;

/* Takes the shared options out of argv (compacting it; *argc shrinks) and
 * connects lazily. 0, or an exit status (usage error) to return. */
int cli_client_init(cli_client *c, const char *cmd, void (*usage)(FILE *out), int *argc,
                    char **argv);
void cli_client_fini(cli_client *c);

/* Prints "rouse CMD: MSG[: ARG]" and the usage on stderr; returns 2. */
int cli_usage_error(const char *cmd, void (*usage)(FILE *out), const char *msg, const char *arg);

/* One request (r is initialized here). 0 with any HTTP status; on a
 * transport failure prints the one line and returns -1 (r is released). */
int cli_call(cli_client *c, const char *method, const char *path, const char *const *headers,
             const void *body, size_t len, http_response *r);

/* The same with a full call (streaming, progress). */
int cli_call_full(cli_client *c, const http_call *call, http_response *r);

/* The server's error sentence of a failed response ({"error": ...}, else
 * the body's first line). */
void cli_error_message(const http_response *r, char *out, size_t cap);

/* Prints the server's error message of a failed response, releases r and
 * returns 1. */
int cli_fail_response(cli_client *c, http_response *r);

/* Appends s to b percent-encoded for a path segment or a query value. */
int cli_url_escape(rouse_buf *b, const char *s);

#endif
