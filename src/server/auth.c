/*
 * The key table and the check of every request (auth.h): where a request
 * learns its caller's tenant and role, or is answered 401, 403 or 404 before
 * its body is read.
 *
 * Invariants: a key's hash is never compared with an early exit (the
 * secret's digest is compared with every key's, whatever matched before);
 * the table is the loop's alone; a request that passes auth_check has
 * req->who set and every function name it carries in its path turned into
 * the key of the caller's tenant (store_fn_key), so that no handler can
 * reach another tenant's function by name.
 */
#include "server/auth.h"
#include "server/cluster_key.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "common/timeutil.h"
#include "server/cluster_key.h"
#include "server/http_int.h"

const char *auth_role_name(auth_role r)
{
    switch (r) {
    case AUTH_ADMIN:
        return "admin";
    case AUTH_DEPLOY:
        return "deploy";
    case AUTH_INVOKE:
        return "invoke";
    default:
        return "open";
    }
}

int auth_role_parse(const char *s, auth_role *out)
{
    if (!s) return ROUSE_EINVAL;
    if (strcmp(s, "admin") == 0)
        *out = AUTH_ADMIN;
    else if (strcmp(s, "deploy") == 0)
        *out = AUTH_DEPLOY;
    else if (strcmp(s, "invoke") == 0)
        *out = AUTH_INVOKE;
    else
        return ROUSE_EINVAL;
    return 0;
}

static int random_bytes(void *buf, size_t n, rouse_errbuf *eb)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom((char *)buf + got, n - got, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return rouse_err_set(eb, ROUSE_EIO, "getrandom: %s", strerror(errno));
        got += (size_t)r;
    }
    return 0;
}

int auth_secret_new(char out[AUTH_SECRET_LEN + 1], rouse_errbuf *eb)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint8_t raw[33] = {0}; /* 32 random bytes; the 33rd pads the last group */
    int rc = random_bytes(raw, 32, eb);
    if (rc < 0) return rc;
    char *p = out;
    memcpy(p, "rk_", 3);
    p += 3;
    for (int i = 0; i < 33; i += 3) {
        uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 | raw[i + 2];
        *p++ = b64[(v >> 18) & 63];
        *p++ = b64[(v >> 12) & 63];
        *p++ = b64[(v >> 6) & 63];
        if (i + 3 < 33) *p++ = b64[v & 63];
    }
    /* 32 bytes are 43 characters: the last group's fourth (the pad) is dropped above. */
    *p = '\0';
    memset(raw, 0, sizeof(raw));
    return (size_t)(p - out) == AUTH_SECRET_LEN ? 0 : rouse_err_set(eb, ROUSE_EINTERNAL, "secret length");
}

int auth_key_id_new(char out[STORE_KEY_ID_MAX + 1], rouse_errbuf *eb)
{
    uint8_t raw[8];
    int rc = random_bytes(raw, sizeof(raw), eb);
    if (rc < 0) return rc;
    out[0] = 'k';
    for (int i = 0; i < 8; i++)
        snprintf(out + 1 + 2 * i, 3, "%02x", raw[i]);
    return 0;
}

int auth_secret_hash_hex(const char *secret, size_t len, char hex[ROUSE_SHA256_HEX_LEN + 1])
{
    uint8_t d[ROUSE_SHA256_LEN];
    int rc = rouse_sha256_digest(secret, len, d);
    if (rc < 0) return rc;
    rouse_sha256_hex(d, hex);
    return 0;
}

