/*
 * The pool's registry sync: everything in the pool that reads the registry.
 * A call to a version without a pool reads its config (and the model's
 * path) from the store; deploys, rollbacks, alias changes and serve's start
 * make the pools follow the aliases: versions no alias routes to retire,
 * routed versions with a `min` get a pool that keeps it warm, and routed
 * versions at zero get their kernels generated in the zygote ahead of their
 * first request. It calls the scheduler (pool_sched.h) and the zygote;
 * nothing calls back into it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "server/pool_sched.h"
#include "store/blob.h"
#include "store/store.h"

#define MOD "pool"

static int load_config(pool *p, const char *name, int64_t version, fn_config *cfg, char *model_path,
                       size_t cap, rouse_errbuf *eb)
{
    store_version sv;
    memset(&sv, 0, sizeof(sv));
    int rc = store_version_get(p->st, name, version, &sv, eb);
    if (rc < 0) return rc;
    rc = fn_config_load(sv.config_json, strlen(sv.config_json), cfg, eb);
    if (rc == 0) fn_config_set_tenant(cfg, name);
    if (rc == 0 && model_path) rc = blob_path(p->blobs, sv.model_digest, model_path, cap);
    free(sv.config_json);
    if (rc < 0)
        return rouse_err_wrap(eb, ROUSE_EINTERNAL, "stored config of %s v%" PRId64, name, version);
    return 0;
}

int pool_submit(pool *p, const pool_request *rq, pool_call **out, int *retry_after,
                rouse_errbuf *eb)
{
    vpool *vp = sched_find(p, rq->name, rq->version);
    if (!vp) {
        fn_config cfg;
        char model_path[PATH_MAX];
        int rc = load_config(p, rq->name, rq->version, &cfg, model_path, sizeof(model_path), eb);
        if (rc == 0 && !(vp = sched_add_pool(p, rq->name, rq->version, &cfg, model_path)))
            rc = rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
        if (rc < 0) {
            if (rq->body_fd >= 0) close(rq->body_fd);
            free(rq->body);
            return rc;
        }
    }
    return sched_submit(p, vp, rq, out, retry_after, eb);
}

int pool_free_capacity(pool *p, const char *name, int64_t version)
{
    vpool *vp = sched_find(p, name, version);
    return vp ? sched_free_capacity(p, vp) : 1;
}

/* Whether a version is named by any alias of the function. */
static bool aliased(const store_function *f, int64_t version)
{
    for (int i = 0; i < f->n_aliases; i++)
        for (int j = 0; j < f->aliases[i].n_routes; j++)
            if (f->aliases[i].routes[j].version == version) return true;
    return false;
}

/* True when route j of alias i names a version an earlier route of f
 * (in alias order) already names: "latest" and "prod" often agree. */
static bool routed_before(const store_function *f, int i, int j)
{
    int64_t version = f->aliases[i].routes[j].version;
    for (int a = 0; a <= i; a++)
        for (int r = 0; r < (a < i ? f->aliases[a].n_routes : j); r++)
            if (f->aliases[a].routes[r].version == version) return true;
    return false;
}

/* The pools of f after its aliases changed: versions no alias names finish
 * what they hold, then stop (a version an alias names again keeps its min
 * again), every routed version with a min gets a pool, whose warm
 * instances the next pump starts, not its first request, and every other
 * routed version without a pool gets its kernels generated in the zygote. */
static void apply_routes(pool *p, const store_function *f)
{
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    for (vpool *vp = p->pools; vp; vp = vp->next)
        if (strcmp(vp->name, f->name) == 0) vp->retired = !aliased(f, vp->version);
    for (int i = 0; i < f->n_aliases; i++) {
        for (int j = 0; j < f->aliases[i].n_routes; j++) {
            int64_t version = f->aliases[i].routes[j].version;
            fn_config cfg;
            char model_path[PATH_MAX];
            if (sched_find(p, f->name, version) || routed_before(f, i, j)) continue;
            if (load_config(p, f->name, version, &cfg, model_path, sizeof(model_path), &eb) < 0) {
                LOG_ERROR(MOD, "function %s v%" PRId64 ": %s", f->name, version, eb.msg);
                continue;
            }
            if (cfg.scaling.min > 0) { /* its template starts with the next pump */
                if (!sched_add_pool(p, f->name, version, &cfg, model_path))
                    LOG_ERROR(MOD, "function %s v%" PRId64 ": out of memory", f->name, version);
                continue;
            }
            /* Routed but at zero (a deploy, a rollback, a restart): its
             * kernels are generated now, in the zygote, not at its first
             * request. A version warmed before costs the zygote a lookup. */
            sched_argbuf buf;
            char *argv[TEMPLATE_ARGV_MAX];
            int argc = sched_template_argv(p, model_path, f->name, version,
                                           sched_config_digest(&cfg), &cfg, &buf, argv);
            zygote_warm(&p->procs.zyg, argc - 1, argv + 1);
        }
    }
}

