/* The writer thread without a daemon: writes that queue up while a group
 * commits go into one transaction; writes apply and complete in submission
 * order; callbacks run on the submitting thread (never the writer's); a
 * failing write fails alone and says why; a cancelled write still happens
 * but calls nobody back; a writer without a registry runs each write alone;
 * the registry's writer waits as SCHED_BATCH and runs as SCHED_OTHER. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <poll.h>
#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store.h"
#include "store/writer.h"
#include "testdir.h"

#define DIGEST_A "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

typedef struct fixture {
    char dir[256];
    store *reader; /* the loop's connection */
    store_writer *w;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    testdir_make(f->dir, sizeof(f->dir));
    rouse_errbuf eb = {0};
    store *ws;
    if (store_open(f->dir, &f->reader, &eb) != 0 || store_open(f->dir, &ws, &eb) != 0 ||
        store_writer_create(ws, "registry", &f->w, &eb) != 0) {
        fprintf(stderr, "setup: %s\n", eb.msg);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    store_writer_destroy(f->w);
    store_close(f->reader);
    testdir_remove(f->dir);
    free(f);
    return 0;
}

/* A deploy as the server submits it. */
typedef struct deploy_arg {
    char name[STORE_NAME_MAX + 1];
    int64_t version;
    bool created;
    char config[64];
} deploy_arg;

static int apply_deploy(store *st, void *p, rouse_errbuf *eb)
{
    deploy_arg *a = p;
    return store_deploy_tx(st, a->name, DIGEST_A, a->config, &a->version, &a->created, eb);
}

/* What the callbacks saw, in the order they ran. */
typedef struct seen {
    int n;
    int order[64];
    int rc[64];
    int64_t version[64];
    char msg[64][512];
    bool on_main[64];
    pthread_t main;
} seen;

typedef struct tag {
    seen *s;
    int id;
    bool deploy; /* arg is a deploy_arg */
} tag;

static void on_done(void *user, int rc, const rouse_errbuf *eb, void *arg)
{
    tag *t = user;
    seen *s = t->s;
    int i = s->n++;
    s->order[i] = t->id;
    s->rc[i] = rc;
    s->version[i] = t->deploy ? ((deploy_arg *)arg)->version : 0;
    snprintf(s->msg[i], sizeof(s->msg[i]), "%s", rc < 0 ? eb->msg : "");
    s->on_main[i] = pthread_equal(pthread_self(), s->main);
}

/* Waits on the eventfd like the loop and runs completions until n ran. */
static void wait_for(store_writer *w, seen *s, int n)
{
    while (s->n < n) {
        struct pollfd p = {.fd = store_writer_fd(w), .events = POLLIN};
        assert_true(poll(&p, 1, 30000) == 1);
        store_writer_complete(w);
    }
}

/* A write that holds the writer until the test opens the gate: everything
 * submitted meanwhile queues up behind it. */
typedef struct gate {
    pthread_mutex_t m;
    pthread_cond_t c;
    bool open, entered;
} gate;
static gate g_gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, false};

static int apply_wait(store *st, void *p, rouse_errbuf *eb)
{
    (void)st;
    (void)p;
    (void)eb;
    pthread_mutex_lock(&g_gate.m);
    g_gate.entered = true;
    pthread_cond_broadcast(&g_gate.c);
    while (!g_gate.open)
        pthread_cond_wait(&g_gate.c, &g_gate.m);
    pthread_mutex_unlock(&g_gate.m);
    return 0;
}

static void gate_wait_entered(void)
{
    pthread_mutex_lock(&g_gate.m);
    while (!g_gate.entered)
        pthread_cond_wait(&g_gate.c, &g_gate.m);
    pthread_mutex_unlock(&g_gate.m);
}

static void gate_open(void)
{
    pthread_mutex_lock(&g_gate.m);
    g_gate.open = true;
    pthread_cond_broadcast(&g_gate.c);
    pthread_mutex_unlock(&g_gate.m);
}

static void gate_reset(void)
{
    g_gate.open = g_gate.entered = false;
}

