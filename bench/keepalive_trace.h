/*
 * Synthetic invocation traces for the keep-alive simulator
 * (keepalive_sim.c), shaped after the Azure Functions characterisation in
 * Shahrad et al., "Serverless in the Wild" (USENIX ATC 2020): a mix of
 * timer-like periodic functions, bursty ones, ones that follow the time of
 * day, and rare ones, with rates spread over orders of magnitude (about
 * half the functions are called at most once an hour on average, as in
 * the paper's figure 5).
 *
 * Deterministic for a seed (splitmix64; no other source of randomness).
 * The classes and their parameters are KT_DEFAULT_PARAMS below; they were
 * fixed and committed before the keep-alive policy was run on any trace,
 * and are not tuned to it.
 *
 * Classes (fractions of the functions):
 * - periodic (0.30): a period drawn from {1, 2, 5, 10, 15, 20, 30, 60, 120,
 *   240} minutes, a random phase, each call jittered uniformly by +-2 % of
 *   the period;
 * - bursty (0.25): bursts as a Poisson process whose mean gap is drawn
 *   log-uniformly from 5 minutes to 6 hours; each burst 1 + a geometric
 *   number of calls (mean 8 in all) with exponential gaps of mean 2 s;
 * - diurnal (0.25): a Poisson process whose rate follows the day,
 *   rate(t) = r * (1 + 0.8 sin(2 pi t / 24 h + phase)), r drawn
 *   log-uniformly from once per 4 hours to once per minute;
 * - rare (0.20): a Poisson process with a mean gap drawn log-uniformly from
 *   4 hours to 3 days.
 */
#ifndef ROUSE_BENCH_KEEPALIVE_TRACE_H
#define ROUSE_BENCH_KEEPALIVE_TRACE_H

#include <stddef.h>
#include <stdint.h>

typedef enum kt_class { KT_PERIODIC = 0, KT_BURSTY, KT_DIURNAL, KT_RARE, KT_N_CLASSES } kt_class;

typedef struct kt_params {
    int n_functions;
    double days;
    double class_share[KT_N_CLASSES];
    double burst_mean_calls, burst_gap_s;
    double burst_every_min_lo, burst_every_min_hi;
    double diurnal_rate_per_min_lo, diurnal_rate_per_min_hi, diurnal_swing;
    double rare_every_h_lo, rare_every_h_hi;
    double periodic_jitter; /* fraction of the period */
} kt_params;

#define KT_DEFAULT_PARAMS                                                                          \
    {                                                                                              \
        .n_functions = 400, .days = 7.0, .class_share = {0.30, 0.25, 0.25, 0.20},                  \
        .burst_mean_calls = 8.0, .burst_gap_s = 2.0, .burst_every_min_lo = 5.0,                    \
        .burst_every_min_hi = 360.0, .diurnal_rate_per_min_lo = 1.0 / 240.0,                       \
        .diurnal_rate_per_min_hi = 1.0, .diurnal_swing = 0.8, .rare_every_h_lo = 4.0,              \
        .rare_every_h_hi = 72.0, .periodic_jitter = 0.02,                                          \
    }

typedef struct kt_function {
    kt_class cls;
    double param;  /* periodic: period (min); bursty: mean burst gap (min); diurnal: mean
                      rate (per min); rare: mean gap (h) */
    int64_t *t_ms; /* call times in ms from the trace's start, ascending */
    size_t n;
} kt_function;

typedef struct kt_trace {
    kt_function *fn;
    int n_fn;
    int64_t end_ms;
} kt_trace;

/* Generates a trace; 0, or -1 when out of memory. Free with kt_free. */
int kt_generate(const kt_params *p, uint64_t seed, kt_trace *out);
void kt_free(kt_trace *t);
const char *kt_class_name(kt_class c);

#endif
