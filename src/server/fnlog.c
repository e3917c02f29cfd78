/*
 * Function logs (see fnlog.h). A ring is a list of entries, oldest first,
 * with a per-function sequence number that only grows, so that a follower
 * says where it is with one number and never sees a line twice or out of
 * order; lines dropped from the ring before a slow follower read them are
 * skipped (the ring is bounded, its readers are not waited for).
 */
#include "server/fnlog.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "common/json.h"
#include "common/timeutil.h"
#include "store/store.h"

typedef struct entry {
    struct entry *next;
    uint64_t seq;
    int64_t time_ms;
    int64_t version;
    int pid;
    char stream[8];
    size_t len;
    char text[];
} entry;

typedef struct ring {
    char name[STORE_NAME_MAX + 1];
    entry *head, *tail;
    size_t n_lines, n_bytes;
    uint64_t next_seq;
    struct ring *next;
} ring;

typedef struct out_pipe {
    ep_tag tag; /* EP_OUTPUT: first */
    fnlog *l;
    int fd;
    char name[STORE_NAME_MAX + 1];
    int64_t version;
    int pid;
    size_t plen;
    char partial[FNLOG_LINE_MAX];
    struct out_pipe *prev, *next;
} out_pipe;

struct fnlog_follower {
    fnlog *l;
    char name[STORE_NAME_MAX + 1];
    uint64_t next_seq; /* the next line to send */
    int64_t since_ms;  /* lines before this are skipped */
    rouse_buf pending; /* rendered, not yet read */
    size_t pending_off;
    bool ended;
    uint64_t last_ns; /* last byte given out (heartbeats) */
    void (*wake)(void *user);
    void *user;
    fnlog_follower *prev, *next;
};

struct fnlog {
    int epfd;
    ring *rings;
    out_pipe *pipes;
    fnlog_follower *followers;
};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int fnlog_create(int epfd, fnlog **out, rouse_errbuf *eb)
{
    fnlog *l = calloc(1, sizeof(*l));
    if (!l) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    l->epfd = epfd;
    *out = l;
    return 0;
}

static void pipe_close(fnlog *l, out_pipe *p)
{
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, p->fd, NULL);
    close(p->fd);
    if (p->prev)
        p->prev->next = p->next;
    else
        l->pipes = p->next;
    if (p->next) p->next->prev = p->prev;
    free(p);
}

static void ring_free(ring *r)
{
    for (entry *e = r->head, *n; e; e = n) {
        n = e->next;
        free(e);
    }
    free(r);
}

void fnlog_destroy(fnlog *l)
{
    if (!l) return;
    while (l->pipes)
        pipe_close(l, l->pipes);
    for (ring *r = l->rings, *n; r; r = n) {
        n = r->next;
        ring_free(r);
    }
    /* Followers belong to their requests, which end before this. */
    for (fnlog_follower *f = l->followers; f; f = f->next)
        f->l = NULL;
    free(l);
}

static ring *ring_of(fnlog *l, const char *name, bool create)
{
    for (ring *r = l->rings; r; r = r->next)
        if (strcmp(r->name, name) == 0) return r;
    if (!create) return NULL;
    ring *r = calloc(1, sizeof(*r));
    if (!r) return NULL;
    snprintf(r->name, sizeof(r->name), "%s", name);
    r->next_seq = 1;
    r->next = l->rings;
    l->rings = r;
    return r;
}

void fnlog_append(fnlog *l, const char *name, int64_t version, int pid, const char *stream,
                  const char *text, size_t len)
{
    while (len && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        len--;
    if (len > FNLOG_LINE_MAX) len = FNLOG_LINE_MAX;
    ring *r = ring_of(l, name, true);
    entry *e = r ? malloc(sizeof(*e) + len + 1) : NULL;
    if (!e) return; /* out of memory: the line is lost, the loop goes on */
    e->next = NULL;
    e->seq = r->next_seq++;
    e->time_ms = wall_ms();
    e->version = version;
    e->pid = pid;
    snprintf(e->stream, sizeof(e->stream), "%s", stream);
    e->len = len;
    memcpy(e->text, text, len);
    e->text[len] = '\0';
    if (r->tail)
        r->tail->next = e;
    else
        r->head = e;
    r->tail = e;
    r->n_lines++;
    r->n_bytes += len;
    while (r->head && r->head != e &&
           (r->n_lines > FNLOG_MAX_LINES || r->n_bytes > FNLOG_MAX_BYTES)) {
        entry *old = r->head;
        r->head = old->next;
        r->n_lines--;
        r->n_bytes -= old->len;
        free(old);
    }
    for (fnlog_follower *f = l->followers; f; f = f->next)
        if (!f->ended && strcmp(f->name, name) == 0) f->wake(f->user);
}

int fnlog_add_pipe(fnlog *l, const char *name, int64_t version, int pid, int fd)
{
    out_pipe *p = calloc(1, sizeof(*p));
    if (!p) {
        close(fd);
        return ROUSE_ENOMEM;
    }
    p->tag.kind = EP_OUTPUT;
    p->l = l;
    p->fd = fd;
    p->version = version;
    p->pid = pid;
    snprintf(p->name, sizeof(p->name), "%s", name);
    int fl = fcntl(fd, F_GETFL);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &p->tag};
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
        epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        close(fd);
        free(p);
        return ROUSE_EIO;
    }
    p->next = l->pipes;
    if (l->pipes) l->pipes->prev = p;
    l->pipes = p;
    return 0;
}

static void pipe_flush(out_pipe *p)
{
    if (!p->plen) return;
    fnlog_append(p->l, p->name, p->version, p->pid, "output", p->partial, p->plen);
    /* serve's stderr still shows what its processes print, as when they
     * wrote there themselves, now saying whose it is. */
    fprintf(stderr, "%s v%" PRId64 " pid %d: %.*s\n", p->name, p->version, p->pid, (int)p->plen,
            p->partial);
    p->plen = 0;
}