static void group_commit_order_and_thread(void **state)
{
    fixture *f = *state;
    seen *s = calloc(1, sizeof(*s));
    s->main = pthread_self();
    tag tags[16];
    for (int i = 0; i < 16; i++)
        tags[i] = (tag){s, i, i > 0};
    gate_reset();
    assert_int_equal(store_writer_submit(f->w, apply_wait, NULL, 0, on_done, &tags[0], NULL), 0);
    gate_wait_entered();
    /* Ten deploys of the same function with ten configs queue behind it. */
    for (int i = 1; i <= 10; i++) {
        deploy_arg a = {.name = "fn"};
        snprintf(a.config, sizeof(a.config), "{\"n\":%d}", i);
        assert_int_equal(
            store_writer_submit(f->w, apply_deploy, &a, sizeof(a), on_done, &tags[i], NULL), 0);
    }
    assert_int_equal(store_writer_pending(f->w), 11);
    store_writer_stats st0;
    store_writer_stats_get(f->w, &st0);
    gate_open();
    wait_for(f->w, s, 11);
    store_writer_stats st1;
    store_writer_stats_get(f->w, &st1);
    /* Group commit: the ten waiting deploys took one transaction. */
    assert_int_equal(st1.n_writes - st0.n_writes, 11);
    assert_int_equal(st1.n_groups - st0.n_groups, 2);
    assert_int_equal(st1.max_group, 10);
    for (int i = 0; i < 11; i++) {
        assert_int_equal(s->order[i], i); /* submission order */
        assert_int_equal(s->rc[i], 0);
        assert_true(s->on_main[i]);                    /* on the loop's thread */
        if (i > 0) assert_int_equal(s->version[i], i); /* applied in order */
    }
    assert_int_equal(store_writer_pending(f->w), 0);
    /* Durable and visible through the other connection. */
    store_function fn;
    rouse_errbuf eb = {0};
    assert_int_equal(store_function_get(f->reader, "fn", &fn, &eb), 0);
    assert_int_equal(fn.n_versions, 10);
    assert_string_equal(fn.versions[9].config_json, "{\"n\":10}");
    store_function_fini(&fn);
    free(s);
}

typedef struct rollback_arg {
    char name[STORE_NAME_MAX + 1];
    int64_t version;
} rollback_arg;

static int apply_rollback(store *st, void *p, rouse_errbuf *eb)
{
    rollback_arg *a = p;
    return store_rollback_tx(st, a->name, &a->version, eb);
}

static void failure_is_reported_and_alone(void **state)
{
    fixture *f = *state;
    seen *s = calloc(1, sizeof(*s));
    s->main = pthread_self();
    tag tags[4] = {{s, 0, false}, {s, 1, true}, {s, 2, false}, {s, 3, true}};
    gate_reset();
    assert_int_equal(store_writer_submit(f->w, apply_wait, NULL, 0, on_done, &tags[0], NULL), 0);
    gate_wait_entered();
    deploy_arg a = {.name = "good", .config = "{}"};
    rollback_arg bad = {.name = "missing"};
    deploy_arg bad_name = {.name = "Bad Name", .config = "{}"};
    assert_int_equal(
        store_writer_submit(f->w, apply_deploy, &a, sizeof(a), on_done, &tags[1], NULL), 0);
    assert_int_equal(
        store_writer_submit(f->w, apply_rollback, &bad, sizeof(bad), on_done, &tags[2], NULL), 0);
    assert_int_equal(store_writer_submit(f->w, apply_deploy, &bad_name, sizeof(bad_name), on_done,
                                         &tags[3], NULL),
                     0);
    gate_open();
    wait_for(f->w, s, 4);
    assert_int_equal(s->rc[1], 0);
    assert_int_equal(s->rc[2], ROUSE_ENOTFOUND);
    assert_non_null(strstr(s->msg[2], "missing"));
    assert_int_equal(s->rc[3], ROUSE_EINVAL);
    /* The failures in the same transaction did not undo the good write. */
    store_function fn;
    rouse_errbuf eb = {0};
    assert_int_equal(store_function_get(f->reader, "good", &fn, &eb), 0);
    store_function_fini(&fn);
    free(s);
}

