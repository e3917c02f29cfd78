/*
 * Fetching blobs from peers and a bucket, writing uploads through to the
 * bucket, reading blobs ahead (blob_remote.h).
 *
 * Invariants:
 * - A job is on exactly one list: `todo` (FIFO), `running` (a thread holds
 *   it) or `done`; the lists change under the lock only. The threads touch
 *   a job's kind, digest, peers, rc and msg; its waiters belong to the
 *   loop alone (added when a job is found or made, under the lock).
 * - A fetched body reaches the blob store's name only through
 *   blob_write_commit_expect: its sha256 was the digest asked for.
 */
#include "store/blob_remote.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#define ERR_BODY_MAX 2048

typedef enum job_kind { JOB_FETCH, JOB_PUSH, JOB_READ } job_kind;

typedef struct waiter {
    uint64_t ticket;
    blob_remote_done done; /* NULL once cancelled */
    void *user;
    struct waiter *next;
} waiter;

typedef struct job {
    job_kind kind;
    char digest[BLOB_DIGEST_LEN + 1];
    char peers[BLOB_PEERS_MAX][BLOB_PEER_URL_MAX];
    int n_peers;
    int rc;
    char msg[1536];
    waiter *waiters, *wtail;
    struct job *next;
} job;

struct blob_remote {
    blobstore *blobs;
    uint64_t max_bytes;
    blob_peers_fn peers;
    void *peers_user;
    char key_header[300]; /* "Rouse-Cluster-Key: ..." or "" */
    bool has_s3;
    blob_s3 s3;
    char bucket_name[320];
    pthread_t threads[BLOB_REMOTE_THREADS];
    int n_threads;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    atomic_bool stop;
    int efd;
    job *todo, *todo_tail, *running, *done, *done_tail;
    uint64_t next_ticket;
    int n_pending;
    blob_remote_stats stats; /* the loop's */
};

/* --- one transfer -------------------------------------------------------------- */

/* What a GET's body goes into: the blob store while the status is 200,
 * else a short buffer for the error's words. */
typedef struct sink {
    blob_remote *r;
    CURL *curl;
    blob_writer *w;
    int write_rc;
    rouse_errbuf eb;
    char err[ERR_BODY_MAX];
    size_t err_len;
} sink;

static size_t on_body(char *p, size_t size, size_t n, void *user)
{
    sink *s = user;
    size_t len = size * n;
    long code = 0;
    curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &code);
    if (code != 200) {
        size_t room = sizeof(s->err) - 1 - s->err_len;
        size_t take = len < room ? len : room;
        memcpy(s->err + s->err_len, p, take);
        s->err_len += take;
        s->err[s->err_len] = '\0';
        return len;
    }
    if (!s->w) {
        s->write_rc = blob_write_begin(s->r->blobs, s->r->max_bytes, &s->w, &s->eb);
        if (s->write_rc < 0) return 0; /* ends the transfer */
    }
    s->write_rc = blob_write(s->w, p, len, &s->eb);
    return s->write_rc < 0 ? 0 : len;
}

static int on_progress(void *user, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt, (void)dn, (void)ut, (void)un;
    blob_remote *r = user;
    return atomic_load(&r->stop) ? 1 : 0; /* nonzero aborts: serve is stopping */
}

static void common_opts(blob_remote *r, CURL *c, const char *url)
{
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)BLOB_REMOTE_CONNECT_MS);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, (long)BLOB_REMOTE_LOW_SPEED);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)BLOB_REMOTE_LOW_SPEED_S);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, r);
}

/* Signs the request for the bucket; payload_hex is the body's sha256. */
static struct curl_slist *s3_sign(blob_remote *r, CURL *c, const char *payload_hex,
                                  struct curl_slist *h)
{
    char line[2200];
    curl_easy_setopt(c, CURLOPT_AWS_SIGV4, r->s3.sigv4);
    curl_easy_setopt(c, CURLOPT_USERPWD, r->s3.userpwd);
    snprintf(line, sizeof(line), "x-amz-content-sha256: %s", payload_hex);
    h = curl_slist_append(h, line);
    if (r->s3.token[0]) {
        snprintf(line, sizeof(line), "x-amz-security-token: %s", r->s3.token);
        h = curl_slist_append(h, line);
    }
    return h;
}

/* The words of an error reply: an S3 error document's code and message,
 * or the start of the body (rouse's {"error": ...}). */
