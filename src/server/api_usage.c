/*
 * GET /v1/usage: what the recorded invocations cost (docs/architecture.md,
 * "Metering").
 *
 *   ?function=NAME&version=N&since=T&until=T
 *   &group_by=function|version|node|minute|hour|day
 *   &compare_always_on=true&price_instance_hour=USD
 *
 * T is RFC 3339 in UTC ("2026-12-06T23:00:00Z", or a date "2026-12-06"),
 * Unix seconds ("1796598000"), "now", or a time ago ("90s", "30m", "24h",
 * "7d"). Defaults: since the first record (group_by=minute: the last 24 h,
 * which is also the longest range it takes), until now; the reply's
 * "since" is then the first record's time. Every parameter is
 * checked; an unknown, repeated, unparsable or out-of-range one is a 400
 * naming it.
 *
 * The query runs on the usage query thread (usage.c), never on the loop;
 * the request waits suspended and is answered from its completion. With
 * --state postgres:// it reads every node's records in PostgreSQL (503
 * "usage store unavailable: ..." while it cannot be reached);
 * group_by=node sums by the node that recorded each call (without
 * --state: one group, this node).
 *
 * Cost: GB-seconds = billed_ms / 1000 x memory_mb / 1024, summed per
 * invocation; cost = GB-s x --price-gb-s + requests x --price-per-million
 * / 1e6, where requests are the calls an instance handled (calls serve
 * turned away before any instance ran: 429, 404, a 504 in the queue, cost
 * nothing). A function without invocations costs nothing.
 *
 * Always-on comparison: for each function that ran in the range, every
 * hour from the hour of its first run (or of `since`) to the hour of
 * `until` counts whole, with max(1, that hour's peak concurrency)
 * instances at --price-instance-hour (usage.h defines the peak).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/json.h"
#include "common/timeutil.h"
#include "server/http_int.h"
#include "store/usage.h"

#define DAY_US 86400000000LL
#define MINUTE_RANGE_US DAY_US
#define TIME_MAX_US 253402300799000000LL /* 9999-12-31T23:59:59Z */
#define USAGE_QUERIES_MAX 8              /* waiting for the query thread */

typedef struct params {
    usage_query q;
    bool compare;
    double price_instance_hour;
    bool since_given;
    int n_seen;
    const char *bad; /* the first bad parameter's message, set once */
    char msg[256];
    const char *seen[16];
} params;

typedef struct query_arg {
    usage_query q;
    bool compare, since_given;
    double price_gb_s, price_per_million, price_instance_hour;
    struct usage *u;
    bool unavailable; /* PostgreSQL could not be reached */
    usage_result res;
} query_arg;

/* --- parameters -------------------------------------------------------------- */

static bool parse_time(const char *v, int64_t now_us, int64_t *out)
{
    if (strcmp(v, "now") == 0) {
        *out = now_us;
        return true;
    }
    size_t len = strlen(v);
    size_t digits = strspn(v, "0123456789");
    if (digits > 0 && digits == len) {
        if (len > 12) return false;
        long long s = strtoll(v, NULL, 10);
        if ((int64_t)s * 1000000 > TIME_MAX_US) return false;
        *out = (int64_t)s * 1000000;
        return true;
    }
    if (digits > 0 && digits <= 7 && digits + 1 == len) {
        long long n = strtoll(v, NULL, 10);
        int64_t unit;
        switch (v[len - 1]) {
        case 's':
            unit = 1000000;
            break;
        case 'm':
            unit = 60000000;
            break;
        case 'h':
            unit = 3600000000LL;
            break;
        case 'd':
            unit = DAY_US;
            break;
        default:
            return false;
        }
        if (n > 36500LL * DAY_US / unit) return false; /* a century at most */
        *out = now_us - (int64_t)n * unit;
        if (*out < 0) *out = 0;
        return true;
    }
    /* RFC 3339 in UTC, or a date: digits where the template has 'd'. */
    static const char tmpl[] = "dddd-dd-ddTdd:dd:ddZ";
    if (len != 10 && len != 20) return false;
    for (size_t i = 0; i < len; i++)
        if (tmpl[i] == 'd' ? !(v[i] >= '0' && v[i] <= '9') : v[i] != tmpl[i]) return false;
    int y, mo, d, h = 0, mi = 0, sec = 0;
    if (len == 10 ? sscanf(v, "%4d-%2d-%2d", &y, &mo, &d) != 3
                  : sscanf(v, "%4d-%2d-%2dT%2d:%2d:%2dZ", &y, &mo, &d, &h, &mi, &sec) != 6)
        return false;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59)
        return false;
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h,
                    .tm_min = mi, .tm_sec = sec};
    time_t t = timegm(&tm);
    if (t == (time_t)-1 || tm.tm_mday != d) return false; /* 2026-02-31 */
    *out = (int64_t)t * 1000000;
    return true;
}