static void cancel_keeps_the_write(void **state)
{
    fixture *f = *state;
    seen *s = calloc(1, sizeof(*s));
    s->main = pthread_self();
    tag tags[2] = {{s, 0, true}, {s, 1, true}};
    deploy_arg a = {.name = "quiet", .config = "{}"};
    uint64_t ticket;
    assert_int_equal(
        store_writer_submit(f->w, apply_deploy, &a, sizeof(a), on_done, &tags[0], &ticket), 0);
    store_writer_cancel(f->w, ticket);
    deploy_arg b = {.name = "loud", .config = "{}"};
    assert_int_equal(
        store_writer_submit(f->w, apply_deploy, &b, sizeof(b), on_done, &tags[1], NULL), 0);
    wait_for(f->w, s, 1);
    assert_int_equal(s->order[0], 1); /* only the second called back */
    while (store_writer_pending(f->w) > 0) {
        struct pollfd p = {.fd = store_writer_fd(f->w), .events = POLLIN};
        poll(&p, 1, 1000);
        store_writer_complete(f->w);
    }
    assert_int_equal(s->n, 1);
    store_function fn;
    rouse_errbuf eb = {0};
    assert_int_equal(store_function_get(f->reader, "quiet", &fn, &eb), 0);
    store_function_fini(&fn);
    free(s);
}

static int apply_count(store *st, void *p, rouse_errbuf *eb)
{
    assert_null(st);
    int *n = p;
    if (*n == 2) return rouse_err_set(eb, ROUSE_EIO, "write %d failed", *n);
    return 0;
}

static void without_registry_each_alone(void **state)
{
    (void)state;
    store_writer *w;
    rouse_errbuf eb = {0};
    assert_int_equal(store_writer_create(NULL, "blobs", &w, &eb), 0);
    seen *s = calloc(1, sizeof(*s));
    s->main = pthread_self();
    tag tags[4] = {{s, 0, false}, {s, 1, false}, {s, 2, false}, {s, 3, false}};
    for (int i = 0; i < 4; i++)
        assert_int_equal(
            store_writer_submit(w, apply_count, &i, sizeof(i), on_done, &tags[i], NULL), 0);
    wait_for(w, s, 4);
    store_writer_stats st;
    store_writer_stats_get(w, &st);
    assert_int_equal(st.n_groups, 4);
    assert_int_equal(st.max_group, 1);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(s->order[i], i);
        assert_int_equal(s->rc[i], i == 2 ? ROUSE_EIO : 0);
    }
    assert_string_equal(s->msg[2], "write 2 failed");
    store_writer_destroy(w);
    free(s);
}

/* Destroying a writer with writes queued finishes them (durable) and calls
 * nobody back. */
static void destroy_finishes_queued(void **state)
{
    fixture *f = *state;
    seen *s = calloc(1, sizeof(*s));
    tag t = {s, 0, true};
    for (int i = 0; i < 5; i++) {
        deploy_arg a = {.name = "late"};
        snprintf(a.config, sizeof(a.config), "{\"n\":%d}", i);
        assert_int_equal(store_writer_submit(f->w, apply_deploy, &a, sizeof(a), on_done, &t, NULL),
                         0);
    }
    store_writer_destroy(f->w);
    f->w = NULL;
    assert_int_equal(s->n, 0);
    store_function fn;
    rouse_errbuf eb = {0};
    assert_int_equal(store_function_get(f->reader, "late", &fn, &eb), 0);
    assert_int_equal(fn.n_versions, 5);
    store_function_fini(&fn);
    free(s);
}

/* A read's result left in its arg by apply: the release hook frees it
 * once per write, after the callback, instead of it when cancelled, and at
 * destroy for completions never delivered (ASan finds any leak). */
static int g_released;

static int apply_alloc(store *st, void *p, rouse_errbuf *eb)
{
    (void)st;
    (void)eb;
    char **out = p;
    *out = strdup("result");
    return *out ? 0 : ROUSE_ENOMEM;
}

static void release_alloc(void *p)
{
    char **out = p;
    free(*out);
    *out = NULL;
    g_released++;
}

static void on_alloc_done(void *user, int rc, const rouse_errbuf *eb, void *arg)
{
    (void)eb;
    int *called = user;
    assert_int_equal(rc, 0);
    assert_string_equal(*(char **)arg, "result"); /* not released yet */
    (*called)++;
}

