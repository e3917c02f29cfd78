/*
 * The routing cache (see server_int.h): alias -> version resolution from
 * memory. An entry is filled from one store_function_get on the first
 * request for a function and lives until the next registry write (every
 * write path calls route_cache_clear), so answers are exactly what the
 * store would say. Misses of any kind go back to the store, which words the
 * 404s; the cache only ever answers with a version that exists.
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

const store_function *route_cache_function(server *s, const char *name)
{
    route_cache_entry *e = &s->rcache[slot_of(name)];
    if (!e->used || strcmp(e->f.name, name) != 0) {
        store_function f;
        memset(&f, 0, sizeof(f));
        if (store_function_get(s->st, name, &f, NULL) < 0) return NULL;
        if (e->used) store_function_fini(&e->f);
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
    for (int i = 0; i < ROUTE_CACHE_SLOTS; i++) {
        if (!s->rcache[i].used) continue;
        store_function_fini(&s->rcache[i].f);
        s->rcache[i].used = false;
    }
}
