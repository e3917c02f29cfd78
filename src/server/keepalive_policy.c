/*
 * The keep-alive policy (see keepalive_policy.h). Pure: every function
 * here reads only its arguments.
 */
#include "server/keepalive_policy.h"

#include <math.h>
#include <string.h>

void ka_init(ka_state *s)
{
    memset(s, 0, sizeof(*s));
    s->last_minute = -1;
}

void ka_record(ka_state *s, int64_t now_ms, int64_t minute_ms)
{
    if (minute_ms <= 0) minute_ms = KA_MINUTE_MS;
    int64_t m = now_ms >= 0 ? now_ms / minute_ms : 0;
    if (s->last_minute >= 0 && m > s->last_minute) {
        int64_t idle = m - s->last_minute - 1; /* whole minutes without a request */
        if (idle < KA_BINS)
            s->bins[idle]++;
        else
            s->n_oob++;
        s->n++;
    }
    if (s->calls++ == 0) s->first_ms = now_ms;
    if (m > s->last_minute) s->last_minute = m;
    if (now_ms > s->last_ms) s->last_ms = now_ms;
}

/* The bin holding the pct-th percentile of the n_in in-bounds idle times
 * (the smallest bin whose running count reaches ceil(pct% of n_in)). */
static int percentile_bin(const ka_state *s, uint32_t n_in, int pct)
{
    uint64_t rank = ((uint64_t)n_in * (uint64_t)pct + 99) / 100;
    if (rank == 0) rank = 1;
    uint64_t cum = 0;
    for (int k = 0; k < KA_BINS; k++) {
        cum += s->bins[k];
        if (cum >= rank) return k;
    }
    return KA_BINS - 1;
}

/* The coefficient of variation of the KA_BINS bin counts. */
static double bins_cv(const ka_state *s, uint32_t n_in)
{
    if (n_in == 0) return 0.0;
    double mean = (double)n_in / KA_BINS, var = 0.0;
    for (int k = 0; k < KA_BINS; k++) {
        double d = (double)s->bins[k] - mean;
        var += d * d;
    }
    return sqrt(var / KA_BINS) / mean;
}

/* The in-bounds idle times that arrive before x ms after the end of the
 * last active minute, an idle time of k minutes arriving evenly within
 * [k, k + 1) minutes (fractions of a bin count in proportion); cum[k] is
 * the count of bins 0..k-1. */
static double mass_before(const ka_state *s, const double *cum, int64_t minute_ms, int64_t x)
{
    if (x <= 0) return 0.0;
    int64_t k = x / minute_ms;
    if (k >= KA_BINS) return cum[KA_BINS];
    return cum[k] + (double)s->bins[k] * (double)(x - k * minute_ms) / (double)minute_ms;
}

/* template_ttl_ms caps the window's length: of the ttl-long windows inside
 * [*prewarm, *keep], the one that catches the most idle times (the middle
 * one when several catch as many), so that the cap bounds the memory a
 * function holds per idle time without leaving the margins (10 % of an idle
 * time of two hours is 12 minutes) to eat the window. The catch is
 * piecewise linear in the window's start, so only starts and ends on bin
 * edges, and the range's ends, need trying. */
static void place_capped(const ka_state *s, uint32_t n_in, int64_t minute_ms, int64_t ttl,
                         int64_t *prewarm, int64_t *keep)
{
    if (ttl == 0) { /* no window at all */
        *keep = *prewarm;
        return;
    }
    int64_t lo = *prewarm, hi = *keep - ttl; /* the window's start, lo..hi */
    double cum[KA_BINS + 1];
    cum[0] = 0.0;
    for (int k = 0; k < KA_BINS; k++)
        cum[k + 1] = cum[k] + s->bins[k];
    int64_t starts[2 * (KA_BINS + 1) + 2];
    int n_starts = 0;
    starts[n_starts++] = lo;
    starts[n_starts++] = hi;
    for (int e = 0; e <= KA_BINS; e++) {
        starts[n_starts++] = (int64_t)e * minute_ms;
        starts[n_starts++] = (int64_t)e * minute_ms - ttl;
    }
    double best = -1.0, eps = 1e-9 * (double)(n_in + 1);
    int64_t first = lo, last = lo;
    for (int i = 0; i < n_starts; i++) {
        int64_t start = starts[i];
        if (start < lo || start > hi) continue;
        double c =
            mass_before(s, cum, minute_ms, start + ttl) - mass_before(s, cum, minute_ms, start);
        if (c > best + eps) {
            best = c;
            first = last = start;
        } else if (c > best - eps) {
            if (start < first) first = start;
            if (start > last) last = start;
        }
    }
    int64_t mid = first + (last - first) / 2;
    double c = mass_before(s, cum, minute_ms, mid + ttl) - mass_before(s, cum, minute_ms, mid);
    int64_t start = c > best - eps ? mid : first;
    *prewarm = start;
    *keep = start + ttl;
}

