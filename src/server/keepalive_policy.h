/*
 * Keep-alive policy of a function's template (scaling.keep_alive): when to
 * keep it loaded between requests, when to drop it, and when to start it
 * again ahead of the next request. A pure module over a plain state struct
 * and times passed in (no clock, no I/O), like pool_policy; pool_sched.c
 * applies it, bench/keepalive_sim.c replays traces through it, and
 * tests/unit/server/test_keepalive.c checks it from tables.
 *
 * "learned" (ka_windows_learned) keeps the frame of the hybrid-histogram
 * policy of Shahrad et al., "Serverless in the Wild" (USENIX ATC 2020), and
 * chooses the window by price instead of the paper's percentiles:
 * - Time is cut into minutes (KA_MINUTE_MS, or a scaled minute for tests).
 *   A minute with a request is active; each time a request opens a new
 *   active minute, the idle minutes since the previous active one are one
 *   idle time, counted in a histogram of 1-minute bins over 4 hours
 *   (KA_BINS; idle times of 4 hours or more are counted apart, "out of
 *   bounds"). Requests within one minute add nothing.
 * - The histogram is representative, and used, only with at least
 *   KA_MIN_SAMPLES idle times and a coefficient of variation of its bin
 *   counts of at least KA_MIN_CV (a flat histogram predicts nothing; one
 *   whose idle times sit in a few bins has a CV far above it: all in one
 *   bin gives sqrt(KA_BINS - 1), about 15.5; spread evenly over k bins
 *   gives sqrt(KA_BINS / k - 1), so KA_MIN_CV = 2 accepts up to 48 bins; a
 *   histogram with no idle time in bounds has a CV of 0). Otherwise the
 *   fixed policy applies: keep for template_ttl_ms after the last request.
 * - The window: of every pre-warm/keep window on bin edges, and of keeping
 *   nothing past the active minute, the one with the least memory-time
 *   plus a price per cold start over the idle times seen, a cold start
 *   priced at KA_SHARE_GAPS times the function's mean time between
 *   requests (a price per share of its calls: the same for every function
 *   per percentage point of its calls that start cold), then widened by
 *   the paper's 10 % margins (pre-warm at 0.9 x its start, keep until 1.1 x
 *   its end; from the end of the last active minute). The template stays
 *   loaded through the active minute, is dropped at its end when the
 *   pre-warm is not zero, is started again at the pre-warm time and
 *   dropped at the end of the window. A window that reaches the
 *   histogram's end runs 10 % past it, to 264 minutes, where the idle times
 *   of a function called every 4 hours fall that the histogram counts out
 *   of bounds. The price bounds the window (at most 264 minutes per idle
 *   time); template_ttl_ms is the fallback's TTL, and caps the window too
 *   when the function's config sets it (scaling.template_ttl_ms named, or
 *   scaling.template_ttl_caps true): of the ttl-long windows inside the
 *   learned one, the one that catches the most idle times is kept, as
 *   ka_windows_of places its capped window. The default's 10 minutes do
 *   not cap (they would leave the functions called every hour or more
 *   cold on most calls).
 * ka_windows_of is the paper's rule as first built (5th/99th percentiles,
 * the window capped by template_ttl_ms), kept for the simulator's
 * comparison (bench/keepalive_sim.c), as are two priced variants without
 * margins or shape test (ka_windows_priced, ka_windows_priced_share).
 * "fixed" is the fixed policy alone (pool_should_stop_template).
 */
#ifndef ROUSE_SERVER_KEEPALIVE_POLICY_H
#define ROUSE_SERVER_KEEPALIVE_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#define KA_MINUTE_MS 60000LL /* a policy minute, unless scaled (--keepalive-minute-ms) */
#define KA_BINS 240          /* 1-minute bins: 4 hours */
#define KA_HEAD_PCT 5
#define KA_TAIL_PCT 99
#define KA_MARGIN_PCT 10
#define KA_MIN_SAMPLES 10
#define KA_MIN_CV 2.0
#define KA_SHARE_GAPS 3.0 /* learned: a cold start's price, in mean gaps between requests */

/* What one function version has seen (owned by its pool; plain data). */
typedef struct ka_state {
    uint32_t bins[KA_BINS]; /* bins[k]: idle times of k whole minutes */
    uint32_t n_oob;         /* idle times of KA_BINS minutes or more */
    uint32_t n;             /* every idle time counted (bins and out of bounds) */
    int64_t last_minute;    /* the last active minute, -1 before the first request */
    int64_t last_ms;        /* the last request's time */
    int64_t first_ms;       /* the first request's time */
    uint64_t calls;         /* requests recorded */
} ka_state;

