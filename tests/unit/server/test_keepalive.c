/*
 * The keep-alive policy from tables: request times -> the histogram and the
 * windows it gives; windows and a time -> whether the template is wanted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>

#include "server/keepalive_policy.h"

#define MIN KA_MINUTE_MS
#define TTL (10 * MIN) /* template_ttl_ms's default */

/* Requests every `gap` ms, n of them, from `start`. */
static void periodic(ka_state *s, int64_t start, int64_t gap, int n, int64_t minute)
{
    for (int i = 0; i < n; i++)
        ka_record(s, start + i * gap, minute);
}

static void test_record(void **state)
{
    (void)state;
    ka_state s;
    ka_init(&s);
    ka_record(&s, 5 * MIN + 10, MIN); /* the first request: no idle time yet */
    assert_int_equal(s.n, 0);
    ka_record(&s, 5 * MIN + 59000, MIN); /* the same minute: nothing */
    assert_int_equal(s.n, 0);
    ka_record(&s, 6 * MIN, MIN); /* the next minute: 0 idle minutes */
    assert_int_equal(s.bins[0], 1);
    ka_record(&s, 20 * MIN + 30000, MIN); /* minutes 7..19 idle: 13 */
    assert_int_equal(s.bins[13], 1);
    ka_record(&s, 20 * MIN + 300 * MIN, MIN); /* 299 idle minutes: out of bounds */
    assert_int_equal(s.n_oob, 1);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.last_minute, 320);
    assert_int_equal(s.last_ms, 320 * MIN);
}

static void test_windows(void **state)
{
    (void)state;
    static const struct {
        const char *what;
        int64_t gap; /* between requests */
        int n;       /* requests */
        int64_t minute, ttl;
        ka_kind kind;
        int64_t prewarm, keep; /* expected, from the end of the last active minute */
    } cases[] = {
        {"no request", 0, 0, MIN, TTL, KA_FIXED_FEW, 0, TTL},
        {"nine idle times", 15 * MIN, 10, MIN, TTL, KA_FIXED_FEW, 0, TTL},
        /* 14 idle minutes every time: pre-warm at 14 x 0.9, keep to 15 x 1.1. */
        {"every 15 min", 15 * MIN, 12, MIN, TTL, KA_LEARNED, 12 * MIN + 36000, 16 * MIN + 30000},
        /* 59 x 0.9 = 53.1 to 60 x 1.1 = 66 is longer than the cap: the
         * 10 minutes inside it that catch the idle times (minute 59) start
         * anywhere in 53.1..56, the middle one is taken. */
        {"every hour", 60 * MIN, 12, MIN, TTL, KA_LEARNED, 54 * MIN + 33000, 64 * MIN + 33000},
        /* 119 x 0.9 = 107.1 to 132: cut to 107.1 + 10 the window would end
         * before minute 119; the ones that catch it start at 110..119. */
        {"every 2 hours", 120 * MIN, 12, MIN, TTL, KA_LEARNED, 114 * MIN + 30000,
         124 * MIN + 30000},
        {"every hour, ttl 0", 60 * MIN, 12, MIN, 0, KA_LEARNED, 53 * MIN + 6000, 53 * MIN + 6000},
        /* Every active minute follows another: keep through 1.1 minutes. */
        {"every 30 s", 30000, 40, MIN, TTL, KA_LEARNED, 0, 66000},
        {"every 5 hours", 300 * MIN, 12, MIN, TTL, KA_NONE, 0, 0},
        /* A scaled minute scales everything, template_ttl_ms too. */
        {"every 15 scaled min", 1500, 12, 100, TTL, KA_LEARNED, 1260, 1650},
        {"few, scaled", 1500, 3, 100, TTL, KA_FIXED_FEW, 0, 1000},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ka_state s;
        ka_init(&s);
        periodic(&s, 1000, cases[i].gap, cases[i].n, cases[i].minute);
        ka_windows w;
        ka_windows_of(&s, cases[i].minute, cases[i].ttl, &w);
        int64_t last = 1000 + (cases[i].n - 1) * cases[i].gap;
        int64_t end_of_minute = (last / cases[i].minute + 1) * cases[i].minute;
        int64_t from = cases[i].n == 0 ? 0 : w.kind == KA_FIXED_FEW ? last : end_of_minute;
        if (w.kind != cases[i].kind || w.prewarm_ms != cases[i].prewarm ||
            w.keep_ms != cases[i].keep || w.from_ms != from)
            fail_msg("%s: kind %s from %lld prewarm %lld keep %lld (want %s %lld %lld %lld)",
                     cases[i].what, ka_kind_name(w.kind), (long long)w.from_ms,
                     (long long)w.prewarm_ms, (long long)w.keep_ms, ka_kind_name(cases[i].kind),
                     (long long)from, (long long)cases[i].prewarm, (long long)cases[i].keep);
    }
}

