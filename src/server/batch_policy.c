/*
 * Dynamic batching's decisions (see batch_policy.h): pure functions, no
 * clock, no I/O.
 */
#include "server/batch_policy.h"

#include <string.h>

static const char *const why_names[BATCH_WHYS] = {"wait",   "full",   "idle",   "share", "free", "nogain",
                                                  "engine", "sparse", "pause", "delay", "lone"};

const char *batch_why_name(batch_why why)
{
    return why >= 0 && why < BATCH_WHYS ? why_names[why] : "?";
}

/* Whether a batch of n rather than share calls costs its calls latency:
 * by the version's run times, more than max_delay longer (or unknown). */
static bool share_pays(const batch_view *v, int n, int share)
{
    uint64_t all = batch_runs_estimate(v->runs, n), part = batch_runs_estimate(v->runs, share);
    if (!all || !part) return true;
    return all > part + v->max_delay_ns;
}

/* Whether company can make a batch of n cheaper per call: a larger class
 * measured costs less than BATCH_GAIN_PCT of n's class's CPU time per
 * call (when n's class or every larger one is not measured: it may). Any
 * larger class, not only the next. Judged only where a call costs more
 * CPU than max_delay: there the per-message costs that the CPU time
 * counted still misses (serve's wake-ups, the kernel's work between the
 * processes) are nothing beside it; where calls are cheap (mlp: tens of
 * us) those costs are much of what a batch saves (before the message's
 * polling was counted, the CPU time per call measured at 1 and at 16 came
 * out alike), so company is always worth its wait. */
static bool company_pays(const batch_view *v, int n)
{
    if (!v->runs) return true;
    int c = batch_class(n);
    uint64_t cpu = v->runs->cpu_ns[c];
    if (!cpu || cpu <= v->max_delay_ns) return true;
    bool known = false;
    for (int d = c + 1; d < BATCH_CLASSES; d++) {
        if (!v->runs->cpu_ns[d]) continue;
        if (v->runs->cpu_ns[d] * 100 < cpu * BATCH_GAIN_PCT) return true;
        known = true;
    }
    return !known;
}

/* Whether the instances are the version's scarce part: a lone call's CPU
 * time in the instance is known and at least what serve and the message's
 * waiting spent on it besides, the per-call work a batch shares (both
 * measured: else company may pay). */
static bool engine_bound(const batch_view *v)
{
    if (!v->runs) return false;
    uint64_t inst = v->runs->inst_ns[0], all = v->runs->cpu_ns[0];
    return inst && all > inst && inst >= all - inst;
}

/* Whether a lone call's cost must be measured before the lone rule can
 * judge: none is known, and a batch measured costs its calls more CPU each
 * than max_delay (where calls are cheap the rule never applies). Under
 * steady load every call may go in a batch, and none would ever measure
 * it (resnet18 at 32 clients ran batches of 8 throughout). */
static bool lone_unmeasured(const batch_view *v)
{
    if (!v->runs || v->runs->inst_ns[0]) return false;
    for (int c = 1; c < BATCH_CLASSES; c++)
        if (v->runs->inst_ns[c] > v->max_delay_ns) return true;
    return false;
}

