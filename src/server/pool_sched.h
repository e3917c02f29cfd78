/*
 * The pool's scheduling (pool_sched.c): version pools, their queues,
 * dispatch to workers, starting workers and templates, min and idle
 * instances, deadlines, the fair share of the global cap, and what the
 * processes' messages and ends mean for the calls. It is the only caller of
 * the pure policy (pool_policy.h). It calls down into the lifecycle
 * (pool_proc.h), the protocol (pool_ipc.h) and the statistics
 * (pool_stats.h); the registry part (pool_registry.c) calls it.
 */
#ifndef ROUSE_SERVER_POOL_SCHED_H
#define ROUSE_SERVER_POOL_SCHED_H

#include "server/pool_int.h"

/* The pool of name/version, or NULL. */
vpool *sched_find(pool *p, const char *name, int64_t version);
/* A new version pool with its config and model file; NULL when out of memory. */
vpool *sched_add_pool(pool *p, const char *name, int64_t version, const fn_config *cfg,
                      const char *model_path);
/* Ends every call of vp with status/why, stops its processes and frees it. */
void sched_free_pool(pool *p, vpool *vp, int status, const char *why);
/* pool_submit for a known pool. */
int sched_submit(pool *p, vpool *vp, const pool_request *rq, pool_call **out, int *retry_after,
                 rouse_errbuf *eb);
/* pool_free_capacity for a known pool. */
int sched_free_capacity(const pool *p, const vpool *vp);
/* Moves waiting calls to free slots and starts what the pools need. */
void sched_pump(pool *p, vpool *vp);
void sched_pump_all(pool *p);
/* The batch timer fired (EP_BATCH_TIMER): batches whose wait is over go. */
void sched_batch_timer(pool *p);

/* At most: 14 fixed, --check, --memory-mb, --precision, --max-context and
 * three tokenizer files, --streams, --max-batch (or a generator's
 * --prefill-batch and --prefill-delay-us), --sha256, --weight-pages,
 * --sandbox (2 each), a --cgroup per controller, the NULL, and two per
 * calibration sample. */
#define TEMPLATE_ARGV_MAX (45 + 2 * CGROUP_N_CTL + 2 * FN_CALIB_MAX)
/* Room for the strings of a worker's arguments: its version, and
 * "--calibrate NAME=PATH" per calibration blob. */
typedef struct sched_argbuf {
    char ver[32];
    char max_context[24];
    char tok[3][PATH_MAX];
    char memory_mb[24];
    char max_batch[24];
    char delay_us[24];
    char streams[24];
    char calib[FN_CALIB_MAX][PATH_MAX + FN_CALIB_NAME_MAX + 2];
    char uid[16];                         /* the sandbox's */
    char cgroup[CGROUP_N_CTL][PATH_MAX + 16]; /* "CONTROLLER=DIR" */
    char pidns[48];                       /* "PID:INODE" */
} sched_argbuf;
/* The arguments of `rouse __template` for a version (argv[0] the executable;
 * ver is room for the version). digest: the model's sha256 in hex, or
 * NULL. Returns argc. */
int sched_template_argv(pool *p, const char *model_path, const char *name, int64_t version,
                        const char *digest, const fn_config *cfg, sched_argbuf *buf,
                        char *argv[TEMPLATE_ARGV_MAX]);
/* The tenant a version's processes run for (its sandbox's ids). */
const char *sched_tenant(const fn_config *cfg);
/* The model digest of a version's config ("sha256:HEX"), or NULL. */
const char *sched_config_digest(const fn_config *cfg);

#endif
