/*
 * The keep-alive replay simulator: generates a synthetic trace
 * (keepalive_trace.h) and replays every function through the keep-alive
 * policies with no processes (keepalive_replay.h), then prints a Markdown
 * table of cold-start percentages (over all calls, and the 50th, 75th and
 * 90th percentile function) and wasted memory-time (template-hours kept
 * loaded) for: no keep-alive, the fixed TTL (--ttl-min, 10 minutes), and
 * serve's learned rule (ka_windows_learned: the histogram's window priced
 * at K mean gaps between calls per cold start, 10 % margins, the fixed TTL
 * as its fallback) at each --learned-gaps K (up to four rows; default:
 * KA_SHARE_GAPS, serve's), the paper's percentiles as first built
 * (ka_windows_of) with template_ttl_ms (the cap on their window) of each
 * --percentile-ttl-min M, the priced window (ka_windows_priced: one price
 * per cold start avoided in memory-time, no margins or shape test) at each
 * --priced-min M, and the same priced per share of a function's calls
 * (ka_windows_priced_share) at each --share-gaps K (up to four rows each;
 * none by default).
 *
 *   keepalive_sim [--seed N] [--functions N] [--days D] [--ttl-min M]
 *                 [--learned-gaps K]... [--percentile-ttl-min M]...
 *                 [--priced-min M]... [--share-gaps K]...
 *   keepalive_sim --live URL --body FILE [--minute-ms MS] [--seed N]
 *                 [--functions N] [--days D] [--prefix NAME]
 *
 * --live replays the same kind of trace against a running `rouse serve`
 * whose keep-alive clock is scaled (`rouse serve --keepalive-minute-ms
 * MS`): every call's time is compressed by MS / 60000, each function of
 * the trace is the deployed function PREFIX<i> (deployed beforehand with
 * idle_timeout_ms 0, so that every call needs an instance and a call finds
 * the template or starts it; keep_alive "learned", template_ttl_ms the
 * --ttl-min), calls go out one at a time at their compressed times from a
 * minute's edge of serve's clock (CLOCK_MONOTONIC, the same on one
 * machine; POST /v2/models/PREFIX<i>/infer with FILE's JSON), and the
 * program prints how many calls serve started from zero (Rouse-Start:
 * zero) next to the simulator's prediction for the planned times, and
 * next to its prediction for the times the calls really went out (a
 * loaded machine sends late; those are the times serve learned from),
 * with how many calls agree one by one.
 *
 * The output of a seed is the same on every run (the determinism test
 * compares two).
 */
#include <stdbool.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/http_client.h"
#include "keepalive_bound.h"
#include "keepalive_replay.h"
#include "keepalive_trace.h"
#include "server/keepalive_policy.h"

typedef struct opts {
    uint64_t seed;
    kt_params p;
    double ttl_min;
    double learned_gaps[4]; /* the learned rows' price, mean gaps between calls */
    int n_learned;
    double pct_ttl_min[4]; /* the percentile rows' template_ttl_ms (their cap), minutes */
    int n_pct;
    double price_min[4]; /* the priced rows' price per cold start avoided, minutes */
    int n_priced;
    double share_gaps[4]; /* the priced-per-share rows' price, mean gaps between calls */
    int n_share;
    const char *live, *body, *prefix;
    int64_t minute_ms;
} opts;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The pct-th percentile of v[0..n) (sorted in place; nearest rank). */
static double percentile(double *v, int n, int pct)
{
    if (n == 0) return 0.0;
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    int rank = (n * pct + 99) / 100;
    return v[rank > 0 ? rank - 1 : 0];
}

typedef struct row {
    const char *name;
    kr_policy policy;
    int64_t ttl_ms;
    double price; /* priced: ms per cold start; priced per share: mean gaps */
} row;

/* Below the table: the hindsight floor of the p75 function at each row's
 * memory-time (keepalive_bound.h), what no one-window-per-function policy
 * can beat with that much memory-time: with no other limit, and with no
 * function colder than under the fixed TTL. */
