/*
 * pool_check(): asserts the invariants stated in pool_int.h, pool_proc.h
 * and pool_ipc.h over the whole pool. serve's loop runs it after every
 * iteration; it is compiled in sanitizer builds (ROUSE_POOL_CHECK, set by
 * the ROUSE_SANITIZE CMake option), where the whole test suite runs with
 * it, and is a no-op otherwise: it walks every process and call.
 */
/* It asserts whatever the build type: a build with NDEBUG would make it a
 * walk that checks nothing. */
#undef NDEBUG
#include <assert.h>
#include <stddef.h>

#include "server/pool_int.h"

#ifdef ROUSE_POOL_CHECK

static void check_worker(const pool *p, const vpool *vp, const worker *w, int *counted)
{
    (void)p;
    assert(w->h.kind == PROC_WORKER && !w->h.dead);
    assert(w->vp == vp && !w->held);
    if (w->h.state != PROC_STOPPING) (*counted)++;
    int n = 0, msgs = 0;
    bool region_call_found = w->region.lent_to == NULL;
    for (const call *c = w->inflight; c; c = c->next) {
        assert(c->w == w);
        assert(c->vp == vp);
        if (!c->next) assert(w->inflight_tail == c);
        if ((const void *)c == w->region.lent_to) region_call_found = true;
        /* A batch's calls are consecutive: its first starts a message. */
        if (c->batch_id) {
            const call *k = c;
            for (int i = 1; i < c->batch_n; i++) {
                k = k->next;
                assert(k && k->batch_id == c->batch_id && k->batch_n == c->batch_n);
            }
            if (!k->next) assert(w->inflight_tail == k);
            n += c->batch_n - 1;
            c = k;
        }
        n++;
        msgs++;
    }
    assert(n == w->n_inflight);
    assert(msgs == w->n_msgs);
    if (n == 0) assert(w->inflight_tail == NULL);
    assert(region_call_found);
    bool idle = w->h.state == PROC_READY && w->h.sock >= 0 && w->n_inflight == 0;
    assert(w->idle == idle);
    if (w->t) assert(w->t->h.kind == PROC_TEMPLATE);
    if (w->vnext) assert(w->vnext->vprev == w);
}

static void check_pool(const pool *p, const vpool *vp, int *total)
{
    int n = 0, n_bg = 0;
    const call *last = NULL;
    for (const call *c = vp->queue; c; c = c->next) {
        assert(c->w == NULL);
        assert(c->vp == vp);
        last = c;
        n++;
        n_bg += c->background;
    }
    assert(n == vp->n_queued);
    assert(n_bg == vp->n_bg_queued);
    assert(vp->queue_tail == last);
    if (vp->tmpl) {
        assert(vp->tmpl->h.kind == PROC_TEMPLATE && !vp->tmpl->h.dead);
        assert(vp->tmpl->vp == vp);
        assert(vp->tmpl->h.state != PROC_STOPPING);
    }
    int counted = 0;
    if (vp->workers) assert(vp->workers->vprev == NULL);
    for (const worker *w = vp->workers; w; w = w->vnext)
        check_worker(p, vp, w, &counted);
    assert(counted == vp->n_instances);
    *total += counted;
}

void pool_check(const pool *p)
{
    int total = 0;
    for (const vpool *vp = p->pools; vp; vp = vp->next)
        check_pool(p, vp, &total);
    assert(total == p->n_instances);
    assert(p->n_instances >= 0);
    int n_idle = 0;
    const worker *prev = NULL;
    for (const worker *w = p->idle_head; w; prev = w, w = w->inext) {
        assert(w->idle && w->vp);
        assert(w->iprev == prev);
        if (prev) assert(prev->idle_since_ns <= w->idle_since_ns);
        n_idle++;
    }
    assert(p->idle_tail == prev);
    int n_spares = 0;
    for (const tmpl *t = p->templates; t; t = t->next) {
        assert(t->h.kind == PROC_TEMPLATE && !t->h.dead);
        if (t->spare) {
            assert(t->vp);
            n_spares++;
        }
        if (t->vp) assert(t->vp->tmpl == t);
        if (t->held) { /* connected ahead, counted as the spare */
            assert(t->spare && t->vp);
            assert(t->held->held && t->held->vp == t->vp && !t->held->idle);
            assert(t->held->n_inflight == 0 && t->held->h.state != PROC_STOPPING);
        }
        int n = 0;
        for (const worker *w = t->waiting; w; w = w->tnext) {
            assert(w->t == t);
            n++;
        }
        assert(n == t->n_waiting);
        if (t->next) assert(t->next->prev == t);
    }
    assert(n_spares == p->n_spares);
    assert(p->n_instances + p->n_spares <= p->max_instances);
    for (const validator *v = p->validators; v; v = v->next) {
        assert(v->h.kind == PROC_VALIDATOR && !v->answered);
        if (v->next) assert(v->next->prev == v);
    }
    proc_table_check(&p->procs);
}

#else

void pool_check(const pool *p)
{
    (void)p;
}

#endif
