/*
 * `rouse usage`: what the recorded invocations cost, as a table (GET
 * /v1/usage; --json prints the server's JSON as it is). With
 * --compare-always-on, the serverless cost next to what always-on
 * instances would have cost for the same traffic, and the ratio.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/http_client.h"
#include "common/arena.h"
#include "common/json.h"

#define DEFAULT_SERVER "http://127.0.0.1:8080"
#define USAGE_TIMEOUT_MS 600000

void cli_usage_usage(FILE *out)
{
    fprintf(out,
            "usage: rouse usage [NAME] [--version N] [--since T] [--until T]\n"
            "                   [--by function|version|node|minute|hour|day]\n"
            "                   [--compare-always-on] [--price-instance-hour USD]\n"
            "                   [--server URL] [--json]\n\n"
            "Prints what the invocations recorded by rouse serve cost: invocations,\n"
            "errors, cold starts by kind, p50/p99 latency, billed ms, GB-seconds and\n"
            "cost, for every function (or NAME), grouped by --by (default function;\n"
            "node: the node that recorded each call, with serve --state postgres://).\n"
            "  --since T, --until T   RFC 3339 in UTC (2026-12-06T23:00:00Z), a date,\n"
            "                         Unix seconds, now, or a time ago (90s, 30m, 24h, 7d);\n"
            "                         default: everything until now (--by minute: 24 h)\n"
            "  --compare-always-on    also what always-on instances would have cost: each\n"
            "                         hour from a function's first call counts whole, with\n"
            "                         max(1, the hour's peak concurrency) instances\n"
            "  --price-instance-hour USD  an always-on instance's hour (default: the\n"
            "                         server's --price-instance-hour)\n"
            "Prices are the server's (rouse serve --price-gb-s, --price-per-million).\n");
}

static int usage_err(const char *msg, const char *arg)
{
    fprintf(stderr, "rouse usage: %s%s%s\n\n", msg, arg ? ": " : "", arg ? arg : "");
    cli_usage_usage(stderr);
    return CLI_EXIT_USAGE;
}

/* Appends &key=value, the value percent-encoded. */
static void add_param(rouse_buf *b, const char *key, const char *v)
{
    rouse_buf_appendf(b, "%c%s=", strchr(b->data, '?') ? '&' : '?', key);
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-._~", *p))
            rouse_buf_appendf(b, "%c", *p);
        else
            rouse_buf_appendf(b, "%%%02X", *p);
    }
}

static int64_t geti(const json_value *v, const char *key)
{
    int64_t n = 0;
    json_as_int64(json_get(v, key), &n);
    return n;
}

static double getd(const json_value *v, const char *key)
{
    double d = 0;
    json_as_double(json_get(v, key), &d);
    return d;
}

static void print_row(const char *label, const json_value *g)
{
    const json_value *cold = json_get(g, "cold_starts"), *lat = json_get(g, "latency_us");
    char cs[48];
    snprintf(cs, sizeof(cs), "%" PRId64 "/%" PRId64, geti(cold, "template"), geti(cold, "zero"));
    printf("%-22s %11" PRId64 " %7" PRId64 " %9" PRId64 " %10s %9.3f %9.3f %11" PRId64
           " %12.4f %14.8f\n",
           label, geti(g, "invocations"), geti(g, "errors"), geti(g, "rejected"), cs,
           (double)geti(lat, "p50") / 1000.0, (double)geti(lat, "p99") / 1000.0,
           geti(g, "billed_ms"), getd(g, "gb_s"), getd(g, "cost_usd"));
}

