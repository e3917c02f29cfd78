/*
 * A lower bound for keep-alive policies of the kind serve runs (after each
 * call, the template is dropped, loaded again at a pre-warm time p after
 * the call and kept until q after it; a call in [p, q] finds it, any other
 * is a cold start), computed in hindsight: for each function the best
 * window knowing all its idle times, and a memory-time budget shared out
 * among the functions as well as possible.
 *
 * kb_p75_floor answers: with at most budget_ms of memory-time in all (the
 * fixed TTL's, say) and no function colder than a cap (its cold starts
 * under the fixed TTL, say), what is the lowest cold-start percentage the
 * 75th-percentile function can have? No policy that keeps one window per
 * function does better, whatever it predicts; the learned policy's windows
 * move with its histogram, so it can beat the bound only where a
 * function's idle times change over the trace.
 */
#ifndef ROUSE_BENCH_KEEPALIVE_BOUND_H
#define ROUSE_BENCH_KEEPALIVE_BOUND_H

#include <stddef.h>
#include <stdint.h>

/* One function's calls, prepared for the bound. */
typedef struct kb_function {
    int64_t *idle; /* idle times between calls, ascending (n - 1 of them) */
    double *sum;   /* sum[i] = idle[0] + ... + idle[i - 1] */
    size_t n;      /* calls */
    int64_t tail;  /* from the last call to the trace's end */
} kb_function;

/* Prepares t_ms[0..n) (ascending) ending at end_ms; 0, or -1 when out of
 * memory. Free with kb_function_free. */
int kb_function_init(kb_function *f, const int64_t *t_ms, size_t n, int64_t end_ms);
void kb_function_free(kb_function *f);

/* The least memory-time (ms) with which at most `cold` of f's calls are
 * cold starts (its first call always is); -1 when cold < 1. */
double kb_min_waste(const kb_function *f, size_t cold);

/* The lowest cold-start fraction (0..1) of the 75th-percentile function
 * (nearest rank over the n functions) reachable with at most budget_ms of
 * memory-time in all, no function i having more than cap[i] cold starts
 * (cap NULL: no such limit; without one the floor is reached by leaving
 * the busiest quarter of the functions always cold, which no operator
 * would take). Writes the memory-time that takes to *used_ms; INFINITY
 * when the caps alone need more than budget_ms, NAN when out of memory. */
double kb_p75_floor(const kb_function *fn, int n, const size_t *cap, double budget_ms,
                    double *used_ms);

#endif