static void release_runs_once(void **state)
{
    (void)state;
    store_writer *w;
    rouse_errbuf eb = {0};
    assert_int_equal(store_writer_create(NULL, "reads", &w, &eb), 0);
    g_released = 0;
    int called = 0;
    char *none = NULL;
    uint64_t t1, t2;
    assert_int_equal(store_writer_submit_release(w, apply_alloc, &none, sizeof(none),
                                                 on_alloc_done, release_alloc, &called, &t1),
                     0);
    assert_int_equal(store_writer_submit_release(w, apply_alloc, &none, sizeof(none),
                                                 on_alloc_done, release_alloc, &called, &t2),
                     0);
    store_writer_cancel(w, t2);
    while (store_writer_pending(w) > 0) {
        struct pollfd p = {.fd = store_writer_fd(w), .events = POLLIN};
        assert_true(poll(&p, 1, 30000) == 1);
        store_writer_complete(w);
    }
    assert_int_equal(called, 1);
    assert_int_equal(g_released, 2);
    /* Submitted and never completed on this side: released by destroy. */
    assert_int_equal(store_writer_submit_release(w, apply_alloc, &none, sizeof(none),
                                                 on_alloc_done, release_alloc, &called, NULL),
                     0);
    store_writer_destroy(w);
    assert_int_equal(called, 1);
    assert_int_equal(g_released, 3);
}

/* The policy each write ran under, by its index. */
static int g_policy[4];

static int apply_policy(store *st, void *p, rouse_errbuf *eb)
{
    (void)st;
    (void)eb;
    g_policy[*(int *)p] = sched_getscheduler(0);
    return 0;
}

/* The thread id of this process's thread named name, or -1. */
static pid_t thread_named(const char *name)
{
    DIR *d = opendir("/proc/self/task");
    assert_non_null(d);
    pid_t found = -1;
    struct dirent *e;
    while (found < 0 && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[300], comm[64] = "";
        snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        if (fgets(comm, sizeof(comm), f)) comm[strcspn(comm, "\n")] = '\0';
        fclose(f);
        if (strcmp(comm, name) == 0) found = (pid_t)atoi(e->d_name);
    }
    closedir(d);
    return found;
}

/* Waits (up to 30 s) until thread tid has policy. */
static void wait_policy(pid_t tid, int policy)
{
    for (int i = 0; i < 30000 && sched_getscheduler(tid) != policy; i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(sched_getscheduler(tid), policy);
}

/* An idle registry writer waits as SCHED_BATCH (a background write's
 * wakeup preempts no one); every write, foreground or background, runs as
 * SCHED_OTHER. */
static void waits_as_batch_runs_as_other(void **state)
{
    fixture *f = *state;
    seen s = {.main = pthread_self()};
    tag t[4];
    pid_t tid = thread_named("rouse-registry");
    assert_true(tid > 0);
    for (int i = 0; i < 4; i++) {
        t[i] = (tag){.s = &s, .id = i};
        g_policy[i] = -1;
    }
    wait_policy(tid, SCHED_BATCH);
    int id = 0;
    assert_int_equal(store_writer_submit(f->w, apply_policy, &id, sizeof(id), on_done, &t[0], NULL),
                     0);
    wait_for(f->w, &s, 1);
    assert_int_equal(g_policy[0], SCHED_OTHER);
    wait_policy(tid, SCHED_BATCH);
    id = 1;
    assert_int_equal(
        store_writer_submit_background(f->w, apply_policy, &id, sizeof(id), on_done, NULL, &t[1]),
        0);
    wait_for(f->w, &s, 2);
    assert_int_equal(g_policy[1], SCHED_OTHER);
    /* Idle again, it waits as a batch thread again. */
    wait_policy(tid, SCHED_BATCH);
    for (int i = 0; i < 2; i++)
        assert_int_equal(s.rc[i], 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(group_commit_order_and_thread, setup, teardown),
        cmocka_unit_test_setup_teardown(failure_is_reported_and_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(cancel_keeps_the_write, setup, teardown),
        cmocka_unit_test(without_registry_each_alone),
        cmocka_unit_test(release_runs_once),
        cmocka_unit_test_setup_teardown(destroy_finishes_queued, setup, teardown),
        cmocka_unit_test_setup_teardown(waits_as_batch_runs_as_other, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
