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

/* Batch sizes by class: 1, 2-3, 4-7 ... 256 (FN_BATCH_MAX). */
#define BATCH_CLASSES 9

/* A batch's run time in the instance by size class (below), a moving
 * average per request of each class from every reply of a batching
 * version, so that serve can tell what a larger batch costs its calls in
 * latency; and its CPU time per request (the instance's and serve's, from
 * the replies that measured it), so that it can tell whether a larger
 * batch costs less (CPU time: a busy machine's waits do not count). */
typedef struct batch_runs {
    uint64_t row_ns[BATCH_CLASSES];  /* 0: not measured */
    uint64_t cpu_ns[BATCH_CLASSES];  /* 0: not measured */
    uint64_t inst_ns[BATCH_CLASSES]; /* the instance's CPU alone per call (the lone rule's) */
} batch_runs;

typedef struct batch_view {
    int n_ready;            /* calls at the head of the queue that may join a batch */
    int limit;              /* the batch size limit now */
    bool pool_idle;         /* nothing of the version is in flight */
    uint64_t waited_ns;     /* how long the oldest of them has waited */
    uint64_t max_delay_ns;  /* batching.max_delay_us */
    uint64_t span_ns;       /* from the oldest's arrival to the newest's */
    uint64_t quiet_ns;      /* since the newest of them arrived */
    uint64_t gap_ns;        /* the version's mean gap between arrivals (0: unknown) */
    int n_free;             /* instances of the version with a free slot (this one too) */
    int n_instances;        /* those free and those due to be free before this batch would end */
    bool left;              /* the oldest was left by a batch that took its share */
    bool lone_held;         /* the lone rule decided, and no probe has measured since */
    bool probe;             /* batch even where batches showed no gain (re-measures them) */
    const batch_runs *runs; /* the version's run times (NULL: unknown) */
} batch_view;

/* Why a batch went (counted per version, shown in the status). */
typedef enum batch_why {
    BATCH_WHY_WAIT,   /* it did not: *wait_ns says how long it may still wait */
    BATCH_WHY_FULL,   /* the limit reached */
    BATCH_WHY_IDLE,   /* the version was idle (a lone request) */
    BATCH_WHY_SHARE,  /* its share of the calls, the rest for other instances */
    BATCH_WHY_FREE,   /* several instances free, or calls a batch left */
    BATCH_WHY_NOGAIN, /* a larger batch runs its rows no cheaper: company is not worth a wait */
    BATCH_WHY_ENGINE, /* the instances are the scarce part: a free one does not wait */
    BATCH_WHY_SPARSE, /* calls come further apart than the rest of max_delay */
    BATCH_WHY_PAUSE,  /* the arrivals paused */
    BATCH_WHY_DELAY,  /* the oldest waited max_delay */
    BATCH_WHY_LONE,   /* batches run their calls no cheaper than lone calls: one at a time
                       * (or a lone call's cost is to be measured) */
    BATCH_WHYS
} batch_why;

/* The names of the reasons in the status ("full", "idle" ...). */
const char *batch_why_name(batch_why why);

/* The arrivals of the ready calls have paused when nothing came for
 * BATCH_QUIET_GAPS times their mean gap, and never sooner than
 * BATCH_QUIET_MIN_NS after the newest. */
#define BATCH_QUIET_GAPS 4
#define BATCH_QUIET_MIN_NS (100ull * 1000ull)

