/*
 * The bus: this node's connection to NATS (`serve --bus nats://...`), for
 * registry events and membership (the job queues open their own). libnats
 * runs the connection on threads of its own and reconnects by itself
 * (forever, every 250 ms); what arrives is copied into a queue and handed
 * to serve's loop through an eventfd, and everything this node sends goes
 * out from the bus's own thread, so the loop never waits for the network.
 *
 * Two channels:
 * - subject messages (bus_publish, bus_subscribe): registry events;
 * - one key-value bucket (BUS_KV_BUCKET, JetStream, a TTL of a few
 *   seconds): bus_kv_put keeps the newest value of a key and the thread
 *   puts it; every put of any node arrives back as a message of the
 *   bucket's subject ($KV.<bucket>.<key>), which the bus watches.
 *
 * Threads: every function but the thread's own belongs to the loop.
 */
#ifndef ROUSE_SERVER_BUS_H
#define ROUSE_SERVER_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rouse/err.h"

#define BUS_KV_BUCKET "rouse_nodes"
/* How long the bucket keeps a key nobody puts again (ms). */
#define BUS_KV_TTL_MS 5000
/* Messages waiting for the loop past this are dropped (counted). */
#define BUS_QUEUE_MAX 4096

typedef struct bus bus;

/* A message for the loop: from a subscription (subject as sent) or a put
 * into the bucket (kv_key set, subject the bucket's). Borrowed for the
 * duration of the handler. */
typedef struct bus_msg {
    const char *subject;
    const char *kv_key; /* the key of a bucket put, or NULL */
    const char *data;
    size_t len;
} bus_msg;

typedef void (*bus_msg_fn)(void *user, const bus_msg *m);
/* The connection went up (true) or down (false). */
typedef void (*bus_state_fn)(void *user, bool connected);

/* Connects to url (nats://host:port, several comma-separated), naming the
 * connection after node; a server that is not reachable yet is retried in
 * the background (0 is returned). on_msg and on_state run on the loop,
 * from bus_on_event. ROUSE_EINVAL for a URL that is not nats://.
 * Owned: free with bus_destroy. */
int bus_create(const char *url, const char *node, bus_msg_fn on_msg, bus_state_fn on_state,
               void *user, bus **out, rouse_errbuf *eb);
/* Stops the thread and closes the connection; NULL is a no-op. */
void bus_destroy(bus *b);
/* The eventfd to watch for EPOLLIN. */
int bus_fd(const bus *b);
/* The eventfd is readable: hands what arrived to on_msg and on_state. */
void bus_on_event(bus *b);
/* Subscribes to subject (wildcards allowed) from now on, also across
 * reconnects. */
int bus_subscribe(bus *b, const char *subject, rouse_errbuf *eb);
/* Queues a message (copied); dropped while the bus is down. */
int bus_publish(bus *b, const char *subject, const void *data, size_t len);
/* The newest value of key in the bucket (copied; replaces a value of the
 * same key not yet sent). */
int bus_kv_put(bus *b, const char *key, const void *data, size_t len);
/* Whether the connection is up now, and the bucket is bound. */
bool bus_connected(const bus *b);
bool bus_kv_ready(const bus *b);
/* Counters for the metrics: messages received, dropped for a full queue,
 * puts that failed. */
void bus_counts(const bus *b, uint64_t *received, uint64_t *dropped, uint64_t *put_failed);

#endif
