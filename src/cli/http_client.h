/*
 * The HTTP client of the CLI and the integration tests, over libcurl:
 * http:// and https:// (certificates verified, against the system's store or
 * a given CA bundle), proxies from the environment (http_proxy, https_proxy,
 * no_proxy), keep-alive across the requests of one http_client, timeouts,
 * redirects followed for GET and HEAD only (a mutating call that is
 * redirected fails rather than being repeated somewhere else), an API key
 * sent as a bearer token, upload progress and streamed response bodies
 * (Server-Sent Events).
 *
 * http_request() is the one-shot form: a client for one request.
 */
#ifndef ROUSE_CLI_HTTP_CLIENT_H
#define ROUSE_CLI_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "rouse/err.h"

typedef struct http_target {
    char host[256]; /* a name or an address (an IPv6 one without brackets) */
    int port;
    bool https;
} http_target;

/* Parses "http[s]://HOST[:PORT][/]" (port 80 or 443 by default; a bare
 * "HOST[:PORT]" is http). ROUSE_EINVAL with the reason otherwise. */
int http_target_parse(const char *url, http_target *out, rouse_errbuf *eb);

/* Writes "scheme://host:port" into out (cap bytes). */
void http_target_url(const http_target *t, char *out, size_t cap);

typedef struct http_response {
    int status;
    char content_type[128];
    int64_t rouse_version;   /* X-Rouse-Version, or -1 */
    int64_t infer_json_len;  /* Inference-Header-Content-Length, or -1 */
    int retry_after;         /* Retry-After, or -1 */
    char rouse_start[16];    /* Rouse-Start (warm, template, zero), or "" */
    char server_timing[128]; /* Server-Timing, or "" */
    char location[256];      /* Location of a redirect, or "" */
    char rouse_node[64];     /* Rouse-Node: the node that answered, or "" */
    bool unreachable;        /* the request failed before a connection was made */
    rouse_buf body;          /* NUL-terminated (empty when streamed) */
} http_response;

void http_response_init(http_response *r);
void http_response_fini(http_response *r);

/* Options of a client; every field may be zero. */
typedef struct http_options {
    const char *api_key;    /* sent as "Authorization: Bearer KEY" */
    const char *cacert;     /* a CA bundle (PEM) for https instead of the system's */
    int connect_timeout_ms; /* 0: 10 s */
} http_options;

/* A client of one server: reuses its connection across requests. */
typedef struct http_client http_client;

/* owned: free with http_client_destroy. o may be NULL. */
int http_client_create(const http_target *t, const http_options *o, http_client **out,
                       rouse_errbuf *eb);
void http_client_destroy(http_client *c);

/* One request, in full. */
typedef struct http_call {
    const char *method; /* GET, HEAD, POST, PUT, DELETE, ... */
    const char *path;   /* "/v1/functions?x=y", already escaped */
    const char *const *headers; /* NULL-terminated "Name: value" lines, or NULL */
    const void *body;
    size_t body_len;
    int timeout_ms; /* the whole exchange; 0: none */
    /* When set, the response body goes here chunk by chunk (not into
     * out->body); returning nonzero ends the transfer, which is then not
     * an error. */
    int (*on_data)(void *user, const char *data, size_t len);
    /* When set, called as the request body goes out. */
    void (*on_progress)(void *user, uint64_t sent, uint64_t total);
    void *user;
} http_call;

/* Sends the call and fills out (initialized by the caller). ROUSE_EIO for a
 * transport failure (out->unreachable when no connection was made),
 * ROUSE_ETIMEOUT when timeout_ms passed, ROUSE_ESTATE for a redirect of a
 * mutating call; eb names the URL and libcurl's reason. A response with any
 * HTTP status is success here. */
int http_client_call(http_client *c, const http_call *call, http_response *out, rouse_errbuf *eb);

/* http_client_call without streaming or progress. */
int http_client_request(http_client *c, const char *method, const char *path,
                        const char *const *extra_headers, const void *body, size_t body_len,
                        int timeout_ms, http_response *out, rouse_errbuf *eb);

/* One request on a client of its own. extra_headers is a NULL-terminated
 * list of "Name: value" lines, or NULL; timeout_ms (0: none) bounds the
 * whole exchange. */
int http_request(const http_target *t, const char *method, const char *path,
                 const char *const *extra_headers, const void *body, size_t body_len,
                 int timeout_ms, http_response *out, rouse_errbuf *eb);

#endif