/* How many of the ready calls to send now as one batch (an instance has a
 * free slot): all of them, up to the limit, when the limit is reached, when
 * the function was idle (a lone request is never held back), when two or
 * more are ready and their arrivals have paused (a burst that ended: more
 * waiting would keep the free instance idle for calls that are not
 * coming; closed-loop clients send their next requests only when these
 * are answered), when the version's mean gap between arrivals is longer
 * than the rest of max_delay (no company is expected in time: waiting
 * would only idle the instance), or when the oldest has waited max_delay;
 * else 0, and *wait_ns says how much longer they may wait (the earlier of
 * the oldest's max_delay and the pause). *why says which rule decided.
 * With several instances, a batch takes at most its share of the ready
 * calls, ceil(n_ready / n_instances), and goes at once when that share is
 * less than what it could take (the rest is for the next instance to free
 * up), so that the calls run on every instance in parallel instead of in
 * one batch whose calls all wait for all of its rows; with several
 * instances free, what is there goes at once. Nor does a batch wait for
 * company when the version's CPU times say no larger batch runs its calls
 * cheaper (by BATCH_GAIN_PCT) than this one, for calls that cost more CPU
 * than max_delay (resnet18): waiting would only hold the free instance
 * idle. Nor when the instances are the scarce part (engine_bound): a lone
 * call costs the instance at least as much CPU as serve's work and the
 * message's waiting that a batch would share (bert_tiny: 250 us in the
 * instance against 35-60 around it; mlp: 20 against 35-75); there an
 * instance held idle for company loses more than the batch saves, and
 * the calls that wait while every instance is busy still go together
 * (bert_tiny at 8 clients and 2 instances: 0.87-0.91x unbatched, waiting
 * at every batch for the arrivals to pause; 1.18x sending at once). The
 * share applies only when
 * the larger batch would cost its calls latency: when the version's run
 * times (runs) say that running all of them takes more than max_delay
 * longer than running the share (resnet18: 15 ms a row), or are not known;
 * a batch whose rows cost little (mlp: a batch of 32 runs in about the
 * time of 16) takes them all, since splitting it would only send one more
 * message for serve and the instances to handle. Calls that a batch left
 * (left) go at once with the next free instance: they have waited their
 * turn. */
int batch_decide(const batch_view *v, uint64_t *wait_ns, batch_why *why);

/* Whether the version's calls should go one at a time (the first rule of
 * batch_decide, for fixed and auto mode alike; or lone_held, which the
 * scheduler keeps from the rule's decision until a probe's reply has been
 * measured, so that a lone call measured dear by chance does not let
 * batches through between probes): a lone call's CPU time (class 0) is
 * known, and the largest batch size class up to the limit's that is
 * measured costs no less than BATCH_LONE_GAIN_PCT of it per call, in the
 * instance's CPU time (batch_runs_note_instance; the
 * largest: under load a batch is as large as the limit lets it be, and a
 * smaller class measured once, by a probe, does not speak for it). A batch
 * makes its calls wait for each other's rows, tens of milliseconds where
 * this rule applies, so it must save a fifth of their CPU to be worth that
 * (resnet18 on this engine: batches of 8 measured 5-10 % less CPU a call
 * in the instance, and yet cost the machine 7 % more per request, their
 * larger activations evicting the other instance's cache; fixed mode's
 * p99 at 32 clients was 545 ms against 393 unbatched). Judged, like
 * company_pays, only for calls that cost more CPU than max_delay.
 * Before that, where batches cost their calls more CPU each than max_delay
 * but no lone call's cost is known (every call went in a batch), one call
 * goes alone to measure it.
 * The scheduler sets the view's probe once in BATCH_PROBE_EVERY calls it
 * sent this way, so that one batch measures again whether company pays: the
 * smallest, of 2 (one call waits for one other's row; a probe of the
 * limit's size, 8 rows of resnet18, made the p99 of its run). */
bool batch_runs_lone(const batch_runs *r, int limit, uint64_t max_delay_ns);

/* A probe's batch (of 2) was measured: whether it ran its calls cheaper
 * than lone calls (by BATCH_LONE_GAIN_PCT). Then batches go again (the
 * scheduler no longer holds the lone rule), and the larger classes' CPU
 * times, measured before the rule decided, are forgotten, so that
 * batch_runs_lone judges by the probe until the next batches measure them
 * again; else the rule stays held until the next probe, whatever the
 * classes measured before say. */
bool batch_runs_probed(batch_runs *r);
#define BATCH_PROBE_EVERY 1024

/* Notes a run of `size` calls in the instance that took run_ns, and
 * cpu_ns of CPU time in the instance and serve together, its message's
 * wake-ups and polling included (0: not measured). */