static int print_bound(const kt_trace *tr, const row *rows, const double *row_h, size_t n_rows)
{
    kb_function *fn = calloc((size_t)tr->n_fn, sizeof(*fn));
    size_t *cap = calloc((size_t)tr->n_fn + 1, sizeof(*cap));
    int rc = fn && cap ? 0 : -1;
    for (int i = 0; rc == 0 && i < tr->n_fn; i++) {
        rc = kb_function_init(&fn[i], tr->fn[i].t_ms, tr->fn[i].n, tr->end_ms);
        kr_result res;
        kr_replay(tr->fn[i].t_ms, tr->fn[i].n, tr->end_ms, KR_FIXED, rows[1].ttl_ms, 0, 60000, &res,
                  NULL);
        cap[i] = res.cold;
    }
    if (rc == 0) {
        printf("\nhindsight floor of the p75 function: each function's best pre-warm/keep window "
               "chosen knowing all its calls, the memory-time shared out among the functions as "
               "well as possible; without a limit per function, and with none colder than under "
               "the fixed TTL:\n\n| with the memory-time of | template-h | p75 at least | "
               "template-h it takes | p75 at least, none colder than fixed | template-h it "
               "takes |\n|---|---|---|---|---|---|\n");
        for (size_t r = 1; r < n_rows; r++) {
            double budget = row_h[r] * 3600000.0, used = 0.0, used_cap = 0.0;
            double c = kb_p75_floor(fn, tr->n_fn, NULL, budget, &used);
            double cc = kb_p75_floor(fn, tr->n_fn, cap, budget, &used_cap);
            if (isnan(c) || isnan(cc)) {
                rc = -1;
                break;
            }
            char capped[32];
            if (isinf(cc))
                snprintf(capped, sizeof(capped), "out of reach");
            else
                snprintf(capped, sizeof(capped), "%.1f %%", 100.0 * cc);
            printf("| %s | %.0f | %.1f %% | %.0f | %s | %.0f |\n", rows[r].name, row_h[r],
                   100.0 * c, used / 3600000.0, capped, used_cap / 3600000.0);
        }
    }
    for (int i = 0; fn && i < tr->n_fn; i++)
        kb_function_free(&fn[i]);
    free(fn);
    free(cap);
    if (rc < 0) fprintf(stderr, "keepalive_sim: out of memory\n");
    return rc < 0 ? 1 : 0;
}