void ka_windows_of(const ka_state *s, int64_t minute_ms, int64_t ttl_ms, ka_windows *out)
{
    if (minute_ms <= 0) minute_ms = KA_MINUTE_MS;
    if (ttl_ms < 0) ttl_ms = 0;
    memset(out, 0, sizeof(*out));
    int64_t ttl = (int64_t)((double)ttl_ms * (double)minute_ms / (double)KA_MINUTE_MS);
    uint32_t n_in = s->n - s->n_oob;
    out->n = s->n;
    out->cv = bins_cv(s, n_in);
    /* Fixed unless the histogram is representative. */
    out->kind = KA_FIXED_FEW;
    out->from_ms = s->last_minute >= 0 ? s->last_ms : 0;
    out->keep_ms = ttl;
    if (s->n < KA_MIN_SAMPLES) return;
    /* Percentiles over every idle time, the out-of-bounds ones last: when
     * even the head lies beyond 4 hours, nothing is worth keeping. */
    uint64_t head_rank = ((uint64_t)s->n * KA_HEAD_PCT + 99) / 100;
    int64_t from = (s->last_minute + 1) * minute_ms; /* the end of the last active minute */
    if (head_rank > n_in) {
        out->kind = KA_NONE;
        out->from_ms = from;
        out->keep_ms = 0;
        return;
    }
    if (out->cv + 1e-9 < KA_MIN_CV) { /* (exactly KA_MIN_CV passes despite rounding) */
        out->kind = KA_FIXED_FLAT;
        return;
    }
    /* Idle times beyond the histogram are cold starts under any window it
     * could give: the windows cover those it can place. */
    int head = percentile_bin(s, n_in, KA_HEAD_PCT);
    int tail = percentile_bin(s, n_in, KA_TAIL_PCT);
    int64_t prewarm = (int64_t)head * minute_ms * (100 - KA_MARGIN_PCT) / 100;
    int64_t keep = ((int64_t)tail + 1) * minute_ms * (100 + KA_MARGIN_PCT) / 100;
    if (keep - prewarm > ttl) {
        place_capped(s, n_in, minute_ms, ttl, &prewarm, &keep);
        out->capped = true;
    }
    out->kind = KA_LEARNED;
    out->from_ms = from;
    out->prewarm_ms = prewarm;
    out->keep_ms = keep;
}

/*
 * The priced window: of every window [a, b + 1) minutes after the end of
 * the last active minute (pre-warm at a, keep until b + 1; a <= b whole
 * bins), and of no window at all, the one whose cost over the histogram's
 * idle times is least, a cold start costing price minutes of memory-time:
 *   an idle time in bin k < a: cold, nothing held;
 *   a <= k <= b: caught, held k + 1/2 - a minutes (mid-bin on average);
 *   k > b, or out of bounds: cold, held b + 1 - a minutes.
 * The cost is A(a) + B(b) with
 *   A(a) = price C(<a) - a N(>=a) - S(<a),  B(b) = S(<=b) + N(>b) (b + 1 + price),
 * C and N counting idle times (N with the out-of-bounds ones), S summing
 * (k + 1/2) over them, so a pass over b with the least A(a <= b) so far
 * finds the best window in KA_BINS steps.
 */
static void priced_window(const ka_state *s, double price, int *a_out, int *b_out)
{
    if (!(price > 0.0)) price = 0.0;
    double n_all = (double)s->n;
    double best = price * n_all; /* no window: every idle time cold, nothing held */
    int best_a = 0, best_b = -1;
    double below = 0.0, s_below = 0.0; /* C(<x), S(<x) as x moves up */
    double min_a = INFINITY;
    int arg_a = 0;
    for (int b = 0; b < KA_BINS; b++) {
        /* A(b): a = b joins the candidates. */
        double a_cost = price * below - (double)b * (n_all - below) - s_below;
        if (a_cost <= min_a) {
            min_a = a_cost;
            arg_a = b;
        }
        below += s->bins[b];
        s_below += (double)s->bins[b] * ((double)b + 0.5);
        double b_cost = s_below + (n_all - below) * ((double)b + 1.0 + price);
        if (min_a + b_cost < best - 1e-9) {
            best = min_a + b_cost;
            best_a = arg_a;
            best_b = b;
        }
    }
    *a_out = best_a;
    *b_out = best_b;
}

static void priced(const ka_state *s, int64_t minute_ms, double price, ka_kind kind,
                   ka_windows *out)
{
    int a, b;
    priced_window(s, price, &a, &b);
    out->kind = kind;
    out->from_ms = (s->last_minute + 1) * minute_ms;
    out->prewarm_ms = b < 0 ? 0 : (int64_t)a * minute_ms;
    out->keep_ms = b < 0 ? 0 : ((int64_t)b + 1) * minute_ms;
}

