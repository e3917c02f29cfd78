/*
 * rouse serve: the daemon. One process, one epoll loop that owns all state:
 * the HTTP gateway (libmicrohttpd driven from our loop), the registry and
 * blob store, and the pools of instance processes that run the models.
 */
#ifndef ROUSE_SERVER_H
#define ROUSE_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "common/log.h"
#include "rouse/err.h"

typedef struct server server;

typedef struct server_opts {
    const char *bind;          /* IPv4 address to listen on, e.g. "127.0.0.1" */
    int port;                  /* 0 picks a free port (see server_port) */
    const char *data_dir;      /* created if missing */
    uint64_t max_body_bytes;   /* request bodies other than blob uploads */
    uint64_t max_blob_bytes;   /* POST /v1/blobs */
    int grace_ms;              /* SIGTERM: how long in-flight requests may take */
    const char *exe_path;      /* the binary the model processes run: rouse-worker, or rouse */
    rouse_log_level log_level; /* handed down to instances */
    int max_instances;         /* global cap on instances; 0: 2 x cores (at least 4) */
    int64_t blob_grace_ms;     /* an unreferenced blob stays this long after its upload */
    /* Observability (docs/architecture.md, "Metrics, logs and traces"). */
    bool metrics_off;          /* no counting for GET /metrics (it answers 404) */
    const char *access_log;    /* a file, "-" for stderr, or NULL: no access log */
    int access_log_format;     /* access_log_format (server/access_log.h) */
    const char *otlp_endpoint; /* OTLP/HTTP collector URL, or NULL: no span export */
    double trace_sample_ratio; /* new traces sampled for export, 0..1 */
    /* Metering (usage.c): records older than usage_retention_ms roll up
     * into hourly aggregates; buffered records are written at least every
     * usage_flush_ms (0: the defaults below). Prices in USD. */
    bool metering_off; /* no usage records, GET /v1/usage answers 503 */
    int64_t usage_retention_ms;
    int usage_flush_ms;
    double price_gb_s, price_per_million, price_instance_hour;
    /* The keep-alive policy's minute (0: 60000 ms); for tests that replay
     * a compressed trace only. */
    int64_t keepalive_minute_ms;
    /* Hosts a job's Callback-Url may name, comma-separated (names or
     * addresses, matched exactly, case-insensitively); NULL: loopback
     * only ("127.0.0.1,localhost,::1"). */
    const char *callback_allow;
    const char *weight_pages; /* auto, hugetlb, thp or 4k (rouse/weight_pages.h); NULL: auto */
    /* Hostile clients (http_gate.c). max_connections: connections held at
     * once (0: below the descriptor limit, which serve raises as far as it
     * may); max_conns_per_client: from one address (0: the default, -1: no
     * limit); idle_timeout_ms: a kept-alive connection with no request in
     * progress is closed after this (0: the default). */
    int max_connections;
    int max_conns_per_client;
    int idle_timeout_ms;
    /* TLS (tls.h): PEM certificate chain and private key, both or neither;
     * SIGHUP reads them again. */
    const char *tls_cert;
    const char *tls_key;
    /* Access control (server/auth.h, docs/security.md): API keys, tenants
     * and roles. Without it serve binds loopback only. */
    bool auth;
    const char *auth_file;               /* static keys (keys.yaml), or NULL */
    const char *auth_bootstrap_key_file; /* the bootstrap admin key's secret, or NULL */
    const char *metrics_bind;            /* ADDR:PORT serving GET /metrics without a key, or NULL */
    bool console_off; /* no web console at / (api_console.c): those paths answer 404 */
    const char *isolation;    /* sandbox or process (server/isolation.h); NULL: auto */
    /* Several nodes as one platform (docs/architecture.md, "Several
     * nodes"). state_url: postgres://... holds the registry, usage and jobs
     * (NULL: the embedded SQLite of data_dir alone); bus_url: nats://...
     * (JetStream: job queues, registry events, membership); node_name: this
     * node's name (NULL: the host name); advertise: the base URL other nodes
     * reach this one at (NULL: http(s)://bind:port); cluster_key_file: the
     * shared secret of calls between nodes (cluster_key.h). blobs_url:
     * s3://bucket[/prefix], a bucket behind the local blob store, with
     * s3_endpoint (NULL: AWS's) and s3_region (NULL: $AWS_REGION). */
    const char *state_url;
    const char *bus_url;
    const char *node_name;
    const char *advertise;
    const char *cluster_key_file;
    const char *blobs_url;
    const char *s3_endpoint;
    const char *s3_region;
    /* Other nodes to fetch blobs from, comma-separated base URLs (until
     * membership names them); needs cluster_key_file. NULL: none. */
    const char *blob_peers;
} server_opts;

#define ROUSE_MAX_CONNS_PER_CLIENT_DEFAULT 256
#define ROUSE_IDLE_TIMEOUT_MS_DEFAULT 60000

/* AWS Lambda's public x86 list prices in us-east-1: USD per GB-second and
 * per million requests. */
#define ROUSE_PRICE_GB_S_DEFAULT 0.0000166667
#define ROUSE_PRICE_PER_MILLION_DEFAULT 0.20
/* AWS EC2's public on-demand price of a t3.medium (2 vCPU, 4 GiB) in
 * us-east-1, USD per hour: the always-on instance of the comparison. */
#define ROUSE_PRICE_INSTANCE_HOUR_DEFAULT 0.0416
#define ROUSE_USAGE_RETENTION_MS_DEFAULT (7ll * 86400000ll)
#define ROUSE_USAGE_FLUSH_MS_DEFAULT 200

/* Opens the store, binds the socket and starts the HTTP daemon (not yet
 * serving: that is server_run). Blocks SIGTERM, SIGINT and SIGCHLD in the
 * calling thread: they are read through a signalfd by the loop.
 * Owned: free with server_destroy. */
int server_create(const server_opts *o, server **out, rouse_errbuf *eb);

/* The bound TCP port (useful with port 0). */
int server_port(const server *s);

/* Serves until SIGTERM or SIGINT, then stops accepting, finishes in-flight
 * requests (bounded by grace_ms) and stops every instance. 0 on a clean stop. */
int server_run(server *s, rouse_errbuf *eb);

void server_destroy(server *s);

#endif