static void bad(params *p, const char *fmt, const char *name, const char *value)
{
    if (p->bad) return;
    snprintf(p->msg, sizeof(p->msg), fmt, name, value ? value : "");
    p->bad = p->msg;
}

static enum MHD_Result on_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                              const char *value)
{
    (void)kind;
    params *p = cls;
    if (p->bad) return MHD_NO;
    const char *v = value ? value : "";
    for (int i = 0; i < p->n_seen; i++)
        if (strcmp(p->seen[i], key) == 0) {
            bad(p, "%s: given more than once%s", key, NULL);
            return MHD_NO;
        }
    if (p->n_seen < (int)(sizeof(p->seen) / sizeof(p->seen[0]))) p->seen[p->n_seen++] = key;
    int64_t now = rouse_wall_us();
    if (strcmp(key, "function") == 0) {
        if (!store_fn_key_valid(v))
            bad(p, "%s: not a function name: '%.64s'", key, v);
        else
            snprintf(p->q.function, sizeof(p->q.function), "%s", v);
    } else if (strcmp(key, "version") == 0) {
        if (!store_version_parse(v, &p->q.version) || p->q.version < 1)
            bad(p, "%s: must be a version number from 1: '%.64s'", key, v);
    } else if (strcmp(key, "since") == 0 || strcmp(key, "until") == 0) {
        int64_t t;
        if (!parse_time(v, now, &t))
            bad(p,
                "%s: not a time: '%.64s' (RFC 3339 in UTC like 2026-12-06T23:00:00Z, a date, "
                "Unix seconds, now, or a time ago like 90s, 30m, 24h, 7d)",
                key, v);
        else if (key[0] == 's') {
            p->q.since_us = t;
            p->since_given = true;
        } else {
            p->q.until_us = t;
        }
    } else if (strcmp(key, "group_by") == 0) {
        static const char *const names[] = {"function", "version", "minute",
                                            "hour",     "day",     "node"};
        int i = 0;
        while (i < 6 && strcmp(v, names[i]) != 0)
            i++;
        if (i == 6)
            bad(p, "%s: must be function, version, node, minute, hour or day: '%.64s'", key, v);
        else
            p->q.by = (usage_by)i;
    } else if (strcmp(key, "compare_always_on") == 0) {
        if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0 || strcmp(v, "") == 0)
            p->compare = true;
        else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
            p->compare = false;
        else
            bad(p, "%s: must be true or false: '%.64s'", key, v);
    } else if (strcmp(key, "price_instance_hour") == 0) {
        char *end;
        errno = 0;
        double d = strtod(v, &end);
        if (!*v || *end || errno || !isfinite(d) || d < 0 || d > 1e6)
            bad(p, "%s: must be a price in USD from 0 to 1000000: '%.64s'", key, v);
        else
            p->price_instance_hour = d;
    } else {
        bad(p, "%s: unknown parameter%s", key, NULL);
    }
    return p->bad ? MHD_NO : MHD_YES;
}

