/*
 * /v1/keys: API keys (docs/security.md). POST creates a key and answers its
 * secret, the only time it is ever shown; GET lists keys (never secrets);
 * DELETE revokes; GET /v1/keys/self says who the caller is. Creation and
 * revocation are registry writes through the writer; the in-memory table
 * (auth.h) changes when they are durable, so a key works from the moment
 * its 201 is sent and stops working from the moment its revocation's 200
 * is.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/arena.h"
#include "common/json.h"
#include "common/timeutil.h"
#include "server/auth.h"
#include "server/http_int.h"

/* The longest a key may live: ten years. */
#define KEY_EXPIRES_MAX_S (10ll * 365 * 86400)

static int write_time(rouse_buf *b, int64_t ms)
{
    if (ms <= 0) return rouse_buf_append_str(b, "null");
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char s[32];
    strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return rouse_buf_appendf(b, "\"%s\"", s);
}

static int write_key(rouse_buf *b, const auth_key *a, int64_t now_ms)
{
    const store_key *k = &a->k;
    int rc = rouse_buf_appendf(b, "{\"id\":\"%s\",\"tenant\":\"%s\",\"role\":\"%s\",\"name\":", k->id,
                               k->tenant, k->role);
    if (rc == 0) rc = json_write_string(b, k->name, strlen(k->name));
    if (rc == 0) rc = rouse_buf_appendf(b, ",\"created_ms\":%" PRId64 ",\"expires\":", k->created_ms);
    if (rc == 0) rc = write_time(b, k->expires_ms);
    const char *state = k->revoked_ms > 0                                  ? "revoked"
                        : k->expires_ms > 0 && now_ms >= k->expires_ms ? "expired"
                                                                          : "active";
    if (rc == 0)
        rc = rouse_buf_appendf(b, ",\"expires_ms\":%" PRId64 ",\"state\":\"%s\",\"source\":\"%s\"}",
                               k->expires_ms, state, a->from_file ? "auth-file" : "registry");
    return rc;
}

static int key_self(http_req *req)
{
    const auth_caller *w = &req->who;
    rouse_buf b;
    rouse_buf_init(&b);
    if (w->key_id[0])
        rouse_buf_appendf(&b, "{\"id\":\"%s\",", w->key_id);
    else
        rouse_buf_append_str(&b, "{\"id\":null,");
    rouse_buf_appendf(&b, "\"tenant\":\"%s\",\"role\":\"%s\",\"expires\":", w->tenant,
                      auth_role_name(w->role));
    write_time(&b, w->expires_ms);
    rouse_buf_appendf(&b, ",\"auth\":%s}\n", req->srv->opts.auth ? "true" : "false");
    http_reply_json(req, 200, &b);
    rouse_buf_fini(&b);
    return 0;
}

static int key_list(http_req *req)
{
    const auth_table *t = &req->srv->keys;
    int64_t now = rouse_wall_ms();
    rouse_buf b;
    rouse_buf_init(&b);
    int rc = rouse_buf_append_str(&b, "{\"keys\":[");
    for (int i = 0; rc == 0 && i < t->n; i++) {
        if (i) rc = rouse_buf_append_str(&b, ",");
        if (rc == 0) rc = write_key(&b, &t->keys[i], now);
    }
    if (rc == 0) rc = rouse_buf_append_str(&b, "]}\n");
    http_reply_built(req, 200, &b, rc);
    return 0;
}

typedef struct key_create_arg {
    store_key k;
    char secret[AUTH_SECRET_LEN + 1];
} key_create_arg;

static int apply_create(store *st, void *p, rouse_errbuf *eb)
{
    key_create_arg *a = p;
    return store_key_insert_tx(st, &a->k, eb);
}

static void created(void *user, int rc, const rouse_errbuf *eb, void *p)
{
    http_req *req = user;
    key_create_arg *a = p;
    durable_done(req);
    rouse_errbuf e2;
    rouse_errbuf_clear(&e2);
    /* With --state the registry sync may have brought it in already. */
    if (rc == 0 && !auth_table_find(&req->srv->keys, a->k.id) &&
        (rc = auth_table_add(&req->srv->keys, &a->k, false, &e2)) < 0)
        eb = &e2;
    if (rc < 0) {
        http_reply_error(req, http_status_of(rc), "%s", eb->msg);
    } else {
        rouse_buf b;
        rouse_buf_init(&b);
        rouse_buf_append_str(&b, "{\"key\":\"");
        rouse_buf_append_str(&b, a->secret);
        rouse_buf_append_str(&b, "\",\"id\":\"");
        rouse_buf_append_str(&b, a->k.id);
        rouse_buf_appendf(&b, "\",\"tenant\":\"%s\",\"role\":\"%s\",\"expires\":", a->k.tenant,
                          a->k.role);
        write_time(&b, a->k.expires_ms);
        rouse_buf_append_str(&b, "}\n");
        http_reply_json(req, 201, &b);
        rouse_buf_fini(&b);
    }
    memset(a->secret, 0, sizeof(a->secret));
    http_req_resume(req);
}