int batch_decide(const batch_view *v, uint64_t *wait_ns, batch_why *why)
{
    *wait_ns = 0;
    *why = BATCH_WHY_WAIT;
    if (v->n_ready <= 0) return 0;
    int limit = v->limit > 0 ? v->limit : 1;
    int n = v->n_ready < limit ? v->n_ready : limit;
    if (n > 1 && lone_unmeasured(v)) {
        *why = BATCH_WHY_LONE;
        return 1;
    }
    if (n > 1 && (v->lone_held || batch_runs_lone(v->runs, limit, v->max_delay_ns))) {
        *why = BATCH_WHY_LONE;
        if (!v->probe) return 1;
        limit = n = 2; /* a probe: the smallest batch */
    }
    if (v->n_instances > 1) {
        /* Its share of what waits, the rest left to the others: a batch
         * that takes everything keeps its calls waiting for all of its
         * rows while the next instance to free up has nothing to do. */
        int share = (v->n_ready + v->n_instances - 1) / v->n_instances;
        if (share < n && share_pays(v, n, share)) {
            *why = BATCH_WHY_SHARE;
            return share;
        }
    }
    *why = BATCH_WHY_FREE;
    if (v->n_free > 1 || v->left) return n; /* idle instances, or calls passed over */
    *why = BATCH_WHY_FULL;
    if (n >= limit) return n;
    *why = BATCH_WHY_IDLE;
    if (v->pool_idle) return n;
    *why = BATCH_WHY_NOGAIN;
    if (!company_pays(v, n)) return n;
    *why = BATCH_WHY_ENGINE;
    if (engine_bound(v)) return n;
    bool late = v->waited_ns >= v->max_delay_ns;
    uint64_t wait = late ? 0 : v->max_delay_ns - v->waited_ns;
    *why = BATCH_WHY_SPARSE;
    if (!late && v->gap_ns >= wait) return n;                      /* no company expected in time */
    if (v->gap_ns) wait = wait > v->gap_ns ? wait - v->gap_ns : 0; /* then that holds */
    if (v->n_ready >= 2) {
        uint64_t pause = BATCH_QUIET_GAPS * v->span_ns / (uint64_t)(v->n_ready - 1);
        if (pause < BATCH_QUIET_MIN_NS) pause = BATCH_QUIET_MIN_NS;
        *why = BATCH_WHY_PAUSE;
        if (v->quiet_ns >= pause) return n;
        if (pause - v->quiet_ns < wait) wait = pause - v->quiet_ns;
    }
    *why = BATCH_WHY_DELAY;
    if (late) return n;
    *why = BATCH_WHY_WAIT;
    *wait_ns = wait;
    return 0;
}

bool batch_runs_lone(const batch_runs *r, int limit, uint64_t max_delay_ns)
{
    if (!r) return false;
    uint64_t lone = r->inst_ns[0];
    if (!lone || lone <= max_delay_ns) return false;
    for (int c = batch_class(limit > 0 ? limit : 1); c >= 1; c--)
        if (r->inst_ns[c]) return r->inst_ns[c] * 100 >= lone * BATCH_LONE_GAIN_PCT;
    return false;
}

bool batch_runs_probed(batch_runs *r)
{
    if (!r->inst_ns[0] || !r->inst_ns[1] ||
        r->inst_ns[1] * 100 >= r->inst_ns[0] * BATCH_LONE_GAIN_PCT)
        return false;
    for (int c = 2; c < BATCH_CLASSES; c++)
        r->cpu_ns[c] = r->inst_ns[c] = 0;
    return true;
}

/* A moving average over about four samples; 0 stays "not measured". */
static void average(uint64_t *avg, uint64_t total, int size)
{
    uint64_t per = total / (uint64_t)size;
    if (!per) per = 1;
    *avg = *avg ? (*avg * 3 + per) / 4 : per;
}

void batch_runs_note(batch_runs *r, int size, uint64_t run_ns, uint64_t cpu_ns)
{
    if (size <= 0) return;
    int c = batch_class(size);
    if (run_ns) average(&r->row_ns[c], run_ns, size);
    if (cpu_ns) average(&r->cpu_ns[c], cpu_ns, size);
}

void batch_runs_note_instance(batch_runs *r, int size, uint64_t inst_cpu_ns)
{
    if (size <= 0 || !inst_cpu_ns) return;
    average(&r->inst_ns[batch_class(size)], inst_cpu_ns, size);
}

uint64_t batch_runs_estimate(const batch_runs *r, int size)
{
    if (!r || size <= 0) return 0;
    int c = batch_class(size);
    for (int d = c; d >= 0; d--)
        if (r->row_ns[d]) return r->row_ns[d] * (uint64_t)size;
    for (int d = c + 1; d < BATCH_CLASSES; d++)
        if (r->row_ns[d]) return r->row_ns[d] * (uint64_t)size;
    return 0;
}

void batch_aimd_init(batch_aimd *a, int max, uint64_t slo_ns, uint64_t cheap_ns)
{
    memset(a, 0, sizeof(*a));
    a->max = max > 0 ? max : 1;
    a->limit = a->max < 2 ? a->max : 2;
    a->slo_ns = slo_ns;
    a->cheap_ns = cheap_ns;
    a->hold_next = BATCH_HOLD_MIN;
}