static int parse_params(http_req *req, params *p)
{
    server *s = req->srv;
    memset(p, 0, sizeof(*p));
    p->q.by = USAGE_BY_FUNCTION;
    p->price_instance_hour = s->opts.price_instance_hour;
    int64_t now = rouse_wall_us();
    p->q.until_us = -1;
    p->q.since_us = -1;
    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, on_arg, p);
    if (!p->bad && p->q.version > 0 && !p->q.function[0])
        bad(p, "%s: needs function%s", "version", NULL);
    if (p->bad) return -1;
    if (p->q.until_us < 0) p->q.until_us = now;
    if (p->q.since_us < 0)
        p->q.since_us = p->q.by == USAGE_BY_MINUTE && p->q.until_us > MINUTE_RANGE_US
                            ? p->q.until_us - MINUTE_RANGE_US
                            : 0;
    if (p->q.until_us <= p->q.since_us) {
        bad(p, "%s: must be after since%s", "until", NULL);
        return -1;
    }
    if (p->q.by == USAGE_BY_MINUTE && p->q.until_us - p->q.since_us > MINUTE_RANGE_US) {
        bad(p, "%s: group_by=minute covers at most 24 h (since is more than 24 h before until)%s",
            "since", NULL);
        return -1;
    }
    if (p->compare && p->q.by != USAGE_BY_FUNCTION) {
        bad(p, "%s: needs group_by=function%s", "compare_always_on", NULL);
        return -1;
    }
    p->q.peaks = p->compare;
    return 0;
}

/* --- the reply ---------------------------------------------------------------- */

static void put_time(rouse_buf *b, const char *key, int64_t us)
{
    time_t t = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char text[32];
    strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
    rouse_buf_appendf(b, "\"%s\":\"%s\"", key, text);
}

static double gb_s_of(const usage_group *g)
{
    return (double)g->mb_ms / 1000.0 / 1024.0;
}

static double cost_of(const query_arg *a, const usage_group *g)
{
    return gb_s_of(g) * a->price_gb_s + (double)g->requests * a->price_per_million / 1e6;
}

static void put_sums(rouse_buf *b, const query_arg *a, const usage_group *g)
{
    rouse_buf_appendf(b,
                      "\"invocations\":%" PRId64 ",\"requests\":%" PRId64 ",\"errors\":%" PRId64
                      ",\"rejected\":%" PRId64 ",\"warm\":%" PRId64
                      ",\"cold_starts\":{\"template\":%" PRId64 ",\"zero\":%" PRId64
                      "},\"latency_us\":{\"p50\":%" PRId64 ",\"p99\":%" PRId64
                      "},\"run_us\":%" PRId64 ",\"billed_ms\":%" PRId64
                      ",\"gb_s\":%.9g,\"cost_usd\":%.9g,\"bytes_in\":%" PRId64
                      ",\"bytes_out\":%" PRId64,
                      g->invocations, g->requests, g->errors, g->starts[0], g->starts[1],
                      g->starts[2], g->starts[3], usage_hist_percentile(g->hist, 0.5),
                      usage_hist_percentile(g->hist, 0.99), g->run_us, g->billed_ms, gb_s_of(g),
                      cost_of(a, g), g->bytes_in, g->bytes_out);
}

static void add_group(usage_group *t, const usage_group *g)
{
    t->invocations += g->invocations;
    t->requests += g->requests;
    t->errors += g->errors;
    for (int i = 0; i < 4; i++)
        t->starts[i] += g->starts[i];
    t->billed_ms += g->billed_ms;
    t->mb_ms += g->mb_ms;
    t->run_us += g->run_us;
    t->bytes_in += g->bytes_in;
    t->bytes_out += g->bytes_out;
    for (int i = 0; i < USAGE_BUCKETS; i++)
        t->hist[i] += g->hist[i];
}

static int64_t hour_floor(int64_t us)
{
    return us / USAGE_HOUR_US * USAGE_HOUR_US;
}

