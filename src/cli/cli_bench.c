/*
 * rouse bench NAME: a load generator for one function. One thread drives
 * CONCURRENCY kept-alive connections at once (libcurl's multi interface),
 * each sending the same request in the binary tensor extension as soon as
 * its previous one is answered, for N requests or a DURATION. A progress
 * line is redrawn on a terminal; the end prints the latency percentiles, a
 * histogram drawn in the terminal, and the requests counted by how their
 * instance started (Rouse-Start) and by status.
 *
 * --cold: one request at a time, each after POST .../scale-to-zero, so that
 * every one starts from zero; the numbers are then start-from-zero latency.
 *
 * The inputs are those of --input/--request, or, without them, zeros of
 * the shapes the model declares (GET /v2/models/NAME; a dynamic dimension
 * becomes 1).
 */
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/out.h"
#include "cli/request.h"
#include "cli/tensor_file.h"
#include "common/arena.h"
#include "common/json.h"
#include "common/timeutil.h"
#include "worker/oip.h"

#define MAX_INPUTS 16
#define MAX_CONCURRENCY 1024
#define HIST_ROWS 12

void cli_bench_usage(FILE *out)
{
    fprintf(out,
            "usage: rouse bench NAME [-c CONCURRENCY] [-n REQUESTS | -d DURATION] [--cold]\n"
            "                   [--input NAME=FILE [--shape S --dtype T]... | --request FILE]\n"
            "                   [--version V] [options]\n\n"
            "Loads function NAME with requests from one thread over many kept-alive\n"
            "connections, in the binary tensor extension, then prints latency percentiles,\n"
            "a histogram, and the requests by how their instance started and by status.\n\n"
            "options:\n"
            "  -c CONCURRENCY     requests in flight at once, one connection each (default 1)\n"
            "  -n REQUESTS        how many requests (default 100)\n"
            "  -d DURATION        send for this long instead: 10s, 2m\n"
            "  --cold             scale the function to zero before each request (one at a\n"
            "                     time): measures starts from zero\n"
            "  --input NAME=FILE  an input, as for rouse invoke (default: zeros of the shapes\n"
            "                     the model declares)\n"
            "  --shape S, --dtype T, --request FILE   as for rouse invoke\n"
            "  --version V        a version number or an alias\n" CLI_CLIENT_OPTIONS_HELP
            "\nWith --json, the summary as one JSON object.\n");
}

typedef struct sample {
    double ms;
    int status; /* 0: transport error */
    char start[12];
} sample;

typedef struct slot {
    CURL *h;
    uint64_t sent_ns;
    char start[12];
    struct curl_slist *headers;
} slot;

typedef struct bench {
    cli_client *c;
    const char *name, *version, *request;
    cli_input_spec in[MAX_INPUTS];
    int n_in;
    long conc, n;
    double dur_s;
    bool cold;
    rouse_buf body;
    size_t json_len;
    bool binary;
    char url[2048];
    sample *samples;
    size_t n_samples, cap_samples;
    size_t errors;
    char first_error[CURL_ERROR_SIZE];
    char errbuf[CURL_ERROR_SIZE];
} bench;

static size_t discard(char *p, size_t size, size_t n, void *user)
{
    (void)p;
    (void)user;
    return size * n;
}

static size_t on_header(char *line, size_t size, size_t n, void *user)
{
    slot *s = user;
    size_t len = size * n;
    if (len > 12 && strncasecmp(line, "Rouse-Start:", 12) == 0) {
        const char *v = line + 12;
        while (*v == ' ')
            v++;
        size_t k = strcspn(v, "\r\n");
        snprintf(s->start, sizeof(s->start), "%.*s", (int)(k < 11 ? k : 11), v);
    }
    return len;
}