static int simulate(const opts *o)
{
    kt_trace tr;
    if (kt_generate(&o->p, o->seed, &tr) < 0) {
        fprintf(stderr, "keepalive_sim: out of memory\n");
        return 1;
    }
    int64_t ttl = (int64_t)(o->ttl_min * 60000.0);
    row rows[2 + 16] = {
        {"no keep-alive", KR_FIXED, 0, 0},
        {"fixed TTL", KR_FIXED, ttl, 0},
    };
    char names[16][64];
    size_t n_rows = 2;
    for (int i = 0; i < o->n_learned; i++) {
        snprintf(names[12 + i], sizeof(names[12 + i]), "learned, %g mean gaps per cold start%s",
                 o->learned_gaps[i], o->learned_gaps[i] == KA_SHARE_GAPS ? " (serve's)" : "");
        rows[n_rows++] = (row){names[12 + i], KR_LEARNED, ttl, o->learned_gaps[i]};
    }
    for (int i = 0; i < o->n_pct; i++) {
        snprintf(names[i], sizeof(names[i]), "paper's percentiles, template_ttl_ms %.0f min",
                 o->pct_ttl_min[i]);
        rows[n_rows++] = (row){names[i], KR_PERCENTILE, (int64_t)(o->pct_ttl_min[i] * 60000.0), 0};
    }
    for (int i = 0; i < o->n_priced; i++) {
        snprintf(names[4 + i], sizeof(names[4 + i]), "priced, %.0f min per cold start",
                 o->price_min[i]);
        rows[n_rows++] = (row){names[4 + i], KR_PRICED, ttl, o->price_min[i] * 60000.0};
    }
    for (int i = 0; i < o->n_share; i++) {
        snprintf(names[8 + i], sizeof(names[8 + i]), "priced per share, %g mean gaps",
                 o->share_gaps[i]);
        rows[n_rows++] = (row){names[8 + i], KR_PRICED_SHARE, ttl, o->share_gaps[i]};
    }
    size_t n_calls = 0;
    int active = 0, per_class[KT_N_CLASSES] = {0};
    for (int i = 0; i < tr.n_fn; i++) {
        n_calls += tr.fn[i].n;
        if (tr.fn[i].n > 0) active++;
        per_class[tr.fn[i].cls]++;
    }
    printf("keep-alive replay: seed %llu, %d functions (%d called), %.1f days, %zu calls; "
           "classes: %d periodic, %d bursty, %d diurnal, %d rare; fixed TTL %.0f min\n\n",
           (unsigned long long)o->seed, tr.n_fn, active, o->p.days, n_calls, per_class[KT_PERIODIC],
           per_class[KT_BURSTY], per_class[KT_DIURNAL], per_class[KT_RARE], o->ttl_min);
    printf("| policy | cold starts (all calls) | p50 function | p75 function | p90 function | "
           "wasted memory-time (template-h) | vs fixed | pre-warms |\n");
    printf("|---|---|---|---|---|---|---|---|\n");
    double *pct = calloc((size_t)tr.n_fn + 1, sizeof(*pct));
    double fixed_h = 0.0, row_h[2 + 16] = {0};
    double class_cold[2 + 16][KT_N_CLASSES] = {{0}};
    for (size_t r = 0; pct && r < n_rows; r++) {
        size_t cold = 0, prewarms = 0;
        int64_t loaded = 0;
        int k = 0;
        size_t cc[KT_N_CLASSES] = {0}, cn[KT_N_CLASSES] = {0};
        for (int i = 0; i < tr.n_fn; i++) {
            const kt_function *f = &tr.fn[i];
            if (f->n == 0) continue;
            kr_result res;
            kr_replay(f->t_ms, f->n, tr.end_ms, rows[r].policy, rows[r].ttl_ms, rows[r].price,
                      60000, &res, NULL);
            cold += res.cold;
            prewarms += res.prewarms;
            loaded += res.loaded_ms;
            cc[f->cls] += res.cold;
            cn[f->cls] += res.calls;
            pct[k++] = 100.0 * (double)res.cold / (double)res.calls;
        }
        for (int c = 0; c < KT_N_CLASSES; c++)
            class_cold[r][c] = cn[c] ? 100.0 * (double)cc[c] / (double)cn[c] : 0.0;
        double hours = (double)loaded / 3600000.0;
        if (r == 1) fixed_h = hours;
        row_h[r] = hours;
        double p50 = percentile(pct, k, 50), p75 = percentile(pct, k, 75),
               p90 = percentile(pct, k, 90);
        char vs[32];
        if (r >= 1 && fixed_h > 0)
            snprintf(vs, sizeof(vs), "%.2f", hours / fixed_h);
        else
            snprintf(vs, sizeof(vs), "%s", r == 0 ? "0" : "n/a");
        printf("| %s | %.2f %% | %.1f %% | %.1f %% | %.1f %% | %.0f | %s | %zu |\n", rows[r].name,
               n_calls ? 100.0 * (double)cold / (double)n_calls : 0.0, p50, p75, p90, hours, vs,
               prewarms);
    }
    printf("\ncold starts by class (%% of the class's calls):\n\n| policy |");
    for (int c = 0; c < KT_N_CLASSES; c++)
        printf(" %s |", kt_class_name((kt_class)c));
    printf("\n|---|---|---|---|---|\n");
    for (size_t r = 0; r < n_rows; r++) {
        printf("| %s |", rows[r].name);
        for (int c = 0; c < KT_N_CLASSES; c++)
            printf(" %.1f %% |", class_cold[r][c]);
        printf("\n");
    }
    free(pct);
    int rc = print_bound(&tr, rows, row_h, n_rows);
    kt_free(&tr);
    return rc;
}

/* --- live: the compressed trace against a real serve ------------------------ */

typedef struct call_ref {
    int64_t t_ms; /* compressed */
    int fn;
    size_t i;
} call_ref;

static int cmp_call(const void *a, const void *b)
{
    const call_ref *x = a, *y = b;
    if (x->t_ms != y->t_ms) return x->t_ms < y->t_ms ? -1 : 1;
    return x->fn - y->fn;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? 2 * cap : 4096;
            char *nb = realloc(buf, cap);
            if (!nb) break;
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        if (got == 0) break;
        n += got;
    }
    fclose(f);
    *len = n;
    return buf;
}