static void error_words(const char *body, size_t len, char *out, size_t cap)
{
    blob_s3_error_text(body, len, out, cap);
    if (out[0] || cap == 0) return;
    size_t at = 0;
    for (size_t i = 0; i < len && i < 200 && at + 1 < cap; i++) {
        unsigned char c = (unsigned char)body[i];
        if (c == '\n' || c == '\r') continue;
        out[at++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    out[at] = '\0';
}

/* GETs url into the blob store as j->digest. 0 stored, ROUSE_ENOTFOUND
 * (404), or another code with why in err. */
static int get_one(blob_remote *r, CURL *c, job *j, const char *url, bool s3, char *err,
                   size_t cap)
{
    sink s;
    memset(&s, 0, sizeof(s));
    s.r = r;
    s.curl = c;
    rouse_errbuf_clear(&s.eb);
    common_opts(r, c, url);
    struct curl_slist *h = NULL;
    if (s3)
        h = s3_sign(r, c, BLOB_S3_EMPTY_SHA256, h);
    else if (r->key_header[0])
        h = curl_slist_append(h, r->key_header);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    CURLcode cc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(h);
    int rc;
    if (s.write_rc < 0) {
        snprintf(err, cap, "%s", s.eb.msg);
        rc = s.write_rc;
    } else if (cc != CURLE_OK) {
        snprintf(err, cap, "%s", atomic_load(&r->stop) ? "serve is stopping"
                                                        : curl_easy_strerror(cc));
        rc = ROUSE_EIO;
    } else if (code == 200) {
        if (!s.w && (rc = blob_write_begin(r->blobs, r->max_bytes, &s.w, &s.eb)) < 0) {
            snprintf(err, cap, "%s", s.eb.msg); /* an empty blob */
        } else {
            char got[BLOB_DIGEST_LEN + 1];
            rc = blob_write_commit_expect(s.w, j->digest, got, NULL, &s.eb);
            s.w = NULL; /* freed by the commit */
            if (rc < 0) snprintf(err, cap, "%s", s.eb.msg);
        }
    } else if (code == 404) {
        rc = ROUSE_ENOTFOUND;
    } else {
        char words[300];
        error_words(s.err, s.err_len, words, sizeof(words));
        snprintf(err, cap, "answered %ld%s%s", code, words[0] ? ": " : "", words);
        rc = ROUSE_EIO;
    }
    blob_write_abort(s.w);
    return rc;
}

/* Appends "; source: why" to the job's message. */
static void add_failure(job *j, const char *source, const char *why)
{
    size_t at = strlen(j->msg);
    snprintf(j->msg + at, sizeof(j->msg) - at, "%s%s: %s", at ? "; " : "", source, why);
}

static void run_fetch(blob_remote *r, CURL *c, job *j)
{
    if (blob_stat(r->blobs, j->digest, NULL) == 0) {
        j->rc = 0; /* meanwhile uploaded or fetched */
        return;
    }
    bool failed = false;
    char url[BLOB_PEER_URL_MAX + 128], err[1024];
    for (int i = 0; i < j->n_peers && !atomic_load(&r->stop); i++) {
        const char *base = j->peers[i];
        size_t n = strlen(base);
        while (n > 0 && base[n - 1] == '/')
            n--;
        snprintf(url, sizeof(url), "%.*s/v1/blobs/%s", (int)n, base, j->digest);
        err[0] = '\0';
        int rc = get_one(r, c, j, url, false, err, sizeof(err));
        if (rc == 0) {
            j->rc = 0;
            return;
        }
        if (rc != ROUSE_ENOTFOUND) {
            char source[BLOB_PEER_URL_MAX + 8];
            snprintf(source, sizeof(source), "peer %.*s", (int)n, base);
            add_failure(j, source, err);
            failed = true;
        }
    }
    if (r->has_s3 && !atomic_load(&r->stop)) {
        err[0] = '\0';
        int rc = blob_s3_object_url(&r->s3, j->digest, url, sizeof(url));
        if (rc == 0) rc = get_one(r, c, j, url, true, err, sizeof(err));
        if (rc == 0) {
            j->rc = 0;
            return;
        }
        if (rc != ROUSE_ENOTFOUND) {
            add_failure(j, r->bucket_name, err);
            failed = true;
        }
    }
    if (failed) {
        j->rc = ROUSE_EIO;
    } else {
        j->rc = ROUSE_ENOTFOUND;
        snprintf(j->msg, sizeof(j->msg), "no blob %s on any peer%s%s", j->digest,
                 r->has_s3 ? " nor in " : "", r->has_s3 ? r->bucket_name : "");
    }
}

static size_t discard(char *p, size_t size, size_t n, void *user)
{
    (void)p, (void)user;
    return size * n;
}

static size_t keep_error(char *p, size_t size, size_t n, void *user)
{
    sink *s = user;
    size_t len = size * n;
    size_t room = sizeof(s->err) - 1 - s->err_len;
    size_t take = len < room ? len : room;
    memcpy(s->err + s->err_len, p, take);
    s->err_len += take;
    s->err[s->err_len] = '\0';
    return len;
}

static size_t read_file(char *p, size_t size, size_t n, void *user)
{
    int fd = *(int *)user;
    for (;;) {
        ssize_t got = read(fd, p, size * n);
        if (got >= 0) return (size_t)got;
        if (errno != EINTR) return CURL_READFUNC_ABORT;
    }
}

static void run_push(blob_remote *r, CURL *c, job *j)
{
    char url[1024], path[PATH_MAX];
    uint64_t size = 0;
    if (blob_s3_object_url(&r->s3, j->digest, url, sizeof(url)) < 0 ||
        blob_path(r->blobs, j->digest, path, sizeof(path)) < 0 ||
        blob_stat(r->blobs, j->digest, &size) < 0) {
        j->rc = ROUSE_ENOTFOUND;
        snprintf(j->msg, sizeof(j->msg), "no blob %s on this node", j->digest);
        return;
    }
    const char *hex = j->digest + 7;
    /* Already there (content-addressed: the same name, the same bytes)? */
    common_opts(r, c, url);
    struct curl_slist *h = s3_sign(r, c, BLOB_S3_EMPTY_SHA256, NULL);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    CURLcode cc = curl_easy_perform(c);
    long code = 0;
    curl_off_t len = -1;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_getinfo(c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len);
    curl_slist_free_all(h);
    if (cc == CURLE_OK && code == 200 && len == (curl_off_t)size) {
        j->rc = 0;
        return;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        j->rc = ROUSE_EIO;
        snprintf(j->msg, sizeof(j->msg), "cannot read blob %s: %s", j->digest, strerror(errno));
        return;
    }
    sink s;
    memset(&s, 0, sizeof(s));
    common_opts(r, c, url);
    h = s3_sign(r, c, hex, NULL);
    h = curl_slist_append(h, "Content-Type: application/octet-stream");
    h = curl_slist_append(h, "Expect:");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)size);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, read_file);
    curl_easy_setopt(c, CURLOPT_READDATA, &fd);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, keep_error);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    cc = curl_easy_perform(c);
    code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(h);
    close(fd);
    if (cc != CURLE_OK) {
        j->rc = ROUSE_EIO;
        snprintf(j->msg, sizeof(j->msg), "%s: %s", r->bucket_name,
                 atomic_load(&r->stop) ? "serve is stopping" : curl_easy_strerror(cc));
    } else if (code < 200 || code > 299) {
        char words[300];
        error_words(s.err, s.err_len, words, sizeof(words));
        j->rc = ROUSE_EIO;
        snprintf(j->msg, sizeof(j->msg), "%s answered %ld%s%s", r->bucket_name, code,
                 words[0] ? ": " : "", words);
    } else {
        j->rc = 0;
    }
}