/* Representative or not: the sample count and the coefficient of variation
 * of the bin counts. */
static void test_representative(void **state)
{
    (void)state;
    ka_state s;
    /* One idle time in each of the 240 bins: flat (CV 0). */
    ka_init(&s);
    for (int k = 0; k < KA_BINS; k++)
        s.bins[k] = 1;
    s.n = KA_BINS;
    s.last_minute = 1000;
    s.last_ms = 1000 * MIN;
    ka_windows w;
    ka_windows_of(&s, MIN, TTL, &w);
    assert_int_equal(w.kind, KA_FIXED_FLAT);
    assert_true(w.cv < 1e-9);
    assert_int_equal(w.from_ms, 1000 * MIN);
    assert_int_equal(w.keep_ms, TTL);
    /* Spread evenly over 48 bins: CV exactly 2, accepted; 49: refused. */
    for (int spread = 48; spread <= 49; spread++) {
        ka_init(&s);
        for (int k = 0; k < spread; k++)
            s.bins[k * 4] = 1;
        s.n = (uint32_t)spread;
        s.last_minute = 1000;
        s.last_ms = 1000 * MIN;
        ka_windows_of(&s, MIN, 1000 * MIN, &w);
        assert_int_equal(w.kind, spread == 48 ? KA_LEARNED : KA_FIXED_FLAT);
    }
    /* All in one bin: CV sqrt(239). */
    ka_init(&s);
    s.bins[7] = KA_MIN_SAMPLES;
    s.n = KA_MIN_SAMPLES;
    ka_windows_of(&s, MIN, TTL, &w);
    assert_int_equal(w.kind, KA_LEARNED);
    assert_true(w.cv > 15.45 && w.cv < 15.47);
    /* Out of bounds: a few do not matter (the windows cover the rest)... */
    ka_init(&s);
    s.bins[14] = 19;
    s.n_oob = 1;
    s.n = 20;
    ka_windows_of(&s, MIN, TTL, &w);
    assert_int_equal(w.kind, KA_LEARNED);
    assert_int_equal(w.prewarm_ms, 14 * MIN * 9 / 10);
    /* ...but when even the head is beyond 4 hours, nothing is kept. */
    s.bins[14] = 0;
    s.n_oob = 20;
    ka_windows_of(&s, MIN, TTL, &w);
    assert_int_equal(w.kind, KA_NONE);
    assert_int_equal(w.keep_ms, 0);
    /* 5th percentile: with 20 idle times, rank 1 (the smallest). */
    ka_init(&s);
    s.bins[2] = 1;
    s.bins[30] = 18;
    s.bins[50] = 1;
    s.n = 20;
    ka_windows_of(&s, MIN, 1000 * MIN, &w);
    assert_int_equal(w.kind, KA_LEARNED);
    assert_int_equal(w.prewarm_ms, 2 * MIN * 9 / 10);
    assert_int_equal(w.keep_ms, 51 * MIN * 11 / 10);
}

/* The capped window catches what the uncapped one would have, where the
 * cap allows: idle times spread over minutes 100..104 (jitter) and a cap of
 * 10 minutes: all caught. */
static void test_capped_placement(void **state)
{
    (void)state;
    ka_state s;
    ka_init(&s);
    for (int k = 100; k <= 104; k++)
        s.bins[k] = 4;
    s.n = 20;
    s.last_minute = 1000;
    s.last_ms = 1000 * MIN;
    ka_windows w;
    ka_windows_of(&s, MIN, TTL, &w);
    assert_int_equal(w.kind, KA_LEARNED);
    assert_int_equal(w.keep_ms - w.prewarm_ms, TTL);
    /* Minutes 100..104 lie inside the window: [100, 105) within it. */
    assert_true(w.prewarm_ms <= 100 * MIN);
    assert_true(w.keep_ms >= 105 * MIN);
    /* A cap shorter than the spread: the window lies inside the spread and
     * catches 3 minutes' worth. */
    ka_windows_of(&s, MIN, 3 * MIN, &w);
    assert_int_equal(w.keep_ms - w.prewarm_ms, 3 * MIN);
    assert_true(w.prewarm_ms >= 100 * MIN && w.keep_ms <= 105 * MIN);
}

