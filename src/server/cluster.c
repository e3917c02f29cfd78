/*
 * Several nodes as one platform, serve's side (docs/architecture.md,
 * "Several nodes"): this node's identity, and with --bus its bus
 * (bus.h), membership (membership.h), registry events (regevent.h) and the
 * forwarder (forward.h; the routing of calls is cluster_route.c). Runs on
 * the loop; the bus and the forwarder do their waiting on threads of their
 * own.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "server/bus.h"
#include "server/forward.h"
#include "server/membership.h"
#include "server/prom.h"
#include "server/regevent.h"
#include "server/regsync.h"
#include "server/server_int.h"

#define MOD "cluster"
#define KV_SUBJECT_ALL "$KV." BUS_KV_BUCKET "." MEMBERSHIP_KEY_PREFIX ">"

/* The host name as a node name: lower case, other characters '-'. */
static void default_node_name(char *out, size_t cap)
{
    char host[256] = "";
    if (gethostname(host, sizeof(host) - 1) < 0 || !host[0]) snprintf(host, sizeof(host), "node");
    size_t n = 0;
    for (const char *p = host; *p && n + 1 < cap && n < 63; p++) {
        char c = *p >= 'A' && *p <= 'Z' ? (char)(*p - 'A' + 'a') : *p;
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
            c = '-';
        out[n++] = c;
    }
    out[n] = '\0';
}

static void on_bus_state(void *user, bool connected)
{
    server *s = user;
    (void)s;
    if (!connected) LOG_WARN(MOD, "NATS unreachable: serving locally, no forwarding");
}

static void on_bus_msg(void *user, const bus_msg *m)
{
    server *s = user;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    if (m->kv_key) {
        if (membership_on_put(s->members, m->kv_key, m->data, m->len, rouse_now_ns(), &eb) < 0)
            LOG_WARN(MOD, "membership %s: %s", m->kv_key, eb.msg);
        return;
    }
    if (strcmp(m->subject, REGEVENT_SUBJECT) == 0) {
        regevent ev;
        if (regevent_parse(m->data, m->len, &ev, &eb) < 0) {
            LOG_WARN(MOD, "%s", eb.msg);
            return;
        }
        if (strcmp(ev.node, s->node_name) == 0) return; /* our own write */
        LOG_DEBUG(MOD, "registry event from %s: %s (seq %lld)", ev.node, ev.fn,
                  (long long)ev.seq);
        if (s->regsync) regsync_poke(s->regsync);
    }
}

/* After each of this node's own registry writes (regsync.h). */
static void on_registry_write(void *user, const char *fn, int64_t seq)
{
    server *s = user;
    if (!s->bus) return;
    rouse_buf b;
    rouse_buf_init(&b);
    if (regevent_format(s->node_name, fn, seq, &b) == 0)
        bus_publish(s->bus, REGEVENT_SUBJECT, b.data, b.len);
    rouse_buf_fini(&b);
}

int cluster_start(server *s, rouse_errbuf *eb)
{
    const server_opts *o = &s->opts;
    if (o->node_name)
        snprintf(s->node_name, sizeof(s->node_name), "%s", o->node_name);
    else
        default_node_name(s->node_name, sizeof(s->node_name));
    if (o->advertise) {
        if (strlen(o->advertise) >= sizeof(s->advertise))
            return rouse_err_set(eb, ROUSE_EINVAL, "--advertise: URL too long");
        snprintf(s->advertise, sizeof(s->advertise), "%s", o->advertise);
        size_t n = strlen(s->advertise);
        while (n > 0 && s->advertise[n - 1] == '/')
            s->advertise[--n] = '\0';
    } else {
        snprintf(s->advertise, sizeof(s->advertise), "%s://%s:%d", s->tls ? "https" : "http",
                 o->bind, s->port);
    }
    s->tag_bus.kind = EP_BUS;
    s->tag_fwd.kind = EP_BUS;
    if (!o->bus_url) return 0;
    int rc;
    if ((rc = membership_create(s->node_name, &s->members, eb)) < 0) return rc;
    if ((rc = bus_create(o->bus_url, s->node_name, on_bus_msg, on_bus_state, s, &s->bus, eb)) < 0)
        goto out_members;
    if ((rc = bus_subscribe(s->bus, REGEVENT_SUBJECT, eb)) < 0 ||
        (rc = bus_subscribe(s->bus, KV_SUBJECT_ALL, eb)) < 0)
        goto out_bus;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &s->tag_bus};
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, bus_fd(s->bus), &ev) < 0) {
        rc = rouse_err_set(eb, ROUSE_EIO, "epoll_ctl (bus)");
        goto out_bus;
    }
    if (s->cluster_key) {
        if ((rc = forward_create(o->tls_cert, &s->fwd, eb)) < 0) goto out_bus;
        struct epoll_event fev = {.events = EPOLLIN, .data.ptr = &s->tag_fwd};
        if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, forward_fd(s->fwd), &fev) < 0) {
            rc = rouse_err_set(eb, ROUSE_EIO, "epoll_ctl (forwarder)");
            goto out_fwd;
        }
    } else {
        LOG_WARN(MOD, "no --cluster-key-file: this node forwards no call to another");
    }
    if (s->regsync) regsync_set_publish(s->regsync, on_registry_write, s);
    LOG_INFO(MOD, "node %s at %s", s->node_name, s->advertise);
    return 0;

