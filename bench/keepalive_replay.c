/*
 * The replay of one function through a keep-alive policy (see
 * keepalive_replay.h): the same steps serve takes, without processes. After
 * each call the windows are computed again; between calls the template
 * follows ka_want_loaded from one change to the next, as serve's tick does.
 */
#include "keepalive_replay.h"

#include <stdbool.h>
#include <string.h>

#include "server/keepalive_policy.h"

void kr_replay(const int64_t *t_ms, size_t n, int64_t end_ms, kr_policy policy, int64_t ttl_ms,
               double price, int64_t minute_ms, kr_result *out, unsigned char *cold_out)
{
    memset(out, 0, sizeof(*out));
    ka_state st;
    ka_init(&st);
    ka_windows w = {.kind = KA_FIXED_FEW}; /* nothing loaded before the first call */
    bool loaded = false;
    int64_t now = 0;
    for (size_t i = 0; i <= n; i++) {
        int64_t until = i < n ? t_ms[i] : end_ms;
        /* The template between calls, as the policy wants it. */
        while (now < until) {
            int64_t next;
            bool want = i > 0 && ka_want_loaded(&w, now, &next);
            if (i == 0) next = INT64_MAX;
            if (want && !loaded) out->prewarms++;
            loaded = want;
            int64_t seg = next < until ? next : until;
            if (loaded) out->loaded_ms += seg - now;
            now = seg;
        }
        if (i == n) break;
        out->calls++;
        if (cold_out) cold_out[i] = !loaded;
        if (!loaded) out->cold++;
        loaded = true; /* the call loads it (or found it loaded) */
        if (policy == KR_LEARNED) {
            ka_record(&st, t_ms[i], minute_ms);
            ka_windows_learned(&st, minute_ms, ttl_ms, false, price, &w);
        } else if (policy == KR_PERCENTILE) {
            ka_record(&st, t_ms[i], minute_ms);
            ka_windows_of(&st, minute_ms, ttl_ms, &w);
        } else if (policy == KR_PRICED) {
            ka_record(&st, t_ms[i], minute_ms);
            ka_windows_priced(&st, minute_ms, ttl_ms, (int64_t)price, &w);
        } else if (policy == KR_PRICED_SHARE) {
            ka_record(&st, t_ms[i], minute_ms);
            ka_windows_priced_share(&st, minute_ms, ttl_ms, price, &w);
        } else {
            w = (ka_windows){.kind = KA_FIXED_FEW, .from_ms = t_ms[i], .keep_ms = ttl_ms};
        }
    }
}