/* Zeros of the model's declared inputs, as a binary request. */
static int default_body(bench *b)
{
    rouse_buf path;
    rouse_buf_init(&path);
    rouse_buf_append_str(&path, "/v2/models/");
    cli_url_escape(&path, b->name);
    if (b->version) {
        rouse_buf_append_str(&path, "/versions/");
        cli_url_escape(&path, b->version);
    }
    http_response r;
    int st = cli_call(b->c, "GET", path.data, NULL, NULL, 0, &r);
    rouse_buf_fini(&path);
    if (st < 0) return -1;
    if (r.status != 200) {
        cli_fail_response(b->c, &r);
        return -1;
    }
    rouse_arena a;
    rouse_arena_init(&a, 0);
    json_value *v;
    int rc = -1;
    rouse_buf bin;
    rouse_buf_init(&bin);
    if (json_parse(r.body.data, r.body.len, &a, &v, NULL) == 0) {
        const json_value *ins = json_get(v, "inputs");
        rouse_buf_append_str(&b->body, "{\"inputs\":[");
        rc = 0;
        for (size_t i = 0; rc == 0 && ins && ins->type == JSON_ARRAY && i < ins->u.arr.n; i++) {
            const json_value *in = ins->u.arr.items[i];
            const char *nm = json_as_string(json_get(in, "name"));
            const char *dt = json_as_string(json_get(in, "datatype"));
            const json_value *sh = json_get(in, "shape");
            int dtype = oip_datatype_parse(dt);
            size_t es = dtype >= 0 ? rouse_dtype_size(dtype) : 0;
            if (!nm || !es || !sh || sh->type != JSON_ARRAY) {
                fprintf(stderr, "rouse bench: input %zu of %s: no name, datatype or shape; give --input\n", i, b->name);
                rc = -1;
                break;
            }
            rouse_buf_appendf(&b->body, "%s{\"name\":", i ? "," : "");
            json_write_string(&b->body, nm, strlen(nm));
            rouse_buf_appendf(&b->body, ",\"datatype\":\"%s\",\"shape\":[", dt);
            size_t count = 1;
            for (size_t d = 0; d < sh->u.arr.n; d++) {
                int64_t x = -1;
                json_as_int64(sh->u.arr.items[d], &x);
                if (x < 1) x = 1; /* dynamic */
                count *= (size_t)x;
                rouse_buf_appendf(&b->body, "%s%" PRId64, d ? "," : "", x);
            }
            rouse_buf_appendf(&b->body, "],\"parameters\":{\"binary_data_size\":%zu}}", count * es);
            for (size_t k = 0; k < count * es; k++)
                rouse_buf_append_byte(&bin, 0);
        }
        rouse_buf_append_str(&b->body, "],\"parameters\":{\"binary_data_output\":true}}");
        b->json_len = b->body.len;
        b->binary = true;
        rouse_buf_append(&b->body, bin.data ? bin.data : "", bin.len);
    } else {
        fprintf(stderr, "rouse bench: the model's metadata is not JSON\n");
    }
    rouse_buf_fini(&bin);
    rouse_arena_fini(&a);
    http_response_fini(&r);
    return rc;
}

static void slot_setup(bench *b, slot *s)
{
    CURL *h = s->h;
    curl_easy_setopt(h, CURLOPT_URL, b->url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, b->body.data);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)b->body.len);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, s->headers);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, s);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)CLI_REQUEST_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_PRIVATE, s);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, b->errbuf);
    if (b->c->cacert) curl_easy_setopt(h, CURLOPT_CAINFO, b->c->cacert);
}

static int add_sample(bench *b, double ms, int status, const char *start)
{
    if (b->n_samples == b->cap_samples) {
        size_t cap = b->cap_samples ? 2 * b->cap_samples : 1024;
        sample *ns = realloc(b->samples, cap * sizeof(*ns));
        if (!ns) return -1;
        b->samples = ns;
        b->cap_samples = cap;
    }
    sample *s = &b->samples[b->n_samples++];
    s->ms = ms;
    s->status = status;
    snprintf(s->start, sizeof(s->start), "%s", start[0] ? start : "-");
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void progress(const bench *b, uint64_t t0, bool final)
{
    if (!cli_out_tty(stderr) || b->c->quiet || b->c->json) return;
    double secs = (double)(rouse_now_ns() - t0) / 1e9;
    char total[32] = "";
    if (b->n > 0) snprintf(total, sizeof(total), "/%ld", b->n);
    fprintf(stderr, "\r%zu%s requests  %.0f req/s  %zu errors  %.1f s\033[K%s", b->n_samples, total,
            secs > 0 ? (double)b->n_samples / secs : 0.0, b->errors, secs, final ? "\n" : "");
    fflush(stderr);
}

static int scale_to_zero(bench *b)
{
    rouse_buf p;
    rouse_buf_init(&p);
    rouse_buf_append_str(&p, "/v1/functions/");
    cli_url_escape(&p, b->name);
    rouse_buf_append_str(&p, "/scale-to-zero");
    http_response r;
    int st = cli_call(b->c, "POST", p.data, NULL, NULL, 0, &r);
    rouse_buf_fini(&p);
    if (st < 0) return -1;
    if (r.status != 200) {
        cli_fail_response(b->c, &r);
        return -1;
    }
    http_response_fini(&r);
    return 0;
}

/* The client's event loop: libcurl's socket interface over epoll. The
 * multi handle's own loop (curl_multi_perform and curl_multi_poll) polls
 * every connection at each wake-up: at 32 connections to an unbatched
 * bert_tiny, where replies come one at a time, that cost the client 139 us
 * of CPU a request against 48 when they come in batches, on the cores the
 * server under test shares, and so flattered batching. With epoll a
 * wake-up costs what its ready connections cost. */
typedef struct sockloop {
    CURLM *m;
    int ep;
    uint64_t deadline_ns; /* libcurl's timer (0: none) */
} sockloop;

static int on_socket(CURL *e, curl_socket_t fd, int what, void *user, void *sockp)
{
    (void)e;
    (void)sockp;
    sockloop *l = user;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(l->ep, EPOLL_CTL_DEL, fd, NULL);
        return 0;
    }
    struct epoll_event ev = {.events = (what & CURL_POLL_IN ? EPOLLIN : 0u) |
                                       (what & CURL_POLL_OUT ? EPOLLOUT : 0u),
                             .data.fd = fd};
    if (epoll_ctl(l->ep, EPOLL_CTL_MOD, fd, &ev) < 0 && errno == ENOENT)
        epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ev);
    return 0;
}

