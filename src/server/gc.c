/*
 * Storage collection: blobs and compiled plans that nothing refers to any
 * more are removed; temporaries a killed serve left are removed at start.
 *
 * A blob stays while the registry refers to it (store_blob_refs_tx: the
 * versions whose model it is; jobs and batches add theirs there) and,
 * unreferenced, for --blob-grace-ms after its upload (a client uploads,
 * then deploys). A plan (<data>/plans/<hex>.plan, compiled from the blob
 * with that digest, or <hex>-<precision>.plan at another precision) goes
 * with its blob. So the blobs of failed deploys,
 * and the blobs and plans of deleted functions, go once their grace is
 * over, unless another version still names them.
 *
 * Sweeps run on the registry's writer thread, inside its transaction:
 * counting the references and removing the file happen with no write in
 * between, so a deploy either committed first (the blob is referenced and
 * stays) or checks for the blob after it is gone (and fails as if it had
 * never been uploaded); the loop never waits for a directory scan. A sweep
 * runs at start, every GC_INTERVAL_S, and after each delete and each failed
 * deploy. DELETE /v1/blobs/{digest} takes the same path (api_admin.c).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "common/log.h"
#include "common/sha256.h"
#include "common/timeutil.h"
#include "server/server_int.h"

#define MOD "gc"
#define GC_INTERVAL_S 60

int gc_plan_path(const char *plan_dir, const char *digest, char *out, size_t len)
{
    int n = snprintf(out, len, "%s/%s.plan", plan_dir, digest + 7 /* "sha256:" */);
    return n < 0 || (size_t)n >= len ? ROUSE_ERANGE : 0;
}

static void remove_plan_file(const char *path)
{
    if (unlink(path) < 0 && errno != ENOENT)
        LOG_WARN(MOD, "cannot remove %s: %s", path, strerror(errno));
}

static void remove_plan(const char *plan_dir, const char *digest)
{
    char path[PATH_MAX + 96];
    if (gc_plan_path(plan_dir, digest, path, sizeof(path)) == 0) remove_plan_file(path);
}

/* The length of the digest's hex when name is a plan's file name:
 * <hex>.plan, <hex>-<precision>.plan or <hex>-int8-<key>.plan; else 0. */
static size_t plan_name_hex(const char *name)
{
    size_t n = strlen(name), h = ROUSE_SHA256_HEX_LEN;
    if (n < h + 5 || strcmp(name + n - 5, ".plan") != 0) return 0;
    if (n == h + 5) return h;
    if (name[h] != '-' || n == h + 6) return 0;
    for (size_t i = h + 1; i < n - 5; i++)
        if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
              name[i] == '-')) return 0;
    return h;
}

typedef struct sweep_arg {
    blobstore *blobs;
    char plan_dir[PATH_MAX + 8];
    int64_t now_ms, grace_ms;
    int n_blobs, n_plans; /* removed */
} sweep_arg;

typedef struct sweep_ctx {
    store *st;
    sweep_arg *a;
    rouse_errbuf *eb;
    int rc;
} sweep_ctx;

static int sweep_blob(void *user, const char *digest, int64_t uploaded_ms)
{
    sweep_ctx *c = user;
    if (c->a->now_ms - uploaded_ms < c->a->grace_ms) return 0;
    int64_t refs;
    if ((c->rc = store_blob_refs_tx(c->st, digest, &refs, c->eb)) < 0) return 1;
    if (refs > 0) return 0;
    rouse_errbuf ignore;
    if (blob_remove(c->a->blobs, digest, &ignore) == 0) c->a->n_blobs++;
    remove_plan(c->a->plan_dir, digest);
    return 0;
}

/* Plans whose blob is gone and that nothing refers to (a plan's name is
 * its model's digest, and its precision when not fp32). Temporaries of
 * compiles in progress are left. */
