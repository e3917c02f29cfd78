/*
 * Dynamic batching's decisions, as pure functions of a snapshot (like
 * pool_policy.h), tested from tables: when the calls waiting in a version's
 * queue go to an instance as one batch, and auto mode's batch size limit
 * (additive increase, multiplicative decrease against scaling's SLO, and
 * no growth into batch sizes whose CPU time per request is no lower than
 * that of smaller ones). pool_sched.c is the only caller.
 */
#ifndef ROUSE_SERVER_BATCH_POLICY_H
#define ROUSE_SERVER_BATCH_POLICY_H

#include <stdbool.h>
#include <stdint.h>

typedef struct batch_view {
    int n_ready;           /* calls at the head of the queue that may join a batch */
    int limit;             /* the batch size limit now */
    bool pool_idle;        /* nothing of the version is in flight */
    uint64_t waited_ns;    /* how long the oldest of them has waited */
    uint64_t max_delay_ns; /* batching.max_delay_us */
    uint64_t span_ns;      /* from the oldest's arrival to the newest's */
    uint64_t quiet_ns;     /* since the newest of them arrived */
    uint64_t gap_ns;       /* the version's mean gap between arrivals (0: unknown) */
    int n_free;            /* instances of the version with a free slot (this one too) */
    int n_instances;       /* those free and those due to be free before this batch would end */
    bool left;             /* the oldest was left by a batch that took its share */
} batch_view;

/* The arrivals of the ready calls have paused when nothing came for
 * BATCH_QUIET_GAPS times their mean gap, and never sooner than
 * BATCH_QUIET_MIN_NS after the newest. */
#define BATCH_QUIET_GAPS 4
#define BATCH_QUIET_MIN_NS (100ull * 1000ull)

/* How many of the ready calls to send now as one batch (an instance has a
 * free slot): all of them, up to the limit, when the limit is reached, when
 * the function was idle (a lone request is never held back), when the
 * oldest has waited max_delay, when two or more are ready and their
 * arrivals have paused (a burst that ended: more waiting would keep the
 * free instance idle for calls that are not coming; closed-loop clients
 * send their next requests only when these are answered), or when the
 * version's mean gap between arrivals is longer than the rest of max_delay
 * (no company is expected in time: waiting would only idle the instance);
 * else 0, and *wait_ns says how much longer they may wait (the earlier of
 * the oldest's max_delay and the pause). With several instances, a batch
 * takes at most its share of the ready calls, ceil(n_ready / n_instances),
 * and goes at once when that share is less than what it could take (the
 * rest is for the next instance to free up), so that the calls run on
 * every instance in parallel instead of in one batch whose calls all wait
 * for all of its rows; with several instances free, what is there goes at
 * once. Calls that a batch left (left) go at once with the next free
 * instance: they have waited their turn. */
int batch_decide(const batch_view *v, uint64_t *wait_ns);

#define BATCH_AIMD_WINDOW 8
/* Batch sizes by class: 1, 2-3, 4-7 ... 256 (FN_BATCH_MAX). */
#define BATCH_CLASSES 9
/* A class's CPU time per request is known after this many samples. */
#define BATCH_CLASS_MIN_SAMPLES 4
/* A larger class pays when its CPU time per request is below this many
 * hundredths of a smaller one's: a batch costs its requests latency, so a
 * gain within the measurement's noise is no gain. */
#define BATCH_GAIN_PCT 95
/* After a class did not pay, the limit stays within the classes that do
 * for this many windows, doubling with each failed try up to the max. */
#define BATCH_HOLD_MIN 4
#define BATCH_HOLD_MAX 256

/* Auto mode's state: the limit, the run times of the batches since it last
 * changed, and the CPU time per request of each batch size class. */
typedef struct batch_aimd {
    int limit, max;
    uint64_t slo_ns;
    uint64_t run_ns[BATCH_AIMD_WINDOW];
    int n, n_full; /* batches in the window, and those that reached the limit */
    uint64_t row_cpu_ns[BATCH_CLASSES]; /* per request, a moving average */
    int n_row[BATCH_CLASSES];           /* its samples (capped) */
    int ceiling;                        /* while hold > 0: the limit grows no further */
    int hold, hold_next;                /* windows left; the next hold */
} batch_aimd;

/* Starts at a limit of 2 (1 when max is 1). */
void batch_aimd_init(batch_aimd *a, int max, uint64_t slo_ns);

/* The class of a batch of `size` calls: floor(log2(size)). */
int batch_class(int size);

/* A batch of `size` calls ran in run_ns (in the instance), taking cpu_ns
 * of the instance's CPU time (0: not measured). Every BATCH_AIMD_WINDOW
 * batches, the window's p99 run time (its slowest, at this window size)
 * decides: above the SLO the limit halves. Within it, when the limit's
 * class is known but a lone call's (class 0) is not, the limit drops to 1
 * for a window that measures it. Then, when the limit's
 * class costs no less CPU per request than a smaller class (by
 * BATCH_GAIN_PCT; both known), larger batches do not pay on this engine:
 * the limit falls to the smallest size of the cheapest class and stays
 * there for a hold of windows (doubling while tries keep failing) before
 * it tries the next class again. Otherwise, when a quarter of the window's
 * batches were full (there is demand for more), the limit grows by one, up
 * to max. Returns the limit. */
int batch_aimd_observe(batch_aimd *a, int size, uint64_t run_ns, uint64_t cpu_ns);

#endif
