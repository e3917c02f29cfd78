/*
 * The last hour of each function, per minute, in memory: an invocation
 * sink (invocation.h) for GET /v1/recent, which the console charts.
 *
 * For every function that answered at least one call (a call whose name
 * resolved to a version; made-up names make no entry, so requests for them
 * cannot grow it), 60 one-minute slots by arrival time (wall clock), each
 * with its requests, errors, cold starts by kind and a latency histogram
 * of the calls an instance ran, plus 16 one-second slots of request
 * counts for the current rate. A slot is reused when its minute (second)
 * comes round again, so nothing is allocated after a function's first
 * call. Owned by the loop's thread, never locked; at most RECENT_MAX_FNS
 * functions (calls of further ones are not counted).
 */
#ifndef ROUSE_SERVER_RECENT_H
#define ROUSE_SERVER_RECENT_H

#include <stdint.h>

#include "common/buf.h"
#include "server/invocation.h"

#define RECENT_MINUTES 60
#define RECENT_SECONDS 16
#define RECENT_RATE_S 10 /* the rate is over the last 10 whole seconds */
#define RECENT_MAX_FNS 4096
/* Latency buckets: bucket k holds totals up to 100 µs x 2^((k+1)/4)
 * (four per doubling, 119 µs to 105 s); the last one everything above. */
#define RECENT_BUCKETS 81

typedef struct recent recent;

/* Owned: free with recent_destroy. NULL when out of memory. */
recent *recent_create(void);
void recent_destroy(recent *r);

/* The invocation sink (user is the recent). */
void recent_on_invocation(void *user, const invocation *inv);

/* The upper bound of bucket k in µs (k < RECENT_BUCKETS - 1). */
double recent_bucket_le_us(int k);
/* The bucket of a latency in µs. */
int recent_bucket_of(uint64_t us);

/* What a function did in a window, summed from the slots. */
typedef struct recent_sums {
    uint64_t requests, errors, cold_template, cold_zero, ran;
    uint64_t hist[RECENT_BUCKETS];
} recent_sums;

/* The upper bound in µs of the bucket holding the q-quantile (0 < q <= 1)
 * of the histogram, or -1 when it is empty (never below the exact value,
 * at most 19 % above it; the last bucket reports its lower bound). */
double recent_quantile_us(const recent_sums *s, double q);

/* Calls fn for each function in order of first call, with its sums over
 * the last `minutes` minutes up to now_us (wall clock, µs), its minute
 * series (oldest first, RECENT_MINUTES each, NULL arrays are skipped) and
 * its request count over the last RECENT_RATE_S whole seconds. */
typedef struct recent_series {
    int64_t first_minute; /* minute number (since the epoch) of index 0 */
    uint32_t requests[RECENT_MINUTES], errors[RECENT_MINUTES];
    uint32_t cold_template[RECENT_MINUTES], cold_zero[RECENT_MINUTES];
} recent_series;
typedef void (*recent_fn)(void *user, const char *name, const recent_sums *hour,
                          const recent_sums *last5, const recent_series *series,
                          uint64_t rate_requests);
void recent_each(const recent *r, int64_t now_us, recent_fn fn, void *user);

#endif