int batch_class(int size)
{
    int c = 0;
    while (size > 1 && c < BATCH_CLASSES - 1) {
        size >>= 1;
        c++;
    }
    return c;
}

static int known(const batch_aimd *a, int c)
{
    return a->n_row[c] >= BATCH_CLASS_MIN_SAMPLES;
}

/* Of the known classes up to top, the cheapest per request; a larger one
 * only when it gains BATCH_GAIN_PCT on the smaller. -1 when none is known. */
static int cheapest(const batch_aimd *a, int top)
{
    int best = -1;
    for (int c = 0; c <= top; c++)
        if (known(a, c) &&
            (best < 0 || a->row_cpu_ns[c] * 100 < a->row_cpu_ns[best] * BATCH_GAIN_PCT))
            best = c;
    return best;
}

/* The median of the window's run times. */
static uint64_t median_run(const batch_aimd *a)
{
    uint64_t r[BATCH_AIMD_WINDOW];
    int n = a->n;
    for (int i = 0; i < n; i++) { /* insertion sort: 8 values */
        uint64_t x = a->run_ns[i];
        int j = i;
        for (; j > 0 && r[j - 1] > x; j--)
            r[j] = r[j - 1];
        r[j] = x;
    }
    return n ? r[n / 2] : 0;
}

int batch_aimd_observe(batch_aimd *a, int size, uint64_t run_ns, uint64_t cpu_ns, uint64_t serve_ns,
                       uint64_t wait_ns)
{
    /* A class's cost is measured at its smallest size, a power of two
     * (the sizes instances run): each class then stands for twice the
     * calls of the one below. Measured over all its sizes, mostly at the
     * limit's last, the step from 7 calls to 8 gained little even where
     * 8 gains much on 4 (cheap calls: a + w/n per call), and the 5 %
     * asked of each class stopped growth there. */
    if (cpu_ns > 0 && size > 0 && (size & (size - 1)) == 0) {
        int c = batch_class(size);
        uint64_t per = (cpu_ns + serve_ns + wait_ns) / (uint64_t)size;
        /* A moving average over about four batches: recent enough to
         * follow the machine, smooth enough to outlast one noisy run. */
        a->row_cpu_ns[c] = a->n_row[c] ? (a->row_cpu_ns[c] * 3 + per) / 4 : per;
        if (a->n_row[c] < BATCH_CLASS_MIN_SAMPLES) a->n_row[c]++;
    }
    a->run_ns[a->n++] = run_ns;
    if (size >= a->limit) a->n_full++;
    if (a->n < BATCH_AIMD_WINDOW) return a->limit;
    uint64_t p99 = 0;
    for (int i = 0; i < a->n; i++)
        if (a->run_ns[i] > p99) p99 = a->run_ns[i];
    if (a->hold > 0) a->hold--;
    int top = batch_class(a->limit), best = cheapest(a, top);
    bool cheap = a->cheap_ns && median_run(a) <= a->cheap_ns;
    if (p99 > a->slo_ns) {
        a->limit = a->limit > 1 ? a->limit / 2 : 1;
    } else if (cheap) {
        if (a->n_full * 4 >= a->n && a->limit < a->max) a->limit++;
    } else if (top > 0 && known(a, top) && !known(a, 0)) {
        /* A batch's cost per request means nothing without a lone call's:
         * a window at 1 measures it (lone calls are timed until it is
         * known). */
        a->limit = 1;
    } else if (top > 0 && known(a, top) && best < top) {
        /* The limit's class costs no less per request than a smaller one:
         * back to the cheapest, and no try above it for a while. */
        a->limit = 1 << best;
        a->ceiling = a->limit;
        a->hold = a->hold_next;
        a->hold_next = a->hold_next * 2 < BATCH_HOLD_MAX ? a->hold_next * 2 : BATCH_HOLD_MAX;
    } else {
        if (top > 0 && best == top && top > batch_class(a->ceiling)) {
            a->hold_next = BATCH_HOLD_MIN; /* a class above the old ceiling pays */
            a->ceiling = 0;
        }
        if (a->n_full * 4 >= a->n && a->limit < a->max && (a->hold == 0 || a->limit < a->ceiling))
            a->limit++;
    }
    a->n = a->n_full = 0;
    return a->limit;
}
