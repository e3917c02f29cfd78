/*
 * serve's side of the shared registry (--state postgres://...; see
 * regsync.h and store.h's "shared registry"): starting the sync before
 * serve listens, the bootstrap of access control through PostgreSQL, the
 * loop's reaction to other nodes' changes (route cache, pool, keys in
 * memory), and the state as health and /v2 report it.
 *
 * Without --state nothing here runs and serve answers exactly as before.
 */
#include <string.h>
#include <sys/epoll.h>

#include "common/json.h"
#include "common/log.h"
#include "server/fnlog.h"
#include "server/http_int.h"
#include "server/regsync.h"
#include "store/keys.h"

#define MOD "state"

int shared_state_start(server *s, rouse_errbuf *eb)
{
    if (!s->opts.state_url) return 0;
    int rc = regsync_start(s->opts.state_url, s->data_dir, &s->regsync, eb);
    if (rc < 0) return rc;
    /* auth_start may store the bootstrap key through s->st: in PostgreSQL. */
    if ((rc = store_attach_shared(s->st, s->opts.state_url, regsync_health(s->regsync), eb)) < 0) {
        regsync_stop(s->regsync);
        s->regsync = NULL;
        return rc;
    }
    LOG_INFO(MOD, "the registry is shared through PostgreSQL; this node reads its replica");
    return 0;
}

int shared_state_watch(server *s, rouse_errbuf *eb)
{
    if (!s->regsync) return 0;
    /* From now on only the writer's store writes (durable.c). */
    store_detach_shared(s->st);
    s->tag_regsync.kind = EP_REGSYNC;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &s->tag_regsync};
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, regsync_fd(s->regsync), &ev) < 0)
        return rouse_err_set(eb, ROUSE_EIO, "cannot watch the registry sync");
    return 0;
}

int shared_state_attach_writer(server *s, store *wst, rouse_errbuf *eb)
{
    if (!s->regsync) return 0;
    int rc = store_attach_shared(wst, s->opts.state_url, regsync_health(s->regsync), eb);
    if (rc == 0) store_set_shared_hook(wst, regsync_own_write, s->regsync);
    return rc;
}

void shared_state_stop(server *s)
{
    regsync_stop(s->regsync);
    s->regsync = NULL;
}

/* Keys another node created or revoked: into the table in memory. */
static int key_synced(void *user, const store_key *k)
{
    server *s = user;
    auth_key *have = auth_table_find(&s->keys, k->id);
    if (have) {
        have->k.revoked_ms = k->revoked_ms;
        have->k.expires_ms = k->expires_ms;
        return 0;
    }
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    if (auth_table_add(&s->keys, k, false, &eb) < 0)
        LOG_ERROR(MOD, "API key %s from the shared registry: %s", k->id, eb.msg);
    return 0;
}

static void changed(void *user, const char *fn_key)
{
    server *s = user;
    route_cache_clear(s);
    if (!fn_key) {
        rouse_errbuf eb;
        rouse_errbuf_clear(&eb);
        if (s->opts.auth && store_keys_load(s->st, key_synced, s, &eb) < 0)
            LOG_ERROR(MOD, "reloading API keys: %s", eb.msg);
        return;
    }
    store_function f;
    int rc = store_function_get(s->st, fn_key, &f, NULL);
    if (rc == 0) {
        store_function_fini(&f);
        pool_routes_changed(s->pool, fn_key);
    } else if (rc == ROUSE_ENOTFOUND) {
        pool_forget_function(s->pool, fn_key);
        fnlog_forget(s->logs, fn_key);
    }
}

void shared_state_on_event(server *s)
{
    regsync_drain(s->regsync, changed, s);
}

bool shared_state_stale(server *s)
{
    return s->regsync && pg_health_get(regsync_health(s->regsync), NULL, NULL, NULL, 0);
}

int shared_state_write_json(server *s, rouse_buf *b)
{
    if (!s->regsync) return 0;
    int64_t since;
    char msg[256];
    if (!pg_health_get(regsync_health(s->regsync), &since, NULL, msg, sizeof(msg)))
        return rouse_buf_append_str(b, ",\"state\":\"shared\"");
    int rc = rouse_buf_appendf(b, ",\"state\":\"stale\",\"stale_since_ms\":%lld,\"state_error\":",
                               (long long)since);
    if (rc == 0) rc = json_write_string(b, msg, strlen(msg));
    return rc;
}