static int sweep_plans(sweep_ctx *c)
{
    DIR *d = opendir(c->a->plan_dir);
    if (!d) return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!plan_name_hex(e->d_name)) continue;
        char digest[BLOB_DIGEST_LEN + 1];
        snprintf(digest, sizeof(digest), "sha256:%.*s", ROUSE_SHA256_HEX_LEN, e->d_name);
        if (!blob_digest_valid(digest) || blob_stat(c->a->blobs, digest, NULL) != ROUSE_ENOTFOUND)
            continue;
        int64_t refs;
        if ((c->rc = store_blob_refs_tx(c->st, digest, &refs, c->eb)) < 0) break;
        if (refs > 0) continue;
        char path[PATH_MAX + 300];
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", c->a->plan_dir, e->d_name) >=
            sizeof(path))
            continue;
        remove_plan_file(path);
        c->a->n_plans++;
    }
    closedir(d);
    return c->rc;
}

static int apply_sweep(store *st, void *p, rouse_errbuf *eb)
{
    sweep_arg *a = p;
    sweep_ctx c = {.st = st, .a = a, .eb = eb};
    int rc = blob_each(a->blobs, sweep_blob, &c, eb);
    if (rc == 0) rc = c.rc;
    if (rc == 0) rc = sweep_plans(&c);
    return rc;
}

static void swept(void *user, int rc, const rouse_errbuf *eb, void *p)
{
    server *s = user;
    const sweep_arg *a = p;
    s->gc_queued = false;
    if (rc < 0)
        LOG_WARN(MOD, "collecting unused blobs: %s", eb->msg);
    else if (a->n_blobs || a->n_plans)
        LOG_INFO(MOD, "removed %d unused blob(s) and %d plan(s) without a blob", a->n_blobs,
                 a->n_plans);
}

void gc_request(server *s)
{
    if (s->gc_queued || !s->writer.w) return;
    sweep_arg *a = calloc(1, sizeof(*a));
    if (!a) return;
    a->blobs = s->blobs;
    snprintf(a->plan_dir, sizeof(a->plan_dir), "%s", s->plan_dir);
    a->now_ms = rouse_wall_ms();
    a->grace_ms = s->opts.blob_grace_ms;
    if (store_writer_submit(s->writer.w, apply_sweep, a, sizeof(*a), swept, s, NULL) == 0)
        s->gc_queued = true;
    free(a);
}

int gc_clean_temporaries(const char *plan_dir, rouse_errbuf *eb)
{
    DIR *d = opendir(plan_dir);
    if (!d) return rouse_err_set(eb, ROUSE_EIO, "cannot read %s: %s", plan_dir, strerror(errno));
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        /* eng_plan_file_write's temporaries: <hex>.plan.tmpXXXXXX */
        if (!strstr(e->d_name, ".plan.tmp")) continue;
        if (unlinkat(dirfd(d), e->d_name, 0) == 0)
            n++;
        else if (errno != ENOENT)
            LOG_WARN(MOD, "cannot remove %s/%s: %s", plan_dir, e->d_name, strerror(errno));
    }
    closedir(d);
    if (n)
        LOG_INFO(MOD, "removed %d plan temporar%s left by a stopped serve", n,
                 n == 1 ? "y" : "ies");
    return 0;
}

int gc_start(server *s, rouse_errbuf *eb)
{
    s->gc_timer.kind = EP_TIMER;
    s->gc_timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (s->gc_timer_fd < 0) return rouse_err_set(eb, ROUSE_EIO, "timerfd: %s", strerror(errno));
    struct itimerspec its = {.it_interval = {GC_INTERVAL_S, 0}, .it_value = {GC_INTERVAL_S, 0}};
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &s->gc_timer};
    if (timerfd_settime(s->gc_timer_fd, 0, &its, NULL) < 0 ||
        epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->gc_timer_fd, &ev) < 0) {
        close(s->gc_timer_fd);
        s->gc_timer_fd = -1;
        return rouse_err_set(eb, ROUSE_EIO, "cannot arm the collection timer: %s", strerror(errno));
    }
    gc_request(s);
    return 0;
}

void gc_on_timer(server *s)
{
    uint64_t n;
    if (read(s->gc_timer_fd, &n, sizeof(n)) < 0 && errno != EAGAIN) return;
    gc_request(s);
}

void gc_stop(server *s)
{
    if (s->gc_timer_fd >= 0) close(s->gc_timer_fd);
    s->gc_timer_fd = -1;
}
