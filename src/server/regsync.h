/*
 * The registry's replica sync, as the bus sees it (the registry part owns
 * the implementation): regsync_poke says a registry change happened on
 * another node (resync now), and regsync_set_publish registers what runs
 * after each of this node's own registry writes (fn: the function key
 * written, seq: the registry's sequence number after it), which publishes
 * the change as a registry event (regevents.c).
 *
 * Declared weak: a build without the replica sync has no definitions, and
 * serve then has no regsync object to call them with.
 */
#ifndef ROUSE_SERVER_REGSYNC_H
#define ROUSE_SERVER_REGSYNC_H

#include <stdint.h>

typedef struct regsync regsync;

typedef void (*regsync_publish_fn)(void *user, const char *fn, int64_t seq);

__attribute__((weak)) void regsync_poke(regsync *r);
__attribute__((weak)) void regsync_set_publish(regsync *r, regsync_publish_fn fn, void *user);

#endif
