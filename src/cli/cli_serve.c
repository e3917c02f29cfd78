/*
 * `rouse serve`: runs the daemon in the foreground. The first line on
 * stdout is "listening on ADDR:PORT" (with --port 0, the port the kernel
 * chose), flushed, so scripts and tests can wait for it.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rouse/weight_pages.h"
#include "cli/cli.h"
#include "common/log.h"
#include "server/access_log.h"
#include "server/server.h"

void cli_serve_usage(FILE *out)
{
    fprintf(
        out,
        "usage: rouse serve [--port N] [--bind ADDR] [--data DIR] [--max-body-bytes N]\n"
        "                   [--max-blob-bytes N] [--grace-ms MS] [--max-instances N]\n"
        "                   [--blob-grace-ms MS] [--callback-allow HOSTS] [--log-level LEVEL]\n"
        "                   [--metrics on|off] [--console on|off]\n"
        "                   [--access-log FILE|-] [--log-format text|json]\n"
        "                   [--otlp-endpoint URL] [--trace-sample-ratio R]\n"
        "                   [--metering on|off] [--usage-retention DURATION]\n"
        "                   [--usage-flush-ms MS]\n"
        "                   [--price-gb-s USD] [--price-per-million USD]\n"
        "                   [--price-instance-hour USD]\n"
        "                   [--weight-pages auto|hugetlb|thp|4k]\n"
        "                   [--auth] [--auth-file FILE] [--auth-bootstrap-key-file FILE]\n"
        "                   [--metrics-bind ADDR:PORT]\n"
        "                   [--isolation sandbox|process]\n"
        "                   [--state postgres://...] [--bus nats://...] [--node-name NAME]\n"
        "                   [--advertise URL] [--cluster-key-file FILE]\n"
        "                   [--blobs s3://BUCKET[/PREFIX]] [--s3-endpoint URL]\n"
        "                   [--s3-region REGION] [--blob-peers URL[,URL...]]\n\n"
        "Runs the rouse daemon: the HTTP API (Open Inference Protocol v2 under /v2,\n"
        "management under /v1) and the instance processes that run the models.\n\n"
        "  --port N            TCP port (default 8080; 0 picks a free one)\n"
        "  --bind ADDR         IPv4 address to listen on (default 127.0.0.1); without\n"
        "                      --auth only a loopback address is accepted\n"
        "  --data DIR          state: registry and blobs (default ./rouse-data)\n"
        "  --max-body-bytes N  largest request body, blob uploads aside (default 64 MiB)\n"
        "  --max-blob-bytes N  largest blob upload (default 8 GiB)\n"
        "  --grace-ms MS       on SIGTERM, how long in-flight requests may finish (default 10000)\n"
        "  --blob-grace-ms MS  how long a blob nothing refers to is kept after its upload\n"
        "                      (default 600000); then it and its compiled plan are removed\n"
        "  --max-instances N   instances of all functions together (default 2 x cores, at least "
        "4)\n"
        "  --callback-allow HOSTS  hosts a job's Callback-Url may name, comma-separated\n"
        "                      (default 127.0.0.1,localhost,::1: loopback only)\n"
        "  --log-level LEVEL   error, warn, info or debug (default info)\n"
        "  --keepalive-minute-ms MS  for tests only: the learned keep-alive policy's\n"
        "                      minute (default 60000), to replay a compressed trace\n"
        "  --weight-pages KIND pages that templates read model weights from: hugetlb\n"
        "                      (reserved huge pages), thp (transparent huge pages), 4k\n"
        "                      (the plan file's mapping); auto (default) takes hugetlb\n"
        "                      when pages are reserved, else 4k (thp for text\n"
        "                      generators); a kind named that the machine cannot give\n"
        "                      fails\n"
        "  --isolation TIER    how instances are isolated: sandbox (namespaces, an empty\n"
        "                      root, the tenant's uid, seccomp, memory/CPU/task limits\n"
        "                      per instance) or process; default: sandbox where the\n"
        "                      machine allows it, else process, with the reasons logged\n"
        "                      and in GET /v2; sandbox named but impossible fails\n"
        "  --metrics on|off    count invocations for GET /metrics (Prometheus; default on)\n"
        "  --console on|off    the web console at / on the same port (default on)\n"
        "  --access-log FILE   one line per request, appended to FILE (reopened on\n"
        "                      SIGHUP) or to stderr with '-' (default: no access log)\n"
        "  --log-format FMT    the access log as text or json (default text; alone, it\n"
        "                      turns the access log on, to stderr)\n"
        "  --otlp-endpoint URL export spans as OTLP/HTTP JSON to this collector (a bare\n"
        "                      http://host:port gets /v1/traces)\n"
        "  --trace-sample-ratio R  new traces exported, 0 to 1 (default 1); a request's\n"
        "                      traceparent decides for its own trace\n\n"
        "TLS and hostile clients:\n"
        "  --tls-cert FILE     serve HTTPS with this PEM certificate chain (with --tls-key;\n"
        "                      both are read again on SIGHUP)\n"
        "  --tls-key FILE      the certificate's PEM private key (unencrypted)\n"
        "  --max-connections N connections held at once (default: the descriptor limit,\n"
        "                      raised as far as allowed, less 1024); when full, the\n"
        "                      idlest is closed, or the new one answered 503\n"
        "  --max-connections-per-client N  from one address (an IPv6 /64; default 256,\n"
        "                      0: no limit, e.g. behind a reverse proxy)\n"
        "  --idle-timeout-ms MS  a kept-alive connection with no request is closed after\n"
        "                      this (default 60000); a first request head must arrive\n"
        "                      within 10 s\n\n"
        "Metering (GET /v1/usage, rouse usage):\n"
        "  --metering on|off   record every invocation's usage (default on)\n"
        "  --usage-retention DURATION  usage records older than this roll up into hourly\n"
        "                      aggregates (default 7d; units ms, s, m, h, d)\n"
        "  --usage-flush-ms MS records are written at least this often (default 200):\n"
        "                      SIGKILL loses at most this interval's records\n"
        "  --price-gb-s USD    price of a GB-second (default 0.0000166667: AWS Lambda's\n"
        "                      public x86 price in us-east-1)\n"
        "  --price-per-million USD  price of a million requests (default 0.20: AWS\n"
        "                      Lambda's public price in us-east-1)\n"
        "  --price-instance-hour USD  an always-on instance's hour, for the comparison\n"
        "                      (default 0.0416: AWS EC2 t3.medium on demand, us-east-1)\n\n"
        "Access control (docs/security.md):\n"
        "  --auth              require an API key (Authorization: Bearer KEY) on every\n"
        "                      request but health; functions, blobs and jobs belong to\n"
        "                      the key's tenant; roles admin, deploy, invoke. At the\n"
        "                      first start a bootstrap admin key is printed on stderr\n"
        "                      and written to DIR/bootstrap.key (mode 0600)\n"
        "  --auth-bootstrap-key-file FILE  the bootstrap admin key's secret instead\n"
        "                      (its first line; stored as its hash)\n"
        "  --auth-file FILE    static keys from YAML: a top-level 'keys:' list of\n"
        "                      {key: SECRET, tenant: T, role: R}\n"
        "  --metrics-bind ADDR:PORT  also serve GET /metrics, without a key, on this\n"
        "                      address only (otherwise /metrics needs an admin key)\n\n"
        "Several nodes as one platform (docs/architecture.md, \"Several nodes\"):\n"
        "  --state URL         postgres://...: the registry, usage records and jobs live\n"
        "                      in PostgreSQL, shared by every node (default: the SQLite\n"
        "                      database in --data alone)\n"
        "  --bus URL           nats://...: NATS JetStream carries job queues, registry\n"
        "                      changes and node membership\n"
        "  --node-name NAME    this node's name (default: the host name)\n"
        "  --advertise URL     where other nodes reach this one (default:\n"
        "                      http(s)://BIND:PORT)\n"
        "  --cluster-key-file FILE  the secret that calls between nodes carry (its first\n"
        "                      line, at least 32 characters); the same on every node\n"
        "  --blobs s3://BUCKET[/PREFIX]  keep blobs in an S3-compatible bucket as well;\n"
        "                      a node fetches what it lacks from there or from a peer\n"
        "  --s3-endpoint URL   the bucket's endpoint (default: AWS's for the region)\n"
        "  --s3-region REGION  the bucket's region (default: $AWS_REGION, else us-east-1);\n"
        "                      credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY\n"
        "  --blob-peers URL,...  other nodes (base URLs) to fetch blobs this one lacks\n"
        "                      from, before the bucket; needs --cluster-key-file\n\n"
        "Prints \"listening on ADDR:PORT\" once it accepts connections. SIGTERM or\n"
        "SIGINT stop it gracefully (exit status 0); SIGHUP reopens the access log and\n"
        "reloads the TLS certificate.\n");
}

static int usage_error(const char *msg, const char *arg)
{
    fprintf(stderr, "rouse serve: %s%s%s\n\n", msg, arg ? ": " : "", arg ? arg : "");
    cli_serve_usage(stderr);
    return CLI_EXIT_USAGE;
}

static bool parse_u64(const char *s, unsigned long long lo, unsigned long long hi,
                      unsigned long long *out)
{
    if (!s || !*s || *s == '-') return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

/* A price in USD: a finite number from 0 to 1e6. */
static bool parse_price(const char *s, double *out)
{
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (errno || *end || !(d >= 0 && d <= 1e6)) return false;
    *out = d;
    return true;
}