/* What serve's "learned" does with calls t_ms[0..n) (ms on serve's clock),
 * at the scaled minute. */
static void live_replay(const int64_t *t_ms, size_t n, int64_t end_ms, const opts *o,
                        kr_result *res, unsigned char *cold)
{
    kr_replay(t_ms, n, end_ms, KR_LEARNED, (int64_t)(o->ttl_min * 60000.0), KA_SHARE_GAPS,
              o->minute_ms, res, cold);
}

static int live(const opts *o)
{
    http_target tgt;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    if (http_target_parse(o->live, &tgt, &eb) < 0) {
        fprintf(stderr, "keepalive_sim: %s\n", eb.msg);
        return 1;
    }
    size_t body_len = 0;
    char *body = o->body ? read_file(o->body, &body_len) : NULL;
    if (!body) {
        fprintf(stderr, "keepalive_sim: --live needs --body FILE (a JSON infer request)\n");
        return 1;
    }
    kt_trace tr;
    if (kt_generate(&o->p, o->seed, &tr) < 0) return 1;
    /* Compress the trace, then predict on the compressed times (what serve
     * sees, to the ms). */
    size_t total = 0;
    for (int i = 0; i < tr.n_fn; i++) {
        for (size_t k = 0; k < tr.fn[i].n; k++)
            tr.fn[i].t_ms[k] = tr.fn[i].t_ms[k] * o->minute_ms / 60000;
        total += tr.fn[i].n;
    }
    int64_t end = tr.end_ms * o->minute_ms / 60000;
    call_ref *calls = calloc(total + 1, sizeof(*calls));
    unsigned char **pred = calloc((size_t)tr.n_fn, sizeof(*pred));
    size_t predicted = 0, m = 0;
    for (int i = 0; calls && pred && i < tr.n_fn; i++) {
        pred[i] = calloc(tr.fn[i].n + 1, 1);
        kr_result res;
        live_replay(tr.fn[i].t_ms, tr.fn[i].n, end, o, &res, pred[i]);
        predicted += res.cold;
        for (size_t k = 0; k < tr.fn[i].n; k++)
            calls[m++] = (call_ref){tr.fn[i].t_ms[k], i, k};
    }
    if (!calls || !pred) {
        fprintf(stderr, "keepalive_sim: out of memory\n");
        return 1;
    }
    qsort(calls, m, sizeof(*calls), cmp_call);
    printf("live: %zu calls of %d functions over %.1f s (minute = %lld ms); predicted from zero: "
           "%zu\n",
           m, tr.n_fn, (double)end / 1000.0, (long long)o->minute_ms, predicted);
    fflush(stdout);
    /* Serve counts minutes on the same clock (CLOCK_MONOTONIC, in ms): the
     * trace starts on a minute's edge so that its minutes are serve's. */
    int64_t *sent = calloc(m + 1, sizeof(*sent));
    unsigned char *got = calloc(m + 1, 1);
    if (!sent || !got) {
        fprintf(stderr, "keepalive_sim: out of memory\n");
        return 1;
    }
    size_t zero = 0, agree = 0, failed = 0, late = 0;
    int64_t t0 = (mono_ms() / o->minute_ms + 2) * o->minute_ms;
    for (size_t c = 0; c < m; c++) {
        int64_t due = t0 + calls[c].t_ms;
        for (int64_t now = mono_ms(); now < due; now = mono_ms()) {
            struct timespec ts = {(due - now) / 1000, ((due - now) % 1000) * 1000000};
            nanosleep(&ts, NULL);
        }
        sent[c] = mono_ms();
        if (sent[c] > due + o->minute_ms / 10) late++;
        char path[128];
        snprintf(path, sizeof(path), "/v2/models/%s%d/infer", o->prefix, calls[c].fn);
        static const char *const hdr[] = {"Content-Type: application/json", NULL};
        http_response r;
        http_response_init(&r);
        rouse_errbuf_clear(&eb);
        int rc = http_request(&tgt, "POST", path, hdr, body, body_len, 60000, &r, &eb);
        bool is_zero = rc == 0 && strcmp(r.rouse_start, "zero") == 0;
        if (rc < 0 || r.status != 200) {
            failed++;
            fprintf(stderr, "keepalive_sim: %s: %s\n", path,
                    rc < 0 ? eb.msg : (const char *)r.body.data);
        }
        zero += is_zero;
        got[c] = is_zero;
        agree += is_zero == (pred[calls[c].fn][calls[c].i] != 0);
        http_response_fini(&r);
    }
    /* The prediction again, from the times the calls really went out: a
     * call that went late (a loaded machine) may miss a window the planned
     * time would have hit, and the policy learns from the late times. */
    size_t as_sent = 0, agree_sent = 0;
    for (int i = 0; i < tr.n_fn; i++) {
        size_t n = 0;
        for (size_t c = 0; c < m; c++)
            if (calls[c].fn == i) tr.fn[i].t_ms[n++] = sent[c]; /* ascending: sent in order */
        kr_result res;
        live_replay(tr.fn[i].t_ms, n, sent[m - 1] + 1, o, &res, pred[i]);
        as_sent += res.cold;
        n = 0;
        for (size_t c = 0; c < m; c++)
            if (calls[c].fn == i) agree_sent += got[c] == (pred[i][n++] != 0);
    }
    printf("live: from zero counted %zu, predicted %zu; %zu of %zu calls agree call by call; "
           "%zu failed; %zu sent later than a tenth of a minute\n",
           zero, predicted, agree, m, failed, late);
    printf("live: replayed at the times the calls went out, predicted %zu; %zu of %zu calls "
           "agree call by call\n",
           as_sent, agree_sent, m);
    free(sent);
    free(got);
    for (int i = 0; pred && i < tr.n_fn; i++)
        free(pred[i]);
    free(pred);
    free(calls);
    free(body);
    kt_free(&tr);
    return failed ? 1 : 0;
}

