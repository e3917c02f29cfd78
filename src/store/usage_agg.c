/*
 * Summing usage into a query's answer (usage_agg.h): shared by the SQLite
 * and PostgreSQL usage stores.
 */
#include "store/usage_agg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int64_t usage_hour_of(int64_t t)
{
    return (t >= 0 ? t : t - USAGE_HOUR_US + 1) / USAGE_HOUR_US * USAGE_HOUR_US;
}

int64_t usage_billed_of(int64_t run_us)
{
    return (run_us + 999) / 1000;
}

int usage_peaks_add(usage_peaks *p, const char *function, int64_t hour_us, int64_t peak)
{
    /* A repeat of the last entry merges into it; others are merged where
     * the list is sorted (usage_query_run) or stored (the roll-up's
     * ON CONFLICT). */
    if (p->n > 0 && p->v[p->n - 1].hour_us == hour_us &&
        strcmp(p->v[p->n - 1].function, function) == 0) {
        if (peak > p->v[p->n - 1].peak) p->v[p->n - 1].peak = peak;
        return 0;
    }
    if (p->n == p->cap) {
        int ncap = p->cap ? 2 * p->cap : 64;
        usage_peak *nv = realloc(p->v, (size_t)ncap * sizeof(*nv));
        if (!nv) return ROUSE_ENOMEM;
        p->v = nv;
        p->cap = ncap;
    }
    usage_peak *e = &p->v[p->n++];
    memset(e, 0, sizeof(*e));
    snprintf(e->function, sizeof(e->function), "%s", function);
    e->hour_us = hour_us;
    e->peak = peak;
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* The most intervals [starts[i], ends[i]) open at one instant (an interval
 * ending at t is closed before one starting at t). Sorts both arrays. */
static int64_t max_overlap(int64_t *starts, int64_t *ends, int n)
{
    qsort(starts, (size_t)n, sizeof(int64_t), cmp_i64);
    qsort(ends, (size_t)n, sizeof(int64_t), cmp_i64);
    int64_t cur = 0, best = 0;
    int i = 0, j = 0;
    while (i < n) {
        if (j < n && ends[j] <= starts[i]) {
            cur--;
            j++;
        } else {
            cur++;
            i++;
            if (cur > best) best = cur;
        }
    }
    return best;
}

static uint64_t group_hash(const char *function, int64_t key)
{
    uint64_t h = 1469598103934665603ull ^ (uint64_t)key * 0x9E3779B97F4A7C15ull;
    for (const unsigned char *p = (const unsigned char *)function; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return h ^ (h >> 29);
}

static void group_slot_put(usage_groups *g, int i)
{
    uint64_t m = (uint64_t)g->n_slots - 1;
    uint64_t h = group_hash(g->v[i].function, g->v[i].version) & m;
    while (g->slots[h])
        h = (h + 1) & m;
    g->slots[h] = i + 1;
}

static usage_group *group_find(usage_groups *g, const char *function, int64_t key)
{
    if (g->last < g->n && g->v[g->last].version == key &&
        strcmp(g->v[g->last].function, function) == 0)
        return &g->v[g->last];
    if (g->n_slots) {
        uint64_t m = (uint64_t)g->n_slots - 1;
        for (uint64_t h = group_hash(function, key) & m; g->slots[h]; h = (h + 1) & m) {
            int i = g->slots[h] - 1;
            if (g->v[i].version == key && strcmp(g->v[i].function, function) == 0) {
                g->last = i;
                return &g->v[i];
            }
        }
    }
    if (g->n == g->cap) {
        int ncap = g->cap ? 2 * g->cap : 16;
        usage_group *nv = realloc(g->v, (size_t)ncap * sizeof(*nv));
        if (!nv) return NULL;
        g->v = nv;
        g->cap = ncap;
    }
    if (2 * (g->n + 1) >= g->n_slots) {
        int ns = g->n_slots ? 2 * g->n_slots : 64;
        int *slots = calloc((size_t)ns, sizeof(int));
        if (!slots) return NULL;
        free(g->slots);
        g->slots = slots;
        g->n_slots = ns;
        for (int i = 0; i < g->n; i++)
            group_slot_put(g, i);
    }
    usage_group *e = &g->v[g->n];
    memset(e, 0, sizeof(*e));
    snprintf(e->function, sizeof(e->function), "%s", function);
    e->version = key; /* the second key while collecting; split at the end */
    g->last = g->n++;
    group_slot_put(g, g->last);
    return e;
}

int usage_runs_add(usage_hour_runs *h, const char *fn, int64_t start, int64_t end)
{
    usage_fn_runs *r = NULL;
    if (h->last < h->n && strcmp(h->v[h->last].name, fn) == 0) r = &h->v[h->last];
    for (int i = 0; !r && i < h->n; i++)
        if (strcmp(h->v[i].name, fn) == 0) {
            h->last = i;
            r = &h->v[i];
        }
    if (!r) {
        if (h->n == h->cap) {
            int ncap = h->cap ? 2 * h->cap : 16;
            usage_fn_runs *nv = realloc(h->v, (size_t)ncap * sizeof(*nv));
            if (!nv) return ROUSE_ENOMEM;
            h->v = nv;
            h->cap = ncap;
        }
        r = &h->v[h->n];
        memset(r, 0, sizeof(*r));
        snprintf(r->name, sizeof(r->name), "%s", fn);
        h->last = h->n++;
    }
    if (r->n == r->cap) {
        int ncap = r->cap ? 2 * r->cap : 256;
        int64_t *ns = realloc(r->s, (size_t)ncap * sizeof(int64_t));
        if (!ns) return ROUSE_ENOMEM;
        r->s = ns;
        int64_t *ne = realloc(r->e, (size_t)ncap * sizeof(int64_t));
        if (!ne) return ROUSE_ENOMEM;
        r->e = ne;
        r->cap = ncap;
    }
    r->s[r->n] = start;
    r->e[r->n] = end;
    r->n++;
    return 0;
}

int usage_runs_flush(usage_hour_runs *h, usage_peaks *pk)
{
    for (int i = 0; i < h->n; i++) {
        usage_fn_runs *r = &h->v[i];
        if (r->n == 0) continue;
        int rc = usage_peaks_add(pk, r->name, h->hour, max_overlap(r->s, r->e, r->n));
        r->n = 0;
        if (rc < 0) return rc;
    }
    return 0;
}

void usage_runs_fini(usage_hour_runs *h)
{
    for (int i = 0; i < h->n; i++) {
        free(h->v[i].s);
        free(h->v[i].e);
    }
    free(h->v);
}

static int cmp_group(const void *a, const void *b)
{
    const usage_group *x = a, *y = b;
    int c = strcmp(x->function, y->function);
    if (c) return c;
    int64_t kx = x->version ? x->version : x->t_us, ky = y->version ? y->version : y->t_us;
    return kx < ky ? -1 : kx > ky;
}

static int cmp_peak(const void *a, const void *b)
{
    const usage_peak *x = a, *y = b;
    int c = strcmp(x->function, y->function);
    if (c) return c;
    return x->hour_us < y->hour_us ? -1 : x->hour_us > y->hour_us;
}

/* --- a query's answer -------------------------------------------------------- */

void usage_acc_init(usage_acc *a, const usage_query *q, bool stream_peaks)
{
    memset(a, 0, sizeof(*a));
    a->q = q;
    a->hr.hour = -1;
    a->stream_peaks = stream_peaks;
}

usage_group *usage_acc_group(usage_acc *a, const char *text, int64_t key)
{
    /* The stores without a node column (SQLite) hold only this node's. */
    if (a->q->by == USAGE_BY_NODE && !text[0]) text = a->q->node;
    return group_find(&a->g, text, key);
}

int usage_acc_record(usage_acc *a, const usage_row *r)
{
    const usage_query *q = a->q;
    const char *name = "";
    int64_t key = 0, ts = r->ts_us;
    switch (q->by) {
    case USAGE_BY_FUNCTION:
        name = r->function;
        break;
    case USAGE_BY_VERSION:
        name = r->function;
        key = r->version;
        break;
    case USAGE_BY_NODE:
        name = r->node ? r->node : q->node;
        break;
    case USAGE_BY_MINUTE:
        key = ts / 60000000 * 60000000;
        break;
    case USAGE_BY_HOUR:
        key = ts / USAGE_HOUR_US * USAGE_HOUR_US;
        break;
    case USAGE_BY_DAY:
        key = ts / (24 * USAGE_HOUR_US) * (24 * USAGE_HOUR_US);
        break;
    }
    usage_group *e = group_find(&a->g, name, key);
    if (!e) return ROUSE_ENOMEM;
    e->hist[usage_bucket_of(r->total_us)]++;
    e->invocations++;
    e->requests += r->start != 0;
    e->errors += r->status >= 400;
    if (r->start >= 0 && r->start < 4) e->starts[r->start]++;
    int64_t billed = usage_billed_of(r->run_us);
    e->billed_ms += billed;
    e->mb_ms += billed * r->memory_mb;
    e->run_us += r->run_us;
    e->bytes_in += r->bytes_in;
    e->bytes_out += r->bytes_out;
    if (a->first == 0 || ts < a->first) a->first = ts;
    if (!a->stream_peaks) return 0;
    int64_t h = usage_hour_of(ts);
    if (h != a->hr.hour) {
        if (a->hr.hour >= 0) {
            int rc = usage_runs_flush(&a->hr, &a->pk);
            if (rc < 0) return rc;
        }
        a->hr.hour = h;
    }
    if (r->start == 0) return 0; /* no instance ran it */
    int64_t at = ts + r->wait_us;
    return usage_runs_add(&a->hr, r->function, at, at + r->run_us);
}

int usage_acc_end_records(usage_acc *a)
{
    int rc = 0;
    if (a->stream_peaks && a->hr.hour >= 0) rc = usage_runs_flush(&a->hr, &a->pk);
    usage_runs_fini(&a->hr);
    memset(&a->hr, 0, sizeof(a->hr));
    a->hr.hour = -1;
    return rc;
}

void usage_acc_result(usage_acc *a, usage_result *out)
{
    const usage_query *q = a->q;
    usage_groups *g = &a->g;
    usage_peaks *pk = &a->pk;
    usage_runs_fini(&a->hr);
    free(g->slots);
    /* Split the second key: a version, or a period's start. */
    bool timed = q->by == USAGE_BY_MINUTE || q->by == USAGE_BY_HOUR || q->by == USAGE_BY_DAY;
    for (int i = 0; i < g->n; i++)
        if (timed || q->by == USAGE_BY_FUNCTION || q->by == USAGE_BY_NODE) {
            g->v[i].t_us = timed ? g->v[i].version : 0;
            g->v[i].version = 0;
        }
    if (g->n > 1) qsort(g->v, (size_t)g->n, sizeof(*g->v), cmp_group);
    /* An hour rolled up in parts (a retention under an hour) has a rolled
     * peak and a peak from its records: the larger counts. */
    if (pk->n > 1) qsort(pk->v, (size_t)pk->n, sizeof(*pk->v), cmp_peak);
    int np = 0;
    for (int i = 0; i < pk->n; i++) {
        if (np > 0 && pk->v[np - 1].hour_us == pk->v[i].hour_us &&
            strcmp(pk->v[np - 1].function, pk->v[i].function) == 0) {
            if (pk->v[i].peak > pk->v[np - 1].peak) pk->v[np - 1].peak = pk->v[i].peak;
            continue;
        }
        pk->v[np++] = pk->v[i];
    }
    pk->n = np;
    memset(out, 0, sizeof(*out));
    out->n_groups = g->n;
    out->groups = g->v;
    out->n_peaks = pk->n;
    out->peaks = pk->v;
    out->first_ts_us = a->first;
    memset(a, 0, sizeof(*a));
}

void usage_acc_fini(usage_acc *a)
{
    usage_runs_fini(&a->hr);
    free(a->g.slots);
    free(a->g.v);
    free(a->pk.v);
    memset(a, 0, sizeof(*a));
}