static void print_table(const json_value *root)
{
    const char *by = json_as_string(json_get(root, "group_by"));
    if (!by) by = "function";
    const json_value *prices = json_get(root, "prices");
    printf("usage from %s to %s; prices: %.10g USD per GB-s, %.4g USD per million requests\n\n",
           json_as_string(json_get(root, "since")) ? json_as_string(json_get(root, "since")) : "?",
           json_as_string(json_get(root, "until")) ? json_as_string(json_get(root, "until")) : "?",
           getd(prices, "usd_per_gb_s"), getd(prices, "usd_per_million_requests"));
    printf("%-22s %11s %7s %9s %10s %9s %9s %11s %12s %14s\n",
           strcmp(by, "function") == 0  ? "FUNCTION"
           : strcmp(by, "version") == 0 ? "FUNCTION@VERSION"
           : strcmp(by, "node") == 0    ? "NODE"
                                        : "START (UTC)",
           "INVOCATIONS", "ERRORS", "REJECTED", "COLD T/Z", "P50 ms", "P99 ms", "BILLED ms",
           "GB-s", "COST USD");
    const json_value *groups = json_get(root, "groups");
    for (size_t i = 0; groups && groups->type == JSON_ARRAY && i < groups->u.arr.n; i++) {
        const json_value *g = groups->u.arr.items[i];
        char label[96];
        const char *fn = json_as_string(json_get(g, "function"));
        if (!fn) fn = json_as_string(json_get(g, "node"));
        const char *start = json_as_string(json_get(g, "start"));
        if (strcmp(by, "version") == 0)
            snprintf(label, sizeof(label), "%s@%" PRId64, fn ? fn : "?", geti(g, "version"));
        else
            snprintf(label, sizeof(label), "%s", fn ? fn : start ? start : "?");
        print_row(label, g);
    }
    print_row("TOTAL", json_get(root, "total"));
    const json_value *on = json_get(root, "always_on");
    if (!on) return;
    printf("\nalways-on for the same traffic (%.4g USD per instance-hour; each hour from a "
           "function's\nfirst call counts whole, with max(1, peak concurrency) instances):\n\n",
           getd(on, "usd_per_instance_hour"));
    printf("%-22s %6s %5s %15s %14s %15s %10s\n", "FUNCTION", "HOURS", "PEAK", "INSTANCE-HOURS",
           "ALWAYS-ON USD", "SERVERLESS USD", "RATIO");
    const json_value *fns = json_get(on, "functions");
    for (size_t i = 0; fns && fns->type == JSON_ARRAY && i <= fns->u.arr.n; i++) {
        const json_value *f = i < fns->u.arr.n ? fns->u.arr.items[i] : json_get(on, "total");
        const char *name = i < fns->u.arr.n ? json_as_string(json_get(f, "function")) : "TOTAL";
        char ratio[32] = "-";
        double r;
        if (json_as_double(json_get(f, "ratio"), &r)) snprintf(ratio, sizeof(ratio), "%.0fx", r);
        char hours[24] = "", peak[24] = "";
        if (i < fns->u.arr.n) {
            snprintf(hours, sizeof(hours), "%" PRId64, geti(f, "hours"));
            snprintf(peak, sizeof(peak), "%" PRId64, geti(f, "peak_concurrency"));
        }
        printf("%-22s %6s %5s %15" PRId64 " %14.4f %15.8f %10s\n", name ? name : "?", hours, peak,
               geti(f, "instance_hours"), getd(f, "always_on_usd"), getd(f, "serverless_usd"),
               ratio);
    }
}

int cli_usage_main(int argc, char **argv)
{
    const char *url = getenv("ROUSE_SERVER");
    if (!url || !*url) url = DEFAULT_SERVER;
    bool json = false;
    rouse_buf path;
    rouse_buf_init(&path);
    rouse_buf_append_str(&path, "/v1/usage");
    static const struct {
        const char *flag, *param;
    } valued[] = {{"--version", "version"},
                  {"--since", "since"},
                  {"--until", "until"},
                  {"--by", "group_by"},
                  {"--price-instance-hour", "price_instance_hour"}};
    bool have_name = false;
    int rc = CLI_EXIT_OK;
    for (int i = 1; i < argc && rc == CLI_EXIT_OK; i++) {
        const char *a = argv[i];
        size_t k = 0;
        while (k < sizeof(valued) / sizeof(valued[0]) && strcmp(a, valued[k].flag) != 0)
            k++;
        if (k < sizeof(valued) / sizeof(valued[0])) {
            if (i + 1 >= argc) {
                rc = usage_err("missing the value of", a);
                break;
            }
            add_param(&path, valued[k].param, argv[++i]);
        } else if (strcmp(a, "--server") == 0) {
            if (i + 1 >= argc) {
                rc = usage_err("--server needs a URL", NULL);
                break;
            }
            url = argv[++i];
        } else if (strcmp(a, "--json") == 0) {
            json = true;
        } else if (strcmp(a, "--compare-always-on") == 0) {
            add_param(&path, "compare_always_on", "true");
        } else if (a[0] == '-' || have_name) {
            rc = usage_err(a[0] == '-' ? "unknown option" : "more than one function name", a);
        } else {
            add_param(&path, "function", a);
            have_name = true;
        }
    }
    http_target t;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    if (rc == CLI_EXIT_OK && http_target_parse(url, &t, &eb) < 0) rc = usage_err(eb.msg, NULL);
    if (rc != CLI_EXIT_OK) {
        rouse_buf_fini(&path);
        return rc;
    }
    http_response r;
    http_response_init(&r);
    if (http_request(&t, "GET", path.data, NULL, NULL, 0, USAGE_TIMEOUT_MS, &r, &eb) < 0) {
        fprintf(stderr,
                "rouse usage: %s (is `rouse serve` running there? set --server or "
                "ROUSE_SERVER)\n",
                eb.msg);
        rouse_buf_fini(&path);
        http_response_fini(&r);
        return CLI_EXIT_FAIL;
    }
    rouse_buf_fini(&path);
    rouse_arena arena;
    rouse_arena_init(&arena, 0);
    json_value *root = NULL;
    bool parsed = json_parse(r.body.data ? r.body.data : "", r.body.len, &arena, &root, &eb) == 0;
    if (r.status != 200) {
        const char *msg = parsed ? json_as_string(json_get(root, "error")) : NULL;
        fprintf(stderr, "rouse usage: %d: %s\n", r.status,
                msg ? msg : (r.body.data ? r.body.data : ""));
        rc = CLI_EXIT_FAIL;
    } else if (json) {
        fwrite(r.body.data, 1, r.body.len, stdout);
    } else if (!parsed) {
        fprintf(stderr, "rouse usage: the server's answer is not JSON: %s\n", eb.msg);
        rc = CLI_EXIT_FAIL;
    } else {
        print_table(root);
    }
    rouse_arena_fini(&arena);
    http_response_fini(&r);
    return rc;
}