static int on_timer(CURLM *m, long timeout_ms, void *user)
{
    (void)m;
    sockloop *l = user;
    l->deadline_ns = timeout_ms < 0 ? 0 : rouse_now_ns() + (uint64_t)timeout_ms * 1000000ull;
    return 0;
}

/* Waits up to 100 ms for the connections or libcurl's timer and lets
 * libcurl act on what is ready. */
static void sockloop_step(sockloop *l)
{
    uint64_t now = rouse_now_ns();
    int wait = 100;
    if (l->deadline_ns)
        wait = l->deadline_ns <= now ? 0
                                     : (int)((l->deadline_ns - now + 999999ull) / 1000000ull);
    if (wait > 100) wait = 100;
    struct epoll_event evs[64];
    int n = epoll_wait(l->ep, evs, 64, wait), still;
    for (int i = 0; i < n; i++) {
        int flags = (evs[i].events & EPOLLIN ? CURL_CSELECT_IN : 0) |
                    (evs[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
                    (evs[i].events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
        curl_multi_socket_action(l->m, evs[i].data.fd, flags, &still);
    }
    if (l->deadline_ns && rouse_now_ns() >= l->deadline_ns) {
        l->deadline_ns = 0;
        curl_multi_socket_action(l->m, CURL_SOCKET_TIMEOUT, 0, &still);
    }
}

/* The load itself. */
static int drive(bench *b, double *elapsed_s)
{
    long conc = b->cold ? 1 : b->conc;
    CURLM *m = curl_multi_init();
    slot *slots = calloc((size_t)conc, sizeof(*slots));
    if (!m || !slots) {
        curl_multi_cleanup(m);
        free(slots);
        return -1;
    }
    curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, conc);
    sockloop loop = {.m = m, .ep = epoll_create1(EPOLL_CLOEXEC), .deadline_ns = 0};
    if (loop.ep < 0) {
        curl_multi_cleanup(m);
        free(slots);
        return -1;
    }
    curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(m, CURLMOPT_SOCKETDATA, &loop);
    curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(m, CURLMOPT_TIMERDATA, &loop);
    char ihcl[80], auth[600];
    snprintf(ihcl, sizeof(ihcl), "Inference-Header-Content-Length: %zu", b->json_len);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", b->c->api_key ? b->c->api_key : "");
    int rc = 0;
    for (long i = 0; i < conc && rc == 0; i++) {
        slot *s = &slots[i];
        s->h = curl_easy_init();
        struct curl_slist *hl = curl_slist_append(NULL, b->binary ? "Content-Type: application/octet-stream"
                                                                  : "Content-Type: application/json");
        if (hl && b->binary) hl = curl_slist_append(hl, ihcl);
        if (hl) hl = curl_slist_append(hl, "Expect:");
        if (hl && b->c->api_key) hl = curl_slist_append(hl, auth);
        s->headers = hl;
        if (!s->h || !hl) rc = -1;
        else slot_setup(b, s);
    }
    uint64_t t0 = rouse_now_ns(), end_ns = b->dur_s > 0 ? t0 + (uint64_t)(b->dur_s * 1e9) : 0;
    long started = 0, running = 0;
    uint64_t last_draw = 0;
    /* Starts a slot's next request, unless the run is over. */
#define MORE() (b->n > 0 ? started < b->n : rouse_now_ns() < end_ns)
    for (long i = 0; i < conc && rc == 0 && MORE(); i++) {
        if (b->cold && scale_to_zero(b) < 0) {
            rc = -1;
            break;
        }
        slots[i].start[0] = '\0';
        slots[i].sent_ns = rouse_now_ns();
        curl_multi_add_handle(m, slots[i].h);
        started++;
        running++;
    }
    while (rc == 0 && running > 0) {
        sockloop_step(&loop);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left))) {
            if (msg->msg != CURLMSG_DONE) continue;
            CURL *h = msg->easy_handle;
            slot *s;
            curl_easy_getinfo(h, CURLINFO_PRIVATE, (char **)&s);
            uint64_t now = rouse_now_ns();
            long status = 0;
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
            if (msg->data.result != CURLE_OK) {
                status = 0;
                if (!b->first_error[0])
                    snprintf(b->first_error, sizeof(b->first_error), "%s",
                             b->errbuf[0] ? b->errbuf : curl_easy_strerror(msg->data.result));
            }
            if (status != 200) b->errors++;
            if (add_sample(b, (double)(now - s->sent_ns) / 1e6, (int)status, s->start) < 0) rc = -1;
            curl_multi_remove_handle(m, h);
            running--;
            if (rc == 0 && MORE()) {
                if (b->cold && scale_to_zero(b) < 0) {
                    rc = -1;
                    break;
                }
                s->start[0] = '\0';
                s->sent_ns = rouse_now_ns();
                curl_multi_add_handle(m, h);
                started++;
                running++;
            }
        }
        uint64_t now = rouse_now_ns();
        if (now - last_draw > 100000000ull) {
            progress(b, t0, false);
            last_draw = now;
        }
    }