void pool_deployed(pool *p, const char *name, int64_t version)
{
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    fn_config cfg;
    store_function f;
    memset(&f, 0, sizeof(f));
    if (load_config(p, name, version, &cfg, NULL, 0, &eb) < 0 ||
        store_function_get(p->st, name, &f, &eb) < 0) {
        LOG_ERROR(MOD, "function %s v%" PRId64 ": %s", name, version, eb.msg);
        store_function_fini(&f);
        return;
    }
    /* The newest pool of the same model (same memory) that no alias names
     * any more takes the new config: a scaling change applies live, with
     * its instances, template and waiting requests. */
    vpool *same = NULL;
    if (!sched_find(p, name, version)) {
        for (vpool *vp = p->pools; vp; vp = vp->next) {
            if (strcmp(vp->name, name) != 0 || aliased(&f, vp->version)) continue;
            if (strcmp(vp->cfg.model, cfg.model) != 0 || vp->cfg.memory_mb != cfg.memory_mb)
                continue;
            /* Its template prepared other batch sizes (or none). */
            if ((vp->cfg.batching.mode != FN_BATCH_OFF) != (cfg.batching.mode != FN_BATCH_OFF) ||
                vp->cfg.batching.max_batch != cfg.batching.max_batch)
                continue;
            if (!same || vp->version > same->version) same = vp;
        }
    }
    if (same) {
        LOG_INFO(MOD, "function %s: v%" PRId64 " takes over the instances of v%" PRId64, name,
                 version, same->version);
        same->version = version;
        if (same->cfg.batching.slo_ms != cfg.batching.slo_ms ||
            same->cfg.batching.mode != cfg.batching.mode ||
            same->cfg.batching.max_delay_us != cfg.batching.max_delay_us)
            batch_aimd_init(&same->aimd, (int)cfg.batching.max_batch,
                            (uint64_t)cfg.batching.slo_ms * 1000000ull,
                            (uint64_t)cfg.batching.max_delay_us * 1000ull);
        same->cfg = cfg;
        same->retired = false;
    }
    apply_routes(p, &f);
    store_function_fini(&f);
    sched_pump_all(p);
}

void pool_routes_changed(pool *p, const char *name)
{
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    store_function f;
    memset(&f, 0, sizeof(f));
    if (store_function_get(p->st, name, &f, &eb) < 0)
        LOG_ERROR(MOD, "function %s: %s", name, eb.msg);
    else
        apply_routes(p, &f);
    store_function_fini(&f);
    sched_pump_all(p);
}

static int restore_one(void *user, const store_function *f)
{
    apply_routes(user, f);
    return 0;
}

int pool_restore(pool *p, rouse_errbuf *eb)
{
    int rc = store_function_list(p->st, restore_one, p, eb);
    sched_pump_all(p);
    return rc;
}

void pool_forget_function(pool *p, const char *name)
{
    for (vpool *vp = p->pools, *n; vp; vp = n) {
        n = vp->next;
        if (strcmp(vp->name, name) == 0) sched_free_pool(p, vp, 503, "the function was deleted");
    }
}

/* Summing scaling.min over every function's routed versions. */
typedef struct min_sum {
    pool *p;
    const char *name; /* being deployed: its "latest" will route the new version alone */
    int64_t total;
    int rc; /* a stored config that cannot be read */
    rouse_errbuf *eb;
} min_sum;

/* Whether alias i of f counts: a deploy of f points "latest" elsewhere. */
static bool alias_counts(const min_sum *m, const store_function *f, int i)
{
    return strcmp(f->name, m->name) != 0 || strcmp(f->aliases[i].name, STORE_DEFAULT_ALIAS) != 0;
}

static int add_mins(void *user, const store_function *f)
{
    min_sum *m = user;
    for (int i = 0; i < f->n_aliases; i++) {
        if (!alias_counts(m, f, i)) continue;
        for (int j = 0; j < f->aliases[i].n_routes; j++) {
            int64_t version = f->aliases[i].routes[j].version;
            bool counted = false; /* by an earlier route that counts */
            for (int a = 0; a <= i && !counted; a++) {
                if (!alias_counts(m, f, a)) continue;
                for (int r = 0; r < (a < i ? f->aliases[a].n_routes : j); r++)
                    if (f->aliases[a].routes[r].version == version) counted = true;
            }
            if (counted) continue;
            fn_config cfg;
            if ((m->rc = load_config(m->p, f->name, version, &cfg, NULL, 0, m->eb)) < 0) return 1;
            m->total += cfg.scaling.min;
        }
    }
    return 0;
}

int pool_check_min(pool *p, const char *name, int64_t min, rouse_errbuf *eb)
{
    if (min <= 0) return 0;
    min_sum m = {.p = p, .name = name, .total = min, .eb = eb};
    int rc = store_function_list(p->st, add_mins, &m, eb);
    if (rc < 0) return rc;
    if (m.rc < 0) return m.rc;
    if (m.total <= p->max_instances) return 0;
    return rouse_err_set(eb, ROUSE_EINVAL,
                         "scaling.min: the routed versions of all functions would keep %" PRId64
                         " instances warm, above the instance cap of %d (serve --max-instances)",
                         m.total, p->max_instances);
}