out_fwd:
    forward_destroy(s->fwd);
    s->fwd = NULL;
out_bus:
    bus_destroy(s->bus);
    s->bus = NULL;
out_members:
    membership_destroy(s->members);
    s->members = NULL;
    return rc;
}

int cluster_tick(server *s)
{
    if (!s->bus) return -1;
    uint64_t now = rouse_now_ns();
    uint64_t period = (uint64_t)MEMBERSHIP_PUT_MS * 1000000ull;
    if (now - s->member_put_ns >= period) {
        s->member_put_ns = now;
        membership_expire(s->members, now);
        /* min instances spread over the live nodes (route_min_share). */
        int rank, n;
        membership_rank(s->members, now, &rank, &n);
        pool_set_min_share(s->pool, rank, n);
        if (!s->stopping) {
            rouse_buf b;
            rouse_buf_init(&b);
            char key[80];
            snprintf(key, sizeof(key), MEMBERSHIP_KEY_PREFIX "%s", s->node_name);
            if (membership_self_doc(s->pool, s->node_name, s->advertise, &b) == 0)
                bus_kv_put(s->bus, key, b.data, b.len);
            rouse_buf_fini(&b);
        }
        return MEMBERSHIP_PUT_MS;
    }
    return (int)((s->member_put_ns + period - now) / 1000000ull) + 1;
}

void cluster_on_event(server *s, ep_tag *tag)
{
    if (tag == &s->tag_bus && s->bus)
        bus_on_event(s->bus);
    else if (tag == &s->tag_fwd && s->fwd)
        cluster_route_on_results(s);
}

int cluster_pending(server *s)
{
    return s->fwd ? forward_pending(s->fwd) : 0;
}

void cluster_stop(server *s)
{
    if (s->regsync) regsync_set_publish(s->regsync, NULL, NULL);
    forward_destroy(s->fwd);
    s->fwd = NULL;
    cluster_route_free(s->croute);
    s->croute = NULL;
    bus_destroy(s->bus);
    s->bus = NULL;
    membership_destroy(s->members);
    s->members = NULL;
}

bool cluster_bus_configured(const server *s)
{
    return s->bus != NULL;
}

bool cluster_bus_connected(const server *s)
{
    return s->bus && bus_connected(s->bus);
}

int cluster_write_metrics(server *s, rouse_buf *out)
{
    if (!s->bus) return 0;
    uint64_t sent, retried, failed, received, dropped, put_failed;
    cluster_route_counts(s, &sent, &retried, &failed);
    bus_counts(s->bus, &received, &dropped, &put_failed);
    int rank, n;
    membership_rank(s->members, rouse_now_ns(), &rank, &n);
    int rc = prom_family(out, "rouse_bus_connected", "gauge",
                         "1 while this node's connection to NATS (--bus) is up, else 0: no "
                         "forwarding, calls run here.");
    if (rc == 0) rc = prom_sample_u64(out, "rouse_bus_connected", NULL, bus_connected(s->bus));
    if (rc == 0)
        rc = prom_family(out, "rouse_cluster_nodes", "gauge",
                         "Nodes heard from within the last second, this one included.");
    if (rc == 0) rc = prom_sample_u64(out, "rouse_cluster_nodes", NULL, (uint64_t)n);
    if (rc == 0)
        rc = prom_family(out, "rouse_bus_messages_dropped_total", "counter",
                         "Bus messages dropped because the loop fell behind.");
    if (rc == 0) rc = prom_sample_u64(out, "rouse_bus_messages_dropped_total", NULL, dropped);
    if (rc == 0)
        rc = prom_family(out, "rouse_forwarded_total", "counter",
                         "Inference calls sent to another node (retries included).");
    if (rc == 0) rc = prom_sample_u64(out, "rouse_forwarded_total", NULL, sent);
    if (rc == 0)
        rc = prom_family(out, "rouse_forward_retries_total", "counter",
                         "Forwarded calls tried again because the node did not take them.");
    if (rc == 0) rc = prom_sample_u64(out, "rouse_forward_retries_total", NULL, retried);
    if (rc == 0)
        rc = prom_family(out, "rouse_forward_failures_total", "counter",
                         "Forwarded calls that failed after the node started them (502).");
    if (rc == 0) rc = prom_sample_u64(out, "rouse_forward_failures_total", NULL, failed);
    return rc;
}