int main(int argc, char **argv)
{
    opts o = {
        .seed = 1, .p = KT_DEFAULT_PARAMS, .ttl_min = 10.0, .prefix = "ka", .minute_ms = 60000};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "keepalive_sim: %s needs a value\n", a);
            return 2;
        }
        i++;
        if (strcmp(a, "--seed") == 0)
            o.seed = strtoull(v, NULL, 10);
        else if (strcmp(a, "--functions") == 0)
            o.p.n_functions = atoi(v);
        else if (strcmp(a, "--days") == 0)
            o.p.days = atof(v);
        else if (strcmp(a, "--ttl-min") == 0)
            o.ttl_min = atof(v);
        else if (strcmp(a, "--learned-gaps") == 0 && o.n_learned < 4)
            o.learned_gaps[o.n_learned++] = atof(v);
        else if (strcmp(a, "--percentile-ttl-min") == 0 && o.n_pct < 4)
            o.pct_ttl_min[o.n_pct++] = atof(v);
        else if (strcmp(a, "--priced-min") == 0 && o.n_priced < 4)
            o.price_min[o.n_priced++] = atof(v);
        else if (strcmp(a, "--share-gaps") == 0 && o.n_share < 4)
            o.share_gaps[o.n_share++] = atof(v);
        else if (strcmp(a, "--live") == 0)
            o.live = v;
        else if (strcmp(a, "--body") == 0)
            o.body = v;
        else if (strcmp(a, "--prefix") == 0)
            o.prefix = v;
        else if (strcmp(a, "--minute-ms") == 0)
            o.minute_ms = atoll(v);
        else {
            fprintf(stderr, "keepalive_sim: unknown option %s\n", a);
            return 2;
        }
    }
    if (o.p.n_functions < 1 || o.p.n_functions > 100000 || o.p.days <= 0 || o.p.days > 365 ||
        o.minute_ms < 1 || o.ttl_min < 0) {
        fprintf(stderr, "keepalive_sim: --functions 1..100000, --days (0, 365], --minute-ms >= 1, "
                        "--ttl-min >= 0\n");
        return 2;
    }
    if (o.n_learned == 0) o.learned_gaps[o.n_learned++] = KA_SHARE_GAPS;
    return o.live ? live(&o) : simulate(&o);
}