/* A duration: digits and a unit (ms, s, m, h, d), at most 100 years. */
static bool parse_duration_ms(const char *s, int64_t *out)
{
    if (!s) return false;
    size_t digits = strspn(s, "0123456789");
    if (digits == 0 || digits > 12) return false;
    long long n = strtoll(s, NULL, 10);
    const char *u = s + digits;
    long long unit = strcmp(u, "ms") == 0  ? 1
                     : strcmp(u, "s") == 0 ? 1000
                     : strcmp(u, "m") == 0 ? 60000
                     : strcmp(u, "h") == 0 ? 3600000
                     : strcmp(u, "d") == 0 ? 86400000
                                           : 0;
    if (unit == 0 || n < 1 || n > 36500LL * 86400000LL / unit) return false;
    *out = (int64_t)(n * unit);
    return true;
}

int cli_serve_main(int argc, char **argv)
{
    server_opts o = {.bind = "127.0.0.1",
                     .port = 8080,
                     .data_dir = "./rouse-data",
                     .max_body_bytes = 64ull << 20,
                     .max_blob_bytes = 8ull << 30,
                     .grace_ms = 10000,
                     .blob_grace_ms = 600000,
                     .log_level = ROUSE_LOG_INFO,
                     .trace_sample_ratio = 1.0,
                     .usage_retention_ms = ROUSE_USAGE_RETENTION_MS_DEFAULT,
                     .usage_flush_ms = ROUSE_USAGE_FLUSH_MS_DEFAULT,
                     .price_gb_s = ROUSE_PRICE_GB_S_DEFAULT,
                     .price_per_million = ROUSE_PRICE_PER_MILLION_DEFAULT,
                     .price_instance_hour = ROUSE_PRICE_INSTANCE_HOUR_DEFAULT};
    bool format_given = false;
    /* Every option but --auth takes a value: step over pairs. */
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        unsigned long long n;
        if (strcmp(a, "--auth") == 0) {
            o.auth = true;
            i--; /* the one option without a value */
        } else if (strcmp(a, "--auth-file") == 0) {
            if (!v || !*v) return usage_error("--auth-file needs a file", NULL);
            o.auth_file = v;
        } else if (strcmp(a, "--auth-bootstrap-key-file") == 0) {
            if (!v || !*v) return usage_error("--auth-bootstrap-key-file needs a file", NULL);
            o.auth_bootstrap_key_file = v;
        } else if (strcmp(a, "--metrics-bind") == 0) {
            if (!v || !strchr(v, ':')) return usage_error("--metrics-bind needs ADDR:PORT", v);
            o.metrics_bind = v;
        } else if (strcmp(a, "--port") == 0) {
            if (!parse_u64(v, 0, 65535, &n)) return usage_error("--port needs 0..65535", v);
            o.port = (int)n;
        } else if (strcmp(a, "--bind") == 0) {
            if (!v) return usage_error("--bind needs an address", NULL);
            o.bind = v;
        } else if (strcmp(a, "--data") == 0) {
            if (!v || !*v) return usage_error("--data needs a directory", NULL);
            o.data_dir = v;
        } else if (strcmp(a, "--max-body-bytes") == 0) {
            if (!parse_u64(v, 1, 1ull << 40, &n))
                return usage_error("--max-body-bytes needs a positive byte count", v);
            o.max_body_bytes = n;
        } else if (strcmp(a, "--max-blob-bytes") == 0) {
            if (!parse_u64(v, 1, 1ull << 50, &n))
                return usage_error("--max-blob-bytes needs a positive byte count", v);
            o.max_blob_bytes = n;
        } else if (strcmp(a, "--grace-ms") == 0) {
            if (!parse_u64(v, 0, 3600000, &n)) return usage_error("--grace-ms needs 0..3600000", v);
            o.grace_ms = (int)n;
        } else if (strcmp(a, "--blob-grace-ms") == 0) {
            if (!parse_u64(v, 0, 7 * 86400000ull, &n))
                return usage_error("--blob-grace-ms needs 0..604800000", v);
            o.blob_grace_ms = (int64_t)n;
        } else if (strcmp(a, "--keepalive-minute-ms") == 0) {
            if (!parse_u64(v, 1, 60000, &n))
                return usage_error("--keepalive-minute-ms needs 1..60000", v);
            o.keepalive_minute_ms = (int64_t)n;
        } else if (strcmp(a, "--weight-pages") == 0) {
            rouse_weight_pages k;
            if (rouse_weight_pages_parse(v, &k) < 0)
                return usage_error("--weight-pages needs auto, hugetlb, thp or 4k", v);
            o.weight_pages = v;
        } else if (strcmp(a, "--state") == 0) {
            if (!v || (strncmp(v, "postgres://", 11) != 0 && strncmp(v, "postgresql://", 13) != 0))
                return usage_error("--state needs a postgres:// URL", v);
            o.state_url = v;
        } else if (strcmp(a, "--bus") == 0) {
            if (!v || (strncmp(v, "nats://", 7) != 0 && strncmp(v, "tls://", 6) != 0))
                return usage_error("--bus needs a nats:// URL", v);
            o.bus_url = v;
        } else if (strcmp(a, "--node-name") == 0) {
            if (!v || !*v || strlen(v) > 63 || v[strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789-_.")])
                return usage_error("--node-name needs a name of at most 63 characters from a-z 0-9 - _ .", v);
            o.node_name = v;
        } else if (strcmp(a, "--advertise") == 0) {
            if (!v || (strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0))
                return usage_error("--advertise needs an http:// or https:// URL", v);
            o.advertise = v;
        } else if (strcmp(a, "--cluster-key-file") == 0) {
            if (!v || !*v) return usage_error("--cluster-key-file needs a file", NULL);
            o.cluster_key_file = v;
        } else if (strcmp(a, "--blobs") == 0) {
            if (!v || strncmp(v, "s3://", 5) != 0 || !v[5] || v[5] == '/')
                return usage_error("--blobs needs s3://BUCKET[/PREFIX]", v);
            o.blobs_url = v;
        } else if (strcmp(a, "--s3-endpoint") == 0) {
            if (!v || (strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0))
                return usage_error("--s3-endpoint needs an http:// or https:// URL", v);
            o.s3_endpoint = v;
        } else if (strcmp(a, "--blob-peers") == 0) {
            if (!v || (strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0))
                return usage_error("--blob-peers needs http(s):// base URLs, comma-separated", v);
            o.blob_peers = v;
        } else if (strcmp(a, "--s3-region") == 0) {
            if (!v || !*v) return usage_error("--s3-region needs a region", NULL);
            o.s3_region = v;
        } else if (strcmp(a, "--isolation") == 0) {
            if (!v || (strcmp(v, "sandbox") != 0 && strcmp(v, "process") != 0))
                return usage_error("--isolation needs sandbox or process", v);
            o.isolation = v;
        } else if (strcmp(a, "--max-instances") == 0) {
            if (!parse_u64(v, 1, 65536, &n))
                return usage_error("--max-instances needs 1..65536", v);
            o.max_instances = (int)n;
        } else if (strcmp(a, "--metering") == 0) {
            if (!v || (strcmp(v, "on") != 0 && strcmp(v, "off") != 0))
                return usage_error("--metering needs on or off", v);
            o.metering_off = strcmp(v, "off") == 0;
        } else if (strcmp(a, "--console") == 0) {
            if (!v || (strcmp(v, "on") != 0 && strcmp(v, "off") != 0))
                return usage_error("--console needs on or off", v);
            o.console_off = strcmp(v, "off") == 0;
        } else if (strcmp(a, "--metrics") == 0) {
            if (!v || (strcmp(v, "on") != 0 && strcmp(v, "off") != 0))
                return usage_error("--metrics needs on or off", v);
            o.metrics_off = strcmp(v, "off") == 0;
        } else if (strcmp(a, "--access-log") == 0) {
            if (!v || !*v) return usage_error("--access-log needs a file (or - for stderr)", NULL);
            o.access_log = v;
        } else if (strcmp(a, "--log-format") == 0) {
            if (!v || (strcmp(v, "text") != 0 && strcmp(v, "json") != 0))
                return usage_error("--log-format needs text or json", v);
            o.access_log_format = strcmp(v, "json") == 0 ? ACCESS_LOG_JSON : ACCESS_LOG_TEXT;
            format_given = true;
        } else if (strcmp(a, "--otlp-endpoint") == 0) {
            if (!v || !*v) return usage_error("--otlp-endpoint needs a URL", NULL);
            o.otlp_endpoint = v;
        } else if (strcmp(a, "--trace-sample-ratio") == 0) {
            char *end;
            errno = 0;
            double r = v ? strtod(v, &end) : -1;
            if (!v || !*v || errno || *end || !(r >= 0.0 && r <= 1.0))
                return usage_error("--trace-sample-ratio needs a number from 0 to 1", v);
            o.trace_sample_ratio = r;
        } else if (strcmp(a, "--usage-retention") == 0) {
            if (!parse_duration_ms(v, &o.usage_retention_ms))
                return usage_error("--usage-retention needs a duration like 7d, 24h, 90s", v);
        } else if (strcmp(a, "--usage-flush-ms") == 0) {
            if (!parse_u64(v, 1, 60000, &n))
                return usage_error("--usage-flush-ms needs 1..60000", v);
            o.usage_flush_ms = (int)n;
        } else if (strcmp(a, "--price-gb-s") == 0) {
            if (!parse_price(v, &o.price_gb_s))
                return usage_error("--price-gb-s needs a price in USD from 0 to 1000000", v);
        } else if (strcmp(a, "--price-per-million") == 0) {
            if (!parse_price(v, &o.price_per_million))
                return usage_error("--price-per-million needs a price in USD from 0 to 1000000", v);
        } else if (strcmp(a, "--price-instance-hour") == 0) {
            if (!parse_price(v, &o.price_instance_hour))
                return usage_error("--price-instance-hour needs a price in USD from 0 to 1000000",
                                   v);
        } else if (strcmp(a, "--callback-allow") == 0) {
            if (!v || !*v) return usage_error("--callback-allow needs a list of hosts", NULL);
            o.callback_allow = v;
        } else if (strcmp(a, "--tls-cert") == 0) {
            if (!v || !*v) return usage_error("--tls-cert needs a PEM file", NULL);
            o.tls_cert = v;
        } else if (strcmp(a, "--tls-key") == 0) {
            if (!v || !*v) return usage_error("--tls-key needs a PEM file", NULL);
            o.tls_key = v;
        } else if (strcmp(a, "--max-connections") == 0) {
            if (!parse_u64(v, 1, 1u << 20, &n))
                return usage_error("--max-connections needs 1..1048576", v);
            o.max_connections = (int)n;
        } else if (strcmp(a, "--max-connections-per-client") == 0) {
            if (!parse_u64(v, 0, 1u << 20, &n))
                return usage_error("--max-connections-per-client needs 0..1048576", v);
            o.max_conns_per_client = n == 0 ? -1 : (int)n;
        } else if (strcmp(a, "--idle-timeout-ms") == 0) {
            if (!parse_u64(v, 1, 86400000, &n))
                return usage_error("--idle-timeout-ms needs 1..86400000", v);
            o.idle_timeout_ms = (int)n;
        } else if (strcmp(a, "--log-level") == 0) {
            rouse_log_level lvl;
            if (!v || rouse_log_level_parse(v, &lvl) < 0)
                return usage_error("--log-level needs error, warn, info or debug", v);
            o.log_level = lvl;
        } else {
            return usage_error("unknown option", a);
        }
    }
    if (format_given && !o.access_log) o.access_log = "-";
    if (!o.tls_cert != !o.tls_key)
        return usage_error("--tls-cert and --tls-key go together", o.tls_cert ? o.tls_cert : o.tls_key);
    if ((o.auth_file || o.auth_bootstrap_key_file) && !o.auth)
        return usage_error("--auth-file and --auth-bootstrap-key-file need --auth", NULL);
    rouse_log_set_level(o.log_level);

    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0) {
        fprintf(stderr, "rouse serve: cannot find its own binary: %s\n", strerror(errno));
        return CLI_EXIT_FAIL;
    }
    exe[n] = '\0';
    /* The model processes run from rouse-worker when it sits beside this
     * binary (fewer libraries for every fork to copy), else from this one. */
    char worker[PATH_MAX + 8];
    snprintf(worker, sizeof(worker), "%s-worker", exe);
    o.exe_path = access(worker, X_OK) == 0 ? worker : exe;
    signal(SIGPIPE, SIG_IGN);

    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    server *s;
    if (server_create(&o, &s, &eb) < 0) {
        fprintf(stderr, "rouse serve: %s\n", eb.msg);
        return CLI_EXIT_FAIL;
    }
    printf("listening on %s:%d\n", o.bind, server_port(s));
    fflush(stdout);
    LOG_INFO("serve", "listening on %s:%d, data in %s", o.bind, server_port(s), o.data_dir);
    int rc = server_run(s, &eb);
    server_destroy(s);
    if (rc < 0) {
        fprintf(stderr, "rouse serve: %s\n", eb.msg);
        return CLI_EXIT_FAIL;
    }
    return CLI_EXIT_OK;
}