/* The always-on comparison (see the top of the file). */
static void put_always_on(rouse_buf *b, const query_arg *a)
{
    const usage_result *r = &a->res;
    int64_t last_hour = hour_floor(a->q.until_us - 1);
    rouse_buf_appendf(b, ",\"always_on\":{\"usd_per_instance_hour\":%.9g,\"functions\":[",
                      a->price_instance_hour);
    double tot_on = 0, tot_sl = 0;
    int64_t tot_ih = 0;
    int nf = 0;
    for (int i = 0; i < r->n_peaks;) {
        const char *fn = r->peaks[i].function;
        int64_t first_hour = a->since_given ? hour_floor(a->q.since_us) : r->peaks[i].hour_us;
        int64_t hours = last_hour >= first_hour ? (last_hour - first_hour) / USAGE_HOUR_US + 1 : 0;
        int64_t ih = 0, peak = 0, with_peak = 0;
        for (; i < r->n_peaks && strcmp(r->peaks[i].function, fn) == 0; i++) {
            const usage_peak *p = &r->peaks[i];
            if (p->hour_us < first_hour || p->hour_us > last_hour) continue;
            ih += p->peak > 1 ? p->peak : 1;
            with_peak++;
            if (p->peak > peak) peak = p->peak;
        }
        ih += hours - with_peak; /* idle hours: one instance still runs */
        double sl = 0;
        for (int g = 0; g < r->n_groups; g++)
            if (strcmp(r->groups[g].function, fn) == 0) sl += cost_of(a, &r->groups[g]);
        double on = (double)ih * a->price_instance_hour;
        rouse_buf_appendf(b, "%s{\"function\":", nf++ ? "," : "");
        json_write_string(b, fn, strlen(fn));
        rouse_buf_appendf(b,
                          ",\"hours\":%" PRId64 ",\"peak_concurrency\":%" PRId64
                          ",\"instance_hours\":%" PRId64
                          ",\"always_on_usd\":%.9g,\"serverless_usd\":%.9g",
                          hours, peak, ih, on, sl);
        if (sl > 0)
            rouse_buf_appendf(b, ",\"ratio\":%.9g}", on / sl);
        else
            rouse_buf_append_str(b, ",\"ratio\":null}");
        tot_on += on;
        tot_sl += sl;
        tot_ih += ih;
    }
    rouse_buf_appendf(b,
                      "],\"total\":{\"instance_hours\":%" PRId64
                      ",\"always_on_usd\":%.9g,\"serverless_usd\":%.9g",
                      tot_ih, tot_on, tot_sl);
    if (tot_sl > 0)
        rouse_buf_appendf(b, ",\"ratio\":%.9g}}", tot_on / tot_sl);
    else
        rouse_buf_append_str(b, ",\"ratio\":null}}");
}

static void build_reply(const query_arg *a, rouse_buf *b)
{
    static const char *const by_names[] = {"function", "version", "minute",
                                           "hour",     "day",     "node"};
    const usage_result *r = &a->res;
    rouse_buf_append_str(b, "{");
    /* Without a given start, the range starts at the first record found. */
    int64_t since = a->q.since_us;
    if (!a->since_given && a->q.by != USAGE_BY_MINUTE)
        since = r->first_ts_us > 0 ? r->first_ts_us : a->q.until_us;
    put_time(b, "since", since);
    rouse_buf_append_str(b, ",");
    put_time(b, "until", a->q.until_us);
    rouse_buf_appendf(b,
                      ",\"group_by\":\"%s\",\"prices\":{\"usd_per_gb_s\":%.9g,"
                      "\"usd_per_million_requests\":%.9g},\"groups\":[",
                      by_names[a->q.by], a->price_gb_s, a->price_per_million);
    usage_group *total = calloc(1, sizeof(*total));
    int shown = 0;
    for (int i = 0; i < r->n_groups; i++) {
        const usage_group *g = &r->groups[i];
        rouse_buf_append_str(b, shown++ ? ",{" : "{");
        if (a->q.by == USAGE_BY_FUNCTION || a->q.by == USAGE_BY_VERSION) {
            rouse_buf_append_str(b, "\"function\":");
            json_write_string(b, g->function, strlen(g->function));
            if (a->q.by == USAGE_BY_VERSION) rouse_buf_appendf(b, ",\"version\":%" PRId64, g->version);
        } else if (a->q.by == USAGE_BY_NODE) {
            rouse_buf_append_str(b, "\"node\":");
            json_write_string(b, g->function, strlen(g->function));
        } else {
            put_time(b, "start", g->t_us);
        }
        rouse_buf_append_str(b, ",");
        put_sums(b, a, g);
        rouse_buf_append_str(b, "}");
        if (total) add_group(total, g);
    }
    /* A function asked for by name that did not run: its row, at zero. */
    if (shown == 0 && a->q.function[0] && a->q.by == USAGE_BY_FUNCTION && total) {
        rouse_buf_append_str(b, "{\"function\":");
        json_write_string(b, a->q.function, strlen(a->q.function));
        rouse_buf_append_str(b, ",");
        put_sums(b, a, total);
        rouse_buf_append_str(b, "}");
    }
    rouse_buf_append_str(b, "],\"total\":{");
    if (total) put_sums(b, a, total);
    rouse_buf_append_str(b, "}");
    free(total);
    if (a->compare) put_always_on(b, a);
    rouse_buf_append_str(b, "}\n");
}