typedef enum ka_kind {
    KA_FIXED_FEW = 0, /* fixed: fewer than KA_MIN_SAMPLES idle times */
    KA_FIXED_FLAT,    /* fixed: coefficient of variation below KA_MIN_CV */
    KA_LEARNED,       /* the histogram's windows */
    KA_NONE,          /* nothing kept past the active minute */
    KA_PRICED,        /* the priced window (ka_windows_priced) */
    KA_PRICED_SHARE,  /* the same, priced per share of calls (ka_windows_priced_share) */
} ka_kind;

/* The windows in force after the last request, in ms of the caller's
 * clock: the template is wanted loaded from the last request until
 * from_ms, and again from from_ms + prewarm_ms until from_ms + keep_ms
 * (prewarm_ms 0: loaded straight through). */
typedef struct ka_windows {
    ka_kind kind;
    int64_t from_ms;    /* a window: the end of the last active minute; fixed: the last request */
    int64_t prewarm_ms; /* 0 for fixed and none */
    int64_t keep_ms;    /* fixed: template_ttl_ms (scaled); none: 0 */
    double cv;          /* of the histogram's bin counts (0 with no idle time) */
    uint32_t n;         /* idle times counted */
    bool capped;        /* the window was cut to template_ttl_ms */
} ka_windows;

void ka_init(ka_state *s);

/* A request arrived at now_ms (a clock that never goes back), with policy
 * minutes of minute_ms. */
void ka_record(ka_state *s, int64_t now_ms, int64_t minute_ms);

/* The learned windows after the last request (what serve's "learned"
 * runs, with gaps = KA_SHARE_GAPS): ttl_ms is template_ttl_ms, read in
 * minutes of 60 s and scaled to minute_ms like everything else, for the
 * fixed fallback, and with ttl_caps the longest the learned window may be
 * (out->capped when it cut it). Before any request: fixed from time 0.
 * KA_NONE when no window is worth its price. */
void ka_windows_learned(const ka_state *s, int64_t minute_ms, int64_t ttl_ms, bool ttl_caps,
                        double gaps, ka_windows *out);

/* The paper's percentile windows (5th/99th, 10 % margins, the window
 * capped by ttl_ms, placed where it catches the most idle times; KA_NONE
 * when even the 5th percentile is beyond the histogram), with the same
 * fallback. */
void ka_windows_of(const ka_state *s, int64_t minute_ms, int64_t ttl_ms, ka_windows *out);

/* The priced variant: the window chosen from the same histogram by what
 * it costs against what it catches, at one price for every function:
 * price_ms of template memory-time (in minutes of 60 s, scaled to
 * minute_ms) for each cold start avoided. Of all pre-warm/keep windows on
 * bin edges (and of keeping nothing past the active minute) it takes the
 * one with the least memory-time + price_ms x cold starts over the
 * idle times seen (see keepalive_policy.c), so a function's window grows
 * while a minute more of it catches idle times worth its price and no
 * further: no percentiles, no margins, no test of the histogram's shape,
 * and template_ttl_ms does not cap it (the price bounds what a function
 * holds per cold start avoided). With fewer than KA_MIN_SAMPLES idle
 * times, the fixed fallback of ka_windows_of. */
void ka_windows_priced(const ka_state *s, int64_t minute_ms, int64_t ttl_ms, int64_t price_ms,
                       ka_windows *out);

/* The priced window with a cold start priced per share of the function's
 * calls: gaps times its mean time between requests (since its first), so
 * that one price is the same for every function per percentage point of
 * its own calls that start cold, the measure the policy is judged by
 * (bench/keepalive_sim.c), whatever its rate. A burst's first call costs a
 * function with eight calls a burst an eighth of what a lone call costs one
 * called as often as it has bursts. Same fallback as ka_windows_priced. */
void ka_windows_priced_share(const ka_state *s, int64_t minute_ms, int64_t ttl_ms, double gaps,
                             ka_windows *out);

/* Whether the template should be loaded at now_ms, and (when not NULL) the
 * next time at which that answer changes, or INT64_MAX when it never does. */
bool ka_want_loaded(const ka_windows *w, int64_t now_ms, int64_t *next_change_ms);

/* "fixed", "learned-few-samples", ... for the API and logs. */
const char *ka_kind_name(ka_kind k);

#endif
