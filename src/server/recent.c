/*
 * The last hour of each function, per minute (recent.h). Functions are in
 * an array found by a linear scan of their names' hashes: a deployment has
 * tens of functions, and a compare of a 64-bit hash per entry costs less
 * than the invocation record it counts.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/recent.h"

typedef struct minute_slot {
    int64_t minute; /* since the epoch; -1: never used */
    uint32_t requests, errors, cold_template, cold_zero, ran;
    uint32_t hist[RECENT_BUCKETS];
} minute_slot;

typedef struct fn_recent {
    uint64_t hash;
    char name[STORE_NAME_MAX + 1];
    minute_slot minutes[RECENT_MINUTES];
    int64_t second_of[RECENT_SECONDS];
    uint32_t per_second[RECENT_SECONDS];
} fn_recent;

struct recent {
    fn_recent **fns;
    int n, cap;
};

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

recent *recent_create(void)
{
    return calloc(1, sizeof(recent));
}

void recent_destroy(recent *r)
{
    if (!r) return;
    for (int i = 0; i < r->n; i++)
        free(r->fns[i]);
    free(r->fns);
    free(r);
}

double recent_bucket_le_us(int k)
{
    return 100.0 * exp2((double)(k + 1) / 4.0);
}

int recent_bucket_of(uint64_t us)
{
    if (us <= 100) return 0;
    if ((double)us > recent_bucket_le_us(RECENT_BUCKETS - 2)) return RECENT_BUCKETS - 1;
    int k = (int)ceil(4.0 * log2((double)us / 100.0)) - 1;
    if (k < 0) k = 0;
    if (k > RECENT_BUCKETS - 2) k = RECENT_BUCKETS - 2;
    /* Guard the rounding of log2 at the bounds themselves. */
    while (k > 0 && (double)us <= recent_bucket_le_us(k - 1))
        k--;
    while (k < RECENT_BUCKETS - 1 && (double)us > recent_bucket_le_us(k))
        k++;
    return k;
}

static fn_recent *find(recent *r, const char *name, bool add)
{
    uint64_t h = hash_name(name);
    for (int i = 0; i < r->n; i++)
        if (r->fns[i]->hash == h && strcmp(r->fns[i]->name, name) == 0) return r->fns[i];
    if (!add || r->n == RECENT_MAX_FNS) return NULL;
    if (r->n == r->cap) {
        int cap = r->cap ? r->cap * 2 : 16;
        fn_recent **fns = realloc(r->fns, (size_t)cap * sizeof(*fns));
        if (!fns) return NULL;
        r->fns = fns;
        r->cap = cap;
    }
    fn_recent *f = calloc(1, sizeof(*f));
    if (!f) return NULL;
    f->hash = h;
    snprintf(f->name, sizeof(f->name), "%s", name);
    for (int i = 0; i < RECENT_MINUTES; i++)
        f->minutes[i].minute = -1;
    for (int i = 0; i < RECENT_SECONDS; i++)
        f->second_of[i] = -1;
    r->fns[r->n++] = f;
    return f;
}

void recent_on_invocation(void *user, const invocation *inv)
{
    recent *r = user;
    if (inv->version <= 0 || inv->ts_us < 0) return; /* no such function */
    fn_recent *f = find(r, inv->function, true);
    if (!f) return;
    int64_t minute = inv->ts_us / 60000000;
    minute_slot *m = &f->minutes[minute % RECENT_MINUTES];
    if (m->minute != minute) {
        memset(m, 0, sizeof(*m));
        m->minute = minute;
    }
    m->requests++;
    if (inv->error != INV_OK) m->errors++;
    if (inv->start == INV_START_TEMPLATE) m->cold_template++;
    if (inv->start == INV_START_ZERO) m->cold_zero++;
    /* Latency of the calls an instance ran: a 429 answered at once would
     * otherwise pull the percentiles down. */
    if (inv->start != INV_START_NONE) {
        m->ran++;
        m->hist[recent_bucket_of(inv->total_us)]++;
    }
    int64_t second = inv->ts_us / 1000000;
    int s = (int)(second % RECENT_SECONDS);
    if (f->second_of[s] != second) {
        f->second_of[s] = second;
        f->per_second[s] = 0;
    }
    f->per_second[s]++;
}

double recent_quantile_us(const recent_sums *s, double q)
{
    uint64_t n = 0;
    for (int k = 0; k < RECENT_BUCKETS; k++)
        n += s->hist[k];
    if (n == 0) return -1;
    /* The nearest rank: the smallest bucket holding at least ceil(q n). */
    uint64_t rank = (uint64_t)ceil(q * (double)n);
    if (rank < 1) rank = 1;
    uint64_t seen = 0;
    for (int k = 0; k < RECENT_BUCKETS - 1; k++) {
        seen += s->hist[k];
        if (seen >= rank) return recent_bucket_le_us(k);
    }
    return recent_bucket_le_us(RECENT_BUCKETS - 2);
}

static void add_slot(recent_sums *s, const minute_slot *m)
{
    s->requests += m->requests;
    s->errors += m->errors;
    s->cold_template += m->cold_template;
    s->cold_zero += m->cold_zero;
    s->ran += m->ran;
    for (int k = 0; k < RECENT_BUCKETS; k++)
        s->hist[k] += m->hist[k];
}

void recent_each(const recent *r, int64_t now_us, recent_fn fn, void *user)
{
    int64_t now_min = now_us / 60000000;
    int64_t now_s = now_us / 1000000;
    for (int i = 0; i < r->n; i++) {
        const fn_recent *f = r->fns[i];
        recent_sums hour, last5;
        recent_series ser;
        memset(&hour, 0, sizeof(hour));
        memset(&last5, 0, sizeof(last5));
        memset(&ser, 0, sizeof(ser));
        ser.first_minute = now_min - (RECENT_MINUTES - 1);
        for (int j = 0; j < RECENT_MINUTES; j++) {
            int64_t minute = ser.first_minute + j;
            const minute_slot *m = &f->minutes[minute % RECENT_MINUTES];
            if (m->minute != minute) continue;
            add_slot(&hour, m);
            if (minute > now_min - 5) add_slot(&last5, m);
            ser.requests[j] = m->requests;
            ser.errors[j] = m->errors;
            ser.cold_template[j] = m->cold_template;
            ser.cold_zero[j] = m->cold_zero;
        }
        /* Whole seconds only: the current one is still filling. */
        uint64_t rate = 0;
        for (int64_t sec = now_s - RECENT_RATE_S; sec < now_s; sec++) {
            int s = (int)(sec % RECENT_SECONDS);
            if (f->second_of[s] == sec) rate += f->per_second[s];
        }
        fn(user, f->name, &hour, &last5, &ser, rate);
    }
}