/* The priced window's cost over a histogram, as ka_windows_priced counts it
 * (minutes; a = -1: no window). */
static double priced_cost(const ka_state *s, int a, int b, double price)
{
    double c = 0.0;
    for (int k = 0; k < KA_BINS; k++) {
        double n = s->bins[k];
        if (a < 0 || k < a)
            c += n * price;
        else if (k <= b)
            c += n * (k + 0.5 - a);
        else
            c += n * (price + b + 1 - a);
    }
    c += (double)s->n_oob * (price + (a < 0 ? 0.0 : (double)(b + 1 - a)));
    return c;
}

static void test_priced(void **state)
{
    (void)state;
    static const struct {
        const char *what;
        uint32_t bins[3][2]; /* {bin, count} */
        uint32_t oob;
        int64_t price;
        ka_kind kind;
        int64_t prewarm, keep;
    } cases[] = {
        /* Every 15 minutes: the minute it comes in, at any price above the
         * half minute it holds per idle time. */
        {"every 15 min", {{14, 11}}, 0, 10 * MIN, KA_PRICED, 14 * MIN, 15 * MIN},
        {"every 15 min, price below", {{14, 11}}, 0, MIN / 3, KA_PRICED, 0, 0},
        /* Three clusters of 5: at 10 minutes a cold start, catching one
         * cluster is worth it and the latest is cheapest (those before it
         * cost nothing held): 10 x 10 + 2.5 against 107.5 (minute 30) and
         * 112.5 (minute 0). */
        {"three clusters",
         {{0, 5}, {30, 5}, {200, 5}},
         0,
         10 * MIN,
         KA_PRICED,
         200 * MIN,
         201 * MIN},
        /* At 300 minutes a cold start, all of them, straight through. */
        {"three clusters, dear",
         {{0, 5}, {30, 5}, {200, 5}},
         0,
         300 * MIN,
         KA_PRICED,
         0,
         201 * MIN},
        /* Out of bounds mostly: holding anything costs more than it buys. */
        {"beyond 4 hours", {{5, 1}}, 19, 10 * MIN, KA_PRICED, 0, 0},
        /* Too few: the fixed fallback. */
        {"few", {{14, 5}}, 0, 10 * MIN, KA_FIXED_FEW, 0, TTL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ka_state s;
        ka_init(&s);
        for (int j = 0; j < 3; j++) {
            s.bins[cases[i].bins[j][0]] += cases[i].bins[j][1];
            s.n += cases[i].bins[j][1];
        }
        s.n_oob = cases[i].oob;
        s.n += cases[i].oob;
        s.last_minute = 1000;
        s.last_ms = 1000 * MIN + 5;
        ka_windows w;
        ka_windows_priced(&s, MIN, TTL, cases[i].price, &w);
        int64_t from = w.kind == KA_FIXED_FEW ? s.last_ms : 1001 * MIN;
        if (w.kind != cases[i].kind || w.prewarm_ms != cases[i].prewarm ||
            w.keep_ms != cases[i].keep || w.from_ms != from)
            fail_msg("%s: kind %s from %lld prewarm %lld keep %lld", cases[i].what,
                     ka_kind_name(w.kind), (long long)w.from_ms, (long long)w.prewarm_ms,
                     (long long)w.keep_ms);
    }
    /* Against every window tried one by one, on pseudo-random histograms. */
    uint64_t x = 12345;
    for (int round = 0; round < 40; round++) {
        ka_state s;
        ka_init(&s);
        int spikes = 1 + round % 6;
        for (int j = 0; j < 20 + round; j++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            uint32_t r = (uint32_t)(x >> 33);
            if (r % 17 == 0)
                s.n_oob++;
            else
                s.bins[(r % 97) % spikes == 0 ? r % KA_BINS : (r >> 8) % 40]++;
            s.n++;
        }
        double price = (double)(1 + round * 7);
        ka_windows w;
        ka_windows_priced(&s, MIN, TTL, (int64_t)(price * MIN), &w);
        assert_int_equal(w.kind, KA_PRICED);
        double best = priced_cost(&s, -1, -1, price);
        for (int a = 0; a < KA_BINS; a++)
            for (int b = a; b < KA_BINS; b++) {
                double c = priced_cost(&s, a, b, price);
                if (c < best) best = c;
            }
        double got = w.keep_ms == 0 ? priced_cost(&s, -1, -1, price)
                                    : priced_cost(&s, (int)(w.prewarm_ms / MIN),
                                                  (int)(w.keep_ms / MIN) - 1, price);
        if (got > best + 1e-6) fail_msg("round %d: cost %.3f, best %.3f", round, got, best);
    }
}

/* Priced per share of calls: the price is gaps x the function's mean time
 * between requests (15 minutes here), so the same window as at a price of
 * 15 minutes x gaps per cold start. */
static void test_priced_share(void **state)
{
    (void)state;
    ka_state s;
    ka_init(&s);
    periodic(&s, 1000, 15 * MIN, 12, MIN);
    assert_int_equal(s.calls, 12);
    assert_int_equal(s.first_ms, 1000);
    ka_windows w;
    /* 1 mean gap: 15 minutes a cold start, well above the half minute held. */
    ka_windows_priced_share(&s, MIN, TTL, 1.0, &w);
    assert_int_equal(w.kind, KA_PRICED_SHARE);
    assert_int_equal(w.prewarm_ms, 14 * MIN);
    assert_int_equal(w.keep_ms, 15 * MIN);
    /* 0.02 mean gaps: 0.3 minutes, below it: nothing kept. */
    ka_windows_priced_share(&s, MIN, TTL, 0.02, &w);
    assert_int_equal(w.kind, KA_PRICED_SHARE);
    assert_int_equal(w.keep_ms, 0);
    /* Bursts of 8 requests a minute every 30 minutes: a mean gap of under
     * 4 minutes, and idle times of 29 minutes: at 4 mean gaps (about 15
     * minutes a cold start) the window [29, 30) costs half a minute per
     * idle time, kept; at 0.1 mean gaps not. */
    ka_init(&s);
    for (int b = 0; b < 12; b++)
        for (int k = 0; k < 8; k++)
            ka_record(&s, b * 30 * MIN + k * 2000, MIN);
    ka_windows_priced_share(&s, MIN, TTL, 4.0, &w);
    assert_int_equal(w.prewarm_ms, 29 * MIN);
    assert_int_equal(w.keep_ms, 30 * MIN);
    ka_windows_priced_share(&s, MIN, TTL, 0.1, &w);
    assert_int_equal(w.keep_ms, 0);
    /* Few idle times: the fixed fallback. */
    ka_init(&s);
    periodic(&s, 1000, 15 * MIN, 5, MIN);
    ka_windows_priced_share(&s, MIN, TTL, 4.0, &w);
    assert_int_equal(w.kind, KA_FIXED_FEW);
    assert_int_equal(w.keep_ms, TTL);
}

/* A histogram set by hand: counts per bin, out-of-bounds ones, and calls
 * spread so that the mean time between requests is gap_min minutes. */
static void by_hand(ka_state *s, const uint32_t (*bins)[2], int n_bins, uint32_t oob,
                    double gap_min)
{
    ka_init(s);
    for (int j = 0; j < n_bins; j++) {
        s->bins[bins[j][0]] += bins[j][1];
        s->n += bins[j][1];
    }
    s->n_oob = oob;
    s->n += oob;
    s->calls = s->n + 1;
    s->first_ms = 0;
    s->last_ms = (int64_t)(gap_min * (double)MIN) * (int64_t)s->n;
    s->last_minute = s->last_ms / MIN;
}

/* Serve's learned rule: the priced window at KA_SHARE_GAPS mean gaps per
 * cold start, widened by the 10 % margins, and the fixed fallback. */
static void test_learned(void **state)
{
    (void)state;
    static const struct {
        const char *what;
        uint32_t bins[4][2]; /* {bin, count} */
        int n_bins;
        uint32_t oob;
        double gap_min, gaps;
        ka_kind kind;
        int64_t prewarm, keep; /* expected, from the end of the last active minute */
    } cases[] = {
        /* 14 idle minutes each time: the minute they come in, widened:
         * 14 x 0.9 to 15 x 1.1. */
        {"every 15 min",
         {{14, 12}},
         1,
         0,
         15.0,
         KA_SHARE_GAPS,
         KA_LEARNED,
         12 * MIN + 36000,
         16 * MIN + 30000},
        /* A cold start worth 0.15 minutes, under the half minute held. */
        {"priced too low", {{14, 12}}, 1, 0, 15.0, 0.01, KA_NONE, 0, 0},
        /* Every active minute follows another: kept through 1.1 minutes. */
        {"every 30 s", {{0, 40}}, 1, 0, 0.5, KA_SHARE_GAPS, KA_LEARNED, 0, 66000},
        /* Every 4 hours, the idle times straddling the histogram's end:
         * the window [230, 240) caught half, and widened to 264 minutes it
         * runs past the end, where the other half falls. */
        {"every 4 hours",
         {{230, 5}, {234, 5}, {237, 5}, {239, 5}},
         4,
         20,
         240.0,
         KA_SHARE_GAPS,
         KA_LEARNED,
         207 * MIN,
         264 * MIN},
        /* Two clusters, at 3 mean gaps (48 minutes a cold start): holding
         * from minute 2 to 31 (290 minutes over the 20 idle times) beats
         * from 0 (330) and the later cluster alone (485). */
        {"two clusters",
         {{2, 10}, {30, 10}},
         2,
         0,
         16.0,
         KA_SHARE_GAPS,
         KA_LEARNED,
         2 * MIN * 9 / 10,
         31 * MIN * 11 / 10},
        /* Too few idle times, a flat histogram, none in bounds: fixed. */
        {"few", {{14, 9}}, 1, 0, 15.0, KA_SHARE_GAPS, KA_FIXED_FEW, 0, TTL},
        {"all beyond 4 hours", {{0, 0}}, 1, 20, 600.0, KA_SHARE_GAPS, KA_FIXED_FLAT, 0, TTL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ka_state s;
        by_hand(&s, cases[i].bins, cases[i].n_bins, cases[i].oob, cases[i].gap_min);
        ka_windows w;
        ka_windows_learned(&s, MIN, TTL, false, cases[i].gaps, &w);
        bool fixed = w.kind == KA_FIXED_FEW || w.kind == KA_FIXED_FLAT;
        int64_t from = fixed ? s.last_ms : (s.last_minute + 1) * MIN;
        if (w.kind != cases[i].kind || w.prewarm_ms != cases[i].prewarm ||
            w.keep_ms != cases[i].keep || w.from_ms != from || w.n != s.n)
            fail_msg("%s: kind %s from %lld prewarm %lld keep %lld (want %s %lld %lld %lld)",
                     cases[i].what, ka_kind_name(w.kind), (long long)w.from_ms,
                     (long long)w.prewarm_ms, (long long)w.keep_ms, ka_kind_name(cases[i].kind),
                     (long long)from, (long long)cases[i].prewarm, (long long)cases[i].keep);
    }
    /* Flat: one idle time in each of the 240 bins (CV 0), and 49 bins
     * evenly spread (CV just under 2), fixed; 48 (CV 2) learned. */
    for (int spread = 48; spread <= KA_BINS; spread++) {
        if (spread != 48 && spread != 49 && spread != KA_BINS) continue;
        ka_state s;
        ka_init(&s);
        for (int k = 0; k < spread; k++) {
            s.bins[spread == KA_BINS ? k : k * 4]++;
            s.n++;
        }
        s.calls = s.n + 1;
        s.last_ms = (int64_t)s.n * 60 * MIN;
        s.last_minute = s.last_ms / MIN;
        ka_windows w;
        ka_windows_learned(&s, MIN, TTL, false, KA_SHARE_GAPS, &w);
        assert_int_equal(w.kind, spread == 48 ? KA_LEARNED : KA_FIXED_FLAT);
        if (spread != 48) {
            assert_int_equal(w.from_ms, s.last_ms);
            assert_int_equal(w.keep_ms, TTL);
        }
    }
    /* From requests, with a scaled minute (everything scales, the TTL of
     * the fallback too): every 15 scaled minutes. */
    ka_state s;
    ka_init(&s);
    periodic(&s, 1000, 1500, 12, 100);
    ka_windows w;
    ka_windows_learned(&s, 100, TTL, false, KA_SHARE_GAPS, &w);
    assert_int_equal(w.kind, KA_LEARNED);
    assert_int_equal(w.prewarm_ms, 1260);
    assert_int_equal(w.keep_ms, 1650);
    ka_init(&s);
    periodic(&s, 1000, 1500, 3, 100);
    ka_windows_learned(&s, 100, TTL, false, KA_SHARE_GAPS, &w);
    assert_int_equal(w.kind, KA_FIXED_FEW);
    assert_int_equal(w.keep_ms, 1000);
    /* On pseudo-random histograms with a shape: the window priced per
     * share (ka_windows_priced_share, checked against every window above)
     * widened by the margins, or none. */
    uint64_t x = 777;
    int learned = 0;
    for (int round = 0; round < 60; round++) {
        ka_init(&s);
        int spikes = 1 + round % 5;
        int64_t t = 0;
        ka_record(&s, t, MIN);
        for (int j = 0; j < 30 + round; j++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            uint32_t r = (uint32_t)(x >> 33);
            int64_t idle = r % 23 == 0 ? 250 + r % 300 : (int64_t)(5 + 37 * (r % spikes) + r % 3);
            t += (idle + 1) * MIN + (int64_t)(r % 1000);
            ka_record(&s, t, MIN);
        }
        double gaps = 0.2 * (double)(1 + round % 20);
        ka_windows w2;
        ka_windows_learned(&s, MIN, TTL, false, gaps, &w);
        ka_windows_priced_share(&s, MIN, TTL, gaps, &w2);
        if (w.kind == KA_FIXED_FLAT) continue;
        if (w2.keep_ms == 0) {
            assert_int_equal(w.kind, KA_NONE);
            assert_int_equal(w.keep_ms, 0);
        } else {
            assert_int_equal(w.kind, KA_LEARNED);
            assert_int_equal(w.prewarm_ms, w2.prewarm_ms * 9 / 10);
            assert_int_equal(w.keep_ms, w2.keep_ms * 11 / 10);
            learned++;
        }
        assert_int_equal(w.from_ms, w2.from_ms);
    }
    assert_true(learned > 30);
}

/* template_ttl_ms set in the config (ttl_caps) caps the learned window: the
 * ttl-long part of it that catches the most idle times (the middle one of
 * several), as ka_windows_of places its capped window; without ttl_caps,
 * and for the fixed fallback and "none", it changes nothing. */
static void test_learned_capped(void **state)
{
    (void)state;
    static const struct {
        const char *what;
        uint32_t bins[4][2]; /* {bin, count} */
        int n_bins;
        uint32_t oob;
        double gap_min;
        int64_t ttl;
        bool caps;
        ka_kind kind;
        int64_t prewarm, keep; /* expected, from the end of the last active minute */
        bool capped;
    } cases[] = {
        /* 59 x 0.9 = 53.1 to 60 x 1.1 = 66: the 10 minutes inside it that
         * catch minute 59 start anywhere in 53.1..56, the middle one. */
        {"every hour, capped", {{59, 12}}, 1, 0, 60.0, TTL, true, KA_LEARNED,
         54 * MIN + 33000, 64 * MIN + 33000, true},
        {"every hour, not capped", {{59, 12}}, 1, 0, 60.0, TTL, false, KA_LEARNED,
         53 * MIN + 6000, 66 * MIN, false},
        /* 12.6 to 16.5 minutes: shorter than the cap, kept whole. */
        {"every 15 min, under the cap", {{14, 12}}, 1, 0, 15.0, TTL, true, KA_LEARNED,
         12 * MIN + 36000, 16 * MIN + 30000, false},
        /* Every 4 hours, 207 to 264 minutes: of 30 minutes, the windows
         * that catch all four bins (230..239) start at 210..230. */
        {"every 4 hours, capped at 30 min",
         {{230, 5}, {234, 5}, {237, 5}, {239, 5}}, 4, 20, 240.0, 30 * MIN, true, KA_LEARNED,
         220 * MIN, 250 * MIN, true},
        /* A cap of 0: an empty window, only the active minute. */
        {"every hour, capped at 0", {{59, 12}}, 1, 0, 60.0, 0, true, KA_LEARNED,
         53 * MIN + 6000, 53 * MIN + 6000, true},
        /* The fallback keeps the TTL, capped or not. */
        {"few, capped", {{14, 9}}, 1, 0, 15.0, TTL, true, KA_FIXED_FEW, 0, TTL, false},
        {"every 5 hours, capped", {{0, 0}}, 1, 12, 300.0, TTL, true, KA_FIXED_FLAT, 0, TTL, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ka_state s;
        by_hand(&s, cases[i].bins, cases[i].n_bins, cases[i].oob, cases[i].gap_min);
        ka_windows w;
        ka_windows_learned(&s, MIN, cases[i].ttl, cases[i].caps, KA_SHARE_GAPS, &w);
        if (w.kind != cases[i].kind || w.prewarm_ms != cases[i].prewarm ||
            w.keep_ms != cases[i].keep || w.capped != cases[i].capped)
            fail_msg("%s: kind %s prewarm %lld keep %lld capped %d (want %s %lld %lld %d)",
                     cases[i].what, ka_kind_name(w.kind), (long long)w.prewarm_ms,
                     (long long)w.keep_ms, w.capped, ka_kind_name(cases[i].kind),
                     (long long)cases[i].prewarm, (long long)cases[i].keep, cases[i].capped);
    }
    /* A scaled minute scales the cap: every 15 scaled minutes (100 ms),
     * template_ttl_ms one minute (100 ms scaled): only the window of bin
     * 14 itself catches it, 1400..1500 ms. */
    ka_state s;
    ka_init(&s);
    periodic(&s, 1000, 1500, 12, 100);
    ka_windows w;
    ka_windows_learned(&s, 100, MIN, true, KA_SHARE_GAPS, &w);
    assert_int_equal(w.kind, KA_LEARNED);
    assert_true(w.capped);
    assert_int_equal(w.prewarm_ms, 1400);
    assert_int_equal(w.keep_ms, 1500);
    /* Capped or not, the window is wanted at the time the calls come. */
    assert_true(ka_want_loaded(&w, w.from_ms + 1450, NULL));
    assert_false(ka_want_loaded(&w, w.from_ms + 1399, NULL));
}

static void test_want_loaded(void **state)
{
    (void)state;
    static const struct {
        ka_windows w; /* kind, from, prewarm, keep */
        int64_t now;
        bool want;
        int64_t next;
    } cases[] = {
        /* Fixed: loaded from the last request (100) until 100 + keep. */
        {{KA_FIXED_FEW, 100, 0, 600, 0, 0, false}, 100, true, 700},
        {{KA_FIXED_FEW, 100, 0, 600, 0, 0, false}, 699, true, 700},
        {{KA_FIXED_FEW, 100, 0, 600, 0, 0, false}, 700, false, INT64_MAX},
        /* Learned with a pre-warm: loaded until the end of the active
         * minute (1000), dropped, loaded again from 1000 + 300 to 1000 + 500. */
        {{KA_LEARNED, 1000, 300, 500, 0, 0, false}, 950, true, 1000},
        {{KA_LEARNED, 1000, 300, 500, 0, 0, false}, 1000, false, 1300},
        {{KA_LEARNED, 1000, 300, 500, 0, 0, false}, 1299, false, 1300},
        {{KA_LEARNED, 1000, 300, 500, 0, 0, false}, 1300, true, 1500},
        {{KA_LEARNED, 1000, 300, 500, 0, 0, false}, 1500, false, INT64_MAX},
        /* Learned without a pre-warm: straight through. */
        {{KA_LEARNED, 1000, 0, 500, 0, 0, false}, 1200, true, 1500},
        /* An empty window (ttl 0): only the active minute. */
        {{KA_LEARNED, 1000, 300, 300, 0, 0, false}, 999, true, 1000},
        {{KA_LEARNED, 1000, 300, 300, 0, 0, false}, 1300, false, INT64_MAX},
        /* None: only the active minute. */
        {{KA_NONE, 1000, 0, 0, 0, 0, false}, 990, true, 1000},
        {{KA_NONE, 1000, 0, 0, 0, 0, false}, 1000, false, INT64_MAX},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t next = 0;
        bool want = ka_want_loaded(&cases[i].w, cases[i].now, &next);
        if (want != cases[i].want || next != cases[i].next)
            fail_msg("case %zu: want %d next %lld", i, want, (long long)next);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record),         cmocka_unit_test(test_windows),
        cmocka_unit_test(test_representative), cmocka_unit_test(test_capped_placement),
        cmocka_unit_test(test_priced),         cmocka_unit_test(test_priced_share),
        cmocka_unit_test(test_learned),        cmocka_unit_test(test_learned_capped),
        cmocka_unit_test(test_want_loaded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