static void run_read(blob_remote *r, job *j)
{
    char path[PATH_MAX];
    uint64_t size = 0;
    if (blob_path(r->blobs, j->digest, path, sizeof(path)) < 0 ||
        blob_stat(r->blobs, j->digest, &size) < 0) {
        j->rc = ROUSE_ENOTFOUND;
        snprintf(j->msg, sizeof(j->msg), "no blob %s", j->digest);
        return;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        j->rc = ROUSE_EIO;
        snprintf(j->msg, sizeof(j->msg), "cannot read blob %s: %s", j->digest, strerror(errno));
        return;
    }
    /* readahead(2) returns once the pages are read; a failure only
     * leaves the loop to read them itself. */
    (void)readahead(fd, 0, (size_t)size);
    close(fd);
    j->rc = 0;
}

/* --- threads and jobs ------------------------------------------------------------ */

static void *thread_main(void *arg)
{
    blob_remote *r = arg;
    CURL *c = curl_easy_init();
    pthread_mutex_lock(&r->lock);
    while (!atomic_load(&r->stop)) {
        job *j = r->todo;
        if (!j) {
            pthread_cond_wait(&r->cond, &r->lock);
            continue;
        }
        r->todo = j->next;
        if (!r->todo) r->todo_tail = NULL;
        j->next = r->running;
        r->running = j;
        pthread_mutex_unlock(&r->lock);

        if (j->kind == JOB_READ) {
            run_read(r, j);
        } else if (!c) {
            j->rc = ROUSE_EIO;
            snprintf(j->msg, sizeof(j->msg), "libcurl did not initialize");
        } else if (j->kind == JOB_FETCH) {
            run_fetch(r, c, j);
        } else {
            run_push(r, c, j);
        }

        pthread_mutex_lock(&r->lock);
        for (job **pp = &r->running; *pp; pp = &(*pp)->next)
            if (*pp == j) {
                *pp = j->next;
                break;
            }
        j->next = NULL;
        if (r->done_tail)
            r->done_tail->next = j;
        else
            r->done = j;
        r->done_tail = j;
        uint64_t one = 1;
        if (write(r->efd, &one, sizeof(one)) < 0) {
            /* The counter cannot overflow in practice; the loop reads the list anyway. */
        }
    }
    pthread_mutex_unlock(&r->lock);
    if (c) curl_easy_cleanup(c);
    return NULL;
}