void batch_runs_note(batch_runs *r, int size, uint64_t run_ns, uint64_t cpu_ns);

/* Notes the instance's own CPU time for a run of `size` calls: what the
 * lone rule judges by. Serve's polling, which the CPU time above counts,
 * is charged to the reply that ends it, however long it went on (a lone
 * resnet18 call between batches of 8 at 32 clients: 37 ms against 16 in
 * the instance), noise that decides nothing where a call costs tens of
 * milliseconds. */
void batch_runs_note_instance(batch_runs *r, int size, uint64_t inst_cpu_ns);

/* The expected run time of a batch of `size` calls: its class's time per
 * request, else the nearest measured smaller class's (an upper bound: a
 * row costs no more in a larger batch), else the nearest larger's; 0 when
 * nothing is measured. */
uint64_t batch_runs_estimate(const batch_runs *r, int size);

#define BATCH_AIMD_WINDOW 8
/* A class's CPU time per request is known after this many samples. */
#define BATCH_CLASS_MIN_SAMPLES 4
/* A larger class pays when its CPU time per request is below this many
 * hundredths of a smaller one's: a batch costs its requests latency, so a
 * gain within the measurement's noise is no gain. */
#define BATCH_GAIN_PCT 95
/* The lone rule's: a batch of calls dearer than max_delay is worth its
 * rows' wait when it runs them below this many hundredths of a lone
 * call's CPU time. */
#define BATCH_LONE_GAIN_PCT 80
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
    uint64_t row_cpu_ns[BATCH_CLASSES]; /* per request at its power of two, a moving average */
    int n_row[BATCH_CLASSES];           /* its samples (capped) */
    int ceiling;                        /* while hold > 0: the limit grows no further */
    int hold, hold_next;                /* windows left; the next hold */
    uint64_t cheap_ns;                  /* batches that run within this are not held back by CPU */
} batch_aimd;

/* Starts at a limit of 2 (1 when max is 1). cheap_ns: batching.max_delay_us
 * (0: none; see batch_aimd_observe). */
void batch_aimd_init(batch_aimd *a, int max, uint64_t slo_ns, uint64_t cheap_ns);

/* The class of a batch of `size` calls: floor(log2(size)). */
int batch_class(int size);

/* A batch of `size` calls ran in run_ns (in the instance), taking cpu_ns
 * of the instance's CPU time (0: not measured) and serve_ns of serve's to
 * send it and to hand out its replies, and wait_ns waiting for it: the
 * CPU time the instance spent between its previous reply and this
 * message (polling for it, waking up) and serve's polling for its reply.
 * A batch saves serve's and the message's per-call work as well as the
 * engine's (mlp: serve's CPU per request 40-55 us batched against 49-96
 * alone, where the instance's hardly moves), and one message's wake-ups
 * and polling instead of one per call: on cheap calls those are most of
 * what it saves. So the cost per request of a class is all three,
 * divided by its calls. Every BATCH_AIMD_WINDOW
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
 * to max. Returns the limit.
 * The CPU times decide only for batches that cost their calls latency:
 * when the window's median run time is within cheap_ns (max_delay, the
 * wait the function's config grants a batch), a larger batch costs its
 * calls no more than batching was allowed to, and only the SLO holds the
 * limit back (no lone window, no fall to the cheapest class, no hold).
 * mlp: a batch of 16 runs in 0.1-0.2 ms; at 32 clients its class 16
 * measured 1-5 % cheaper a call than 8 in serve's and the instance's CPU,
 * within BATCH_GAIN_PCT, and auto mode held it at 8 (mean batch 8.4 against
 * 14.1, 1.80x unbatched against fixed mode's 1.97x), although the
 * machine's CPU per request was 9 % lower at 14 (the wake-ups of the
 * client and of the other core that a batch's measure does not see). */
int batch_aimd_observe(batch_aimd *a, int size, uint64_t run_ns, uint64_t cpu_ns, uint64_t serve_ns,
                       uint64_t wait_ns);

#endif
