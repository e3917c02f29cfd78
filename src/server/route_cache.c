/*
 * The routing cache (see server_int.h): alias -> version resolution from
 * memory. An entry is filled from one store_function_get on the first
 * request for a function and lives until the next registry write (every
 * write path calls route_cache_clear), so answers are exactly what the
 * store would say. Misses of any kind go back to the store, which words the
 * 404s; the cache only ever answers with a version that exists.
 *
 * An entry also keeps the model metadata document of each version once an
 * instance has answered it (api_oip.c), so that later metadata requests
 * need no instance: not one started from zero on a single node, nor a call
 * to a peer on a node that cannot run the model.
 */
#include <stdlib.h>
#include <string.h>

#include "server/server_int.h"

static unsigned slot_of(const char *name)
{
    /* FNV-1a: names are short and trusted to be valid by now. */
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h % ROUTE_CACHE_SLOTS;
}

static void entry_fini(route_cache_entry *e)
{
    if (!e->used) return;
    for (int i = 0; e->meta && i < e->f.n_versions; i++)
        free(e->meta[i]);
    free(e->meta);
    free(e->meta_len);
    e->meta = NULL;
    e->meta_len = NULL;
    store_function_fini(&e->f);
    e->used = false;
}

const store_function *route_cache_function(server *s, const char *name)
{
    route_cache_entry *e = &s->rcache[slot_of(name)];
    if (!e->used || strcmp(e->f.name, name) != 0) {
        store_function f;
        memset(&f, 0, sizeof(f));
        if (store_function_get(s->st, name, &f, NULL) < 0) return NULL;
        entry_fini(e);
        /* Configs are not needed here: keep only what routing reads. */
        for (int i = 0; i < f.n_versions; i++) {
            free(f.versions[i].config_json);
            f.versions[i].config_json = NULL;
        }
        e->f = f;
        e->used = true;
    }
    return &e->f;
}

int route_cache_resolve(server *s, const char *name, const char *ver, int64_t *version)
{
    const store_function *f = route_cache_function(s, name);
    if (!f) return ROUSE_ENOTFOUND;
    int64_t v;
    if (store_version_parse(ver, &v)) {
        for (int i = 0; i < f->n_versions; i++) {
            if (f->versions[i].version == v) {
                *version = v;
                return 0;
            }
        }
        return ROUSE_ENOTFOUND;
    }
    const char *alias = ver[0] ? ver : STORE_DEFAULT_ALIAS;
    for (int i = 0; i < f->n_aliases; i++) {
        const store_alias *a = &f->aliases[i];
        if (strcmp(a->name, alias) != 0 || a->n_routes <= 0) continue;
        *version = a->routes[store_route_pick(a->routes, a->n_routes, server_random(s))].version;
        return 0;
    }
    return ROUSE_ENOTFOUND;
}

void route_cache_clear(server *s)
{
    for (int i = 0; i < ROUTE_CACHE_SLOTS; i++)
        entry_fini(&s->rcache[i]);
    s->rcache_gen++;
}

uint64_t route_cache_gen(const server *s)
{
    return s->rcache_gen;
}

/* The index of version v in e's versions, or -1. */
static int version_index(const route_cache_entry *e, int64_t v)
{
    for (int i = 0; i < e->f.n_versions; i++)
        if (e->f.versions[i].version == v) return i;
    return -1;
}

const char *route_cache_meta(server *s, const char *name, int64_t version, size_t *len)
{
    const route_cache_entry *e = &s->rcache[slot_of(name)];
    if (!e->used || !e->meta || strcmp(e->f.name, name) != 0) return NULL;
    int i = version_index(e, version);
    if (i < 0 || !e->meta[i]) return NULL;
    *len = e->meta_len[i];
    return e->meta[i];
}

void route_cache_meta_put(server *s, uint64_t gen, const char *name, int64_t version,
                          const char *doc, size_t len)
{
    route_cache_entry *e = &s->rcache[slot_of(name)];
    if (gen != s->rcache_gen || !e->used || strcmp(e->f.name, name) != 0) return;
    int i = version_index(e, version);
    if (i < 0) return;
    if (!e->meta) {
        e->meta = calloc((size_t)e->f.n_versions, sizeof(*e->meta));
        e->meta_len = calloc((size_t)e->f.n_versions, sizeof(*e->meta_len));
        if (!e->meta || !e->meta_len) {
            free(e->meta);
            free(e->meta_len);
            e->meta = NULL;
            e->meta_len = NULL;
            return;
        }
    }
    if (e->meta[i]) return;
    char *copy = malloc(len + 1);
    if (!copy) return;
    memcpy(copy, doc, len);
    copy[len] = '\0';
    e->meta[i] = copy;
    e->meta_len[i] = len;
}