int blob_remote_create(const blob_remote_opts *o, blob_remote **out, rouse_errbuf *eb)
{
    *out = NULL;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return rouse_err_set(eb, ROUSE_EIO, "libcurl did not initialize");
    blob_remote *r = calloc(1, sizeof(*r));
    if (!r) {
        curl_global_cleanup();
        return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    }
    r->blobs = o->blobs;
    r->max_bytes = o->max_bytes;
    r->peers = o->peers;
    r->peers_user = o->peers_user;
    if (o->cluster_key)
        snprintf(r->key_header, sizeof(r->key_header), "Rouse-Cluster-Key: %s", o->cluster_key);
    if (o->s3) {
        r->has_s3 = true;
        r->s3 = *o->s3;
        blob_s3_describe(&r->s3, r->bucket_name, sizeof(r->bucket_name));
    }
    r->next_ticket = 1;
    atomic_init(&r->stop, false);
    r->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (r->efd < 0) {
        free(r);
        curl_global_cleanup();
        return rouse_err_set(eb, ROUSE_EIO, "eventfd for blob transfers: %s", strerror(errno));
    }
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    for (int i = 0; i < BLOB_REMOTE_THREADS; i++) {
        if (pthread_create(&r->threads[i], NULL, thread_main, r) != 0) {
            blob_remote_destroy(r);
            return rouse_err_set(eb, ROUSE_EIO, "cannot start the blob transfer threads");
        }
        r->n_threads++;
    }
    *out = r;
    return 0;
}

static void free_jobs(job *j)
{
    while (j) {
        job *n = j->next;
        for (waiter *w = j->waiters; w;) {
            waiter *wn = w->next;
            free(w);
            w = wn;
        }
        free(j);
        j = n;
    }
}

void blob_remote_destroy(blob_remote *r)
{
    if (!r) return;
    pthread_mutex_lock(&r->lock);
    atomic_store(&r->stop, true);
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
    for (int i = 0; i < r->n_threads; i++)
        pthread_join(r->threads[i], NULL);
    free_jobs(r->todo);
    free_jobs(r->running);
    free_jobs(r->done);
    pthread_cond_destroy(&r->cond);
    pthread_mutex_destroy(&r->lock);
    close(r->efd);
    free(r);
    curl_global_cleanup();
}

int blob_remote_fd(const blob_remote *r)
{
    return r->efd;
}

bool blob_remote_has_sources(const blob_remote *r)
{
    return r->peers || r->has_s3;
}

bool blob_remote_has_bucket(const blob_remote *r)
{
    return r->has_s3;
}

const char *blob_remote_bucket_name(const blob_remote *r)
{
    return r->bucket_name;
}

static job *find(job *l, job_kind kind, const char *digest)
{
    for (; l; l = l->next)
        if (l->kind == kind && strcmp(l->digest, digest) == 0) return l;
    return NULL;
}