#undef MORE
    *elapsed_s = (double)(rouse_now_ns() - t0) / 1e9;
    progress(b, t0, true);
    for (long i = 0; i < conc; i++) {
        if (slots[i].h) {
            curl_multi_remove_handle(m, slots[i].h);
            curl_easy_cleanup(slots[i].h);
        }
        curl_slist_free_all(slots[i].headers);
    }
    free(slots);
    curl_multi_cleanup(m);
    close(loop.ep);
    return rc;
}

/* Counts of distinct values of a field, in order of first appearance. */
typedef struct tally {
    char key[16];
    size_t n;
} tally;

static int tally_add(tally *t, int n, int cap, const char *key)
{
    for (int i = 0; i < n; i++)
        if (strcmp(t[i].key, key) == 0) {
            t[i].n++;
            return n;
        }
    if (n == cap) return n;
    snprintf(t[n].key, sizeof(t[n].key), "%s", key);
    t[n].n = 1;
    return n + 1;
}

static void report(bench *b, double secs)
{
    size_t n = b->n_samples;
    double *ms = malloc((n ? n : 1) * sizeof(double));
    if (!ms) return;
    double sum = 0;
    tally starts[8], statuses[16];
    int n_starts = 0, n_status = 0;
    for (size_t i = 0; i < n; i++) {
        ms[i] = b->samples[i].ms;
        sum += ms[i];
        n_starts = tally_add(starts, n_starts, 8, b->samples[i].start);
        char st[16];
        snprintf(st, sizeof(st), "%d", b->samples[i].status);
        n_status = tally_add(statuses, n_status, 16, b->samples[i].status ? st : "error");
    }
    qsort(ms, n, sizeof(double), cmp_double);
#define PCT(p) (n ? ms[(size_t)((double)(n - 1) * (p) + 0.5)] : 0.0)
    double p50 = PCT(0.50), p90 = PCT(0.90), p99 = PCT(0.99), mx = n ? ms[n - 1] : 0, mn = n ? ms[0] : 0;
    if (b->c->json) {
        printf("{\"function\":\"%s\",\"requests\":%zu,\"concurrency\":%ld,\"cold\":%s,"
               "\"seconds\":%.3f,\"requests_per_second\":%.1f,\"errors\":%zu,"
               "\"latency_ms\":{\"min\":%.3f,\"mean\":%.3f,\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,"
               "\"max\":%.3f},\"starts\":{",
               b->name, n, b->cold ? 1 : b->conc, b->cold ? "true" : "false", secs,
               secs > 0 ? (double)n / secs : 0.0, b->errors, mn, n ? sum / (double)n : 0.0, p50,
               p90, p99, mx);
        for (int i = 0; i < n_starts; i++)
            printf("%s\"%s\":%zu", i ? "," : "", starts[i].key, starts[i].n);
        printf("},\"statuses\":{");
        for (int i = 0; i < n_status; i++)
            printf("%s\"%s\":%zu", i ? "," : "", statuses[i].key, statuses[i].n);
        printf("}}\n");
        free(ms);
        return;
    }
    if (b->c->quiet) {
        free(ms);
        return;
    }
    const char *bo = cli_style_of(stdout, CLI_BOLD), *z = cli_style_of(stdout, CLI_RESET);
    printf("%s%s%s: %zu requests in %.2f s (%.1f/s), concurrency %ld%s\n", bo, b->name, z, n, secs,
           secs > 0 ? (double)n / secs : 0.0, b->cold ? 1 : b->conc,
           b->cold ? ", each from zero" : "");
    printf("latency (ms): min %.3f  p50 %.3f  p90 %.3f  p99 %.3f  max %.3f  mean %.3f\n", mn, p50,
           p90, p99, mx, n ? sum / (double)n : 0.0);
    /* Histogram: rows of equal width on a log scale from min to max. */
    if (n > 1 && mx > mn) {
        double lo = log(mn > 0 ? mn : 1e-3), hi = log(mx);
        size_t rows[HIST_ROWS] = {0}, top = 0;
        for (size_t i = 0; i < n; i++) {
            int r = (int)((log(ms[i] > 0 ? ms[i] : 1e-3) - lo) / (hi - lo) * HIST_ROWS);
            if (r >= HIST_ROWS) r = HIST_ROWS - 1;
            if (r < 0) r = 0;
            if (++rows[r] > top) top = rows[r];
        }
        int width = cli_out_tty(stdout) ? cli_out_width() - 32 : 40;
        if (width > 60) width = 60;
        if (width < 10) width = 10;
        for (int r = 0; r < HIST_ROWS; r++) {
            double a = exp(lo + (hi - lo) * r / HIST_ROWS), e = exp(lo + (hi - lo) * (r + 1) / HIST_ROWS);
            int bar = (int)((double)rows[r] * width / (double)top + 0.5);
            if (rows[r] && bar == 0) bar = 1;
            printf("  %9.3f - %9.3f |", a, e);
            for (int k = 0; k < bar; k++)
                fputs(cli_out_tty(stdout) ? "\u2588" : "#", stdout);
            printf(" %zu\n", rows[r]);
        }
    }
    printf("starts:");
    for (int i = 0; i < n_starts; i++)
        printf("  %s %zu", starts[i].key, starts[i].n);
    printf("\nstatus:");
    for (int i = 0; i < n_status; i++)
        printf("  %s %zu", statuses[i].key, statuses[i].n);
    printf("\n");
    if (b->first_error[0]) printf("first transport error: %s\n", b->first_error);
#undef PCT
    free(ms);
}

