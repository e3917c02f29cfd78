/*
 * Membership and load of several nodes (membership.h): the documents, and
 * the table of the nodes heard, sorted by name, this node apart.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "common/json.h"
#include "server/membership.h"

struct membership {
    char self_name[MEMBER_NAME_MAX + 1];
    member self; /* this node's document as the bucket gave it back */
    bool have_self;
    member *peers; /* sorted by name */
    int n, cap;
    uint64_t n_docs;
};

int membership_create(const char *self, membership **out, rouse_errbuf *eb)
{
    membership *m = calloc(1, sizeof(*m));
    if (!m) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    snprintf(m->self_name, sizeof(m->self_name), "%s", self);
    *out = m;
    return 0;
}

void member_fini(member *mb)
{
    for (int i = 0; i < mb->n_fns; i++)
        free(mb->fns[i].fn);
    free(mb->fns);
    mb->fns = NULL;
    mb->n_fns = 0;
}

void membership_destroy(membership *m)
{
    if (!m) return;
    for (int i = 0; i < m->n; i++)
        member_fini(&m->peers[i]);
    member_fini(&m->self);
    free(m->peers);
    free(m);
}

/* --- documents ----------------------------------------------------------------- */

static bool get_count(const json_value *o, const char *key, int *out)
{
    int64_t v;
    if (!json_as_int64(json_get(o, key), &v) || v < 0 || v > 1000000) return false;
    *out = (int)v;
    return true;
}

static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    return n > 0 && n <= MEMBER_NAME_MAX &&
           s[strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-_.")] == '\0';
}

int member_parse(const char *data, size_t len, member *out, rouse_errbuf *eb)
{
    memset(out, 0, sizeof(*out));
    rouse_arena arena;
    rouse_arena_init(&arena, 4096);
    json_value *root;
    int rc = json_parse(data, len, &arena, &root, eb);
    if (rc < 0) goto out;
    const char *name = json_as_string(json_get(root, "node"));
    const char *url = json_as_string(json_get(root, "url"));
    const json_value *fns = json_get(root, "functions");
    rc = ROUSE_EFORMAT;
    if (!name || !name_ok(name)) {
        rouse_err_set(eb, rc, "membership: \"node\" is not a node name");
        goto out;
    }
    if (!url || strlen(url) > MEMBER_URL_MAX ||
        (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)) {
        rouse_err_set(eb, rc, "membership: \"url\" is not an http(s) URL");
        goto out;
    }
    if (!get_count(root, "slots_free", &out->slots_free)) {
        rouse_err_set(eb, rc, "membership: \"slots_free\" is not a count");
        goto out;
    }
    if (!fns || fns->type != JSON_ARRAY || fns->u.arr.n > MEMBER_FNS_MAX) {
        rouse_err_set(eb, rc, "membership: \"functions\" is not an array of at most %d",
                      MEMBER_FNS_MAX);
        goto out;
    }
    snprintf(out->name, sizeof(out->name), "%s", name);
    snprintf(out->url, sizeof(out->url), "%s", url);
    if (fns->u.arr.n && !(out->fns = calloc(fns->u.arr.n, sizeof(member_fn)))) {
        rc = rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < fns->u.arr.n; i++) {
        const json_value *f = fns->u.arr.items[i];
        const char *fn = json_as_string(json_get(f, "fn"));
        member_fn *mf = &out->fns[out->n_fns];
        route_load *l = &mf->load;
        if (!fn || !*fn || strlen(fn) > 256 || !json_as_int64(json_get(f, "version"), &mf->version) ||
            mf->version < 1 || !get_count(f, "instances", &l->instances) ||
            !get_count(f, "idle", &l->idle) || !get_count(f, "startable", &l->startable) ||
            !get_count(f, "free", &l->free) || !get_count(f, "queued", &l->queued)) {
            rouse_err_set(eb, rc, "membership: functions[%zu] is not {fn, version, instances, "
                                  "idle, startable, free, queued}", i);
            member_fini(out);
            goto out;
        }
        if (!(mf->fn = strdup(fn))) {
            member_fini(out);
            rc = rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
            goto out;
        }
        l->known = true;
        out->n_fns++;
    }
    rc = 0;
out:
    rouse_arena_fini(&arena);
    return rc;
}