static int submit(blob_remote *r, job_kind kind, const char *digest, blob_remote_done done,
                  void *user, uint64_t *ticket)
{
    if (!blob_digest_valid(digest)) return ROUSE_EINVAL;
    if (kind == JOB_PUSH && !r->has_s3) return ROUSE_ESTATE;
    waiter *w = calloc(1, sizeof(*w));
    if (!w) return ROUSE_ENOMEM;
    w->done = done;
    w->user = user;
    w->ticket = r->next_ticket++;
    pthread_mutex_lock(&r->lock);
    /* One transfer per blob and kind: join a job that has not finished. */
    job *j = find(r->todo, kind, digest);
    if (!j) j = find(r->running, kind, digest);
    bool fresh = !j;
    if (fresh) {
        pthread_mutex_unlock(&r->lock);
        j = calloc(1, sizeof(*j));
        if (!j) {
            free(w);
            return ROUSE_ENOMEM;
        }
        j->kind = kind;
        snprintf(j->digest, sizeof(j->digest), "%s", digest);
        if (kind == JOB_FETCH && r->peers) {
            j->n_peers = r->peers(r->peers_user, j->peers, BLOB_PEERS_MAX);
            if (j->n_peers < 0) j->n_peers = 0;
            if (j->n_peers > BLOB_PEERS_MAX) j->n_peers = BLOB_PEERS_MAX;
        }
        pthread_mutex_lock(&r->lock);
    }
    if (j->wtail)
        j->wtail->next = w;
    else
        j->waiters = w;
    j->wtail = w;
    if (fresh) {
        if (r->todo_tail)
            r->todo_tail->next = j;
        else
            r->todo = j;
        r->todo_tail = j;
        r->n_pending++;
        pthread_cond_signal(&r->cond);
    }
    pthread_mutex_unlock(&r->lock);
    if (ticket) *ticket = w->ticket;
    return 0;
}

int blob_remote_fetch(blob_remote *r, const char *digest, blob_remote_done done, void *user,
                      uint64_t *ticket)
{
    return submit(r, JOB_FETCH, digest, done, user, ticket);
}

int blob_remote_push(blob_remote *r, const char *digest, blob_remote_done done, void *user,
                     uint64_t *ticket)
{
    return submit(r, JOB_PUSH, digest, done, user, ticket);
}

int blob_remote_read_ahead(blob_remote *r, const char *digest, blob_remote_done done, void *user,
                           uint64_t *ticket)
{
    return submit(r, JOB_READ, digest, done, user, ticket);
}

static bool cancel_in(job *l, uint64_t ticket)
{
    for (; l; l = l->next)
        for (waiter *w = l->waiters; w; w = w->next)
            if (w->ticket == ticket) {
                w->done = NULL;
                return true;
            }
    return false;
}

void blob_remote_cancel(blob_remote *r, uint64_t ticket)
{
    if (!ticket) return;
    pthread_mutex_lock(&r->lock);
    if (!cancel_in(r->todo, ticket) && !cancel_in(r->running, ticket))
        cancel_in(r->done, ticket);
    pthread_mutex_unlock(&r->lock);
}

void blob_remote_complete(blob_remote *r)
{
    uint64_t n;
    if (read(r->efd, &n, sizeof(n)) < 0) {
        /* Nothing signalled: the list may still hold what an earlier read left. */
    }
    pthread_mutex_lock(&r->lock);
    job *list = r->done;
    r->done = r->done_tail = NULL;
    pthread_mutex_unlock(&r->lock);
    while (list) {
        job *j = list;
        list = j->next;
        r->n_pending--;
        if (j->kind == JOB_FETCH) {
            r->stats.fetches++;
            if (j->rc < 0) r->stats.fetch_failures++;
        } else if (j->kind == JOB_PUSH) {
            r->stats.pushes++;
            if (j->rc < 0) r->stats.push_failures++;
        }
        for (waiter *w = j->waiters; w;) {
            waiter *wn = w->next;
            if (w->done) w->done(w->user, j->rc, j->msg);
            free(w);
            w = wn;
        }
        free(j);
    }
}

int blob_remote_pending(const blob_remote *r)
{
    return r->n_pending;
}

void blob_remote_stats_get(const blob_remote *r, blob_remote_stats *out)
{
    *out = r->stats;
}
