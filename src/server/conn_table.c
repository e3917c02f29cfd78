/*
 * The per-client connection counts (conn_table.h). Invariants: n_used <
 * cap * 3/4 after every add; every entry in use has count >= 1 and sits in
 * the probe run that starts at its hash slot (deletion shifts later
 * entries back, so there are no tombstones).
 */
#include "server/conn_table.h"

#include <arpa/inet.h>
#include <assert.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rouse/err.h"

typedef struct slot {
    conn_key key;
    uint32_t count; /* 0: free */
} slot;

struct conn_table {
    slot *slots;
    size_t cap; /* a power of two */
    size_t n_used;
};

void conn_key_of(const struct sockaddr *sa, socklen_t sl, conn_key *out)
{
    memset(out, 0, sizeof(*out));
    if (sa && sa->sa_family == AF_INET && sl >= (socklen_t)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        out->b[10] = out->b[11] = 0xff;
        memcpy(out->b + 12, &in->sin_addr, 4);
    } else if (sa && sa->sa_family == AF_INET6 && sl >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        memcpy(out->b, &in6->sin6_addr, 16);
        if (!IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) memset(out->b + 8, 0, 8);
    }
}

void conn_key_format(const conn_key *k, char *buf, size_t len)
{
    static const uint8_t v4_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    char tmp[INET6_ADDRSTRLEN];
    if (memcmp(k->b, v4_prefix, 12) == 0) {
        inet_ntop(AF_INET, k->b + 12, tmp, sizeof(tmp));
        snprintf(buf, len, "%s", tmp);
    } else {
        inet_ntop(AF_INET6, k->b, tmp, sizeof(tmp));
        snprintf(buf, len, "%s/64", tmp);
    }
}

/* FNV-1a over the 16 bytes. */
static size_t hash_of(const conn_key *k)
{
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < 16; i++) {
        h ^= k->b[i];
        h *= 1099511628211ull;
    }
    return (size_t)(h ^ (h >> 29));
}

conn_table *conn_table_create(void)
{
    conn_table *t = calloc(1, sizeof(*t));
    if (!t) return NULL;
    t->cap = 64;
    t->slots = calloc(t->cap, sizeof(*t->slots));
    if (!t->slots) {
        free(t);
        return NULL;
    }
    return t;
}

void conn_table_destroy(conn_table *t)
{
    if (!t) return;
    free(t->slots);
    free(t);
}

/* The slot holding k, or the free slot where it would go. */
static size_t find(const conn_table *t, const conn_key *k)
{
    size_t i = hash_of(k) & (t->cap - 1);
    while (t->slots[i].count && memcmp(&t->slots[i].key, k, sizeof(*k)) != 0)
        i = (i + 1) & (t->cap - 1);
    return i;
}

uint32_t conn_table_count(const conn_table *t, const conn_key *k)
{
    return t->slots[find(t, k)].count;
}

static int grow(conn_table *t)
{
    size_t cap = t->cap * 2;
    slot *old = t->slots, *ns = calloc(cap, sizeof(*ns));
    if (!ns) return ROUSE_ENOMEM;
    size_t old_cap = t->cap;
    t->slots = ns;
    t->cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].count) t->slots[find(t, &old[i].key)] = old[i];
    free(old);
    return 0;
}

int conn_table_add(conn_table *t, const conn_key *k)
{
    size_t i = find(t, k);
    if (t->slots[i].count) {
        t->slots[i].count++;
        return 0;
    }
    if ((t->n_used + 1) * 4 > t->cap * 3) {
        if (grow(t) < 0) return ROUSE_ENOMEM;
        i = find(t, k);
    }
    t->slots[i].key = *k;
    t->slots[i].count = 1;
    t->n_used++;
    return 0;
}

void conn_table_del(conn_table *t, const conn_key *k)
{
    size_t i = find(t, k);
    assert(t->slots[i].count > 0);
    if (t->slots[i].count == 0) return;
    if (--t->slots[i].count > 0) return;
    t->n_used--;
    /* Backward-shift deletion: move later entries of the run into the hole
     * when their home slot does not lie between the hole and them. */
    size_t mask = t->cap - 1, hole = i, j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (!t->slots[j].count) break;
        size_t home = hash_of(&t->slots[j].key) & mask;
        int between = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (between) continue;
        t->slots[hole] = t->slots[j];
        t->slots[j].count = 0;
        hole = j;
    }
}

size_t conn_table_clients(const conn_table *t)
{
    return t->n_used;
}