typedef struct doc_ctx {
    rouse_buf *b;
    int rc;
    bool first;
} doc_ctx;

static void doc_row(void *user, const pool_load_row *r)
{
    doc_ctx *c = user;
    if (c->rc < 0) return;
    if (!c->first) c->rc = rouse_buf_append_str(c->b, ",");
    c->first = false;
    if (c->rc == 0) c->rc = rouse_buf_append_str(c->b, "{\"fn\":");
    if (c->rc == 0) c->rc = json_write_string(c->b, r->name, strlen(r->name));
    if (c->rc == 0)
        c->rc = rouse_buf_appendf(c->b,
                                  ",\"version\":%lld,\"instances\":%d,\"idle\":%d,\"busy\":%d,"
                                  "\"startable\":%d,\"free\":%d,\"queued\":%d}",
                                  (long long)r->version, r->instances, r->idle, r->busy,
                                  r->startable, r->free_capacity, r->queued);
}

int membership_self_doc(const pool *p, const char *name, const char *url, rouse_buf *out)
{
    int rc = rouse_buf_append_str(out, "{\"node\":");
    if (rc == 0) rc = json_write_string(out, name, strlen(name));
    if (rc == 0) rc = rouse_buf_append_str(out, ",\"url\":");
    if (rc == 0) rc = json_write_string(out, url, strlen(url));
    if (rc == 0) rc = rouse_buf_append_str(out, ",\"functions\":[");
    doc_ctx c = {.b = out, .rc = rc, .first = true};
    int slots = rc == 0 ? pool_load(p, doc_row, &c) : 0;
    rc = c.rc;
    if (rc == 0) rc = rouse_buf_appendf(out, "],\"slots_free\":%d}", slots);
    return rc;
}

/* --- the table ------------------------------------------------------------------- */

int membership_on_put(membership *m, const char *key, const char *data, size_t len,
                      uint64_t now_ns, rouse_errbuf *eb)
{
    if (strncmp(key, MEMBERSHIP_KEY_PREFIX, strlen(MEMBERSHIP_KEY_PREFIX)) != 0) return 0;
    if (len == 0) return 0; /* a delete or purge marker */
    member mb;
    int rc = member_parse(data, len, &mb, eb);
    if (rc < 0) return rc;
    if (strcmp(key + strlen(MEMBERSHIP_KEY_PREFIX), mb.name) != 0) {
        member_fini(&mb);
        return rouse_err_set(eb, ROUSE_EFORMAT, "membership: key %s holds node %s", key, mb.name);
    }
    mb.heard_ns = now_ns;
    mb.gen = ++m->n_docs;
    if (strcmp(mb.name, m->self_name) == 0) {
        member_fini(&m->self);
        m->self = mb;
        m->have_self = true;
        return 0;
    }
    int i = 0;
    while (i < m->n && strcmp(m->peers[i].name, mb.name) < 0)
        i++;
    if (i < m->n && strcmp(m->peers[i].name, mb.name) == 0) {
        member_fini(&m->peers[i]);
        m->peers[i] = mb;
        return 0;
    }
    if (m->n == m->cap) {
        int cap = m->cap ? 2 * m->cap : 8;
        member *p = realloc(m->peers, (size_t)cap * sizeof(*p));
        if (!p) {
            member_fini(&mb);
            return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
        }
        m->peers = p;
        m->cap = cap;
    }
    memmove(&m->peers[i + 1], &m->peers[i], (size_t)(m->n - i) * sizeof(member));
    m->peers[i] = mb;
    m->n++;
    return 0;
}

void membership_expire(membership *m, uint64_t now_ns)
{
    uint64_t gone = (uint64_t)MEMBERSHIP_GONE_MS * 1000000ull;
    int k = 0;
    for (int i = 0; i < m->n; i++) {
        if (now_ns - m->peers[i].heard_ns > gone) {
            member_fini(&m->peers[i]);
            continue;
        }
        m->peers[k++] = m->peers[i];
    }
    m->n = k;
}

int membership_peers(membership *m, member **out)
{
    *out = m->peers;
    return m->n;
}

static member_fn *find_fn(const member *mb, const char *fn, int64_t version)
{
    for (int i = 0; i < mb->n_fns; i++)
        if (mb->fns[i].version == version && strcmp(mb->fns[i].fn, fn) == 0) return &mb->fns[i];
    return NULL;
}