static bool parse_duration(const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || v <= 0) return false;
    double unit = !*end || strcmp(end, "s") == 0 ? 1 : strcmp(end, "m") == 0 ? 60 : strcmp(end, "ms") == 0 ? 1e-3 : 0;
    if (unit == 0) return false;
    *out = v * unit;
    return true;
}

static int bench_run(cli_client *c, int argc, char **argv)
{
    bench b = {.c = c, .conc = 1, .n = 0};
    rouse_buf_init(&b.body);
    int rc = CLI_EXIT_USAGE;
    bool have_n = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end;
        if (strcmp(a, "--cold") == 0) {
            b.cold = true;
            continue;
        }
        if (a[0] == '-' && !v) {
            cli_usage_error("bench", cli_bench_usage, "needs a value", a);
            goto out;
        }
        if (strcmp(a, "-c") == 0 || strcmp(a, "--concurrency") == 0) {
            b.conc = strtol(v, &end, 10);
            if (*end || b.conc < 1 || b.conc > MAX_CONCURRENCY) {
                cli_usage_error("bench", cli_bench_usage, "-c needs 1 to 1024", v);
                goto out;
            }
        } else if (strcmp(a, "-n") == 0 || strcmp(a, "--requests") == 0) {
            b.n = strtol(v, &end, 10);
            have_n = true;
            if (*end || b.n < 1) {
                cli_usage_error("bench", cli_bench_usage, "-n needs a positive count", v);
                goto out;
            }
        } else if (strcmp(a, "-d") == 0 || strcmp(a, "--duration") == 0) {
            if (!parse_duration(v, &b.dur_s)) {
                cli_usage_error("bench", cli_bench_usage, "-d needs a duration like 10s or 2m", v);
                goto out;
            }
        } else if (strcmp(a, "--version") == 0) {
            b.version = v;
        } else if (strcmp(a, "--request") == 0) {
            b.request = v;
        } else if (strcmp(a, "--input") == 0) {
            char *eq = strchr(argv[i + 1], '=');
            if (!eq || eq == argv[i + 1] || !eq[1] || b.n_in == MAX_INPUTS) {
                cli_usage_error("bench", cli_bench_usage, "--input needs NAME=FILE", v);
                goto out;
            }
            *eq = '\0';
            b.in[b.n_in++] = (cli_input_spec){.name = argv[i + 1], .file = eq + 1};
        } else if (strcmp(a, "--shape") == 0 || strcmp(a, "--dtype") == 0) {
            if (!b.n_in) {
                cli_usage_error("bench", cli_bench_usage, "give it after the --input it describes", a);
                goto out;
            }
            if (a[2] == 's')
                b.in[b.n_in - 1].shape = v;
            else
                b.in[b.n_in - 1].dtype = v;
        } else if (a[0] == '-') {
            cli_usage_error("bench", cli_bench_usage, "unknown option", a);
            goto out;
        } else if (!b.name) {
            b.name = a;
            continue;
        } else {
            cli_usage_error("bench", cli_bench_usage, "unexpected argument", a);
            goto out;
        }
        i++;
    }
    if (!b.name) {
        cli_usage_error("bench", cli_bench_usage, "needs NAME", NULL);
        goto out;
    }
    if (have_n && b.dur_s > 0) {
        cli_usage_error("bench", cli_bench_usage, "give -n or -d, not both", NULL);
        goto out;
    }
    if (b.request && b.n_in) {
        cli_usage_error("bench", cli_bench_usage, "give --request or --input, not both", NULL);
        goto out;
    }
    if (!have_n && b.dur_s <= 0) b.n = b.cold ? 10 : 100;
    rc = CLI_EXIT_FAIL;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    if (b.request) {
        uint8_t *buf;
        size_t len;
        if (cli_file_slurp(b.request, &buf, &len, &eb) < 0) {
            fprintf(stderr, "rouse bench: %s\n", eb.msg);
            goto out;
        }
        rouse_buf_append(&b.body, buf, len);
        free(buf);
        b.json_len = len;
    } else if (b.n_in) {
        if (cli_request_build(b.in, b.n_in, true, &b.body, &b.json_len, &b.binary, &eb) < 0) {
            fprintf(stderr, "rouse bench: %s\n", eb.msg[0] ? eb.msg : "cannot build the request");
            goto out;
        }
    } else if (default_body(&b) < 0) {
        goto out;
    }
    rouse_buf path;
    rouse_buf_init(&path);
    rouse_buf_append_str(&path, "/v2/models/");
    cli_url_escape(&path, b.name);
    if (b.version) {
        rouse_buf_append_str(&path, "/versions/");
        cli_url_escape(&path, b.version);
    }
    rouse_buf_append_str(&path, "/infer");
    snprintf(b.url, sizeof(b.url), "%s%s", c->url, path.data);
    rouse_buf_fini(&path);
    double secs = 0;
    if (drive(&b, &secs) < 0) goto out;
    report(&b, secs);
    rc = b.errors == b.n_samples && b.n_samples ? CLI_EXIT_FAIL : CLI_EXIT_OK;
    if (rc) fprintf(stderr, "rouse bench: every request failed%s%s\n", b.first_error[0] ? ": " : "", b.first_error);
out:
    free(b.samples);
    rouse_buf_fini(&b.body);
    return rc;
}

int cli_bench_main(int argc, char **argv)
{
    cli_client c;
    int rc = cli_client_init(&c, "bench", cli_bench_usage, &argc, argv);
    if (rc) return rc;
    rc = bench_run(&c, argc, argv);
    cli_client_fini(&c);
    return rc;
}