static int apply_query(store *st, void *p, rouse_errbuf *eb)
{
    (void)st; /* a writer without a registry: the connection is usage.c's */
    query_arg *a = p;
    return usage_query_apply(a->u, &a->q, &a->res, &a->unavailable, eb);
}

static void release_query(void *p)
{
    usage_result_fini(&((query_arg *)p)->res);
}

static void query_done(void *user, int rc, const rouse_errbuf *eb, void *p)
{
    http_req *req = user;
    const query_arg *a = p;
    durable_done(req);
    if (rc < 0 && a->unavailable) {
        http_reply_error(req, 503, "usage store unavailable: %s", eb->msg);
        req->reply.retry_after = 1;
    } else if (rc < 0) {
        http_reply_error(req, http_status_of(rc), "reading usage: %s", eb->msg);
    } else {
        rouse_buf b;
        rouse_buf_init(&b);
        build_reply(a, &b);
        http_reply_json(req, 200, &b);
        rouse_buf_fini(&b);
    }
    http_req_resume(req);
}

int api_usage_handle(http_req *req)
{
    server *s = req->srv;
    params p;
    if (parse_params(req, &p) < 0) {
        http_reply_error(req, 400, "%s", p.bad);
        return 0;
    }
    store_writer *w = usage_query_writer(s);
    if (!w) {
        http_reply_error(req, 503, "usage metering is off (rouse serve --metering off)");
        return 0;
    }
    /* Queries run one at a time: past a few waiting, turn more away
     * rather than queue work without bound. */
    if (store_writer_pending(w) >= USAGE_QUERIES_MAX) {
        http_reply_error(req, 503, "%d usage queries are waiting already; try again later",
                         store_writer_pending(w));
        req->reply.retry_after = 1;
        return 0;
    }
    query_arg a;
    memset(&a, 0, sizeof(a));
    a.q = p.q;
    a.compare = p.compare;
    a.since_given = p.since_given;
    a.price_gb_s = s->opts.price_gb_s;
    a.price_per_million = s->opts.price_per_million;
    a.price_instance_hour = p.price_instance_hour;
    a.u = s->usage;
    snprintf(a.q.node, sizeof(a.q.node), "%s", usage_node(s));
    int rc = store_writer_submit_release(w, apply_query, &a, sizeof(a), query_done, release_query,
                                         req, &req->write_ticket);
    if (rc < 0) {
        req->write_ticket = 0;
        http_reply_error(req, rc == ROUSE_ENOMEM ? 500 : 503, "%s",
                         rc == ROUSE_ENOMEM ? "out of memory" : "server is shutting down");
        return 0;
    }
    req->write_by = w;
    return 1;
}
