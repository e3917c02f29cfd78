/*
 * Replays one function's calls through a keep-alive policy
 * (src/server/keepalive_policy.h), with no processes: the template is
 * loaded or not, as the policy wants it between calls (pre-warms included)
 * and as each call leaves it (a call finds it loaded, or loads it: a cold
 * start). Calls take no time. What a template costs while it waits is its
 * memory-time: every ms it is loaded counts as wasted.
 */
#ifndef ROUSE_BENCH_KEEPALIVE_REPLAY_H
#define ROUSE_BENCH_KEEPALIVE_REPLAY_H

#include <stddef.h>
#include <stdint.h>

typedef enum kr_policy {
    KR_FIXED = 0,
    KR_PERCENTILE,
    KR_PRICED,
    KR_PRICED_SHARE,
    KR_LEARNED,
    KR_N_POLICIES
} kr_policy;

typedef struct kr_result {
    size_t calls, cold, prewarms;
    int64_t loaded_ms; /* wasted memory-time, in template-ms */
} kr_result;

/* Replays calls t_ms[0..n) (ascending, ms) up to end_ms. KR_FIXED keeps the
 * template ttl_ms after each call (0: no keep-alive); KR_LEARNED is serve's
 * "learned" (ka_windows_learned) at price mean gaps per cold start
 * (KA_SHARE_GAPS in serve), with ttl_ms for its fixed fallback;
 * KR_PERCENTILE the paper's percentiles (ka_windows_of) with ttl_ms as
 * their template_ttl_ms; KR_PRICED the priced
 * window (ka_windows_priced) at price ms of memory-time per cold start
 * avoided, KR_PRICED_SHARE (ka_windows_priced_share) at price mean gaps
 * between calls per cold start, both with ttl_ms for their fixed fallback
 * (price is read only by them and learned). minute_ms is the
 * policy's minute (60000, or scaled with the trace). When cold_out is not
 * NULL, cold_out[i] says whether call i was a cold start. */
void kr_replay(const int64_t *t_ms, size_t n, int64_t end_ms, kr_policy policy, int64_t ttl_ms,
               double price, int64_t minute_ms, kr_result *out, unsigned char *cold_out);

#endif