/* The function's mean time between requests since its first, in minutes
 * of minute_ms (calls >= 2). */
static double mean_gap(const ka_state *s, int64_t minute_ms)
{
    return (double)(s->last_ms - s->first_ms) / (double)(s->calls - 1) / (double)minute_ms;
}

void ka_windows_priced(const ka_state *s, int64_t minute_ms, int64_t ttl_ms, int64_t price_ms,
                       ka_windows *out)
{
    ka_windows_of(s, minute_ms, ttl_ms, out);
    if (s->n < KA_MIN_SAMPLES) return; /* the fixed fallback, as learned */
    /* Minutes of 60 s are policy minutes here, as template_ttl_ms. */
    priced(s, minute_ms > 0 ? minute_ms : KA_MINUTE_MS, (double)price_ms / (double)KA_MINUTE_MS,
           KA_PRICED, out);
}

void ka_windows_priced_share(const ka_state *s, int64_t minute_ms, int64_t ttl_ms, double gaps,
                             ka_windows *out)
{
    ka_windows_of(s, minute_ms, ttl_ms, out);
    if (s->n < KA_MIN_SAMPLES || s->calls < 2) return; /* the fixed fallback, as learned */
    if (minute_ms <= 0) minute_ms = KA_MINUTE_MS;
    priced(s, minute_ms, gaps * mean_gap(s, minute_ms), KA_PRICED_SHARE, out);
}

void ka_windows_learned(const ka_state *s, int64_t minute_ms, int64_t ttl_ms, bool ttl_caps,
                        double gaps, ka_windows *out)
{
    if (minute_ms <= 0) minute_ms = KA_MINUTE_MS;
    if (ttl_ms < 0) ttl_ms = 0;
    memset(out, 0, sizeof(*out));
    out->n = s->n;
    out->cv = bins_cv(s, s->n - s->n_oob);
    out->from_ms = s->last_minute >= 0 ? s->last_ms : 0;
    int64_t ttl = (int64_t)((double)ttl_ms * (double)minute_ms / (double)KA_MINUTE_MS);
    out->keep_ms = ttl;
    /* Representative: enough idle times, and a histogram that is not flat
     * (one with none in bounds has a CV of 0: flat). */
    if (s->n < KA_MIN_SAMPLES || s->calls < 2) {
        out->kind = KA_FIXED_FEW;
        return;
    }
    if (out->cv + 1e-9 < KA_MIN_CV) {
        out->kind = KA_FIXED_FLAT;
        return;
    }
    int a, b;
    priced_window(s, gaps * mean_gap(s, minute_ms), &a, &b);
    out->from_ms = (s->last_minute + 1) * minute_ms;
    if (b < 0) {
        out->kind = KA_NONE;
        out->keep_ms = 0;
        return;
    }
    out->kind = KA_LEARNED;
    out->prewarm_ms = (int64_t)a * minute_ms * (100 - KA_MARGIN_PCT) / 100;
    out->keep_ms = ((int64_t)b + 1) * minute_ms * (100 + KA_MARGIN_PCT) / 100;
    /* The cap the config set: the ttl-long part of the window that catches
     * the most idle times. */
    if (ttl_caps && out->keep_ms - out->prewarm_ms > ttl) {
        place_capped(s, s->n - s->n_oob, minute_ms, ttl, &out->prewarm_ms, &out->keep_ms);
        out->capped = true;
    }
}

bool ka_want_loaded(const ka_windows *w, int64_t now_ms, int64_t *next_change_ms)
{
    int64_t on = w->from_ms + w->prewarm_ms, off = w->from_ms + w->keep_ms;
    bool want;
    int64_t next = INT64_MAX;
    if (w->prewarm_ms == 0 || w->keep_ms <= w->prewarm_ms) {
        /* Loaded straight through: to the end of the window, or of the
         * active minute when the window is empty. */
        int64_t end = w->keep_ms > w->prewarm_ms ? off : w->from_ms;
        want = now_ms < end;
        if (want) next = end;
    } else if (now_ms < w->from_ms) {
        want = true;
        next = w->from_ms;
    } else if (now_ms < on) {
        want = false;
        next = on;
    } else {
        want = now_ms < off;
        if (want) next = off;
    }
    if (next_change_ms) *next_change_ms = next;
    return want;
}

const char *ka_kind_name(ka_kind k)
{
    switch (k) {
    case KA_FIXED_FEW:
        return "fixed-few-samples";
    case KA_FIXED_FLAT:
        return "fixed-flat-histogram";
    case KA_LEARNED:
        return "learned";
    case KA_NONE:
        return "none";
    case KA_PRICED:
        return "priced";
    case KA_PRICED_SHARE:
        return "priced-share";
    default:
        return "fixed";
    }
}
