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
    if (keep - prewarm > ttl) keep = prewarm + ttl; /* template_ttl_ms caps the window */
    out->kind = KA_LEARNED;
    out->from_ms = from;
    out->prewarm_ms = prewarm;
    out->keep_ms = keep;
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
        return "none-beyond-4h";
    default:
        return "fixed";
    }
}
