/*
 * A minimal blocking HTTP/1.1 client for the CLI and the integration tests:
 * one connection per request ("Connection: close"), bodies with
 * Content-Length, responses read to the end of the stream. Plain http://
 * only (rouse serves loopback or a trusted network).
 */
#ifndef ROUSE_CLI_HTTP_CLIENT_H
#define ROUSE_CLI_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "rouse/err.h"

typedef struct http_target {
    char host[256];
    int port;
} http_target;

/* Parses "http://HOST[:PORT][/]" (port 80 by default). ROUSE_EINVAL otherwise. */
int http_target_parse(const char *url, http_target *out, rouse_errbuf *eb);

typedef struct http_response {
    int status;
    char content_type[128];
    int64_t rouse_version;   /* X-Rouse-Version, or -1 */
    int64_t infer_json_len;  /* Inference-Header-Content-Length, or -1 */
    int retry_after;         /* Retry-After, or -1 */
    char rouse_start[16];    /* Rouse-Start (warm, template, zero), or "" */
    char server_timing[128]; /* Server-Timing, or "" */
    rouse_buf body;          /* NUL-terminated */
} http_response;

void http_response_init(http_response *r);
void http_response_fini(http_response *r);

/* Sends one request and reads the whole response. extra_headers is a
 * NULL-terminated list of "Name: value" lines, or NULL. A read timeout of
 * timeout_ms (0: none) bounds every wait. ROUSE_EIO for connection errors,
 * ROUSE_EFORMAT for a response that is not HTTP. */
int http_request(const http_target *t, const char *method, const char *path,
                 const char *const *extra_headers, const void *body, size_t body_len,
                 int timeout_ms, http_response *out, rouse_errbuf *eb);

#endif