static int key_create(http_req *req)
{
    rouse_arena ar;
    rouse_arena_init(&ar, 0);
    json_value *root;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    int ret = 0;
    key_create_arg a;
    memset(&a, 0, sizeof(a));
    if (json_parse(req->body.data ? req->body.data : "", req->body.len, &ar, &root, &eb) < 0 ||
        root->type != JSON_OBJECT) {
        http_reply_error(req, 400,
                         "expected {\"tenant\": T, \"role\": \"admin|deploy|invoke\", "
                         "\"expires_in_s\": N, \"name\": LABEL}");
        goto out;
    }
    for (size_t i = 0; i < root->u.obj.n; i++) {
        const char *f = root->u.obj.members[i].key;
        if (strcmp(f, "tenant") && strcmp(f, "role") && strcmp(f, "expires_in_s") &&
            strcmp(f, "name")) {
            http_reply_error(req, 400, "%.60s: unknown field (expected tenant, role, "
                                       "expires_in_s, name)", f);
            goto out;
        }
    }
    const char *tenant = json_as_string(json_get(root, "tenant"));
    const char *role = json_as_string(json_get(root, "role"));
    const json_value *exp = json_get(root, "expires_in_s");
    const json_value *name = json_get(root, "name");
    auth_role r;
    int64_t secs = 0;
    if (!tenant || !store_tenant_valid(tenant)) {
        http_reply_error(req, 400, "tenant: must be a tenant name ([a-z0-9][a-z0-9-]{0,62})");
        goto out;
    }
    if (!role || auth_role_parse(role, &r) < 0) {
        http_reply_error(req, 400, "role: must be admin, deploy or invoke");
        goto out;
    }
    if (exp && (!json_as_int64(exp, &secs) || secs < 1 || secs > KEY_EXPIRES_MAX_S)) {
        http_reply_error(req, 400, "expires_in_s: must be an integer from 1 to %lld",
                         (long long)KEY_EXPIRES_MAX_S);
        goto out;
    }
    const char *label = name ? json_as_string(name) : "";
    if (!label || strlen(label) > STORE_KEY_NAME_MAX) {
        http_reply_error(req, 400, "name: must be a string of at most %d bytes",
                         STORE_KEY_NAME_MAX);
        goto out;
    }
    int rc;
    if ((rc = auth_secret_new(a.secret, &eb)) < 0 || (rc = auth_key_id_new(a.k.id, &eb)) < 0 ||
        (rc = auth_secret_hash_hex(a.secret, strlen(a.secret), a.k.hash)) < 0) {
        http_reply_error(req, 500, "%s", eb.msg[0] ? eb.msg : "cannot make a key");
        goto out;
    }
    snprintf(a.k.tenant, sizeof(a.k.tenant), "%s", tenant);
    snprintf(a.k.role, sizeof(a.k.role), "%s", auth_role_name(r));
    snprintf(a.k.name, sizeof(a.k.name), "%s", label);
    a.k.created_ms = rouse_wall_ms();
    a.k.expires_ms = secs > 0 ? a.k.created_ms + secs * 1000 : 0;
    if (durable_submit(req, req->srv->writer.w, apply_create, &a, sizeof(a), created) == 0) ret = 1;
out:
    memset(a.secret, 0, sizeof(a.secret));
    rouse_arena_fini(&ar);
    return ret;
}

typedef struct key_revoke_arg {
    char id[STORE_KEY_ID_MAX + 1];
    int64_t now_ms;
} key_revoke_arg;

static int apply_revoke(store *st, void *p, rouse_errbuf *eb)
{
    key_revoke_arg *a = p;
    return store_key_revoke_tx(st, a->id, a->now_ms, eb);
}

static void revoked(void *user, int rc, const rouse_errbuf *eb, void *p)
{
    http_req *req = user;
    key_revoke_arg *a = p;
    durable_done(req);
    auth_key *k = auth_table_find(&req->srv->keys, a->id);
    if (rc < 0) {
        http_reply_error(req, http_status_of(rc), "%s", eb->msg);
    } else if (!k) {
        http_reply_error(req, 404, "no API key %s", a->id);
    } else {
        if (k->k.revoked_ms == 0) k->k.revoked_ms = a->now_ms;
        rouse_buf b;
        rouse_buf_init(&b);
        write_key(&b, k, rouse_wall_ms());
        rouse_buf_append_str(&b, "\n");
        http_reply_json(req, 200, &b);
        rouse_buf_fini(&b);
    }
    http_req_resume(req);
}

static int key_delete(http_req *req)
{
    auth_key *k = req->r.param_too_long ? NULL : auth_table_find(&req->srv->keys, req->r.ref);
    if (!k) {
        http_reply_error(req, 404, "no API key %s", req->r.ref);
        return 0;
    }
    if (k->from_file) {
        http_reply_error(req, 409,
                         "API key %s comes from the --auth-file: remove it there and restart serve",
                         k->k.id);
        return 0;
    }
    key_revoke_arg a;
    memset(&a, 0, sizeof(a));
    snprintf(a.id, sizeof(a.id), "%s", k->k.id);
    a.now_ms = rouse_wall_ms();
    return durable_submit(req, req->srv->writer.w, apply_revoke, &a, sizeof(a), revoked) == 0;
}

int api_keys_handle(http_req *req)
{
    if (req->r.id == R_KEY_SELF) return key_self(req);
    if (!req->srv->opts.auth) {
        http_reply_error(req, 404, "access control is off: API keys need rouse serve --auth");
        return 0;
    }
    switch (req->r.id) {
    case R_KEY_CREATE:
        return key_create(req);
    case R_KEY_LIST:
        return key_list(req);
    case R_KEY_DELETE:
        return key_delete(req);
    default:
        http_reply_error(req, 404, "no such endpoint");
        return 0;
    }
}