route_load member_load(const member *mb, const char *fn, int64_t version)
{
    const member_fn *f = find_fn(mb, fn, version);
    if (!f) return (route_load){.known = false};
    route_load l = f->load;
    l.idle = l.idle > f->pending ? l.idle - f->pending : 0;
    l.free = l.free > f->pending ? l.free - f->pending : 0;
    return l;
}

uint64_t member_note_sent(member *mb, const char *fn, int64_t version)
{
    member_fn *f = find_fn(mb, fn, version);
    if (f)
        f->pending++;
    else
        mb->pending_new++;
    return mb->gen;
}

void membership_note_done(membership *m, const char *name, uint64_t gen, const char *fn,
                          int64_t version)
{
    for (int i = 0; i < m->n; i++) {
        member *mb = &m->peers[i];
        if (strcmp(mb->name, name) != 0) continue;
        if (mb->gen != gen) return; /* a newer document counts it already */
        member_fn *f = find_fn(mb, fn, version);
        if (f && f->pending > 0)
            f->pending--;
        else if (!f && mb->pending_new > 0)
            mb->pending_new--;
        return;
    }
}

void membership_rank(const membership *m, uint64_t now_ns, int *rank, int *n)
{
    uint64_t fresh = (uint64_t)MEMBERSHIP_FRESH_MS * 1000000ull;
    *rank = 0;
    *n = 1;
    for (int i = 0; i < m->n; i++) {
        if (now_ns - m->peers[i].heard_ns > fresh) continue;
        (*n)++;
        if (strcmp(m->peers[i].name, m->self_name) < 0) (*rank)++;
    }
}

static int write_member(const member *mb, uint64_t now_ns, rouse_buf *b)
{
    uint64_t age_ms = (now_ns - mb->heard_ns) / 1000000ull;
    int rc = rouse_buf_append_str(b, "{\"name\":");
    if (rc == 0) rc = json_write_string(b, mb->name, strlen(mb->name));
    if (rc == 0) rc = rouse_buf_append_str(b, ",\"url\":");
    if (rc == 0) rc = json_write_string(b, mb->url, strlen(mb->url));
    if (rc == 0)
        rc = rouse_buf_appendf(b, ",\"age_ms\":%llu,\"fresh\":%s,\"slots_free\":%d,\"functions\":[",
                               (unsigned long long)age_ms,
                               age_ms <= MEMBERSHIP_FRESH_MS ? "true" : "false", mb->slots_free);
    for (int i = 0; rc == 0 && i < mb->n_fns; i++) {
        const member_fn *f = &mb->fns[i];
        if (i) rc = rouse_buf_append_str(b, ",");
        if (rc == 0) rc = rouse_buf_append_str(b, "{\"fn\":");
        if (rc == 0) rc = json_write_string(b, f->fn, strlen(f->fn));
        if (rc == 0)
            rc = rouse_buf_appendf(b,
                                   ",\"version\":%lld,\"instances\":%d,\"idle\":%d,"
                                   "\"startable\":%d,\"free\":%d,\"queued\":%d}",
                                   (long long)f->version, f->load.instances, f->load.idle,
                                   f->load.startable, f->load.free, f->load.queued);
    }
    if (rc == 0) rc = rouse_buf_append_str(b, "]}");
    return rc;
}

int membership_write_json(const membership *m, uint64_t now_ns, rouse_buf *out)
{
    int rc = rouse_buf_append_str(out, "[");
    bool first = true;
    /* This node and the others, in name order. */
    bool self_done = !m->have_self;
    for (int i = 0; rc == 0 && i <= m->n; i++) {
        if (!self_done && (i == m->n || strcmp(m->self_name, m->peers[i].name) < 0)) {
            if (!first) rc = rouse_buf_append_str(out, ",");
            if (rc == 0) rc = write_member(&m->self, now_ns, out);
            first = false;
            self_done = true;
        }
        if (rc < 0 || i == m->n) break;
        if (!first) rc = rouse_buf_append_str(out, ",");
        if (rc == 0) rc = write_member(&m->peers[i], now_ns, out);
        first = false;
    }
    if (rc == 0) rc = rouse_buf_append_str(out, "]");
    return rc;
}
