/*
 * serve's side of blobs from elsewhere (store/blob_remote.h): the sources
 * its options name (--blob-peers, --blobs s3:// with --s3-endpoint and
 * --s3-region), the transfer threads' eventfd in the loop, and the glue
 * that suspends a request until its transfer is done (as durable.c does
 * for writes).
 *
 * Invariant: a request with fetch_ticket != 0 is suspended and is resumed
 * by that transfer's completion only (or the ticket is cancelled when MHD
 * ends the request first).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "common/log.h"
#include "server/cluster_key.h"
#include "server/http_int.h"
#include "server/membership.h"
#include "store/blob_remote.h"

#define MOD "blobs"

/* blob_remote's peers callback (on the loop): --blob-peers' list, then
 * the other nodes membership knows (--bus), by their advertise URLs. */
static int node_peers(void *user, char urls[][BLOB_PEER_URL_MAX], int max)
{
    server *s = user;
    int n = 0;
    for (int i = 0; i < s->n_blob_peers && n < max; i++)
        snprintf(urls[n++], BLOB_PEER_URL_MAX, "%s", s->blob_peers[i]);
    member *m = NULL;
    int k = s->members ? membership_peers(s->members, &m) : 0;
    for (int i = 0; i < k && n < max; i++)
        if (m[i].url[0]) snprintf(urls[n++], BLOB_PEER_URL_MAX, "%s", m[i].url);
    return n;
}

static int parse_peers(server *s, const char *list, rouse_errbuf *eb)
{
    s->blob_peers = calloc(BLOB_PEERS_MAX, sizeof(*s->blob_peers));
    if (!s->blob_peers) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    const char *p = list;
    while (*p) {
        size_t n = strcspn(p, ",");
        if (n > 0) {
            if (s->n_blob_peers == BLOB_PEERS_MAX)
                return rouse_err_set(eb, ROUSE_EINVAL, "--blob-peers: at most %d peers",
                                     BLOB_PEERS_MAX);
            bool scheme = (n > 7 && strncmp(p, "http://", 7) == 0) ||
                          (n > 8 && strncmp(p, "https://", 8) == 0);
            if (!scheme || n >= BLOB_PEER_URL_MAX || memchr(p, ' ', n))
                return rouse_err_set(eb, ROUSE_EINVAL,
                                     "--blob-peers: '%.*s' is not an http(s):// base URL of "
                                     "at most %d characters",
                                     (int)(n < 80 ? n : 80), p, BLOB_PEER_URL_MAX - 1);
            memcpy(s->blob_peers[s->n_blob_peers], p, n);
            s->blob_peers[s->n_blob_peers][n] = '\0';
            s->n_blob_peers++;
        }
        p += n;
        if (*p == ',') p++;
    }
    return 0;
}

int blob_fetch_start(server *s, rouse_errbuf *eb)
{
    const server_opts *o = &s->opts;
    blob_s3 s3;
    int rc;
    if (o->blob_peers) {
        if ((rc = parse_peers(s, o->blob_peers, eb)) < 0) return rc;
        if (!s->cluster_key)
            return rouse_err_set(eb, ROUSE_EINVAL,
                                 "--blob-peers needs --cluster-key-file: calls between nodes "
                                 "carry the cluster key");
    }
    if ((o->s3_endpoint || o->s3_region) && !o->blobs_url)
        return rouse_err_set(eb, ROUSE_EINVAL, "--s3-endpoint and --s3-region need --blobs s3://");
    if (o->blobs_url && (rc = blob_s3_parse(o->blobs_url, o->s3_endpoint, o->s3_region, &s3, eb)) < 0)
        return rc;
    blob_remote_opts ro = {
        .blobs = s->blobs,
        .max_bytes = o->max_blob_bytes,
        .peers = s->n_blob_peers > 0 || o->bus_url ? node_peers : NULL, /* members: cluster_start, later */
        .peers_user = s,
        .cluster_key = s->cluster_key ? cluster_key_secret(s->cluster_key) : NULL,
        .s3 = o->blobs_url ? &s3 : NULL,
    };
    if ((rc = blob_remote_create(&ro, &s->remote, eb)) < 0) return rc;
    s->tag_remote.kind = EP_BLOB_REMOTE;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &s->tag_remote};
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, blob_remote_fd(s->remote), &ev) < 0) {
        blob_remote_destroy(s->remote);
        s->remote = NULL;
        return rouse_err_set(eb, ROUSE_EIO, "cannot watch the blob transfer threads");
    }
    if (o->blobs_url)
        LOG_INFO(MOD, "blobs also in %s (%s); uploads are written through",
                 blob_remote_bucket_name(s->remote), s3.base);
    if (s->n_blob_peers > 0) LOG_INFO(MOD, "blobs fetched from %d peer(s)", s->n_blob_peers);
    return 0;
}

void blob_fetch_on_event(server *s)
{
    blob_remote_complete(s->remote);
}

void blob_fetch_stop(server *s)
{
    blob_remote_destroy(s->remote);
    s->remote = NULL;
    free(s->blob_peers);
    s->blob_peers = NULL;
    s->n_blob_peers = 0;
}

bool blob_fetch_possible(const server *s)
{
    return s->remote && blob_remote_has_sources(s->remote);
}

int blob_fetch_req(http_req *req, blob_job job, const char *digest,
                   void (*done)(void *req, int rc, const char *msg))
{
    blob_remote *r = req->srv->remote;
    int rc = !r ? ROUSE_ESTATE
         : job == BLOB_JOB_FETCH ? blob_remote_fetch(r, digest, done, req, &req->fetch_ticket)
         : job == BLOB_JOB_PUSH  ? blob_remote_push(r, digest, done, req, &req->fetch_ticket)
                                 : blob_remote_read_ahead(r, digest, done, req, &req->fetch_ticket);
    if (rc == 0) {
        req->fetch_job = (int)job;
        snprintf(req->fetch_digest, sizeof(req->fetch_digest), "%s", digest);
    }
    if (rc < 0) {
        req->fetch_ticket = 0;
        http_reply_error(req, rc == ROUSE_ENOMEM ? 500 : 503, "%s",
                         rc == ROUSE_ENOMEM ? "out of memory" : "blob transfers are not running");
    }
    return rc;
}

void blob_fetch_done(http_req *req, int rc, const char *msg)
{
    req->fetch_ticket = 0;
    req->fetch_rc = rc;
    free(req->fetch_msg);
    req->fetch_msg = strdup(msg ? msg : "");
}