static int unhex(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

void auth_table_init(auth_table *t)
{
    memset(t, 0, sizeof(*t));
}

void auth_table_fini(auth_table *t)
{
    if (t->keys) memset(t->keys, 0, (size_t)t->cap * sizeof(*t->keys));
    free(t->keys);
    memset(t, 0, sizeof(*t));
}

int auth_table_add(auth_table *t, const store_key *k, bool from_file, rouse_errbuf *eb)
{
    auth_key a;
    memset(&a, 0, sizeof(a));
    a.k = *k;
    a.from_file = from_file;
    if (auth_role_parse(k->role, &a.role) < 0)
        return rouse_err_set(eb, ROUSE_EFORMAT, "API key %s: unknown role '%s'", k->id, k->role);
    if (strlen(k->hash) != ROUSE_SHA256_HEX_LEN)
        return rouse_err_set(eb, ROUSE_EFORMAT, "API key %s: malformed hash", k->id);
    for (int i = 0; i < ROUSE_SHA256_LEN; i++) {
        int hi = unhex(k->hash[2 * i]), lo = unhex(k->hash[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return rouse_err_set(eb, ROUSE_EFORMAT, "API key %s: malformed hash", k->id);
        a.hash[i] = (uint8_t)(hi << 4 | lo);
    }
    if (t->n == t->cap) {
        int cap = t->cap ? 2 * t->cap : 16;
        auth_key *nk = realloc(t->keys, (size_t)cap * sizeof(*nk));
        if (!nk) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory for API keys");
        t->keys = nk;
        t->cap = cap;
    }
    t->keys[t->n++] = a;
    return 0;
}

auth_key *auth_table_find(auth_table *t, const char *id)
{
    for (int i = 0; i < t->n; i++)
        if (strcmp(t->keys[i].k.id, id) == 0) return &t->keys[i];
    return NULL;
}

/* 0 when equal; the time taken does not depend on where they differ. */
static unsigned ct_diff(const uint8_t *a, const uint8_t *b, size_t n)
{
    volatile unsigned d = 0;
    for (size_t i = 0; i < n; i++)
        d |= (unsigned)(a[i] ^ b[i]);
    return d;
}

auth_verdict auth_lookup(const auth_table *t, const char *authorization, int64_t now_ms,
                         const auth_key **out)
{
    *out = NULL;
    if (!authorization) return AUTH_MISSING;
    const char *p = authorization;
    while (*p == ' ')
        p++;
    if (strncasecmp(p, "Bearer", 6) != 0 || p[6] != ' ') return AUTH_MALFORMED;
    p += 6;
    while (*p == ' ')
        p++;
    size_t len = strcspn(p, " \t");
    if (len == 0 || p[len + strspn(p + len, " \t")] != '\0' || len > AUTH_SECRET_MAX)
        return AUTH_MALFORMED;
    uint8_t d[ROUSE_SHA256_LEN];
    if (rouse_sha256_digest(p, len, d) < 0) return AUTH_UNKNOWN;
    const auth_key *found = NULL;
    for (int i = 0; i < t->n; i++) {
        unsigned diff = ct_diff(d, t->keys[i].hash, sizeof(d));
        /* No branch on the secret's bytes: a match is taken by selection. */
        const auth_key *cand = &t->keys[i];
        found = diff == 0 ? cand : found;
    }
    memset(d, 0, sizeof(d));
    if (!found) return AUTH_UNKNOWN;
    *out = found;
    if (found->k.revoked_ms > 0) return AUTH_REVOKED;
    if (found->k.expires_ms > 0 && now_ms >= found->k.expires_ms) return AUTH_EXPIRED;
    return AUTH_VALID;
}

const char *auth_verdict_message(auth_verdict v)
{
    switch (v) {
    case AUTH_MISSING:
        return "an API key is required: send Authorization: Bearer <key>";
    case AUTH_MALFORMED:
        return "the Authorization header must be Bearer <key>";
    case AUTH_UNKNOWN:
        return "the API key is not valid";
    case AUTH_REVOKED:
        return "the API key was revoked";
    case AUTH_EXPIRED:
        return "the API key has expired";
    default:
        return "";
    }
}

/* --- the check of a request ------------------------------------------------------ */

/* Whether req came in through the --metrics-bind listener. */
static bool on_metrics_listener(http_req *req)
{
    server *s = req->srv;
    if (s->metrics_fd < 0) return false;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return false;
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    if (getsockname(ci->connect_fd, (struct sockaddr *)&sa, &len) < 0 || sa.sin_family != AF_INET)
        return false;
    return ntohs(sa.sin_port) == s->metrics_port &&
           (s->metrics_addr == htonl(INADDR_ANY) || sa.sin_addr.s_addr == s->metrics_addr);
}

static bool deny(http_req *req, int status, const char *msg)
{
    http_reply_error(req, status, "%s", msg);
    if (status == 401) req->reply.challenge = true;
    return false;
}

bool auth_check(http_req *req)
{
    server *s = req->srv;
    auth_caller *w = &req->who;
    route_id id = req->r.id;
    int need = route_specs[id].role;
    memcpy(w->tenant, STORE_DEFAULT_TENANT, sizeof(STORE_DEFAULT_TENANT));
    w->role = s->opts.auth ? AUTH_OPEN : AUTH_ADMIN;
    if (on_metrics_listener(req)) {
        if (id != R_METRICS) return deny(req, 404, "only GET /metrics is served on this address");
        return true;
    }
    /* A call from another node: the cluster key instead of an API key.
     * A blob read (blob_fetch.c) stands for an admin's and is answered
     * from the local store alone (api_admin.c); otherwise only an
     * inference or a model's metadata (cluster_route.c), for the tenant
     * it names. */
    const char *ck = http_req_header(req, CLUSTER_KEY_HEADER);
    if (ck) {
        if (!s->cluster_key || !cluster_key_check(s->cluster_key, ck))
            return deny(req, 401, CLUSTER_KEY_HEADER ": not this cluster's key");
        if (id == R_BLOB_GET) {
            w->role = AUTH_ADMIN;
            w->peer = true;
            return true;
        }
        if (id != R_INFER && id != R_MODEL_META)
            return deny(req, 403,
                        "a call between nodes may only run an inference, read a model's "
                        "metadata or read a blob");
        const char *t = http_req_header(req, "Rouse-Tenant");
        if (t && !store_tenant_valid(t))
            return deny(req, 400, "Rouse-Tenant: not a tenant name ([a-z0-9][a-z0-9-]{0,62})");
        if (t && s->opts.auth) snprintf(w->tenant, sizeof(w->tenant), "%s", t);
        w->role = AUTH_INVOKE;
    } else if (s->opts.auth && need != AUTH_OPEN) {
        const auth_key *k;
        auth_verdict v =
            auth_lookup(&s->keys, http_req_header(req, "Authorization"), rouse_wall_ms(), &k);
        if (v != AUTH_VALID) return deny(req, 401, auth_verdict_message(v));
        snprintf(w->tenant, sizeof(w->tenant), "%s", k->k.tenant);
        snprintf(w->key_id, sizeof(w->key_id), "%s", k->k.id);
        w->role = k->role;
        w->expires_ms = k->k.expires_ms;
        if (w->role < need) {
            http_reply_error(req, 403, "this API key (role %s) may not call %s %s: it needs the %s role",
                             auth_role_name(w->role), route_specs[id].method,
                             route_specs[id].path, auth_role_name(need));
            return false;
        }
    }
    /* Without --auth everything is the default tenant's. */
    const char *sel = s->opts.auth && !ck ? http_req_header(req, "Rouse-Tenant") : NULL;
    if (sel && strcmp(sel, w->tenant) != 0) {
        if (!store_tenant_valid(sel))
            return deny(req, 400, "Rouse-Tenant: not a tenant name ([a-z0-9][a-z0-9-]{0,62})");
        if (w->role != AUTH_ADMIN)
            return deny(req, 403, "Rouse-Tenant: only an admin key may name another tenant");
        snprintf(w->tenant, sizeof(w->tenant), "%s", sel);
    }
    if (req->r.name[0] && !req->r.param_too_long &&
        strcmp(w->tenant, STORE_DEFAULT_TENANT) == 0) {
        /* The default tenant's key is the name itself (store_fn_key): only
         * its check is left, with no copy to and fro on every request. */
        if (!store_name_valid(req->r.name)) req->r.param_too_long = true;
    } else if (req->r.name[0] && !req->r.param_too_long) {
        char key[STORE_NAME_MAX + 1];
        int rc = store_fn_key(w->tenant, req->r.name, key, sizeof(key));
        if (rc == 0) {
            snprintf(req->r.name, sizeof(req->r.name), "%s", key);
        } else if (rc == ROUSE_ERANGE && id == R_FN_PUT) {
            http_reply_error(req, 400,
                             "function name '%s' is too long for tenant '%s': a tenant's name "
                             "and a function's take at most %d characters together",
                             req->r.name, w->tenant, STORE_NAME_MAX - 1);
            return false;
        } else {
            /* A name no function of this tenant can have ("other:name"
             * included): 404 for lookups, 400 naming the rule for a deploy. */
            req->r.param_too_long = true;
        }
    }
    return true;
}

int auth_fn_key(const http_req *req, const char *name, char *out, size_t cap)
{
    return store_fn_key(req->who.tenant, name, out, cap);
}

bool auth_owns_fn(const http_req *req, const char *key)
{
    char tenant[STORE_NAME_MAX + 1];
    const char *name;
    store_fn_key_split(key, tenant, sizeof(tenant), &name);
    return strcmp(tenant, req->who.tenant) == 0;
}

const char *auth_fn_name(const char *key)
{
    const char *colon = strchr(key, ':');
    return colon ? colon + 1 : key;
}

bool auth_blob_visible(http_req *req, const char *digest)
{
    if (!req->srv->opts.auth || req->who.peer) return true;
    bool visible = false;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    if (store_blob_visible(req->srv->st, req->who.tenant, digest, &visible, &eb) < 0) return false;
    return visible;
}