void fnlog_on_event(fnlog *l, ep_tag *tag)
{
    out_pipe *p = (out_pipe *)tag;
    char buf[8192];
    size_t total = 0;
    while (total < FNLOG_READ_MAX) {
        ssize_t n = read(p->fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (n <= 0) { /* every writer is gone */
            pipe_flush(p);
            pipe_close(l, p);
            return;
        }
        total += (size_t)n;
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] == '\n') {
                pipe_flush(p);
                continue;
            }
            if (p->plen == sizeof(p->partial)) pipe_flush(p); /* cut an endless line */
            p->partial[p->plen++] = buf[i];
        }
    }
    /* More waits: epoll is level-triggered and says so again. */
}

static int write_entry(rouse_buf *b, const char *name, const entry *e)
{
    int rc = rouse_buf_appendf(b,
                               "{\"seq\":%" PRIu64 ",\"time_ms\":%" PRId64 ",\"function\":\"%s\","
                               "\"version\":%" PRId64 ",\"pid\":%d,\"stream\":\"%s\",\"text\":",
                               e->seq, e->time_ms, name, e->version, e->pid, e->stream);
    if (rc == 0) rc = json_write_string(b, e->text, e->len);
    if (rc == 0) rc = rouse_buf_append_str(b, "}");
    return rc;
}

int fnlog_write_json(fnlog *l, const char *name, int64_t since_ms, rouse_buf *out)
{
    int rc = rouse_buf_appendf(out, "{\"name\":\"%s\",\"lines\":[", name);
    ring *r = ring_of(l, name, false);
    bool first = true;
    for (const entry *e = r ? r->head : NULL; rc == 0 && e; e = e->next) {
        if (e->time_ms < since_ms) continue;
        if (!first) rc = rouse_buf_append_str(out, ",");
        first = false;
        if (rc == 0) rc = write_entry(out, name, e);
    }
    if (rc == 0) rc = rouse_buf_append_str(out, "]}\n");
    return rc;
}

static void end_follower(fnlog_follower *f)
{
    if (f->ended) return;
    f->ended = true;
    f->wake(f->user);
}

void fnlog_forget(fnlog *l, const char *name)
{
    for (ring **pp = &l->rings; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->name, name) != 0) continue;
        ring *r = *pp;
        *pp = r->next;
        ring_free(r);
        break;
    }
    for (fnlog_follower *f = l->followers; f; f = f->next)
        if (strcmp(f->name, name) == 0) end_follower(f);
}

int fnlog_follow(fnlog *l, const char *name, int64_t since_ms, void (*wake)(void *user),
                 void *user, fnlog_follower **out)
{
    fnlog_follower *f = calloc(1, sizeof(*f));
    if (!f) return ROUSE_ENOMEM;
    f->l = l;
    snprintf(f->name, sizeof(f->name), "%s", name);
    f->since_ms = since_ms;
    f->next_seq = 1;
    f->wake = wake;
    f->user = user;
    f->last_ns = rouse_now_ns();
    rouse_buf_init(&f->pending);
    f->next = l->followers;
    if (l->followers) l->followers->prev = f;
    l->followers = f;
    *out = f;
    return 0;
}

void fnlog_unfollow(fnlog_follower *f)
{
    if (!f) return;
    if (f->l) {
        if (f->prev)
            f->prev->next = f->next;
        else
            f->l->followers = f->next;
        if (f->next) f->next->prev = f->prev;
    }
    rouse_buf_fini(&f->pending);
    free(f);
}

/* Renders the lines f has not had yet into f->pending. */
static void render(fnlog_follower *f)
{
    ring *r = f->l ? ring_of(f->l, f->name, false) : NULL;
    for (const entry *e = r ? r->head : NULL; e; e = e->next) {
        if (e->seq < f->next_seq) continue;
        f->next_seq = e->seq + 1;
        if (e->time_ms < f->since_ms) continue;
        rouse_buf_appendf(&f->pending, "id: %" PRIu64 "\ndata: ", e->seq);
        write_entry(&f->pending, f->name, e);
        rouse_buf_append_str(&f->pending, "\n\n");
    }
}

size_t fnlog_follower_read(fnlog_follower *f, char *buf, size_t max, bool *ended)
{
    *ended = false;
    if (f->pending_off == f->pending.len) {
        rouse_buf_clear(&f->pending);
        f->pending_off = 0;
        render(f);
    }
    size_t n = f->pending.len - f->pending_off;
    if (n > max) n = max;
    if (n) {
        memcpy(buf, f->pending.data + f->pending_off, n);
        f->pending_off += n;
        f->last_ns = rouse_now_ns();
    } else if (f->ended) {
        *ended = true;
    }
    return n;
}

void fnlog_end_all(fnlog *l)
{
    for (fnlog_follower *f = l->followers; f; f = f->next)
        end_follower(f);
}

int fnlog_tick(fnlog *l)
{
    uint64_t now = rouse_now_ns(), beat = (uint64_t)FNLOG_HEARTBEAT_MS * 1000000ull;
    int64_t next = -1;
    for (fnlog_follower *f = l->followers; f; f = f->next) {
        if (f->ended) continue;
        if (now - f->last_ns >= beat) {
            rouse_buf_append_str(&f->pending, ": keep-alive\n\n");
            f->last_ns = now;
            f->wake(f->user);
        }
        int64_t left = (int64_t)((f->last_ns + beat - now) / 1000000ull) + 1;
        if (next < 0 || left < next) next = left;
    }
    return next > INT32_MAX ? INT32_MAX : (int)next;
}
